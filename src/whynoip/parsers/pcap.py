"""Packet captures (pcap and pcapng): every DHCP packet in them, as the wire carried it.

A capture taken on each hop of the data path (the guest's tap, qbr, qvo, the tunnel
underlay, the qdhcp tap) shows where a DISCOVER or an ACK disappears; this module turns
each capture into `DhcpPacket` facts, one per DHCP packet, with its packet number as the
origin's line and the capturing interface (pcapng) as the origin's interface.

It reads pcap (either byte order, micro- or nanosecond timestamps) and pcapng (several
sections and interfaces, each with its own link type and timestamp resolution; enhanced,
simple and obsolete packet blocks), on Ethernet (with 802.1Q/802.1ad tags, QinQ), Linux
cooked captures (SLL of `tcpdump -i any` up to libpcap 1.9, SLL2 after), raw IP (tun
devices) and BSD loopback. Only IPv4 UDP with port 67 or 68 on either side is decoded;
VXLAN (UDP 4789, and 8472 as the Linux kernel and flannel use) is opened and the packet
inside decoded, with the VNI and the outer addresses. Everything else is skipped after
looking at a few header bytes, and the file is read in chunks, so a capture of millions of
packets is read at a few hundred thousand packets a second in constant memory.

The UDP checksum is verified (`udp_checksum_ok`): a capture taken on the sending host with
transmit checksum offload shows replies with a checksum the NIC was still to fill in, and
guests that check checksums drop them. It is None when the checksum is 0 (not used) or the
packet was cut by the snap length. Bad input never raises: a file that is no capture, a
corrupt record or a file cut short gives an `Unparsed` fact, after every packet read before.

Real sample (the dnsmasq DHCPACK of `tests/fixtures/capture/dhcp_wire.sh`, as
`tcpdump -r dora.pcap -e -nn -vvv` shows it; the bytes of the capture are what is read)::

    06:11:01.725965 fa:16:3e:dd:00:01 > fa:16:3e:11:22:33, ethertype IPv4 (0x0800), length 434: (tos 0xc0, ttl 64, id 35350, offset 0, flags [none], proto UDP (17), length 420)
        10.0.0.2.67 > 10.0.0.5.68: [udp sum ok] BOOTP/DHCP, Reply, length 392, xid 0x44381369, Flags [none] (0x0000)
    	  Your-IP 10.0.0.5
    	  Server-IP 10.0.0.2
    	  Client-Ethernet-Address fa:16:3e:11:22:33
    	  Vendor-rfc1048 Extensions
    	    Magic Cookie 0x63825363
    	    DHCP-Message (53), length 1: ACK
    	    Server-ID (54), length 4: 10.0.0.2
    	    Lease-Time (51), length 4: 86400
"""

from __future__ import annotations

import struct
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Capture, DhcpPacket, Fact, Origin, Unparsed
from whynoip.parsers import _dhcp

NAME = "pcap"
BINARY = True
COMMANDS = ()
PATHS = ("*.pcap", "*.pcapng", "*.cap", "*.pcap.gz", "*.pcapng.gz", "*.dmp")

CHUNK = 1 << 20
MAX_RECORD = 1 << 18  # 256 KiB: libpcap's and Wireshark's largest ordinary packet

# link types (LINKTYPE_* values as files carry them; 12 and 14 are DLT_RAW on some BSDs)
LT_NULL, LT_ETHERNET, LT_LOOP, LT_SLL, LT_SLL2 = 0, 1, 108, 113, 276
LT_RAW = frozenset((101, 12, 14, 228))
LINKTYPES = frozenset((LT_NULL, LT_ETHERNET, LT_LOOP, LT_SLL, LT_SLL2)) | LT_RAW

VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
DHCP_PORTS = frozenset((67, 68))
VXLAN_PORTS = frozenset((4789, 8472))
WANTED_PORTS = DHCP_PORTS | VXLAN_PORTS

_PCAP_MAGIC = {
    b"\xd4\xc3\xb2\xa1": ("<", 1e-6), b"\xa1\xb2\xc3\xd4": (">", 1e-6),
    b"\x4d\x3c\xb2\xa1": ("<", 1e-9), b"\xa1\xb2\x3c\x4d": (">", 1e-9),
}
_PCAPNG_SHB = b"\x0a\x0d\x0d\x0a"
_ADDRESSES, _address = _dhcp._ADDRESSES, _dhcp.address
_IP_HEAD = struct.Struct("!2xH2xB5x4s4s").unpack_from  # total length, flags, source, destination
_UDP_HEAD = struct.Struct("!HHHH").unpack_from  # ports, length, checksum
_wire_packet = _dhcp.wire_packet


def _ipv4(b: bytes, q: int, end: int, depth: int):
    """Where the DHCP message is in the IPv4 packet at `q`: a tuple (ip, udp, udp_end,
    inner) or None when it carries no DHCP. `inner` is the tuple found inside VXLAN, with
    the inner link-layer facts, or None."""
    if q + 28 > end or b[q] >> 4 != 4 or b[q + 9] != 17:
        return None
    if (b[q + 6] & 0x1F) or b[q + 7]:  # a later fragment: no UDP header in it
        return None
    u = q + (b[q] & 0x0F) * 4
    if u + 8 > end:
        return None
    sport = (b[u] << 8) | b[u + 1]
    dport = (b[u + 2] << 8) | b[u + 3]
    if dport in DHCP_PORTS or sport in DHCP_PORTS:
        return (q, u, None)
    if dport in VXLAN_PORTS and depth == 0 and u + 30 <= end and b[u + 8] & 0x08:
        inner = _ethernet(b, u + 16, end, 1)
        if inner is not None:
            return (q, u, inner)
    return None


def _ethernet(b: bytes, p: int, end: int, depth: int):
    """(dst_mac, src_mac, vlan, ipv4 location) of a DHCP-carrying Ethernet frame, else None."""
    q = p + 12
    if q + 2 > end:
        return None
    et = (b[q] << 8) | b[q + 1]
    q += 2
    vlan = None
    while et in VLAN_TPIDS:
        if q + 4 > end:
            return None
        vlan = ((b[q] & 0x0F) << 8) | b[q + 1]  # the innermost tag wins: the network's own
        et = (b[q + 2] << 8) | b[q + 3]
        q += 4
    if et != 0x0800:
        return None
    loc = _ipv4(b, q, end, depth)
    if loc is None:
        return None
    return (p, p + 6, vlan, loc)


class _Capture:
    """State of one capture being read: the section, the packet count, and which link
    types were met that cannot be read (each reported once)."""

    def __init__(self, section: Section):
        self.section = section
        o = section.origin
        self.base = o.line if o.line else 1
        self.origin0 = o
        self.unsupported: set[int] = set()
        self.packets: int | None = None  # packets read, once the file header was good
        self.interfaces: set[str] = set()  # pcapng interface names

    def origin(self, pno: int, interface: str | None = None, text: str | None = None) -> Origin:
        o = self.origin0
        return Origin(path=o.path, line=self.base + pno - 1, host=o.host, namespace=o.namespace,
                      interface=interface or o.interface, command=o.command, text=text)

    def unparsed(self, pno: int, reason: str, interface: str | None = None) -> Unparsed:
        return Unparsed(origin=self.origin(max(pno, 1), interface), reason=reason)

    def ended(self, more: bytes | None, pno: int, left: int, where: str) -> list[Unparsed]:
        """What to say when the stream gave no more bytes: it failed, or it ended with `left`
        bytes of an unfinished record (`where` it was cut), or nothing (a whole file)."""
        if more is None:
            return [self.unparsed(pno + 1, f"reading stopped after packet {pno}: the stream failed")]
        if left > 0:
            return [self.unparsed(pno + 1, f"the file ends {where} ({left} bytes of it): the capture was cut short")]
        return []

    # one frame ------------------------------------------------------------------------------
    def frame(self, b: bytes, p: int, end: int, lt: int, pno: int, ts: float | None,
              ifname: str | None) -> list[Fact] | None:
        """The facts of one captured frame; None for the ordinary packet that is no DHCP.
        (A plain function, not a generator: it is called for every packet.)"""
        src_mac = dst_mac = None
        vlan = None
        if lt == LT_ETHERNET:
            found = _ethernet(b, p, end, 0)
            if found is None:
                return None
            d, s, vlan, loc = found
            dst_mac, src_mac = b[d:d + 6].hex(":"), b[s:s + 6].hex(":")
        elif lt in LT_RAW:
            loc = _ipv4(b, p, end, 0)
        elif lt == LT_SLL2:
            if p + 20 > end or ((b[p] << 8) | b[p + 1]) != 0x0800:
                return None
            loc = _ipv4(b, p + 20, end, 0)
            if loc is not None and b[p + 11] == 6:
                src_mac = b[p + 12:p + 18].hex(":")
        elif lt == LT_SLL:
            if p + 16 > end or ((b[p + 14] << 8) | b[p + 15]) != 0x0800:
                return None
            loc = _ipv4(b, p + 16, end, 0)
            if loc is not None and b[p + 5] == 6 and b[p + 4] == 0:
                src_mac = b[p + 6:p + 12].hex(":")
        elif lt == LT_NULL or lt == LT_LOOP:
            if p + 4 > end or (b[p:p + 4] not in (b"\x02\0\0\0", b"\0\0\0\x02")):
                return None
            loc = _ipv4(b, p + 4, end, 0)
        else:
            if lt in self.unsupported:
                return None
            self.unsupported.add(lt)
            return [self.unparsed(pno, f"link type {lt} is not read (only Ethernet, Linux cooked, raw IP and loopback): its packets are skipped", ifname)]
        if loc is None:
            return None
        q, u, inner = loc
        outer = None
        if inner is not None:  # VXLAN: (VNI, outer source and destination addresses)
            outer = ((b[u + 12] << 16) | (b[u + 13] << 8) | b[u + 14],
                     _address(b[q + 12:q + 16]), _address(b[q + 16:q + 20]))
            d, s, vlan, loc = inner
            dst_mac, src_mac = b[d:d + 6].hex(":"), b[s:s + 6].hex(":")
            q, u, _ = loc
        return self.dhcp(b, q, u, end, outer, pno, ts, ifname, src_mac, dst_mac, vlan)

    def dhcp(self, b: bytes, q: int, u: int, end: int, outer, pno: int, ts: float | None,
             ifname: str | None, src_mac, dst_mac, vlan) -> list[Fact]:
        ip_len, flags, src_raw, dst_raw = _IP_HEAD(b, q)
        sport, dport, udp_len, checksum = _UDP_HEAD(b, u)
        known = _ADDRESSES.get
        src_ip = known(src_raw) or _address(src_raw)
        dst_ip = known(dst_raw) or _address(dst_raw)
        ip_end = q + ip_len
        more_fragments = bool(flags & 0x20)
        if udp_len < 8:
            return [self.unparsed(pno, f"UDP {src_ip}:{sport} > {dst_ip}:{dport} with a UDP length of {udp_len}", ifname)]
        u_end = u + udp_len
        if u_end <= end and u_end <= ip_end and not more_fragments:
            ok = None
            if checksum:
                total = int.from_bytes(b[u:u_end], "big")
                if udp_len & 1:
                    total <<= 8
                total += int.from_bytes(b[q + 12:q + 20], "big") + 17 + udp_len
                ok = total % 0xFFFF == 0
            payload = b[u + 8:u_end]
            cut = False
        else:
            ok = None
            payload = b[u + 8:min(end, ip_end if ip_end > u else end)]
            cut = True
        try:
            packet, problem = _wire_packet(payload, ts, src_mac, dst_mac, src_ip, dst_ip, sport,
                                           dport, vlan, ok)
        except ValueError as e:
            why = ("IP-fragmented" if more_fragments else "cut by the capture's snap length") if cut else "not a BOOTP message"
            return [self.unparsed(pno, f"UDP {src_ip}:{sport} > {dst_ip}:{dport} ({why}): {e}", ifname)]
        if outer is not None:
            packet.vxlan_vni, packet.outer_src_ip, packet.outer_dst_ip = outer
        packet.origin = self.origin(pno, ifname, f"{src_ip}:{sport} > {dst_ip}:{dport} DHCP {packet.message_type} xid 0x{packet.xid:08x}")
        out: list[Fact] = [packet]
        if problem or cut:
            parts = [problem] if problem else []
            if cut and more_fragments:
                parts.append(f"IP-fragmented: only the first {len(payload) + 8} of its {udp_len} UDP bytes are in this packet")
            elif cut:
                parts.append(f"only {len(payload) + 8} of its {udp_len} UDP bytes were captured (snap length)")
            out.append(self.unparsed(pno, f"UDP {src_ip}:{sport} > {dst_ip}:{dport}: " + "; ".join(parts), ifname))
        return out


def parse(section: Section) -> Iterator[Fact]:
    if section.open_binary is None:
        yield Unparsed(origin=section.origin, reason="a packet capture, but no bytes to read")
        return
    try:
        f = section.open_binary()
    except OSError as e:
        yield Unparsed(origin=section.origin, reason=f"cannot open the capture: {e}")
        return
    cap = _Capture(section)
    try:
        head = _read(f, 4)
        if head is None:
            yield cap.unparsed(1, "cannot read the capture")
            return
        if not head:
            yield cap.unparsed(1, "empty file: no pcap or pcapng header")
            return
        if head in _PCAP_MAGIC:
            read = _pcap(cap, f, head)
        elif head == _PCAPNG_SHB:
            read = _pcapng(cap, f, head)
        else:
            yield cap.unparsed(1, f"not a pcap or pcapng file (it starts with 0x{head.hex()})")
            return
        dhcp = 0
        for fact in read:
            if type(fact) is DhcpPacket:
                dhcp += 1
            yield fact
        if cap.packets is not None:
            iface = next(iter(cap.interfaces)) if len(cap.interfaces) == 1 else None
            yield Capture(origin=cap.origin(1, iface), packets=cap.packets, dhcp_packets=dhcp)
    finally:
        try:
            f.close()  # type: ignore[attr-defined]
        except Exception:
            pass


def _read(f, n: int) -> bytes | None:
    try:
        return f.read(n)
    except (OSError, EOFError, ValueError):
        return None


def _pcap(cap: _Capture, f, magic: bytes) -> Iterator[Fact]:
    endian, resolution = _PCAP_MAGIC[magic]
    rest = _read(f, 20) or b""
    if len(rest) < 20:
        yield cap.unparsed(1, f"pcap file header cut short ({4 + len(rest)} of 24 bytes)")
        return
    _major, _minor, _zone, _sigfigs, snaplen, linktype = struct.unpack(endian + "HHiIII", rest)
    lt = linktype & 0x0FFFFFFF  # the top bits carry the FCS length, not the link type
    if lt not in LINKTYPES:
        yield cap.unparsed(1, f"link type {lt} is not read (only Ethernet, Linux cooked, raw IP and loopback)")
        return
    limit = max(snaplen, MAX_RECORD)
    # One unpack per record reads its length and, behind it, what the skipping below looks
    # at in an Ethernet frame: the EtherType (read in the file's byte order, so compared with
    # values swapped likewise), IP version/IHL and IP protocol; fewer calls and ints than
    # indexing byte by byte. They are looked at only in a record of more than 57 bytes.
    # Near the end of the buffer `head` may not fit: such a record is read for its length
    # alone, and a record of more than 57 bytes there ends past the buffer (read again whole
    # with the next chunk).
    head = struct.Struct(endian + "8xI16xHB8xB").unpack_from
    length = struct.Struct(endian + "8xI").unpack_from
    stamp = struct.Struct(endian + "II").unpack_from
    ports = struct.Struct("!HH").unpack_from
    swap = struct.Struct(endian + "H").unpack
    et_ipv4 = swap(b"\x08\x00")[0]
    et_tags = frozenset(swap(tpid.to_bytes(2, "big"))[0] for tpid in VLAN_TPIDS)
    frame, dhcp = cap.frame, cap.dhcp
    ethernet = lt == LT_ETHERNET
    wanted = WANTED_PORTS
    buf = _read(f, CHUNK) or b""
    pos = 0
    pno = 0
    try:
        while True:
            n = len(buf)
            whole = n - 40  # where `head` still fits in the buffer
            while pos + 16 <= n:
                if pos <= whole:
                    incl, et, vihl, proto = head(buf, pos)
                else:
                    (incl,), et = length(buf, pos), -1
                end = pos + 16 + incl
                if end > n:
                    if incl > limit:
                        yield cap.unparsed(pno + 1, f"packet {pno + 1}: record claims {incl} bytes (snap length {snaplen}): the file is corrupt from here, nothing after is read")
                        return
                    break
                pno += 1
                if incl > 57:  # shorter than any Ethernet/IP/UDP/BOOTP start: skip unread
                    if ethernet:
                        # the common untagged frame that is no IPv4 UDP to or from a DHCP or
                        # VXLAN port is skipped here, without a call (most of a big capture)
                        if et == et_ipv4:
                            if proto != 17:
                                pos = end
                                continue
                            u = pos + 30 + (vihl & 15) * 4
                            if u + 4 <= end:
                                sport, dport = ports(buf, u)
                                if dport not in wanted and sport not in DHCP_PORTS:
                                    pos = end
                                    continue
                                # DHCP in an untagged frame (most of those met), in an IPv4
                                # packet whole or its first fragment: read here, as frame()
                                # would after looking through the same headers again
                                if (sport in DHCP_PORTS or dport in DHCP_PORTS) and vihl >> 4 == 4 \
                                        and u + 8 <= end and not (buf[pos + 36] & 0x1F or buf[pos + 37]):
                                    ts_s, ts_f = stamp(buf, pos)
                                    yield from dhcp(buf, pos + 30, u, end, None, pno, ts_s + ts_f * resolution,
                                                    None, buf[pos + 22:pos + 28].hex(":"),
                                                    buf[pos + 16:pos + 22].hex(":"), None)
                                    pos = end
                                    continue
                        elif et not in et_tags:  # no VLAN tag either
                            pos = end
                            continue
                    ts_s, ts_f = stamp(buf, pos)
                    facts = frame(buf, pos + 16, end, lt, pno, ts_s + ts_f * resolution, None)
                    if facts:
                        yield from facts
                pos = end
            more = _read(f, CHUNK)
            if not more:
                yield from cap.ended(more, pno, n - pos, f"inside packet {pno + 1}")
                return
            buf = buf[pos:] + more
            pos = 0
    finally:
        cap.packets = pno  # the file header was good: how far the reading got


class _Interface:
    __slots__ = ("linktype", "snaplen", "name", "units", "offset")

    def __init__(self, linktype: int, snaplen: int):
        self.linktype = linktype
        self.snaplen = snaplen
        self.name: str | None = None
        self.units = 1_000_000  # if_tsresol default: microseconds
        self.offset = 0


def _idb_options(iface: _Interface, body: bytes, endian: str) -> None:
    i = 8
    n = len(body)
    while i + 4 <= n:
        code, size = struct.unpack_from(endian + "HH", body, i)
        value = body[i + 4:i + 4 + size]
        if code == 0:
            break
        if code == 2:  # if_name
            iface.name = value.rstrip(b"\0").decode("utf-8", "backslashreplace") or None
        elif code == 9 and size >= 1:  # if_tsresol
            r = value[0]
            iface.units = (2 ** (r & 0x7F)) if r & 0x80 else (10 ** r)
        elif code == 14 and size == 8:  # if_tsoffset, seconds
            iface.offset = struct.unpack(endian + "q", value)[0]
        i += 4 + ((size + 3) & ~3)


def _pcapng(cap: _Capture, f, first: bytes) -> Iterator[Fact]:
    buf = first + (_read(f, CHUNK) or b"")
    pos = 0
    pno = 0
    try:
        endian = "<"
        ifaces: list[_Interface] = []
        frame = cap.frame
        while True:
            n = len(buf)
            while pos + 12 <= n:
                if buf[pos:pos + 4] == _PCAPNG_SHB:  # a new section: its own byte order
                    bom = buf[pos + 8:pos + 12]
                    if bom == b"\x4d\x3c\x2b\x1a":
                        endian = "<"
                    elif bom == b"\x1a\x2b\x3c\x4d":
                        endian = ">"
                    else:
                        yield cap.unparsed(pno + 1, f"pcapng section header with an unknown byte-order magic 0x{bom.hex()}: nothing after is read")
                        return
                btype, blen = struct.unpack_from(endian + "II", buf, pos)
                if blen < 12 or blen % 4:
                    yield cap.unparsed(pno + 1, f"pcapng block of type 0x{btype:x} with length {blen}: the file is corrupt from here, nothing after is read")
                    return
                end = pos + blen
                if end > n:
                    if blen > (1 << 26):
                        yield cap.unparsed(pno + 1, f"pcapng block claims {blen} bytes: the file is corrupt from here, nothing after is read")
                        return
                    break
                body = pos + 8
                if btype == 6 or btype == 2:  # enhanced / obsolete packet block
                    pno += 1
                    if btype == 6:
                        if_id, ts_hi, ts_lo, caplen, orig = struct.unpack_from(endian + "IIIII", buf, body)
                    else:
                        if_id, _drops, ts_hi, ts_lo, caplen, orig = struct.unpack_from(endian + "HHIIII", buf, body)
                    data = body + 20
                    if if_id >= len(ifaces):
                        yield cap.unparsed(pno, f"packet {pno} names interface {if_id}, which no interface block described")
                    elif data + caplen > end - 4:
                        yield cap.unparsed(pno, f"packet {pno}: its block is shorter than the {caplen} bytes it claims")
                    else:
                        it = ifaces[if_id]
                        ts = ((ts_hi << 32) | ts_lo) / it.units + it.offset
                        if caplen > 57:
                            facts = frame(buf, data, data + caplen, it.linktype, pno, ts, it.name)
                            if facts:
                                yield from facts
                elif btype == 3:  # simple packet block: interface 0, no timestamp
                    pno += 1
                    orig = struct.unpack_from(endian + "I", buf, body)[0]
                    if not ifaces:
                        yield cap.unparsed(pno, f"packet {pno} comes before any interface block")
                    else:
                        it = ifaces[0]
                        caplen = min(orig, blen - 16, it.snaplen or orig)
                        if caplen > 57:
                            facts = frame(buf, body + 4, body + 4 + caplen, it.linktype, pno, None, it.name)
                            if facts:
                                yield from facts
                elif btype == 1:  # interface description
                    linktype, _reserved, snaplen = struct.unpack_from(endian + "HHI", buf, body)
                    iface = _Interface(linktype, snaplen)
                    _idb_options(iface, buf[body:end - 4], endian)
                    if iface.name:
                        cap.interfaces.add(iface.name)
                    ifaces.append(iface)
                elif btype == 0x0A0D0D0A:
                    ifaces = []  # interfaces are numbered per section
                pos = end
            more = _read(f, CHUNK)
            if not more:
                yield from cap.ended(more, pno, n - pos, f"inside a block after packet {pno}")
                return
            buf = buf[pos:] + more
            pos = 0
    finally:
        cap.packets = pno  # the file header was good: how far the reading got
