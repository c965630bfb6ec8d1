"""A Neutron agent's log, read the way an operator would: the DHCP agent lost RabbitMQ,
failed to report its state, timed out on RPC, and came back; the DEBUG noise around it is
only counted, and every kept event carries its signal, its request id and its line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import oslo_log as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "oslo_log"
CASES = [
    "hotsos/neutron-dhcp-agent.log.1.lines-1-45",
    "hotsos/neutron-dhcp-agent.log.1.lines-1505-1840",
    "hotsos/neutron-l3-agent.log.lines-1-40",
    "public/var/log/neutron/dhcp-agent.log",
    "public/var/log/neutron/dhcp-agent.log.ursula-104",
]


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def events(facts):
    return [f for f in facts if isinstance(f, F.LogEvent)]


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_report_failure_folds_its_traceback_into_one_event():
    facts = run("hotsos/neutron-dhcp-agent.log.1.lines-1-45")
    ev = events(facts)
    assert [e.origin.line for e in ev] == [10, 43]
    failed = ev[0]
    assert failed.signal == "agent-report-failed"
    assert failed.level == "ERROR" and failed.pid == 224217
    assert failed.logger == "neutron.agent.dhcp.agent"
    assert failed.request_id == "req-ec612d37-4dba-44e1-a2b7-f72fa08c35e7"
    assert failed.service == "neutron-dhcp-agent"
    assert failed.message.count("\n") == 32  # lines 11..42, the exception-prefixed traceback
    assert failed.message.splitlines()[-1].startswith("oslo_messaging.exceptions.MessagingTimeout")
    assert "5c4d5e139a5a481ba8d5687f1525a0fe" in failed.params["reason"]
    summary = facts[-1]
    assert isinstance(summary, F.LogSummary)
    assert summary.records == 13 and summary.kept == 2 and summary.dropped == {"DEBUG": 11}
    assert summary.lines == 45


def test_restart_story_in_order():
    ev = events(run("hotsos/neutron-dhcp-agent.log.1.lines-1505-1840"))
    signals = [e.signal for e in ev if e.signal]
    assert signals[0] == "dhcp-sync-start"
    assert signals[1:13] == ["amqp-connection-refused"] * 12
    retries = [e.params["retry"] for e in ev if e.signal == "amqp-connection-refused"]
    assert retries == [f"{n}.0" for n in range(2, 26, 2)]
    assert signals.index("messaging-timeout") < signals.index("dhcp-sync-failed") \
        < signals.index("agent-revived") < signals.index("dhcp-sync-complete")
    rpc = next(e for e in ev if e.signal == "messaging-timeout")
    assert rpc.params == {"method": "get_active_networks_info", "wait": "21"}
    revived = next(e for e in ev if e.signal == "agent-revived")
    assert revived.level == "INFO"  # kept for its signature, not its level
    assert revived.request_id == "req-2191b871-1b8f-4582-bede-5a0c6986bc97"
    # the DEBUG "resync (*): [MessagingTimeout(...), 'Agent has just been revived']" that
    # follows only quotes reasons: it is counted, not kept
    assert sum(e.signal == "agent-revived" for e in ev) == 1
    sync = next(e for e in ev if e.signal == "dhcp-sync-start")
    assert sync.request_id is None and sync.time == 1644446326.407  # 2022-02-09 22:38:46.407


def test_raw_continuation_lines_belong_to_their_record():
    summary = run("hotsos/neutron-l3-agent.log.lines-1-40")[-1]
    # 40 lines, 13 records: the keepalived configuration printed without prefix is folded
    assert (summary.lines, summary.records, summary.dropped) == (40, 13, {"DEBUG": 13})


def test_havana_trace_lines_and_old_logger_names():
    ev = events(run("public/var/log/neutron/dhcp-agent.log"))
    assert len(ev) == 1
    assert ev[0].signal == "dhcp-action-failed" and ev[0].params == {"action": "enable"}
    assert ev[0].message.count("\n") == 7
    ev = events(run("public/var/log/neutron/dhcp-agent.log.ursula-104"))
    assert ev[0].signal == "rootwrap-failed"
    assert ev[0].params == {"path": "dhcp_release", "filter": "dhcp_release"}
    assert ev[0].level == "ERROR"  # a traceback without its header is still an error


@pytest.mark.parametrize("path, service", [
    ("/var/log/neutron/neutron-dhcp-agent.log", "neutron-dhcp-agent"),
    ("sos/var/log/neutron/neutron-openvswitch-agent.log.2", "neutron-openvswitch-agent"),
    ("/var/log/neutron/dhcp-agent.log", "neutron-dhcp-agent"),  # RHEL / TripleO names
    ("/var/log/containers/neutron/server.log.1", "neutron-server"),
    ("/var/log/nova/nova-compute.log", "nova-compute"),
    ("/var/log/quantum/dhcp-agent.log", "quantum-dhcp-agent"),
])
def test_service_from_the_path(path, service):
    assert P.service_from_path(path) == service


def test_service_from_the_command_or_the_logger():
    text = "2022-02-09 22:38:46.407 1590 WARNING neutron.agent.dhcp.agent [-] Synchronizing state\n"
    facts = P.parse(Section.from_text(text, F.Origin(
        path="-", command="tail -n 200 /var/log/neutron/neutron-dhcp-agent.log")))
    assert next(iter(facts)).service == "neutron-dhcp-agent"
    ev = run("-", text)[0]
    assert ev.service == "neutron-dhcp-agent"  # from the logger, when nothing else says


@pytest.mark.parametrize("rest, request_id, instance, message", [
    ("[req-ec612d37-4dba-44e1-a2b7-f72fa08c35e7 - - - - -] Failed", "req-ec612d37-4dba-44e1-a2b7-"
     "f72fa08c35e7", None, "Failed"),
    ("[None req-0b8e3b6c-1f0e-4c6e-9d8d-5d9a6c1f2e3a admin admin] Trigger", "req-0b8e3b6c-1f0e-4c6e-"
     "9d8d-5d9a6c1f2e3a", None, "Trigger"),
    ("[req-aaaaaaaa-1111-2222-3333-444444444444 req-bbbbbbbb-1111-2222-3333-444444444444 u p - d d] "
     "[instance: d892d127-6381-4f17-a019-7581c3bf10ad] Timeout",
     "req-bbbbbbbb-1111-2222-3333-444444444444", "d892d127-6381-4f17-a019-7581c3bf10ad", "Timeout"),
    ("[-] Synchronizing state", None, None, "Synchronizing state"),
    ("no context", None, None, "no context"),
])
def test_request_context_forms(rest, request_id, instance, message):
    assert P.split_context(rest) == (request_id, instance, message)


def test_a_log_cut_in_a_traceback_starts_with_an_unparsed_run():
    text = ("    raise oslo_messaging.MessagingTimeout(\n"
            "oslo_messaging.exceptions.MessagingTimeout: Timed out\n"
            "2022-02-09 22:38:46.407 1590 INFO neutron.agent.dhcp.agent [-] Synchronizing state\n")
    facts = run("x.log", text)
    assert isinstance(facts[0], F.Unparsed)
    assert (facts[0].origin.line, facts[0].end_line) == (1, 2)
    assert facts[1].signal == "dhcp-sync-start" and facts[1].origin.line == 3


def test_lab_logs_that_repeat_the_context_on_traceback_lines_fold_too():
    # whynoip's lab writes every traceback line with the full prefix, context included
    head = "2026-11-21 05:52:11.123 4242 ERROR neutron.agent.dhcp.agent [req-1 - - - - -] "
    text = (head + "Unable to enable dhcp for e134ba9d-0187-4cfe-b42e-29368826cef5.\n"
            + head + "Traceback (most recent call last):\n"
            + head + '  File "x.py", line 1, in f\n'
            + head + "RuntimeError: Exit code: 1; Stdin: ; Stdout: ; Stderr: boom\n"
            + head + "Failed reporting state!\n")
    ev = events(run("neutron-dhcp-agent.log", text))
    assert [e.signal for e in ev] == ["dhcp-action-failed", "agent-report-failed"]
    assert ev[0].message.count("\n") == 3
    assert ev[0].params["network"] == "e134ba9d-0187-4cfe-b42e-29368826cef5"


def test_debug_line_with_a_signature_is_kept_and_other_debug_is_counted():
    text = ("2022-02-10 16:00:00.000 7 DEBUG nova.servicegroup.drivers.db [-] Seems service "
            "nova-compute on host compute-1 is down. Last heartbeat was 2022-02-10 15:58:00. "
            "Elapsed time is 120.0 is_up /usr/lib/python3/dist-packages/nova/servicegroup/"
            "drivers/db.py:80\n"
            "2022-02-10 16:00:00.001 7 DEBUG nova.compute.manager [-] Running periodic task\n")
    facts = run("nova-conductor.log", text)
    assert events(facts)[0].signal == "nova-compute-down"
    assert events(facts)[0].params["host"] == "compute-1"
    assert facts[-1].dropped == {"DEBUG": 1}


def test_registry_routes_service_logs_here():
    assert parsers.for_path("sos/var/log/neutron/neutron-dhcp-agent.log") is P
    assert parsers.for_path("/var/log/neutron/dhcp-agent.log") is P
    assert parsers.for_path("/var/log/nova/nova-compute.log.1") is P
    assert parsers.for_path("/var/log/kolla/neutron/dnsmasq.log") is not P
    head = (FIXTURES / CASES[0]).read_text()[:4096]
    assert P.sniff(head)


def test_a_big_log_streams_and_counts(tmp_path):
    # a generator section: the parser must not need the whole log in memory
    line = ('2022-02-04 10:54:45.826 224217 DEBUG oslo_concurrency.lockutils [-] Lock '
            '"_check_child_processes" acquired by "x" :: waited 0.000s inner /a.py:1')
    n = 20000

    def lines():
        for i in range(n):
            yield line
        yield "2022-02-04 10:54:46.000 224217 ERROR neutron.agent.dhcp.agent [-] Failed reporting state!"

    facts = list(P.parse(Section(origin=F.Origin(path="neutron-dhcp-agent.log", line=1),
                                 lines=lines)))
    assert len(facts) == 2
    assert facts[0].signal == "agent-report-failed" and facts[0].origin.line == n + 1
    assert facts[1].dropped == {"DEBUG": n} and facts[1].lines == n + 1


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    facts = run("fuzz.log", text)
    assert isinstance(facts[-1], F.LogSummary)


@given(st.lists(st.sampled_from([
    "2022-02-09 22:38:46.407 1590 INFO neutron.agent.dhcp.agent [-] Synchronizing state",
    "2022-02-09 22:38:46.444 1590 ERROR oslo.messaging._drivers.impl_rabbit [req-1 - - - - -] x",
    "2022-02-09 22:38:46.444 1590 ERROR oslo.messaging._drivers.impl_rabbit Traceback",
    "2022-02-09 22:38:46.444 1590 TRACE neutron.agent.dhcp_agent   File",
    "    raw continuation", "", "2022-02-09T22:38:46 1 DEBUG x [", "2022-13-45 99:99:99.1 1 ERROR x y",
]), max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_mix_of_record_shapes_never_raises(lines):
    facts = run("fuzz.log", "\n".join(lines))
    summary = facts[-1]
    assert summary.kept + sum(summary.dropped.values()) == summary.records


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz.log", data.decode("utf-8", errors="replace"))


def test_the_labs_own_agent_log_reads_back(tmp_path):
    # the lab's agents write oslo.log-style files; their traceback lines repeat the context
    oslolog = pytest.importorskip("whynoip.lab.oslolog")
    path = tmp_path / "neutron-dhcp-agent.log"
    log = oslolog.OsloLogger(path, "neutron.agent.dhcp.agent")
    log.info("Synchronizing state")
    try:
        raise RuntimeError("Exit code: 1; Stdin: ; Stdout: ; Stderr: boom")
    except RuntimeError:
        log.exception("Unable to enable dhcp for e134ba9d-0187-4cfe-b42e-29368826cef5.",
                      request_id=oslolog.new_request_id())
    log.debug("noise")
    section = Section.from_text(path.read_text(), F.Origin(path=str(path), line=1))
    facts = list(P.parse(section))
    ev = events(facts)
    assert [e.signal for e in ev] == ["dhcp-sync-start", "dhcp-action-failed"]
    assert ev[1].message.splitlines()[-1].startswith("RuntimeError: Exit code: 1")
    assert ev[1].request_id.startswith("req-") and ev[1].service == "neutron-dhcp-agent"
    assert facts[-1].dropped == {"DEBUG": 1}
