"""The broker's side of a bus outage: a real RabbitMQ 3.10 raising and clearing its disk
alarm on this machine, and the older layouts (3.x report blocks, 3.7 lager, 3.9 `[warn]`)
from public threads and RabbitMQ's own guides."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import rabbitmq_log as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "rabbitmq_log"
CASES = [
    "rabbit-3.10-disk-alarm.log",
    "public/rabbit-3.6-helm-charts-2325.log",
    "public/rabbit-3.6-issue-880.log",
    "public/rabbit-3.7-issue-1986.log",
    "public/rabbit-3.9-nixpkgs-132416.log",
    "public/rabbit-2012-partitions-docs.log",
    "public/rabbit-2012-disk-alarms-docs.log",
]


def run(name: str, text: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1))))


def signals(facts):
    return [(f.origin.line, f.signal) for f in facts if isinstance(f, F.LogEvent)]


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_captured_disk_alarm_set_then_cleared():
    facts = run("rabbit-3.10-disk-alarm.log")
    assert signals(facts) == [(283, None), (310, "disk-free-insufficient"), (311, "disk-alarm-set"),
                              (319, "disk-alarm-cleared"), (320, "disk-alarm-cleared")]
    ev = {f.origin.line: f for f in facts if isinstance(f, F.LogEvent)}
    assert ev[310].level == "INFO"  # an [info] line kept for its signature
    assert ev[310].params == {"free_bytes": "85321617408", "limit_bytes": "1000000000000000"}
    assert ev[311].params == {"node": "wnp-log@localhost"} and ev[311].service == "rabbitmq"
    # the 3.10 banner repeats the prefix on each line: one event holds all of it
    assert ev[311].message.splitlines()[-2] == "*** Publishers will be blocked until this alarm clears ***"
    assert ev[311].time < ev[319].time
    summary = facts[-1]
    assert summary.lines == 382 and summary.kept == 5 and summary.dropped == {"INFO": 326}


def test_old_report_blocks_run_to_the_next_header():
    facts = run("public/rabbit-3.6-helm-charts-2325.log")
    assert signals(facts) == [(1, "disk-free-insufficient"), (11, None)]
    crash = facts[1]
    assert crash.level == "ERROR" and crash.message.startswith("** gen_event handler rabbit_alarm")
    assert crash.message.count("\n") == 8  # the nine lines of the block (12-20)
    assert crash.time == 1511173805.0  # 20-Nov-2017::10:30:05
    part = run("public/rabbit-2012-partitions-docs.log")[0]
    assert part.signal == "network-partition" and part.params == {"peer": "hare@smacmullen"}


def test_lager_and_warn_levels():
    ev = run("public/rabbit-3.7-issue-1986.log")[0]
    assert (ev.level, ev.signal, ev.params) == ("WARNING", "disk-alarm-set", {"node": "rabbit@localhost"})
    assert ev.message.count("\n") == 4  # raw continuation lines of a lager record
    facts = run("public/rabbit-3.9-nixpkgs-132416.log")
    assert signals(facts) == [(3, "disk-free-insufficient"), (4, "disk-alarm-set")]
    assert facts[1].level == "WARNING" and facts[1].params == {"node": "rabbit@machine"}


def test_disk_monitoring_switched_off_is_a_signal():
    facts = run("public/rabbit-2012-disk-alarms-docs.log")
    assert signals(facts) == [(4, "disk-monitor-disabled")]
    assert facts[-1].dropped == {"INFO": 1}


def test_inconsistent_cluster_at_boot():
    # the BOOT FAILED wording quoted in RabbitMQ clustering write-ups, in a 3.7 layout
    text = ("2020-05-18 06:55:37.324 [error] <0.341.0> BOOT FAILED\n"
            "{error,{inconsistent_cluster,\"Node 'rabbit@net-02' thinks it's clustered with node "
            "'rabbit@net-01', but 'rabbit@net-01' disagrees\"}}\n")
    ev = run("rabbit@net-02.log", text)[0]
    assert ev.signal == "inconsistent-cluster"
    assert ev.params == {"node": "rabbit@net-02", "peer": "rabbit@net-01"}


def test_not_a_rabbit_log_is_unparsed_not_dropped():
    facts = run("x.log", "hello\nworld\n")
    assert isinstance(facts[0], F.Unparsed) and (facts[0].origin.line, facts[0].end_line) == (1, 2)


def test_registry():
    assert parsers.for_path("sos/var/log/rabbitmq/rabbit@net-02.log") is P
    assert parsers.for_path("/var/log/rabbitmq/rabbit@net-02.log.1") is P
    for name in CASES:
        assert P.sniff((FIXTURES / name).read_text()[:4096]), name


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    assert isinstance(run("fuzz", text)[-1], F.LogSummary)


@given(st.lists(st.sampled_from([
    "=INFO REPORT==== 8-Jul-2016::08:32:17 ===", "=ERROR REPORT==== 31-Feb-2016::99:32:17 ===",
    "disk resource limit alarm set on node 'rabbit@x'.", "",
    "2019-04-17 19:46:29.300 [warning] <0.298.0> x", "2021-08-02 13:45:54.292688+00:00 [warn] <0.291.0>",
    "2021-08-02 13:45:54.292688+00:00 [bogus] <0.291.0> y", "***",
]), max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_mix_of_record_shapes_never_raises(lines):
    facts = run("fuzz", "\n".join(lines))
    summary = facts[-1]
    assert summary.kept + sum(summary.dropped.values()) == summary.records


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
