"""Packet captures: every DHCP packet a capture holds becomes one fact, whatever the link
type, tags, tunnel or file flavour, and a broken file never hides the packets before the
break. The captures are real (tests/fixtures/capture/dhcp_wire.sh); where a file flavour
cannot be produced on this machine (big-endian, simple packet blocks), the test rewrites
a real capture into it, packet bytes unchanged."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import pcap as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "pcap"
CASES = sorted(p.name for p in FIXTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))
VM_MAC, DHCP_MAC = "fa:16:3e:11:22:33", "fa:16:3e:dd:00:01"


def read_all(data: bytes, name: str = "mem.pcap", **origin) -> list[F.Fact]:
    section = Section(origin=F.Origin(path=name, line=1, **origin), open_binary=lambda: io.BytesIO(data))
    return list(P.parse(section))


def run_bytes(data: bytes, name: str = "mem.pcap", **origin) -> list[F.Fact]:
    """The facts of a capture but its closing Capture (see the tests of that below)."""
    facts = read_all(data, name, **origin)
    assert sum(isinstance(f, F.Capture) for f in facts) <= 1
    assert not any(isinstance(f, F.Capture) for f in facts[:-1]), "the Capture fact comes last"
    return [f for f in facts if not isinstance(f, F.Capture)]


def run(name: str, **origin) -> list[F.Fact]:
    return run_bytes((FIXTURES / name).read_bytes(), name, **origin)


def dhcp(name: str) -> list[F.DhcpPacket]:
    facts = run(name)
    assert all(isinstance(f, F.DhcpPacket) for f in facts), [f for f in facts if isinstance(f, F.Unparsed)]
    return facts  # type: ignore[return-value]


def summary(packets: list[F.DhcpPacket]) -> list[tuple]:
    return [(p.message_type, p.xid, p.client_mac, p.src_ip, p.dst_ip, p.yiaddr, p.ciaddr) for p in packets]


# --- the fixtures, checked against their expected facts -------------------------------------

@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_dora_renewal_inform_and_release_of_udhcpc():
    got = dhcp("dora.pcap")
    assert [p.message_type for p in got] == [
        "DISCOVER", "OFFER", "REQUEST", "ACK",   # the lease
        "REQUEST", "ACK",                        # SIGUSR1: unicast renewal ...
        "REQUEST", "ACK",                        # ... lost by udhcpc, sent again broadcast
        "INFORM", "ACK", "RELEASE"]
    # the packet numbers are the capture's (IPv6 and ARP packets in between are skipped)
    assert [p.origin.line for p in got] == [3, 4, 5, 6, 9, 10, 14, 15, 20, 21, 22]
    discover, offer, request, ack, renew, renew_ack = got[:6]
    assert discover.xid == 0x5B89FD4D == ack.xid and discover.client_mac == VM_MAC
    assert (discover.src_ip, discover.dst_ip, discover.src_port, discover.dst_port) == ("0.0.0.0", "255.255.255.255", 68, 67)
    assert discover.client_id == "01:fa:16:3e:11:22:33" and discover.client_fqdn == "vm1"
    assert discover.hostname == "vm1" and discover.vendor_class == "udhcp 1.35.0"
    assert discover.parameter_list == [1, 3, 6, 12, 15, 26, 28, 42, 121, 249]
    assert request.requested_ip == "10.0.0.5" and request.server_id == "10.0.0.2"
    assert (offer.yiaddr, offer.siaddr, offer.src_mac, offer.dst_mac) == ("10.0.0.5", "10.0.0.2", DHCP_MAC, VM_MAC)
    assert (ack.lease_time, ack.renewal_time, ack.rebinding_time) == (86400, 43200, 75600)
    assert (ack.subnet_mask, ack.broadcast_address, ack.mtu) == ("255.255.255.0", "10.0.0.255", 1450)
    assert ack.routers == ["10.0.0.1"] and ack.dns_servers == ["10.0.0.2"] and ack.domain == "openstacklocal"
    assert ack.hostname == "host-10-0-0-5" and ack.client_fqdn == "host-10-0-0-5.openstacklocal"
    assert ack.classless_routes == ["169.254.169.254/32 via 10.0.0.2", "0.0.0.0/0 via 10.0.0.1"]
    assert ack.ms_classless_routes == ack.classless_routes
    assert ack.options[53] == "ACK" and ack.options[121] == "169.254.169.254/32 via 10.0.0.2, 0.0.0.0/0 via 10.0.0.1"
    assert ack.options[26] == "1450" and set(ack.options) >= {1, 3, 6, 12, 15, 26, 28, 51, 53, 54, 58, 59, 81, 121, 249}
    # the renewal goes unicast from the leased address; the INFORM carries no Your-IP
    assert (renew.src_ip, renew.dst_ip, renew.ciaddr) == ("10.0.0.5", "10.0.0.2", "10.0.0.5")
    assert renew.requested_ip is None and renew_ack.yiaddr == "10.0.0.5"
    inform, inform_ack, release = got[8:]
    assert inform.ciaddr == "10.0.0.5" and inform.vendor_class == "MSFT 5.0"
    assert inform_ack.yiaddr == "0.0.0.0" and inform_ack.xid == inform.xid and inform_ack.lease_time is None
    assert release.server_id == "10.0.0.2" and release.dst_ip == "10.0.0.2"
    assert all(p.udp_checksum_ok for p in got) and all(p.time_inferred is False for p in got)
    assert ack.time == pytest.approx(1795241791.305031) and ack.origin.text == "10.0.0.2:67 > 10.0.0.5:68 DHCP ACK xid 0x5b89fd4d"


def test_a_dhcp_packet_quoted_in_an_icmp_error_is_not_a_packet():
    # udhcpc listened on a raw socket: the kernel answered the second renewal ACK with
    # "udp port 68 unreachable" (packet 16), quoting the ACK; only packet 15 is an ACK
    lines = [p.origin.line for p in dhcp("dora.pcap")]
    assert 15 in lines and 16 not in lines


def test_dhclient_stale_lease_is_refused_with_a_nak():
    request, nak, discover, offer, request2, ack = dhcp("dhclient_nak.pcap")
    assert (request.message_type, request.requested_ip, request.ciaddr) == ("REQUEST", "10.0.0.77", "0.0.0.0")
    assert request.server_id is None  # INIT-REBOOT: no server named
    assert (nak.message_type, nak.message, nak.server_id, nak.xid) == ("NAK", "wrong address", "10.0.0.2", request.xid)
    assert nak.flags_broadcast is True and nak.dst_ip == "255.255.255.255" and nak.yiaddr == "0.0.0.0"
    assert request.client_fqdn == "vm1.openstacklocal." and request.hostname == "vm1"
    assert request.client_id is None  # dhclient sends none by default
    assert discover.xid == offer.xid == request2.xid == ack.xid != request.xid
    assert ack.yiaddr == "10.0.0.5"


def test_same_packets_in_every_link_type_and_file_flavour():
    ether = dhcp("dora.pcap")
    for name in ("dora_nano.pcap", "dora_nano.pcapng", "any_sll.pcap", "any_sll2.pcap"):
        other = dhcp(name)
        assert [p.message_type for p in other] == [p.message_type for p in ether], name
        assert {p.xid for p in other} == {p.xid for p in ether}, name
    sll = dhcp("any_sll.pcap")
    assert [p.origin.line for p in sll] == list(range(1, 12))  # filtered on udp: DHCP only
    assert sll[1].src_mac == DHCP_MAC and sll[1].dst_mac is None  # cooked: source only
    assert dhcp("any_sll2.pcap")[0].src_mac == VM_MAC
    assert summary(dhcp("any_sll2.pcap")) == summary(ether)


def test_nanosecond_timestamps():
    nano, micro = dhcp("dora_nano.pcap"), dhcp("dora.pcap")
    # separate captures of the same packets: within a millisecond of each other
    assert all(abs(a.time - b.time) < 1e-3 for a, b in zip(nano, micro))
    raw = (FIXTURES / "dora_nano.pcap").read_bytes()
    assert raw[:4] == b"\x4d\x3c\xb2\xa1"
    # the first DHCP packet's stamp, to the nanosecond (float keeps ~0.2 us of it)
    sec, frac = struct.unpack_from("<II", raw, _record_offset(raw, nano[0].origin.line))
    assert frac > 1_000_000 and nano[0].time == pytest.approx(sec + frac / 1e9, abs=1e-6)
    ng = dhcp("dora_nano.pcapng")  # editcap kept nanosecond resolution: if_tsresol 9
    assert [p.time for p in ng] == pytest.approx([p.time for p in nano], abs=1e-6)


def _record_offset(raw: bytes, number: int) -> int:
    pos = 24
    for _ in range(number - 1):
        pos += 16 + struct.unpack_from("<I", raw, pos + 8)[0]
    return pos


def test_pcapng_with_two_interfaces_of_two_link_types():
    got = dhcp("multi_if.pcapng")
    by_if = {}
    for p in got:
        by_if.setdefault(p.origin.interface, []).append(p)
    assert set(by_if) == {"tapdd000001-aa", "tunrelay"}
    tap, tun = by_if["tapdd000001-aa"], by_if["tunrelay"]
    assert [p.message_type for p in tap] == [p.message_type for p in tun] == ["DISCOVER", "OFFER", "REQUEST", "ACK"]
    assert all(p.src_mac is None for p in tun) and all(p.src_mac for p in tap)  # raw IP: no MACs
    relayed = tun[0]
    assert (relayed.giaddr, relayed.hops, relayed.src_port, relayed.dst_port) == ("10.9.1.1", 1, 67, 67)
    assert relayed.client_mac == "fa:16:3e:77:88:99"
    # dnsmasq echoes the relay agent information back, and answers the relay (giaddr)
    assert tun[1].relay_agent == relayed.relay_agent == "circuit-id=tap77889900 remote-id=fa:16:3e:77:88:99"
    assert (tun[1].dst_ip, tun[1].dst_port, tun[3].yiaddr) == ("10.9.1.1", 67, "10.9.1.20")
    assert dhcp("relay_rawip.pcap")[3].yiaddr == "10.9.1.20"


def test_checksums_left_to_the_nic_are_bad_in_the_capture():
    got = dhcp("bad_udp_cksum.pcap")
    # tx checksum offload on the DHCP port's veth: dnsmasq's replies were captured before
    # the checksum was filled in; udhcpc's raw-socket requests carry their own checksum
    assert [(p.message_type, p.udp_checksum_ok) for p in got] == [
        ("DISCOVER", True), ("OFFER", False), ("REQUEST", True), ("ACK", False)]


def test_vxlan_on_4789_and_8472():
    got = dhcp("vxlan.pcap")
    assert [p.vxlan_vni for p in got] == [1001] * 4 + [1002] * 4
    d = got[0]
    assert (d.outer_src_ip, d.outer_dst_ip, d.src_ip, d.client_mac) == ("172.16.0.2", "172.16.0.1", "0.0.0.0", VM_MAC)
    assert (d.src_mac, d.dst_mac) == (VM_MAC, "ff:ff:ff:ff:ff:ff")  # the inner frame's
    assert got[1].outer_src_ip == "172.16.0.1" and got[1].yiaddr == "10.0.0.5"
    # the vxlan device offloads checksums too: dnsmasq's inner replies are unfinished
    assert [p.udp_checksum_ok for p in got[:4]] == [True, False, True, False]


def test_8021q_and_qinq():
    vlan, qinq = dhcp("vlan.pcap"), dhcp("qinq.pcap")
    assert [p.vlan for p in vlan] == [100] * 4
    assert [p.vlan for p in qinq] == [100] * 4  # 802.1ad 200 outside, the network's 100 inside
    assert summary(vlan) == summary(qinq)
    raw = (FIXTURES / "qinq.pcap").read_bytes()
    first = raw[_record_offset(raw, qinq[0].origin.line) + 16:]
    assert first[12:14] == b"\x88\xa8" and first[16:18] == b"\x81\x00"


def test_traffic_that_is_not_dhcp_gives_nothing():
    assert run("noise.pcap") == []


def test_snap_length_cut_options_are_kept_and_reported():
    facts = run("dora_snap300.pcap")
    packets = [f for f in facts if isinstance(f, F.DhcpPacket)]
    cuts = [f for f in facts if isinstance(f, F.Unparsed)]
    assert len(packets) == 11 and len(cuts) == 11  # one note per packet that was cut
    assert [p.xid for p in packets] == [p.xid for p in dhcp("dora.pcap")]
    assert all(p.udp_checksum_ok is None for p in packets)  # cannot be checked
    assert packets[0].message_type == "DISCOVER" and packets[0].client_id is None  # option 61 was lost
    assert "snap length" in cuts[0].reason and cuts[0].origin.line == packets[0].origin.line


def test_packets_decoded_from_the_same_options_own_their_lists_and_dicts():
    # Packets with the same option bytes are made from one decoding of them: read twice,
    # the second time all from it, every packet still has a list and dict of its own.
    packets = dhcp("dora.pcap") + dhcp("dora.pcap")
    assert packets[:11] == packets[11:]
    owned = [getattr(p, name) for p in packets for name in (
        "routers", "dns_servers", "parameter_list", "classless_routes", "ms_classless_routes", "options")]
    assert len({id(value) for value in owned}) == len(owned)
    packets[0].options.clear()
    packets[3].routers.append("10.9.9.9")
    assert dhcp("dora.pcap") == packets[11:]


# --- file flavours made from the real captures ----------------------------------------------

def to_big_endian_pcap(raw: bytes) -> bytes:
    out = bytearray(struct.pack(">IHHiIII", *struct.unpack_from("<IHHiIII", raw, 0)))
    pos = 24
    while pos + 16 <= len(raw):
        rec = struct.unpack_from("<IIII", raw, pos)
        out += struct.pack(">IIII", *rec) + raw[pos + 16:pos + 16 + rec[2]]
        pos += 16 + rec[2]
    return bytes(out)


def test_big_endian_pcap():
    raw = (FIXTURES / "dora_nano.pcap").read_bytes()
    be = to_big_endian_pcap(raw)
    assert be[:4] == b"\xa1\xb2\x3c\x4d"
    assert run_bytes(be, "dora_nano.pcap") == run("dora_nano.pcap")


def pcapng_blocks(raw: bytes):
    pos = 0
    while pos < len(raw):
        btype, blen = struct.unpack_from("<II", raw, pos)
        yield btype, raw[pos + 8:pos + blen - 4]
        pos += blen


def _block(endian: str, btype: int, body: bytes) -> bytes:
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def _swap_options(opts: bytes) -> bytes:
    out, i = bytearray(), 0
    while i + 4 <= len(opts):
        code, size = struct.unpack_from("<HH", opts, i)
        value = opts[i + 4:i + 4 + size]
        if code == 14 and size == 8:  # if_tsoffset: a number
            value = struct.pack(">q", struct.unpack("<q", value)[0])
        out += struct.pack(">HH", code, size) + value + b"\0" * (-size % 4)
        i += 4 + size + (-size % 4)
        if code == 0:
            break
    return bytes(out)


def to_big_endian_pcapng(raw: bytes) -> bytes:
    out = bytearray()
    for btype, body in pcapng_blocks(raw):
        if btype == 0x0A0D0D0A:
            _bom, major, minor, length = struct.unpack_from("<IHHq", body, 0)
            out += _block(">", btype, struct.pack(">IHHq", 0x1A2B3C4D, major, minor, length) + _swap_options(body[16:]))
        elif btype == 1:
            lt, res, snap = struct.unpack_from("<HHI", body, 0)
            out += _block(">", btype, struct.pack(">HHI", lt, res, snap) + _swap_options(body[8:]))
        elif btype == 6:
            head = struct.unpack_from("<IIIII", body, 0)
            data = body[20:20 + head[3]]
            out += _block(">", btype, struct.pack(">IIIII", *head) + data + b"\0" * (-len(data) % 4))
        # statistics and other blocks are left out
    return bytes(out)


def test_big_endian_pcapng_with_its_interfaces():
    raw = (FIXTURES / "multi_if.pcapng").read_bytes()
    be = to_big_endian_pcapng(raw)
    assert be[8:12] == b"\x1a\x2b\x3c\x4d"
    assert run_bytes(be, "multi_if.pcapng") == run("multi_if.pcapng")


def test_simple_packet_blocks_have_no_time_and_belong_to_interface_0():
    frames = [fr for fr in _frames((FIXTURES / "dora.pcap").read_bytes())]
    shb = _block("<", 0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    idb = _block("<", 1, struct.pack("<HHI", 1, 0, 0) + struct.pack("<HH", 2, 4) + b"tap0" + struct.pack("<HH", 0, 0))
    spbs = b"".join(_block("<", 3, struct.pack("<I", len(fr)) + fr) for fr in frames)
    got = [f for f in run_bytes(shb + idb + spbs, "spb.pcapng")]
    assert summary(got) == summary(dhcp("dora.pcap"))  # type: ignore[arg-type]
    assert all(p.time is None and p.origin.interface == "tap0" for p in got)  # type: ignore[union-attr]


def _frames(raw: bytes):
    pos = 24
    while pos + 16 <= len(raw):
        incl = struct.unpack_from("<I", raw, pos + 8)[0]
        yield raw[pos + 16:pos + 16 + incl]
        pos += 16 + incl


# --- broken input ---------------------------------------------------------------------------------

def test_a_capture_cut_short_keeps_every_packet_before_the_cut():
    raw = (FIXTURES / "dora.pcap").read_bytes()
    cut = raw[:_record_offset(raw, 10) + 100]  # in the middle of packet 10 (a renewal ACK)
    facts = run_bytes(cut)
    assert [f.origin.line for f in facts if isinstance(f, F.DhcpPacket)] == [3, 4, 5, 6, 9]
    last = facts[-1]
    assert isinstance(last, F.Unparsed) and last.origin.line == 10
    assert "ends inside packet 10" in last.reason


def test_a_corrupt_record_header_stops_the_reading_with_a_reason():
    raw = bytearray((FIXTURES / "dora.pcap").read_bytes())
    at = _record_offset(bytes(raw), 5)
    struct.pack_into("<I", raw, at + 8, 0x7FFFFFF0)  # packet 5 claims 2 GB
    facts = run_bytes(bytes(raw))
    assert [f.origin.line for f in facts if isinstance(f, F.DhcpPacket)] == [3, 4]
    assert isinstance(facts[-1], F.Unparsed) and "corrupt" in facts[-1].reason and facts[-1].origin.line == 5


def test_a_bootp_header_cut_by_the_snap_length_is_reported():
    raw = bytearray((FIXTURES / "dora.pcap").read_bytes())
    at = _record_offset(bytes(raw), 3)
    incl = struct.unpack_from("<I", raw, at + 8)[0]
    struct.pack_into("<I", raw, at + 8, 200)  # keep 200 bytes of packet 3 ...
    del raw[at + 16 + 200:at + 16 + incl]  # ... as a snap length of 200 would have
    facts = run_bytes(bytes(raw))
    assert isinstance(facts[0], F.Unparsed) and facts[0].origin.line == 3
    assert "snap length" in facts[0].reason and "0.0.0.0:68 > 255.255.255.255:67" in facts[0].reason
    assert isinstance(facts[1], F.DhcpPacket) and facts[1].origin.line == 4


def test_a_fragmented_dhcp_packet_is_read_as_far_as_it_goes():
    raw = bytearray((FIXTURES / "dora.pcap").read_bytes())
    at = _record_offset(bytes(raw), 6) + 16  # the ACK's frame
    raw[at + 14 + 6] |= 0x20  # IP: more fragments follow
    facts = [f for f in run_bytes(bytes(raw)) if f.origin.line == 6]
    assert isinstance(facts[0], F.DhcpPacket) and facts[0].message_type == "ACK" and facts[0].udp_checksum_ok is None
    assert isinstance(facts[1], F.Unparsed) and "IP-fragmented" in facts[1].reason


@pytest.mark.parametrize("data, why", [
    (b"", "empty"),
    (b"GET / HTTP/1.1\r\n", "not a pcap or pcapng"),
    (b"\xd4\xc3\xb2\xa1\x02\x00", "header cut short"),
    (struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127), "link type 127"),
])
def test_what_is_not_a_readable_capture(data: bytes, why: str):
    facts = run_bytes(data)
    assert len(facts) == 1 and isinstance(facts[0], F.Unparsed) and why in facts[0].reason


def test_read_as_a_stream_in_small_pieces():
    raw = (FIXTURES / "multi_if.pcapng").read_bytes()

    class Trickle(io.RawIOBase):
        def __init__(self):
            self.pos = 0

        def readable(self):
            return True

        def readinto(self, b):
            n = min(len(b), 7, len(raw) - self.pos)
            b[:n] = raw[self.pos:self.pos + n]
            self.pos += n
            return n

    class Reads:  # what parse() asks of the stream: read(n) only, never the whole file
        def __init__(self):
            self.inner = Trickle()
            self.biggest = 0

        def read(self, n=-1):
            assert n is not None and n > 0
            self.biggest = max(self.biggest, n)
            return self.inner.read(n)

        def close(self):
            pass

    stream = Reads()
    section = Section(origin=F.Origin(path="multi_if.pcapng", line=1), open_binary=lambda: stream)
    assert [f for f in P.parse(section) if not isinstance(f, F.Capture)] == run("multi_if.pcapng")
    assert stream.biggest <= P.CHUNK


def test_origin_carries_the_sections_context():
    first = run("dora.pcap", host="net-02", namespace="qdhcp-6f1c2a3b", interface="tapdd000001-aa",
                command="tcpdump -i tapdd000001-aa -w dora.pcap")[0]
    o = first.origin
    assert (o.path, o.line, o.host, o.namespace, o.interface) == ("dora.pcap", 3, "net-02", "qdhcp-6f1c2a3b", "tapdd000001-aa")


def test_registry_knows_captures_by_name():
    assert parsers.for_path("sos/var/tmp/tap5c1d0e77-a2.pcap") is P
    assert parsers.for_path("capture.pcapng") is P
    assert P.BINARY is True


# --- against an independent decoder --------------------------------------------------------------

TSHARK_FIELDS = ["frame.number", "dhcp.id", "dhcp.option.dhcp", "dhcp.ip.your", "dhcp.ip.relay",
                 "dhcp.option.dhcp_server_id", "udp.checksum.status", "vlan.id", "vxlan.vni", "ip.src"]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("name", ["dora.pcap", "multi_if.pcapng", "vxlan.pcap", "qinq.pcap", "bad_udp_cksum.pcap", "any_sll2.pcap"])
def test_agrees_with_tshark(name: str):
    cmd = ["tshark", "-n", "-o", "udp.check_checksum:TRUE", "-d", "udp.port==8472,vxlan",
           "-r", str(FIXTURES / name), "-Y", "dhcp and not icmp", "-T", "fields", "-E", "separator=|"]
    out = subprocess.run(cmd + [a for f in TSHARK_FIELDS for a in ("-e", f)], capture_output=True, text=True).stdout
    theirs = []
    for line in out.splitlines():
        r = dict(zip(TSHARK_FIELDS, line.split("|")))
        theirs.append((int(r["frame.number"]), int(r["dhcp.id"], 16), int(r["dhcp.option.dhcp"]),
                       r["dhcp.ip.your"], r["dhcp.ip.relay"], r["dhcp.option.dhcp_server_id"] or None,
                       {"1": True, "0": False}.get(r["udp.checksum.status"].split(",")[-1]),
                       int(r["vlan.id"].split(",")[-1]) if r["vlan.id"] else None,
                       int(r["vxlan.vni"]) if r["vxlan.vni"] else None, r["ip.src"].split(",")[-1]))
    types = {"DISCOVER": 1, "OFFER": 2, "REQUEST": 3, "ACK": 5, "NAK": 6, "RELEASE": 7, "INFORM": 8}
    ours = [(p.origin.line, p.xid, types[p.message_type], p.yiaddr, p.giaddr, p.server_id, p.udp_checksum_ok,
             p.vlan, p.vxlan_vni, p.src_ip) for p in dhcp(name)]
    assert ours == theirs and ours


# --- never raises ----------------------------------------------------------------------------

SEEDS = [(FIXTURES / n).read_bytes() for n in ("dora.pcap", "multi_if.pcapng", "vxlan.pcap", "qinq.pcap")]


@given(st.binary(max_size=3000))
@settings(max_examples=300, deadline=None)
def test_any_bytes_never_raise(data: bytes):
    for fact in run_bytes(data):
        assert isinstance(fact, (F.DhcpPacket, F.Unparsed))


@given(st.sampled_from(range(len(SEEDS))), st.lists(st.tuples(st.integers(0, 1 << 20), st.integers(0, 255)), max_size=12),
       st.integers(0, 1 << 20))
@settings(max_examples=300, deadline=None)
def test_damaged_real_captures_never_raise(seed: int, flips, cut: int):
    raw = bytearray(SEEDS[seed])
    for at, value in flips:
        raw[at % len(raw)] = value
    for fact in run_bytes(bytes(raw[:max(cut % (len(raw) + 1), 4)]), "x.pcapng" if seed == 1 else "x.pcap"):
        assert isinstance(fact, (F.DhcpPacket, F.Unparsed))
        msgspec.json.encode(fact)  # and every fact can be written out


@given(st.binary(min_size=0, max_size=400))
@settings(max_examples=300, deadline=None)
def test_any_udp_payload_on_port_67_never_raises(payload: bytes):
    # a real DHCP frame with its UDP payload replaced (lengths kept consistent)
    frame = bytearray(next(fr for fr in _frames(SEEDS[0]) if len(fr) > 300)[:42])
    struct.pack_into("!H", frame, 16, 28 + len(payload))
    struct.pack_into("!H", frame, 38, 8 + len(payload))
    frame += payload
    raw = SEEDS[0][:24] + struct.pack("<IIII", 1, 0, len(frame), len(frame)) + bytes(frame)
    for fact in run_bytes(raw):
        assert isinstance(fact, (F.DhcpPacket, F.Unparsed))


# --- the capture itself --------------------------------------------------------------------------

def test_every_capture_says_how_many_packets_and_how_many_dhcp():
    for name in CASES:
        facts = read_all((FIXTURES / name).read_bytes(), name)
        [cap] = [f for f in facts if isinstance(f, F.Capture)]
        assert cap.dhcp_packets == sum(isinstance(f, F.DhcpPacket) for f in facts), name
        assert cap.packets >= cap.dhcp_packets and cap.origin.path == name
    noise = [f for f in read_all((FIXTURES / "noise.pcap").read_bytes()) if isinstance(f, F.Capture)]
    assert noise[0].packets > 0 and noise[0].dhcp_packets == 0


def test_an_empty_capture_is_a_capture_of_nothing():
    # tcpdump's file header and no packet: the point saw nothing (as the lab's captures of a
    # broken path are)
    header = (FIXTURES / "dora.pcap").read_bytes()[:24]
    assert read_all(header, "empty.pcap", host="net1", interface="tap1") == [
        F.Capture(origin=F.Origin(path="empty.pcap", line=1, host="net1", interface="tap1"), packets=0, dhcp_packets=0)]
    # not a capture at all, or a header cut short: no Capture
    assert not [f for f in read_all(b"hello world, not a pcap") if isinstance(f, F.Capture)]
    assert not [f for f in read_all(header[:10]) if isinstance(f, F.Capture)]


def test_a_pcapng_of_one_interface_names_it():
    [cap] = [f for f in read_all((FIXTURES / "dora_nano.pcapng").read_bytes()) if isinstance(f, F.Capture)]
    names = {f.origin.interface for f in run("dora_nano.pcapng") if isinstance(f, F.DhcpPacket)}
    assert len(names) == 1 and cap.origin.interface == names.pop()
    [cap] = [f for f in read_all((FIXTURES / "multi_if.pcapng").read_bytes()) if isinstance(f, F.Capture)]
    assert cap.origin.interface is None
