"""`ip netns` / `ip netns list`: the network namespaces of a node.

On a Neutron node these are `qdhcp-<network-id>` (one per network the DHCP agent serves,
where dnsmasq runs), `qrouter-`, `snat-`, `fip-`; a missing `qdhcp-` namespace is the
first sign of a broken DHCP setup. Each line is a name, followed by `(id: N)` once the
kernel gave the namespace an id as seen from where `ip` ran; `ip addr` refers to a veth
peer's namespace by that id (`link-netnsid N`).

This module also holds what the other node-state parsers share: which command produced
a section and in which namespace it ran (`ip netns exec NS cmd`, `ip -n NS cmd`, or a
sosreport file `ip_netns_exec_NS_cmd`).

Real sample (sosreport `sos_commands/networking/ip_netns` of a DVR compute node)::

    fip-32981f34-497a-4fae-914a-8576055c8d0d (id: 9)
    qrouter-984c22fd-64b3-4fa1-8ddd-87090f401ce5 (id: 10)
    snat-984c22fd-64b3-4fa1-8ddd-87090f401ce5 (id: 8)
"""

from __future__ import annotations

import os
import re
from typing import Callable, Iterator

import msgspec

from whynoip.evidence.section import Section
from whynoip.facts import Fact, Namespace, Origin, Unparsed

NAME = "ip_netns"
COMMANDS = (r"^(?:sudo\s+)?ip\s+(?:-\S+\s+)*netns(?:\s+(?:list|ls|show))?\s*$",)
PATHS = ("*/sos_commands/networking/ip_netns", "*/sos_commands/networking/ip_netns_list")

_LINE_RE = re.compile(r"^(?P<name>[^\s()]+)(?:\s+\(id:\s*(?P<id>\d+)\))?\s*$")

# `ip netns exec NS ...`, `ip -n NS ...`, `ip -netns NS ...` in a command line
_CMD_NS_RE = re.compile(r"\bip\s+(?:netns\s+exec\s+|-n(?:etns)?\s+)(?P<ns>\S+)")
# sosreport: sos_commands/networking/ip_netns_exec_<ns>_<command with underscores>
_SOS_NS_RE = re.compile(r"^ip_netns_exec_(?P<ns>(?:[a-z]+-)?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[^_]+)_(?P<rest>.+)$")


def command_of(section: Section) -> str:
    """The command that produced a section: the one its origin names (a prompt), else the
    sosreport file name turned back into a command (`ovs-ofctl_dump-flows_br-tun` ->
    `ovs-ofctl dump-flows br-tun`)."""
    if section.origin.command:
        return section.origin.command
    base = os.path.basename(section.origin.path or "")
    return base.replace("_", " ")


def namespace_of(section: Section) -> str | None:
    """The namespace a section's output was taken in: the origin's, else the one its
    command or its sosreport file name names."""
    o = section.origin
    if o.namespace:
        return o.namespace
    if o.command:
        m = _CMD_NS_RE.search(o.command)
        if m:
            return m["ns"]
    m = _SOS_NS_RE.match(os.path.basename(o.path or ""))
    return m["ns"] if m else None


def origin_maker(section: Section) -> Callable[[int, str | None], Origin]:
    """`section.origin_at`, with the namespace filled in when only the command or the
    file name tells it."""
    ns = namespace_of(section)
    if ns is None or section.origin.namespace == ns:
        return lambda offset, text=None: section.origin_at(offset, text=text)

    def at(offset: int, text: str | None = None) -> Origin:
        return msgspec.structs.replace(section.origin_at(offset, text=text), namespace=ns)
    return at


def sniff(head: str) -> bool:
    lines = [ln for ln in head.splitlines()[:20] if ln.strip()]
    return bool(lines) and all(
        _LINE_RE.match(ln) and re.match(r"^(qdhcp|qrouter|snat|fip|qlbaas|ovnmeta)-", ln) for ln in lines)


def parse(section: Section) -> Iterator[Fact]:
    at = origin_maker(section)
    for offset, line in enumerate(section.lines() if section.lines else ()):
        if not line.strip():
            continue
        m = _LINE_RE.match(line.strip())
        if not m:
            yield Unparsed(origin=at(offset, line), reason="not a namespace name with an optional (id: N)")
            continue
        yield Namespace(origin=at(offset, line), name=m["name"],
                        id=int(m["id"]) if m["id"] is not None else None)
