"""systemd's view of the node's services: list-units tables, `systemctl status` of a dnsmasq
that failed to bind (with its journal tail), and is-active answers."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import systemctl as P
from whynoip.parsers import syslog

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "systemctl"
CASES = {
    "hotsos/sos_commands/systemd/systemctl_list-units": (None, None),
    "hotsos/sos_commands/systemd/systemctl_list-units_--failed": (None, None),
    # the unit failed at Sun 2022-02-13 09:25:59 UTC, "6ms ago"
    "public/systemctl_status_dnsmasq_warp-87": ("systemctl status dnsmasq", 1644744359.0),
    "public/systemctl_status_dnsmasq_pi-hole-487": ("systemctl status -l dnsmasq", None),
}


def run(name: str, text: str | None = None, command: str | None = None,
        ref_time: float | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    section = Section.from_text(text, F.Origin(path=name, line=1, command=command))
    section.ref_time = ref_time
    return list(P.parse(section))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str, monkeypatch):
    monkeypatch.setattr(syslog, "_dnsmasq_log", None)  # journal lines: syslog's facts alone
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name][0], ref_time=CASES[name][1]) == expected


def test_list_units():
    facts = run("hotsos/sos_commands/systemd/systemctl_list-units")
    assert len(facts) == 300 and all(isinstance(f, F.ServiceState) for f in facts)
    by = {f.name: f for f in facts}
    assert by["logrotate.timer"].state == "waiting"
    assert by["logrotate.timer"].detail == "loaded active waiting: Daily rotation of log files"
    assert by["neutron-dhcp-agent.service"].state == "running"
    assert by["neutron-dhcp-agent.service"].manager == "systemd"
    assert run("hotsos/sos_commands/systemd/systemctl_list-units_--failed") == []


def test_status_of_a_failed_dnsmasq_with_its_journal(monkeypatch):
    monkeypatch.setattr(syslog, "_dnsmasq_log", None)
    facts = run("public/systemctl_status_dnsmasq_warp-87", command="systemctl status dnsmasq",
                ref_time=1644744359.0)
    unit = facts[0]
    assert (unit.name, unit.state, unit.manager) == ("dnsmasq.service", "failed", "systemd")
    assert "Active: failed (Result: exit-code) since Sun 2022-02-13 09:25:59 UTC" in unit.detail
    logs = [f for f in facts if isinstance(f, F.LogEvent)]
    assert [f.origin.line for f in logs] == [9, 10, 11, 12, 13, 14]
    assert logs[0].service == "dnsmasq" and logs[0].pid == 3599
    assert logs[0].time == 1644744359.0 and logs[0].time_inferred


def test_status_of_an_older_systemd():
    (unit,) = run("public/systemctl_status_dnsmasq_pi-hole-487")
    assert (unit.name, unit.state) == ("dnsmasq.service", "running")
    assert "Main PID: 2734 (dnsmasq)" in unit.detail


def test_not_found_and_is_active():
    (f,) = run("x", "Unit neutron-dhcp-agent.service could not be found.\n",
               command="systemctl status neutron-dhcp-agent")
    assert (f.name, f.state) == ("neutron-dhcp-agent.service", "not-found")
    facts = run("x", "active\nfailed\n", command="systemctl is-active openvswitch-switch dnsmasq")
    assert [(f.name, f.state) for f in facts] == [("openvswitch-switch", "active"),
                                                  ("dnsmasq", "failed")]


def test_garbage_is_unparsed():
    facts = run("x", "System has not been booted with systemd as init system (PID 1). Can't operate.\n")
    assert isinstance(facts[0], F.Unparsed)


def test_registry():
    assert parsers.for_command("systemctl list-units --failed") is P
    assert parsers.for_command("systemctl status neutron-dhcp-agent") is P
    assert parsers.for_path("sos/sos_commands/systemd/systemctl_list-units") is P


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    run("fuzz", text)
    run("fuzz", text, command="systemctl is-active a b")


@given(st.lists(st.sampled_from([
    "● dnsmasq.service - dnsmasq", "     Loaded: loaded (/x; enabled)", "     Active: failed (x)",
    "", "Feb 13 09:25:59 KHOR dnsmasq[3599]: FAILED to start up", "  UNIT LOAD ACTIVE SUB DESCRIPTION",
    "  a.service loaded active running A", "Unit b.service could not be found.", "   └─1 /x",
]), max_size=25))
@settings(max_examples=300, deadline=None)
def test_any_mix_never_raises(lines):
    run("fuzz", "\n".join(lines))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
