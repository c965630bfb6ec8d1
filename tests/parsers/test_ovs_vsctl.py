"""Where each Neutron port is plugged into Open vSwitch: bridge, local VLAN tag (4095 is
the dead VLAN), patch and tunnel options, a missing device's error, and from the
records the Neutron port id and ofport -- whichever of show/list/dump/JSON was kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import ovs_vsctl as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "ovs_vsctl"
SOS = "hotsos/sos_commands/openvswitch/"
VM1 = "5c1d0e77-a2b4-4c1e-9f00-3d2a1b0c9e8f"
# fixture -> the command that produced it (None: a sosreport file, known by its path)
CASES = {
    "lab-compute.ovs-vsctl_show": "ovs-vsctl show",
    "lab-network.ovs-vsctl_show": "ovs-vsctl show",
    "lab-compute.ovs-vsctl_-f_json_show": "ovs-vsctl -f json show",
    "lab-compute.ovs-vsctl_list_interface": "ovs-vsctl list interface",
    "lab-compute.ovs-vsctl_list_port": "ovs-vsctl list port",
    "lab-compute.ovs-vsctl_list_bridge": "ovs-vsctl list bridge",
    "lab-compute.ovs-vsctl_--format=json_list_interface": "ovs-vsctl --format=json list interface",
    "lab-compute.ovs-vsctl_--format=json_list_port": "ovs-vsctl --format=json list port",
    "lab-compute.ovsdb-client_-f_list_dump": "ovsdb-client -f list dump",
    "lab-compute.ovsdb-client_-f_json_dump": "ovsdb-client -f json dump",
    SOS + "ovs-vsctl_-t_5_show": None,
    SOS + "ovs-vsctl_-t_5_list_interface": None,
    SOS + "ovs-vsctl_-t_5_list_bridge": None,
    SOS + "ovsdb-client_-f_list_dump": None,
    SOS + "ovs-vsctl_get_Interface_patch-int_options": None,
    SOS + "ovs-vsctl_get_Interface_vxlan-0a000072_options": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def ports(name: str) -> dict[str, F.OvsPort]:
    facts = run(name, command=CASES[name])
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return {f.name: f for f in facts if isinstance(f, F.OvsPort)}


def bridges(name: str) -> dict[str, F.OvsBridge]:
    return {f.name: f for f in run(name, command=CASES[name]) if isinstance(f, F.OvsBridge)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_show_dead_vlan_missing_device_and_tunnel():
    got = ports("lab-compute.ovs-vsctl_show")
    assert got["qvo9a8b7c6d-1e"].tag == 4095 and got["qvo9a8b7c6d-1e"].bridge == "br-int"
    assert got["qvo5c1d0e77-a2"].tag == 1
    assert got["qvod3adbeef-00"].error == "could not open network device qvod3adbeef-00 (No such device)"
    assert got["patch-tun"].options == {"peer": "patch-int"} and got["patch-tun"].interface_type == "patch"
    vx = got["vxlan-ac100002"]
    assert vx.bridge == "br-tun" and vx.interface_type == "vxlan"
    assert vx.options == {"df_default": "true", "in_key": "flow", "local_ip": "172.16.0.1",
                          "out_key": "flow", "remote_ip": "172.16.0.2"}
    br = bridges("lab-compute.ovs-vsctl_show")
    assert br["br-int"].fail_mode == "secure" and br["br-int"].datapath_type == "netdev"
    assert br["br-int"].controllers == ["tcp:127.0.0.1:6633"] and br["br-phy"].controllers == []


def test_show_ignores_the_json_format_option():
    # `ovs-vsctl -f json show` prints the same tree as `show`: read by content, not by flag
    def strip(name):
        return [(type(f).__name__, f.name, getattr(f, "tag", None)) for f in run(name, command=CASES[name])]
    assert strip("lab-compute.ovs-vsctl_-f_json_show") == strip("lab-compute.ovs-vsctl_show")


def test_list_interface_gives_the_neutron_port_id_and_ofport():
    for name in ("lab-compute.ovs-vsctl_list_interface", "lab-compute.ovs-vsctl_--format=json_list_interface"):
        got = ports(name)
        qvo = got["qvo5c1d0e77-a2"]
        assert qvo.external_ids["iface-id"] == VM1
        assert qvo.external_ids["attached-mac"] == "fa:16:3e:4a:0b:91"
        assert qvo.external_ids["iface-status"] == "active"
        assert qvo.ofport == 10 and qvo.bridge is None and qvo.tag is None  # records alone
        assert got["qvod3adbeef-00"].ofport == -1 and got["qvod3adbeef-00"].error.startswith("could not open")


def test_list_port_gives_tags():
    for name in ("lab-compute.ovs-vsctl_list_port", "lab-compute.ovs-vsctl_--format=json_list_port"):
        got = ports(name)
        assert got["qvo9a8b7c6d-1e"].tag == 4095 and got["qvo5c1d0e77-a2"].tag == 1
        assert got["patch-tun"].tag is None


def test_a_dump_joins_bridges_ports_and_interfaces():
    for name in ("lab-compute.ovsdb-client_-f_list_dump", "lab-compute.ovsdb-client_-f_json_dump"):
        got = ports(name)
        qvo = got["qvo9a8b7c6d-1e"]
        assert (qvo.bridge, qvo.tag, qvo.ofport) == ("br-int", 4095, 11)
        assert qvo.external_ids["attached-mac"] == "fa:16:3e:7d:21:c4"
        assert got["vxlan-ac100002"].options["remote_ip"] == "172.16.0.2"
        br = bridges(name)
        assert br["br-tun"].controllers == ["tcp:127.0.0.1:6633"] and br["br-tun"].fail_mode == "secure"
    # show and dump describe the same ports
    show = ports("lab-compute.ovs-vsctl_show")
    dump = ports("lab-compute.ovsdb-client_-f_list_dump")
    assert {(p.bridge, p.name, p.tag, p.interface_type) for p in show.values()} == \
        {(p.bridge, p.name, p.tag, p.interface_type) for p in dump.values()}


def test_real_sosreport_show_and_records():
    got = ports(SOS + "ovs-vsctl_-t_5_show")
    assert got["tap0e778df8-ca"].tag == 3 and got["tap0e778df8-ca"].bridge == "br-int"
    assert got["vxlan-0a000085"].options["remote_ip"] == "10.0.0.133"
    assert got["vxlan-0a000085"].options["egress_pkt_mark"] == "0"
    assert bridges(SOS + "ovs-vsctl_-t_5_show")["br-ex"].fail_mode is None
    rec = ports(SOS + "ovs-vsctl_-t_5_list_interface")
    assert rec["sg-189f4c40-9d"].external_ids == {
        "attached-mac": "fa:16:3e:87:45:fc", "iface-id": "189f4c40-9da1-4c4c-ad24-1eeff45343c3",
        "iface-status": "active"}
    assert rec["sg-189f4c40-9d"].ofport == 7 and rec["sg-189f4c40-9d"].interface_type == "internal"
    dump = ports(SOS + "ovsdb-client_-f_list_dump")
    assert dump["tap0e778df8-ca"].bridge == "br-int" and dump["tap0e778df8-ca"].tag == 3
    assert bridges(SOS + "ovsdb-client_-f_list_dump")["br-data"].controllers == ["tcp:127.0.0.1:6633"]


def test_get_interface_options():
    (p,) = run(SOS + "ovs-vsctl_get_Interface_patch-int_options")
    assert (p.name, p.options, p.bridge) == ("patch-int", {"peer": "patch-tun"}, None)
    (v,) = run(SOS + "ovs-vsctl_get_Interface_vxlan-0a000072_options")
    assert v.options["local_ip"] == "10.0.0.128" and v.options["in_key"] == "flow"


def test_old_quoted_names_and_bad_lines():
    text = ('    Bridge br-int\n        Port "qvo7c7ae61e-05"\n            tag: 1\n'
            '            Interface "qvo7c7ae61e-05"\n    what is this\n')
    facts = run("x", text, command="ovs-vsctl show")
    port = next(f for f in facts if isinstance(f, F.OvsPort))
    assert (port.name, port.tag) == ("qvo7c7ae61e-05", 1)
    assert any(isinstance(f, F.Unparsed) and f.origin.line == 5 for f in facts)
    facts = run("x", 'external_ids        : {iface-id="unterminated}\n', command="ovs-vsctl list interface")
    assert isinstance(facts[0], F.Unparsed)


def test_registry_routes_here():
    for cmd in ("ovs-vsctl show", "ovs-vsctl -t 5 show", "ovs-vsctl list interface",
                "ovs-vsctl --format=json list port", "ovsdb-client -f list dump",
                "ovs-vsctl get Interface patch-int options"):
        assert parsers.for_command(cmd) is P, cmd
    for name in ("ovs-vsctl_-t_5_show", "ovs-vsctl_-t_5_list_interface", "ovsdb-client_-f_list_dump",
                 "ovs-vsctl_get_Interface_patch-int_options"):
        assert parsers.for_path("sos/sos_commands/openvswitch/" + name) is P, name


@pytest.mark.parametrize("name", sorted(n for n in CASES if "_get_" not in n))
def test_sniff_recognises_show_records_and_dumps(name: str):
    # (a lone `get` value such as `{peer=patch-tun}` is too little to tell)
    assert parsers.sniff((FIXTURES / name).read_text()[:8192]) is P


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()[:60]]


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=60)), max_size=30),
       st.sampled_from([None, "ovs-vsctl show", "ovs-vsctl list interface", "ovsdb-client -f json dump",
                        "ovs-vsctl get Interface x options"]))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines, command):
    for fact in run("fuzz", "\n".join(lines), command=command):
        assert isinstance(fact, (F.OvsBridge, F.OvsPort, F.Unparsed))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
