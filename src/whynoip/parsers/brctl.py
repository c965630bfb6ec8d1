"""`brctl show` and `bridge link`: which interfaces are enslaved to which Linux bridge.

With Neutron's hybrid firewall every instance has a Linux bridge `qbr<port>` holding the
guest's `tap<port>` and the veth `qvb<port>` whose peer `qvo<port>` sits on br-int; a
`qbr` missing one of the two is a vif plug that went wrong. `brctl show` prints the first
member on the bridge's row and each further member on a continuation row of its own;
`bridge link` prints one line per member (`... master <bridge> state forwarding ...`) and,
with `-d`, an attribute line under it, and lists a bridge once as its own master (skipped
here: a bridge is not its own member).

Real sample (`brctl show` in the compute-node namespace of the capture lab)::

    bridge name	bridge id		STP enabled	interfaces
    qbr5c1d0e77-a2		8000.06b0f435fcbc	no		qvb5c1d0e77-a2
    							tap5c1d0e77-a2
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import BridgeMember, Fact, Unparsed
from whynoip.parsers.ip_netns import origin_maker

NAME = "brctl"
COMMANDS = (r"\bbrctl\s+show\b", r"\bbridge\s+(?:-\S+\s+)*link(?:\s+show)?\s*$")
PATHS = ("*/sos_commands/networking/brctl_show", "*/sos_commands/networking/bridge_*link_show",
         "*/sos_commands/networking/bridge_link*")

_BRCTL_HEAD_RE = re.compile(r"^bridge name\s+bridge id\s+STP enabled\s+interfaces\s*$")
_BRCTL_ROW_RE = re.compile(r"^(?P<bridge>\S+)\s+(?P<id>[0-9a-fA-F]{4}\.[0-9a-fA-F]{12})\s+(?P<stp>yes|no)(?:\s+(?P<iface>\S+))?\s*$")
_LINK_RE = re.compile(r"^\d+:\s+(?P<name>[^\s:@]+)(?:@\S+?)?:\s+<[^>]*>.*?\bmaster\s+(?P<master>\S+)")
_LINK_ANY_RE = re.compile(r"^\d+:\s+\S+:\s+<[^>]*>")


def sniff(head: str) -> bool:
    first = head.split("\n", 1)[0]
    if _BRCTL_HEAD_RE.match(first):
        return True
    # `bridge link`: ip-like lines, but with a bridge port state and no link/ or inet lines
    return bool(_LINK_RE.match(first)) and " state " in first and "link/" not in head and " inet" not in head


def parse(section: Section) -> Iterator[Fact]:
    at = origin_maker(section)
    bridge: str | None = None
    for offset, line in enumerate(section.lines() if section.lines else ()):
        if not line.strip() or _BRCTL_HEAD_RE.match(line):
            continue
        m = _BRCTL_ROW_RE.match(line)
        if m:
            bridge = m["bridge"]
            if m["iface"]:
                yield BridgeMember(origin=at(offset, line), bridge=bridge, interface=m["iface"])
            continue
        if line[:1].isspace():
            words = line.split()
            if bridge is not None and len(words) == 1:  # brctl continuation row
                yield BridgeMember(origin=at(offset, line), bridge=bridge, interface=words[0])
                continue
            if bridge is None and words and not _LINK_ANY_RE.match(line.strip()):
                continue  # `bridge -d link`: the attribute line under a member
        m = _LINK_RE.match(line)
        if m:
            bridge = None
            if m["name"] != m["master"]:
                yield BridgeMember(origin=at(offset, line), bridge=m["master"], interface=m["name"])
            continue
        if _LINK_ANY_RE.match(line):
            bridge = None
            continue  # a `bridge link` line without master: a port of nothing
        yield Unparsed(origin=at(offset, line), reason="not a brctl show / bridge link line")
