"""Large files read by worker processes give the same facts, in the same order, with the
same counts, as read one by one; a worker that dies leaves its file to be read here."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest

from whynoip.evidence import read as R
from whynoip.evidence.read import Summary, read
from whynoip.facts import DhcpPacket, LogEvent

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
LAB = FIXTURES / "lab"


def _settle() -> None:
    """Workers are forked only from a process without other threads: let the last pool's
    housekeeping thread end."""
    deadline = time.monotonic() + 10
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.02)


def _both(paths: list[str], **kw):
    s1, s2 = Summary(), Summary()
    one = list(read(paths, summary=s1, jobs=1, **kw))
    _settle()
    two = list(read(paths, summary=s2, jobs=2, **kw))
    return one, s1, two, s2


@pytest.fixture
def pools(monkeypatch) -> list[bool]:
    """For each reading: whether it had worker processes."""
    started: list[bool] = []
    real = R._Workers.start

    def spy(events, jobs):
        w = real(events, jobs)
        started.append(w is not None and bool(w.procs))
        return w

    monkeypatch.setattr(R._Workers, "start", spy)
    return started


@pytest.fixture
def every_file_parallel(monkeypatch, pools):
    """Every file, however small, read by a worker."""
    monkeypatch.setattr(R, "PARALLEL_FILE", 0)
    monkeypatch.setattr(R, "PARALLEL_TOTAL", 0)
    monkeypatch.setattr(R, "FACT_BATCH", 7)  # several batches per file
    return pools


def _summary(s: Summary) -> tuple:
    return s.files, s.sections, dict(s.skipped), dict(s.facts_by_type), dict(s.parsers_used)


@pytest.mark.parametrize("case,ahead", [("healthy--default", 16 << 20), ("dnsmasq-unresponsive--ha", 0),
                                         ("disk-full--default", 2000)])
def test_lab_bundles_read_in_workers_give_the_same_facts(every_file_parallel, monkeypatch, case, ahead):
    # facts for later files kept in memory, in the temporary file, or past both (workers wait)
    monkeypatch.setattr(R, "AHEAD_BYTES", ahead)
    monkeypatch.setattr(R, "SPILL_BYTES", 1 << 30 if ahead else 3000)
    paths = [str(p) for p in sorted((LAB / case).iterdir())]
    one, s1, two, s2 = _both(paths)
    assert every_file_parallel == [False, True]
    assert one and two == one
    assert _summary(s2) == _summary(s1)


def test_every_parser_fixture_read_in_workers_gives_the_same_facts(every_file_parallel):
    # every format, binary and damaged files included: every kind of fact crosses to a worker and back
    one, s1, two, s2 = _both([str(FIXTURES / "parsers")])
    assert every_file_parallel == [False, True]
    kinds = {type(f).__name__ for f in one}
    assert {"DhcpPacket", "DnsmasqLogEvent", "LogEvent", "Unparsed", "ApiPort", "OvsFlow"} <= kinds
    assert two == one
    assert _summary(s2) == _summary(s1)


def _node_logs(tmp_path: Path, mb: int = 6) -> Path:
    """A node with two real logs of `mb` MB each (their lines repeated)."""
    node = tmp_path / "net1"
    src = LAB / "dnsmasq-unresponsive--default" / "net1"
    for rel in ("var/log/neutron/neutron-dhcp-agent.log",
                "var/log/neutron/dnsmasq/" + next((src / "var/log/neutron/dnsmasq").iterdir()).name + "/dhcp_dns_log"):
        text = (src / rel).read_bytes()
        out = node / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(text * (mb * (1 << 20) // len(text) + 1))
    (node / "etc").mkdir()
    (node / "etc" / "hostname").write_text("net1\n")
    return node


def test_large_files_go_to_workers_by_default(tmp_path, monkeypatch, pools):
    monkeypatch.setattr(R, "PARALLEL_TOTAL", 8 << 20)
    node = _node_logs(tmp_path)
    one, s1, two, s2 = _both([str(node)])
    assert pools == [False, True]  # jobs=1: none; jobs=2: the two large logs in workers
    assert two == one and _summary(s2) == _summary(s1)
    assert any(isinstance(f, LogEvent) for f in two)


@pytest.mark.parametrize("after", [0, 1, 3])
def test_a_worker_that_dies_leaves_its_file_to_be_read_here(every_file_parallel, monkeypatch, after):
    real = R._Reader.item
    count = {"pid": None, "n": 0}

    def dies_after(self, item):  # in a worker: send `after` facts of the first file, then die
        if count["pid"] != os.getpid():
            count.update(pid=os.getpid(), n=0)
        for fact in real(self, item):
            if count["n"] >= after and multiprocessing.parent_process() is not None:
                os._exit(3)
            count["n"] += 1
            yield fact

    monkeypatch.setattr(R, "FACT_BATCH", 1)
    monkeypatch.setattr(R._Reader, "item", dies_after)
    paths = [str(p) for p in sorted((LAB / "healthy--default").iterdir())]
    one, s1, two, s2 = _both(paths)
    assert every_file_parallel == [False, True]
    assert two == one and _summary(s2) == _summary(s1)
    assert any(isinstance(f, DhcpPacket) for f in two)


def test_giving_up_a_reading_stops_its_workers(every_file_parallel):
    paths = [str(p) for p in sorted((LAB / "healthy--default").iterdir())]
    _settle()
    facts = read(paths, jobs=2)
    next(facts)
    assert every_file_parallel == [True] and multiprocessing.active_children()
    facts.close()
    deadline = time.monotonic() + 10
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()
