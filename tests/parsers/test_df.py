"""Which filesystem is full: df in the layouts of sosreport, `-h`/`-H`/`-T`/`-P -B1M`/`-i`
captured here, and an older coreutils that wraps a long device name."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import df as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "df"
X = "df -x tmpfs -x devtmpfs -x overlay -x squashfs"  # as tests/fixtures/capture/df.sh runs it
CASES = {
    "hotsos/sos_commands/filesys/df_-al_-x_autofs": None,
    "hotsos/sos_commands/filesys/df_-ali_-x_autofs": None,
    "lab/df_-h": f"{X} -h", "lab/df_-H": f"{X} -H", "lab/df_-T": f"{X} -T",
    "lab/df_-P_-B1M": f"{X} -P -B1M", "lab/df_-i": f"{X} -i",
    "public/df_rabbitmq-server-880": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_sosreport_root_filesystem():
    facts = run("hotsos/sos_commands/filesys/df_-al_-x_autofs")
    root = next(f for f in facts if f.mount == "/")
    assert (root.filesystem, root.size_kb, root.used_kb, root.avail_kb, root.use_percent) == \
        ("/dev/vda2", 308585260, 25514372, 267326276, 9)
    sysfs = next(f for f in facts if f.mount == "/sys")
    assert sysfs.use_percent is None and sysfs.size_kb == 0  # "-" is no percentage
    assert len(facts) == 53 and all(isinstance(f, F.DiskUsage) for f in facts)


def test_inodes_only_fill_the_inode_percentage():
    root = next(f for f in run("hotsos/sos_commands/filesys/df_-ali_-x_autofs") if f.mount == "/")
    assert root.inodes_use_percent == 3 and root.size_kb is None and root.use_percent is None


def test_the_same_disk_in_every_layout_agrees():
    t = run("lab/df_-T", command=CASES["lab/df_-T"])[0]
    h = run("lab/df_-h", command=CASES["lab/df_-h"])[0]
    si = run("lab/df_-H", command=CASES["lab/df_-H"])[0]
    mb = run("lab/df_-P_-B1M", command=CASES["lab/df_-P_-B1M"])[0]
    assert t.filesystem == h.filesystem == si.filesystem == mb.filesystem
    for other in (h, si, mb):  # rounding of -h (1 digit) and -B1M, not unit mistakes
        assert abs(other.size_kb - t.size_kb) / t.size_kb < 0.03
    assert t.use_percent == h.use_percent == mb.use_percent


def test_wrapped_device_name_is_joined_with_its_numbers():
    (fact,) = run("public/df_rabbitmq-server-880")
    assert fact.filesystem == "/dev/mapper/VolGroup-lv_root" and fact.mount == "/"
    assert (fact.size_kb, fact.used_kb, fact.avail_kb, fact.use_percent) == \
        (39645804, 6434336, 31190912, 18)
    assert fact.origin.line == 2  # cited from the name's line


@pytest.mark.parametrize("token, command, kb", [
    ("8.0G", "df -h", 8 * 1024 * 1024), ("512M", "df -h", 512 * 1024), ("1,5T", "df -h", 1610612736),
    ("271G", "df -H", round(271e9 / 1024)), ("0", "df -h", 0), ("4.0K", "df -h", 4),
])
def test_human_sizes(token, command, kb):
    text = f"Filesystem Size Used Avail Use% Mounted on\n/dev/x {token} 0 0 1% /mnt/a b\n"
    (fact,) = run("x", text, command=command)
    assert fact.size_kb == kb and fact.mount == "/mnt/a b"


def test_errors_and_garbage_are_unparsed():
    text = ("df: /run/user/1000/gvfs: Permission denied\n"
            "Filesystem 1K-blocks Used Available Use% Mounted on\n/dev/vda1 10 5 5 50% /\n"
            "/dev/vdb1 ten 5 5 50% /srv\n")
    facts = run("x", text)
    assert isinstance(facts[0], F.Unparsed) and "Permission denied" in facts[0].reason
    assert isinstance(facts[1], F.DiskUsage) and facts[1].use_percent == 50
    assert isinstance(facts[2], F.Unparsed) and facts[2].origin.line == 4


def test_registry():
    assert parsers.for_command("df -h") is P
    assert parsers.for_path("sos/sos_commands/filesys/df_-al_-x_autofs") is P
    assert P.sniff((FIXTURES / "lab/df_-h").read_text())


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    run("fuzz", "Filesystem 1K-blocks Used Available Use% Mounted on\n" + text)
    run("fuzz", text, command="df -h")


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))


def test_the_type_column_is_kept():
    assert [d.fstype for d in run("lab/df_-T", command=CASES["lab/df_-T"])] == ["ext4"]
    assert {d.fstype for d in run("lab/df_-h", command=CASES["lab/df_-h"])} == {None}
