"""dnsmasq's --addn-hosts file (Neutron's `addn_hosts`) -> AddnHostEntry facts.

The names dnsmasq answers in DNS for every port of the network, whether or not it gave
that port a lease: `<ip>\\t<fqdn> <hostname>` per fixed IP (the agent writes the FQDN first
so that PTR answers carry it). The format is /etc/hosts: an address, then names, with
`#` comments. Comparing it with the host file shows ports the agent knows but whose
dhcp-host line is missing.

Real sample (written as the agent does; dnsmasq 2.90 logged "read .../addn_hosts - 10 names"):

    10.8.1.2\thost-10-8-1-2.openstacklocal host-10-8-1-2
    10.8.1.14\thost-10-8-1-14.openstacklocal host-10-8-1-14
    fd00:8:1::6\thost-fd00-8-1--6.openstacklocal host-fd00-8-1--6
"""

from __future__ import annotations

import ipaddress
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import AddnHostEntry, Fact, Unparsed
from whynoip.parsers._dnsmasq_cmdline import network_id_from_path

NAME = "dnsmasq_addn_hosts"
COMMANDS = (r"\bcat\s+\S*/dhcp/[^/\s]+/addn_hosts\s*$",)
PATHS = ("*/dhcp/*/addn_hosts",)


def parse(section: Section) -> Iterator[Fact]:
    network_id = network_id_from_path(section.origin.path)
    for offset, line in enumerate(section.lines()):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        origin = section.origin_at(offset, text=line)
        ip, *names = text.split()
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            yield Unparsed(origin=origin, reason="hosts line does not start with an IP address")
            continue
        if not names:
            yield Unparsed(origin=origin, reason="hosts line without a name")
            continue
        yield AddnHostEntry(origin=origin, network_id=network_id, ip=ip, names=names)
