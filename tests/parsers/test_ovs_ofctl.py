"""The OpenFlow tables Neutron programs: which flow drops the dead VLAN, which maps VLAN 1
to tunnel 0x3e9, whether the learn() flow has learned the guest's MAC -- and, from
ofproto/trace, where one DHCPDISCOVER ends."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import ovs_ofctl as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "ovs_ofctl"
SOS = "hotsos/sos_commands/openvswitch/"
DISCOVER = "udp,dl_dst=ff:ff:ff:ff:ff:ff,nw_src=0.0.0.0,nw_dst=255.255.255.255,udp_src=68,udp_dst=67"
# fixture -> the command that produced it (None: a sosreport file, known by its path)
CASES = {
    "lab-compute.ovs-ofctl_dump-flows_br-int": "ovs-ofctl dump-flows br-int",
    "lab-compute.ovs-ofctl_dump-flows_br-tun": "ovs-ofctl dump-flows br-tun",
    "lab-compute.ovs-ofctl_-O_OpenFlow13_dump-flows_br-int": "ovs-ofctl -O OpenFlow13 dump-flows br-int",
    "lab-compute.ovs-ofctl_-O_OpenFlow13_dump-flows_br-tun": "ovs-ofctl -O OpenFlow13 dump-flows br-tun",
    "lab-network.ovs-ofctl_dump-flows_br-int": "ovs-ofctl dump-flows br-int",
    "lab-network.ovs-ofctl_dump-flows_br-tun": "ovs-ofctl dump-flows br-tun",
    "lab-compute.ovs-appctl_ofproto.trace_br-int_vm1": f"ovs-appctl ofproto/trace br-int in_port=10,{DISCOVER}",
    "lab-compute.ovs-appctl_ofproto.trace_br-int_vm2": f"ovs-appctl ofproto/trace br-int in_port=11,{DISCOVER}",
    SOS + "ovs-ofctl_dump-flows_br-tun": None,
    SOS + "ovs-ofctl_-O_OpenFlow13_dump-flows_br-int": None,
    SOS + "ovs-ofctl_dump-flows_br-ex": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def flows(name: str) -> list[F.OvsFlow]:
    facts = run(name, command=CASES[name])
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return facts


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_dead_port_drop_flow_counts_vm2s_discovers():
    br_int = flows("lab-compute.ovs-ofctl_dump-flows_br-int")
    assert {f.bridge for f in br_int} == {"br-int"}
    (dead,) = [f for f in br_int if f.match == {"in_port": "11"} and f.table == 0]
    assert dead.priority == 2 and dead.actions == "drop" and dead.n_packets > 0
    (vlan4095,) = [f for f in br_int if f.priority == 65535]
    assert vlan4095.match == {"vlan_tci": "0x0fff/0x1fff"} and vlan4095.actions == "drop"
    (arp,) = [f for f in br_int if f.table == 24 and f.priority == 2]
    assert arp.match == {"arp": "", "in_port": "10", "arp_spa": "10.0.0.5"}  # bare `arp` kept
    assert arp.cookie == "0x8c1a7e5f0b2d4c93" and arp.duration is not None


def test_tunnel_bridge_maps_vlan_to_vni_and_learns_the_guest():
    net = flows("lab-network.ovs-ofctl_dump-flows_br-tun")
    (t4,) = [f for f in net if f.table == 4 and f.priority == 1]
    assert t4.match == {"tun_id": "0x3e9"} and t4.actions == "mod_vlan_vid:1,resubmit(,10)"
    assert t4.n_packets > 0
    # the network node learned vm1's MAC from its DHCPDISCOVER (table 10 learn -> table 20)
    (learned,) = [f for f in net if f.table == 20 and f.priority == 1]
    assert learned.match["dl_dst"] == "fa:16:3e:4a:0b:91"
    (t10,) = [f for f in net if f.table == 10]
    assert P.split_actions(t10.actions) == [
        "learn(table=20,hard_timeout=300,priority=1,cookie=0x8c1a7e5f0b2d4c93,NXM_OF_VLAN_TCI[0..11],"
        "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
        "output:OXM_OF_IN_PORT[])", "output:1"]


def test_openflow13_reply_reads_like_openflow10():
    of10 = flows("lab-compute.ovs-ofctl_dump-flows_br-tun")
    of13 = flows("lab-compute.ovs-ofctl_-O_OpenFlow13_dump-flows_br-tun")
    assert len(of10) == len(of13) and {f.table for f in of10} == {f.table for f in of13}
    assert all(f.idle_age is None for f in of13) and all(f.idle_age is not None for f in of10)


def test_real_sosreport_flows():
    tun = flows(SOS + "ovs-ofctl_dump-flows_br-tun")
    assert len(tun) == 39 and {f.bridge for f in tun} == {"br-tun"}  # from the file name
    first = tun[0]
    assert (first.table, first.priority, first.match, first.actions) == (0, 1, {"in_port": "1"}, "resubmit(,1)")
    assert (first.n_packets, first.n_bytes, first.idle_age, first.duration) == (1226, 130651, 2, 62960.044)
    vni = {f.match["tun_id"]: f.actions for f in tun if f.table == 4 and "tun_id" in f.match}
    assert vni == {"0x3e9": "mod_vlan_vid:1,resubmit(,9)", "0x4d1": "mod_vlan_vid:3,resubmit(,9)"}
    learned = [f for f in tun if f.table == 20 and f.priority == 1]
    assert len(learned) == 6 and all("vlan_tci" in f.match for f in learned)
    of13 = flows(SOS + "ovs-ofctl_-O_OpenFlow13_dump-flows_br-int")
    assert len(of13) == 110 and of13[0].priority == 65535 and of13[0].bridge == "br-int"
    assert flows(SOS + "ovs-ofctl_dump-flows_br-ex")[0].actions == "NORMAL"


def test_trace_of_a_discover_from_the_dead_vlan_ends_in_drop():
    (t,) = run("lab-compute.ovs-appctl_ofproto.trace_br-int_vm2",
               command=CASES["lab-compute.ovs-appctl_ofproto.trace_br-int_vm2"])
    assert t.bridge == "br-int" and t.dropped and t.datapath_actions == "drop"
    assert t.steps == ["br-int table 0: in_port=11, priority 2, cookie 0x8c1a7e5f0b2d4c93 -> drop"]
    assert "dl_src=fa:16:3e:7d:21:c4" in t.flow


def test_trace_of_vm1s_discover_reaches_the_tunnel():
    (t,) = run("lab-compute.ovs-appctl_ofproto.trace_br-int_vm1",
               command=CASES["lab-compute.ovs-appctl_ofproto.trace_br-int_vm1"])
    assert not t.dropped and "tnl_push" in t.datapath_actions and "vni=0x3e9" in t.datapath_actions
    assert [s.split(":")[0] for s in t.steps] == [
        "br-int table 0", "br-int table 25", "br-int table 60", "br-tun table 0", "br-tun table 2",
        "br-tun table 22", "br-phy table 0"]
    assert t.steps[5].endswith("-> strip_vlan, load:0x3e9->NXM_NX_TUN_ID[], output:2")


def test_flow_line_shapes():
    f = P.parse_flow(" cookie=0x0, duration=1.5s, table=0, n_packets=0, n_bytes=0, idle_age=1, actions=NORMAL")
    assert f["priority"] == 32768 and f["match"] == {} and f["actions"] == "NORMAL"
    f = P.parse_flow(" cookie=0x1, duration=2.0s, table=0, n_packets=3, n_bytes=4, reset_counts "
                     "priority=5,in_port=\"qvo1\" actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:2")
    assert f["match"] == {"in_port": '"qvo1"'} and f["priority"] == 5
    assert P.split_actions(f["actions"]) == ["ct(commit,zone=NXM_NX_REG6[0..15])", "output:2"]
    assert P.parse_flow("ovs-ofctl: br-tun is not a bridge or a socket") is None
    facts = run("x", "ovs-ofctl: br-tun is not a bridge or a socket\n", command="ovs-ofctl dump-flows br-tun")
    assert isinstance(facts[0], F.Unparsed)


def test_registry_routes_here():
    for cmd in ("ovs-ofctl dump-flows br-tun", "ovs-ofctl -O OpenFlow13 dump-flows br-int",
                "ovs-appctl ofproto/trace br-int in_port=1"):
        assert parsers.for_command(cmd) is P, cmd
    for name in ("ovs-ofctl_dump-flows_br-tun", "ovs-ofctl_-O_OpenFlow13_dump-flows_br-int"):
        assert parsers.for_path("sos/sos_commands/openvswitch/" + name) is P, name
    section = Section.from_text("", F.Origin(path="sos/sos_commands/openvswitch/ovs-ofctl_-O_OpenFlow13_dump-flows_br-tun"))
    assert P.bridge_of(section) == "br-tun"


@pytest.mark.parametrize("name", sorted(CASES))
def test_sniff_recognises_flow_dumps_and_traces(name: str):
    assert parsers.sniff((FIXTURES / name).read_text()[:8192]) is P


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()[:40]]


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=80)), max_size=30),
       st.sampled_from([None, "ovs-ofctl dump-flows br-int", "ovs-appctl ofproto/trace br-int x"]))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines, command):
    for fact in run("fuzz", "\n".join(lines), command=command):
        assert isinstance(fact, (F.OvsFlow, F.OvsTrace, F.Unparsed))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
