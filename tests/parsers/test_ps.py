"""Process listings: every row a Process, every dnsmasq also a DnsmasqProcess. Fixtures:
the capture script's own processes (ps -ef, auxwww, alxwww, -eo) and the real sample
node's sosreport listings (LXD's dnsmasq, no Neutron one)."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import ps as P
from whynoip.parsers._dnsmasq_cmdline import parse_cmdline

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "ps"
NET = "8d1f6b4e-2c3a-4f5e-9b7d-0c41a2e7d3b9"
SOS = ["hotsos/sos_commands/process/ps_alxwww", "hotsos/sos_commands/process/ps_auxwwwm"]
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.is_file() and not p.name.endswith(".json")) + SOS


def run(name: str, text: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1))))


def dnsmasqs(name: str) -> list[F.DnsmasqProcess]:
    return [f for f in run(name) if isinstance(f, F.DnsmasqProcess)]


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


@pytest.mark.parametrize("name", CASES)
def test_every_row_is_read(name: str):
    assert not [f for f in run(name) if isinstance(f, F.Unparsed)]


@pytest.mark.parametrize("name", ["ps_-ef", "ps_auxwww", "ps_alxwww", "ps_-eo"])
def test_neutrons_dnsmasq_in_every_listing(name: str):
    (d,) = dnsmasqs(name)
    assert d.pid == 19627 and d.ppid in (1, None) and d.network_id == NET  # ps aux has no PPID
    assert d.user in ("nobody", "65534")
    assert d.hosts_file == f"/var/lib/neutron/dhcp/{NET}/host" and d.leases_file == f"/var/lib/neutron/dhcp/{NET}/leases"
    assert d.bind_mode == "bind-dynamic" and d.lease_max == 512 and d.log_dhcp
    assert d.log_facility == f"/var/log/neutron/dnsmasq/{NET}/dhcp_dns_log"
    assert d.dhcp_ranges[0] == "set:subnet-4c7e1d2a-9f3b-4a8e-b6d5-2e1f0a9c8b7d,10.8.1.0,static,255.255.255.0,86400s"
    assert d.state in (None, "S")


def test_a_stopped_dnsmasq_shows_state_t():
    (d,) = dnsmasqs("ps_aux-stopped")
    assert d.state == "T"


def test_grizzly_parent_and_its_script_helper():
    parent, child = dnsmasqs("ps_-ef-grizzly")
    assert child.ppid == parent.pid and (parent.user, child.user) == ("nobody", "root")
    assert parent.network_id == NET and parent.interface == "tap3f8e2a61-c4"
    assert parent.bind_mode == "bind-interfaces" and parent.dhcp_ranges == ["set:tag0,10.8.1.0,static,120s"]
    assert parent.leases_file is None and not parent.log_dhcp and parent.conf_file == ""


@pytest.mark.parametrize("name", SOS)
def test_lxds_dnsmasq_on_the_real_node_is_no_neutron_one(name: str):
    (d,) = dnsmasqs(name)
    assert d.pid == 19086 and d.network_id is None and d.user in ("lxd", "998")
    assert d.interface == "lxdbr0" and d.dhcp_ranges == ["10.50.99.2,10.50.99.254,1h"]
    assert d.conf_file == "/var/snap/lxd/common/lxd/networks/lxdbr0/dnsmasq.raw" and d.bind_mode == "bind-interfaces"


def test_ps_m_thread_rows_give_the_process_its_state():
    procs = {p.pid: p for p in run(SOS[1]) if isinstance(p, F.Process)}
    assert procs[1].state == "Ss" and procs[1].command == "/sbin/init" and procs[1].name == "init"
    assert procs[2].name == "kthreadd"
    assert 19086 in procs and procs[19086].state == "Ss"


def test_cmdline_short_options_and_separate_values():
    f = parse_cmdline(["dnsmasq", "-k", "-i", "virbr0", "--dhcp-range", "192.168.122.2,192.168.122.254",
                       "-x", "/run/d.pid", "--log-queries", "--conf-file"])
    assert (f["interface"], f["dhcp_ranges"], f["pid_file"], f["conf_file"]) == (
        "virbr0", ["192.168.122.2,192.168.122.254"], "/run/d.pid", "")


def test_bad_rows():
    facts = run("x", "garbage before\n  PID TTY          TIME CMD\n  abc pts/0 00:00:00 bash\n    7 pts/0 00:00:00 bash\n")
    assert [type(f).__name__ for f in facts] == ["Unparsed", "Unparsed", "Process"]
    assert facts[2].pid == 7 and facts[2].name == "bash"


def test_registry_and_sniff():
    assert parsers.for_path("sosreport-x/sos_commands/process/ps_auxwwwm") is P
    assert parsers.for_command("ps -ef") is P
    assert P.sniff((FIXTURES / "ps_alxwww").read_text()) and P.sniff((FIXTURES / SOS[1]).read_text())


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str):
    run("fuzz", text)
    run("fuzz", "UID PID PPID C STIME TTY TIME CMD\n" + text)


@pytest.mark.parametrize("name", ["ps_-ef", "ps_auxwww"])
def test_rows_without_their_header_read_as_with_it(name: str):
    # `ps -ef | grep [d]nsmasq`: grep drops the header; the row's shape tells the columns
    def key(facts):
        return [(type(f).__name__, {k: v for k, v in msgspec.structs.asdict(f).items() if k != "origin"},
                 f.origin.text) for f in facts if not isinstance(f, F.Unparsed)]
    with_header = [f for f in run(name) if "dnsmasq" in f.origin.text]
    without = run(f"{name}-grep")
    assert without and key(without) == key(with_header)
    assert P.sniff((FIXTURES / f"{name}-grep").read_text())


def test_a_line_of_prose_is_not_a_headerless_row():
    assert P.headerless_columns("root 53 1 0 06:19 then the agent restarted") is None
    assert [type(f) for f in run("x", "nobody 53 1 dnsmasq --no-hosts\n")] == [F.Unparsed]
