"""Small helpers shared by the rules: citing facts as evidence."""

from __future__ import annotations

from whynoip import facts as F
from whynoip.findings import Evidence


def cite(fact: F.Fact, text: str | None = None) -> Evidence:
    o = fact.origin
    return Evidence(source=o.path, line=o.line, text=(text or o.text or _describe(fact))[:300], host=o.host,
                    time=getattr(fact, "time", None))


def _describe(fact: F.Fact) -> str:
    if isinstance(fact, F.DhcpPacket):
        where = " ".join(x for x in (fact.origin.host, fact.origin.namespace, fact.origin.interface) if x)
        who = fact.yiaddr if fact.message_type in ("OFFER", "ACK") else fact.client_mac
        return f"{fact.message_type} xid 0x{(fact.xid or 0):08x} {who or ''} server {fact.server_id or '-'} on {where}"
    if isinstance(fact, F.DnsmasqLogEvent):
        return " ".join(str(x) for x in (fact.event, fact.interface, fact.ip, fact.mac, fact.detail) if x)
    if isinstance(fact, F.HostEntry):
        return f"{fact.mac},{fact.hostname},{fact.ip}"
    if isinstance(fact, F.OvsPort):
        return f"Port {fact.name} tag: {fact.tag}"
    if isinstance(fact, F.IptablesRule):
        c = f"[{fact.packets}:{fact.bytes}] " if fact.packets is not None else ""
        return f"{c}-A {fact.chain} {fact.spec}"
    if isinstance(fact, F.LogEvent):
        return fact.message
    if isinstance(fact, F.DnsmasqProcess):
        return " ".join(fact.flags[:12]) if fact.flags else f"dnsmasq pid {fact.pid}"
    return type(fact).__name__


def first_time(facts: list) -> float | None:
    times = [t for f in facts if (t := getattr(f, "time", None)) is not None]
    return min(times) if times else None


def port_in(spec: str | None, port: int) -> bool:
    """Whether an iptables port match (`67`, `67:68`, `1:1024`, multiport `67,68`) takes
    `port`; no match at all takes every port."""
    if not spec:
        return True
    for part in spec.split(","):
        lo, _, hi = part.partition(":")
        try:
            if int(lo or 0) <= port <= int(hi or lo or 65535):
                return True
        except ValueError:
            return True  # a service name: cannot tell, count it
    return False


def unique_rules(rules) -> list[F.IptablesRule]:
    """One of each (host, namespace, table, chain, rule): iptables-save and iptables -L show a
    rule twice."""
    found: dict[tuple, F.IptablesRule] = {}
    for r in rules:
        found.setdefault((r.origin.host, r.origin.namespace, r.table, r.chain, r.spec), r)
    return list(found.values())


def cite_rule(r: F.IptablesRule) -> Evidence:
    return cite(r, f"-A {r.chain} {r.spec}" + (f"  ({r.packets} packets dropped)" if r.packets else ""))
