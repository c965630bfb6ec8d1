"""A real sosreport (hotsos' trimmed compute node, see its NOTICE.md) read as a directory, as
a tarball, inside another tarball, and a lab bundle of several nodes."""

from __future__ import annotations

import io
import os
import shutil
import tarfile
import time
from datetime import datetime, timezone

import pytest

from whynoip.evidence.read import Summary, read
from whynoip.facts import HostInfo, LogEvent, Unparsed

from .conftest import SAMPLE, have_parser

pytestmark = pytest.mark.skipif(not SAMPLE.is_dir(), reason="real sample not present")

TAKEN = datetime(2022, 2, 10, 16, 19, 17, tzinfo=timezone.utc).timestamp()  # sos_commands/date/date_--utc
FIP = "fip-32981f34-497a-4fae-914a-8576055c8d0d"


def _sos_tar(dest, mode="w:gz", prefix="sosreport-compute4-2022-02-10-xyzabcd"):
    with tarfile.open(dest, mode) as tf:
        tf.add(SAMPLE, arcname=prefix)
    return dest


def test_tree_host_time_and_commands(fake_parsers):
    s = Summary()
    facts = list(read([str(SAMPLE)], summary=s))
    [host] = [f for f in facts if isinstance(f, HostInfo)]
    assert host.hostname == "compute4" and host.time == TAKEN
    echoed = [f for f in facts if isinstance(f, LogEvent)]
    assert echoed and all(f.origin.host == "compute4" for f in echoed)
    # ref_time from date --utc, not the files' mtimes
    assert {f.params["ref_time"] for f in echoed} == {str(TAKEN)}
    # a command inside a namespace, told by the file name
    addr = [f for f in echoed
            if f.origin.path.endswith(f"ip_netns_exec_{FIP}_ip_address_show") and f.origin.line == 1]
    assert len(addr) == 1
    assert addr[0].origin.namespace == FIP
    assert addr[0].origin.command == f"ip netns exec {FIP} ip address show"
    # the neutron log read by path, line numbers from 1
    dhcp_log = [f for f in echoed if f.origin.path.endswith("var/log/neutron/neutron-dhcp-agent.log.1")]
    assert dhcp_log[0].origin.line == 1 and dhcp_log[0].message.startswith("2022-02-04 10:54:45.826 224217 DEBUG")
    # most of a sosreport is counted, not listed
    assert s.skipped["sosreport files not about DHCP"] > 100
    assert s.skipped["empty files"] == 9
    unparsed = [f for f in facts if isinstance(f, Unparsed)]
    assert not any("ethtool" in u.origin.path for u in unparsed)
    assert all(u.reason for u in unparsed)
    assert s.files == 366


def test_tarball_reads_like_the_directory(fake_parsers, tmp_path):
    tar = _sos_tar(tmp_path / "sosreport-compute4.tar.xz", "w:xz")
    in_dir = {(f.origin.path[len(str(SAMPLE)):], f.origin.line, getattr(f, "message", None))
              for f in read([str(SAMPLE)]) if not isinstance(f, HostInfo)}
    prefix = f"{tar}/sosreport-compute4-2022-02-10-xyzabcd"
    facts = list(read([str(tar)]))
    in_tar = {(f.origin.path[len(prefix):], f.origin.line, getattr(f, "message", None))
              for f in facts if not isinstance(f, HostInfo)}
    assert in_tar == in_dir
    [host] = [f for f in facts if isinstance(f, HostInfo)]
    assert host.hostname == "compute4" and host.time == TAKEN and host.origin.path == prefix


def test_sosreport_tarball_inside_a_case_tarball(fake_parsers, tmp_path):
    inner = _sos_tar(tmp_path / "sosreport-compute4.tar.xz", "w:xz")
    outer = tmp_path / "case-0421.tgz"
    with tarfile.open(outer, "w:gz") as tf:
        tf.add(inner, arcname="attachments/sosreport-compute4.tar.xz")
        data = b"root@net-02:~# ip netns\nqdhcp-1\n"
        info = tarfile.TarInfo("attachments/notes.txt")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    facts = list(read([str(outer)]))
    hosts = [f for f in facts if isinstance(f, HostInfo)]
    assert [h.hostname for h in hosts] == ["compute4"]
    assert hosts[0].origin.path == f"{outer}/attachments/sosreport-compute4.tar.xz/sosreport-compute4-2022-02-10-xyzabcd"
    notes = [f for f in facts if isinstance(f, LogEvent) and f.origin.path == f"{outer}/attachments/notes.txt"]
    assert [(n.origin.line, n.message, n.origin.host) for n in notes] == [(2, "qdhcp-1", "net-02")]
    assert any(isinstance(f, LogEvent) and f.origin.namespace == FIP for f in facts)


@pytest.mark.parametrize("fraction", [0.3, 0.5, 0.61, 0.77, 0.9])
def test_truncated_tarball_keeps_what_came_before(fake_parsers, tmp_path, fraction):
    # where the cut falls (inside a member's data, inside a header, inside the gzip stream's
    # last block) changes the error Python raises; every one of them reads as truncated
    tar = _sos_tar(tmp_path / "sos.tar.gz")
    data = tar.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: int(len(data) * fraction)])
    facts = list(read([str(cut)]))
    broke = [f for f in facts if isinstance(f, Unparsed) and f.origin.path == str(cut)]
    assert len(broke) == 1
    assert "breaks off" in broke[0].reason and "truncated" in broke[0].reason, broke[0].reason
    assert sum(1 for f in facts if isinstance(f, LogEvent)) > 50 * fraction


def test_lab_bundle_one_host_per_node(fake_parsers, tmp_path):
    bundle = tmp_path / "bundle"
    for node in ("net-01", "cmp-01"):
        (bundle / node / "sos_commands" / "networking").mkdir(parents=True)
        (bundle / node / "var" / "log" / "neutron").mkdir(parents=True)
        shutil.copy(SAMPLE / "sos_commands/networking/ip_-d_address", bundle / node / "sos_commands/networking/")
        head = (SAMPLE / "var/log/neutron/neutron-dhcp-agent.log").read_text().splitlines(keepends=True)[:3]
        (bundle / node / "var/log/neutron/neutron-dhcp-agent.log").write_text("".join(head))
    (bundle / "guests" / "vm1").mkdir(parents=True)
    (bundle / "guests" / "vm1" / "console.log").write_text("udhcpc: started, v1.35.0\n")
    (bundle / "api").mkdir()
    (bundle / "api" / "openstack_port_list_-f_json").write_text("[]\n")
    old = time.time() - 86400 * 3
    os.utime(bundle / "net-01" / "var/log/neutron/neutron-dhcp-agent.log", (old, old))
    facts = list(read([str(bundle)]))
    hosts = sorted(f.hostname for f in facts if isinstance(f, HostInfo))
    assert hosts == ["cmp-01", "net-01"]
    logs = [f for f in facts if isinstance(f, LogEvent) and "neutron-dhcp-agent" in f.origin.path]
    assert {f.origin.host for f in logs} == {"net-01", "cmp-01"}
    # no date in the tree: a plain file's reference time is its mtime
    net01 = next(f for f in logs if f.origin.host == "net-01")
    assert float(net01.params["ref_time"]) == pytest.approx(old, abs=1)
    console = [f for f in facts if isinstance(f, LogEvent) and f.origin.path.endswith("guests/vm1/console.log")]
    assert console and console[0].service == "udhcpc"
    api = [f for f in facts if f.origin.path.endswith("openstack_port_list_-f_json")]
    assert api and api[0].origin.command == "openstack port list -f json"


def test_real_parsers_read_the_real_sosreport():
    """With whatever parsers exist: nothing escapes, and what is read is cited with context."""
    s = Summary()
    t0 = time.perf_counter()
    facts = list(read([str(SAMPLE)], summary=s))
    elapsed = time.perf_counter() - t0
    assert elapsed < 30
    assert s.files == 366
    assert any(isinstance(f, HostInfo) and f.hostname == "compute4" for f in facts)
    if have_parser("ip_netns"):
        names = {f.name for f in facts if type(f).__name__ == "Namespace"}
        assert FIP in names
    if have_parser("ip_addr"):
        fip = [f for f in facts if type(f).__name__ == "Interface" and f.origin.namespace == FIP]
        assert fip and all(f.origin.host == "compute4" for f in fip)
    if have_parser("oslo_log"):
        errors = [f for f in facts if type(f).__name__ == "LogEvent" and f.level == "ERROR"
                  and f.origin.path.endswith("neutron-dhcp-agent.log.1")]
        assert errors


def test_a_sosreport_file_named_alone_keeps_its_context(fake_parsers):
    f = SAMPLE / "sos_commands" / "networking" / f"ip_netns_exec_{FIP}_ip_address_show"
    facts = [x for x in read([str(f)]) if isinstance(x, LogEvent)]
    assert facts[0].origin.host == "compute4" and facts[0].origin.namespace == FIP
    assert facts[0].params["ref_time"] == str(TAKEN)


def test_unparsed_file_range_counts_its_lines(fake_parsers):
    ps = SAMPLE / "sos_commands" / "process" / "ps_auxwwwm"
    [u] = [x for x in read([str(ps)]) if isinstance(x, Unparsed)]
    assert (u.origin.line, u.end_line) == (1, len(ps.read_bytes().splitlines()))
    assert u.origin.command == "ps auxwwwm"


def test_tarball_cut_between_two_members_is_reported(fake_parsers, tmp_path):
    # tarfile itself ends quietly here: the missing end-of-archive block tells
    tar = _sos_tar(tmp_path / "sos.tar", "w")
    with tarfile.open(tar) as tf:
        boundary = tf.getmembers()[20].offset
    cut = tmp_path / "cut.tar"
    cut.write_bytes(tar.read_bytes()[:boundary])
    facts = list(read([str(cut)]))
    broke = [f.reason for f in facts if isinstance(f, Unparsed) and f.origin.path == str(cut)]
    assert broke == ["the archive is damaged: the data ends early (truncated file or archive?)"]
    whole = [f for f in read([str(tar)]) if isinstance(f, Unparsed) and f.origin.path == str(tar)]
    assert whole == []
