"""Opening every kind of input, and every kind of damage: each gives a clear note and the
rest is kept; nothing raises."""

from __future__ import annotations

import gzip
import io
import os
import socket
import tarfile
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from whynoip.errors import EvidenceError
from whynoip.evidence.read import Summary, read
from whynoip.evidence.stream import MAX_LINE
from whynoip.facts import DhcpPacket, LogEvent, Unparsed

from .conftest import SAMPLE, TRANSCRIPTS

LOG_LINE = "2022-02-09 22:39:01.123 224217 ERROR neutron.agent.dhcp.agent [-] Unable to sync network state."


def _log(tmp_path, name="var/log/neutron/neutron-dhcp-agent.log", data: bytes = b""):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _echoed(facts):
    return [f for f in facts if isinstance(f, LogEvent)]


def _notes(facts):
    return [f for f in facts if isinstance(f, Unparsed)]


def test_missing_path_is_one_clear_error():
    with pytest.raises(EvidenceError) as e:
        list(read(["/nonexistent/evidence"]))
    assert str(e.value) == "/nonexistent/evidence: no such file or directory"


def test_non_utf8_noted_once_and_the_rest_kept(fake_parsers, tmp_path):
    data = (LOG_LINE + "\n").encode() * 2 + "2022-02-09 22:39:02.000 1 ERROR caf\xe9 \xe9t\xe9\n".encode("latin-1") \
        + (LOG_LINE + "\n").encode() + b"\xff\xfe bad again\n"
    p = _log(tmp_path, data=data)
    facts = list(read([str(p)]))
    assert len(_echoed(facts)) == 5
    [note] = _notes(facts)
    assert note.origin.line == 3 and "not UTF-8" in note.reason
    assert _echoed(facts)[2].message == "2022-02-09 22:39:02.000 1 ERROR caf\ufffd \ufffdt\ufffd"


def test_crlf_lines(fake_parsers, tmp_path):
    p = _log(tmp_path, data=(LOG_LINE + "\r\n").encode() * 3)
    assert [f.message for f in _echoed(read([str(p)]))] == [LOG_LINE] * 3


def test_a_1mb_line_is_read_whole_and_a_longer_one_cut(fake_parsers, tmp_path):
    one_mb = "x" * 1_000_000
    p = _log(tmp_path, data=f"{LOG_LINE}\n{one_mb}\n{LOG_LINE}\n".encode())
    facts = list(read([str(p)]))
    assert [len(f.message) for f in _echoed(facts)] == [len(LOG_LINE), 1_000_000, len(LOG_LINE)]
    assert not _notes(facts)
    huge = "y" * (3 * MAX_LINE + 5)
    p2 = _log(tmp_path, "var/log/neutron/neutron-l3-agent.log", f"{LOG_LINE}\n{huge}\n{LOG_LINE}\n".encode())
    facts = list(read([str(p2)]))
    echoed = _echoed(facts)
    assert [len(f.message) for f in echoed] == [len(LOG_LINE), MAX_LINE, len(LOG_LINE)]
    assert [f.origin.line for f in echoed] == [1, 2, 3]
    [note] = _notes(facts)
    assert note.origin.line == 2 and "cut" in note.reason


def test_empty_and_binary_files(fake_parsers, tmp_path):
    empty = _log(tmp_path, "empty.log")
    garbage = _log(tmp_path, "garbage.bin", bytes(range(256)) * 40)
    named = list(read([str(empty), str(garbage)]))
    assert [(u.origin.path, u.reason) for u in _notes(named)] == [
        (str(empty), "empty file"), (str(garbage), "binary data, not text: not read")]
    # met while walking a directory: counted, not listed
    s = Summary()
    walked = list(read([str(tmp_path)], summary=s))
    assert not _notes(walked)
    assert s.skipped["empty files"] == 1 and s.skipped["binary files"] == 1


def test_rotated_gzip_log_read_by_its_name_without_gz(fake_parsers, tmp_path):
    p = _log(tmp_path, "var/log/neutron/neutron-dhcp-agent.log.1.gz",
             gzip.compress((LOG_LINE + "\n").encode() * 4))
    facts = list(read([str(p)]))
    assert [f.service for f in _echoed(facts)] == ["neutronlog"] * 4
    assert _echoed(facts)[3].origin.line == 4 and _echoed(facts)[3].origin.path == str(p)


def test_truncated_and_corrupt_gzip(fake_parsers, tmp_path):
    whole = gzip.compress(("\n".join(f"{LOG_LINE} {i}" for i in range(20000)) + "\n").encode())
    p = _log(tmp_path, "var/log/neutron/neutron-dhcp-agent.log.2.gz", whole[: len(whole) // 2])
    facts = list(read([str(p)]))
    echoed = _echoed(facts)
    assert 1000 < len(echoed) < 20000
    [note] = _notes(facts)
    assert "truncated" in note.reason and note.origin.line == len(echoed) + 1
    bad = _log(tmp_path, "var/log/neutron/neutron-dhcp-agent.log.3.gz", whole[:20] + b"\x00garbage" * 50)
    facts = list(read([str(bad)]))
    assert _notes(facts) and all("compressed data is corrupt" in n.reason or "truncated" in n.reason
                                 for n in _notes(facts))


def test_pcap_by_magic_goes_to_the_binary_parser(fake_parsers, tmp_path):
    pcap = b"\xd4\xc3\xb2\xa1\x02\x00\x04\x00" + b"\x00" * 16
    p = tmp_path / "capture-on-tap.bin"
    p.write_bytes(pcap)
    [pkt] = [f for f in read([str(p)]) if isinstance(f, DhcpPacket)]
    assert pkt.message_type == f"{len(pcap)} bytes" and pkt.origin.line == 1
    ng = tmp_path / "x.pcapng.gz"
    ng.write_bytes(gzip.compress(b"\x0a\x0d\x0d\x0a" + b"\x1c\x00\x00\x00" * 7))
    [pkt] = [f for f in read([str(ng)]) if isinstance(f, DhcpPacket)]
    assert pkt.message_type == "32 bytes"


def test_archives_not_read_say_so(fake_parsers, tmp_path):
    z = tmp_path / "logs.zip"
    z.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    [note] = _notes(read([str(z)]))
    assert "zip" in note.reason and "unpack" in note.reason


def test_stdin_text_and_tarball(fake_parsers, tmp_path):
    transcript = (TRANSCRIPTS / "transcript.txt").read_bytes()
    from_stdin = [(f.origin.line, getattr(f, "message", None)) for f in read(["-"], stdin=io.BytesIO(transcript))]
    from_file = [(f.origin.line, getattr(f, "message", None)) for f in read([str(TRANSCRIPTS / "transcript.txt")])]
    assert from_stdin == from_file
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(TRANSCRIPTS / "transcript.txt", arcname="case/transcript.txt")
    facts = list(read(["-"], stdin=io.BytesIO(buf.getvalue())))
    assert {f.origin.path for f in _echoed(facts)} >= {"-/case/transcript.txt"}


def test_a_parser_that_raises_is_contained(fake_parsers, tmp_path):
    p = tmp_path / "t.txt"
    p.write_text("$ broken --now\nfirst\nsecond\nthird\n")
    facts = list(read([str(p)]))
    assert [f.message for f in _echoed(facts)] == ["first"]
    [note] = _notes(facts)
    assert "broken parser failed here (RuntimeError: boom)" in note.reason and note.origin.line == 2


def test_links_sockets_and_loops_in_a_directory(fake_parsers, tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    (d / "loop").symlink_to(d)
    _log(d, data=(LOG_LINE + "\n").encode())
    s = Summary()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(d / "agent.sock"))
        facts = list(read([str(d)], summary=s))
    finally:
        sock.close()
    assert len(_echoed(facts)) == 1
    assert s.skipped["links"] == 1 and s.skipped["special files"] == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads everything")
def test_unreadable_file_named_is_one_error(tmp_path):
    p = _log(tmp_path, data=b"x\n")
    p.chmod(0)
    with pytest.raises(EvidenceError, match="permission denied"):
        list(read([str(p)]))


def test_memory_stays_flat_on_a_large_log(fake_parsers, tmp_path):
    block = "\n".join(f"{LOG_LINE} {i}" for i in range(1000)).encode() + b"\n"
    p = _log(tmp_path)
    with open(p, "wb") as f:
        for _ in range(400):  # ~40 MB
            f.write(block)
    tracemalloc.start()
    try:
        n = sum(1 for _ in read([str(p)]))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == 400_000
    assert peak < 8 << 20, f"peak {peak >> 20} MiB while reading {p.stat().st_size >> 20} MiB"


# --- fuzz: random bytes, alone or behind the magic of a format, never raise --------------------

_MAGICS = [b"", b"\x1f\x8b\x08\x00", b"\xfd7zXZ\x00", b"BZh9", b"\xd4\xc3\xb2\xa1", b"\x0a\x0d\x0d\x0a",
           b"PK\x03\x04", b"root@net-02:~# ip netns\n", b"$ broken\n"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(magic=st.sampled_from(_MAGICS), body=st.binary(max_size=4000),
       name=st.sampled_from(["x.log", "var/log/neutron/neutron-dhcp-agent.log", "a.tar.gz", "c.pcap", "t.txt"]))
def test_random_bytes_never_raise(fake_parsers, tmp_path_factory, magic, body, name):
    d = tmp_path_factory.mktemp("fuzz")
    p = d / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(magic + body)
    for fact in read([str(p)]):
        assert fact.origin.path.startswith(str(p))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cut=st.integers(min_value=0, max_value=4000), flip=st.integers(min_value=0, max_value=3999))
def test_damaged_tarballs_never_raise(cut, flip):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(TRANSCRIPTS / "transcript.txt", arcname="x/transcript.txt")
        if SAMPLE.is_dir():
            tf.add(SAMPLE / "etc/hostname", arcname="x/etc/hostname")
    data = bytearray(buf.getvalue())
    if flip < len(data):
        data[flip] ^= 0x5A
    data = bytes(data[: max(1, len(data) - cut)])
    list(read(["-"], stdin=io.BytesIO(data)))
