"""`ip addr` / `ip link` in all the shapes operators and sosreport keep: plain, `-d`
(details: the link kind), `-o` (one line per record), `-br` (brief), `-s` (statistics) and
`-j` (JSON), one `Interface` per link.

These answer "is the hop there and up?": the guest's `tap`, the `qbr` bridge, the
`qvb`/`qvo` veth pair, the DHCP port `tap..` inside `qdhcp-<net>` and whether it holds its
IP. The namespace is that of the section (a prompt `ip netns exec qdhcp-X ip addr`, or the
sosreport file `ip_netns_exec_qdhcp-X_ip_address_show`). A veth shows its peer as
`tapX@if12` (index 12, in another namespace: `link-netnsid N` or `link-netns NAME`) or
`qvoX@qvbX` (same namespace). With `-d` the line after `link/ether` starts with the kind
(`veth`, `bridge`, `tun`, `vxlan`, `openvswitch`); `bridge_slave`/`openvswitch_slave`
lines describe the membership, not the kind. OVS bridges shown DOWN are normal.

Real sample (sosreport `sos_commands/networking/ip_-d_address`, a compute node)::

    37: tap0e778df8-ca: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc fq_codel master ovs-system state UNKNOWN group default qlen 1000
        link/ether fe:16:3e:a7:45:cb brd ff:ff:ff:ff:ff:ff promiscuity 1 minmtu 68 maxmtu 65521
        tun type tap pi off vnet_hdr on persist off
        openvswitch_slave numtxqueues 1 numrxqueues 1 gso_max_size 65536 gso_max_segs 65535
        inet6 fe80::fc16:3eff:fea7:45cb/64 scope link
           valid_lft forever preferred_lft forever
"""

from __future__ import annotations

import json
import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, Interface, Unparsed
from whynoip.parsers.ip_netns import command_of, origin_maker

NAME = "ip_addr"
_OBJ = r"(?:a|ad|add|addr|addre|addres|address|l|li|lin|link)"
COMMANDS = (rf"\bip\s+(?:-\S+\s+(?:\S+\s+)??)*{_OBJ}(?:\s+(?:show|list|ls|sh|s)\b.*)?\s*$",)
PATHS = (
    "*/sos_commands/networking/ip_address*", "*/sos_commands/networking/ip_addr*",
    "*/sos_commands/networking/ip_-*address*", "*/sos_commands/networking/ip_-*addr",
    "*/sos_commands/networking/ip_link*", "*/sos_commands/networking/ip_-*link",
    "*/sos_commands/networking/ip_netns_exec_*_ip_address_show",
    "*/sos_commands/networking/ip_netns_exec_*_ip_-d_address_show",
    "*/sos_commands/networking/ip_netns_exec_*_ip_link*",
)

_HEADER_RE = re.compile(
    r"^(?P<index>\d+):\s+(?P<name>[^\s:@]+)(?:@(?P<peer>[^\s:]+))?:\s+<(?P<flags>[^>]*)>(?P<rest>.*)$")
_ONELINE_ADDR_RE = re.compile(r"^(?P<index>\d+):\s+(?P<name>[^\s:@]+)(?:@\S+)?\s+inet6?\s+(?P<addr>\S+)")
_LINK_RE = re.compile(r"^\s+link/(?P<type>\S+)(?:\s+(?P<mac>[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5,19}))?(?P<rest>.*)$")
_ADDR_RE = re.compile(r"^\s+inet6?\s+(?P<addr>\S+)")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$")
_KIND_RE = re.compile(r"^[a-z][a-z0-9_]*$")
# first words of `-d` detail lines that are attributes, not a link kind
_NOT_KINDS = {"addrgenmode", "numtxqueues", "numrxqueues", "gso_max_size", "gso_max_segs",
              "altname", "prop", "alias", "vf", "promiscuity", "minmtu", "maxmtu", "RX:",
              "TX:", "link-netnsid", "link-netns"}
_BRIEF_RE = re.compile(r"^(?P<name>[^\s@]+)(?:@(?P<peer>\S+))?\s+(?P<state>[A-Z]+)(?:\s+(?P<rest>.*))?$")


def _brief_mode(command: str) -> bool:
    return bool(re.search(r"(?:^|\s)-br(?:ief)?\b", command))


def sniff(head: str) -> bool:
    lines = [ln for ln in head.splitlines() if ln.strip()][:4]
    if not lines:
        return False
    if lines[0].lstrip().startswith("[{") and '"ifname"' in head[:2000]:
        return True
    return bool(_HEADER_RE.match(lines[0]) or _ONELINE_ADDR_RE.match(lines[0])) and (
        len(lines) == 1 or "link/" in head[:4000] or " inet" in head[:4000])


def parse(section: Section) -> Iterator[Fact]:
    at = origin_maker(section)
    lines = list(section.lines() if section.lines else ())
    text_start = next((i for i, ln in enumerate(lines) if ln.strip()), None)
    if text_start is None:
        return
    if lines[text_start].lstrip().startswith("["):
        yield from _parse_json(lines, at)
    elif _brief_mode(command_of(section)):
        yield from _parse_brief(lines, at)
    else:
        yield from _parse_text(lines, at)


# --- text: plain, -d, -s, -o ---------------------------------------------------------------

def _parse_text(lines: list[str], at) -> Iterator[Fact]:
    cur: dict | None = None  # the interface being read
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        m = _ONELINE_ADDR_RE.match(line)
        if m:  # `ip -o addr`: one address a line, consecutive per interface
            index = int(m["index"])
            if cur is not None and (cur["index"] != index or not cur.get("oneline")):
                yield _interface(cur, at)
                cur = None
            if cur is None:
                cur = {"index": index, "name": m["name"], "offset": offset, "line": line,
                       "oneline": True, "addresses": []}
            cur["addresses"].append(m["addr"])
            continue
        # `ip -o link`: a record with its line breaks written as backslashes
        pieces = [line] if "\\" not in line else [p for p in re.split(r"\\\s*", line) if p.strip()]
        if len(pieces) > 1:
            pieces = [pieces[0]] + ["    " + p.strip() for p in pieces[1:]]
        for piece in pieces:
            h = _HEADER_RE.match(piece)
            if h:
                if cur is not None:
                    yield _interface(cur, at)
                cur = _header(h, offset, line)
                continue
            if cur is None or not piece[:1].isspace() or cur.get("oneline"):
                yield Unparsed(origin=at(offset, line), reason="not an ip addr/link line")
                cur = None
                break
            _detail(cur, piece)
    if cur is not None:
        yield _interface(cur, at)


def _header(h: re.Match, offset: int, line: str) -> dict:
    cur = {"index": int(h["index"]), "name": h["name"], "peer": h["peer"], "offset": offset,
           "line": line, "flags": [f for f in h["flags"].split(",") if f], "addresses": [],
           "link_seen": False}
    words = h["rest"].split()
    for key, value in zip(words, words[1:]):
        if key == "mtu" and value.isdigit():
            cur["mtu"] = int(value)
        elif key == "state":
            cur["state"] = value
        elif key == "master":
            cur["master"] = value
    return cur


def _detail(cur: dict, line: str) -> None:
    m = _LINK_RE.match(line)
    if m and not cur.get("link_seen"):
        cur["link_seen"] = True
        if m["mac"] and _MAC_RE.match(m["mac"]):
            cur["mac"] = m["mac"].lower()
        words = m["rest"].split()
        for key, value in zip(words, words[1:]):
            if key == "link-netnsid" and value.isdigit():
                cur["link_netnsid"] = int(value)
            elif key == "link-netns":
                cur["link_netns"] = value
        return
    m = _ADDR_RE.match(line)
    if m:
        cur["addresses"].append(m["addr"])
        return
    words = line.split()
    if not cur.get("link_seen") or not words or cur.get("kind") or cur.get("stats_next"):
        cur["stats_next"] = False
        return
    first = words[0]
    if first in ("RX:", "TX:"):  # `ip -s`: a heading line, then a line of numbers
        cur["stats_next"] = True
        return
    if first in _NOT_KINDS or first.endswith("_slave") or first.startswith(("valid_lft", "inet")):
        return
    if _KIND_RE.match(first):
        cur["kind"] = first


def _interface(cur: dict, at) -> Interface:
    return Interface(
        origin=at(cur["offset"], cur["line"]), name=cur["name"], index=cur["index"],
        peer=cur.get("peer"), state=cur.get("state"),
        admin_up=("UP" in cur["flags"]) if "flags" in cur else None,
        flags=cur.get("flags", []), mtu=cur.get("mtu"), mac=cur.get("mac"), master=cur.get("master"),
        kind=cur.get("kind"), addresses=cur["addresses"], link_netnsid=cur.get("link_netnsid"),
        link_netns=cur.get("link_netns"))


# --- -br ------------------------------------------------------------------------------------

def _parse_brief(lines: list[str], at) -> Iterator[Fact]:
    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        m = _BRIEF_RE.match(line.strip())
        if not m:
            yield Unparsed(origin=at(offset, line), reason="not an `ip -br` line")
            continue
        rest = (m["rest"] or "").split()
        mac = next((w.lower() for w in rest if _MAC_RE.match(w)), None)
        flags = next((w[1:-1].split(",") for w in rest if w.startswith("<") and w.endswith(">")), None)
        addresses = [w for w in rest if "/" in w or re.match(r"^[0-9a-f.:]+$", w) and not _MAC_RE.match(w)]
        yield Interface(origin=at(offset, line), name=m["name"], peer=m["peer"], state=m["state"],
                        admin_up=("UP" in flags) if flags is not None else None, flags=flags or [],
                        mac=mac, addresses=addresses)


# --- -j -------------------------------------------------------------------------------------

def _parse_json(lines: list[str], at) -> Iterator[Fact]:
    text = "\n".join(lines)
    try:
        data = json.loads(text)
    except ValueError as e:
        yield Unparsed(origin=at(0, lines[0]), end_line=at(len(lines) - 1, None).line,
                       reason=f"ip -j output that is not JSON: {e}")
        return
    if not isinstance(data, list):
        yield Unparsed(origin=at(0, lines[0]), reason="ip -j output that is not a list of links")
        return
    for item in data:
        if not isinstance(item, dict) or not isinstance(item.get("ifname"), str):
            yield Unparsed(origin=at(0, None), reason=f"ip -j entry without ifname: {str(item)[:200]}")
            continue
        name = item["ifname"]
        pos = text.find(f'"ifname":"{name}"')
        if pos < 0:
            pos = text.find(f'"ifname": "{name}"')
        offset = text.count("\n", 0, max(pos, 0))
        try:
            yield _json_interface(item, at(offset, json.dumps(item, separators=(",", ":"))))
        except (TypeError, ValueError, AttributeError) as e:
            yield Unparsed(origin=at(offset, None), reason=f"ip -j entry for {name} unreadable: {e}")


def _json_interface(item: dict, origin) -> Interface:
    flags = [str(f) for f in item.get("flags") or []]
    peer = item.get("link")
    if peer is None and item.get("link_index") is not None:
        peer = f"if{int(item['link_index'])}"
    linkinfo = item.get("linkinfo") or {}
    addresses = []
    for a in item.get("addr_info") or []:
        if isinstance(a, dict) and a.get("local") is not None:
            plen = a.get("prefixlen")
            addresses.append(f"{a['local']}/{plen}" if plen is not None else str(a["local"]))
    mac = item.get("address")
    return Interface(
        origin=origin, name=item["ifname"],
        index=int(item["ifindex"]) if item.get("ifindex") is not None else None,
        peer=str(peer) if peer is not None else None, state=item.get("operstate"),
        admin_up="UP" in flags, flags=flags,
        mtu=int(item["mtu"]) if item.get("mtu") is not None else None,
        mac=mac.lower() if isinstance(mac, str) and _MAC_RE.match(mac) else None,
        master=item.get("master"), kind=linkinfo.get("info_kind"), addresses=addresses,
        link_netnsid=int(item["link_netnsid"]) if item.get("link_netnsid") is not None else None,
        link_netns=item.get("link_netns"))
