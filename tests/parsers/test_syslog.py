"""A host's syslog and journal: what failed on the node (a unit, the kernel, Open vSwitch,
AppArmor), with the year and zone worked out from when the evidence was taken; dnsmasq's
lines go to the dnsmasq parser."""

from __future__ import annotations

import types
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import syslog as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "syslog"
SOS_TAKEN = 1644509957.0  # hotsos sos_commands/date/date_--utc: Thu Feb 10 16:19:17 UTC 2022
# fixture -> (command, when the evidence was taken)
CASES = {
    "hotsos/var/log/syslog.lines-1-5": (None, SOS_TAKEN),
    "hotsos/var/log/syslog.lines-410-432": (None, SOS_TAKEN),
    "hotsos/var/log/syslog.lines-775-812": (None, SOS_TAKEN),
    "hotsos/sos_commands/openvswitch/journalctl_--no-pager_--unit_ovs-vswitchd":
        ("journalctl --no-pager --unit ovs-vswitchd", SOS_TAKEN),
    "hotsos/sos_commands/openvswitch/journalctl_--no-pager_--unit_openvswitch":
        ("journalctl --no-pager --unit openvswitch", SOS_TAKEN),
    # the journal says it ends at Sun 2017-05-21 06:11:02 PDT
    "public/journalctl_dnsmasq_streisand-698":
        ("journalctl --unit dnsmasq.service --since yesterday --no-pager", 1495372262.0),
}


def run(name: str, text: str | None = None, command: str | None = None,
        ref_time: float | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    section = Section.from_text(text, F.Origin(path=name, line=1, command=command))
    section.ref_time = ref_time
    return list(P.parse(section))


def events(facts):
    return [f for f in facts if isinstance(f, F.LogEvent)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str, monkeypatch):
    # the expected facts are those of syslog alone; the dnsmasq handoff is tested below
    monkeypatch.setattr(P, "_dnsmasq_log", None)
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name][0], ref_time=CASES[name][1]) == expected


def test_apparmor_denials_are_a_signal_with_the_profile():
    ev = events(run("hotsos/var/log/syslog.lines-1-5", ref_time=SOS_TAKEN))
    assert len(ev) == 5 and {e.signal for e in ev} == {"apparmor-denied"}
    assert ev[0].params["profile"] == "/snap/snapd/14549/usr/lib/snapd/snap-confine"
    assert ev[0].service == "kernel" and ev[0].pid is None
    assert ev[0].time == 1644458550.0 and ev[0].time_inferred  # Feb 10 02:02:30, year 2022


def test_failed_unit_and_failing_daemon_are_kept_routine_lines_counted():
    facts = run("hotsos/var/log/syslog.lines-410-432", ref_time=SOS_TAKEN)
    ev = events(facts)
    kept = {(e.origin.line, e.service) for e in ev}
    assert (10, "systemd") in kept and (9, "ceph-osd") in kept
    assert (1, "systemd") not in kept  # "Started Session 367 of user ubuntu."
    assert ev[0].level is None  # syslog states no level: kept for what it says
    assert facts[-1].dropped == {"unknown": 13}


def test_levels_stated_in_the_message_are_read():
    ev = {e.origin.line: e for e in events(run("hotsos/var/log/syslog.lines-775-812",
                                               ref_time=SOS_TAKEN))}
    assert ev[5].service == "ovs-vsctl" and ev[5].level == "ERROR"  # ovs|...|ERR|
    assert ev[33].level == "WARNING"  # ovs|...|WARN|
    assert 1 not in ev  # systemd "Reached target Main User Target."


@pytest.mark.parametrize("message, level, logger", [
    ("WARNING:Unknown index 33 seen, reloading interface list", "WARNING", None),
    ("WARNING - keepalived was build for newer Linux 5.4.151", "WARNING", None),
    ("2022-02-10 16:18:11.227+0000: 1590: error : virNetSocketReadWire:1806 : End of file while "
     "reading data: Input/output error", "ERROR", None),
    ("2022-02-10 16:18:11.227 1590 ERROR neutron.agent.dhcp.agent [-] Failed reporting state!",
     "ERROR", "neutron.agent.dhcp.agent"),
    ("INFO neutron.agent.dhcp.agent [None req-1 admin admin] Synchronizing state", "INFO",
     "neutron.agent.dhcp.agent"),
])
def test_stated_level(message, level, logger):
    got = P._stated_level(message)
    assert (got[0], got[1]) == (level, logger)


def test_iso_and_journal_formats_and_continuations():
    text = ("2022-02-10T16:18:11.227123+00:00 net-02 neutron-dhcp-agent[1590]: 2022-02-10 "
            "16:18:11.227 1590 ERROR neutron.agent.dhcp.agent [req-1 - - - - -] Failed reporting "
            "state!: MessagingTimeout: Timed out\n"
            "2022-02-10T16:18:12+0000 net-02 libvirtd[1200]: Failed to connect socket to "
            "'/var/run/libvirt/libvirt-sock': No such file or directory\n"
            "2022-02-10T16:18:13+0000 net-02 python3[77]: Traceback (most recent call last):\n"
            "                                              File \"x.py\", line 1\n"
            "-- Reboot --\n")
    ev = events(run("journal", text, command="journalctl -o short-iso"))
    assert [e.signal for e in ev] == ["agent-report-failed", "libvirt-socket-missing", None]
    assert ev[0].service == "neutron-dhcp-agent" and ev[0].request_id == "req-1"
    assert ev[0].time == 1644509891.227123 and not ev[0].time_inferred
    assert ev[2].message.endswith('File "x.py", line 1')  # journalctl's indented continuation


def test_junk_and_binary_journal_files_are_unparsed_runs():
    facts = run("system.journal", "LPKSHHRH\x00\x00\x00\nxyz\x00\n")
    assert isinstance(facts[0], F.Unparsed) and "journalctl" in facts[0].reason
    facts = run("syslog", "Feb 10 02:02:30 h kernel: x\nnot syslog\nnor this\nFeb 10 02:02:31 h a: b\n")
    unparsed = [f for f in facts if isinstance(f, F.Unparsed)]
    assert [(u.origin.line, u.end_line) for u in unparsed] == [(2, 3)]


def test_dnsmasq_lines_are_handed_to_the_dnsmasq_parser(monkeypatch):
    calls = []

    def parse_message(message, origin, time, time_inferred, pid):
        calls.append((message, origin.line, time, time_inferred, pid))
        return [F.DnsmasqLogEvent(origin=origin, time=time, time_inferred=time_inferred, pid=pid,
                                  event="bind-failed", detail=message)]

    monkeypatch.setattr(P, "_dnsmasq_log", types.SimpleNamespace(parse_message=parse_message))
    facts = run("public/journalctl_dnsmasq_streisand-698", ref_time=1495372262.0)
    assert [c[1] for c in calls] == [3, 4]
    assert calls[1][0].startswith("dnsmasq: failed to create listening socket for 10.192.122.1")
    assert calls[1][2] == 1495371653.0 and calls[1][3] is True and calls[1][4] == 944
    assert sum(isinstance(f, F.DnsmasqLogEvent) for f in facts) == 2


def test_the_real_dnsmasq_parser_when_present():
    mod = pytest.importorskip("whynoip.parsers.dnsmasq_log")
    if not hasattr(mod, "parse_message"):
        pytest.skip("dnsmasq_log has no parse_message yet")
    facts = run("public/journalctl_dnsmasq_streisand-698", ref_time=1495372262.0)
    assert any(isinstance(f, F.DnsmasqLogEvent) and f.origin.line == 4 for f in facts)


def test_registry():
    assert parsers.for_path("sos/var/log/syslog") is P
    assert parsers.for_path("sos/var/log/messages-20220210") is P
    assert parsers.for_path("sos/sos_commands/logs/journalctl_--no-pager") is P
    assert parsers.for_command("journalctl -u neutron-dhcp-agent --no-pager") is P
    assert P.sniff((FIXTURES / "hotsos/var/log/syslog.lines-1-5").read_text())


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    assert isinstance(run("fuzz", text)[-1], F.LogSummary)


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
