"""`whynoip probe`: each DHCP server of a network asked, from a namespace on its segment,
whether it answers — on real labs (real dnsmasq, userspace Open vSwitch, VXLAN).

The story the issue asks for: a frozen dnsmasq (SIGSTOP) keeps its PID, so the DHCP
agent's own liveness check passes and respawns nothing; the probe finds it silent and
names dnsmasq-unresponsive, on the two-agent lab (the other server still answers) and on
the one-agent lab (probed through a probe port that leaves nothing behind)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from whynoip.evidence.read import read
from whynoip.facts import DhcpPacket
from whynoip.lab import faults
from whynoip.live import dhcp_client as dc
from whynoip.live.probe import HostSegment, Round, Timing, dnsmasq_by_namespace, local_servers, qdhcp_namespaces
from whynoip.parsers._dhcp import bootp_fields

WHYNOIP = [sys.executable, "-m", "whynoip.cli"]

# three networks, each served by two DHCP agents on two network nodes
HA3 = {
    "name": "ha3", "dhcp_agents_per_network": 2,
    "nodes": [{"name": "net1", "role": "network"}, {"name": "net2", "role": "network"},
              {"name": "cmp1", "role": "compute"}],
    "networks": [{"name": name, "segmentation_id": 1001 + i, "mtu": 1450,
                  "subnets": [{"name": f"{name}-subnet", "cidr": f"10.{i}.0.0/24", "gateway": f"10.{i}.0.1",
                               "dns_nameservers": [f"10.{i}.0.1"], "enable_dhcp": True}]}
                 for i, name in enumerate(("private", "second", "third"))],
    "guests": [{"name": "vm1", "node": "cmp1", "network": "private", "client": "udhcpc"}],
}


@pytest.fixture(scope="module")
def ha3(module_lab_factory, tmp_path_factory):
    path = tmp_path_factory.mktemp("topo") / "ha3.yaml"
    path.write_text(yaml.safe_dump(HA3))
    return module_lab_factory(str(path), prefix="pw")


@pytest.fixture(scope="module")
def one(module_lab_factory):
    return module_lab_factory("default", prefix="pw")


@pytest.fixture
def healed():
    """Labs given to it are healed after the test, also when it fails."""
    used = []
    yield used.append
    for lab in used:
        faults.heal(lab)


def whynoip(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*WHYNOIP, *args], capture_output=True, text=True, timeout=timeout)


def probe_json(*args: str) -> tuple[int, dict, float]:
    start = time.monotonic()
    r = whynoip("probe", "-f", "json", *args)
    seconds = time.monotonic() - start
    assert r.returncode in (0, 1), r.stderr
    return r.returncode, json.loads(r.stdout), seconds


def network_id(lab, name: str) -> str:
    return lab.cp.network(name).id


def servers_of(lab, net_id: str) -> dict[str, dict]:
    return {s["ip"]: s for s in lab.dhcp_servers() if s["network"] == net_id}


# --- packets --------------------------------------------------------------------------------

def test_probe_packets_read_back_by_the_pcap_parser_and_tcpdump(tmp_path):
    """What the probe puts on the wire is what a capture shows: the project's pcap parser
    and tcpdump both read it back, checksums correct."""
    mac = "fa:16:3e:12:34:56"
    frames = [
        dc.frame(mac, dc.build(dc.DISCOVER, xid=0x01020304, mac=mac)),
        dc.frame(mac, dc.build(dc.REQUEST, xid=0x01020305, mac=mac, requested_ip="10.0.0.5", server_id="10.0.0.2")),
        dc.frame(mac, dc.build(dc.INFORM, xid=0x01020306, mac=mac, ciaddr="10.0.0.5", broadcast=False),
                 src_ip="10.0.0.5", dst_ip="10.0.0.2", dst_mac=bytes.fromhex("fa163e000002")),
    ]
    pcap = tmp_path / "probe.pcap"
    with open(pcap, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for i, fr in enumerate(frames):
            f.write(struct.pack("<IIII", 1763700000 + i, 0, len(fr), len(fr)) + fr)
    packets = [p for p in read([str(pcap)]) if isinstance(p, DhcpPacket)]
    assert [(p.message_type, p.xid, p.client_mac) for p in packets] == [
        ("DISCOVER", 0x01020304, mac), ("REQUEST", 0x01020305, mac), ("INFORM", 0x01020306, mac)]
    assert all(p.udp_checksum_ok for p in packets)
    assert packets[0].flags_broadcast and not packets[2].flags_broadcast
    assert (packets[1].requested_ip, packets[1].server_id) == ("10.0.0.5", "10.0.0.2")
    assert (packets[2].ciaddr, packets[2].src_ip, packets[2].dst_ip) == ("10.0.0.5", "10.0.0.5", "10.0.0.2")
    assert packets[0].parameter_list[:3] == [1, 3, 6]
    text = subprocess.run(["tcpdump", "-nn", "-vvv", "-r", str(pcap)], capture_output=True, text=True).stdout
    assert text.count("[udp sum ok]") == 3 and "bad" not in text
    assert "Discover" in text and "Request" in text and "Inform" in text


def test_a_message_decodes_with_the_parsers_own_decoder():
    msg = dc.build(dc.RELEASE, xid=7, mac="fa:16:3e:00:00:09", ciaddr="10.1.2.3", broadcast=False,
                   server_id="10.1.2.2")
    fields, problem = bootp_fields(msg)
    assert problem is None
    assert (fields["message_type"], fields["ciaddr"], fields["server_id"], fields["client_mac"]) == (
        "RELEASE", "10.1.2.3", "10.1.2.2", "fa:16:3e:00:00:09")
    assert "parameter_list" not in fields  # a RELEASE asks for nothing
    with pytest.raises(dc.ProbeError):
        dc.mac_bytes("fa:16:3e")


# --- two DHCP agents per network ----------------------------------------------------------------

def test_every_server_is_probed_from_the_other_agents_namespace(ha3):
    nets = [network_id(ha3, n) for n in ("private", "second", "third")]
    rc, report, seconds = probe_json(*(a for n in nets for a in ("--network", n)))
    assert rc == 0
    assert report["summary"]["servers"] == 6 and report["summary"]["answers"] == 6
    assert not report["findings"]
    for s in report["servers"]:
        assert {"server", "verdict", "latency_ms"} <= s.keys()
        assert s["verdict"] == "answers" and s["known"] is True
        assert 0 < s["latency_ms"] < 1000
        own = servers_of(ha3, s["network"])[s["server"]]
        assert s["namespace"] == own["namespace"]
        assert own["namespace"] not in s["vantage"]  # never from its own namespace
        assert [e["kind"] for e in s["exchanges"]] == ["discover", "request", "renew", "inform"]
        assert [e["reply"] for e in s["exchanges"]] == ["OFFER", "ACK", "ACK", "ACK"]
        # the vantage uses the other DHCP port's MAC: the server offers that port's address
        other = next(ip for ip in servers_of(ha3, s["network"]) if ip != s["server"])
        prefix = s["server"].rsplit(".", 1)[0]
        assert s["offered"]["ip"] == other
        assert s["offered"]["routers"] == [f"{prefix}.1"] and s["offered"]["mtu"] == 1450
    # three networks at once take about as long as one
    assert seconds < 10, seconds


def test_a_frozen_dnsmasq_passes_the_agents_check_and_not_the_probe(ha3, healed):
    net = network_id(ha3, "second")
    frozen = next(s for s in servers_of(ha3, net).values() if s["node"] == "net1")
    healed(ha3)
    faults.inject(ha3, "dnsmasq-unresponsive", "second@net1")
    time.sleep(2.5)  # the agent checks its children every second
    # the agent's own liveness check: the PID is alive, nothing was respawned
    pid = int(Path(frozen["host_file"]).with_name("pid").read_text())
    assert pid == frozen["pid"]
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    assert state == "T"
    log = ha3.paths.neutron_log("net1", "neutron-dhcp-agent").read_text()
    assert f"dnsmasq for dhcp with uuid {net} not found" not in log and f"Respawning dnsmasq for uuid {net}" not in log
    # the probe
    nets = [network_id(ha3, n) for n in ("private", "second", "third")]
    rc, report, seconds = probe_json("--timeout", "3", *(a for n in nets for a in ("--network", n)))
    assert rc == 1
    verdicts = {(s["network"], s["server"]): s["verdict"] for s in report["servers"]}
    assert verdicts.pop((net, frozen["ip"])) == "silent"
    assert set(verdicts.values()) == {"answers"} and len(verdicts) == 5
    silent = next(s for s in report["servers"] if s["verdict"] == "silent")
    assert silent["latency_ms"] is None
    assert all(e["reply"] is None and e["sent"] >= 1 for e in silent["exchanges"])
    ids = [(f["id"], f["root_cause"]) for f in report["findings"]]
    assert ids[0] == ("dnsmasq-unresponsive", True)
    assert ("dhcp-server-silent", False) in ids and len(ids) == 2
    unresponsive = report["findings"][0]
    assert unresponsive["subject"] == f"{frozen['ip']} on net1"
    assert f"dnsmasq pid {pid} state T (stopped)" in unresponsive["evidence"][0]["text"]
    # its own interface saw every request arrive and no reply leave
    assert silent["witness"] == {"requests_reached": ["discover", "request", "renew", "inform"], "replies_left": []}
    assert next(f for f in report["findings"] if f["id"] == "dhcp-server-silent")["caused_by"] == [
        "dnsmasq-unresponsive"]
    # bounded by --timeout (the round of each network), whatever the frozen server does
    assert max(n["seconds"] for n in report["networks"]) < 3 + 0.5, report["networks"]
    # thawed, it answers again
    faults.heal(ha3)
    rc, report, _ = probe_json("--network", net)
    assert rc == 0 and [s["verdict"] for s in report["servers"]] == ["answers", "answers"]


def test_a_dead_dnsmasq_whose_agent_is_stopped(ha3, healed):
    net = network_id(ha3, "third")
    dead = next(s for s in servers_of(ha3, net).values() if s["node"] == "net2")
    healed(ha3)
    faults.inject(ha3, "dnsmasq-not-running", "third@net2")
    rc, report, _ = probe_json("--network", net, "--timeout", "2")
    assert rc == 1
    assert {s["server"]: s["verdict"] for s in report["servers"]} == {
        dead["ip"]: "silent", next(ip for ip in servers_of(ha3, net) if ip != dead["ip"]): "answers"}
    assert [(f["id"], f["root_cause"]) for f in report["findings"]] == [
        ("dnsmasq-not-running", True), ("dhcp-server-silent", False)]
    assert report["findings"][0]["subject"] == f"{dead['ip']} on net2"


def test_a_broken_path_is_not_called_a_dead_dnsmasq(ha3, healed):
    """Open vSwitch restarted on net2 (flows wiped): both dnsmasq work, nothing crosses.
    Each server's own interface shows no request arriving: the path, not dnsmasq."""
    net = network_id(ha3, "private")
    healed(ha3)
    faults.inject(ha3, "l2-path-broken", "net2", "ovs-restarted")
    rc, report, _ = probe_json("--network", net, "--timeout", "2")
    assert rc == 1
    assert [s["verdict"] for s in report["servers"]] == ["silent", "silent"]
    assert all(s["witness"] == {"requests_reached": [], "replies_left": []} for s in report["servers"])
    roots = sorted((f["id"], f["subject"].split()[-1]) for f in report["findings"] if f["root_cause"])
    assert roots == sorted(("l2-path-broken", ip) for ip in servers_of(ha3, net))
    assert "dnsmasq-unresponsive" not in {f["id"] for f in report["findings"]}
    faults.heal(ha3)
    rc, report, _ = probe_json("--network", net)
    assert rc == 0


def test_a_downed_dhcp_port(ha3, healed):
    net = network_id(ha3, "third")
    down = next(s for s in servers_of(ha3, net).values() if s["node"] == "net1")
    healed(ha3)
    faults.inject(ha3, "dhcp-namespace-broken", "third@net1", "link-down")
    rc, report, _ = probe_json("--network", net, "--timeout", "2")
    assert rc == 1
    by = {s["server"]: s for s in report["servers"]}
    assert by.pop(down["ip"])["verdict"] == "silent"
    [(other, s)] = by.items()
    assert s["verdict"] == "answers"
    # the downed namespace cannot be a vantage: the other server is probed from a probe port
    assert "probe" in s["vantage"] and down["namespace"] not in s["vantage"]
    assert [(f["id"], f["root_cause"]) for f in report["findings"]] == [
        ("dhcp-namespace-broken", True), ("dhcp-server-silent", False)]


def test_a_guest_namespace_as_vantage_with_declared_servers(ha3):
    a = ha3.dhcp("vm1", capture=False)
    assert a.ok
    ns = ha3.paths.guest_ns("vm1")
    servers = sorted(servers_of(ha3, network_id(ha3, "private")))
    rc, report, _ = probe_json("--namespace", ns, "--interface", "eth0", *(a for s in servers for a in ("--server", s)))
    assert rc == 0
    assert sorted(s["server"] for s in report["servers"]) == servers
    assert all(s["verdict"] == "answers" and s["offered"]["ip"] == a.ip for s in report["servers"])
    assert report["networks"][0]["vantages"][0]["kind"] == "namespace"
    # nothing declared: every server that answers is listed, none called rogue
    rc, report, _ = probe_json("--namespace", ns, "--interface", "eth0")
    assert rc == 0 and not report["findings"]
    assert sorted(s["server"] for s in report["servers"]) == servers
    assert all(s["known"] is False for s in report["servers"])
    assert "none is called rogue" in report["networks"][0]["notes"][0]


# --- one DHCP agent: a probe port ---------------------------------------------------------------

def _probe_leftovers(lab, net: str) -> list[str]:
    left = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
            if ns.startswith(lab.paths.prefix + "probe")]
    left += [p for p in lab.ovs("net1").vsctl("list-ports", "br-int").split() if p.startswith("wnpp")]
    left += [p.id for p in lab.cp.ports(net) if p.device_owner == "network:probe"]
    return left


def test_one_agent_probed_through_a_probe_port_that_leaves_nothing(one):
    net = network_id(one, "private")
    srv = next(iter(servers_of(one, net).values()))
    rc, report, _ = probe_json("--network", net)
    assert rc == 0, report
    [s] = report["servers"]
    assert (s["server"], s["verdict"]) == (srv["ip"], "answers")
    assert [e["reply"] for e in s["exchanges"]] == ["OFFER", "ACK", "ACK", "ACK"]
    [v] = report["networks"][0]["vantages"]
    assert v["kind"] == "probe-port" and report["networks"][0]["mac_known"] is True
    assert s["offered"]["ip"] == v["ip"]  # the registered port's address
    assert _probe_leftovers(one, net) == []
    time.sleep(0.3)  # the agent rewrites the host file after the port's deletion
    assert v["mac"] not in Path(srv["host_file"]).read_text()
    assert v["mac"] not in Path(srv["leases_file"]).read_text()  # released


def test_one_agent_frozen(one, healed):
    net = network_id(one, "private")
    healed(one)
    faults.inject(one, "dnsmasq-unresponsive")
    rc, report, seconds = probe_json("--network", net, "--timeout", "2")
    assert rc == 1
    assert [s["verdict"] for s in report["servers"]] == ["silent"]
    assert [f["id"] for f in report["findings"]] == ["dnsmasq-unresponsive", "dhcp-server-silent"]
    assert report["networks"][0]["seconds"] < 2 + 2, seconds  # --timeout, and plugging the probe port
    assert _probe_leftovers(one, net) == []


def test_a_rogue_server_on_the_segment(one, healed):
    net = network_id(one, "private")
    healed(one)
    record = faults.inject(one, "rogue-dhcp-server")
    rc, report, _ = probe_json("--network", net)
    assert rc == 1
    by = {s["server"]: s for s in report["servers"]}
    rogue_ip = record["state"]["ip"]
    assert by[rogue_ip]["known"] is False and by[rogue_ip]["verdict"] == "answers"
    assert by[rogue_ip]["mac"].startswith("52:54:00")
    assert by[rogue_ip]["offered"]["routers"] == [rogue_ip]
    neutron = [s for s in report["servers"] if s["known"]]
    assert [s["verdict"] for s in neutron] == ["answers"]
    rogue = [f for f in report["findings"] if f["id"] == "rogue-dhcp-server"]
    assert [(f["subject"], f["severity"]) for f in rogue] == [(rogue_ip, "critical")]


def test_replies_with_bad_checksums(one, healed):
    """Transmit checksum offload on the DHCP port: the server answers, but what reaches a
    client carries a wrong UDP checksum, and clients drop it."""
    net = network_id(one, "private")
    healed(one)
    faults.inject(one, "udp-checksum-bad")
    rc, report, _ = probe_json("--network", net)
    assert rc == 1
    [s] = report["servers"]
    assert s["verdict"] == "answers"
    assert all(e["checksum_ok"] is False for e in s["exchanges"])
    assert [f["id"] for f in report["findings"]] == ["udp-checksum-bad"]
    faults.heal(one)
    rc, report, _ = probe_json("--network", net)
    assert rc == 0 and all(e["checksum_ok"] for e in report["servers"][0]["exchanges"])


def test_an_unknown_mac_is_refused_and_reported(one):
    net = network_id(one, "private")
    mac = "fa:16:3e:" + ":".join(f"{b:02x}" for b in __import__("os").urandom(3))
    rc, report, _ = probe_json("--network", net, "--mac", mac)
    assert rc == 0  # the server works: only the MAC is unknown
    [s] = report["servers"]
    assert s["verdict"] == "nak"
    assert [(e["kind"], e["reply"]) for e in s["exchanges"][:2]] == [("discover", None), ("request", "NAK")]
    assert s["exchanges"][1]["message"] == "address not available"
    assert all(e["note"].startswith("not sent") for e in s["exchanges"][2:])
    [f] = report["findings"]
    assert (f["id"], f["subject"], f["severity"]) == ("host-entry-missing", mac, "warning")


def test_a_port_made_for_probing_given_by_mac_and_ip(one):
    net = network_id(one, "private")
    srv = next(iter(servers_of(one, net).values()))
    port = one.cp.create_port(net, name="probe-by-hand", binding_host="net1")
    try:
        deadline = time.monotonic() + 5
        while port.mac not in Path(srv["host_file"]).read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        rc, report, _ = probe_json("--network", net, "--mac", port.mac, "--ip", port.ip)
        assert rc == 0
        [s] = report["servers"]
        assert s["verdict"] == "answers" and s["offered"]["ip"] == port.ip
        assert [e["reply"] for e in s["exchanges"]] == ["OFFER", "ACK", "ACK", "ACK"]
        assert _probe_leftovers(one, net) == []
    finally:
        one.cp.delete_port(port.id)


def test_a_real_nodes_probe_port_with_a_random_mac(one):
    """On a real node the probe port goes on the host's br-int with the local VLAN of the
    qdhcp port (read from OVS), and a random MAC nobody knows: the server is judged by
    its NAK. The lab's net1 stands in for the host."""
    net = network_id(one, "private")
    namespaces = qdhcp_namespaces()[net]
    seg = HostSegment(net, local_servers(namespaces, dnsmasq_by_namespace()), [])
    seg.node_ns, seg.ovs_env = one.paths.node_ns("net1"), one.ovs("net1").env
    tag = one.cp.local_vlan("net1", net)
    assert seg.local_vlan() == tag

    async def go():
        port, mac_known = await seg.open_port(None, None, None)
        try:
            assert mac_known is False and port.tag == tag
            timing = Timing(timeout=3)
            seen = await Round(port.vantage(mac_known), sorted(seg.known), timing,
                               time.monotonic() + timing.timeout, False).run()
            return port, seen
        finally:
            await seg.close_port(port)
    port, seen = asyncio.run(go())
    [server] = seg.known
    ex = seen[server].exchanges
    assert ex["discover"].reply is None and ex["request"].reply == "NAK"
    assert ex["renew"].note and ex["inform"].note  # no address of its own
    ns_list = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert port.namespace not in ns_list
    assert port.bridge_port not in one.ovs("net1").vsctl("list-ports", "br-int")


# --- a dynamic range: dnsmasq checks an address (ping) before its first OFFER ---------------------

def test_the_probe_waits_for_the_address_check_of_a_dynamic_range(lab_host, tmp_path):
    """libvirt, LXD and other dnsmasq clouds hand out dynamic ranges: dnsmasq pings an
    address for about 3 s before offering it. A server the probe cannot look at gets that
    long; a Neutron server (static ranges, seen above) is not waited for."""
    tmp_path.chmod(0o755)
    srv, cli = f"pwdyn{os.getpid()}-s", f"pwdyn{os.getpid()}-c"

    def sh(*a, ns=None):
        subprocess.run([*(["ip", "netns", "exec", ns] if ns else []), *a], check=True, capture_output=True)
    try:
        for ns in (srv, cli):
            sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", "srv0", "netns", srv, "type", "veth", "peer", "name", "cli0", "netns", cli)
        sh("ip", "addr", "add", "10.77.0.1/24", "dev", "srv0", ns=srv)
        sh("ip", "addr", "add", "10.77.0.50/24", "dev", "cli0", ns=cli)
        sh("ip", "link", "set", "srv0", "up", ns=srv)
        sh("ip", "link", "set", "cli0", "up", ns=cli)
        sh("dnsmasq", "--port=0", "--conf-file=/dev/null", "--interface=srv0", "--bind-dynamic",
           "--dhcp-range=10.77.0.100,10.77.0.150,12h", f"--dhcp-leasefile={tmp_path}/leases",
           f"--pid-file={tmp_path}/pid", ns=srv)
        rc, report, _ = probe_json("--namespace", cli, "--interface", "cli0", "--server", "10.77.0.1",
                                   "--timeout", "8")
        assert rc == 0
        [s] = report["servers"]
        assert s["verdict"] == "answers" and s["offered"]["ip"].startswith("10.77.0.1")
        discover = s["exchanges"][0]
        assert discover["reply"] == "OFFER" and discover["latency_ms"] > 2000, discover
        assert [e["reply"] for e in s["exchanges"][1:]] == ["ACK", "NAK", "ACK"]  # renew: not its lease
    finally:
        pid = (tmp_path / "pid").read_text().strip() if (tmp_path / "pid").exists() else ""
        if pid:
            os.kill(int(pid), signal.SIGTERM)
        for ns in (srv, cli):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


# --- bad input ------------------------------------------------------------------------------------

@pytest.mark.parametrize("args, says", [
    (["--network", "no-such-net"], "no namespace ending in qdhcp-no-such-net"),
    (["--namespace", "wnp-pw-none"], "--namespace and --interface go together"),
    (["--namespace", "wnp-pw-none", "--interface", "eth0"], "no network namespace 'wnp-pw-none'"),
    (["--mac", "zz", "--network", "x"], "is no MAC address"),
    (["--timeout", "0"], "must be more than 0"),
])
def test_bad_input_is_one_line(lab_host, args, says):
    r = whynoip("probe", *args)
    assert r.returncode == 2
    assert says in r.stderr and "Traceback" not in r.stderr
