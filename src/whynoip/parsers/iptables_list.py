"""`iptables -nvL` / `iptables -t <table> -nvL` / `iptables -vnxL` / `--line-numbers`
(and ip6tables, and `-nL` without counters) as `IptablesChain` and `IptablesRule`.

sosreport's firewall_tables plugin keeps the firewall in this listing form rather than as
`iptables-save`, so the same Neutron chains (`neutron-openvswi-i/o/s<port>`,
`-sg-chain`, `-sg-fallback`) have to be read from columns: pkts, bytes, target, prot,
opt, in, out, source, destination, then the matches in iptables' own words (`udp spt:68
dpt:67`, `PHYSDEV match --physdev-in tapX --physdev-is-bridged`, `MAC ! fa:16:..`, `state
RELATED,ESTABLISHED`, `/* comment */`). Each rule's `spec` is rebuilt in iptables-save
syntax as well as the listing allows (`-s 10.0.0.5/32 -m mac --mac-source .. -m comment
--comment ".." -j RETURN`) and read back with `iptables_save.rule_fields`, so both sources
give the same fields. Without `-x`, counters are rounded by iptables (`2147K`, 1000-based)
and read back as such. Newer iptables print the protocol as a number (`17`), older as a
name (`udp`); both become the name.

Real sample (`iptables -vnxL` in the compute-node namespace of the capture lab)::

    Chain neutron-openvswi-s5c1d0e77-a (1 references)
        pkts      bytes target     prot opt in     out     source               destination
           3      252 RETURN     0    --  *      *       10.0.0.5             0.0.0.0/0            MAC fa:16:3e:4a:0b:91 /* Allow traffic from defined IP/MAC pairs. */
           0        0 DROP       0    --  *      *       0.0.0.0/0            0.0.0.0/0            /* Drop traffic without an IP/MAC allow rule. */
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, IptablesChain, IptablesRule, Unparsed
from whynoip.parsers.ip_netns import command_of, origin_maker
from whynoip.parsers.iptables_save import ip_version_of, rule_fields

NAME = "iptables_list"
COMMANDS = (r"\bip6?tables(?:-legacy|-nft)?\s+(?:-\S+\s+(?:\S+\s+)??)*-[a-zA-Z]*L[a-zA-Z]*\b",
            r"\bip6?tables(?:-legacy|-nft)?\s+.*--list\b")
PATHS = ("*/sos_commands/firewall_tables/ip*tables_*L*",)

_CHAIN_RE = re.compile(
    r"^Chain (?P<chain>\S+) \((?:policy (?P<policy>\S+)(?: (?P<pkts>\d+[KMGTPE]?) packets, (?P<bytes>\d+[KMGTPE]?) bytes)?|(?P<refs>\d+) references)\)\s*$")
_HEADER_RE = re.compile(r"^\s*(?:num\s+)?(?:pkts\s+bytes\s+)?target\s+prot\s+opt\s+(?:in\s+out\s+)?source\s+destination\s*$")
_ADDR = r"!?(?:[0-9a-fA-F.:]+(?:/\d+)?|anywhere|\S+)"
_NUM_ADDR = r"!?[0-9a-fA-F.:]*[0-9.:][0-9a-fA-F.:]*(?:/\d+)?"
_PROTO_NAMES = {"0": "all", "1": "icmp", "2": "igmp", "4": "ipip", "6": "tcp", "17": "udp", "41": "ipv6",
                "47": "gre", "50": "esp", "51": "ah", "58": "ipv6-icmp", "112": "vrrp", "132": "sctp"}
_SUFFIX = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18}


def _row_re(verbose: bool, numbered: bool, numeric: bool) -> re.Pattern:
    addr = _NUM_ADDR if numeric else _ADDR
    return re.compile(
        (r"^\s*(?P<num>\d+)\s+" if numbered else r"^\s*")
        + (r"(?P<pkts>\d+[KMGTPE]?)\s+(?P<bytes>\d+[KMGTPE]?)\s+" if verbose else "")
        + r"(?:(?P<target>\S+)\s+)??(?P<prot>!?\s?[\w-]+)\s+(?:(?P<opt>--|-f|!f)\s+)?"
        + (r"(?P<in>!?\S+)\s+(?P<out>!?\S+)\s+" if verbose else "")
        + rf"(?P<src>{addr})\s+(?P<dst>{addr})(?:\s+(?P<extra>.*?))?\s*$")


def sniff(head: str) -> bool:
    lines = head.splitlines()
    return len(lines) > 1 and bool(_CHAIN_RE.match(lines[0])) and bool(_HEADER_RE.match(lines[1]))


def parse(section: Section) -> Iterator[Fact]:
    at = origin_maker(section)
    command = command_of(section)
    m = re.search(r"(?:^|\s)(?:-t|--table)\s*(?P<table>\S+)", command)
    table = m["table"] if m else "filter"
    version = ip_version_of(section)
    chain: str | None = None
    row_res: tuple[re.Pattern, ...] = ()
    number = 0
    for offset, line in enumerate(section.lines() if section.lines else ()):
        if not line.strip():
            continue
        if (m := _CHAIN_RE.match(line)):
            chain, row_res, number = m["chain"], (), 0
            yield IptablesChain(origin=at(offset, line), table=table, chain=chain, policy=m["policy"],
                                ip_version=version, packets=_count(m["pkts"]), bytes=_count(m["bytes"]))
            continue
        if (m := _HEADER_RE.match(line)):
            words = line.split()
            verbose, numbered = "pkts" in words, words[0] == "num"
            # numeric addresses first (-n); names (`anywhere`, hosts) only if that fails
            row_res = (_row_re(verbose, numbered, True), _row_re(verbose, numbered, False))
            continue
        r = next((m for m in (rx.match(line) for rx in row_res) if m), None)
        if chain is None or r is None:
            yield Unparsed(origin=at(offset, line), reason="not an iptables -L line")
            continue
        number += 1
        spec = rebuild_spec(r)
        try:
            fields = rule_fields(spec)
        except ValueError as e:
            yield Unparsed(origin=at(offset, line), reason=f"rule rebuilt from the listing not readable: {e}")
            continue
        yield IptablesRule(origin=at(offset, line), table=table, chain=chain, spec=spec,
                           number=int(r["num"]) if r.groupdict().get("num") else number, ip_version=version,
                           packets=_count(r.groupdict().get("pkts")), bytes=_count(r.groupdict().get("bytes")),
                           **fields)


def _count(v: str | None) -> int | None:
    if not v:
        return None
    if v[-1] in _SUFFIX:
        return int(v[:-1]) * _SUFFIX[v[-1]]
    return int(v)


def _neg(value: str) -> tuple[bool, str]:
    return (True, value[1:]) if value.startswith("!") else (False, value)


def _host(addr: str) -> str:
    if "/" in addr or addr in ("anywhere",):
        return addr
    return f"{addr}/128" if ":" in addr else f"{addr}/32"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def rebuild_spec(r: re.Match) -> str:
    """The rule body in iptables-save syntax, from the columns of one listing row."""
    g = r.groupdict()
    parts: list[str] = []
    for col, opt, anyv in (("src", "-s", ("0.0.0.0/0", "::/0", "anywhere")),
                           ("dst", "-d", ("0.0.0.0/0", "::/0", "anywhere"))):
        neg, v = _neg(g[col])
        if v not in anyv:
            parts += (["!"] if neg else []) + [opt, _host(v)]
    for col, opt in (("in", "-i"), ("out", "-o")):
        if g.get(col):
            neg, v = _neg(g[col])
            if v not in ("*", "any"):
                parts += (["!"] if neg else []) + [opt, v]
    neg, prot = _neg(g["prot"].replace(" ", ""))
    prot = _PROTO_NAMES.get(prot, prot)
    if prot != "all":
        parts += (["!"] if neg else []) + ["-p", prot]
    target = g["target"]
    parts += _matches(g["extra"] or "", target)
    return " ".join(parts)


_PORT_RE = re.compile(r"^(?P<neg>)(?P<key>spts?|dpts?):(?P<bang>!)?(?P<val>\S+)$")


def _matches(extra: str, target: str | None) -> list[str]:
    """iptables -L match words -> iptables-save options, then the target and its options."""
    out: list[str] = []
    comment = None
    c = re.search(r"/\* (?P<c>.*?) \*/", extra)
    if c:
        comment = c["c"]
    before = extra[:c.start()] if c else extra
    after = extra[c.end():] if c else ""
    words = before.split()
    i = 0
    while i < len(words):
        w = words[i]
        if w in ("udp", "tcp", "sctp", "udplite") and i + 1 < len(words) and _PORT_RE.match(words[i + 1]):
            out += ["-m", w]
            i += 1
            while i < len(words) and (pm := _PORT_RE.match(words[i])):
                opt = "--sport" if pm["key"].startswith("spt") else "--dport"
                out += (["!"] if pm["bang"] else []) + [opt, pm["val"]]
                i += 1
            continue
        if w == "PHYSDEV" and i + 1 < len(words) and words[i + 1] == "match":
            out += ["-m", "physdev"]
            i += 2
            while i < len(words) and (words[i].startswith("--physdev") or words[i] == "!"):
                if words[i] in ("--physdev-in", "--physdev-out") and i + 1 < len(words):
                    out += [words[i], words[i + 1]]
                    i += 2
                else:
                    out.append(words[i])
                    i += 1
            continue
        if w == "MAC" and i + 1 < len(words):
            neg = words[i + 1] == "!"
            mac = words[i + 2] if neg and i + 2 < len(words) else words[i + 1]
            out += ["-m", "mac"] + (["!"] if neg else []) + ["--mac-source", mac]
            i += 3 if neg else 2
            continue
        if w in ("state", "ctstate") and i + 1 < len(words):
            neg = words[i + 1] == "!"
            val = words[i + 2] if neg and i + 2 < len(words) else words[i + 1]
            out += ["-m", "state" if w == "state" else "conntrack"] + (["!"] if neg else []) + [f"--{w}", val]
            i += 3 if neg else 2
            continue
        if w == "multiport" and i + 2 < len(words):
            out += ["-m", "multiport", "--" + words[i + 1], words[i + 2]]
            i += 3
            continue
        if w == "match-set" and i + 2 < len(words):
            out += ["-m", "set", "--match-set", words[i + 1], words[i + 2]]
            i += 3
            continue
        break  # the rest describes the target (reject-with, to:, redir ports ...)
    if comment is not None:
        out += ["-m", "comment", "--comment", _quote(comment)]
    rest = " ".join(words[i:] + after.split())
    if target:
        out += ["-j", target]
        if rest:
            out.append(rest)  # the target's options, as iptables -L words them
    elif rest:
        out.append(rest)
    return out
