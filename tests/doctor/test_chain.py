"""The doctor reads a control-plane cascade as one chain: on the lab's bundles collected
with the RabbitMQ bus (tests/fixtures/make_lab_fixtures.py, `--bus` cases), the first cause
comes first, each step has its time, the guest left without an IP ends it, the fixes come in
the order that recovers the cloud, and clocks that disagree are noted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from whynoip import facts as F
from whynoip.diagnose import _clock_offsets, diagnose
from whynoip.evidence.read import read
from whynoip.model import build

BUNDLES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"


def run(case: str):
    return diagnose(list(read([str(p) for p in sorted((BUNDLES / case).iterdir())])))


def chain_of(d, root: str) -> dict:
    (ch,) = [c for c in d.chains if c["root"] == root]
    return ch


def test_disk_full_chain_runs_from_the_disk_to_the_guest_without_an_ip():
    d = run("disk-full--bus")
    ch = chain_of(d, "disk-full")
    ids = [s["finding"] for s in ch["steps"]]
    assert ids[0] == "disk-full"
    for before, after in (("disk-full", "rabbitmq-disk-alarm"), ("rabbitmq-disk-alarm", "dhcp-agent-down"),
                          ("dhcp-agent-down", "host-entry-missing")):
        assert ids.index(before) < ids.index(after), ids
    depth = {s["finding"]: s["depth"] for s in ch["steps"]}
    assert depth["disk-full"] < depth["rabbitmq-disk-alarm"] < depth["dhcp-agent-down"] < depth["host-entry-missing"]
    assert all(s["time"] for s in ch["steps"] if s["finding"] in ("disk-full", "rabbitmq-disk-alarm",
                                                                   "dhcp-agent-down")), ch["steps"]
    assert [g["guest"] for g in ch["no_ip"]] == ["vm3"]
    fixes = "\n".join(ch["fix"])
    # free the disk, then the alarm, then the agents
    assert fixes.index("du -xsh") < fixes.index("alarm clears") < fixes.index("restart neutron-dhcp-agent")


def test_disk_alarm_with_space_left_says_the_limit_is_wrong():
    d = run("rabbitmq-disk-alarm--bus")
    top = d.findings[0]
    assert top.id == "rabbitmq-disk-alarm" and top.root_cause
    assert "set_disk_free_limit" in top.fix[0], top.fix
    assert "disk-full" not in {f.id for f in d.findings}, "the disk is not full: the limit was raised"


def test_cluster_chain_names_the_nodes_and_ends_without_an_ip():
    d = run("rabbitmq-cluster-inconsistent--bus")
    top = d.findings[0]
    assert top.id == "rabbitmq-cluster-inconsistent"
    assert "rabbit@net1" in top.title and "rabbit2@net1" in top.title
    ch = chain_of(d, top.id)
    assert "rabbitmq-unreachable" in [s["finding"] for s in ch["steps"]]
    assert ch["no_ip"]


def test_clock_skew_notes_the_offset_and_explains_the_dead_agent():
    d = run("clock-skew--bus")
    top = d.findings[0]
    assert top.id == "clock-skew" and top.severity == "critical"
    dead = next(f for f in d.findings if f.id == "dhcp-agent-down")
    assert dead.caused_by == ["clock-skew"] and not dead.root_cause
    (off,) = d.clock_offsets
    assert off["host"] == "net1" and -4000 < off["offset"] < -3590, off
    assert "behind" in off["text"]


def test_hosts_whose_date_disagrees_are_noted():
    facts = [F.HostInfo(origin=F.Origin(path=f"{h}/sos_commands/date/date", host=h), hostname=h, time=t)
             for h, t in (("net1", 1_000_000.0), ("cmp1", 1_000_002.0), ("cmp2", 1_000_000.0 - 900))]
    offsets = _clock_offsets(build(facts))
    assert [(o["host"], round(o["offset"])) for o in offsets] == [("cmp2", -900)]


def test_the_text_report_shows_the_chain_with_times_and_the_recovery_order():
    cp = subprocess.run([sys.executable, "-m", "whynoip.cli", "diagnose", str(BUNDLES / "disk-full--bus")],
                        capture_output=True, text=True, timeout=120, env={"COLUMNS": "250", "PATH": "/usr/bin:/bin"})
    assert cp.returncode == 1, cp.stderr
    chain = cp.stdout.split("\nChain", 1)[1].split("\nFindings", 1)[0]
    lines = chain.splitlines()
    assert "Z  disk-full:" in lines[1], chain
    assert any("└─> rabbitmq-disk-alarm:" in line and "Z  " in line for line in lines), chain
    assert any("└─> vm3 gets no IP" in line for line in lines), chain
    assert "fix, in the order that recovers the cloud:" in chain
