"""The lab's control plane over a real RabbitMQ (`lab up --bus rabbitmq`) and the faults
that start there: build, see a new guest get its IP, break the bus, see a new guest get
none (or the fault's own symptom), check what the broker, the agents and neutron-server
wrote, heal, see a new guest get its IP again. Last, the operator's story end to end:
the disk alarm, a new guest, collect, diagnose, the chain from the alarm to the guest.

One lab with a private broker serves the whole module (faults are healed between tests):
starting RabbitMQ takes seconds, not the embedded bus's milliseconds."""

from __future__ import annotations

import calendar
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from whynoip.lab import broker, faults, sh
from whynoip.lab.lab import Lab

from ..conftest import Log, agent_log

pytestmark = pytest.mark.lab

BUS_ONLY = ("rabbitmq-disk-alarm", "rabbitmq-unreachable", "rabbitmq-cluster-inconsistent", "clock-skew")


def whynoip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "whynoip.cli", *args], capture_output=True, text=True, timeout=300)


def server_log(lab: Lab) -> Log:
    return Log(lab.paths.neutron_log(lab.server_node, "neutron-server"))


def broker_log(lab: Lab) -> Log:
    return Log(lab.broker().log_file)


def host_file(lab: Lab) -> str:
    return Path(lab.dhcp_servers()[0]["host_file"]).read_text()


def dhcp_agent_alive(lab: Lab) -> bool:
    return all(a["alive"] for a in lab.cp.agents() if a["binary"] == "neutron-dhcp-agent")


class BusLab:
    """The module's lab; rebuilt when a test leaves it broken, so one failure stays one."""

    def __init__(self, factory):
        self.factory = factory
        self.lab = self._fresh()
        self.n = 0

    def _fresh(self) -> Lab:
        lab = self.factory("default", prefix="rq", bus="rabbitmq")
        assert lab.dhcp("vm1", capture=False).ok, "the new lab's guest gets no IP"
        return lab

    def new_guest(self) -> str:
        self.n += 1
        name = f"new{self.n}"
        self.lab.add_guest(name)
        return name

    def restore(self) -> None:
        lab = self.lab
        if faults.active(lab):
            faults.heal(lab)
        if not lab.dhcp("vm1", capture=False).ok:
            lab.down()
            self.lab = self._fresh()
            raise AssertionError("vm1 gets no IP after heal")


@pytest.fixture(scope="module")
def bus_lab(module_lab_factory):
    return BusLab(module_lab_factory)


@pytest.fixture
def lab(bus_lab):
    yield bus_lab.lab
    bus_lab.restore()


def heals_with_a_new_guest(bus_lab: BusLab, *during: str) -> str:
    """Heal; the guests created during the fault get their IP now (the agents resynced) and
    so does a guest created now (the control plane works again)."""
    assert faults.heal(bus_lab.lab), "heal found nothing to undo"
    for g in during:
        assert bus_lab.lab.dhcp(g, capture=False).ok, f"{g}, created during the fault, gets no IP after heal"
    g = bus_lab.new_guest()
    a = bus_lab.lab.dhcp(g, capture=False)
    assert a.ok, f"{g} gets no IP after heal"
    return g


def wait_in(log: Log, needle: str, timeout: float = 8) -> str:
    deadline = time.monotonic() + timeout
    while needle not in log.new():
        assert time.monotonic() < deadline, f"{needle!r} never came in {log.path}"
        time.sleep(0.2)
    return log.new()


# --- the bus itself ---------------------------------------------------------------------------

def test_up_with_rabbitmq(lab, bus_lab):
    st = lab.status()
    bus = st["bus"]
    assert bus["kind"] == "rabbitmq" and sh.pid_alive(bus["pid"])
    assert Path(bus["log_file"]).is_file()
    assert "Server startup complete" in Path(bus["log_file"]).read_text()
    # the broker listens on loopback only, on its own port, and the nodes' config points there
    ss = sh.out(["ss", "-Hltnp", f"sport = :{bus['port']}"])
    assert f"127.0.0.1:{bus['port']}" in ss and "beam" in ss, ss
    conf = (lab.paths.node_root("cmp1") / "etc/neutron/neutron.conf").read_text()
    assert f"@127.0.0.1:{bus['port']}/" in conf
    assert broker.load_state(lab.paths)["nodes"]["rabbit"]["nodename"] == f"wnp-{lab.name}-rabbit@localhost"
    # casts travel over it: a new port reaches dnsmasq
    g = bus_lab.new_guest()
    assert lab.dhcp(g, capture=False).ok
    assert "Connected to AMQP server on 127.0.0.1:" in agent_log(lab).path.read_text()
    assert all(a["alive"] for a in st["agents"])
    # the broker's data and the agent's state share the network node's small /var/lib
    df = sh.out(["df", "--output=target", str(lab.broker().mnesia_base), str(lab.paths.dhcp_dir("net1", "x").parent)])
    assert len(set(df.splitlines()[1:])) == 1, df


def test_bus_faults_need_the_rabbitmq_bus(lab_factory):
    plain = lab_factory("default", prefix="rq")
    assert plain.status()["bus"]["kind"] == "embedded"
    for fid in BUS_ONLY:
        with pytest.raises(Exception, match="needs the lab's RabbitMQ bus"):
            faults.inject(plain, fid)
    r = whynoip("lab", "fault", "rabbitmq-disk-alarm", "--name", plain.name)
    assert r.returncode == 2 and r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and "--bus rabbitmq" in r.stderr, r.stderr
    assert faults.active(plain) == []


# --- the faults ---------------------------------------------------------------------------------

def test_rabbitmq_disk_alarm(lab, bus_lab):
    blog, alog, slog = broker_log(lab), agent_log(lab), server_log(lab)
    faults.inject(lab, "rabbitmq-disk-alarm")
    assert "disk resource limit alarm set" in blog.new()
    assert "Free disk space is insufficient" in blog.new()
    g = bus_lab.new_guest()
    assert not lab.dhcp(g, capture=False).ok, "a port created under the alarm never reaches dnsmasq"
    assert lab.cp.port(lab.cp.instance(g)["port_id"]).mac not in host_file(lab)
    assert lab.dhcp("vm1", capture=False).ok, "dnsmasq keeps serving what it knows"
    assert not dhcp_agent_alive(lab)
    text = alog.new()
    assert "The broker has blocked the connection" in text
    assert "Failed reporting state!" in text and "MessagingTimeout" in text
    assert re.search(r"Agent healthcheck: found \d+ dead agents out of \d+", slog.new())
    alog = agent_log(lab)
    heals_with_a_new_guest(bus_lab, g)
    assert "disk resource limit alarm cleared" in blog.new()
    wait_in(alog, "Agent has just been revived. Scheduling full sync")
    wait_in(alog, "Synchronizing state")


@pytest.mark.parametrize("variant", ["stopped", "killed"])
def test_rabbitmq_unreachable(lab, bus_lab, variant, tmp_path):
    port = lab.status()["bus"]["port"]
    alog = agent_log(lab)
    faults.inject(lab, "rabbitmq-unreachable", variant=variant)
    assert not lab.broker().pid and not broker.port_open(port)
    g = bus_lab.new_guest()
    assert not lab.dhcp(g, capture=False).ok
    text = alog.new()
    assert re.search(rf"AMQP server on 127\.0\.0\.1:{port} is unreachable: .+\. Trying again in 1 seconds\.", text)
    assert not dhcp_agent_alive(lab)
    alog = agent_log(lab)
    heals_with_a_new_guest(bus_lab, g)
    assert lab.broker().port == port, "the broker comes back on its port"
    wait_in(alog, f"Reconnected to AMQP server on 127.0.0.1:{port}")
    wait_in(alog, "Synchronizing state")
    if variant == "killed":  # the doctor, after the outage: a past one, not the state now
        r = whynoip("lab", "collect", "-o", str(tmp_path / "bundle"), "--name", lab.name)
        assert r.returncode == 0, r.stderr
        obj = json.loads(subprocess.run([sys.executable, "-m", "whynoip.cli", "diagnose", str(tmp_path / "bundle"),
                                         "-f", "json"], capture_output=True, text=True, timeout=120).stdout)
        (f,) = [f for f in obj["findings"] if f["id"] == "rabbitmq-unreachable"]
        assert f["severity"] == "warning" and "(reconnected by " in f["title"], f
        assert any("Reconnected to AMQP server" in e["text"] for e in f["evidence"])
        assert not obj["verdict"].startswith("rabbitmq-unreachable"), obj["verdict"]


def test_rabbitmq_cluster_inconsistent(lab, bus_lab):
    log = broker_log(lab)
    faults.inject(lab, "rabbitmq-cluster-inconsistent")
    text = log.new()
    # the real refusal of RabbitMQ 3.10 (Debian 12), not an imitation
    assert "inconsistent_cluster" in text
    assert re.search(r"thinks it's clustered with node '?wnp-\w+-rabbit2@localhost'?, but", text)
    assert not lab.broker().pid
    assert lab.broker("rabbit2").pid, "the reset peer runs alone"
    g = bus_lab.new_guest()
    assert not lab.dhcp(g, capture=False).ok
    heals_with_a_new_guest(bus_lab, g)
    assert "rabbit2" not in broker.load_state(lab.paths)["nodes"]


def test_disk_full_on_the_bus(lab, bus_lab):
    blog = broker_log(lab)
    faults.inject(lab, "disk-full")
    df = sh.out(["df", "--output=pcent", str(lab.broker().mnesia_base)])
    assert "100%" in df, df
    g = bus_lab.new_guest()
    assert not lab.dhcp(g, capture=False).ok
    deadline = time.monotonic() + 10
    while "disk resource limit alarm set" not in blog.new():
        assert time.monotonic() < deadline, "RabbitMQ never saw its disk fill"
        time.sleep(0.2)
    m = re.search(r"Free disk space is insufficient\. Free bytes: (\d+)\. Limit: (\d+)", blog.new())
    assert m and int(m.group(1)) < int(m.group(2)), "the broker's disk is really full, not its limit raised"
    heals_with_a_new_guest(bus_lab, g)
    assert "disk resource limit alarm cleared" in blog.new()


def test_dhcp_agent_down_on_the_bus(lab, bus_lab):
    faults.inject(lab, "dhcp-agent-down", variant="killed")
    g = bus_lab.new_guest()
    assert not lab.dhcp(g, capture=False).ok
    deadline = time.monotonic() + 8
    while dhcp_agent_alive(lab):
        assert time.monotonic() < deadline, "the server never saw the agent die"
        time.sleep(0.2)
    heals_with_a_new_guest(bus_lab, g)


def test_clock_skew(lab, bus_lab):
    slog = server_log(lab)
    rec = faults.inject(lab, "clock-skew")
    pid = lab.agent_pid("net1")
    assert sh.pid_alive(pid), "the agent runs"
    assert not dhcp_agent_alive(lab), "... yet the API has it dead"
    text = slog.new()
    assert "This differs from the current server timestamp" in text
    assert "Stale message received with timestamp" in text
    # its log lines carry its own clock, an hour and more behind
    last = agent_log(lab).path.read_text().strip().splitlines()[-1]
    logged = calendar.timegm(time.strptime(last[:19], "%Y-%m-%d %H:%M:%S"))
    assert logged - time.time() < rec["state"]["offset"] + 120, last
    # its real symptom: dead to the API while it serves; casts still reach it
    g = bus_lab.new_guest()
    assert lab.dhcp(g, capture=False).ok
    heals_with_a_new_guest(bus_lab)
    assert dhcp_agent_alive(lab)


# --- the operator's story -------------------------------------------------------------------------

def test_disk_alarm_new_guest_collect_diagnose_prints_the_chain(lab, bus_lab, tmp_path):
    r = whynoip("lab", "fault", "rabbitmq-disk-alarm", "--name", lab.name)
    assert r.returncode == 0, r.stderr
    g = bus_lab.new_guest()
    assert not lab.dhcp(g).ok
    r = whynoip("lab", "collect", "-o", str(tmp_path / "bundle"), "--name", lab.name)
    assert r.returncode == 0, r.stderr
    bundle = tmp_path / "bundle"
    assert list((bundle / "net1/var/log/rabbitmq").glob("rabbit@net1.log"))
    assert "Alarms" in (bundle / "net1/sos_commands/rabbitmq/rabbitmqctl_status").read_text()
    assert not any(lab.name in p.name for p in bundle.rglob("*"))
    r = subprocess.run([sys.executable, "-m", "whynoip.cli", "diagnose", str(bundle)], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "COLUMNS": "250"})
    assert r.returncode == 1, r.stderr
    out = r.stdout
    assert out.splitlines()[0].startswith("rabbitmq-disk-alarm")
    chain = out.split("Chain", 1)[1].split("\nFindings", 1)[0]
    lines = chain.splitlines()

    def pos(step: str) -> int:
        return next(i for i, line in enumerate(lines) if re.search(rf"(?:Z  |└─> ){re.escape(step)}[: ]", line))
    steps = ("rabbitmq-disk-alarm", "rabbitmq-unreachable", "dhcp-agent-down", "host-entry-missing", f"{g} gets no IP")
    at = [pos(s) for s in steps]
    assert at == sorted(at), chain
    assert not any("└─>" in line for line in lines[:at[0]]), "the alarm comes first"
    assert re.search(r"^\s+\d\d:\d\d:\d\dZ\s+rabbitmq-disk-alarm", chain, re.M), "each step has its time"
    fixes = chain.split("fix, in the order that recovers the cloud:", 1)[1]
    assert fixes.index("set_disk_free_limit") < fixes.index("restart neutron-dhcp-agent"), fixes
    obj = json.loads(subprocess.run([sys.executable, "-m", "whynoip.cli", "diagnose", str(bundle), "-f", "json"],
                                    capture_output=True, text=True, timeout=120).stdout)
    (ch,) = [c for c in obj["chains"] if c["root"] == "rabbitmq-disk-alarm"]
    assert [s["finding"] for s in ch["steps"]][0] == "rabbitmq-disk-alarm"
    assert [x["guest"] for x in ch["no_ip"]] == [g], "the guest without an IP ends the chain, and only it"
    heals_with_a_new_guest(bus_lab, g)


# --- down -------------------------------------------------------------------------------------------

def test_down_stops_the_broker_by_pid_and_removes_its_dirs(bus_lab):
    lab = bus_lab.lab
    state = broker.load_state(lab.paths)
    pids = [lab.broker().pid, state["epmd_pid"]]
    assert all(sh.pid_alive(p) for p in pids)
    data = lab.broker().mnesia_base
    lab.down()
    assert not any(sh.pid_alive(p) for p in pids)
    assert not data.exists() and not lab.paths.dir.exists()
    assert not broker.port_open(state["nodes"]["rabbit"]["port"])
