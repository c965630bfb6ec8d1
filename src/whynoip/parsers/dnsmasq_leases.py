"""dnsmasq's lease file -> LeaseEntry facts: which client holds which address until when.

A lease still held by an old MAC keeps a re-created port from its fixed IP (dnsmasq logs
"not using configured address ... because it is leased to ..."); an empty file on a busy
network says leases are not being written. Lines are `<expiry> <mac> <ip> <hostname|*>
<client-id|*>` (expiry in seconds since the epoch, 0 for infinite; a MAC of another
hardware type carries a `<type>-` prefix). With DHCPv6, a `duid <server-duid>` line is
followed by `<expiry> <iaid> <ipv6> <hostname|*> <client-duid>` lines: those become
LeaseEntry facts with the client's DUID as client_id and, when the DUID holds one, its
Ethernet MAC. The duid line itself is the server's identity and makes no fact.
Neutron seeds the file at start with `<expiry> <mac> <ip> * *` per port.

Real sample (written by dnsmasq 2.90 after serving udhcpc, dhclient and dhclient -6):

    1795328477 fa:16:3e:7b:e1:3f 10.8.1.15 host-10-8-1-15 *
    1795328477 fa:16:3e:4a:0b:91 10.8.1.14 host-10-8-1-14 01:fa:16:3e:4a:0b:91
    duid 00:01:00:01:32:93:f4:dd:fa:16:3e:a4:5e:02
    1795249583 1047420934 fd00:8:1::6 host-fd00-8-1--6 00:01:00:01:32:93:f4:e2:fa:16:3e:6e:60:06
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, LeaseEntry, Unparsed
from whynoip.parsers._dnsmasq_cmdline import network_id_from_path

NAME = "dnsmasq_leases"
COMMANDS = (r"\bcat\s+\S*(?:/dhcp/[^/\s]+/leases|dnsmasq\S*\.leases)\s*$",)
PATHS = ("*/dhcp/*/leases", "*/dnsmasq.leases", "*/misc/dnsmasq.leases", "*/dnsmasq/*.leases")

MAC_RE = re.compile(r"^(?:[0-9a-fA-F]{1,2}-)?[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2})+$")
IPV4_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
IPV6_RE = re.compile(r"^\[?[0-9a-fA-F:]*:[0-9a-fA-F:.]*\]?$")
IAID_RE = re.compile(r"^T?\d+$")
LINE_RE = re.compile(r"^\d+ \S+ \S+ \S+ \S+$")


def sniff(head: str) -> bool:
    lines = [l for l in head.splitlines()[:20] if l.strip()][:-1] or head.splitlines()[:1]
    return bool(lines) and all(LINE_RE.match(l) or l.startswith("duid ") for l in lines)


def _mac_from_duid(duid: str) -> str | None:
    b = duid.lower().split(":")
    if len(b) == 14 and b[:4] == ["00", "01", "00", "01"]:
        return ":".join(b[8:])
    if len(b) == 10 and b[:4] == ["00", "03", "00", "01"]:
        return ":".join(b[4:])
    return None


def parse(section: Section) -> Iterator[Fact]:
    network_id = network_id_from_path(section.origin.path)
    for offset, line in enumerate(section.lines()):
        text = line.strip()
        if not text:
            continue
        origin = section.origin_at(offset, text=line)
        f = text.split()
        if f[0] == "duid" and len(f) == 2:
            continue  # the server's DUID: not a lease
        if len(f) != 5 or not f[0].isdigit():
            yield Unparsed(origin=origin, reason="not a dnsmasq lease line")
            continue
        expiry, hw, ip, hostname, client = f
        common = dict(origin=origin, network_id=network_id, expiry=float(expiry),
                      hostname=None if hostname == "*" else hostname,
                      client_id=None if client == "*" else client)
        if MAC_RE.match(hw) and IPV4_RE.match(ip):
            yield LeaseEntry(mac=hw.lower(), ip=ip, **common)
        elif IAID_RE.match(hw) and IPV6_RE.match(ip):
            mac = _mac_from_duid(client) if client != "*" else None
            yield LeaseEntry(mac=mac or "", ip=ip.strip("[]"), **common)
        else:
            yield Unparsed(origin=origin, reason="lease line without a MAC and IP address")
