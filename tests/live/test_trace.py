"""`whynoip trace`: captures on every hop of a port's path at once, one DHCP attempt, and
the first hop where the request or the reply disappears — for a tag fault (the dead
VLAN), a flow fault (br-tun without the network's tunnel flows) and a firewall fault (the
port's ingress chain dropping replies) — then the doctor names the fault from the
captures and the nodes' state."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from whynoip.lab import faults
from whynoip.live.trace import Hop, branches, find_breaks

WHYNOIP = [sys.executable, "-m", "whynoip.cli"]

@pytest.fixture(scope="module")
def lab(module_lab_factory):
    return module_lab_factory(prefix="ct")


def trace(*args) -> tuple[subprocess.CompletedProcess, dict]:
    r = subprocess.run([*WHYNOIP, "trace", "-f", "json", *args], capture_output=True, text=True, timeout=180)
    assert r.returncode in (0, 1), r.stderr
    return r, json.loads(r.stdout)


def roots(t: dict) -> list[str]:
    return [f["id"] for f in t["diagnosis"]["findings"] if f["root_cause"] and f["severity"] != "info"]


# --- without a lab ------------------------------------------------------------------------------

def _hops(seen: dict[str, list[str]]) -> list[Hop]:
    roles = {"g": "guest", "tap": "tap", "qbr": "qbr", "qvb": "qvb", "qvo": "qvo", "u1": "underlay-compute",
             "u2": "underlay-server", "dt": "dhcp-tap", "ns": "dhcp-ns"}
    out = []
    for key, s in seen.items():
        name, _, host = key.partition("@")
        out.append(Hop(host or "cmp1", name, roles[name], seen=s))
    return out


def test_where_the_request_and_the_reply_disappear():
    d, o, r, a = "DISCOVER", "OFFER", "REQUEST", "ACK"
    lost_request = _hops({"g": [d], "tap": [d], "qbr": [d], "qvb": [d], "qvo": [d], "u1": [], "u2@net1": [],
                          "dt@net1": [], "ns@net1": []})
    (b,) = find_breaks(lost_request)
    assert (b.what, b.after.interface, b.before.interface) == ("request", "qvo", "u1")
    lost_reply = _hops({"g": [d], "tap": [d], "qbr": [d, o], "qvb": [d, o], "qvo": [d, o], "u1": [d, o],
                        "u2@net1": [d, o], "dt@net1": [d, o], "ns@net1": [d, o]})
    (b,) = find_breaks(lost_reply)
    assert (b.what, b.after.interface, b.before.interface) == ("reply", "qbr", "tap")
    silent = _hops({"g": [d], "tap": [d], "qvo": [d], "u1": [d], "u2@net1": [d], "dt@net1": [d], "ns@net1": [d]})
    (b,) = find_breaks(silent)
    assert b.what == "server" and b.after.host == "net1"
    fine = _hops({"g": [d, o, r, a], "tap": [d, o, r, a], "ns@net1": [d, o, r, a]})
    assert find_breaks(fine) == []
    # two servers: a branch each; the one the client did not choose sees no ACK and is no break
    ha = _hops({"g": [d, o, r, a], "qvo": [d, o, r, a], "ns@net1": [d, o, r, a], "ns@net2": [d, o, r]})
    assert len(branches(ha)) == 2 and find_breaks(ha) == []
    # ... but one whose own side sends nothing while the other answers is a silent server
    ha = _hops({"g": [d, o, r, a], "qvo": [d, o, r, a], "ns@net1": [d, r], "ns@net2": [d, o, r, a]})
    (b,) = find_breaks(ha)
    assert b.what == "server" and b.after.host == "net1"


# --- on a lab -------------------------------------------------------------------------------------

@pytest.mark.lab
def test_a_healthy_path_shows_dora_on_every_hop(lab, tmp_path):
    r, t = trace("--guest", "vm1", "--name", lab.name, "-o", str(tmp_path / "t"))
    assert t["attempt"]["ok"] and t["breaks"] == []
    roles = [h["role"] for h in t["hops"]]
    assert roles[:5] == ["guest", "tap", "qbr", "qvb", "qvo"] and roles[-1] == "dhcp-ns"
    for h in t["hops"]:
        assert set(h["seen"]) >= {"DISCOVER", "OFFER", "REQUEST", "ACK"}, h
    assert r.returncode == 0 and not [f for f in t["diagnosis"]["findings"] if f["severity"] == "critical"]
    # where the doctor expects them: the node's captures beside its collected state
    out = tmp_path / "t"
    assert (out / "guests" / "vm1" / "tcpdump_-i_eth0.pcap").stat().st_size > 0
    assert list((out / "net1" / "captures" / "vm1").glob("ip_netns_exec_qdhcp-*_tcpdump_-i_ns-*.pcap"))
    assert (out / "cmp1" / "sos_commands" / "openvswitch" / "ovs-vsctl_-t_5_show").is_file()


@pytest.mark.lab
@pytest.mark.parametrize("fault,variant,what,after,before", [
    ("port-dead-vlan", None, "request", "qvo", "underlay-compute"),  # the tag
    ("l2-path-broken", "missing-tunnel-flows", "request", "qvo", "underlay-compute"),  # the flows
    ("security-group-drops-dhcp", "no-return", "reply", "qbr", "tap"),  # the firewall
])
def test_trace_pinpoints_the_hop(lab, tmp_path, fault, variant, what, after, before):
    faults.inject(lab, fault, variant=variant)
    try:
        r, t = trace("--guest", "vm1", "--name", lab.name, "-o", str(tmp_path / "t"))
    finally:
        faults.heal(lab)
    assert not t["attempt"]["ok"]
    role = {h["name"]: h["role"] for h in t["hops"]}
    (b,) = t["breaks"]
    assert (b["what"], role[b["after"]], role[b["before"]]) == (what, after, before), b
    assert r.returncode == 1
    assert roots(t)[:1] == [fault], roots(t)
    top = t["diagnosis"]["findings"][0]
    if what == "reply":  # (tag and flow faults are found from the OVS state alone too, without a hop)
        assert top["hop"] and b["after"].split()[-1] in top["hop"], top


@pytest.mark.lab
def test_a_real_nodes_hops_come_from_its_own_state(lab, tmp_path):
    """No lab knowledge: the compute node (as a real node: --netns/--root) is asked for
    the port's devices by name and for the interface under its tunnel IP; the capture
    runs for --wait seconds while the guest tries; the request stops at qvo."""
    port = next(i for i in lab.cp.instances() if i["name"] == "vm1")["port_id"]
    node = lab.cp.instance("vm1")["host"]
    faults.inject(lab, "port-dead-vlan")
    try:
        p = subprocess.Popen([*WHYNOIP, "trace", "-f", "json", "--port", port[:13], "--wait", "4",
                              "--netns", lab.paths.node_ns(node), "--root", str(lab.paths.node_root(node)),
                              "-o", str(tmp_path / "t")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stderr.readline()
        assert line.startswith("capturing on 5 hops"), line  # said once tcpdump listens on each
        lab.dhcp("vm1", capture=False)
        out, err = p.communicate(timeout=60)
    finally:
        faults.heal(lab)
    t = json.loads(out)
    roles = [(h["role"], h["interface"]) for h in t["hops"]]
    short = port[:11]
    assert roles == [("tap", "tap" + short), ("qbr", "qbr" + short), ("qvb", "qvb" + short), ("qvo", "qvo" + short),
                     ("underlay-compute", "eth1")], roles
    assert t["mac"] == lab.cp.port(port).mac
    (b,) = t["breaks"]
    assert (b["what"], b["after"].split()[-1], b["before"].split()[-1]) == ("request", "qvo" + short, "eth1")
    assert roots(t)[:1] == ["port-dead-vlan"]


@pytest.mark.lab
def test_with_two_servers_the_silent_one_is_named_while_the_other_answers(module_lab_factory, tmp_path):
    """ha: one dnsmasq frozen, the other serves the guest; on the frozen one's side only
    requests are seen (the other's replies are not counted there), so trace names it."""
    ha = module_lab_factory("ha", prefix="ct")
    record = faults.inject(ha, "dnsmasq-unresponsive")
    frozen = record.get("node") or record.get("state", {}).get("node")
    r, t = trace("--guest", "vm1", "--name", ha.name, "-o", str(tmp_path / "t"))
    assert t["attempt"]["ok"]
    (b,) = t["breaks"]
    assert b["what"] == "server" and b["after"].startswith(frozen + " qdhcp-"), (b, frozen)
    mine = [h for h in t["hops"] if h["host"] == frozen]
    assert mine and all(not set(h["seen"]) & {"OFFER", "ACK"} for h in mine)
    assert roots(t)[:1] == ["dnsmasq-unresponsive"]


@pytest.mark.lab
def test_bad_requests_are_one_clear_line(lab, tmp_path):
    r = subprocess.run([*WHYNOIP, "trace", "--guest", "nosuch", "--name", lab.name, "-o", str(tmp_path / "a")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = subprocess.run([*WHYNOIP, "trace", "--port", "0123456789abcdef", "--wait", "1", "-o", str(tmp_path / "b")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no hop of port 0123456789abcdef found" in r.stderr, r.stderr
    r = subprocess.run([*WHYNOIP, "trace", "--guest", "vm1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--name" in r.stderr
