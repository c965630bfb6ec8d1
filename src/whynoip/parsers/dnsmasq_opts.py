"""dnsmasq's dhcp-optsfile (Neutron's `opts`) -> OptsEntry facts: what a DHCP reply carries.

The router, DNS servers, static routes (121 and Microsoft's 249) and per-port extra options
a guest receives are the lines of this file whose tags match the client: Neutron tags
each subnet's options `tag:subnet-<id>` (Grizzly: `tag:tag0`, `tag:tag1` by subnet index)
and each port's extra DHCP options `tag:port-<id>`. The option is `option:<name>`,
`option6:<name>` (DHCPv6) or a bare number (old agents wrote `3` for the router; 249 has no
name). Numbers with a dnsmasq name are given that name so that `3` and `option:router` are
one option; DHCPv6 options keep the `option6:` prefix so they never pass for IPv4 ones.
The agent joins the lines with newlines and writes no final newline.

Real sample (written as the agent does and read by dnsmasq 2.90, capture script):

    tag:subnet-4c7e1d2a-9f3b-4a8e-b6d5-2e1f0a9c8b7d,option:classless-static-route,169.254.169.254/32,10.8.1.1,0.0.0.0/0,10.8.1.1
    tag:subnet-4c7e1d2a-9f3b-4a8e-b6d5-2e1f0a9c8b7d,249,169.254.169.254/32,10.8.1.1,0.0.0.0/0,10.8.1.1
    tag:subnet-4c7e1d2a-9f3b-4a8e-b6d5-2e1f0a9c8b7d,option:router,10.8.1.1
    tag:subnet-e3b0c442-98fc-4c14-9afb-f4c8996fb924,option6:dns-server,[fd00:8:1::2]
    tag:port-c1a5e0f2-6b7d-4e8f-a9b0-1c2d3e4f5a6b,option:bootfile-name,pxelinux.0
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, OptsEntry, Unparsed
from whynoip.parsers._dnsmasq_cmdline import network_id_from_path

NAME = "dnsmasq_opts"
COMMANDS = (r"\bcat\s+\S*/dhcp/[^/\s]+/opts\s*$",)
PATHS = ("*/dhcp/*/opts",)

# dnsmasq's names for the DHCPv4 option numbers (dhcp-common.c opttab) that matter here
OPTION_NAMES = {
    1: "netmask", 2: "time-offset", 3: "router", 6: "dns-server", 7: "log-server", 12: "hostname",
    15: "domain-name", 26: "mtu", 28: "broadcast", 33: "static-route", 42: "ntp-server",
    44: "netbios-ns", 51: "lease-time", 54: "server-identifier", 58: "T1", 59: "T2",
    66: "tftp-server", 67: "bootfile-name", 119: "domain-search", 121: "classless-static-route",
}
OPTION_RE = re.compile(r"^(?:option6?:[A-Za-z0-9-]+|\d{1,3})$")


def sniff(head: str) -> bool:
    lines = [l for l in head.splitlines()[:20] if l.strip()]
    return bool(lines) and all(l.startswith("tag:") and ("option" in l or re.search(r",\d{1,3},", l))
                               for l in lines)


def parse(section: Section) -> Iterator[Fact]:
    network_id = network_id_from_path(section.origin.path)
    for offset, line in enumerate(section.lines()):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        origin = section.origin_at(offset, text=line)
        fields = [f.strip() for f in text.split(",")]
        tags: list[str] = []
        while fields and fields[0].lower().startswith(("tag:", "encap:", "vi-encap:", "vendor:", "force")):
            head = fields.pop(0)
            if head.lower().startswith("tag:"):
                tags.append(head[4:])
        if not fields or not OPTION_RE.match(fields[0]):
            yield Unparsed(origin=origin, reason="not a dhcp-optsfile line")
            continue
        option = fields[0]
        if option.startswith("option:"):
            option = option[len("option:"):]
        elif option.isdigit() and int(option) in OPTION_NAMES:
            option = OPTION_NAMES[int(option)]
        yield OptsEntry(origin=origin, network_id=network_id, tags=tags, option=option,
                        value=",".join(fields[1:]))
