"""What the guest said: its DHCP client's console lines become events, so the doctor can
tell "the guest never asked" from "nobody answered" from "the server refused"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import console_log as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "console_log"
RAW = sorted(FIXTURES.glob("*.log"))
REF = 1700000000.0  # 2023-11-14: the year syslog stamps are read in


def run(name: str, text: str | None = None, path: str | None = None, command: str | None = None):
    if text is None:
        text = (FIXTURES / name).read_text()
    sec = Section.from_text(text, F.Origin(path=path or f"console_log/{name}", line=1, command=command))
    sec.ref_time = REF
    return list(P.parse(sec))


def events(facts):
    return [f.event for f in facts]


@pytest.mark.parametrize("path", RAW, ids=[p.name for p in RAW])
def test_fixture_gives_the_expected_facts(path: Path):
    expected = F.from_json((path.parent / (path.name + ".expected.json")).read_bytes())
    assert run(path.name) == expected


@pytest.mark.parametrize("client", ["busybox_udhcpc", "udhcpc"])
def test_udhcpc_success_noserver_nak(client):
    ok = run(f"{client}_success.log")
    assert events(ok) == ["client-started", "discover-sent", "request-sent", "lease-obtained"]
    assert (ok[-1].ip, ok[-1].server_ip, ok[-1].detail) == ("10.77.0.16", "10.77.0.2", "lease time 120")
    none = run(f"{client}_noserver.log")
    assert events(none).count("discover-sent") == 3 and none[-1].event == "no-lease"
    assert none[-1].detail == "failing" and none[-1].origin.line == 5
    nak = run(f"{client}_nak.log")
    i = events(nak).index("nak")
    assert nak[i - 1].event == "request-sent" and nak[i - 1].detail == "renew"
    assert nak[i - 1].server_ip == "10.77.0.2"
    assert [f.ip for f in nak if f.event == "lease-obtained"] == ["10.77.0.16", "10.77.0.36"]


def test_dhclient_stories():
    ok = run("dhclient_success.log")
    assert events(ok) == ["client-started", "discover-sent", "offer-received", "request-sent",
                          "ack-received", "lease-obtained"]
    offer = ok[2]
    assert (offer.ip, offer.server_ip, offer.client) == ("10.77.0.16", "10.77.0.2", "dhclient")
    assert ok[1].interface == "eth0" and ok[3].server_ip is None  # broadcast REQUEST
    none = run("dhclient_noserver.log")
    assert "no-lease" in events(none) and "offer-received" not in events(none)
    nak = run("dhclient_nak.log")
    assert events(nak)[1:3] == ["request-sent", "nak"]
    assert nak[1].ip == "10.66.0.50" and nak[2].server_ip == "10.77.0.2"
    assert nak[-1].event == "lease-obtained" and nak[-1].ip == "10.77.0.16"


def test_cirros_without_lease_and_without_metadata():
    facts = run("cirros_nolease_opsguide.log")
    assert facts[0].detail == "udhcpc 1.17.2"
    assert "no-lease" in events(facts) and facts[4].detail == "forking to background"
    assert facts[-1].event == "metadata-unreachable" and facts[-1].server_ip == "169.254.169.254"


def test_cloud_init_metadata_failures_with_times():
    facts = [f for f in run("cloudinit_url_helper_scylladb.log") if f.event == "metadata-unreachable"]
    assert len(facts) == 3 and facts[0].time == 1532512775.752  # 2018-07-25 09:59:35,752
    assert "169.254.169.254/2009-04-04/meta-data/instance-id [0/120s]" in facts[0].detail
    assert facts[1].origin.line == 10  # after the login prompt that cut into the line
    (f,) = run("cloudinit_openstack_no_route.log")
    assert "No route to host" in f.detail and f.client == "cloud-init"


def test_ci_info_devices_down():
    facts = run("cloudinit_ci_info_down_eks.log")
    assert [(f.event, f.interface) for f in facts] == [
        ("interface-down", "enp192s0"), ("interface-down", "enp193s0"), ("interface-down", "enp71s0")]


def test_busybox_wordings_of_every_age():
    mid = run("udhcpc_1.27_virtme.log")
    assert mid[-1].event == "lease-obtained" and mid[-1].ip == "192.168.123.76" and mid[-1].server_ip is None
    new = run("udhcpc_1.36_syslog_tezuka.log")
    assert events(new) == ["client-started", "discover-sent", "discover-sent", "discover-sent"]
    assert new[2].time - new[1].time == 3.0  # syslog stamps, year from the evidence date


@pytest.mark.parametrize("line, event, ip, server", [
    # busybox before 1.27, as cirros 0.3 prints it (networking/udhcp/dhcpc.c bb_info_msg texts)
    ("Sending select for 10.0.0.5...", "request-sent", "10.0.0.5", None),
    ("Lease of 10.0.0.5 obtained, lease time 86400", "lease-obtained", "10.0.0.5", None),
    ("No lease, failing", "no-lease", None, None),
    ("Received DHCP NAK", "nak", None, None),
    ("Starting network...", "client-started", None, None),
    ("udhcpc (v1.20.1) started", "client-started", None, None),
    # ISC dhclient 3.x
    ("DHCPOFFER from 10.0.0.2", "offer-received", None, "10.0.0.2"),
    ("DHCPACK from 10.0.0.2", "ack-received", None, "10.0.0.2"),
    # systemd-networkd, old and new wording (src/network/networkd-dhcp4.c)
    ("eth0: DHCPv4 address 10.0.0.5/24 via 10.0.0.1", "lease-obtained", "10.0.0.5", None),
    ("eth0: DHCPv4 address 10.0.0.5/24, gateway 10.0.0.1 acquired from 10.0.0.2", "lease-obtained",
     "10.0.0.5", "10.0.0.2"),
    ("Jul 10 09:23:45 localhost systemd-networkd[652]: eth0: DHCPv4 client: DISCOVER", "discover-sent", None, None),
])
def test_single_lines_of_older_wordings(line, event, ip, server):
    (f,) = run("inline", line + "\n")
    assert (f.event, f.ip, f.server_ip) == (event, ip, server)


def test_networkd_names_the_interface_and_gateway():
    (f,) = run("inline", "eth0: DHCPv4 address 10.0.0.5/24, gateway 10.0.0.1 acquired from 10.0.0.2\n")
    assert (f.interface, f.client, f.detail) == ("eth0", "systemd-networkd", "gateway 10.0.0.1")


@pytest.mark.parametrize("path, command, guest", [
    ("evidence/guests/vm1/console.log", None, "vm1"),
    ("sos/var/lib/nova/instances/0ca440a1-64d7-4a23-b77a-3a1298abac5c/console.log", None,
     "0ca440a1-64d7-4a23-b77a-3a1298abac5c"),
    ("ticket.txt", "nova console-log --length 50 myserver4", "myserver4"),
    ("ticket.txt", "openstack console log show --lines 20 web-01", "web-01"),
    ("ticket.txt", None, None),
])
def test_guest_name_from_origin(path, command, guest):
    (f,) = run("x", "udhcpc: broadcasting discover\n", path=path, command=command)
    assert f.guest == guest


def test_noise_is_skipped_and_relevant_unknowns_kept():
    text = ("[    0.000000] Linux version 4.4.0\nLogin incorrect\n"
            "udhcpc: entering released state\nsome dhcp thing we do not know\n")
    facts = run("x", text)
    assert [(f.event, f.origin.line) for f in facts] == [("other", 3), ("other", 4)]


@pytest.mark.parametrize("command", ["nova console-log vm1", "openstack console log show vm1",
                                     "ip netns exec qdhcp-x udhcpc -i eth0", "dhclient -v eth0"])
def test_commands_route_here(command):
    assert parsers.for_command(command) is P


def test_commands_not_ours():
    for command in ("ps aux | grep dhclient", "cat /var/log/syslog"):
        assert not any(re.search(c, command) for c in P.COMMANDS)


def test_sniff():
    assert P.sniff((FIXTURES / "dhclient_success.log").read_text())
    assert P.sniff((FIXTURES / "cloudinit_ci_info_down_eks.log").read_text())
    # dnsmasq's own log names DHCPDISCOVER too, but in its form
    assert not P.sniff("Mar  3 11:02:17 net dnsmasq-dhcp[1]: DHCPDISCOVER(tap1) fa:16:3e:4a:0b:91\n")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400))
def test_fuzz_never_raises(text):
    for fact in run("fuzz", text):
        assert isinstance(fact, F.Fact)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([
    "udhcpc: broadcasting select for ", "DHCPREQUEST for ", "eth0: DHCPv4 address ", "ci-info: | ",
    "Jan  1 00:00:04 (none) user.notice root: ", "[   1.0] cloud-init[1]: ", "2018-07-25 09:59:35,752 - ",
    "url_helper.py[WARNING]: Calling '", "10.0.0.5", "/24", " | False |", "\x1b[1;32m", "\n", "'", " ",
]), max_size=30))
def test_fuzz_fragments_never_raise(parts):
    list(run("fuzz", "".join(parts)))
