"""Faults made by hand, as an operator (or a stray script) makes them, not from the lab's
catalogue: the doctor knows only what `lab collect` shows and must still name them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from whynoip.lab.collect import collect


def diagnose(bundle) -> dict:
    r = subprocess.run([sys.executable, "-m", "whynoip.cli", "diagnose", str(bundle), "-f", "json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode in (0, 1), r.stderr
    return json.loads(r.stdout)


@pytest.mark.parametrize("rule", [["INPUT", "-p", "udp", "--dport", "67", "-j", "DROP"],
                                  ["OUTPUT", "-p", "udp", "--sport", "67", "-j", "REJECT"]])
def test_iptables_in_the_dhcp_namespace(lab_factory, tmp_path, rule):
    lab = lab_factory()
    [server] = lab.dhcp_servers()
    subprocess.run(["ip", "netns", "exec", server["namespace"], "iptables", "-I", *rule], check=True)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    roots = [f for f in d["findings"] if f["root_cause"] and f["severity"] == "critical"]
    assert roots and roots[0]["id"] == "security-group-drops-dhcp", d["verdict"]
    f = roots[0]
    assert f["subject"] == f"qdhcp-{server['network']} on {server['node']}"
    assert any(f"-A {rule[0]}" in e["text"] and "packets dropped" in e["text"] for e in f["evidence"])
    assert f["fix"][0].startswith(f"on {server['node']}: ip netns exec qdhcp-{server['network']} iptables -D {rule[0]} ")
    assert "dnsmasq-unresponsive" not in [x["id"] for x in d["findings"]], "dnsmasq is fine: the firewall is not"


def test_host_file_dnsmasq_cannot_read(lab_factory, tmp_path):
    # the agent writes it as root; dnsmasq reads it as nobody on SIGHUP
    lab = lab_factory()
    [server] = lab.dhcp_servers()
    os.chmod(server["host_file"], 0o600)
    os.kill(server["pid"], signal.SIGHUP)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "host-entry-missing" and f["root_cause"], d["verdict"]
    assert "cannot read its host file (Permission denied)" in f["title"]
    assert "cannot read /var/lib/neutron/dhcp/" in f["evidence"][0]["text"]
    assert any("chmod 644" in x for x in f["fix"]) and any(f"kill -HUP {server['pid']}" in x for x in f["fix"])


def test_dhcp_port_on_a_wrong_tag(lab_factory, tmp_path):
    # the DHCP port moved off the network's local VLAN on the network node: requests come
    # out of the tunnel and reach nothing; the lab's captures there are empty, not absent
    lab = lab_factory()
    [server] = lab.dhcp_servers()
    env = {**os.environ, **lab.ovs(server["node"]).env}
    subprocess.run(["ovs-vsctl", "set", "port", server["bridge_port"], "tag=77"], check=True, env=env)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "l2-path-broken" and f["root_cause"], d["verdict"]
    assert f["hop"] == f"between {server['node']} eth1 and {server['node']} {server['bridge_port']}"
    assert any("has tag 77, but br-tun puts network" in e["text"] for e in f["evidence"])
    [path] = [p for p in d["paths"] if p["port"].startswith("vm1")]
    states = {h["name"]: h["state"] for h in path["hops"]}
    assert states[f"{server['node']} {server['bridge_port']}"] == "broken"


def test_a_host_firewall_rule_on_the_compute_node(lab_factory, tmp_path):
    # not a Neutron chain: a rule in FORWARD, before Neutron's, drops what the bridge forwards
    lab = lab_factory()
    node = next(g["node"] for g in lab.status()["guests"] if g["name"] == "vm1")
    subprocess.run(["ip", "netns", "exec", lab.paths.node_ns(node), "iptables", "-I", "FORWARD", "-p", "udp",
                    "--dport", "67", "-j", "DROP"], check=True)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "security-group-drops-dhcp" and f["root_cause"], d["verdict"]
    assert [e["text"] for e in f["evidence"] if e["text"].startswith("-A ")] == [
        next(e["text"] for e in f["evidence"] if "-A FORWARD -p udp -m udp --dport 67 -j DROP  (" in e["text"])]
    assert f["fix"][0] == f"on {node}: iptables -D FORWARD -p udp -m udp --dport 67 -j DROP"
    assert "vif-plug-missing" not in [x["id"] for x in d["findings"]]


def test_dhcp_port_off_br_int(lab_factory, tmp_path):
    lab = lab_factory()
    [server] = lab.dhcp_servers()
    env = {**os.environ, **lab.ovs(server["node"]).env}
    subprocess.run(["ovs-vsctl", "del-port", "br-int", server["bridge_port"]], check=True, env=env)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "l2-path-broken" and f["root_cause"], d["verdict"]
    assert any(f"the DHCP port {server['bridge_port']} of network {server['network']} is on no bridge" in e["text"]
               for e in f["evidence"])
    assert f["fix"][0].startswith(f"on {server['node']}: systemctl restart neutron-dhcp-agent")


def test_a_drop_that_leaves_no_counter_is_not_blamed_on_the_plug(lab_factory, tmp_path):
    # ebtables (the bridge family) drops on the qbr bridge; collect shows no such rule: the
    # doctor names the stretch and says the plug itself looks whole
    lab = lab_factory()
    node = next(g["node"] for g in lab.status()["guests"] if g["name"] == "vm1")
    subprocess.run(["ip", "netns", "exec", lab.paths.node_ns(node), "ebtables", "-A", "FORWARD", "-p", "IPv4",
                    "--ip-proto", "udp", "--ip-dport", "67", "-j", "DROP"], check=True)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "vif-plug-missing" and f["hop"].startswith(f"between {node} qbr"), d["verdict"]
    assert any("are all present and up on" in e["text"] and "ebtables" in e["text"] for e in f["evidence"])


def test_tunnel_ports_deleted_on_the_network_node(lab_factory, tmp_path):
    lab = lab_factory()
    [server] = lab.dhcp_servers()
    env = {**os.environ, **lab.ovs(server["node"]).env}
    ports = subprocess.run(["ovs-vsctl", "list-ports", "br-tun"], env=env, capture_output=True, text=True,
                           check=True).stdout.split()
    for p in (p for p in ports if p.startswith("vxlan-")):
        subprocess.run(["ovs-vsctl", "del-port", "br-tun", p], check=True, env=env)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "l2-path-broken" and f["hop"].startswith(f"between {server['node']} eth1"), d["verdict"]
    peers = [e["text"] for e in f["evidence"] if f"br-tun on {server['node']} has no tunnel port to" in e["text"]]
    assert len(peers) == 2, f["evidence"]


def test_the_compute_nodes_underlay_link_down(lab_factory, tmp_path):
    lab = lab_factory()
    node = next(g["node"] for g in lab.status()["guests"] if g["name"] == "vm1")
    subprocess.run(["ip", "netns", "exec", lab.paths.node_ns(node), "ip", "link", "set", "eth1", "down"], check=True)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "l2-path-broken" and f["root_cause"], d["verdict"]
    assert any(e["text"].startswith(f"eth1 on {node}, which carries its tunnels") for e in f["evidence"])
    assert f["fix"][0].startswith(f"on {node}: ip link set eth1 up")


def test_the_dhcp_port_readdressed_outside_its_subnet(lab_factory, tmp_path):
    # dnsmasq answers "no address range available for DHCP request via ns-...": alive, not hung
    lab = lab_factory()
    [server] = lab.dhcp_servers()
    ns, dev = server["namespace"], server["tap"]
    subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "flush", "dev", dev, "scope", "global"], check=True)
    subprocess.run(["ip", "netns", "exec", ns, "ip", "addr", "add", "10.9.9.2/24", "dev", dev], check=True)
    assert not lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    f = d["findings"][0]
    assert f["id"] == "dhcp-namespace-broken" and f["root_cause"], d["verdict"]
    texts = [e["text"] for e in f["evidence"]]
    assert any("has 10.9.9.2/24, outside the subnet(s) dnsmasq serves (10.0.0.0/24)" in t for t in texts)
    assert any("no address range available for DHCP request via" in t for t in texts)
    assert "dnsmasq-unresponsive" not in [x["id"] for x in d["findings"]]


def test_a_refusal_followed_by_a_lease_is_history(lab_factory, tmp_path):
    # the host file unreadable for a while, then readable again: vm1 was refused, then got its
    # lease; nothing is wrong now and the doctor must not say otherwise
    lab = lab_factory()
    [server] = lab.dhcp_servers()
    os.chmod(server["host_file"], 0o600)
    os.kill(server["pid"], signal.SIGHUP)
    assert not lab.dhcp("vm1", capture=False).ok
    os.chmod(server["host_file"], 0o644)
    os.kill(server["pid"], signal.SIGHUP)
    assert lab.dhcp("vm1").ok
    collect(lab, tmp_path / "bundle")
    d = diagnose(tmp_path / "bundle")
    assert not [f for f in d["findings"] if f["id"] == "host-entry-missing"], d["verdict"]
    assert not [f for f in d["findings"] if f["severity"] == "critical"], d["verdict"]
