"""The OpenStack API view: what the clients print about ports, networks, agents and
services becomes typed facts, whichever client and output format the operator used."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import openstack_cli as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "openstack_cli"
RAW = sorted(p for p in FIXTURES.iterdir()
             if p.is_file() and not p.name.endswith((".md", ".expected.json")))


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    origin = F.Origin(path=f"openstack_cli/{name}", line=1, command=command)
    return list(P.parse(Section.from_text(text, origin)))


def of(facts, cls):
    return [f for f in facts if isinstance(f, cls)]


@pytest.mark.parametrize("path", RAW, ids=[p.name for p in RAW])
def test_fixture_gives_the_expected_facts(path: Path):
    expected = F.from_json((path.parent / (path.name + ".expected.json")).read_bytes())
    assert run(path.name) == expected


# --- agents -----------------------------------------------------------------------------

def test_disabled_dhcp_agent_is_alive_but_admin_down():
    agents = of(run("openstack_network_agent_list"), F.ApiAgent)
    dhcp = {a.host: a for a in agents if a.agent_type == "DHCP agent"}
    assert dhcp["HostA"].admin_state_up is False and dhcp["HostA"].alive is True
    assert dhcp["HostB"].admin_state_up is True
    assert dhcp["HostB"].availability_zone == "nova" and dhcp["HostA"].availability_zone is None


def test_old_neutron_client_xxx_means_dead():
    agents = of(run("neutron_agent-list"), F.ApiAgent)
    dead = sorted((a.agent_type, a.host) for a in agents if a.alive is False)
    assert dead == [("L3 agent", "sv1"), ("L3 agent", "sv2"), ("Metadata agent", "sv1"),
                    ("Metadata agent", "sv2")]
    assert all(a.alive for a in agents if a.agent_type == "DHCP agent")


def test_openstackclient_XXX_in_a_table_cut_short():
    (agent,) = run("openstack_network_agent_list_dead")
    assert isinstance(agent, F.ApiAgent)
    assert agent.alive is False and agent.admin_state_up is True
    assert agent.agent_type == "Open vSwitch agent" and agent.host == "neutron-agent"


def test_agents_hosting_a_network_name_the_network():
    facts = run("openstack_network_agent_list_--network_net2")
    agents = [f for f in facts if isinstance(f, F.ApiAgent)]
    assert [(a.host, a.networks, a.agent_type) for a in agents] == [
        ("HostA", ["net2"], "DHCP agent"), ("HostB", ["net2"], "DHCP agent")]
    assert [(n.id, n.dhcp_agents) for n in facts if isinstance(n, F.ApiNetwork)] == [("net2", ["HostA", "HostB"])]
    old = [f for f in run("neutron_dhcp-agent-list-hosting-net_9d2f02e1-5877-4f0a-a5b0-c18fc77018e4")
           if isinstance(f, F.ApiAgent)]
    assert {a.host for a in old} == {"controller3", "controller2"}
    assert all(a.networks == ["9d2f02e1-5877-4f0a-a5b0-c18fc77018e4"] and a.alive for a in old)


def test_agent_show_heartbeat_and_multiline_configurations():
    (agent,) = run("openstack_network_agent_show")
    assert agent.id == "2444c54d-0d28-460c-ab0f-cd1e6b5d3c7b"
    assert agent.heartbeat == 1481698404.0  # 2016-12-14 06:53:24 UTC
    assert agent.origin.line == 18 and "id" in agent.origin.text


def test_api_body_heartbeat_timestamp():
    (agent,) = run("sniffed_neutron_agents_api.json")
    assert agent.alive is False and agent.admin_state_up is False
    assert agent.heartbeat == 1364290513.0  # 2013-03-26T09:35:13


# --- ports --------------------------------------------------------------------------------

def test_port_show_binding_and_two_fixed_ips():
    (port,) = run("openstack_port_show_b3ecc464-1263-44a7-8c38-2d8a52751773")
    assert port.mac == "fa:16:3e:a8:ce:b8"
    assert port.fixed_ips == ["203.0.113.8", "2001:db8:10::8"]
    assert port.subnet_ids == ["277eca5d-9869-474b-960e-6da5951d09f7", "eab47748-3f0a-4775-a09f-b0c24bb64bc4"]
    assert (port.binding_host, port.binding_vif_type, port.status) == ("vultr.guest", "ovs", "ACTIVE")
    # dns_assignment also holds ip_address='...': it must not leak into fixed_ips
    assert len(port.fixed_ips) == 2


def test_unbound_port_is_down():
    (port,) = run("openstack_port_create_--network_my-net_--dns-name_my-port_test")
    assert port.binding_vif_type == "unbound" and port.binding_host is None and port.status == "DOWN"


def test_neutron_port_show_fixed_ip_wrapped_over_two_lines():
    (port,) = run("neutron_port-show_f148ffeb-3c26-4067-bc5f-5c3dfddae2f5")
    assert port.fixed_ips == ["203.0.113.11"]
    assert port.subnet_ids == ["67c251d9-2b7a-4200-99f6-e13785b0334d"]


def test_quantum_port_show_reads_like_neutron():
    text = (FIXTURES / "neutron_port-show_f148ffeb-3c26-4067-bc5f-5c3dfddae2f5").read_text()
    (port,) = run("pasted", text, command="quantum port-show f148ffeb-3c26-4067-bc5f-5c3dfddae2f5")
    assert isinstance(port, F.ApiPort) and port.fixed_ips == ["203.0.113.11"]
    assert parsers.for_command("quantum port-show f148ffeb") is P


def test_port_list_multiline_cell():
    (port,) = run("openstack_port_list_--device-id_66c13cb4-3002-4ab3-8400-7efc2659c363")
    assert port.fixed_ips == ["203.0.113.8", "2001:db8:10::8"] and port.mac == "fa:16:3e:a8:ce:b8"


@pytest.mark.parametrize("fixed", [
    "ip_address='10.0.0.5', subnet_id='ab08da59-0dc8-4ffb-95a6-60ea65f42c49'",
    '{"subnet_id": "ab08da59-0dc8-4ffb-95a6-60ea65f42c49", "ip_address": "10.0.0.5"}',
    [{"ip_address": "10.0.0.5", "subnet_id": "ab08da59-0dc8-4ffb-95a6-60ea65f42c49"}],
    "[{u'subnet_id': u'ab08da59-0dc8-4ffb-95a6-60ea65f42c49', u'ip_address': u'10.0.0.5'}]",
])
def test_fixed_ips_in_every_shape(fixed):
    assert P._fixed_ips(fixed) == (["10.0.0.5"], ["ab08da59-0dc8-4ffb-95a6-60ea65f42c49"])


# --- -f json / yaml / value ---------------------------------------------------------------
# The key sets below are the ones python-openstackclient prints (network/v2/port.py and its
# functional tests read them back); the values are those of the port show fixture above.

PORT_LIST_JSON_NEW = [{"ID": "b3ecc464-1263-44a7-8c38-2d8a52751773", "Name": "",
                       "MAC Address": "fa:16:3e:a8:ce:b8",
                       "Fixed IP Addresses": [{"subnet_id": "277eca5d-9869-474b-960e-6da5951d09f7",
                                               "ip_address": "203.0.113.8"}],
                       "Status": "ACTIVE"}]
PORT_LIST_JSON_OLD = [dict(PORT_LIST_JSON_NEW[0], **{
    "Fixed IP Addresses": "ip_address='203.0.113.8', subnet_id='277eca5d-9869-474b-960e-6da5951d09f7'"})]


@pytest.mark.parametrize("doc", [PORT_LIST_JSON_NEW, PORT_LIST_JSON_OLD], ids=["new", "old"])
def test_port_list_json_keys(doc):
    text = json.dumps(doc, indent=2)
    (port,) = run("openstack_port_list_-f_json", text)
    assert port.id == "b3ecc464-1263-44a7-8c38-2d8a52751773" and port.fixed_ips == ["203.0.113.8"]
    assert port.mac == "fa:16:3e:a8:ce:b8" and port.origin.line == 2


@pytest.mark.parametrize("admin, alive, expect", [(True, True, (True, True)), ("UP", ":-)", (True, True)),
                                                   (False, False, (False, False)), ("DOWN", "XXX", (False, False))])
def test_port_show_and_agent_list_json_old_and_new_booleans(admin, alive, expect):
    show = {"id": "b3ecc464-1263-44a7-8c38-2d8a52751773", "admin_state_up": admin,
            "binding_host_id": "vultr.guest", "binding_vif_type": "binding_failed",
            "fixed_ips": [{"ip_address": "203.0.113.8", "subnet_id": "277eca5d-9869-474b-960e-6da5951d09f7"}],
            "mac_address": "fa:16:3e:a8:ce:b8", "status": "DOWN"}
    (port,) = run("openstack_port_show_-f_json", json.dumps(show, indent=2))
    assert port.admin_state_up is expect[0] and port.binding_vif_type == "binding_failed"
    agents = [{"ID": "2444c54d-0d28-460c-ab0f-cd1e6b5d3c7b", "Agent Type": "DHCP agent", "Host": "HostA",
               "Availability Zone": "nova", "Alive": alive, "State": admin, "Binary": "neutron-dhcp-agent"}]
    (agent,) = run("openstack_network_agent_list_-f_json", json.dumps(agents, indent=2))
    assert (agent.admin_state_up, agent.alive) == expect


def test_subnet_show_json_pools_and_routes():
    show = {"id": "5c37348e-e7da-439b-8c23-2af47d93aee5", "enable_dhcp": False, "cidr": "172.16.1.0/24",
            "allocation_pools": [{"start": "172.16.1.2", "end": "172.16.1.254"}],
            "host_routes": [{"destination": "169.254.169.254/32", "nexthop": "172.16.1.2"}],
            "dns_nameservers": ["8.8.4.4"], "network_id": "b9273876-5946-4f02-a4da-838224a144e7"}
    (subnet,) = run("openstack_subnet_show_-f_json", json.dumps(show))
    assert subnet.enable_dhcp is False and subnet.allocation_pools == ["172.16.1.2-172.16.1.254"]
    assert subnet.host_routes == ["169.254.169.254/32 via 172.16.1.2"] and subnet.dns_nameservers == ["8.8.4.4"]


def test_yaml_list():
    text = ("- Binary: nova-compute\n  Host: compute1\n  ID: 3\n  State: down\n  Status: enabled\n"
            "  Updated At: '2016-02-09T23:11:20.000000'\n  Zone: nova\n")
    (svc,) = run("openstack_compute_service_list_-f_yaml", text)
    assert (svc.binary, svc.host, svc.state) == ("nova-compute", "compute1", "down")
    assert svc.updated_at == 1455059480.0


def test_value_format_with_columns():
    (port,) = run("x", "binding_failed\ncompute1\n",
                  command="openstack port show b3ecc464-1263-44a7-8c38-2d8a52751773 -f value "
                          "-c binding_vif_type -c binding_host_id")
    assert port.id == "b3ecc464-1263-44a7-8c38-2d8a52751773"
    assert (port.binding_vif_type, port.binding_host) == ("binding_failed", "compute1")
    facts = run("x", "2444c54d-0d28-460c-ab0f-cd1e6b5d3c7b HostA False\n",
                command="openstack network agent list -f value -c ID -c Host -c Alive")
    assert [(a.host, a.alive) for a in facts] == [("HostA", False)]
    (u,) = run("x", "2444c54d DHCP agent HostA\n", command="openstack network agent list -f value")
    assert isinstance(u, F.Unparsed) and "columns unknown" in u.reason


# --- kinds, sniffing, registry ------------------------------------------------------------

def test_wrapped_ids_are_joined():
    (net,) = run("openstack_network_list_--agent_22467163-01ea-4231-ba45-3bd316f425e6")
    assert net.id == "ad88e059-e7fa-4cf7-8857-6731a2a3a554"
    assert net.subnets == ["8086db87-3a7a-4cad-88c9-7bab9bc69258"] and net.name == "net1"


def test_kind_from_columns_when_no_command():
    facts = run("sniffed_neutron_net-show.txt")
    (net,) = of(facts, F.ApiNetwork)
    assert (net.network_type, net.segmentation_id, net.mtu) == ("local", None, 0)
    # the prompt lines around the table are not dropped
    assert [u.origin.line for u in of(facts, F.Unparsed)] == [1, 18]
    assert P.sniff((FIXTURES / "sniffed_neutron_net-show.txt").read_text())
    assert P.sniff((FIXTURES / "openstack_network_agent_list").read_text())


def test_subnet_from_create_output():
    (subnet,) = of(run("openstack_subnet_create_--network_selfservice"), F.ApiSubnet)
    assert subnet.allocation_pools == ["172.16.1.2-172.16.1.254"] and subnet.gateway_ip == "172.16.1.1"
    assert subnet.enable_dhcp is True and subnet.cidr == "172.16.1.0/24"


def test_services_down_and_times():
    svcs = run("nova_service-list")
    (down,) = [s for s in svcs if s.state == "down"]
    assert (down.binary, down.host, down.updated_at) == ("nova-consoleauth", "sv3", 1441511740.0)


def test_servers_addresses():
    servers = run("openstack_server_list")
    assert servers[3].addresses == {"net2": ["198.51.100.2"]} and servers[3].name == "myserver4"
    assert P._addresses("private=fde6:3251:4818:0:f816:3eff:feae:16b5, 10.0.0.7") == {
        "private": ["fde6:3251:4818:0:f816:3eff:feae:16b5", "10.0.0.7"]}
    assert P._addresses({"net1": ["10.0.0.3"], "net2": [{"addr": "10.1.0.4"}]}) == {
        "net1": ["10.0.0.3"], "net2": ["10.1.0.4"]}


@pytest.mark.parametrize("command, kind", [
    ("openstack port show b3ecc464", "port"), ("openstack --os-cloud admin network agent list", "agent"),
    ("openstack network agent list --network net2", "agent_hosting"),
    ("neutron dhcp-agent-list-hosting-net net2", "agent_hosting"), ("neutron agent-list", "agent"),
    ("openstack network list --agent 2244", "network"), ("neutron net-list", "network"),
    ("openstack subnet show s1", "subnet"), ("nova list", "server"), ("nova service-list", "service"),
    ("openstack compute service list", "service"), ("openstack server show vm1", "server"),
])
def test_command_kinds_and_registry(command, kind):
    assert P.kind_of_command(command) == kind
    assert parsers.for_command(command) is P


@pytest.mark.parametrize("command", ["nova flavor-list", "openstack console log show vm1",
                                     "nova console-log vm1", "ps aux | grep neutron"])
def test_commands_that_are_not_ours(command):
    assert not any(re.search(c, command) for c in P.COMMANDS)
    assert parsers.for_command(command) is not P


@pytest.mark.parametrize("path", ["lab/evidence/net1/openstack_port_list_-f_json", "openstack_network_agent_list",
                                  "sosreport-x/sos_commands/openstack_neutron/neutron_agent-list"])
def test_paths_route_here(path):
    assert parsers.for_path(path) is P


def test_bad_input_becomes_unparsed():
    (u,) = run("openstack_port_list_-f_json", '[{"ID": "x", ')
    assert isinstance(u, F.Unparsed) and "bad JSON" in u.reason
    facts = run("mystery", "+---+---+\n| a | b |\n+---+---+\n| 1 | 2 |\n+---+---+\n")
    assert len(facts) == 1 and "unknown kind" in facts[0].reason
    (u,) = run("x", "+------+\n| Field | Value |\n", command="openstack port show p")
    assert isinstance(u, F.Unparsed)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("+-|: \n{}[]\"',=abcdeFV0123456789.xX)(")), max_size=400),
       st.sampled_from([None, "openstack port list", "neutron agent-list", "nova list -f value -c ID",
                        "openstack network agent list --network n -f json", "openstack port show p -f yaml"]))
def test_fuzz_never_raises(text, command):
    for fact in run("fuzz", text, command=command):
        assert isinstance(fact, F.Fact)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_bytes_never_raise(data):
    list(run("fuzz", data.decode("utf-8", "replace")))


def test_agent_listing_for_a_network_says_which_hosts_serve_it_even_when_none_does():
    facts = run("x", text="[]\n", command="openstack network agent list --network 3419f1a2-2bd9-4cdf-813f-780205fd99e5 -f json")
    nets = [f for f in facts if isinstance(f, F.ApiNetwork)]
    assert [(n.id, n.dhcp_agents) for n in nets] == [("3419f1a2-2bd9-4cdf-813f-780205fd99e5", [])]
    # a plain agent listing says nothing about any network's hosting
    assert not [f for f in run("x", text="[]\n", command="openstack network agent list -f json")
                if isinstance(f, F.ApiNetwork)]
