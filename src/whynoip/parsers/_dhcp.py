"""DHCP (BOOTP) packet decoding shared by the wire parsers: the BOOTP header, the options,
and how each option becomes a typed field of `DhcpPacket`.

The pcap parser decodes the bytes here. The text parsers (tcpdump, dhcpdump) print the
same options their own way; they turn what they read into the same typed fields with the
small converters at the end (`routes_from_bytes`, `client_id_text`, ...), so that one DHCP
transaction seen in a capture and in a pasted `tcpdump -vvv` gives the same facts.
"""

from __future__ import annotations

import socket
import struct
from datetime import datetime, timezone

import msgspec

from whynoip.facts import DhcpPacket, Origin

MESSAGE_TYPES = {
    1: "DISCOVER", 2: "OFFER", 3: "REQUEST", 4: "DECLINE", 5: "ACK", 6: "NAK", 7: "RELEASE",
    8: "INFORM", 9: "FORCERENEW", 10: "LEASEQUERY", 11: "LEASEUNASSIGNED", 12: "LEASEUNKNOWN",
    13: "LEASEACTIVE",
}
MAGIC_COOKIE = b"\x63\x82\x53\x63"
BOOTP_HEADER = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")  # 236 bytes, then the cookie
BOOTP_MIN = BOOTP_HEADER.size  # 236
_BOOTP_START = struct.Struct("!BBBBIHH4s4s4s4s16s")  # the header up to sname (read when used)
_ZERO, _ZERO_TEXT = b"\0\0\0\0", "0.0.0.0"

_inet_ntoa = socket.inet_ntoa

# Options that are one IPv4 address / a list of them / an unsigned integer / text.
_IP_ONE = {1, 16, 28, 32, 50, 54, 118}
_IP_LIST = {3, 4, 5, 6, 7, 8, 9, 10, 11, 41, 42, 44, 45, 48, 49, 65, 68, 69, 70, 71, 72, 73,
            74, 75, 76, 85, 136, 138, 150}
_UINT = {2: "!i", 13: "!H", 22: "!H", 23: "!B", 24: "!I", 26: "!H", 35: "!I", 37: "!B",
         38: "!I", 51: "!I", 52: "!B", 57: "!H", 58: "!I", 59: "!I", 91: "!I", 152: "!I"}
_TEXT = {12, 14, 15, 17, 18, 40, 47, 56, 60, 62, 64, 66, 67, 86, 87, 100, 101, 114, 209, 210}


# The dotted text of each address met, by its 4 bytes: packets show the same few addresses
# over and over (0.0.0.0 above all), and a dict lookup costs half of socket.inet_ntoa.
_ADDRESSES: dict[bytes, str] = {_ZERO: _ZERO_TEXT}
_ADDRESSES_MAX = 50_000


def address(raw: bytes) -> str:
    """An IPv4 address (4 bytes) as dotted text. Hot loops look in `_ADDRESSES` first:
    `_ADDRESSES.get(raw) or address(raw)`."""
    text = _ADDRESSES.get(raw)
    if text is None:
        text = _inet_ntoa(raw)
        if len(_ADDRESSES) >= _ADDRESSES_MAX:
            _ADDRESSES.clear()
        _ADDRESSES[raw] = text
    return text


def ip_list(value: bytes) -> list[str]:
    return [_inet_ntoa(value[i:i + 4]) for i in range(0, len(value) - len(value) % 4, 4)]


def text_of(value: bytes) -> str:
    """Option text as sent, without the NUL padding some clients append."""
    return value.rstrip(b"\0").decode("utf-8", "backslashreplace")


def hex_colon(value: bytes) -> str:
    return value.hex(":")


def mac_text(value: bytes) -> str:
    return value.hex(":")


def routes_from_bytes(value: bytes) -> list[str] | None:
    """Option 121/249 (RFC 3442): `dest/len via gw` for each route, None when malformed."""
    routes = []
    i, n = 0, len(value)
    while i < n:
        width = value[i]
        if width > 32:
            return None
        octets = (width + 7) // 8
        if i + 1 + octets + 4 > n:
            return None
        dest = bytes(value[i + 1:i + 1 + octets]) + bytes(4 - octets)
        gw = value[i + 1 + octets:i + 5 + octets]
        routes.append(f"{_inet_ntoa(dest)}/{width} via {_inet_ntoa(gw)}")
        i += 5 + octets
    return routes


def fqdn_name(value: bytes) -> str | None:
    """Option 81 (RFC 4702): the domain name, in DNS wire format when the E flag is set."""
    if len(value) < 3:
        return None
    flags, name = value[0], value[3:]
    if flags & 0x04:  # E: canonical wire format
        labels, i = [], 0
        while i < len(name) and name[i]:
            size = name[i]
            labels.append(name[i + 1:i + 1 + size].decode("utf-8", "backslashreplace"))
            i += 1 + size
        return ".".join(labels) + ("." if i < len(name) else "")
    return text_of(name)


def _printable(value: bytes) -> bool:
    return bool(value) and all(32 <= b < 127 for b in value)


def relay_agent_text(value: bytes) -> str:
    """Option 82 (RFC 3046): `circuit-id=.. remote-id=..`; printable sub-options as text,
    others as hex."""
    names = {1: "circuit-id", 2: "remote-id", 5: "link-selection", 6: "subscriber-id",
             11: "server-id-override", 151: "vss"}
    parts, i, n = [], 0, len(value)
    while i + 1 < n:
        code, size = value[i], value[i + 1]
        sub = value[i + 2:i + 2 + size]
        shown = sub.decode("ascii") if _printable(sub) else hex_colon(sub)
        parts.append(f"{names.get(code, f'sub-{code}')}={shown}")
        i += 2 + size
    if i < n:
        parts.append(f"trailing={hex_colon(value[i:])}")
    return " ".join(parts)


def client_id_text(value: bytes) -> str:
    """Option 61 as dnsmasq writes it in its lease file: `01:fa:16:3e:..`."""
    return hex_colon(value)


def option_text(code: int, value: bytes) -> str:
    """Any option as text: addresses dotted, numbers decimal, names as text, the rest hex."""
    try:
        if code == 53 and len(value) == 1:
            return MESSAGE_TYPES.get(value[0], str(value[0]))
        if code in _IP_ONE and len(value) == 4:
            return _inet_ntoa(value)
        if code in _IP_LIST and value and len(value) % 4 == 0:
            return ",".join(ip_list(value))
        fmt = _UINT.get(code)
        if fmt is not None and len(value) == struct.calcsize(fmt):
            return str(struct.unpack(fmt, value)[0])
        if code in _TEXT:
            return text_of(value)
        if code == 55:
            return ",".join(str(b) for b in value)
        if code == 81:
            name = fqdn_name(value)
            if name is not None:
                return f"flags=0x{value[0]:02x} {name}"
        if code == 82:
            return relay_agent_text(value)
        if code in (121, 249):
            routes = routes_from_bytes(value)
            if routes is not None:
                return ", ".join(routes)
    except (ValueError, struct.error, IndexError, OSError):
        pass
    return hex_colon(value)


def read_options(data: bytes, start: int) -> tuple[dict[int, bytes], str | None]:
    """The options from `start` to END (or the end of `data`): code -> value, a repeated
    option's parts joined (RFC 3396). The second item says what was wrong, if anything."""
    opts: dict[int, bytes] = {}
    i, n = start, len(data)
    while i < n:
        code = data[i]
        if code == 255:
            return opts, None
        if code == 0:
            i += 1
            continue
        if i + 1 >= n:
            return opts, f"option {code} cut off before its length"
        size = data[i + 1]
        end = i + 2 + size
        if end > n:
            opts[code] = opts.get(code, b"") + data[i + 2:n]
            return opts, f"option {code} cut off ({n - i - 2} of {size} bytes)"
        value = data[i + 2:end]
        opts[code] = opts[code] + value if code in opts else value
        i = end
    return opts, None  # no END: tolerated, many captures are cut at the snap length


def bootp_fields(payload: bytes) -> tuple[dict, str | None]:
    """The `DhcpPacket` fields of one BOOTP/DHCP payload (the UDP data), and what was wrong
    with it (None if nothing). Raises ValueError when it is no BOOTP message at all."""
    if len(payload) < BOOTP_MIN:
        raise ValueError(f"BOOTP message of {len(payload)} bytes, shorter than its {BOOTP_MIN}-byte header")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr,
     chaddr) = _BOOTP_START.unpack_from(payload, 0)
    if op not in (1, 2):
        raise ValueError(f"BOOTP op {op} is neither request (1) nor reply (2)")
    mac_len = hlen if 0 < hlen <= 16 else 6
    known = _ADDRESSES.get
    f = {
        "op": op, "xid": xid, "secs": secs, "hops": hops, "flags_broadcast": bool(flags & 0x8000),
        "client_mac": chaddr[:mac_len].hex(":"),
        "ciaddr": known(ciaddr) or address(ciaddr),
        "yiaddr": known(yiaddr) or address(yiaddr),
        "siaddr": known(siaddr) or address(siaddr),
        "giaddr": known(giaddr) or address(giaddr),
    }
    entry = _options_of(payload)
    if entry:
        f.update(entry[1])
        if "message_type" not in f:
            f["message_type"] = "BOOTREQUEST" if op == 1 else "BOOTREPLY"
        for name, values in entry[3]:  # each message its own lists and dict: facts are mutable
            f[name] = list(values)
        f["options"] = entry[5].copy()
        return f, None
    sname, bootfile = payload[44:108], payload[108:236]
    if payload[236:240] == MAGIC_COOKIE:
        opts, problem = read_options(payload, 240)
        overload = opts.get(52)
        if overload and len(overload) == 1:  # options continued in the file / sname fields
            for flag, field in ((1, bootfile), (2, sname)):
                if overload[0] & flag:
                    more, p2 = read_options(field, 0)
                    for code, value in more.items():
                        opts[code] = opts[code] + value if code in opts else value
                    problem = problem or p2
    else:
        opts, problem = {}, None
        if len(payload) > 236 and payload[236:240].strip(b"\0"):
            problem = f"vendor area without the DHCP magic cookie ({payload[236:240].hex()})"
    overload_bits = opts[52][0] if len(opts.get(52, b"")) == 1 else 0
    if not overload_bits & 2 and sname[:1] not in (b"\0", b""):
        f["server_name"] = text_of(sname.split(b"\0", 1)[0])
    if not overload_bits & 1 and bootfile[:1] not in (b"\0", b""):
        f["boot_file"] = text_of(bootfile.split(b"\0", 1)[0])
    apply_options(f, opts)
    return f, problem


def wire_packet(payload: bytes, time: float | None, src_mac: str | None, dst_mac: str | None,
                src_ip: str, dst_ip: str, src_port: int, dst_port: int, vlan: int | None,
                udp_checksum_ok: bool | None) -> tuple[DhcpPacket, str | None]:
    """The `DhcpPacket` of one BOOTP/DHCP payload (the UDP data) and what carried it, and
    what was wrong with the payload (None if nothing); raises ValueError as `bootp_fields`
    does. The packet is the one `bootp_fields` describes; its origin is left for the caller
    to set, as it cites the message type and xid read here.

    An ordinary message is made without the dict of fields: a copy of the packet made once
    for its options, with the header's fields given as keywords. Reading a large capture
    spends most of its time here."""
    entry = _options_of(payload) if len(payload) >= 240 else None
    if entry:
        (op, _htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr,
         chaddr) = _BOOTP_START.unpack_from(payload, 0)
        if op == 1 or op == 2:
            template, _scalars, message_type, _present, lists, text = entry
            routers, dns_servers, parameter_list, classless_routes, ms_classless_routes = lists
            known = _ADDRESSES.get
            return _replace(
                template, time=time, src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip,
                dst_ip=dst_ip, src_port=src_port, dst_port=dst_port, vlan=vlan,
                udp_checksum_ok=udp_checksum_ok, op=op, xid=xid, secs=secs, hops=hops,
                flags_broadcast=bool(flags & 0x8000),
                client_mac=chaddr[:hlen if 0 < hlen <= 16 else 6].hex(":"),
                ciaddr=known(ciaddr) or address(ciaddr), yiaddr=known(yiaddr) or address(yiaddr),
                siaddr=known(siaddr) or address(siaddr), giaddr=known(giaddr) or address(giaddr),
                message_type=message_type or ("BOOTREQUEST" if op == 1 else "BOOTREPLY"),
                # each packet its own lists and dict: facts are mutable
                routers=list(routers), dns_servers=list(dns_servers),
                parameter_list=list(parameter_list), classless_routes=list(classless_routes),
                ms_classless_routes=list(ms_classless_routes), options=text.copy()), None
    fields, problem = bootp_fields(payload)
    for name, make in _FACTORIES:  # the copy below would share the empty packet's
        if name not in fields:
            fields[name] = make()
    return _replace(_EMPTY, time=time, src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip,
                    dst_ip=dst_ip, src_port=src_port, dst_port=dst_port, vlan=vlan,
                    udp_checksum_ok=udp_checksum_ok, **fields), problem


def _options_of(payload: bytes):
    """The decoded options of an ordinary message (the cookie, no sname or file), from the
    cache of option areas (see `_BLOCKS`); None or False when the careful path reads them."""
    if payload[236:240] != MAGIC_COOKIE or payload[44] or payload[108]:
        return None
    block = payload[240:]
    entry = _BLOCKS.get(block)
    if entry is None:
        entry = _decode_block(block) or False
        if len(block) <= _BLOCK_KEY_MAX:
            if len(_BLOCKS) >= _BLOCKS_MAX:
                _BLOCKS.clear()
            _BLOCKS[block] = entry
    return entry


def _decode_block(block: bytes):
    """The options area after the magic cookie of an ordinary message, decoded in one pass,
    as a `_BLOCKS` entry. None for the rare message that needs the careful path: an option
    repeated (RFC 3396), overloaded into sname/file (option 52), cut short or without END."""
    text: dict[int, str] = {}
    got: dict = {}
    cache = _DECODED_TLV
    count = 0
    i, n = 0, len(block)
    while True:
        if i >= n:
            return None
        code = block[i]
        if code == 255:
            break
        if code == 0:
            i += 1
            continue
        if i + 1 >= n or code == 52:
            return None
        end = i + 2 + block[i + 1]
        if end > n:
            return None
        tlv = block[i:end]  # code, length, value: one key
        i = end
        count += 1
        d = cache.get(tlv)
        if d is None:
            d = decode_option(code, tlv[2:])
            if len(cache) >= _DECODED_MAX:
                cache.clear()
            cache[tlv] = d
        text[code] = d[0]
        if d[1] is not None:
            got[d[1]] = d[2]
    if count != len(text):  # an option repeated
        return None
    present = tuple((name, got.pop(name)) for name in _LIST_ORDER if name in got)
    lists = tuple(dict(present).get(name, ()) for name in _LIST_ORDER)
    template = DhcpPacket(origin=_NOWHERE, **got)
    return template, got, got.get("message_type"), present, lists, text


_LIST_ORDER = ("routers", "dns_servers", "parameter_list", "classless_routes", "ms_classless_routes")
_NOWHERE = Origin(path="")
_EMPTY = DhcpPacket(origin=_NOWHERE)
# msgspec's replace copies a struct with some fields changed, about twice as fast as
# DhcpPacket(...) with its forty-odd fields. The copy is shallow: a list or dict of the
# original would be shared, so every field whose default is one is always given.
_replace = msgspec.structs.replace
_FACTORIES = tuple((f.name, f.default_factory) for f in msgspec.structs.fields(DhcpPacket)
                   if f.default_factory is not msgspec.NODEFAULT)


def decode_option(code: int, value: bytes) -> tuple[str, str | None, object]:
    """One option as (text, the DhcpPacket field it fills or None, the field's value).
    List values come as tuples: the result is cached and shared."""
    text = option_text(code, value)
    n = len(value)
    if code == 53:
        if n == 1:
            return text, "message_type", MESSAGE_TYPES.get(value[0], str(value[0]))
    elif code in _ONE_IP_FIELD:
        if n == 4:
            return text, _ONE_IP_FIELD[code], _inet_ntoa(value)
    elif code == 3 or code == 6:
        if n and n % 4 == 0:
            return text, "routers" if code == 3 else "dns_servers", tuple(ip_list(value))
    elif code in _TEXT_FIELD:
        return text, _TEXT_FIELD[code], text_of(value)
    elif code == 26:
        if n == 2:
            return text, "mtu", (value[0] << 8) | value[1]
    elif code in _TIME_FIELD:
        if n == 4:
            return text, _TIME_FIELD[code], int.from_bytes(value, "big")
    elif code == 55:
        return text, "parameter_list", tuple(value)
    elif code == 61:
        return text, "client_id", client_id_text(value)
    elif code == 81:
        name = fqdn_name(value)
        if name is not None:
            return text, "client_fqdn", name
    elif code == 82:
        return text, "relay_agent", text
    elif code == 121 or code == 249:
        routes = routes_from_bytes(value)
        if routes is not None:
            return text, "classless_routes" if code == 121 else "ms_classless_routes", tuple(routes)
    return text, None, None


# Captures repeat the same options over and over (one server's lease time, router, routes):
# decoding each distinct (code, value) once makes reading a large capture several times
# faster. Bounded: cleared when it grows past a size no single network reaches.
_DECODED: dict[tuple[int, bytes], tuple[str, str | None, object]] = {}
_DECODED_TLV: dict[bytes, tuple[str, str | None, object]] = {}  # the same, keyed by the option's bytes
_DECODED_MAX = 50_000
# Whole option areas repeat too: a server's replies carry the same options to every client,
# a client without an answer sends the same DISCOVER again and again. Each distinct area
# (the bytes after the magic cookie) is decoded once, into (a DhcpPacket holding the option
# fields but the lists, the same fields as a dict, option 53's name or None, the list fields
# the options hold as (name, tuple) pairs, the five list fields in `_LIST_ORDER` as tuples,
# the option texts); False marks one the careful path reads.
# An entry takes about 2 KB: fewer of them than of single options, and no area longer than
# a message on an ordinary link is kept (a jumbo one is decoded each time).
_BLOCKS: dict[bytes, tuple | bool] = {}
_BLOCKS_MAX = 4096
_BLOCK_KEY_MAX = 1500 - 20 - 8 - 240


def apply_options(f: dict, opts: dict[int, bytes]) -> None:
    """Fill the typed fields from decoded options; every option also goes into `options`."""
    text = {}
    cache = _DECODED
    for code, value in opts.items():
        key = (code, value)
        d = cache.get(key)
        if d is None:
            d = decode_option(code, value)
            if len(cache) >= _DECODED_MAX:
                cache.clear()
            cache[key] = d
        text[code] = d[0]
        if d[1] is not None:
            f[d[1]] = list(d[2]) if type(d[2]) is tuple else d[2]
    if "message_type" not in f and f.get("op") in (1, 2):
        f["message_type"] = "BOOTREQUEST" if f["op"] == 1 else "BOOTREPLY"
    f["options"] = text


_ONE_IP_FIELD = {1: "subnet_mask", 28: "broadcast_address", 50: "requested_ip", 54: "server_id"}
_TEXT_FIELD = {12: "hostname", 15: "domain", 56: "message", 60: "vendor_class"}
_TIME_FIELD = {51: "lease_time", 58: "renewal_time", 59: "rebinding_time"}

# Message-type names as the text tools print them -> ours.
MESSAGE_TYPE_NAMES = {name: name for name in MESSAGE_TYPES.values()}
MESSAGE_TYPE_NAMES.update({"NACK": "NAK", "DHCPNAK": "NAK"})
for _n in list(MESSAGE_TYPES.values()):
    MESSAGE_TYPE_NAMES["DHCP" + _n] = _n


def message_type_of(word: str) -> str | None:
    """`Discover`, `ACK`, `NACK` (tcpdump 3.x), `DHCPREQUEST` (dhcpdump) -> our name."""
    return MESSAGE_TYPE_NAMES.get(word.strip().upper())


class DayClock:
    """Times of day (tcpdump and old dhcpdump print no date) turned into epoch seconds:
    the day is the one of `ref_time` (when the evidence was taken), or the day before
    when that would put the first packet after it; a capture running past midnight moves
    to the next day. Without `ref_time` there is no time."""

    def __init__(self, ref_time: float | None):
        self.ref = ref_time
        self.day: float | None = None
        self.last: float | None = None

    def at(self, hours: int, minutes: int, seconds: float) -> float | None:
        if self.ref is None:
            return None
        tod = hours * 3600 + minutes * 60 + seconds
        if self.day is None:
            ref = datetime.fromtimestamp(self.ref, timezone.utc)
            day = datetime(ref.year, ref.month, ref.day, tzinfo=timezone.utc).timestamp()
            if day + tod > self.ref + 3600:
                day -= 86400
            self.day = day
        elif self.last is not None and tod < self.last - 43200:
            self.day += 86400
        self.last = tod
        return self.day + tod
