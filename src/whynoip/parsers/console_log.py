"""Guest console logs: what the instance's own DHCP client said while it booted. This is
the only evidence from inside the guest: whether it asked at all (no DISCOVER means the
problem is in the guest), whether an OFFER ever reached it, whether it was refused (NAK),
and whether it then failed to reach the metadata service. Read from `nova console-log`,
`openstack console log show`, a libvirt `console.log`, or a client run by hand.

Clients and wordings: busybox udhcpc as cirros and small images print it, old
(`udhcpc (v1.20.1) started`, `Sending discover...`, `Sending select for 10.0.0.5...`,
`Lease of 10.0.0.5 obtained, lease time 86400`, `No lease, forking to background`), middle
(`udhcpc: sending discover`, `udhcpc: lease of X obtained, lease time N`, 1.27) and new
(`udhcpc: broadcasting discover`, `udhcpc: broadcasting select for X, server S`,
`udhcpc: lease of X obtained from S, lease time N`, `udhcpc: received DHCP NAK`,
`udhcpc: no lease, failing`, 1.35); ISC dhclient (`DHCPDISCOVER on eth0 to 255.255.255.255
port 67 interval 3`, `DHCPOFFER of X from S` (4.x; `DHCPOFFER from S` before), `DHCPREQUEST
for X on eth0 ...`, `DHCPACK of X from S`, `DHCPNAK from S`, `bound to X -- renewal in N
seconds.`, `No DHCPOFFERS received.`); cirros' own lines (`Starting network...`,
`cloud-setup: checking http://169.254.169.254/...`, `wget: can't connect to remote host`,
`failed 1/20: up 2.12. request failed`); cloud-init (`ci-info: | eth0 | False | . | ...`
rows of the Net device info table, `url_helper.py[WARNING]: Calling
'http://169.254.169.254/...' failed [0/120s]: ...`, `No instance datasource found`,
`DataSourceOpenStack...` warnings); systemd-networkd (`eth0: DHCPv4 address 10.0.0.5/24 via
10.0.0.1` up to v24x, `eth0: DHCPv4 address 10.0.0.5/24, gateway 10.0.0.1 acquired from
10.0.0.2` later, `eth0: DHCPv4 client: DISCOVER`). Kernel uptime stamps (`[   32.10]`),
syslog prefixes, `cloud-init[869]:` prefixes and terminal colour codes are peeled off.

A console log is mostly boot noise: lines that say nothing about DHCP, leases, the
metadata service or the network devices are skipped by design. A line that does (it names
udhcpc, dhclient, DHCP, a lease, 169.254.169.254 or a ci-info device row) but matches no
known wording becomes an event `other` with the line as detail, so nothing relevant is lost.

Real sample (busybox udhcpc 1.35 against dnsmasq 2.90 that refuses a renewal, captured by
tests/fixtures/capture/console.sh)::

    udhcpc: started, v1.35.0
    udhcpc: broadcasting discover
    udhcpc: broadcasting select for 10.77.0.16, server 10.77.0.2
    udhcpc: lease of 10.77.0.16 obtained from 10.77.0.2, lease time 120
    udhcpc: sending renew to server 10.77.0.2
    udhcpc: received DHCP NAK

The guest is named by the origin: a path `.../guests/<name>/console.log` or
`.../instances/<uuid>/console.log`, or the server argument of `nova console-log <name>` /
`openstack console log show <name>`.
"""

from __future__ import annotations

import re
import shlex
from typing import Callable, Iterator

from whynoip.evidence.section import Section
from whynoip.facts import ConsoleEvent, Fact, Unparsed
from whynoip.parsers._time import iso_time, syslog_time

NAME = "console_log"
COMMANDS = (
    r"\bnova\b(?:\s+\S+)*?\sconsole-log(?:\s|$)",
    r"\bopenstack\b(?:\s+\S+)*?\sconsole\s+log\s+show(?:\s|$)",
    r"^\s*(?:sudo\s+)?(?:ip\s+netns\s+exec\s+\S+\s+)?(?:busybox\s+)?udhcpc(?:\s|$)",
    r"^\s*(?:sudo\s+)?(?:ip\s+netns\s+exec\s+\S+\s+)?dhclient(?:\s|$)",
)
PATHS = ("*/console.log", "*/console-log*", "*/guests/*/console*", "*/console_log*")

_SNIFF_RE = re.compile(
    r"udhcpc(?: \(v[\d.]+\))? started|udhcpc: (?:started|broadcasting|sending)|^Sending discover\.\.\.$"
    r"|DHCPDISCOVER on \S+ to \S+ port 67|ci-info: [|+]|bound to \S+ -- renewal in"
    r"|Cloud-init v\. \S+ running", re.M)


def sniff(head: str) -> bool:
    return bool(_SNIFF_RE.search(head))


IP = r"(\d{1,3}(?:\.\d{1,3}){3})"
ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
KERNEL_TS_RE = re.compile(r"^\[\s*\d+\.\d+\]\s?")
SYSLOG_PREFIX_RE = re.compile(
    r"^(?P<stamp>[A-Z][a-z]{2} +\d{1,2} \d\d:\d\d:\d\d(?:\.\d+)?) (?P<host>\S+) "
    r"(?:[a-z]+\.[a-z]+ )?(?P<prog>[^\s:\[]+)(?:\[\d+\])?: ")
PROG_PREFIX_RE = re.compile(r"^(?P<prog>cloud-init|systemd-networkd|dhclient|udhcpc|NetworkManager)\[\d+\]: ")
LOGIN_PREFIX_RE = re.compile(r"^\S+ login: (?=\S)")
CLOUDINIT_TS_RE = re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+) - (?P<mod>[\w.]+)\[(?P<lvl>\w+)\]: ")
RELEVANT_RE = re.compile(r"udhcpc|dhclient|dhcp|\blease\b|169\.254\.169\.254|ci-info: \||Route info failed"
                         r"|datasource", re.I)


def _ev(event: str, client: str, ip: int | None = None, server: int | None = None,
        iface: int | None = None, detail: Callable[[re.Match], str] | str | None = None):
    return event, client, ip, server, iface, detail


# (pattern, (event, client, ip group, server group, interface group, detail))
PATTERNS: list[tuple[re.Pattern, tuple]] = [(re.compile(p), spec) for p, spec in [
    # busybox udhcpc, old / 1.27 / 1.35+ wordings
    (r"^udhcpc \(v([\d.]+)\) started", _ev("client-started", "udhcpc", detail=lambda m: f"udhcpc {m[1]}")),
    (r"^udhcpc: started, v(\S+)", _ev("client-started", "udhcpc", detail=lambda m: f"udhcpc {m[1]}")),
    (r"^(?:udhcpc: )?(?:Sending|sending|broadcasting) discover", _ev("discover-sent", "udhcpc")),
    (r"^(?:udhcpc: )?(?:Sending|sending|broadcasting) select for " + IP + r"(?:\.\.\.|, server " + IP + r")?",
     _ev("request-sent", "udhcpc", ip=1, server=2)),
    (r"^(?:udhcpc: )?(?:Sending|sending|broadcasting) (renew|rebind)(?:\.\.\.| to(?: server)? " + IP + r")?",
     _ev("request-sent", "udhcpc", server=2, detail=lambda m: m[1])),
    (r"^(?:udhcpc: )?[Ll]ease of " + IP + r" obtained(?: from " + IP + r")?, lease time (\d+)",
     _ev("lease-obtained", "udhcpc", ip=1, server=2, detail=lambda m: f"lease time {m[3]}")),
    (r"^(?:udhcpc: )?[Nn]o lease, (forking to background|failing)",
     _ev("no-lease", "udhcpc", detail=lambda m: m[1])),
    # the client's socket on a link that is down (busybox: "sendto: Network is down",
    # "read error: Network is down, reopening socket"; dhclient: "send_packet: Network is down")
    (r"^(?:(udhcpc|dhclient): )?(?:sendto|read error|send_packet)\b.*Network is down",
     _ev("interface-down", "udhcpc", detail="Network is down")),
    (r"^udhcpc failed to get a DHCP lease", _ev("no-lease", "udhcpc", detail="failed to get a DHCP lease")),
    (r"^(?:udhcpc: )?[Rr]eceived DHCP NAK", _ev("nak", "udhcpc")),
    # ISC dhclient
    (r"^Internet Systems Consortium DHCP Client (\S+)", _ev("client-started", "dhclient",
                                                             detail=lambda m: f"dhclient {m[1]}")),
    (r"^DHCPDISCOVER on (\S+) to " + IP + r" port 67(?: interval (\d+))?", _ev("discover-sent", "dhclient", iface=1)),
    (r"^DHCPREQUEST (?:for|of|on) " + IP + r" on (\S+) to " + IP + r" port 67",
     _ev("request-sent", "dhclient", ip=1, iface=2, server=3)),
    (r"^DHCPOFFER (?:of " + IP + r" )?from " + IP, _ev("offer-received", "dhclient", ip=1, server=2)),
    (r"^DHCPACK (?:of " + IP + r" )?from " + IP, _ev("ack-received", "dhclient", ip=1, server=2)),
    (r"^DHCPNAK from " + IP, _ev("nak", "dhclient", server=1)),
    (r"^bound to " + IP + r" -- renewal in (\d+) seconds", _ev("lease-obtained", "dhclient", ip=1,
                                                                 detail=lambda m: f"renewal in {m[2]} seconds")),
    (r"^No DHCPOFFERS received", _ev("no-lease", "dhclient", detail="no DHCPOFFERS received")),
    (r"^No working leases in persistent database", _ev("no-lease", "dhclient", detail="no working leases")),
    # systemd-networkd
    (r"^(\S+): DHCPv4 address " + IP + r"/(\d+)(?: via " + IP + r"|, gateway " + IP + r")?(?: acquired from " + IP + r")?",
     _ev("lease-obtained", "systemd-networkd", ip=2, iface=1, server=6,
         detail=lambda m: "gateway " + (m[4] or m[5]) if (m[4] or m[5]) else f"prefix /{m[3]}")),
    (r"^(\S+): DHCPv4 client: DISCOVER", _ev("discover-sent", "systemd-networkd", iface=1)),
    (r"^(\S+): DHCPv4 client: (REQUEST.*)", _ev("request-sent", "systemd-networkd", iface=1, detail=lambda m: m[2])),
    (r"^(\S+): DHCPv4 client: ACK", _ev("ack-received", "systemd-networkd", iface=1)),
    (r"^(\S+): DHCPv4 client: NAK", _ev("nak", "systemd-networkd", iface=1)),
    # cirros
    (r"^Starting network\.\.\.", _ev("client-started", "cirros", detail="Starting network")),
    (r"^wget: can't connect to remote host \(" + IP + r"\): (.*)",
     _ev("metadata-unreachable", "cirros", server=1, detail=lambda m: m[2])),
    (r"^failed (\d+)/(\d+): up [\d.]+\. request failed", _ev("metadata-unreachable", "cirros",
                                                              detail=lambda m: f"attempt {m[1]}/{m[2]}")),
    (r"^failed to read iid from metadata\.?(.*)", _ev("datasource-failed", "cirros",
                                                      detail=lambda m: "no instance id from metadata" + m[1])),
    # cloud-init
    (r"^url_helper\.py\[WARNING\]: Calling '([^']+)' failed \[([^\]]+)\]: (.*)",
     _ev("metadata-unreachable", "cloud-init", detail=lambda m: f"{m[1]} [{m[2]}]: {m[3]}")),
    (r"No instance datasource found", _ev("datasource-failed", "cloud-init", detail="no instance datasource found")),
    (r"^(DataSource\w+)\.py\[(?:WARNING|ERROR)\]: (.*)", _ev("datasource-failed", "cloud-init",
                                                            detail=lambda m: f"{m[1]}: {m[2]}")),
]]

# dhclient's start-up banner names its web page (".../software/dhcp/"): not an event
BANNER_RE = re.compile(r"^(Copyright \d|All rights reserved|For info, please visit )")
CI_ROW_RE = re.compile(r"^ci-info: \|\s*([^|\s]+?):?\s*\|\s*(True|False)\s*\|\s*([^|]*?)\s*\|")


def _guest(section: Section) -> str | None:
    path = section.origin.path
    m = re.search(r"(?:^|/)guests/([^/]+)/", path) or re.search(r"/instances/([^/]+)/console\.log$", path)
    if m:
        return m.group(1)
    cmd = section.origin.command or ""
    m = re.search(r"\bconsole-log\b(.*)$", cmd) or re.search(r"\bconsole\s+log\s+show\b(.*)$", cmd)
    if not m:
        return None
    try:
        args = shlex.split(m.group(1))
    except ValueError:
        args = m.group(1).split()
    positional, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a in ("--length", "--lines", "--os-cloud"):
            skip = True
        elif a.startswith("|"):
            break
        elif not a.startswith("-"):
            positional.append(a)
    return positional[0] if positional else None


def _peel(line: str, ref_time: float | None) -> tuple[str, float | None, bool, str | None]:
    """The message without console/syslog/cloud-init prefixes; its time when a prefix
    carries one, whether that time was inferred, and the program named by a prefix."""
    msg = ANSI_RE.sub("", line).strip()
    when, inferred, prog = None, False, None
    for _ in range(4):
        before = msg
        msg = KERNEL_TS_RE.sub("", msg)
        m = SYSLOG_PREFIX_RE.match(msg)
        if m:
            got = syslog_time(msg, ref_time)
            if got:
                when, inferred = got[0], True
            prog = m["prog"]
            msg = msg[m.end():]
        m = PROG_PREFIX_RE.match(msg)
        if m:
            prog, msg = m["prog"], msg[m.end():]
        msg = LOGIN_PREFIX_RE.sub("", msg)
        m = CLOUDINIT_TS_RE.match(msg)
        if m:
            got = iso_time(m["stamp"])
            if got:
                when, inferred = got[0], False
            prog = "cloud-init"
            msg = f"{m['mod']}[{m['lvl']}]: " + msg[m.end():]
        if msg == before:
            break
    return msg.strip(), when, inferred, prog


def parse(section: Section) -> Iterator[Fact]:
    guest = _guest(section)
    offset = -1
    try:
        for offset, line in enumerate(section.lines() if section.lines else ()):
            ev = _event(line, section.ref_time)
            if ev is None:
                continue
            event, client, ip, server, iface, detail, when = ev
            yield ConsoleEvent(origin=section.origin_at(offset, text=line.strip()), time=when, guest=guest,
                               client=client, event=event, ip=ip, server_ip=server, interface=iface,
                               detail=detail)
    except Exception as e:  # never raise on bad input
        yield Unparsed(origin=section.origin_at(max(offset, 0)), reason=f"console_log: {type(e).__name__}: {e}")


def _event(line: str, ref_time: float | None):
    if not line.strip():
        return None
    msg, when, _, prog = _peel(line, ref_time)
    m = CI_ROW_RE.match(msg)
    if m:
        dev, up, addr = m[1], m[2] == "True", m[3]
        if dev in ("Device", "lo", "Iface") or dev.startswith("lo"):
            return None
        ip = addr.split("/")[0] if addr and addr != "." else None
        if up and ip is None:
            return None  # an up device without address: the same device has its address rows
        return ("interface-up" if up else "interface-down", "cloud-init", ip, None, dev, None, when)
    for rx, (event, client, ip_g, srv_g, if_g, detail) in PATTERNS:
        m = rx.search(msg)
        if not m:
            continue
        ip = m.group(ip_g) if ip_g else None
        server = m.group(srv_g) if srv_g else None
        if server == "255.255.255.255":
            server = None
        iface = m.group(if_g) if if_g else None
        text = detail(m) if callable(detail) else detail
        if client == "udhcpc" and prog == "cloud-init":
            client = "cloud-init"
        return event, client, ip, server, iface, text, when
    if msg.startswith("ci-info:") and "Route info failed" not in msg:
        return None  # table borders, titles, headers
    if BANNER_RE.match(msg):
        return None
    if RELEVANT_RE.search(msg):
        client = _client_of(msg, prog)
        return "other", client, None, None, None, msg[:300], when
    return None


def _client_of(msg: str, prog: str | None) -> str | None:
    low = msg.lower()
    for name in ("udhcpc", "dhclient", "cloud-init", "systemd-networkd"):
        if name in low:
            return name
    if low.startswith("ci-info:") or (prog or "").startswith("cloud-init"):
        return "cloud-init"
    if "cloud-setup:" in low or "cirros" in low:
        return "cirros"
    return prog if prog in ("dhclient", "udhcpc", "systemd-networkd") else None
