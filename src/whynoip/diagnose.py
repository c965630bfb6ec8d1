"""From facts to a diagnosis: run every rule, link causes to effects, rank root causes
first, and say what to collect next when the evidence is not enough."""

from __future__ import annotations

import functools
import gc
import re

import msgspec

from whynoip import facts as F
from whynoip.findings import Diagnosis, Finding, HopState, NextStep, PortPath
from whynoip.model import build
from whynoip.model.paths import path_views
from whynoip.model.picture import Picture
from whynoip.parsers._time import iso_time
from whynoip.rules import ALL

# cause -> effects it explains (DOMAIN.md §4: symptoms chain to causes)
CAUSES: dict[str, tuple[str, ...]] = {
    "disk-full": ("rabbitmq-disk-alarm", "rabbitmq-unreachable", "dhcp-agent-down", "host-entry-missing",
                  "dnsmasq-not-running", "l2-agent-down", "nova-compute-down", "dhcp-server-silent"),
    "rabbitmq-disk-alarm": ("rabbitmq-unreachable", "dhcp-agent-down", "l2-agent-down", "host-entry-missing",
                            "nova-compute-down"),
    "rabbitmq-cluster-inconsistent": ("rabbitmq-unreachable", "dhcp-agent-down", "l2-agent-down", "nova-compute-down"),
    "rabbitmq-unreachable": ("dhcp-agent-down", "l2-agent-down", "host-entry-missing", "nova-compute-down",
                             "port-binding-failed"),
    "pacemaker-resource-stopped": ("dnsmasq-not-running", "dhcp-agent-down", "rabbitmq-unreachable"),
    "clock-skew": ("dhcp-agent-down", "l2-agent-down"),
    # a stopped agent leaves dnsmasq running; it only stops a dead one from being respawned,
    # so both are named when both are found, dnsmasq first (see SPECIFICITY)
    "dhcp-agent-down": ("host-entry-missing", "network-not-hosted"),
    "dhcp-agent-misconfigured": ("dnsmasq-not-running", "dhcp-namespace-broken"),
    "network-not-hosted": ("dnsmasq-not-running", "dhcp-server-silent", "host-entry-missing"),
    "l2-agent-down": ("port-binding-failed", "port-dead-vlan", "l2-path-broken"),
    "port-binding-failed": ("port-dead-vlan",),
    "libvirt-unavailable": ("nova-compute-down",),
    "dnsmasq-port-conflict": ("dnsmasq-not-running", "dhcp-server-silent", "dnsmasq-respawn-loop"),
    "dnsmasq-unresponsive": ("dhcp-server-silent",),
    "dnsmasq-not-running": ("dhcp-server-silent",),
    "dnsmasq-respawn-loop": ("dhcp-server-silent", "dnsmasq-not-running"),
    "dhcp-namespace-broken": ("dhcp-server-silent", "l2-path-broken"),
    "dhcp-disabled": ("dhcp-server-silent", "host-entry-missing", "dnsmasq-not-running"),
    "host-entry-missing": ("dhcp-server-silent",),
    "host-entry-conflict": ("dhcp-server-silent", "dhcp-nak"),
    "stale-lease": ("dhcp-server-silent", "dhcp-nak", "host-entry-conflict"),
    "dhcp-lease-limit": ("dhcp-server-silent", "dnsmasq-not-running", "dnsmasq-respawn-loop"),
    "dnsmasq-unicast-renew-bug": ("dhcp-server-silent",),
    "rogue-dhcp-server": ("dhcp-nak",),
    "udp-checksum-bad": ("dhcp-server-silent",),
    "mtu-mismatch": ("l2-path-broken",),
    "dhcp-options-wrong": ("mtu-mismatch",),  # an MTU option above the network's own
    "security-group-drops-dhcp": ("dhcp-server-silent",),
    "anti-spoofing-drop": ("dhcp-server-silent", "security-group-drops-dhcp"),
    "port-dead-vlan": ("l2-path-broken", "dhcp-server-silent"),
    "vif-plug-missing": ("l2-path-broken", "dhcp-server-silent"),
    "l2-path-broken": ("dhcp-server-silent",),
    "guest-not-requesting": ("dhcp-server-silent",),
}
SEVERITY_RANK = {"critical": 0, "warning": 1, "info": 2}
# among root causes of equal severity: the more specific and nearer the cause, the earlier
SPECIFICITY = {fid: i for i, fid in enumerate((
    "disk-full", "rabbitmq-disk-alarm", "rabbitmq-cluster-inconsistent", "pacemaker-resource-stopped",
    "libvirt-unavailable", "clock-skew", "rabbitmq-unreachable", "dhcp-agent-misconfigured",
    "network-not-hosted", "dhcp-disabled", "dnsmasq-port-conflict", "dhcp-namespace-broken", "dnsmasq-unresponsive",
    "dnsmasq-respawn-loop", "dnsmasq-not-running", "dhcp-agent-down", "dhcp-lease-limit", "stale-lease", "host-entry-conflict",
    "host-entry-missing", "rogue-dhcp-server", "udp-checksum-bad", "anti-spoofing-drop", "security-group-drops-dhcp",
    "port-dead-vlan", "vif-plug-missing", "port-binding-failed", "l2-agent-down", "l2-path-broken", "mtu-mismatch",
    "guest-not-requesting", "dhcp-options-wrong", "dnsmasq-unicast-renew-bug", "dhcp-nak", "nova-compute-down",
    "dhcp-server-silent", "dhcp-logging-off"))}


# Evidence that names no host (one log file, a paste without prompts) leaves the rules'
# `{host}` empty: the words around it then speak of "the node" instead of "None".
_NO_HOST = ((re.compile(r"\bNone's\b"), "the node's"), (re.compile(r" \(None\)"), ""),
            (re.compile(r"\b(on|of|from|to|in) (?:None\b|\?(?=[\s:;,.)]|$))"), r"\1 the node"),
            (re.compile(r"^None\b"), "the node"),
            (re.compile(r"\bNone (?=[a-z0-9-]*qdhcp-|qdhcp-)"), ""))


def _hostless(text: str | None) -> str | None:
    if not text or ("None" not in text and " ?" not in text):
        return text
    for rx, to in _NO_HOST:
        text = rx.sub(to, text)
    return text


def _without_none_host(f: Finding) -> Finding:
    texts = [f.title, f.subject, f.hop or "", *f.fix]
    if any("None" in x or " ?" in x for x in texts):
        f.title, f.subject, f.hop = _hostless(f.title), _hostless(f.subject), _hostless(f.hop)
        f.fix = [_hostless(x) for x in f.fix]
    return f


def run_rules(pic: Picture) -> list[Finding]:
    found: dict[tuple[str, str], Finding] = {}
    for rule in ALL:
        for f in rule(pic) or ():
            if f is None:
                continue
            f = _without_none_host(f)
            if f.key in found:
                found[f.key].evidence.extend(e for e in f.evidence if e not in found[f.key].evidence)
            else:
                found[f.key] = f
    return list(found.values())


def link(findings: list[Finding]) -> None:
    ids = {f.id for f in findings}
    for f in findings:
        f.caused_by = sorted({c for c, effects in CAUSES.items() if f.id in effects and c in ids and c != f.id})
        f.root_cause = not f.caused_by


def rank(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (not f.root_cause, SEVERITY_RANK.get(f.severity, 3),
                                           SPECIFICITY.get(f.id, 99), f.time or 0, f.subject))


FOLD_AT = 6  # more findings than this of one kind and cause read as one


def fold(findings: list[Finding], target: str | None = None) -> tuple[list[Finding], dict[int, list[Finding]]]:
    """Findings of one id, severity, cause and fix, when there are more than FOLD_AT of them,
    as one finding (the first in rank) whose `also` lists the other subjects; its evidence
    keeps the first one's and one item of each of the next few. The finding about the
    target port stays apart. Also returns, by id() of each folded finding, the findings it
    stands for."""
    keys = [(f.id, f.severity, f.root_cause, tuple(f.fix), tuple(f.caused_by)) for f in findings]
    groups: dict[tuple, list[Finding]] = {}
    for key, f in zip(keys, findings):
        groups.setdefault(key, []).append(f)
    t = (target or "").lower()

    def about_target(f: Finding) -> bool:
        return bool(t) and t in f.subject.lower()

    out: list[Finding] = []
    members: dict[int, list[Finding]] = {}
    done: set[tuple] = set()
    for key, f in zip(keys, findings):
        group = groups[key]
        if len(group) <= FOLD_AT or about_target(f):
            out.append(f)
            continue
        if key in done:
            continue
        done.add(key)
        rest = [g for g in group if not about_target(g)]
        head, others = rest[0], rest[1:]
        evidence = list(head.evidence) + [g.evidence[0] for g in others[:4] if g.evidence]
        times = [g.time for g in rest if g.time is not None]
        out.append(msgspec.structs.replace(
            head, title=f"{head.title} (and {len(others)} more like it)", evidence=evidence,
            time=min(times) if times else None, also=[g.subject for g in others]))
        members[id(out[-1])] = rest
    return out, members


def _paths(pic: Picture) -> list[PortPath]:
    out = []
    for v in path_views(pic):
        req, rep = v.request_break(), v.reply_break()
        broken = {id(b) for _, b in filter(None, (req, rep)) if b is not None}
        silent = v.server_silent()
        if silent is not None:
            broken.add(id(silent))
        hops = []
        for i, pt in enumerate(v.points):
            seen = sorted(v.seen(i))
            state = "broken" if id(pt) in broken else ("ok" if seen else "unknown")
            hops.append(HopState(name=pt.name, role=pt.role, host=pt.host, namespace=pt.namespace,
                                 interface=pt.interface, state=state, seen=seen, source=pt.source))
        last = (req or rep)[0].name if (req or rep) else (silent.name if silent else None)
        out.append(PortPath(port=v.port.label, mac=v.port.mac, ip=v.port.ip, server=v.server_host, hops=hops,
                            break_after=last))
    return out


def _next_steps(pic: Picture, findings: list[Finding], paths: list[PortPath]) -> list[NextStep]:
    steps = []
    for p in paths:
        roles = [h.role for h in p.hops]
        if "dhcp-ns" not in roles and pic.servers:
            s = pic.servers[0]
            steps.append(NextStep(why=f"no capture on the DHCP server side for {p.port}",
                                  command=f"ip netns exec {s.namespace or 'qdhcp-<network>'} tcpdump -i "
                                          f"{s.interface or '<ns-device>'} -nn -e -vvv 'port 67 or port 68'",
                                  host=s.host))
        if "guest" not in roles and "tap" not in roles:
            port = pic.ports.get(p.mac or "")
            dev = port.device("tap") if port and port.id else "tap<port-id[:11]>"
            steps.append(NextStep(why=f"no capture next to the guest {p.port}",
                                  command=f"tcpdump -i {dev} -nn -e -vvv 'port 67 or port 68'",
                                  host=port.host if port else None))
    if not pic.of(F.DhcpPacket) and not any(f.severity == "critical" for f in findings):
        for port in pic.guest_ports()[:3]:
            if port.id:
                steps.append(NextStep(why=f"see whether {port.label}'s requests and the replies cross the compute node",
                                      command=f"tcpdump -i {port.device('tap')} -nn -e -vvv 'port 67 or port 68' & "
                                              f"tcpdump -i {port.device('qvo')} -nn -e -vvv 'port 67 or port 68'",
                                      host=port.host))
        for s in pic.servers[:2]:
            steps.append(NextStep(why=f"see whether requests reach the DHCP server {s.name}",
                                  command=f"ip netns exec {s.namespace or 'qdhcp-<network>'} tcpdump -i "
                                          f"{s.interface or '<device>'} -nn -e -vvv 'port 67 or port 68'", host=s.host))
    if not pic.servers and not pic.of(F.ApiPort):
        steps.append(NextStep(why="no DHCP server and no port seen: collect a node's state",
                              command="whynoip collect -o bundle.tar.gz  # or: sos report -o networking,openvswitch,"
                                      "openstack_neutron,process,logs"))
    return steps


def _timeline(findings: list[Finding]) -> list[dict]:
    rows = []
    for f in findings:
        for e in f.evidence:
            if e.time is not None:
                rows.append({"time": e.time, "host": e.host, "finding": f.id, "text": e.text, "source": e.source,
                             "line": e.line})
    rows.sort(key=lambda r: r["time"])
    return rows[:200]


def _verdict(findings: list[Finding], paths: list[PortPath]) -> str:
    roots = [f for f in findings if f.root_cause and f.severity == "critical"]
    if not roots:
        if any(f.severity == "warning" for f in findings):
            return "No fault that stops DHCP was found; see the warnings below."
        return "No DHCP fault found in this evidence."
    top = roots[0]
    where = f" (breaks {top.hop})" if top.hop else ""
    more = f"; {len(roots) - 1} more root cause(s)" if len(roots) > 1 else ""
    return f"{top.id}: {top.title}{where}{more}"


# --- the cascade as one chain -------------------------------------------------------------------

# the order in which fixes recover a cloud from a control-plane cascade (DOMAIN.md, fix hints):
# free the disk, clear the alarm, restart (or reset and re-join) the broker, set the clocks,
# restart or resync the agents, restart libvirtd before nova-compute; the rest after
RECOVERY = ("disk-full", "rabbitmq-disk-alarm", "rabbitmq-cluster-inconsistent", "pacemaker-resource-stopped",
            "rabbitmq-unreachable", "clock-skew", "dhcp-agent-misconfigured", "dhcp-agent-down", "l2-agent-down",
            "network-not-hosted", "libvirt-unavailable", "nova-compute-down")


def _when(f: Finding) -> float | None:
    if f.time is not None:
        return f.time
    times = [e.time for e in f.evidence if e.time is not None]
    return min(times) if times else None


def _no_ip_guests(pic: Picture, steps: list[Finding], members: dict[int, list[Finding]]) -> list[dict]:
    """The guests named by a step of the chain (or a finding folded into one) whose console
    says they got no lease."""
    named = " ".join(f"{g.subject} {g.title}" for f in steps for g in members.get(id(f), [f]))
    out = []
    for port in pic.guest_ports():
        if not port.guest or not re.search(rf"(?<![\w-]){re.escape(port.guest)}(?![\w-])|{re.escape(port.mac)}", named):
            continue
        # its client's last word: no lease (a lease obtained later means it has an IP)
        events = [e for e in pic.of(F.ConsoleEvent) if e.guest == port.guest
                  and e.event in ("no-lease", "lease-obtained", "ack-received")]
        if events and events[-1].event == "no-lease":
            e = events[-1]
            out.append({"guest": port.guest, "mac": port.mac, "ip": port.ip, "time": e.time,
                        "text": e.origin.text or e.detail or "no lease", "source": e.origin.path, "line": e.origin.line})
    return out


def _chains(pic: Picture, findings: list[Finding], members: dict[int, list[Finding]]) -> list[dict]:
    """Each root cause with everything it explains, as one chain: the steps ordered by how
    far they stand from the root (then by time), the time of each, the guests left without
    an IP at its end, and the fixes in the order that recovers the cloud."""
    out = []
    depths: dict[str, dict[str, int]] = {}  # by root id: roots of one id explain the same findings
    explained = [f for f in findings if f.caused_by]
    for root in (f for f in findings if f.root_cause):
        depth = depths.get(root.id)
        if depth is None:
            depth = depths[root.id] = {root.id: 0}
            changed = True
            while changed:  # the longest way from the root to each finding it explains
                changed = False
                for f in explained:
                    d = max((depth[c] + 1 for c in f.caused_by if c in depth), default=None)
                    if d is not None and d > depth.get(f.id, -1) and f.id != root.id and d <= len(findings):
                        depth[f.id] = d
                        changed = True
        # (another finding of the root's own id is no effect of it: say, the same warning for another client)
        effects = [f for f in findings if f.id in depth and f.id != root.id] if len(depth) > 1 else []
        if not effects:
            continue
        effects.sort(key=lambda f: (depth[f.id], _when(f) or float("inf"), SPECIFICITY.get(f.id, 99), f.subject))
        steps = [root] + effects
        order = {fid: i for i, fid in enumerate(RECOVERY)}
        fixes: list[str] = []
        for f in sorted(steps, key=lambda f: order.get(f.id, len(RECOVERY) + depth[f.id])):
            fixes += [x for x in f.fix if x not in fixes]
        out.append({
            "root": root.id,
            "steps": [{"finding": f.id, "depth": depth[f.id], "time": _when(f), "subject": f.subject, "title": f.title,
                       "host": next((e.host for e in f.evidence if e.host), None)} for f in steps],
            "no_ip": _no_ip_guests(pic, steps, members),
            "fix": fixes,
        })
    return out


def _clock_offsets(pic: Picture) -> list[dict]:
    """Clocks that disagree: a server's own word on an agent's clock (clock-skew lines),
    hosts whose `date` differs from the others', logs written ahead of their host's `date`."""
    out = []
    for e in pic.of(F.LogEvent):
        if e.signal != "clock-skew":
            continue
        agent, server = iso_time(e.params.get("agent_time", "")), iso_time(e.params.get("server_time", ""))
        if not agent or not server:
            continue
        offset = agent[0] - server[0]
        who = f"{e.params.get('agent_name', 'the agent')} on {e.params.get('host', '?')}"
        out.append({"host": e.params.get("host"), "offset": round(offset, 3), "source": e.origin.path,
                    "line": e.origin.line,
                    "text": f"{who}: its clock is {abs(offset):.0f} s {'behind' if offset < 0 else 'ahead of'} the "
                            f"server's ({e.origin.host or 'the server'}); its log times are shifted the same way"})
    dated = {}
    for h in pic.of(F.HostInfo):
        if h.time is not None and (h.hostname or h.origin.host):
            dated.setdefault(h.hostname or h.origin.host, h)
    if len(dated) >= 2:
        times = sorted(h.time for h in dated.values())
        mid = times[len(times) // 2]
        for host, h in sorted(dated.items()):
            if abs(h.time - mid) > 60:
                out.append({"host": host, "offset": round(h.time - mid, 3), "source": h.origin.path,
                            "line": h.origin.line,
                            "text": f"{host}: its clock is {abs(h.time - mid):.0f} s "
                                    f"{'behind' if h.time < mid else 'ahead of'} the other hosts' (date)"})
    for s in pic.of(F.LogSummary):
        h = dated.get(s.origin.host)
        if h and s.last_time and not s.time_inferred and s.last_time - h.time > 60:
            out.append({"host": s.origin.host, "offset": round(s.last_time - h.time, 3), "source": s.origin.path,
                        "line": 0, "text": f"{s.origin.path}: written up to {s.last_time - h.time:.0f} s after "
                                           f"{s.origin.host}'s date: its clock runs ahead"})
    return out


def filter_target(pic: Picture, findings: list[Finding], target: str | None) -> list[Finding]:
    if not target:
        return findings
    t = target.lower()
    port = next((p for p in pic.ports.values() if t in (p.mac, (p.id or ""), p.ip, (p.guest or "").lower())
                 or (p.id and p.id.startswith(t))), None)
    keep = []
    for f in findings:
        subj = f.subject.lower()
        if t in subj or (port and (port.mac in subj or (port.id and port.id in subj))):
            keep.append(f)
        elif not any(x in subj for x in ("fa:16:3e", "port ")) or f.root_cause:
            keep.append(f)  # not about another port: network, server or host findings apply
    return keep


def _collector_paused(fn):
    """Run `fn` with the cyclic garbage collector paused. Joining facts and running the rules
    make many small objects and next to no cycles; a collection every few hundred of them walks
    all the facts held (hundreds of thousands from a node's logs and captures) again and again:
    half the time of a large diagnosis."""
    @functools.wraps(fn)
    def run(*args, **kwargs):
        enabled = gc.isenabled()
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()
    return run


@_collector_paused
def diagnose(facts: list[F.Fact], target: str | None = None) -> Diagnosis:
    pic = build(facts)
    findings = run_rules(pic)
    link(findings)
    findings, members = fold(rank(filter_target(pic, findings, target)), target)
    paths = _paths(pic)
    unparsed = [f for f in facts if isinstance(f, F.Unparsed)]
    summary = {
        "root_causes": [f.id for f in findings if f.root_cause and f.severity != "info"],
        "critical": sum(f.severity == "critical" for f in findings),
        "warning": sum(f.severity == "warning" for f in findings),
        "info": sum(f.severity == "info" for f in findings),
        "facts": len(facts), "unparsed_sections": len(unparsed),
        "hosts": sorted(h for h in pic.hosts if h),
        "networks": sorted(pic.network_ids()),
        "dhcp_servers": [{"network": s.network_id, "host": s.host, "ip": s.ip} for s in pic.servers],
    }
    return Diagnosis(verdict=_verdict(findings, paths), findings=findings, paths=paths,
                     next_steps=_next_steps(pic, findings, paths), timeline=_timeline(findings), summary=summary,
                     chains=_chains(pic, findings, members), clock_offsets=_clock_offsets(pic))
