"""tcpdump text of DHCP packets, as pasted into tickets: the same packets as the capture
they were printed from, whatever flags tcpdump ran with, and in the wording of older
tcpdump versions too. The fixtures are tcpdump's own output for the real captures of
tests/fixtures/capture/dhcp_wire.sh; each is checked against the pcap parser's facts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import pcap
from whynoip.parsers import tcpdump_text as T

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "tcpdump_text"
PCAPS = FIXTURES.parent / "pcap"
TAKEN = 1795241800.0  # 2026-11-21 06:16:40 UTC, just after the captures: when the text was taken
LIVE = "ip netns exec wnp-wire-qdhcp-6f1c2a3b-0000-4000-8000-000000000001 tcpdump -i tapdd000001-aa -l -nn -vvv udp port 67 or udp port 68"
# fixture -> (the command that printed it, the capture it printed)
CASES = {
    "dora_n.txt": ("tcpdump -r dora.pcap -n", "dora.pcap"),
    "dora_v.txt": ("tcpdump -r dora.pcap -v", "dora.pcap"),
    "dora_n_vv.txt": ("tcpdump -r dora.pcap -vv -n", "dora.pcap"),
    "dora_vvv.txt": ("tcpdump -r dora.pcap -vvv", "dora.pcap"),
    "dora_e_nn_vvv.txt": ("tcpdump -r dora.pcap -e -nn -vvv", "dora.pcap"),
    "dora_tttt_n_vvv.txt": ("tcpdump -r dora.pcap -tttt -n -vvv", "dora.pcap"),
    "any_sll2_e_n_vvv.txt": ("tcpdump -r any_sll2.pcap -e -n -vvv", "any_sll2.pcap"),
    "bad_udp_cksum_n_vvv.txt": ("tcpdump -r bad_udp_cksum.pcap -n -vvv", "bad_udp_cksum.pcap"),
    "vxlan_nn_vvv.txt": ("tcpdump -r vxlan.pcap -nn -vvv", "vxlan.pcap"),
    "relay_rawip_n_vvv.txt": ("tcpdump -r relay_rawip.pcap -n -vvv", "relay_rawip.pcap"),
    "qinq_e_n_vvv.txt": ("tcpdump -r qinq.pcap -e -n -vvv", "qinq.pcap"),
    "dhclient_nak_tt_vv.txt": ("tcpdump -r dhclient_nak.pcap -tt -vv", "dhclient_nak.pcap"),
    "live_nn_vvv.txt": (LIVE, "dhclient_nak.pcap"),  # the same packets, taken live at the same time
}
# what the text shows of a packet that the capture's fact also holds
SHOWN = ("xid", "op", "message_type", "client_mac", "ciaddr", "yiaddr", "siaddr", "giaddr",
         "flags_broadcast", "secs", "hops", "src_ip", "dst_ip", "src_port", "dst_port", "server_id",
         "requested_ip", "subnet_mask", "routers", "dns_servers", "hostname", "domain", "mtu",
         "broadcast_address", "lease_time", "renewal_time", "rebinding_time", "parameter_list",
         "message", "vendor_class", "client_id", "client_fqdn", "relay_agent", "classless_routes",
         "ms_classless_routes", "vxlan_vni", "outer_src_ip", "outer_dst_ip", "vlan")


def run_text(text: str, command: str | None = None, ref_time: float | None = TAKEN, name: str = "x.txt", **origin) -> list[F.Fact]:
    section = Section.from_text(text, F.Origin(path=name, line=1, command=command, **origin))
    section.ref_time = ref_time
    return list(T.parse(section))


def run(name: str, **kw) -> list[F.Fact]:
    return run_text((FIXTURES / name).read_text(), CASES[name][0], name=name, **kw)


def dhcp(facts: list[F.Fact]) -> list[F.DhcpPacket]:
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return facts  # type: ignore[return-value]


def from_capture(name: str) -> list[F.DhcpPacket]:
    data = (PCAPS / name).read_bytes()
    return [f for f in pcap.parse(Section(origin=F.Origin(path=name, line=1), open_binary=lambda: io.BytesIO(data)))  # type: ignore[arg-type]
            if not isinstance(f, F.Capture)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


@pytest.mark.parametrize("name", sorted(set(CASES) - {"dora_n.txt"}))
def test_the_text_says_what_the_capture_says(name: str):
    text, cap = dhcp(run(name)), from_capture(CASES[name][1])
    assert len(text) == len(cap) and text
    flags = T._short_flags(CASES[name][0])
    for t, c in zip(text, cap):
        for field in SHOWN:
            assert getattr(t, field) == getattr(c, field), (name, t.origin.line, field)
        if "vv" in flags:  # with -v alone tcpdump does not check UDP checksums
            assert t.udp_checksum_ok == c.udp_checksum_ok
        else:
            assert t.udp_checksum_ok is None
        if "e" in flags:
            assert (t.src_mac, t.dst_mac) == (c.src_mac, c.dst_mac) or name.startswith("any_")
        assert set(t.options) == set(c.options), (name, t.origin.line)
        assert t.time == pytest.approx(c.time, abs=1e-3 if name == "live_nn_vvv.txt" else 2e-6)


def test_without_v_only_the_packet_line_is_known():
    got = dhcp(run("dora_n.txt"))
    cap = from_capture("dora.pcap")
    assert [(p.src_ip, p.dst_ip, p.src_port, p.op) for p in got] == [(p.src_ip, p.dst_ip, p.src_port, p.op) for p in cap]
    first = got[0]
    assert first.client_mac == "fa:16:3e:11:22:33" and first.xid is None and first.message_type is None
    assert first.ciaddr is None and first.options == {}  # unknown, not zero
    assert first.origin.line == 3 and first.origin.text.startswith("06:16:31.271706 IP 0.0.0.0.68 > 255.255.255.255.67")


def test_times_without_a_date_take_the_day_the_text_was_taken():
    tod = dhcp(run("dora_n_vv.txt"))[0]
    assert tod.time_inferred is True and tod.time == pytest.approx(1795241791.271706, abs=1e-6)
    dated = dhcp(run("dora_tttt_n_vvv.txt"))[0]
    assert dated.time_inferred is False and dated.time == pytest.approx(tod.time, abs=1e-6)
    epoch = dhcp(run("dhclient_nak_tt_vv.txt"))[0]
    assert epoch.time_inferred is False and epoch.time == pytest.approx(1795241793.700255, abs=1e-6)
    # not knowing when the text was taken: no time rather than a wrong one
    assert dhcp(run("dora_n_vv.txt", ref_time=None))[0].time is None
    # taken just after the next midnight: the packets were still the day before
    assert dhcp(run("dora_n_vv.txt", ref_time=TAKEN + 18 * 3600))[0].time == pytest.approx(tod.time, abs=1e-6)
    # taken two days later: the packets are put on that day, the latest that fits
    assert dhcp(run("dora_n_vv.txt", ref_time=TAKEN + 2 * 86400))[0].time == pytest.approx(tod.time + 2 * 86400, abs=1e-6)
    # -ttt prints deltas, not times of day
    text = (FIXTURES / "dora_n_vv.txt").read_text()
    assert all(p.time is None for p in dhcp(run_text(text, "tcpdump -r dora.pcap -ttt -vv -n")))


def test_a_capture_running_past_midnight_moves_to_the_next_day():
    lines = (FIXTURES / "dora_n.txt").read_text().splitlines()
    text = "\n".join([lines[2].replace("06:16:31.271706", "23:59:59.900000"),
                      lines[3].replace("06:16:31.272062", "00:00:00.100000")])
    first, second = dhcp(run_text(text, "tcpdump -n", ref_time=1795305600.0 + 60))  # 2026-11-22 00:01
    assert second.time - first.time == pytest.approx(0.2)


def test_live_output_names_the_interface_and_its_command_the_namespace():
    got = dhcp(run("live_nn_vvv.txt", namespace="wnp-wire-qdhcp-6f1c2a3b-0000-4000-8000-000000000001"))
    assert {p.origin.interface for p in got} == {"tapdd000001-aa"}  # from "listening on"
    request, nak = got[:2]
    assert (request.message_type, request.requested_ip, nak.message_type, nak.message) == ("REQUEST", "10.0.0.77", "NAK", "wrong address")
    assert nak.origin.line == 18 and "BOOTP/DHCP, Reply" in nak.origin.text


def test_cooked_interface_names_are_the_readers_when_read_from_a_file():
    # tcpdump -r names an SLL2 packet's interface after the *reading* host's ifindex 2
    # ("ifb0" here), not the capturing one's: taken live, not from a file
    text = (FIXTURES / "any_sll2_e_n_vvv.txt").read_text()
    assert {p.origin.interface for p in dhcp(run_text(text, "tcpdump -r any.pcap -e -n -vvv"))} == {None}
    assert {p.origin.interface for p in dhcp(run_text(text, "tcpdump -i any -e -n -vvv"))} == {"ifb0"}


def test_the_dhcp_packet_quoted_in_an_icmp_error_is_skipped():
    text = (FIXTURES / "dora_vvv.txt").read_text()
    assert text.count("BOOTP/DHCP, Reply") == 6  # five replies, and one quoted in an ICMP error
    assert len([p for p in dhcp(run("dora_vvv.txt")) if p.op == 2]) == 5


def test_bad_udp_checksum_markers():
    got = dhcp(run("bad_udp_cksum_n_vvv.txt"))
    assert [(p.message_type, p.udp_checksum_ok) for p in got] == [
        ("DISCOVER", True), ("OFFER", False), ("REQUEST", True), ("ACK", False)]
    assert "[bad udp cksum 0x1567 -> " in got[1].origin.text


def test_vxlan_and_otv_lines_give_the_vni_and_the_outer_addresses():
    got = dhcp(run("vxlan_nn_vvv.txt"))
    assert [p.vxlan_vni for p in got] == [1001] * 4 + [1002] * 4  # 8472 is printed as OTV "instance"
    assert (got[0].outer_src_ip, got[0].outer_dst_ip, got[0].src_ip) == ("172.16.0.2", "172.16.0.1", "0.0.0.0")
    # the outer packet's checksum marker is not the inner one's
    assert [p.udp_checksum_ok for p in got[:4]] == [True, False, True, False]


def test_relay_agent_information_with_unprintable_bytes():
    got = dhcp(run("relay_rawip_n_vvv.txt"))
    # tcpdump prints the remote-id MAC as "M-z^V>wM-^HM-^Y": read back as bytes
    assert got[0].relay_agent == "circuit-id=tap77889900 remote-id=fa:16:3e:77:88:99"
    assert (got[0].giaddr, got[0].hops, got[1].dst_ip) == ("10.9.1.1", 1, "10.9.1.1")


def test_qinq_header_gives_the_inner_tag():
    got = dhcp(run("qinq_e_n_vvv.txt"))
    assert [p.vlan for p in got] == [100] * 4 and got[0].src_mac == "fa:16:3e:11:22:33"


# --- older wordings ---------------------------------------------------------------------------
# Our lab's REQUEST and ACK, printed as older tcpdump versions printed them. The layouts are
# taken from public output and sources, each cited; the values are those of dora.pcap.

# tcpdump 4.0-4.9: "Option 53", parameter names without numbers, Flags without hex under
# -v. Layout from tcpdump issue #866 (github.com/the-tcpdump-group/tcpdump/issues/866,
# tcpdump 4.9 output quoted there) and lwfinger/rtw88 issue #110 (names without -n).
TCPDUMP_4X = """\
06:16:31.303265 IP (tos 0x0, ttl 64, id 0, offset 0, flags [none], proto UDP (17), length 336)
    0.0.0.0.bootpc > 255.255.255.255.bootps: [udp sum ok] BOOTP/DHCP, Request from fa:16:3e:11:22:33 (oui Unknown), length 308, xid 0x5b89fd4d, secs 1, Flags [none] (0x0000)
\t  Client-Ethernet-Address fa:16:3e:11:22:33 (oui Unknown)
\t  Vendor-rfc1048 Extensions
\t    Magic Cookie 0x63825363
\t    DHCP-Message Option 53, length 1: Request
\t    Requested-IP Option 50, length 4: 10.0.0.5
\t    Server-ID Option 54, length 4: 10.0.0.2
\t    MSZ Option 57, length 2: 576
\t    Parameter-Request Option 55, length 10: 
\t      Subnet-Mask, Default-Gateway, Domain-Name-Server, Hostname
\t      Domain-Name, MTU, BR, NTP
\t      Classless-Static-Route, Option 249
\t    Vendor-Class Option 60, length 12: "udhcp 1.35.0"
\t    Client-ID Option 61, length 7: ether fa:16:3e:11:22:33
\t    END Option 255, length 0
06:16:31.305031 IP (tos 0xc0, ttl 64, id 54243, offset 0, flags [none], proto UDP (17), length 420)
    10.0.0.2.bootps > 10.0.0.5.bootpc: [udp sum ok] BOOTP/DHCP, Reply, length 392, xid 0x5b89fd4d, secs 1, Flags [none] (0x0000)
\t  Your-IP 10.0.0.5
\t  Server-IP 10.0.0.2
\t  Client-Ethernet-Address fa:16:3e:11:22:33 (oui Unknown)
\t  Vendor-rfc1048 Extensions
\t    Magic Cookie 0x63825363
\t    DHCP-Message Option 53, length 1: ACK
\t    Server-ID Option 54, length 4: 10.0.0.2
\t    Lease-Time Option 51, length 4: 86400
\t    RN Option 58, length 4: 43200
\t    RB Option 59, length 4: 75600
\t    Subnet-Mask Option 1, length 4: 255.255.255.0
\t    Default-Gateway Option 3, length 4: 10.0.0.1
\t    Domain-Name-Server Option 6, length 4: 10.0.0.2
\t    MTU Option 26, length 2: 1450
\t    END Option 255, length 0
"""

# The same, pasted where the indentation was lost, as in zorun/kea-hook-runscript issue #19
# (github.com/zorun/kea-hook-runscript/issues/19).
TCPDUMP_4X_FLAT = "\n".join(line.strip() for line in TCPDUMP_4X.splitlines())

# tcpdump 3.8/3.9: "Vendor-rfc1048:" and short tags; from print-bootp.c rev 1.75.2.3 (2004)
# as FreeBSD shipped it (freebsd/freebsd-src, contrib/tcpdump/print-bootp.c, commit 00ada39).
TCPDUMP_38 = """\
06:16:31.303265 IP (tos 0x0, ttl  64, id 0, offset 0, flags [none], length: 336) 0.0.0.0.bootpc > 255.255.255.255.bootps: BOOTP/DHCP, Request from fa:16:3e:11:22:33, length: 308, xid:0x5b89fd4d, secs:1, flags: [none] (0x0000)
\t  Client Ethernet Address: fa:16:3e:11:22:33
\t  Vendor-rfc1048:
\t    DHCP:REQUEST
\t    RQ:10.0.0.5
\t    SID:10.0.0.2
\t    MSZ:576
\t    PR:SM+DG+NS+HN+DN+MTU+BR+NTP+T121+T249
\t    VC:"udhcp 1.35.0"
\t    CID:[ether]fa:16:3e:11:22:33
06:16:31.305031 IP (tos 0xc0, ttl  64, id 54243, offset 0, flags [none], length: 420) 10.0.0.2.bootps > 10.0.0.5.bootpc: BOOTP/DHCP, Reply, length: 392, xid:0x5b89fd4d, secs:1, flags: [none] (0x0000)
\t  Your IP: 10.0.0.5
\t  Server IP: 10.0.0.2
\t  Client Ethernet Address: fa:16:3e:11:22:33
\t  Vendor-rfc1048:
\t    DHCP:ACK
\t    SID:10.0.0.2
\t    LT:86400
\t    RN:43200
\t    RB:75600
\t    SM:255.255.255.0
\t    DG:10.0.0.1
\t    NS:10.0.0.2
\t    MTU:1450
"""

# OpenBSD's tcpdump (and LBL tcpdump before 3.8): one line, no "BOOTP/DHCP"; from
# print-bootp.c rev 1.25 of OpenBSD (2021). The client id and vendor class are printed as
# dotted bytes, the client MAC only when it differs from the frame's (not known without -e).
TCPDUMP_OPENBSD = """\
06:16:31.303265 0.0.0.0.68 > 255.255.255.255.67: xid:0x5b89fd4d secs:1 vend-rfc1048 DHCP:REQUEST RQ:10.0.0.5 SID:10.0.0.2 MSZ:576 PR:SM+DG+NS+HN+DN+MTU+BR+NTP+121+249 VC:117.100.104.99.112.32.49.46.51.53.46.48 CID:1.250.22.62.17.34.51
06:16:31.305031 10.0.0.2.67 > 10.0.0.5.68: xid:0x5b89fd4d secs:1 Y:10.0.0.5 S:10.0.0.2 vend-rfc1048 DHCP:ACK SID:10.0.0.2 LT:86400 RN:43200 RB:75600 SM:255.255.255.0 DG:10.0.0.1 NS:10.0.0.2 MTU:1450
"""


@pytest.mark.parametrize("text", [TCPDUMP_4X, TCPDUMP_4X_FLAT, TCPDUMP_38, TCPDUMP_OPENBSD], ids=["4.x", "4.x-flat", "3.8", "openbsd"])
def test_older_wordings_give_the_same_facts(text: str):
    request, ack = dhcp(run_text(text, "tcpdump -v -s 1500"))
    real = {p.origin.line: p for p in from_capture("dora.pcap")}
    real_request, real_ack = real[5], real[6]
    for field in ("xid", "op", "message_type", "src_ip", "dst_ip", "src_port", "dst_port",
                  "requested_ip", "server_id", "secs", "ciaddr"):
        assert getattr(request, field) == getattr(real_request, field), field
    openbsd = text is TCPDUMP_OPENBSD
    assert request.client_mac == (None if openbsd else real_request.client_mac)
    for field in ("xid", "message_type", "yiaddr", "server_id", "lease_time", "renewal_time",
                  "rebinding_time", "subnet_mask", "routers", "dns_servers", "mtu", "src_ip", "dst_ip"):
        assert getattr(ack, field) == getattr(real_ack, field), field
    assert request.client_id == "01:fa:16:3e:11:22:33"
    assert request.parameter_list == real_request.parameter_list
    assert request.vendor_class == "udhcp 1.35.0"
    assert request.time == pytest.approx(real_request.time, abs=1e-6)


def test_a_nak_in_tcpdump_38_says_nack():
    text = TCPDUMP_38.replace("DHCP:ACK", "DHCP:NACK")
    assert dhcp(run_text(text, "tcpdump -v"))[1].message_type == "NAK"


def test_a_packet_cut_by_the_snap_length_is_kept_and_noted():
    text = "\n".join(TCPDUMP_4X.splitlines()[:9]) + " [|bootp]\n"
    facts = run_text(text, "tcpdump -v -s 300")
    assert isinstance(facts[0], F.DhcpPacket) and facts[0].server_id == "10.0.0.2"
    assert isinstance(facts[1], F.Unparsed) and "snap length" in facts[1].reason


def test_text_that_is_not_tcpdump_becomes_unparsed_and_the_packets_around_it_stay():
    lines = (FIXTURES / "dora_n.txt").read_text().splitlines()
    text = "\n".join(lines[:4] + ["Traceback (most recent call last):", '  File "x.py", line 1'] + lines[4:])
    facts = run_text(text, "tcpdump -n")
    bad = [f for f in facts if isinstance(f, F.Unparsed)]
    assert len(bad) == 1 and (bad[0].origin.line, bad[0].end_line) == (5, 6)
    assert len([f for f in facts if isinstance(f, F.DhcpPacket)]) == 11


def test_registry_routes_tcpdump_commands_here_but_not_captures_to_files():
    assert parsers.for_command("tcpdump -i tap5c1d0e77-a2 -nnvvv port 67 or port 68") is T
    assert parsers.for_command("ip netns exec qdhcp-6f1c tcpdump -r /tmp/x.pcap -vvv") is T
    assert parsers.for_command("sudo tcpdump -ni any -e udp port 67") is T
    assert parsers.for_command("tcpdump -i eth0 -w /tmp/dhcp.pcap udp port 67") is not T


@pytest.mark.parametrize("name", sorted(CASES))
def test_sniff_recognises_tcpdump_text(name: str):
    assert T.sniff((FIXTURES / name).read_text()[:8192])


def test_sniff_leaves_dhcpdump_alone():
    for path in (FIXTURES.parent / "dhcpdump").glob("*.txt"):
        assert not T.sniff(path.read_text()[:8192])


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()]
OLD_LINES = (TCPDUMP_4X + TCPDUMP_38 + TCPDUMP_OPENBSD).splitlines()


@given(st.lists(st.one_of(st.sampled_from(LINES), st.sampled_from(OLD_LINES), st.text(max_size=80)), max_size=40),
       st.sampled_from([None, "tcpdump -tttt -vvv", "tcpdump -r f -e", "tcpdump -ttt"]))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines, command):
    for fact in run_text("\n".join(lines), command):
        assert isinstance(fact, (F.DhcpPacket, F.Unparsed))


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_any_bytes_never_raise(data: bytes):
    run_text(data.decode("utf-8", errors="replace"))
