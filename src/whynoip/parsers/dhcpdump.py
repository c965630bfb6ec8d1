"""dhcpdump's blocks, one per DHCP packet it saw: `DhcpPacket` facts.

`dhcpdump -i tapX` is the quick way to watch DHCP on a hop; each packet is a block of
`NAME: value` lines (`TIME:`, `IP: src (mac) > dst (mac)`, `OP: 1 (BOOTPREQUEST)`, `XID:`,
`CIADDR:` ... `CHADDR:`, `SNAME:`, `FNAME:`) and one `OPTION: code (len) name value` line
per option, a list or a hex dump continued on the lines under it, closed by a line of
dashes. Versions differ in small ways, all read here: Debian's 1.8 prints MACs without
leading zeros (`fa:16:3e:dd:0:1`), dates its TIME and prints the vendor class as text;
later versions print a `VLAN: S:0200 C:0100` line, the vendor class and client id as a hex
dump with the text beside it, option 82 as sub-option lines, and read files (`-r`); the
original 2004 release printed the time without a date and the ports on the IP line.

Two things dhcpdump gets wrong, and how they are handled: TIME is when dhcpdump printed
the packet, not the capture's timestamp (close enough live, meaningless with `-r`); and
some versions print the source IP twice on the IP line, so a destination equal to the
source is not taken.

Real sample (`dhcpdump -i tapdd000001-aa` in the lab of `tests/fixtures/capture/dhcp_wire.sh`)::

      TIME: 2026-11-21 06:11:38.339
        IP: 10.0.0.2 (fa:16:3e:dd:0:1) > 255.255.255.255 (ff:ff:ff:ff:ff:ff)
        OP: 2 (BOOTPREPLY)
     HTYPE: 1 (Ethernet)
      HLEN: 6
      HOPS: 0
       XID: 837d7f0c
      SECS: 0
     FLAGS: 8000
    CIADDR: 0.0.0.0
    YIADDR: 0.0.0.0
    SIADDR: 0.0.0.0
    GIADDR: 0.0.0.0
    CHADDR: fa:16:3e:11:22:33:00:00:00:00:00:00:00:00:00:00
     SNAME: .
     FNAME: .
    OPTION:  53 (  1) DHCP message type         6 (DHCPNAK)
    OPTION:  54 (  4) Server identifier         10.0.0.2
    OPTION:  56 ( 13) Message                   wrong address
    ---------------------------------------------------------------------------
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import DhcpPacket, Fact, Unparsed
from whynoip.parsers import _dhcp, _time
from whynoip.parsers._stray import StrayRun

NAME = "dhcpdump"
COMMANDS = (r"(?:^|[\s/;|&(])dhcpdump(?=\s|$)",)
PATHS = ("*/dhcpdump*.txt", "*/dhcpdump*.log", "*/dhcpdump*.out")

_IP = r"\d{1,3}(?:\.\d{1,3}){3}"
_IP_RE = re.compile(_IP)
_HEAD_RE = re.compile(r"^\s*(?P<key>TIME|VLAN|IP|OP|HTYPE|HLEN|HOPS|XID|SECS|FLAGS|CIADDR|YIADDR|SIADDR|GIADDR|CHADDR|SNAME|FNAME):\s?(?P<value>.*)$")
_OPTION_RE = re.compile(r"^OPTION:\s+(?P<code>\d+)\s+\(\s*(?P<len>\d+)\)\s(?P<rest>.*)$")
_IPLINE_RE = re.compile(rf"^(?P<src>{_IP})(?:\.(?P<sport>\d+))?\s+\((?P<smac>[0-9a-fA-F:]+)\)\s+>\s+(?P<dst>{_IP})(?:\.(?P<dport>\d+))?\s+\((?P<dmac>[0-9a-fA-F:]+)\)")
_SEPARATOR_RE = re.compile(r"^-{20,}\s*$")
_HEX_RE = re.compile(r"^(?:[0-9a-f]{2}){1,16}")
_TOD_RE = re.compile(r"^(\d\d):(\d\d):(\d\d(?:\.\d+)?)$")
# the option name column is 26 characters wide: the value starts after it
_NAME_WIDTH = 26


def sniff(head: str) -> bool:
    lines = [ln.strip() for ln in head.splitlines()[:80]]
    keys = {ln.split(":", 1)[0] for ln in lines if ":" in ln}
    return {"OP", "XID", "CHADDR"} <= keys and any(ln.startswith("OPTION:") or ln.startswith("CIADDR:") for ln in lines)


def _mac(text: str) -> str | None:
    parts = text.split(":")
    if len(parts) < 6 or not all(1 <= len(p) <= 2 and all(c in "0123456789abcdefABCDEF" for c in p) for p in parts):
        return None
    return ":".join(f"{int(p, 16):02x}" for p in parts)


class _Block:
    __slots__ = ("offset", "line", "head", "options", "opt", "vlan")

    def __init__(self, offset: int, line: str):
        self.offset, self.line = offset, line
        self.head: dict[str, str] = {}
        self.options: list[list] = []  # [code, value, continuation lines]
        self.opt: list | None = None
        self.vlan: int | None = None


def parse(section: Section) -> Iterator[Fact]:
    lines = section.lines() if section.lines else iter(())
    clock = _dhcp.DayClock(section.ref_time)
    block: _Block | None = None
    stray = StrayRun(section, "not dhcpdump output (outside a packet block)")

    for offset, raw in enumerate(lines):
        line = raw.rstrip()
        if not line.strip():
            continue
        if _SEPARATOR_RE.match(line):
            if block is not None:
                yield from _facts(section, block, clock)
                block = None
            continue
        m = _HEAD_RE.match(line)
        if m:
            key = m["key"]
            # a block begins with TIME (or VLAN before it); a header key seen twice, or a
            # first-line key after OP, means the previous block had no closing line
            if block is not None and (key in block.head or (key in ("TIME", "VLAN", "IP") and "OP" in block.head)):
                yield from _facts(section, block, clock)
                block = None
            if block is None:
                yield from stray.flush()
                block = _Block(offset, line)
            block.head[key] = m["value"].strip()
            if key == "VLAN":
                tags = re.findall(r"[CS]:(\d+)", m["value"])
                if tags:
                    block.vlan = int(tags[-1])
            block.opt = None
            continue
        m = _OPTION_RE.match(line)
        if m and block is not None:
            rest = m["rest"]
            value = rest[_NAME_WIDTH:] if len(rest) > _NAME_WIDTH else ""
            block.opt = [int(m["code"]), value.strip(), []]
            block.options.append(block.opt)
            continue
        if block is not None and line[:1] in (" ", "\t") and block.opt is not None:
            block.opt[2].append(line.strip())
            continue
        stray.add(offset, line)
    if block is not None:
        yield from _facts(section, block, clock)
    yield from stray.flush()


def _facts(section: Section, block: _Block, clock: _dhcp.DayClock) -> Iterator[Fact]:
    h = block.head
    origin = section.origin_at(block.offset, block.line.strip())
    if "OP" not in h and "XID" not in h:
        yield Unparsed(origin=origin, reason="a dhcpdump block without OP or XID")
        return
    f: dict = {}
    try:
        _header(f, h, clock)
    except (ValueError, KeyError) as e:
        yield Unparsed(origin=origin, reason=f"dhcpdump block with an unreadable header: {e}")
        return
    options: dict[int, str] = {}
    for code, value, more in block.options:
        if code in (0, 255):
            continue
        options[code] = " ".join([value] + more) if more else value
        try:
            _typed(f, code, value, more)
        except (ValueError, IndexError, OSError):
            pass  # the text stays in `options`
    if "message_type" not in f and f.get("op") in (1, 2):
        f["message_type"] = "BOOTREQUEST" if f["op"] == 1 else "BOOTREPLY"
    yield DhcpPacket(origin=origin, vlan=block.vlan, options=options, **f)


def _header(f: dict, h: dict[str, str], clock: _dhcp.DayClock) -> None:
    t = h.get("TIME")
    if t:
        iso = _time.iso_time(t)
        if iso:
            f["time"] = iso[0]
        else:
            m = _TOD_RE.match(t)
            if m:
                f["time"] = clock.at(int(m.group(1)), int(m.group(2)), float(m.group(3)))
                f["time_inferred"] = f["time"] is not None
    m = _IPLINE_RE.match(h.get("IP", ""))
    if m:
        f["src_ip"], f["src_mac"] = m["src"], _mac(m["smac"])
        if m["dst"] != m["src"]:  # some versions print the source twice
            f["dst_ip"] = m["dst"]
        f["dst_mac"] = _mac(m["dmac"])
        if m["sport"]:
            f["src_port"], f["dst_port"] = int(m["sport"]), int(m["dport"])
    if "OP" in h:
        f["op"] = int(h["OP"].split()[0])
    if "XID" in h:
        f["xid"] = int(h["XID"].removeprefix("0x"), 16)
    if "SECS" in h:
        f["secs"] = int(h["SECS"].split()[0])
    if "HOPS" in h:
        f["hops"] = int(h["HOPS"])
    if "FLAGS" in h:
        f["flags_broadcast"] = bool(int(h["FLAGS"].split()[0], 16) & 0x8000)
    for key in ("CIADDR", "YIADDR", "SIADDR", "GIADDR"):
        if key in h and _IP_RE.fullmatch(h[key]):
            f[key.lower()] = h[key]
    if "CHADDR" in h:
        hlen = int(h["HLEN"]) if h.get("HLEN", "").isdigit() else 6
        parts = h["CHADDR"].split(":")
        f["client_mac"] = _mac(":".join(parts[:hlen if 0 < hlen <= 16 else 6])) if hlen >= 6 else ":".join(parts[:hlen])
    for key, name in (("SNAME", "server_name"), ("FNAME", "boot_file")):
        v = h.get(key)
        if v is not None:
            v = v[:-1] if v.endswith(".") else v  # dhcpdump prints the field, then a dot
            if v:
                f[name] = v


def _hexdump(value: str, more: list[str]) -> bytes | None:
    """The bytes of dhcpdump's `20a9fea9fe0a0000  .......` dump, over its lines; None when
    the value is not one. A dump line is up to 8 (16) bytes in hex, padding, one space, and
    the same bytes as text (`.` for the unprintable; trailing spaces may have been lost)."""
    out = bytearray()
    for part in [value] + more:
        m = _HEX_RE.match(part)
        if not m:
            return None
        rest = part[m.end():]
        text = rest.lstrip(" ")
        if not rest.startswith(" ") or len(text) > len(m.group(0)) // 2:
            return None
        out += bytes.fromhex(m.group(0))
    return bytes(out)


def _typed(f: dict, code: int, value: str, more: list[str]) -> None:
    raw = _hexdump(value, more)
    if raw is not None and code != 55:
        _, field, typed = _dhcp.decode_option(code, raw)
        if field is not None:
            f[field] = list(typed) if isinstance(typed, tuple) else typed
        return
    if code == 53:
        m = re.search(r"\((\w+)\)", value)
        mt = _dhcp.message_type_of(m.group(1)) if m else None
        if mt is None and value.split() and value.split()[0].isdigit():
            mt = _dhcp.MESSAGE_TYPES.get(int(value.split()[0]))
        if mt:
            f["message_type"] = mt
    elif code in (1, 28, 50, 54):
        ips = _IP_RE.findall(value)
        if ips:
            f[{1: "subnet_mask", 28: "broadcast_address", 50: "requested_ip", 54: "server_id"}[code]] = ips[0]
    elif code in (3, 6):
        ips = _IP_RE.findall(" ".join([value] + more))
        if ips:
            f["routers" if code == 3 else "dns_servers"] = ips
    elif code in (12, 15, 56, 60):
        f[{12: "hostname", 15: "domain", 56: "message", 60: "vendor_class"}[code]] = value
    elif code in (26, 51, 58, 59):
        m = re.match(r"^(\d+)", value)
        if m:
            f[{26: "mtu", 51: "lease_time", 58: "renewal_time", 59: "rebinding_time"}[code]] = int(m.group(1))
    elif code == 55:
        f["parameter_list"] = [int(x) for x in re.findall(r"(?:^|\s)(\d+)\s+\(", " " + " ".join([value] + more))]
    elif code == 61:
        if re.fullmatch(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})+", value):
            f["client_id"] = value.lower()
    elif code == 81:
        m = re.match(r"^\d+-\d+-\d+ (.*)$", value)
        if m:
            f["client_fqdn"] = m.group(1)
    elif code in (121, 249):  # the maintained version prints "dest/len via gw", one a line
        routes = [f"{d} via {g}" for d, g in re.findall(rf"({_IP}/\d+) via ({_IP})", " ".join([value] + more))]
        if routes:
            f["classless_routes" if code == 121 else "ms_classless_routes"] = routes
    elif code == 82:
        subs = bytearray()
        for line in more:  # "<sub-option name> <hex dump>", one sub-option a line
            m = re.match(r"^(?P<name>.+?)\s+(?P<hex>(?:[0-9a-f]{2})+)\s+(?P<text>.*)$", line)
            if m:
                data = bytes.fromhex(m["hex"])
                sub = _SUBOPTION_CODES.get(m["name"].strip().lower())
                if sub is not None:
                    subs += bytes([sub, len(data)]) + data
        if subs:
            f["relay_agent"] = _dhcp.relay_agent_text(bytes(subs))


_SUBOPTION_CODES = {"circuit-id": 1, "remote-id": 2, "agent circuit id": 1, "agent remote id": 2,
                    "link selection": 5, "subscriber-id": 6}
