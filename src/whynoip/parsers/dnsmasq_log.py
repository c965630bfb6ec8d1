"""dnsmasq's log -> DnsmasqLogEvent facts: the DHCP server's own account of each exchange.

dnsmasq logs to syslog (so its lines sit in /var/log/syslog, /var/log/messages or the
journal among everyone else's) or, with `--log-facility=<file>`, to a file of its own:
Neutron's `dnsmasq_base_log_dir` gives `<dir>/<network-id>/dhcp_dns_log`. With
`--log-dhcp` every line about one DHCP transaction starts with its transaction id (the xid
as an unsigned decimal), which is what joins the server's view to a packet capture.

This module reads any of those shapes line by line: dnsmasq's own file format
(`Nov 21 06:18:01 dnsmasq-dhcp[21125]: ...`), rsyslog's traditional and RFC 3339 formats,
busybox/OpenWrt syslogd (`daemon.info` before the program), journalctl `-o short`,
`short-iso` and `short-precise`, and the bare `dnsmasq: ...` dnsmasq prints on stderr when
it fails to start. A syslog line of another program is skipped here (it carries a host
name: the file is a mixed syslog and the syslog parser owns those lines); a line that
cannot be read at all becomes `Unparsed`; a dnsmasq line whose wording is unknown becomes
event `other` with its text in `detail`, never dropped.

`parse_message()` reads the message part alone; the syslog parser calls it for lines whose
program is dnsmasq, dnsmasq-dhcp, dnsmasq-tftp or dnsmasq-script.

Events (see facts.DnsmasqLogEvent). A DHCP packet line keeps its verb as the event
(`DHCPDISCOVER`, `DHCPNAK`, also DHCPv6 `DHCPSOLICIT`, `DHCPREPLY`, and `BOOTP`, `PXE`), with
the reason dnsmasq appended in `detail` (`no address available`, `lease not found`,
`wrong server-ID`, `address in use`, `no leases left`, `ignored`, ...); rules match on
(event, detail). Lines of their own get a named event: `started` (with `version`),
`dhcp-range` (`DHCP, static leases only on 10.8.1.0, lease time 1d`), `read-file` (detail:
the path), `exiting` (SIGTERM, or `FAILED to start up`), `address-in-use` (`not using
configured address X because it is leased to M`: ip and the holder's mac),
`duplicate-host-ip`, `bind-failed`, `no-address-on-interface` (`DHCP packet received on
tapX which has no address`), `write-failed`, `no-leases-left` (`Limit of N leases
exceeded.`, older versions), `no-address-available` (`no address range available for DHCP
request via X`: no dhcp-range covers the interface), and `option-detail` for the
`--log-dhcp` lines that follow a packet (`tags:`, `sent size:`, `requested options:`,
`vendor class:`, `client provides name:` (hostname set), `client MAC address:` (mac set)).

What dnsmasq 2.90 really printed here (capture script tests/fixtures/capture/dnsmasq_server.sh):

    Nov 21 06:18:01 dnsmasq[21125]: started, version 2.90 cachesize 150
    Nov 21 06:18:01 dnsmasq-dhcp[21125]: DHCP, static leases only on 10.8.1.0, lease time 1d
    Nov 21 06:18:01 dnsmasq-dhcp[21125]: read /var/lib/neutron/dhcp/8d1f6b4e-2c3a-4f5e-9b7d-0c41a2e7d3b9/host
    Nov 21 06:18:01 dnsmasq-dhcp[21125]: 1332766539 DHCPDISCOVER(tap3f8e2a61-c4) fa:16:3e:4a:0b:91
    Nov 21 06:18:01 dnsmasq-dhcp[21125]: 1332766539 tags: subnet-4c7e1d2a-9f3b-4a8e-b6d5-2e1f0a9c8b7d, known, tap3f8e2a61-c4
    Nov 21 06:18:01 dnsmasq-dhcp[21125]: 1332766539 DHCPACK(tap3f8e2a61-c4) 10.8.1.14 fa:16:3e:4a:0b:91 host-10-8-1-14
    Nov 21 06:18:01 dnsmasq-dhcp[21125]: 1650273589 DHCPDISCOVER(tap3f8e2a61-c4) fa:16:3e:c2:57:0d no address available
    Nov 21 06:19:39 dnsmasq-dhcp[29294]: not using configured address 10.8.1.14 because it is leased to fa:16:3e:4a:0b:91
    Nov 21 06:19:41 dnsmasq-dhcp[29294]: 4143891330 DHCPNAK(tap3f8e2a61-c4) 10.8.1.14 fa:16:3e:5d:21:8c address in use
    Nov 21 06:18:37 dnsmasq-dhcp[24139]: 2178853676 DHCPNAK(tap3f8e2a61-c4) 10.8.1.15 fa:16:3e:7b:e1:3f no leases left
    Nov 21 06:18:16 dnsmasq-dhcp[22980]: DHCP packet received on tap3f8e2a61-c4 which has no address
    Nov 21 06:18:58 dnsmasq-dhcp[25941]: failed to write /var/lib/neutron/full/leases: No space left on device (retry in 60 s)
    Nov 21 06:18:20 dnsmasq[22980]: exiting on receipt of SIGTERM
"""

from __future__ import annotations

import re
from typing import Iterator

import msgspec

from whynoip.evidence.section import Section
from whynoip.facts import DnsmasqLogEvent, Fact, Origin, Unparsed
from whynoip.parsers._time import iso_time, syslog_time

NAME = "dnsmasq_log"
COMMANDS = (r"\b(?:cat|tail|head|less|more|grep|zcat)\b.*(?:dnsmasq|dhcp_dns_log)",
            r"\bjournalctl\b.*(?:-t\s*|--identifier[= ]|SYSLOG_IDENTIFIER=)dnsmasq")
PATHS = ("*/dhcp_dns_log", "*/dhcp_dns_log.*", "*dnsmasq*.log", "*dnsmasq*.log.*", "*/dnsmasq.log*",
         "*/log/dnsmasq/*")

PROGRAMS = frozenset({"dnsmasq", "dnsmasq-dhcp", "dnsmasq-tftp", "dnsmasq-script"})

# after the time: [host ][facility.level ]program[pid]: message
_TAIL_NOHOST_RE = re.compile(r"(?P<prog>[\w./-]+)\[(?P<pid>\d+)\]: ?(?P<msg>.*)$")
_TAIL_HOST_RE = re.compile(
    r"(?P<host>[^\s\[\]:]+) (?:(?P<fac>[a-z0-9]+\.[a-z]+) )?(?P<prog>[\w./-]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$")
_TAIL_FAC_RE = re.compile(r"(?P<fac>[a-z0-9]+\.[a-z]+) (?P<prog>[\w./-]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$")
_BARE_RE = re.compile(r"^(?P<prog>dnsmasq(?:-dhcp|-tftp|-script)?)(?:\[(?P<pid>\d+)\])?: (?P<msg>.*)$")
_WEEKDAY_RE = re.compile(r"^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) ")
_YEAR_RE = re.compile(r"^ (?P<y>\d{4})(?= )")

_PACKET_RE = re.compile(r"^(?P<verb>DHCP[A-Z]+|BOOTP|PXE)\((?P<iface>[^)]*)\)(?: (?P<rest>.*))?$")
_XID_RE = re.compile(r"^(?P<xid>\d{1,10}) (?P<rest>.+)$")
_IPV4_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
_IPV6_RE = re.compile(r"^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$")
_HWADDR_RE = re.compile(r"^(?:[0-9a-fA-F]{1,2}-)?[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})+$|^<null>$")

# the reasons dnsmasq appends to a packet line (rfc2131.c, rfc3315.c)
REASONS = (
    "no address available", "no addresses available", "lease not found", "wrong server-ID",
    "address in use", "no leases left", "wrong network", "address not available",
    "static lease available", "address reserved", "no unique-id", "ignored", "unknown lease",
    "no address configured", "disabled", "proxy-ignored", "proxy", "wrong address",
    "no binding found", "release received", "not on link", "address invalid", "confirmed",
    "all addresses still on link", "no server ID",
)
_REASON_RE = re.compile(r"(?:^|(?<= ))(?P<reason>" + "|".join(re.escape(r) for r in REASONS) + r")$")

_STANDALONE: list[tuple[re.Pattern, str]] = [
    (re.compile(r"^started, version (?P<version>\S+)(?: (?P<detail>.*))?$"), "started"),
    (re.compile(r"^(?P<detail>DHCP(?:v6)?, (?:static leases only on|IP range|proxy on subnet|"
                r"prefix deprecated on|router advertisement on|stateless on|constructed for) "
                r"(?P<ip>[^ ,]+).*)$"), "dhcp-range"),
    (re.compile(r"^read (?P<detail>\S+)(?: - \d+ (?:names|addresses))?$"), "read-file"),
    # a host/opts file it cannot read on start or SIGHUP: it serves without its entries
    (re.compile(r"^(?:cannot|failed to) read (?P<detail>\S+: .+)$"), "read-failed"),
    (re.compile(r"^exiting on receipt of (?P<detail>SIG\w+)$"), "exiting"),
    (re.compile(r"^(?P<detail>FAILED to start up)$"), "exiting"),
    (re.compile(r"^not using configured address (?P<ip>\S+) because it is leased to (?P<mac>\S+)$"),
     "address-in-use"),
    (re.compile(r"^not using configured address (?P<ip>\S+) because (?P<detail>.+)$"), "address-in-use"),
    (re.compile(r"^duplicate dhcp-host IP address (?P<ip>\S+)(?: (?P<detail>.*))?$"), "duplicate-host-ip"),
    (re.compile(r"^duplicate IP address (?P<ip>\S+) (?P<detail>.*)$"), "duplicate-host-ip"),
    (re.compile(r"^(?P<detail>ignoring \S+ line \d+, duplicate name or IP address)$"), "duplicate-host-ip"),
    (re.compile(r"^failed to bind (?P<detail>DHCP(?:v6)? server socket: .*)$"), "bind-failed"),
    (re.compile(r"^(?P<detail>failed to (?:create listening socket|bind server socket) .*)$"), "bind-failed"),
    (re.compile(r"^DHCP packet received on (?P<iface>\S+) which has no address$"), "no-address-on-interface"),
    (re.compile(r"^failed to write (?P<detail>\S+: [^(]*?)(?: \(retry in \d+ s\))?$"), "write-failed"),
    (re.compile(r"^(?P<detail>Limit of \d+ leases exceeded\.)$"), "no-leases-left"),
    (re.compile(r"^(?P<detail>no address range available for DHCP(?:v6)? request (?:via (?P<iface>\S+)|.*))$"),
     "no-address-available"),
]

_DETAIL_RES = [
    (re.compile(r"^client provides name: (?P<hostname>.*)$")),
    (re.compile(r"^client MAC address: (?P<mac>\S+)$")),
]


def _mac_from_duid(duid: str) -> str | None:
    """The Ethernet MAC inside a DUID-LLT (00:01:00:01:<time>:<mac>) or DUID-LL (00:03:00:01:<mac>)."""
    b = duid.lower().split(":")
    if len(b) == 14 and b[:4] == ["00", "01", "00", "01"]:
        return ":".join(b[8:])
    if len(b) == 10 and b[:4] == ["00", "03", "00", "01"]:
        return ":".join(b[4:])
    return None


def _packet(verb: str, iface: str, rest: str, base: dict) -> DnsmasqLogEvent:
    ev = dict(base, event=verb, interface=iface or None)
    words = rest.split()
    if words and (_IPV4_RE.match(words[0]) or (_IPV6_RE.match(words[0]) and len(words) > 1
                                                and _HWADDR_RE.match(words[1]))):
        ev["ip"] = words.pop(0)
    if words and _HWADDR_RE.match(words[0]):
        hw = words.pop(0)
        if len(hw.split(":")) > 8 and hw.startswith("00:0"):  # a DHCPv6 client's DUID
            ev["mac"] = _mac_from_duid(hw)
            ev["detail"] = f"duid {hw}"
        elif hw != "<null>":
            ev["mac"] = hw.lower()
    tail = " ".join(words)
    if tail:
        m = _REASON_RE.search(tail)
        if m:
            head = tail[:m.start()].strip()
            ev["detail"] = m["reason"]
            if head:
                ev["hostname"] = head
        elif verb in ("DHCPDECLINE",):
            ev["detail"] = tail  # the client's own message (option 56)
        else:
            ev["hostname"] = tail
    return DnsmasqLogEvent(**ev)


def parse_message(message: str, *, origin: Origin, time: float | None = None,
                  time_inferred: bool = False, pid: int | None = None) -> DnsmasqLogEvent | None:
    """One dnsmasq message (what follows `dnsmasq-dhcp[pid]: `) as a DnsmasqLogEvent, or
    None for an empty message. Never raises on text: wording it does not know becomes
    event "other" with the message in `detail`."""
    message = message.rstrip()
    if not message.strip():
        return None
    base: dict = {"origin": origin, "time": time, "time_inferred": time_inferred, "pid": pid}
    text = message
    m = _XID_RE.match(text)
    p = _PACKET_RE.match(m["rest"]) if m else None
    if m and (p or not m["rest"][0].isdigit()) and int(m["xid"]) < 2 ** 32:
        base["xid"] = int(m["xid"])
        text = m["rest"]
        if p:
            return _packet(p["verb"], p["iface"], p["rest"] or "", base)
        ev = dict(base, event="option-detail", detail=text)
        if text.startswith("client "):  # what each of _DETAIL_RES starts with
            for r in _DETAIL_RES:
                d = r.match(text)
                if d:
                    ev.update({k: v for k, v in d.groupdict().items() if v})
        return DnsmasqLogEvent(**ev)
    p = _PACKET_RE.match(text)
    if p:
        return _packet(p["verb"], p["iface"], p["rest"] or "", base)
    for regex, event in _STANDALONE:
        s = regex.match(text)
        if s:
            g = {k: v for k, v in s.groupdict().items() if v is not None}
            ev = dict(base, event=event)
            if "iface" in g:
                ev["interface"] = g.pop("iface")
            if "mac" in g:
                g["mac"] = g["mac"].lower()
            ev.update(g)
            return DnsmasqLogEvent(**ev)
    return DnsmasqLogEvent(**base, event="other", detail=text)


def split_line(line: str, ref_time: float | None, last: list | None = None) -> dict | None:
    """The parts of one log line: time, time_inferred, host, program, pid, message; None
    when it has no recognisable syslog/journal/dnsmasq prefix. `last` (a list of two)
    remembers the previous line's time stamp: the lines of one transaction share it."""
    rest, t, inferred = line, None, False
    if _WEEKDAY_RE.match(rest):  # OpenWrt logread: "Thu Jan  9 14:05:31 2025 daemon.info ..."
        rest = rest[4:]
    if last is not None and ref_time is not None:
        # a stamp followed by a space within the first 16 characters (`Nov 21 06:18:01 `) is
        # decided by them alone
        key = rest[:16]
        if key == last[0]:
            st = last[1]
        else:
            st = syslog_time(rest, ref_time)
            last[0], last[1] = (key, st) if st is not None and st[1] < 16 and rest[st[1]] == " " else (None, None)
    else:
        st = syslog_time(rest, ref_time)
    if st:
        t, n = st
        inferred = True
        rest = rest[n:]
        y = _YEAR_RE.match(rest)
        if y:
            from datetime import datetime, timezone
            d = datetime.fromtimestamp(t, timezone.utc)
            try:
                t = d.replace(year=int(y["y"])).timestamp()
                inferred = False
            except ValueError:
                pass
            rest = rest[y.end():]
    else:
        it = iso_time(rest)
        if it:
            t, n = it
            rest = rest[n:]
    if t is None:
        b = _BARE_RE.match(line)
        if b:
            return {"time": None, "inferred": False, "host": None, "prog": b["prog"],
                    "pid": int(b["pid"]) if b["pid"] else None, "msg": b["msg"]}
        return None
    if not rest.startswith(" "):
        return None
    rest = rest.lstrip(" ")
    m = _TAIL_NOHOST_RE.match(rest)
    host = None
    if not m:
        m = _TAIL_FAC_RE.match(rest)
        if not m:
            m = _TAIL_HOST_RE.match(rest)
            if not m:
                return None
            host = m["host"]
    return {"time": t, "inferred": inferred, "host": host, "prog": m["prog"],
            "pid": int(m["pid"]) if m["pid"] else None, "msg": m["msg"]}


def _is_dnsmasq(prog: str) -> bool:
    return prog.rsplit("/", 1)[-1] in PROGRAMS


def sniff(head: str) -> bool:
    """Mostly dnsmasq lines (a --log-facility file or a grep of syslog)."""
    lines = [l for l in head.splitlines()[:40] if l.strip()]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of a head may be cut
    if not lines:
        return False
    hits = 0
    for l in lines:
        s = split_line(l, None)
        if s and _is_dnsmasq(s["prog"]):
            hits += 1
    return hits >= max(1, int(len(lines) * 0.6))


def parse(section: Section) -> Iterator[Fact]:
    ref = section.ref_time
    last: list = [None, None]
    for offset, line in enumerate(section.lines()):
        if not line.strip() or line.startswith("-- "):  # journalctl's "-- Boot ..", "-- No entries --"
            continue
        parts = split_line(line, ref, last)
        origin = section.origin_at(offset, text=line)
        if parts is None:
            yield Unparsed(origin=origin, reason="not a dnsmasq log line")
            continue
        if parts["prog"] not in PROGRAMS and not _is_dnsmasq(parts["prog"]):
            if parts["host"] is None and parts["time"] is not None:
                yield Unparsed(origin=origin, reason=f"line of {parts['prog']} in a dnsmasq log")
            continue  # a mixed syslog: the syslog parser owns other programs' lines
        if parts["host"] and not origin.host:
            origin = msgspec.structs.replace(origin, host=parts["host"])
        try:
            ev = parse_message(parts["msg"], origin=origin, time=parts["time"],
                               time_inferred=parts["inferred"], pid=parts["pid"])
        except Exception as e:  # parse never raises on bad input
            yield Unparsed(origin=origin, reason=f"dnsmasq line not understood: {type(e).__name__}: {e}")
            continue
        if ev is not None:
            yield ev
