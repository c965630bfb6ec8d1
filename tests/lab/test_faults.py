"""Each fault of the lab's catalogue, on real parts: build a lab, see a guest get its IP,
break it, see the guest fail (or degrade, as the fault really does), check what the real
node now shows, heal, see the guest get its IP again.

One default lab serves the whole module (faults are healed between tests) and one HA lab
(two DHCP agents per network) the faults whose outcome two servers change."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from whynoip.lab import faults, firewall, sh
from whynoip.lab import guest as guestmod
from whynoip.lab.lab import Lab
from whynoip.lab.paths import device

from ..conftest import Log, agent_log

pytestmark = pytest.mark.lab


# --- helpers ------------------------------------------------------------------------------

def dnsmasq_log(lab: Lab, node: str | None = None) -> Log:
    srv = next(s for s in lab.dhcp_servers() if node is None or s["node"] == node)
    return Log(srv["log_file"])


def packets(pcap: Path) -> list[dict]:
    """DHCP packets in a capture, read by tcpdump -vvv: type, Server-ID, checksum verdict."""
    out = subprocess.run(["tcpdump", "-r", str(pcap), "-n", "-vvv"], capture_output=True, text=True).stdout
    pkts: list[dict] = []
    for line in out.splitlines():
        if re.match(r"^\d\d:\d\d:", line):
            pkts.append({"type": None, "server_id": None, "bad_cksum": False})
        elif pkts:
            if "bad udp cksum" in line:
                pkts[-1]["bad_cksum"] = True
            if m := re.search(r"DHCP-Message \(53\), length 1: (\w+)", line):
                pkts[-1]["type"] = m.group(1)
            if m := re.search(r"Server-ID \(54\), length 4: ([\d.]+)", line):
                pkts[-1]["server_id"] = m.group(1)
    return [p for p in pkts if p["type"]]


def hop(lab: Lab, guest: str, role: str, node: str | None = None) -> Path:
    """The capture file of the last attempt of `guest` on a hop (guest, tap, qbr, qvb, qvo,
    underlay, dhcp-tap, dhcp-ns), optionally on a given node."""
    for i, h in enumerate(lab.guest_hops(guest), 1):
        if h["role"] == role and (node is None or h["node"] == node):
            return lab.paths.capture_dir(guest) / f"{i:02d}_{h['node']}_{h['interface']}.pcap"
    raise AssertionError(f"no hop {role} on {node}")


def types_at(lab: Lab, guest: str, role: str, node: str | None = None) -> set[str]:
    return {p["type"] for p in packets(hop(lab, guest, role, node))}


def port_of(lab: Lab, guest: str):
    return lab.cp.port(lab.cp.instance(guest)["port_id"])


def server(lab: Lab, node: str = "net1") -> dict:
    return next(s for s in lab.dhcp_servers() if s["node"] == node)


def _listening_pid(lab: Lab) -> bool:
    srv = server(lab)
    return ":67" in sh.run(["ss", "-Hlun", "sport = :67"], srv["namespace"], check=False).stdout


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def iptables_counter(lab: Lab, node: str, chain: str, target: str) -> int:
    """Packets counted by the rules of `chain` that jump to `target` (iptables-save -c)."""
    total = 0
    for line in sh.out(["iptables-save", "-c"], lab.paths.node_ns(node)).splitlines():
        m = re.match(r"\[(\d+):\d+\] -A (\S+) .*-j (\S+)$", line)
        if m and m.group(2) == chain and m.group(3) == target:
            total += int(m.group(1))
    return total


def ping(lab: Lab, guest: str, dst: str, size: int = 56) -> bool:
    r = sh.run(["ping", "-c", "1", "-W", "1", "-M", "do", "-s", str(size), dst], lab.paths.guest_ns(guest),
               check=False)
    return r.returncode == 0


def add_guest(lab: Lab, client: str = "udhcpc", node: str | None = None) -> str:
    name = f"new{len(lab.cp.instances()) + 1}"
    lab.add_guest(name, node=node, client=client)
    return name


class Breaker:
    """Injects faults into the shared lab and remembers them for the checks after the test."""

    def __init__(self, lab: Lab):
        self.lab = lab
        self.ids: list[str] = []

    def __call__(self, fault_id: str, target: str | None = None, variant: str | None = None) -> dict:
        self.ids.append(fault_id)
        return faults.inject(self.lab, fault_id, target, variant)

    def heal(self) -> list[dict]:
        return faults.heal(self.lab)


def no_trace_of(lab: Lab, fault_ids: list[str]) -> list[str]:
    """Files of the lab, other than its faults.json and captures, that name a fault."""
    hits = []
    for p in lab.paths.dir.rglob("*"):
        if not p.is_file() or p.name == faults.FAULTS_FILE or p.suffix in (".pcap", ".db", ".db-wal", ".db-shm"):
            continue
        try:
            text = p.read_text(errors="replace")
        except OSError:
            continue
        hits += [f"{p}: {fid}" for fid in fault_ids if fid in text]
        if m := re.search(r"\b(fault|inject)", text, re.I):
            line = text[text.rfind("\n", 0, m.start()) + 1:].split("\n", 1)[0]
            hits.append(f"{p}: {line[:120]}")
    return hits


def _fresh(factory, topology: str) -> Lab:
    lab = factory(topology)
    assert lab.dhcp("vm1").ok, "the new lab's guest gets no IP"
    return lab


class Shared:
    """A module's lab; rebuilt when a test leaves it broken, so one failure stays one."""

    def __init__(self, factory, topology: str):
        self.factory, self.topology = factory, topology
        self.lab = _fresh(factory, topology)

    def check_and_restore(self, ids: list[str]) -> None:
        lab = self.lab
        problems = []
        if faults.active(lab):  # a test that failed half-way
            faults.heal(lab)
        problems += no_trace_of(lab, ids)
        if not lab.dhcp("vm1", capture=False).ok:
            problems.append("vm1 gets no IP after heal")
            lab.down()
            self.lab = _fresh(self.factory, self.topology)
        assert not problems, problems


@pytest.fixture(scope="module")
def default_lab(module_lab_factory):
    return Shared(module_lab_factory, "default")


@pytest.fixture(scope="module")
def ha_lab(module_lab_factory):
    return Shared(module_lab_factory, "ha")


@pytest.fixture
def lab(default_lab):
    yield default_lab.lab


@pytest.fixture
def brk(default_lab):
    b = Breaker(default_lab.lab)
    yield b
    default_lab.check_and_restore(b.ids)


@pytest.fixture
def ha(ha_lab):
    b = Breaker(ha_lab.lab)
    yield b
    ha_lab.check_and_restore(b.ids)


def assert_heals(brk: Breaker, guest: str = "vm1") -> guestmod.Attempt:
    healed = brk.heal()
    assert healed, "heal found nothing to undo"
    a = brk.lab.dhcp(guest)
    assert a.ok, f"{guest} still gets no IP after heal"
    assert a.ip == port_of(brk.lab, guest).ip
    return a


# --- dnsmasq itself -----------------------------------------------------------------------

def test_dnsmasq_not_running(brk, lab):
    srv = server(lab)
    assert lab.dhcp("vm1").ok
    rec = brk("dnsmasq-not-running")
    assert rec["target"] == "private@net1"
    assert not sh.pid_alive(srv["pid"]), "dnsmasq still runs"
    assert Path(srv["host_file"]).with_name("pid").exists(), "the pid file stays behind"
    assert not sh.pid_alive(lab.agent_pid("net1")), "nobody may respawn it"
    a = lab.dhcp("vm1")
    assert not a.ok
    assert types_at(lab, "vm1", "dhcp-ns") == {"Discover"}, "DISCOVERs reach the qdhcp tap unanswered"
    assert "exiting on receipt of SIGTERM" in Path(srv["log_file"]).read_text()
    assert_heals(brk)


def test_dnsmasq_unresponsive(brk, lab):
    srv = server(lab)
    log, alog = dnsmasq_log(lab), agent_log(lab)
    brk("dnsmasq-unresponsive")
    assert proc_state(srv["pid"]) == "T"
    a = lab.dhcp("vm1")  # ~3 s: three of the agent's check intervals
    assert not a.ok
    assert types_at(lab, "vm1", "dhcp-ns") == {"Discover"}
    assert server(lab)["pid"] == srv["pid"] and "Respawning" not in alog.new(), "the agent's PID check passes"
    assert "DHCPDISCOVER" not in log.new(), "a stopped dnsmasq logs nothing"
    assert_heals(brk)


# --- what the agent wrote for dnsmasq -----------------------------------------------------

def test_host_entry_missing(brk, lab):
    port = port_of(lab, "vm1")
    log = dnsmasq_log(lab)
    brk("host-entry-missing")
    assert port.mac not in Path(server(lab)["host_file"]).read_text()
    assert port.mac in [p.mac for p in lab.cp.ports()], "the API still lists the port"
    assert not lab.dhcp("vm1").ok
    assert f"DHCPDISCOVER({server(lab)['tap']}) {port.mac} no address available" in log.new()
    assert_heals(brk)


def test_host_entry_conflict_duplicate_ip(brk, lab):
    port = port_of(lab, "vm1")
    log = dnsmasq_log(lab)
    brk("host-entry-conflict")
    lines = [line for line in Path(server(lab)["host_file"]).read_text().splitlines() if line.endswith("," + port.ip)]
    assert len(lines) == 2 and lines[1].startswith(port.mac), lines
    assert not lab.dhcp("vm1").ok
    text = log.new()
    assert f"duplicate dhcp-host IP address {port.ip}" in text
    assert f"{port.mac} no address available" in text
    assert_heals(brk)


def test_host_entry_conflict_other_ip(brk, lab):
    port = port_of(lab, "vm1")
    log = dnsmasq_log(lab)
    rec = brk("host-entry-conflict", variant="other-ip")
    other = rec["state"]["other_ip"]
    host_line = f"{port.mac},host-{other.replace('.', '-')}.openstacklocal,{other}"
    assert host_line in Path(server(lab)["host_file"]).read_text()
    a = lab.dhcp("vm1")
    # dnsmasq offers the other address; the port's ingress rules only let replies to the
    # port's own IP in, so the guest never sees it
    assert not a.ok
    assert f"DHCPOFFER({server(lab)['tap']}) {other} {port.mac}" in log.new()
    assert "Offer" in types_at(lab, "vm1", "qvo")
    assert "Offer" not in types_at(lab, "vm1", "guest")
    assert_heals(brk)


def test_stale_lease(brk, lab):
    port = port_of(lab, "vm1")
    log = dnsmasq_log(lab)
    rec = brk("stale-lease")
    old = rec["state"]["old_mac"]
    assert Path(server(lab)["host_file"]).read_text().count(port.mac) == 1, "the host file is right again"
    assert not lab.dhcp("vm1").ok
    text = log.new()
    assert f"DHCPACK({server(lab)['tap']}) {port.ip} {old}" in text, "a real client with the old MAC leased it"
    assert f"not using configured address {port.ip} because it is leased to {old}" in text
    assert_heals(brk)


def test_dhcp_lease_limit_full(brk, lab):
    rec = brk("dhcp-lease-limit")
    limit = rec["state"]["limit"]
    assert f"dnsmasq_lease_max = {limit}" in (lab.paths.node_root("net1") / "etc/neutron/dhcp_agent.ini").read_text()
    with open(f"/proc/{server(lab)['pid']}/cmdline", "rb") as f:
        assert f"--dhcp-lease-max={limit}".encode() in f.read()
    assert lab.dhcp("vm1").ok, "ports that hold a lease keep it"
    log = dnsmasq_log(lab)
    new = add_guest(lab, client="dhclient")
    # the client loops on NAKs: a short attempt is enough
    a = guestmod.run_client(new, lab.paths.guest_ns(new), "dhclient", lab.paths.guest_dir(new), timeout=5)
    assert not a.ok
    assert f"{port_of(lab, new).mac} no leases left" in log.new()
    assert_heals(brk, new)


def test_dhcp_lease_limit_below(brk, lab):
    alog = agent_log(lab)
    brk("dhcp-lease-limit", variant="below")
    assert server(lab)["pid"] is None or not sh.pid_alive(server(lab)["pid"])
    assert not lab.dhcp("vm1").ok
    assert "dnsmasq: too many stored leases" in alog.new()
    assert_heals(brk)


def test_dhcp_options_wrong_no_router(brk, lab):
    brk("dhcp-options-wrong")
    a = lab.dhcp("vm1")
    assert a.ok and a.ip == port_of(lab, "vm1").ip, "the guest still gets its address"
    assert a.offered["router"] == "", "but no router"
    assert lab.cp.subnets()[0].gateway_ip == "10.0.0.1", "while the subnet has one"
    assert assert_heals(brk).offered["router"] == "10.0.0.1"


def test_dhcp_options_wrong_mtu(brk, lab):
    brk("dhcp-options-wrong", variant="wrong-mtu")
    a = lab.dhcp("vm1")
    assert a.ok and a.offered["mtu"] == "9000"
    assert assert_heals(brk).offered["mtu"] == "1450"


def test_dhcp_disabled(brk, lab):
    pid = server(lab)["pid"]
    brk("dhcp-disabled")
    assert not lab.cp.subnets()[0].enable_dhcp
    assert not sh.pid_alive(pid)
    assert not lab.dhcp("vm1").ok
    assert not _listening_pid(lab), "the agent does not respawn a disabled network's dnsmasq"
    assert_heals(brk)
    assert lab.cp.subnets()[0].enable_dhcp


@pytest.mark.parametrize("variant", ["no-address", "link-down"])
def test_dhcp_namespace_broken(brk, lab, variant):
    srv = server(lab)
    log = dnsmasq_log(lab)
    brk("dhcp-namespace-broken", variant=variant)
    link = json.loads(sh.out(["ip", "-j", "addr", "show", "dev", srv["tap"]], srv["namespace"]))[0]
    if variant == "no-address":
        assert not [a for a in link["addr_info"] if a["family"] == "inet"]
    else:
        assert "UP" not in link["flags"]
    assert not lab.dhcp("vm1").ok
    if variant == "no-address":
        assert f"DHCP packet received on {srv['tap']} which has no address" in log.new()
    assert_heals(brk)


def test_dnsmasq_port_conflict(brk, lab):
    srv = server(lab)
    alog = agent_log(lab)
    rec = brk("dnsmasq-port-conflict")
    other = rec["state"]["pid"]
    assert other != srv["pid"] and sh.pid_alive(other)
    held = sh.out(["ss", "-Hlunp", "sport = :67"], srv["namespace"])
    assert f"pid={other}," in held, held
    assert not lab.dhcp("vm1").ok
    text = alog.new()
    assert "dnsmasq: failed to bind DHCP server socket: Address already in use" in text
    assert "Respawning dnsmasq" in text
    assert_heals(brk)
    assert not sh.pid_alive(other)


def test_rogue_dhcp_server(brk, lab):
    rec = brk("rogue-dhcp-server")
    rogue = rec["state"]["ip"]
    a = lab.dhcp("vm1")
    # who wins is a race; both servers answer on the guest's segment
    offers = {p["server_id"] for p in packets(hop(lab, "vm1", "guest")) if p["type"] == "Offer"}
    assert offers >= {"10.0.0.2", rogue}, offers
    assert a.ok and a.server_id in ("10.0.0.2", rogue)
    # decide the winner (LAB-NOTES gotcha 5): with Neutron's dnsmasq stopped the rogue wins
    brk("dnsmasq-unresponsive")
    a = lab.dhcp("vm1")
    assert a.ok and a.server_id == rogue and a.offered["router"] == rogue
    assert a.ip != port_of(lab, "vm1").ip
    assert_heals(brk)
    assert not any(ns.endswith("g-vrouter1") for ns in lab._namespaces())


# --- the wire -----------------------------------------------------------------------------

def test_port_dead_vlan(brk, lab):
    qvo = device("qvo", port_of(lab, "vm1").id)
    brk("port-dead-vlan")
    assert lab.ovs("cmp1").vsctl("get", "Port", qvo, "tag").strip() == "4095"
    assert not lab.dhcp("vm1").ok
    assert "Discover" in types_at(lab, "vm1", "qvo")
    assert not types_at(lab, "vm1", "underlay", "cmp1"), "nothing leaves the node"
    assert_heals(brk)


@pytest.mark.parametrize("variant", ["veth-missing", "tap-down"])
def test_vif_plug_missing(brk, lab, variant):
    pid = port_of(lab, "vm1").id
    brk("vif-plug-missing", variant=variant)
    ns = lab.paths.node_ns("cmp1")
    if variant == "veth-missing":
        assert sh.run(["ip", "link", "show", device("qvo", pid)], ns, check=False).returncode
        # br-int keeps the port record, its link down
        assert lab.ovs("cmp1").vsctl("get", "Interface", device("qvo", pid), "link_state").strip() == "down"
    else:
        link = json.loads(sh.out(["ip", "-j", "link", "show", device("tap", pid)], ns))[0]
        assert "UP" not in link["flags"]
    assert not lab.dhcp("vm1").ok
    assert_heals(brk)


@pytest.mark.parametrize("variant", ["missing-tunnel-flows", "wrong-tag", "ovs-restarted"])
def test_l2_path_broken(brk, lab, variant):
    ovs = lab.ovs("cmp1")
    brk("l2-path-broken", variant=variant)
    flows = ovs.ofctl("dump-flows", "br-tun")
    if variant == "ovs-restarted":
        assert "priority" not in flows and "priority" not in ovs.ofctl("dump-flows", "br-int")
    elif variant == "missing-tunnel-flows":
        assert "tun_id=0x3e9" not in flows
    assert not lab.dhcp("vm1").ok
    assert "Discover" in types_at(lab, "vm1", "qvo")
    assert not types_at(lab, "vm1", "underlay", "cmp1")
    assert_heals(brk)


@pytest.mark.parametrize("variant", ["no-return", "drop-rule"])
def test_security_group_drops_dhcp(brk, lab, variant):
    port = port_of(lab, "vm1")
    chain = firewall.chain("i", port.id)
    assert lab.dhcp("vm1").ok  # a recent exchange: conntrack knows the guest
    brk("security-group-drops-dhcp", variant=variant)
    drop_chain, target = ("neutron-openvswi-sg-fallback", "DROP") if variant == "no-return" else (chain, "DROP")
    before = iptables_counter(lab, "cmp1", drop_chain, target)
    assert not lab.dhcp("vm1").ok
    assert iptables_counter(lab, "cmp1", drop_chain, target) > before, "the DROP counter rises"
    assert "Offer" in types_at(lab, "vm1", "qvb")
    assert "Offer" not in types_at(lab, "vm1", "tap")
    assert_heals(brk)


def test_anti_spoofing_drop(brk, lab):
    port = port_of(lab, "vm1")
    log = dnsmasq_log(lab)
    brk("anti-spoofing-drop")
    ns = lab.paths.guest_ns("vm1")
    mac = json.loads(sh.out(["ip", "-j", "link", "show", "eth0"], ns))[0]["address"]
    assert mac != port.mac
    assert not lab.dhcp("vm1").ok
    assert f"{mac} no address available" in log.new()
    # anything else it sends (here with the port's own IP) dies in the spoof chain
    spoof = firewall.chain("s", port.id)
    before = iptables_counter(lab, "cmp1", spoof, "DROP")
    sh.run(["ip", "addr", "add", f"{port.ip}/24", "dev", "eth0"], ns)
    assert not ping(lab, "vm1", "10.0.0.2")
    assert iptables_counter(lab, "cmp1", spoof, "DROP") > before
    assert_heals(brk)


def test_udp_checksum_bad(brk, lab):
    brk("udp-checksum-bad")
    assert not lab.dhcp("vm1").ok
    offers = [p for p in packets(hop(lab, "vm1", "guest")) if p["type"] == "Offer"]
    assert offers and all(p["bad_cksum"] for p in offers), "the guest receives OFFERs with bad UDP checksums"
    assert_heals(brk)


def test_udp_checksum_only_the_dhcp_port_matters(lab):
    """Which device gives the symptom: tx offload on anywhere else on the path is harmless."""
    for h in lab.guest_hops("vm1"):
        if h["role"] == "dhcp-ns":  # the one that matters (test_udp_checksum_bad)
            continue
        was = "on" if "tx-checksumming: on" in sh.out(["ethtool", "-k", h["interface"]], h["namespace"]) else "off"
        sh.run(["ethtool", "-K", h["interface"], "tx", "on"], h["namespace"], check=False)
        try:
            a = lab.dhcp("vm1")
        finally:
            sh.run(["ethtool", "-K", h["interface"], "tx", was], h["namespace"], check=False)
        assert a.ok, f"tx offload on {h['node']} {h['interface']} broke DHCP"
        assert not any(p["bad_cksum"] for p in packets(hop(lab, "vm1", "guest")))


def test_mtu_mismatch_underlay(brk, lab):
    assert lab.dhcp("vm1").ok and ping(lab, "vm1", "10.0.0.2", 1422)
    brk("mtu-mismatch")
    a = lab.dhcp("vm1")
    assert a.ok and a.offered["mtu"] == "1450", "DHCP hides the fault"
    assert ping(lab, "vm1", "10.0.0.2", 1000)
    assert not ping(lab, "vm1", "10.0.0.2", 1422), "full-size packets die in the underlay"
    assert "Message too long" in (lab.paths.node_root("cmp1") / "var/log/openvswitch/ovs-vswitchd.log").read_text()
    assert_heals(brk)
    assert ping(lab, "vm1", "10.0.0.2", 1422)


def test_mtu_mismatch_advertised(brk, lab):
    brk("mtu-mismatch", variant="advertised")
    a = lab.dhcp("vm1")
    assert a.ok and a.offered["mtu"] == "1500"
    assert ping(lab, "vm1", "10.0.0.2", 1000)
    assert not ping(lab, "vm1", "10.0.0.2", 1472), "the guest sends 1500-byte packets the path cannot carry"
    assert assert_heals(brk).offered["mtu"] == "1450"


def test_guest_not_requesting(brk, lab):
    # vm2 runs dhclient, which gives up sooner than udhcpc on a down link
    brk("guest-not-requesting", target="vm2")
    assert not lab.dhcp("vm2").ok
    assert not types_at(lab, "vm2", "tap"), "no DHCP packet leaves the guest"
    assert_heals(brk, "vm2")


# --- the control plane and the agent ------------------------------------------------------

@pytest.mark.parametrize("variant", ["killed", "stopped", "hung"])
def test_dhcp_agent_down(brk, lab, variant):
    brk("dhcp-agent-down", variant=variant)
    new = add_guest(lab)
    assert port_of(lab, new).mac not in Path(server(lab)["host_file"]).read_text()
    assert not lab.dhcp(new).ok, "a port created while the agent is down never reaches dnsmasq"
    assert lab.dhcp("vm1", capture=False).ok, "dnsmasq keeps serving what it knows"
    wait = time.monotonic() + 6
    while any(a["alive"] for a in lab.cp.agents() if a["binary"] == "neutron-dhcp-agent"):
        assert time.monotonic() < wait, "the server never saw the agent die"
        time.sleep(0.2)
    assert_heals(brk, new)
    assert "Agent has just been revived" in lab.paths.neutron_log("net1", "neutron-dhcp-agent").read_text()


def test_network_not_hosted(brk, lab):
    pid = server(lab)["pid"]
    net = lab.cp.networks()[0].id
    brk("network-not-hosted")
    assert lab.cp.dhcp_agents_for(net) == []
    assert not sh.pid_alive(pid)
    assert all(a["alive"] for a in lab.cp.agents()), "the agents themselves are fine"
    assert not lab.dhcp("vm1").ok
    assert_heals(brk)
    assert len(lab.cp.dhcp_agents_for(net)) == 1


def test_disk_full(brk, lab):
    alog = agent_log(lab)
    brk("disk-full")
    df = sh.out(["df", "--output=pcent", str(lab.paths.node_root("net1") / "var/lib/neutron")])
    assert "100%" in df, df
    new = add_guest(lab)
    assert not lab.dhcp(new).ok
    text = alog.new()
    assert "OSError: [Errno 28] No space left on device" in text
    assert lab.dhcp("vm1", capture=False).ok, "ports dnsmasq knows still get their lease"
    assert_heals(brk, new)


# --- several servers (HA) -----------------------------------------------------------------

def _ha_ips(lab: Lab) -> dict[str, str]:
    return {s["node"]: s["ip"] for s in lab.dhcp_servers()}


def test_ha_dnsmasq_unresponsive_other_server_answers(ha):
    lab = ha.lab
    ips = _ha_ips(lab)
    ha("dnsmasq-unresponsive", target="net1")
    a = lab.dhcp("vm1")
    assert a.ok and a.server_id == ips["net2"]
    # what the capture shows: the broadcasts reach the frozen server's tap too, yet every
    # OFFER and ACK names the other server
    assert types_at(lab, "vm1", "dhcp-ns", "net1") == {"Discover", "Request"}
    server_ids = {p["server_id"] for p in packets(hop(lab, "vm1", "guest")) if p["type"] in ("Offer", "ACK")}
    assert server_ids == {ips["net2"]}
    assert_heals(ha)


def test_ha_dnsmasq_not_running_other_server_answers(ha):
    lab = ha.lab
    ha("dnsmasq-not-running", target="net2")
    a = lab.dhcp("vm1")
    assert a.ok and a.server_id == _ha_ips(lab)["net1"]
    assert_heals(ha)


@pytest.mark.parametrize("fault_id", ["host-entry-missing", "stale-lease"])
def test_ha_entry_broken_on_one_server(ha, fault_id):
    lab = ha.lab
    ips = _ha_ips(lab)
    log = dnsmasq_log(lab, "net1")
    rec = ha(fault_id, target="vm1@net1")
    assert rec["state"]["nodes"] == ["net1"]
    a = lab.dhcp("vm1")
    assert a.ok and a.server_id == ips["net2"], "the other server still knows the guest"
    assert "no address available" in log.new()
    assert_heals(ha)


@pytest.mark.parametrize("fault_id", ["host-entry-missing", "stale-lease"])
def test_ha_entry_broken_on_every_server(ha, fault_id):
    lab = ha.lab
    rec = ha(fault_id, target="vm1")
    assert rec["state"]["nodes"] == ["net1", "net2"]
    assert not lab.dhcp("vm1").ok
    assert_heals(ha)


def test_ha_udp_checksum_bad_on_one_server(ha):
    lab = ha.lab
    ha("udp-checksum-bad", target="net1")
    a = lab.dhcp("vm1")
    assert a.ok and a.server_id == _ha_ips(lab)["net2"]
    bad = {p["server_id"] for p in packets(hop(lab, "vm1", "guest")) if p["bad_cksum"]}
    assert bad <= {_ha_ips(lab)["net1"]}
    assert_heals(ha)


def test_ha_dhcp_agent_down_other_agent_serves_new_port(ha):
    lab = ha.lab
    ha("dhcp-agent-down", target="net1")
    new = add_guest(lab)
    a = lab.dhcp(new)
    assert a.ok and a.server_id == _ha_ips(lab)["net2"]
    assert_heals(ha, new)


# --- the record and the command line ------------------------------------------------------

def test_faults_stack_and_heal_newest_first(brk, lab):
    brk("port-dead-vlan")
    brk("dnsmasq-unresponsive")
    recorded = json.loads((lab.paths.dir / "faults.json").read_text())
    assert [r["id"] for r in recorded] == ["port-dead-vlan", "dnsmasq-unresponsive"]
    healed = brk.heal()
    assert [r["id"] for r in healed] == ["dnsmasq-unresponsive", "port-dead-vlan"]
    assert faults.active(lab) == []


def whynoip(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "whynoip.cli", *args], capture_output=True, text=True)


def test_cli_fault_help_lists_every_id():
    r = whynoip("lab", "fault", "--help")
    assert r.returncode == 0
    for fid, f in faults.CATALOGUE.items():
        assert re.search(rf"^\s+{re.escape(fid)}\s+\S", r.stdout, re.M), fid
        for v in f.variants:
            assert v in r.stdout


def test_cli_fault_and_heal(brk, lab):
    r = whynoip("lab", "fault", "port-dead-vlan", "--target", "vm2", "--name", lab.name)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "port-dead-vlan on vm2"
    r = whynoip("lab", "fault", "l2-path-broken", "--variant", "wrong-tag", "--name", lab.name, "-f", "json")
    assert json.loads(r.stdout)["variant"] == "wrong-tag"
    assert lab.ovs("cmp2").vsctl("get", "Port", device("qvo", port_of(lab, "vm2").id), "tag").strip() == "4095"
    r = whynoip("lab", "heal", "--name", lab.name)
    assert r.stdout.splitlines() == ["healed l2-path-broken (wrong-tag) on vm1", "healed port-dead-vlan on vm2"]
    assert whynoip("lab", "heal", "--name", lab.name).stdout.strip() == "no fault to heal"


@pytest.mark.parametrize("args, message", [
    (["dnsmasq-dead"], "unknown fault 'dnsmasq-dead'"),
    (["port-dead-vlan", "--target", "vm9"], "no guest 'vm9'"),
    (["dhcp-agent-down", "--target", "cmp1"], "no network node 'cmp1'"),
    (["dnsmasq-unresponsive", "--target", "vm1@net7"], "has no DHCP server on 'net7'"),
    (["port-dead-vlan", "--variant", "x"], "has no variants"),
    (["dhcp-lease-limit", "--variant", "x"], "unknown variant 'x'"),
])
def test_cli_rejects_unknown_ids_and_targets(lab, args, message):
    r = whynoip("lab", "fault", *args, "--name", lab.name)
    assert r.returncode == 2
    assert r.stdout == ""
    assert len(r.stderr.strip().splitlines()) == 1 and message in r.stderr, r.stderr
    assert faults.active(lab) == []
