"""What a command line says about its output: namespace, interface, files, filters, and the
command a sosreport file name stands for."""

import pytest

from whynoip.evidence.command import command_from_filename, parse


def test_namespace_interface_and_filter_from_an_operators_capture():
    c = parse("sudo ip netns exec qdhcp-6f1c2a3b tcpdump -nnvvi tap5c1d0e77-a2 port 67 | grep -i offer")
    assert c.core == "tcpdump -nnvvi tap5c1d0e77-a2 port 67"
    assert c.namespace == "qdhcp-6f1c2a3b"
    assert c.interface == "tap5c1d0e77-a2"
    assert c.filters == ["grep -i offer"]
    assert not c.reader


@pytest.mark.parametrize("line, ns, core", [
    ("ip -n qdhcp-x addr", "qdhcp-x", "ip addr"),
    ("ip -netns qdhcp-x -4 a", "qdhcp-x", "ip -4 a"),
    ("nsenter --net=/run/netns/qdhcp-a -- ip a", "qdhcp-a", "ip a"),
    ("sudo -u neutron ip netns exec qrouter-1 sudo ip route", "qrouter-1", "ip route"),
    ("ip netns exec ns1 ip -4 addr 2>&1 | less", "ns1", "ip -4 addr"),
])
def test_namespaces(line, ns, core):
    c = parse(line)
    assert (c.namespace, c.core) == (ns, core)


def test_wrappers_are_stripped():
    assert parse("watch -n 1 ovs-ofctl dump-flows br-tun").core == "ovs-ofctl dump-flows br-tun"
    assert parse("timeout 10 tcpdump -i eth0 -w x.pcap").interface == "eth0"
    assert parse("env LC_ALL=C ps aux").core == "ps aux"
    assert parse("ip a > out.txt").core == "ip a"


def test_readers_name_their_files():
    c = parse("grep -n ERROR /var/log/neutron/dhcp-agent.log /var/log/syslog")
    assert c.reader and c.files == ["/var/log/neutron/dhcp-agent.log", "/var/log/syslog"]
    assert parse("tail -n 100 /var/log/syslog").files == ["/var/log/syslog"]
    assert parse("grep -e DHCP -A 3 /var/log/syslog").files == ["/var/log/syslog"]
    assert parse("cat /var/lib/neutron/dhcp/x/host").files == ["/var/lib/neutron/dhcp/x/host"]
    assert parse("zcat /var/log/syslog.2.gz | grep dnsmasq").files == ["/var/log/syslog.2.gz"]


def test_grep_i_is_not_an_interface():
    assert parse("grep -i dhcp /var/log/syslog").interface is None


def test_unbalanced_quote_does_not_raise():
    c = parse('grep "DHCPACK /var/log/syslog')
    assert c.program == "grep"


@pytest.mark.parametrize("name, command", [
    ("ip_netns_exec_qdhcp-X_ip_address_show", "ip netns exec qdhcp-X ip address show"),
    ("ovs-vsctl_-t_5_get_Open_vSwitch_._other_config", "ovs-vsctl -t 5 get Open_vSwitch . other_config"),
    ("ethtool_-k_vxlan_sys_4789", "ethtool -k vxlan_sys_4789"),
    ("crm_mon_-1", "crm_mon -1"),
    ("ovs-appctl_dpctl.dump-flows_-m_system_ovs-system", "ovs-appctl dpctl/dump-flows -m system ovs-system"),
    ("openstack_port_list_-f_json", "openstack port list -f json"),
    ("date_--utc", "date --utc"),
])
def test_sosreport_names_back_to_commands(name, command):
    assert command_from_filename(name) == command


def test_sosreport_namespace_command():
    c = parse(command_from_filename("ip_netns_exec_qdhcp-6f1c2a3b-5d4e_ip_address_show"))
    assert c.namespace == "qdhcp-6f1c2a3b-5d4e"
    assert c.core == "ip address show"
