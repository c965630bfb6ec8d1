"""tcpdump's text output of DHCP packets, as operators paste it: `DhcpPacket` facts.

"Run tcpdump on each hop" is how DHCP is debugged by hand, so tickets are full of
`tcpdump -i tapX -nn -vvv port 67 or port 68` output. Each packet is a header line (a
timestamp, with `-e` the link layer: MACs, 802.1Q/QinQ tags, or for `-i any` the
interface and direction) followed, with `-v`, by an indented address line
(`10.0.0.2.67 > 10.0.0.5.68: [udp sum ok] BOOTP/DHCP, Reply, ... xid 0x..`) and one
indented line per BOOTP field and option. Without `-v` it is all one line, without xid
or options. A packet inside VXLAN (tcpdump decodes UDP 4789 as VXLAN, 8472 as OTV) prints
its inner header at column 0 under the outer one; a DHCP packet quoted inside an ICMP
error is not a packet on the wire and is skipped, as is everything that is not DHCP.

The wording changed over the years, and all of it is read:
- tcpdump 4.99 and later: `DHCP-Message (53), length 1: Discover`, `Client-IP`, ...
- tcpdump 4.0 to 4.9: `DHCP-Message Option 53, length 1: Discover` (the switch to
  `(53)` is tcpdump issue #866, 2020);
- tcpdump 3.8/3.9: `Vendor-rfc1048:` then `DHCP:DISCOVER`, `SID:10.0.0.2`, `LT:86400`,
  header fields `Client IP: `, `length: 300, xid:0x..`;
- OpenBSD's tcpdump (and LBL tcpdump before 3.8): one line, no `BOOTP/DHCP` word:
  `xid:0x.. C:10.0.0.5 vend-rfc1048 DHCP:REQUEST RQ:10.0.0.5 SID:10.0.0.2`.
`[bad udp cksum 0x1567 -> 0x99cf!]` sets `udp_checksum_ok` False, `[udp sum ok]` True.

Times: `-tttt` prints the date, `-tt` the epoch; the default `HH:MM:SS.ffffff` has no
date, which is taken from when the evidence was taken (`time_inferred`), and no time is
given without that. Delta timestamps (`-ttt`, `-ttttt`, known from the command) give none.

Real sample (`tcpdump -r dora.pcap -e -nn -vvv`, from `tests/fixtures/capture/dhcp_wire.sh`)::

    06:16:31.272062 fa:16:3e:dd:00:01 > fa:16:3e:11:22:33, ethertype IPv4 (0x0800), length 434: (tos 0xc0, ttl 64, id 54242, offset 0, flags [none], proto UDP (17), length 420)
        10.0.0.2.67 > 10.0.0.5.68: [udp sum ok] BOOTP/DHCP, Reply, length 392, xid 0x5b89fd4d, Flags [none] (0x0000)
    	  Your-IP 10.0.0.5
    	  Server-IP 10.0.0.2
    	  Client-Ethernet-Address fa:16:3e:11:22:33
    	  Vendor-rfc1048 Extensions
    	    Magic Cookie 0x63825363
    	    DHCP-Message (53), length 1: Offer
    	    Server-ID (54), length 4: 10.0.0.2
    	    Lease-Time (51), length 4: 86400
    	    Classless-Static-Route (121), length 14: (169.254.169.254/32:10.0.0.2),(default:10.0.0.1)
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import DhcpPacket, Fact, Unparsed
from whynoip.parsers import _dhcp, _time
from whynoip.parsers._stray import StrayRun

NAME = "tcpdump_text"
# tcpdump printing packets (not writing them with -w)
COMMANDS = (r"(?:^|[\s/;|&(])tcpdump(?=\s|$)(?![^|;&]*\s-w\s*\S)",)
PATHS = ("*/tcpdump*.txt", "*/tcpdump*.out", "*/tcpdump*.log")

_IP = r"\d{1,3}(?:\.\d{1,3}){3}"
_MAC = r"[0-9a-fA-F]{1,2}(?::[0-9a-fA-F]{1,2}){5}"
_IP_RE = re.compile(_IP)
_MAC_RE = re.compile(_MAC)
_OUI_RE = re.compile(r"\s*\(oui [^)]*\)")

# the timestamp that starts a packet: -tttt date, default time of day, -tt epoch
_STAMP_RE = re.compile(r"^(?:(?P<date>\d{4}-\d\d-\d\d) (?P<tod>\d\d:\d\d:\d\d(?:\.\d+)?)"
                       r"|(?P<tod2>\d\d:\d\d:\d\d(?:\.\d+)?)|(?P<epoch>\d{9,11}\.\d+)) ")
# what a packet line without a timestamp (-t, or the inner packet of VXLAN) starts with
_BARE_START_RE = re.compile(rf"^(?:IP6? |IP \(|ARP,|{_MAC} > |\S+\s+(?:In|Out|B|M|P)\s+)")
# link layer with -e: Ethernet, and the Linux cooked header of -i any (SLL2 names the interface)
_ETH_RE = re.compile(rf"^(?P<src>{_MAC}|\S+) > (?P<dst>{_MAC}|Broadcast|\S+), ethertype (?P<rest>.*)$")
_COOKED_RE = re.compile(rf"^(?:(?P<ifname>\S+)\s+)?(?P<dir>In|Out|B|M|P)\s+(?:ifindex \d+ )?(?P<src>{_MAC})?\s*(?:ethertype|IP)")
_ANY_IF_RE = re.compile(r"^(?P<ifname>\S+)\s+(?P<dir>In|Out|B|M|P)\s+(?=IP6? |ARP)")
_VLAN_RE = re.compile(r"\bvlan (\d+), p \d")
# the address line: "src.port > dst.port: rest"
_ADDR_RE = re.compile(r"^(?P<src>\S+?)\.(?P<sport>\w+(?:-\w+)?) > (?P<dst>\S+?)\.(?P<dport>\w+(?:-\w+)?): (?P<rest>.*)$")
_ADDR_NOPORT_RE = re.compile(r"^(?P<src>\S+) > (?P<dst>\S+): (?P<rest>.*)$")
_BAD_SUM_RE = re.compile(r"\[bad udp cksum 0x[0-9a-f]+ -> 0x[0-9a-f]+!\]")
_DHCP_PORT_NAMES = {"67": 67, "68": 68, "bootps": 67, "bootpc": 68}

# BOOTP header words, new (", xid 0x..") and 3.8 (", xid:0x..") alike
_OP_RE = re.compile(r"BOOTP/DHCP, (Request|Reply|unknown)")
_FROM_RE = re.compile(rf"Request from ({_MAC})")
_XID_RE = re.compile(r"\bxid[: ]\s*0x([0-9a-fA-F]+)")
_SECS_RE = re.compile(r"\bsecs[: ]\s*(\d+)")
_HOPS_RE = re.compile(r"\bhops[: ]\s*(\d+)")
_FLAGS_RE = re.compile(r"\b[Ff]lags:? \[([^\]]*)\](?: \(0x([0-9a-f]{4})\))?")
_OLD_FLAGS_RE = re.compile(r"\bflags:0x([0-9a-f]+)")

# indented lines of a BOOTP packet
_FIELD_RE = re.compile(rf"^(?P<name>Client-IP|Your-IP|Server-IP|Gateway-IP|Client IP:|Your IP:|Server IP:|Gateway IP:)\s+(?P<ip>{_IP})")
_CHADDR_RE = re.compile(rf"^Client(?:-Ethernet-Address| Ethernet Address:)\s+(?P<mac>{_MAC})")
_SNAME_RE = re.compile(r'^(?P<which>sname|file) "(?P<v>.*)"$')
_OPT_NEW_RE = re.compile(r"^(?P<name>[A-Za-z][\w+./ -]*?) \((?P<code>\d+)\), length (?P<len>\d+)(?P<rest>.*)$")
_OPT_OLD_RE = re.compile(r"^(?P<name>\S+) Option (?P<code>\d+), length (?P<len>\d+)(?P<rest>.*)$")
_OPT_TAG_RE = re.compile(r"^(?P<tag>[A-Z?][A-Za-z0-9+?-]*):(?P<value>.*)$")
_SUBOPT_RE = re.compile(r"^(?P<name>[\w-]+) SubOption (?P<code>\d+), length (?P<len>\d+): ?(?P<value>.*)$")
_ROUTE_RE = re.compile(rf"\((?P<dest>default|{_IP}(?:/\d+)?):(?P<gw>{_IP})\)")

# tcpdump 3.x short option tags (print-bootp.c tag table) -> option code
_TAG_CODES = {
    "SM": 1, "TZ": 2, "LTZ": 2, "DG": 3, "TS": 4, "IEN": 5, "NS": 6, "LOG": 7, "CS": 8, "LPR": 9,
    "IM": 10, "RL": 11, "HN": 12, "BS": 13, "DP": 14, "DN": 15, "SS": 16, "RP": 17, "EP": 18,
    "IPF": 19, "SRT": 20, "PF": 21, "RSZ": 22, "TTL": 23, "MA": 24, "MT": 25, "MTU": 26,
    "LSN": 27, "BR": 28, "MD": 29, "MS": 30, "RD": 31, "RSA": 32, "SR": 33, "UT": 34, "AT": 35,
    "IE": 36, "TT": 37, "KI": 38, "KG": 39, "YD": 40, "YS": 41, "NTP": 42, "VO": 43, "WNS": 44,
    "WDD": 45, "WNT": 46, "WSC": 47, "XFS": 48, "XDM": 49, "RQ": 50, "LT": 51, "OO": 52,
    "DHCP": 53, "SID": 54, "PR": 55, "MSG": 56, "MSZ": 57, "RN": 58, "RB": 59, "VC": 60,
    "CID": 61, "TFTP": 66, "BF": 67, "FQDN": 81, "CLASS": 77,
}
# tcpdump 4.x names in a parameter-request list (printed without their numbers)
_NAME_CODES = {
    "Subnet-Mask": 1, "Time-Zone": 2, "Default-Gateway": 3, "Time-Server": 4, "IEN-Name-Server": 5,
    "Domain-Name-Server": 6, "Log-Server": 7, "Cookie-Server": 8, "LPR-Server": 9, "Hostname": 12,
    "BS": 13, "Domain-Name": 15, "Swap-Server": 16, "RP": 17, "EP": 18, "IPF": 19, "TTL": 23,
    "MTU": 26, "BR": 28, "Static-Route": 33, "YD": 40, "YS": 41, "NTP": 42, "Vendor-Option": 43,
    "Netbios-Name-Server": 44, "Netbios-Node": 46, "Netbios-Scope": 47, "Requested-IP": 50,
    "Lease-Time": 51, "Option-Overload": 52, "DHCP-Message": 53, "Server-ID": 54,
    "Parameter-Request": 55, "MSG": 56, "MSZ": 57, "RN": 58, "RB": 59, "Vendor-Class": 60,
    "Client-ID": 61, "TFTP": 66, "BF": 67, "User-Class": 77, "FQDN": 81, "Agent-Information": 82,
    "Domain-Search": 119, "Classless-Static-Route": 121, "Classless-Static-Route-Microsoft": 249,
}


def sniff(head: str) -> bool:
    lines = head.splitlines()[:60]
    if any(ln.startswith("tcpdump: listening on ") or ln.startswith("reading from file ") for ln in lines):
        return True
    dhcp = any("BOOTP/DHCP" in ln or (": xid:0x" in ln and "vend-rfc1048" in ln) for ln in lines)
    return dhcp and any(_STAMP_RE.match(ln) for ln in lines)


def _unescape(text: str) -> bytes:
    """tcpdump's printing of unprintable bytes (`M-z` for 0xFA, `^V` for 0x16) undone."""
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        high = 0
        if text.startswith("M-", i) and i + 2 < n:
            high, i = 0x80, i + 2
        c = text[i]
        if c == "^" and i + 1 < n and 0x3F <= ord(text[i + 1]) <= 0x5F:
            out.append(high | (ord(text[i + 1]) ^ 0x40))
            i += 2
        else:
            out.extend(bytes([high | ord(c)]) if ord(c) < 0x80 else c.encode("utf-8"))
            i += 1
    return bytes(out)


def _unquote(value: str) -> str:
    v = value.strip()
    if len(v) >= 2 and v[0] == '"' and v.endswith('"'):
        v = v[1:-1]
    return _dhcp.text_of(_unescape(v))


class _Packet:
    """What the lines of one packet said so far."""

    __slots__ = ("offset", "line", "time", "time_inferred", "src_mac", "dst_mac", "vlan",
                 "interface", "kind", "vni", "outer", "bootp", "bootp_offset", "bootp_line",
                 "fields", "options", "opt", "old_tags", "cut")

    def __init__(self, offset: int, line: str):
        self.offset, self.line = offset, line
        self.time: float | None = None
        self.time_inferred = False
        self.src_mac = self.dst_mac = None
        self.vlan: int | None = None
        self.interface: str | None = None
        self.kind: str | None = None  # icmp: what follows quotes another packet
        self.vni: int | None = None
        self.outer: tuple[str | None, str | None] | None = None
        self.bootp = False
        self.bootp_offset = offset
        self.bootp_line = line
        self.fields: dict = {}
        self.options: list[list] = []  # [code, name, value, continuation lines]
        self.opt: list | None = None
        self.old_tags = False
        self.cut = False


class _Clock:
    """Turns a packet's printed time into epoch seconds."""

    def __init__(self, section: Section):
        self.deltas = _short_flags(section.origin.command).count("t") in (3, 5)  # -ttt, -ttttt
        self.day = _dhcp.DayClock(section.ref_time)

    def of(self, m: re.Match) -> tuple[float | None, bool]:
        if self.deltas:
            return None, False
        if m["epoch"]:
            return float(m["epoch"]), False
        if m["date"]:
            t = _time.iso_time(f"{m['date']} {m['tod']}")
            return (t[0] if t else None), False
        h, mi, s = m["tod2"].split(":")
        t2 = self.day.at(int(h), int(mi), float(s))
        return t2, t2 is not None


def parse(section: Section) -> Iterator[Fact]:
    lines = section.lines() if section.lines else iter(())
    clock = _Clock(section)
    # reading a file (-r), tcpdump names an SLL2 interface index after the reading host's
    # own interfaces, which are not the capturing host's: that name is not taken
    trust_cooked_ifname = "r" not in _short_flags(section.origin.command)
    interface = section.origin.interface
    pkt: _Packet | None = None
    orphan = StrayRun(section, "not tcpdump output (no packet line before it)")  # lines of no packet

    for offset, raw in enumerate(lines):
        line = raw.rstrip()
        if not line.strip():
            continue
        if line[0] not in " \t":
            m = _STAMP_RE.match(line)
            if m or _BARE_START_RE.match(line):
                if not m and pkt is not None and pkt.vni is not None and not pkt.bootp:
                    inner = _link(pkt, line, trust_ifname=False)  # the packet inside VXLAN
                    _address(pkt, inner, offset, line)
                    continue
                yield from orphan.flush()
                if pkt is not None:
                    yield from _facts(section, pkt, interface)
                pkt = _Packet(offset, line)
                rest = line
                if m:
                    pkt.time, pkt.time_inferred = clock.of(m)
                    rest = line[m.end():]
                rest = _link(pkt, rest, trust_ifname=trust_cooked_ifname)
                _address(pkt, rest, offset, line)
                continue
            if line.startswith("tcpdump: ") or line.startswith("reading from file "):
                lm = re.match(r"^tcpdump: listening on (\S+?),", line)
                if lm and lm.group(1) != "any" and section.origin.interface is None:
                    interface = lm.group(1)
                continue
            if re.match(r"^\d+ packets? (?:captured|received by filter|dropped by kernel)", line):
                continue
            if pkt is not None and pkt.bootp and line.startswith("["):  # e.g. "[|bootp]" wrapped
                continue
            if pkt is not None and _fits(pkt, line):  # pasted where the indentation was lost
                _indented(pkt, line.strip(), offset, line)
                continue
            orphan.add(offset, line)
            if pkt is not None:
                yield from _facts(section, pkt, interface)
                pkt = None
            continue
        # an indented line: part of the current packet
        if pkt is None:
            orphan.add(offset, line)
            continue
        _indented(pkt, line.strip(), offset, line)
    yield from orphan.flush()
    if pkt is not None:
        yield from _facts(section, pkt, interface)


def _short_flags(command: str | None) -> str:
    """The single-letter options of a tcpdump command line, e.g. `-nn -vvv -r f` -> `nnvvvr`."""
    if not command:
        return ""
    words = command.split()
    start = next((i for i, w in enumerate(words) if w.endswith("tcpdump")), -1)
    return "".join(w[1:] for w in words[start + 1:] if w.startswith("-") and not w.startswith("--"))


_LIST_RE = re.compile(r"^(?:(?:[A-Za-z][\w-]*(?: \(\d+\))?|Option \d+)(?:, |,?$))+$")


def _fits(pkt: _Packet, text: str) -> bool:
    """Whether a line at column 0 reads as one of the indented lines of the open packet."""
    if not pkt.bootp:
        return bool(_ADDR_RE.match(text)) or bool(_ADDR_NOPORT_RE.match(text))
    if any(r.match(text) for r in (_OPT_NEW_RE, _OPT_OLD_RE, _FIELD_RE, _CHADDR_RE, _SNAME_RE, _SUBOPT_RE)):
        return True
    if text.startswith("Vendor-rfc1048") or text.startswith("Magic Cookie"):
        return True
    return pkt.opt is not None and pkt.opt[0] == 55 and bool(_LIST_RE.match(text))


def _link(pkt: _Packet, rest: str, trust_ifname: bool) -> str:
    """Read the link-layer part of a packet line; return what follows it."""
    m = _ANY_IF_RE.match(rest)  # -i any without -e: "eth0  In  IP ..."
    if m:
        if trust_ifname:
            pkt.interface = m["ifname"]
        rest = rest[m.end():]
    m = _COOKED_RE.match(rest)
    if m and not _ETH_RE.match(rest):
        if m["ifname"] and trust_ifname:
            pkt.interface = m["ifname"]
        if m["src"]:
            pkt.src_mac = m["src"].lower()
        cut = rest.find(": ", m.end())
        return rest[cut + 2:] if cut >= 0 else rest
    m = _ETH_RE.match(_OUI_RE.sub("", rest))
    if m:
        src, dst = m["src"], m["dst"]
        pkt.src_mac = _mac(src)
        pkt.dst_mac = "ff:ff:ff:ff:ff:ff" if dst == "Broadcast" else _mac(dst)
        tags = _VLAN_RE.findall(m["rest"])
        if tags:
            pkt.vlan = int(tags[-1])
        body = m["rest"]
        # after "length N: " comes the network layer (with -v its "(tos ..." details)
        lm = re.search(r"length \d+: ", body)
        tail = body[lm.end():] if lm else body
        for prefix in ("vlan ",):
            while tail.startswith(prefix):
                nxt = tail.find("), ")
                tail = tail[nxt + 3:] if nxt >= 0 else ""
        return tail
    return rest


def _mac(text: str) -> str | None:
    if not _MAC_RE.fullmatch(text):
        return None
    return ":".join(f"{int(x, 16):02x}" for x in text.split(":"))


def _address(pkt: _Packet, rest: str, offset: int, raw: str) -> None:
    """The address part of a packet line when it is on the same line (no -v)."""
    rest = rest.strip()
    for prefix in ("IP ", "IP6 "):
        if rest.startswith(prefix):
            rest = rest[len(prefix):]
            break
    if rest.startswith("("):  # -v: the IP details; the address line follows indented ...
        if "proto ICMP" in rest:
            pkt.kind = "icmp"
        close = rest.find(") ")
        if close < 0:
            return
        rest = rest[close + 2:]  # ... or, before tcpdump 4.0, on the same line
    _address_line(pkt, rest, offset, raw)


def _address_line(pkt: _Packet, text: str, offset: int, raw: str) -> bool:
    m = _ADDR_RE.match(text)
    if not m:
        m2 = _ADDR_NOPORT_RE.match(text)
        if m2 and m2["rest"].startswith("ICMP"):
            pkt.kind = "icmp"
        return False
    rest = m["rest"]
    if pkt.kind == "icmp":
        return True  # a packet quoted in an ICMP error, not one on the wire
    if rest.startswith("ICMP"):
        pkt.kind = "icmp"
        return True
    vm = re.search(r"\b(?:VXLAN|VXLAN-GPE), flags \[[^\]]*\] \(0x[0-9a-f]+\), vni (\d+)", rest) \
        or re.search(r"\bOTV, flags \[[^\]]*\] \(0x[0-9a-f]+\), overlay \d+, instance (\d+)", rest)
    if vm and not pkt.bootp:
        pkt.vni = int(vm.group(1))
        pkt.outer = (_ip_or_none(m["src"]), _ip_or_none(m["dst"]))
        pkt.src_mac = pkt.dst_mac = None
        pkt.vlan = None
        return True
    sport = _DHCP_PORT_NAMES.get(m["sport"], _int(m["sport"]))
    dport = _DHCP_PORT_NAMES.get(m["dport"], _int(m["dport"]))
    old = "BOOTP/DHCP" not in rest and (sport in (67, 68) or dport in (67, 68)) \
        and ("xid:0x" in rest or "vend-rfc1048" in rest)
    if "BOOTP/DHCP" not in rest and not old:
        return True
    if pkt.bootp:
        return True
    pkt.bootp = True
    pkt.bootp_offset, pkt.bootp_line = offset, raw
    f = pkt.fields
    f["src_ip"], f["dst_ip"] = _ip_or_none(m["src"]), _ip_or_none(m["dst"])
    f["src_port"], f["dst_port"] = sport, dport
    if _BAD_SUM_RE.search(rest):
        f["udp_checksum_ok"] = False
    elif "[udp sum ok]" in rest:
        f["udp_checksum_ok"] = True
    if "[|bootp" in rest:
        pkt.cut = True
    if old:
        _old_oneline(pkt, rest)
        return True
    bootp = rest[rest.index("BOOTP/DHCP"):]
    om = _OP_RE.search(bootp)
    if om:
        f["op"] = {"Request": 1, "Reply": 2}.get(om.group(1))
    fm = _FROM_RE.search(bootp)
    if fm:
        f["client_mac"] = _mac(fm.group(1))
    xm = _XID_RE.search(bootp)
    if xm:  # with -v: the fields tcpdump leaves out when zero are zero
        f["xid"] = int(xm.group(1), 16)
        f.update(secs=0, hops=0, flags_broadcast=False, ciaddr="0.0.0.0", yiaddr="0.0.0.0",
                 siaddr="0.0.0.0", giaddr="0.0.0.0")
    sm = _SECS_RE.search(bootp)
    if sm:
        f["secs"] = int(sm.group(1))
    hm = _HOPS_RE.search(bootp)
    if hm:
        f["hops"] = int(hm.group(1))
    flm = _FLAGS_RE.search(bootp)
    if flm:
        f["flags_broadcast"] = "Broadcast" in flm.group(1) or bool(flm.group(2) and int(flm.group(2), 16) & 0x8000)
    return True


def _old_oneline(pkt: _Packet, rest: str) -> None:
    """OpenBSD / LBL tcpdump: `xid:0x.. secs:3 flags:0x8000 C:.. Y:.. S:.. G:.. ether M
    vend-rfc1048 DHCP:DISCOVER SID:..` all on one line."""
    f = pkt.fields
    f["op"] = 2 if "(reply)" in rest or f.get("src_port") == 67 and f.get("dst_port") == 68 else 1
    head, _, vend = rest.partition(" vend-rfc1048")
    xm = _XID_RE.search(head)
    if xm:
        f["xid"] = int(xm.group(1), 16)
        f.update(secs=0, hops=0, flags_broadcast=False, ciaddr="0.0.0.0", yiaddr="0.0.0.0",
                 siaddr="0.0.0.0", giaddr="0.0.0.0")
    for key, name in (("C", "ciaddr"), ("Y", "yiaddr"), ("S", "siaddr"), ("G", "giaddr")):
        am = re.search(rf"(?:^|\s){key}:({_IP})", head)
        if am:
            f[name] = am.group(1)
    sm = _SECS_RE.search(head)
    if sm:
        f["secs"] = int(sm.group(1))
    hm = _HOPS_RE.search(head)
    if hm:
        f["hops"] = int(hm.group(1))
    fm = _OLD_FLAGS_RE.search(head)
    if fm:
        f["flags_broadcast"] = bool(int(fm.group(1), 16) & 0x8000)
    em = re.search(rf"\bether ({_MAC})", head)
    if em:
        f["client_mac"] = _mac(em.group(1))
    elif f["op"] == 1 and pkt.src_mac:  # printed only when it differs from the frame's source
        f["client_mac"] = pkt.src_mac
    elif f["op"] == 2 and pkt.dst_mac:
        f["client_mac"] = pkt.dst_mac
    pkt.old_tags = True
    for token in re.findall(r"(?:^|\s)([A-Z?][A-Za-z0-9+?-]*:\S*(?:\"[^\"]*\")?)", vend):
        tm = _OPT_TAG_RE.match(token)
        if tm:
            _add_tag_option(pkt, tm["tag"], tm["value"])


def _indented(pkt: _Packet, text: str, offset: int, raw: str) -> None:
    if not pkt.bootp:
        _address_line(pkt, text, offset, raw)
        if text.startswith("IP (") and "proto ICMP" in text:
            pkt.kind = pkt.kind or "icmp"
        return
    if pkt.kind == "icmp":
        return
    if "[|bootp" in text or "|[rfc1048]" in text:  # tcpdump ran out of captured bytes
        pkt.cut = True
        text = text.replace("[|bootp]", "").replace("|[rfc1048]", "").strip()
    f = pkt.fields
    m = _OPT_NEW_RE.match(text) or _OPT_OLD_RE.match(text)
    if m:
        code = int(m["code"])
        rest = m["rest"]
        value = rest[2:] if rest.startswith(": ") else rest.lstrip(":").strip()
        if code in (0, 255):
            pkt.opt = None
            return
        pkt.opt = [code, m["name"], value.strip(), []]
        pkt.options.append(pkt.opt)
        return
    m = _FIELD_RE.match(text)
    if m:
        name = {"Client": "ciaddr", "Your": "yiaddr", "Server": "siaddr", "Gateway": "giaddr"}[m["name"].split("-")[0].split(" ")[0]]
        f[name] = m["ip"]
        return
    m = _CHADDR_RE.match(text)
    if m:
        f["client_mac"] = _mac(m["mac"])
        return
    m = _SNAME_RE.match(text)
    if m:
        f["server_name" if m["which"] == "sname" else "boot_file"] = _dhcp.text_of(_unescape(m["v"]))
        return
    if text.startswith("Vendor-rfc1048:"):
        pkt.old_tags = True
        return
    if text.startswith("Vendor-rfc1048") or text.startswith("Magic Cookie"):
        return
    if text.startswith("0x") and ":" in text[:8]:  # -x / -X hex dump
        return
    if pkt.old_tags:
        m = _OPT_TAG_RE.match(text)
        if m:
            _add_tag_option(pkt, m["tag"], m["value"])
            return
    if pkt.opt is not None:
        pkt.opt[3].append(text)  # a list or sub-options continued on the next line


def _add_tag_option(pkt: _Packet, tag: str, value: str) -> None:
    code = _TAG_CODES.get(tag)
    if code is None:
        tm = re.match(r"^\?T?(\d+)$", tag)
        code = int(tm.group(1)) if tm else None
    if code is None or code in (0, 255):
        return
    pkt.opt = [code, tag, value.strip(), []]
    pkt.options.append(pkt.opt)


def _ip_or_none(text: str) -> str | None:
    return text if _IP_RE.fullmatch(text) else None


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def _facts(section: Section, pkt: _Packet, interface: str | None) -> Iterator[Fact]:
    if not pkt.bootp or pkt.kind == "icmp":
        return
    f = dict(pkt.fields)
    options: dict[int, str] = {}
    for code, name, value, more in pkt.options:
        shown = " ".join([value] + more).strip() if more else value
        options[code] = shown
        try:
            _typed(f, code, name, value, more, pkt.old_tags)
        except (ValueError, IndexError, OSError):
            pass  # the text stays in `options`; the typed field is left empty
    if "message_type" not in f and "xid" in f and f.get("op") in (1, 2) and pkt.options:
        f["message_type"] = "BOOTREQUEST" if f["op"] == 1 else "BOOTREPLY"
    origin = section.origin_at(pkt.bootp_offset, pkt.bootp_line.strip())
    iface = pkt.interface or interface
    if iface and origin.interface != iface:
        origin = type(origin)(path=origin.path, line=origin.line, host=origin.host,
                              namespace=origin.namespace, interface=iface,
                              command=origin.command, text=origin.text)
    extra = {}
    if pkt.vni is not None:
        extra["vxlan_vni"] = pkt.vni
        if pkt.outer:
            extra["outer_src_ip"], extra["outer_dst_ip"] = pkt.outer
    yield DhcpPacket(origin=origin, time=pkt.time, time_inferred=pkt.time_inferred,
                     src_mac=pkt.src_mac, dst_mac=pkt.dst_mac, vlan=pkt.vlan,
                     options=options, **extra, **f)
    if pkt.cut:
        yield Unparsed(origin=origin, reason="tcpdump cut this packet short ([|bootp]): the capture's snap length")


def _typed(f: dict, code: int, name: str, value: str, more: list[str], old: bool) -> None:
    """Set the typed field of one option from tcpdump's text of it."""
    if code == 53:
        word = value.split()[0] if value.split() else ""
        mt = _dhcp.message_type_of(word)
        f["message_type"] = mt or word
    elif code in (1, 28, 50, 54):
        ips = _IP_RE.findall(value)
        if ips:
            f[{1: "subnet_mask", 28: "broadcast_address", 50: "requested_ip", 54: "server_id"}[code]] = ips[0]
    elif code in (3, 6):
        ips = _IP_RE.findall(" ".join([value] + more))
        if ips:
            f["routers" if code == 3 else "dns_servers"] = ips
    elif code in (12, 15, 56, 60):
        if old and code == 60 and re.fullmatch(r"\d{1,3}(?:\.\d{1,3})+", value.strip()):
            text = _dhcp.text_of(bytes(int(x) & 0xFF for x in value.strip().split(".")))  # LBL: bytes
        else:
            text = _unquote(value)
        f[{12: "hostname", 15: "domain", 56: "message", 60: "vendor_class"}[code]] = text
    elif code in (26, 51, 58, 59):
        nm = re.match(r"^\s*(\d+)", value)
        if nm:
            f[{26: "mtu", 51: "lease_time", 58: "renewal_time", 59: "rebinding_time"}[code]] = int(nm.group(1))
    elif code == 55:
        f["parameter_list"] = _parameter_list(", ".join(v for v in [value] + more if v.strip()), old)
    elif code == 61:
        cid = _client_id(value, old)
        if cid:
            f["client_id"] = cid
    elif code == 81:
        qm = re.search(r'"(.*)"', value)
        if qm:
            f["client_fqdn"] = _dhcp.text_of(_unescape(qm.group(1)))
    elif code == 82:
        raw = bytearray()
        for sub in more:
            sm = _SUBOPT_RE.match(sub)
            if sm:
                data = _unescape(sm["value"])
                raw += bytes([int(sm["code"]), len(data)]) + data
        if raw:
            f["relay_agent"] = _dhcp.relay_agent_text(bytes(raw))
    elif code in (121, 249):
        routes = []
        for rm in _ROUTE_RE.finditer(" ".join([value] + more)):
            dest = "0.0.0.0/0" if rm["dest"] == "default" else rm["dest"]
            if "/" not in dest:
                dest += "/32"
            routes.append(f"{dest} via {rm['gw']}")
        if routes:
            f["classless_routes" if code == 121 else "ms_classless_routes"] = routes


def _parameter_list(text: str, old: bool) -> list[int]:
    numbers = re.findall(r"\((\d+)\)", text)
    if numbers:
        return [int(n) for n in numbers]
    if old and "+" in text or text.isalnum():  # 3.x: SM+DG+NS
        return [c for c in (_TAG_CODES.get(t) or _int(t.lstrip("?T")) for t in text.split("+")) if c]
    out = []
    for item in re.split(r",\s*|\s{2,}", text):  # 4.x: Subnet-Mask, BR, Option 120, ...
        item = item.strip()
        m = re.fullmatch(r"Option (\d+)", item)
        if m:
            out.append(int(m.group(1)))
        elif item in _NAME_CODES:
            out.append(_NAME_CODES[item])
    return out


def _client_id(value: str, old: bool) -> str | None:
    v = value.strip()
    m = re.match(rf"^(?:ether|\[ether\])\s*({_MAC})$", v)
    if m:
        return "01:" + _mac(m.group(1))  # type: ignore[operator]
    m = re.match(r"^(?:hardware-type|\[type-)\s*(\d+)\]?,?\s*([0-9a-fA-F:]+)$", v)
    if m:
        return f"{int(m.group(1)):02x}:" + m.group(2).lower()
    m = re.match(r"^\[(\w+)\]([0-9a-fA-F:]+)$", v)  # 3.8: [ieee802]00:11:..
    if m:
        htype = {"ether": 1, "ieee802": 6, "arcnet": 7, "frelay": 15, "strip": 23, "ieee1394": 24}.get(m.group(1))
        if htype is not None:
            return f"{htype:02x}:" + m.group(2).lower()
    if v.startswith('"') and v.endswith('"'):
        return _dhcp.client_id_text(b"\0" + _unescape(v[1:-1]))
    if re.fullmatch(r"\d{1,3}(?:\.\d{1,3})+", v):  # LBL 'b' format: dotted bytes
        return _dhcp.client_id_text(bytes(int(x) & 0xFF for x in v.split(".")))
    return None
