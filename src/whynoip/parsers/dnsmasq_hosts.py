"""dnsmasq's dhcp-hostsfile (Neutron's `host`) -> HostEntry facts: who may get which address.

dnsmasq answers a client only if its MAC (or client id) has a line here: a port missing
from this file is "no address available", a line mapping the MAC to another IP or one IP
given twice is a conflict. The DHCP agent writes one line per port and fixed IP,
`mac,[tag:...,][id:client-id,]name,ip[,set:port-<id>]` (neutron/agent/linux/dhcp.py,
`_output_hosts_file`); the name may end with a dot when dns_domain does, IPv6 addresses
are in brackets, and Grizzly wrote `mac,10-8-1-14.openstacklocal,ip`. dnsmasq's own syntax
also allows lease times, `ignore` and several MACs; they are understood and not reported.
The network id comes from the path (`.../dhcp/<network-id>/host`, also under a sosreport).

Real sample (written as the agent does and read by dnsmasq 2.90, capture script):

    fa:16:3e:4a:0b:91,host-10-8-1-14.openstacklocal,10.8.1.14
    fa:16:3e:7b:e1:3f,host-10-8-1-15.openstacklocal,10.8.1.15,set:port-c1a5e0f2-6b7d-4e8f-a9b0-1c2d3e4f5a6b
    fa:16:3e:d0:11:22,id:ff:00:00:00:01:00:01:2c:9a:41:07:fa:16:3e:d0:11:22,host-10-8-1-16.openstacklocal,10.8.1.16,set:port-0d9c8b7a-6f5e-4d3c-8b2a-190817263544
    fa:16:3e:6e:60:06,host-fd00-8-1--6.openstacklocal,[fd00:8:1::6]
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, HostEntry, Unparsed
from whynoip.parsers._dnsmasq_cmdline import network_id_from_path

NAME = "dnsmasq_hosts"
COMMANDS = (r"\bcat\s+\S*/dhcp/[^/\s]+/host\s*$",)
PATHS = ("*/dhcp/*/host",)

MAC_RE = re.compile(r"^(?:[0-9a-fA-F]{1,2}-)?(?:[0-9a-fA-F*]{1,2}:){5,}[0-9a-fA-F*]{1,2}$")
IPV4_RE = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")
IPV6_RE = re.compile(r"^(?:\[[0-9a-fA-F:./]+\])+$")
LEASE_TIME_RE = re.compile(r"^(?:\d+[smhdw]?|infinite)$")
NAME_RE = re.compile(r"^[A-Za-z0-9_*][A-Za-z0-9_.*-]*$")


def sniff(head: str) -> bool:
    lines = [l for l in head.splitlines()[:20] if l.strip()][:-1] or head.splitlines()[:1]
    return bool(lines) and all(MAC_RE.match(l.split(",", 1)[0]) and "," in l for l in lines)


def parse_line(line: str) -> dict | None:
    """The HostEntry fields of one line, or None if a field is not dhcp-host syntax."""
    out: dict = {"tags": []}
    for field in (f.strip() for f in line.split(",")):
        low = field.lower()
        if not field:
            continue
        if low.startswith("set:") or low.startswith("tag:"):
            out["tags"].append(field[4:])
        elif low.startswith("id:"):
            out.setdefault("client_id", field[3:])
        elif MAC_RE.match(field) and "ip" not in out and "hostname" not in out:
            out.setdefault("mac", field.lower())
        elif IPV4_RE.match(field):
            out.setdefault("ip", field)
        elif IPV6_RE.match(field):
            out.setdefault("ip", field[1:].split("]", 1)[0])
        elif low == "ignore" or LEASE_TIME_RE.match(low):
            continue
        elif NAME_RE.match(field) and "hostname" not in out:
            out["hostname"] = field
        else:
            return None
    if not any(k in out for k in ("mac", "client_id", "hostname")):
        return None
    return out


def parse(section: Section) -> Iterator[Fact]:
    network_id = network_id_from_path(section.origin.path)
    for offset, line in enumerate(section.lines()):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        origin = section.origin_at(offset, text=line)
        fields = parse_line(text)
        if fields is None:
            yield Unparsed(origin=origin, reason="not a dhcp-hostsfile line")
            continue
        yield HostEntry(origin=origin, network_id=network_id, **fields)
