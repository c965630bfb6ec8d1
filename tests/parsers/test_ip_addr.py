"""Is each hop there and up? `ip addr`/`ip link` in every shape give one Interface per
link, with its peer, kind, master and addresses, in the namespace it was read in."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import ip_addr as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "ip_addr"
QDHCP = "wnp-net-qdhcp-6f1c2a3b-5d4e-4f70-8a9b-0c1d2e3f4a5b"
SOS = "hotsos/sos_commands/networking/"
# fixture -> the command that produced it (None: a sosreport file, known by its path)
CASES = {
    "lab-compute.ip_addr": "ip netns exec wnp-net-compute ip addr",
    "lab-compute.ip_-d_address": "ip netns exec wnp-net-compute ip -d address",
    "lab-compute.ip_-o_addr": "ip netns exec wnp-net-compute ip -o addr",
    "lab-compute.ip_link": "ip netns exec wnp-net-compute ip link",
    "lab-compute.ip_-d_link": "ip netns exec wnp-net-compute ip -d link",
    "lab-compute.ip_-j_addr": "ip netns exec wnp-net-compute ip -j addr",
    "lab-compute.ip_-j_link": "ip netns exec wnp-net-compute ip -j link",
    "lab-compute.ip_-d_-j_link": "ip netns exec wnp-net-compute ip -d -j link",
    "lab-network.ip_addr": "ip netns exec wnp-net-network ip addr",
    "lab-network.ip_-j_addr": "ip netns exec wnp-net-network ip -j addr",
    "lab-qdhcp.ip_addr": f"ip netns exec {QDHCP} ip addr",
    "lab-qdhcp.ip_-j_addr": f"ip netns exec {QDHCP} ip -j addr",
    "lab-vm1.ip_addr": "ip netns exec wnp-net-vm1 ip addr",
    "lab-vm1.ip_-j_addr": "ip netns exec wnp-net-vm1 ip -j addr",
    SOS + "ip_-d_address": None,
    SOS + "ip_-o_addr": None,
    SOS + "ip_-s_-d_link": None,
    SOS + "ip_netns_exec_fip-32981f34-497a-4fae-914a-8576055c8d0d_ip_address_show": None,
    SOS + "ip_netns_exec_snat-984c22fd-64b3-4fa1-8ddd-87090f401ce5_ip_address_show": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def links(name: str) -> dict[str, F.Interface]:
    facts = run(name, command=CASES[name])
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return {f.name: f for f in facts}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_dhcp_port_in_qdhcp_holds_its_ip():
    for name in ("lab-qdhcp.ip_addr", "lab-qdhcp.ip_-j_addr"):
        tap = links(name)["tap2f0e9d8c-7b"]
        assert tap.addresses[0] == "10.0.0.2/24"
        assert tap.mac == "fa:16:3e:dd:00:02" and tap.admin_up and tap.mtu == 1450
        assert tap.origin.namespace == QDHCP  # from `ip netns exec` in the command


def test_hybrid_plug_chain_on_the_compute_node():
    got = links("lab-compute.ip_-d_address")
    tap, qbr = got["tap5c1d0e77-a2"], got["qbr5c1d0e77-a2"]
    qvb, qvo = got["qvb5c1d0e77-a2"], got["qvo5c1d0e77-a2"]
    assert (tap.kind, qbr.kind, qvb.kind, qvo.kind) == ("veth", "bridge", "veth", "veth")
    assert tap.master == qvb.master == "qbr5c1d0e77-a2" and qvo.master is None
    assert tap.peer == "if2" and tap.link_netns == "wnp-net-vm1"  # the guest's eth0
    assert qvb.peer == "qvo5c1d0e77-a2" and qvo.peer == "qvb5c1d0e77-a2"
    # userspace OVS bridges are tap devices, DOWN, and that is normal
    assert got["br-int"].kind == "tun" and got["br-int"].state == "DOWN" and not got["br-int"].admin_up
    assert got["br-phy"].addresses[0] == "172.16.0.1/24"


def test_text_and_json_forms_agree():
    fields = ("index", "peer", "state", "admin_up", "flags", "mtu", "mac", "master", "addresses")
    text, js = links("lab-compute.ip_addr"), links("lab-compute.ip_-j_addr")
    assert text.keys() == js.keys()
    for name in text:
        for f in fields:
            assert getattr(text[name], f) == getattr(js[name], f), (name, f)
    # link-netns NAME in text, link_netnsid N in JSON: both say "another namespace"
    assert text["tap5c1d0e77-a2"].link_netns == "wnp-net-vm1"
    assert js["tap5c1d0e77-a2"].link_netnsid is not None
    detailed = links("lab-compute.ip_-d_-j_link")
    assert {n: i.kind for n, i in detailed.items()} == {n: i.kind for n, i in links("lab-compute.ip_-d_link").items()}


def test_one_line_addr_gathers_an_interfaces_addresses():
    got = links("lab-compute.ip_-o_addr")
    assert got["lo"].addresses == ["127.0.0.1/8", "::1/128"]
    assert got["br-phy"].index == 5 and got["br-phy"].addresses[0] == "172.16.0.1/24"
    assert "br-int" not in got  # no address, no line


def test_real_sosreport_kinds_slaves_and_peer_namespace_ids():
    got = links(SOS + "ip_-d_address")
    assert got["tap0e778df8-ca"].kind == "tun" and got["tap0e778df8-ca"].master == "ovs-system"
    assert got["vxlan_sys_4789"].kind == "vxlan"
    assert got["br-int"].kind == "openvswitch" and got["br-int"].state == "DOWN"
    assert got["ens7"].kind is None  # a NIC: `openvswitch_slave` is its membership, not a kind
    assert got["ens3"].master == "br-ens3" and got["br-ens3"].kind == "bridge"
    veth = got["veth1883dceb"]
    assert (veth.peer, veth.link_netnsid, veth.kind) == ("if16", 0, "veth")
    assert got["br-ens3"].addresses[0] == "10.0.0.128/24"


def test_statistics_lines_are_not_taken_for_a_kind():
    got = links(SOS + "ip_-s_-d_link")
    assert got["tap0e778df8-ca"].kind == "tun" and got["lo"].kind is None
    assert got["ens3"].kind is None


def test_namespace_from_the_sosreport_file_name():
    name = SOS + "ip_netns_exec_fip-32981f34-497a-4fae-914a-8576055c8d0d_ip_address_show"
    got = links(name)
    assert {i.origin.namespace for i in got.values()} == {"fip-32981f34-497a-4fae-914a-8576055c8d0d"}
    fpr = got["fpr-984c22fd-6"]
    assert fpr.peer == "if2" and fpr.link_netns == "qrouter-984c22fd-64b3-4fa1-8ddd-87090f401ce5"
    assert got["fg-c8dcce74-c4"].addresses[0] == "10.100.0.206/24"
    snat = links(SOS + "ip_netns_exec_snat-984c22fd-64b3-4fa1-8ddd-87090f401ce5_ip_address_show")
    assert snat["qg-14f81a43-69"].admin_up is False and snat["qg-14f81a43-69"].state == "DOWN"


def test_brief_form():
    text = ("lo               UNKNOWN        127.0.0.1/8 ::1/128 \n"
            "tap2f0e9d8c-7b   UNKNOWN        10.0.0.2/24 fe80::f816:3eff:fedd:2/64 \n")
    got = {i.name: i for i in run("x", text, command="ip -br addr")}
    assert got["tap2f0e9d8c-7b"].addresses == ["10.0.0.2/24", "fe80::f816:3eff:fedd:2/64"]
    text = "eth0@if7         UP             fa:16:3e:4a:0b:91 <BROADCAST,MULTICAST,UP,LOWER_UP> \n"
    (eth0,) = run("x", text, command="ip -br link")
    assert (eth0.peer, eth0.mac, eth0.admin_up) == ("if7", "fa:16:3e:4a:0b:91", True)


def test_one_line_link_records():
    line = ("7: tap5c1d0e77-a2@if2: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue master "
            "qbr5c1d0e77-a2 state UP mode DEFAULT group default qlen 1000\\    link/ether "
            "9a:33:56:44:81:1c brd ff:ff:ff:ff:ff:ff link-netnsid 1")
    (tap,) = run("x", line, command="ip -o link")
    assert (tap.mac, tap.link_netnsid, tap.master) == ("9a:33:56:44:81:1c", 1, "qbr5c1d0e77-a2")


def test_broken_input_becomes_unparsed():
    facts = run("x", "Cannot find device \"tapX\"\n")
    assert len(facts) == 1 and isinstance(facts[0], F.Unparsed)
    facts = run("x", '[{"ifindex": 1, "ifname": "lo"')
    assert isinstance(facts[0], F.Unparsed) and "JSON" in facts[0].reason


def test_registry_routes_commands_and_paths_here():
    for cmd in ("ip addr", "ip a", "ip -d address", "ip -o addr", "ip link", "ip -s -d link",
                "ip netns exec qdhcp-1 ip addr", "ip -n qdhcp-1 -j addr", "ip addr show dev tap1"):
        assert parsers.for_command(cmd) is P, cmd
    assert parsers.for_command("ip link set tap1 up") is not P
    for name in ("ip_-d_address", "ip_-o_addr", "ip_-s_-d_link", "ip_address",
                 "ip_netns_exec_qdhcp-6f1c2a3b-5d4e-4f70-8a9b-0c1d2e3f4a5b_ip_address_show"):
        assert parsers.for_path("sos/sos_commands/networking/" + name) is P, name


@pytest.mark.parametrize("name", sorted(CASES))
def test_sniff_recognises_every_form(name: str):
    assert parsers.sniff((FIXTURES / name).read_text()[:8192]) is P


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()[:40]]


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=80)), max_size=30),
       st.sampled_from([None, "ip addr", "ip -br addr", "ip -o link", "ip -j addr"]))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines, command):
    for fact in run("fuzz", "\n".join(lines), command=command):
        assert isinstance(fact, (F.Interface, F.Unparsed))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
