"""Server-side findings: dnsmasq, its namespace, its files and what it logs."""

from __future__ import annotations

import ipaddress
import re
from collections import Counter

from whynoip import facts as F
from whynoip.findings import Finding
from whynoip.model.paths import REQUESTS, path_views
from whynoip.model.picture import DhcpServer, Picture, norm_mac
from whynoip.rules._util import cite, cite_rule, first_time, port_in, unique_rules

AGENT_RESTART = "systemctl restart neutron-dhcp-agent"


def _net(s: DhcpServer) -> str:
    return s.network_id or "?"


def _events(s: DhcpServer, *kinds: str, detail: str | None = None) -> list[F.DnsmasqLogEvent]:
    if not detail:
        return [e for e in s.log if e.event in kinds]
    return [e for e, low in zip(s.log, s.log_details()) if e.event in kinds or (low and detail in low)]


def _hosted_servers(pic: Picture) -> list[DhcpServer]:
    """Servers that should exist: a qdhcp namespace, files, a log or a process tell so."""
    return [s for s in pic.servers if s.namespace or s.host_entries or s.processes or s.log]


def dnsmasq_not_running(pic: Picture):
    for s in _hosted_servers(pic):
        ps_seen = any(p.origin.host == s.host for p in pic.of(F.Process))
        running = [p for p in s.processes if p.state not in ("Z",)]
        if not ps_seen or running:
            continue
        ev = []
        died = [e for e in pic.of(F.LogEvent) if e.origin.host == s.host and e.signal in ("dnsmasq-not-found",)
                and s.network_id and s.network_id in e.message]
        ev += [cite(e) for e in died[-3:]]
        exits = _events(s, "exiting")
        ev += [cite(e) for e in exits[-1:]]
        ps = next(p for p in pic.of(F.Process) if p.origin.host == s.host)
        ev.append(cite(ps, f"no dnsmasq for network {_net(s)} in the process list of {s.host}"))
        yield Finding(
            id="dnsmasq-not-running", severity="critical", subject=f"network {_net(s)} on {s.host}",
            title=f"No dnsmasq runs for network {_net(s)} on {s.host}, which hosts it",
            evidence=ev, hop=f"{s.host} {s.namespace or ''} {s.interface or ''}".strip(),
            time=first_time(died + exits),
            fix=[f"on {s.host}: {AGENT_RESTART}  # the agent starts dnsmasq again",
                 f"then check it stays up: pgrep -af 'dnsmasq.*{_net(s)}'"])


def namespace_drops(pic: Picture, s: DhcpServer) -> list[F.IptablesRule]:
    """Rules of the iptables in the server's own namespace that drop what DHCP needs: a
    request coming in (INPUT, UDP to port 67) or a reply going out (OUTPUT, from 67 to 68).
    Neutron puts no such rule there; someone did (by hand, a host firewall run in there)."""
    if not s.namespace:
        return []
    out = []
    for r in unique_rules(pic.of(F.IptablesRule)):
        if (r.origin.host != s.host or r.origin.namespace != s.namespace or r.table != "filter"
                or r.target not in ("DROP", "REJECT") or r.negated):
            continue
        if r.protocol not in (None, "udp", "all") or r.source not in (None, "0.0.0.0/0"):
            continue
        if r.chain == "INPUT" and r.in_interface in (None, s.interface, "+") and port_in(r.dport, 67):
            out.append(r)
        elif r.chain == "OUTPUT" and r.out_interface in (None, s.interface, "+") and port_in(r.sport, 67) \
                and port_in(r.dport, 68):
            out.append(r)
    return out


def namespace_firewall_drops_dhcp(pic: Picture):
    for s in pic.servers:
        drops = namespace_drops(pic, s)
        if not drops:
            continue
        hit = [r for r in drops if r.packets is None or r.packets > 0]
        ns = s.namespace
        yield Finding(
            id="security-group-drops-dhcp", severity="critical" if hit else "warning",
            subject=f"{ns} on {s.host}",
            title=f"iptables in {ns} on {s.host} drops DHCP before dnsmasq sees it"
                  + ("" if hit else " (no packet counted yet)"),
            evidence=[cite_rule(r) for r in (hit or drops)[:3]],
            hop=f"{s.host} {ns} {s.interface or ''}".strip(),
            fix=[f"on {s.host}: ip netns exec {ns} iptables -D {r.chain} {r.spec}" for r in drops[:3]]
            + [f"then find what put it there: Neutron writes no filter rule in {ns}"])


def dnsmasq_unresponsive(pic: Picture):
    views = path_views(pic)
    for s in _hosted_servers(pic):
        if any(r.packets is None or r.packets > 0 for r in namespace_drops(pic, s)):
            continue  # the firewall in front of it, not dnsmasq (namespace_firewall_drops_dhcp)
        stopped = [p for p in s.processes if p.state and p.state.startswith("T")]
        reached = []
        for v in views:
            if v.server_host != s.host:
                continue
            for pt in v.points:
                if pt.role == "dhcp-ns" and pt.first(v.port.mac, REQUESTS) and not pt.seen(v.port.mac) & {"OFFER", "ACK", "NAK"}:
                    reached.append(pt.first(v.port.mac, REQUESTS))
        alive = [p for p in s.processes if not (p.state and p.state.startswith("Z"))]
        if stopped or (reached and alive and not _answered_in_log(s, reached)):
            ev = [cite(p, f"dnsmasq pid {p.pid} state {p.state} (stopped)") for p in stopped]
            ev += [cite(r) for r in reached[:2]]
            if alive and not stopped:
                ev.append(cite(alive[0], f"dnsmasq pid {alive[0].pid} is running"))
            yield Finding(
                id="dnsmasq-unresponsive", severity="critical", subject=f"{s.ip or _net(s)} on {s.host}",
                title=f"dnsmasq for network {_net(s)} on {s.host} is alive but answers nothing",
                evidence=ev, hop=f"{s.host} {s.namespace or ''} {s.interface or ''}".strip(),
                fix=[f"on {s.host}: kill {alive[0].pid if alive else '<pid>'}  # the DHCP agent respawns it "
                     f"(its liveness check only looks for the PID, so a hung dnsmasq passes it)",
                     f"or: {AGENT_RESTART}; then check the PID stays the same and requests get answers"])


def _answered_in_log(s: DhcpServer, requests: list[F.DhcpPacket]) -> bool:
    """dnsmasq logged something about these clients: it is alive and handling them (it may
    have good reasons not to answer, which other rules name)."""
    macs = {norm_mac(r.client_mac) for r in requests}
    return any(norm_mac(e.mac) in macs or (e.event == "no-address-available" and not e.mac) for e in s.log)


def host_entry_missing(pic: Picture):
    for port in pic.guest_ports():
        servers = [s for s in pic.servers_of(port.network_id) if s.host_entries] if port.network_id else []
        no_addr = [e for s in pic.servers for e in s.log
                   if norm_mac(e.mac) == port.mac and (e.event == "no-address-available"
                                                       or (e.detail and "no address available" in e.detail))]
        missing_in = [s for s in servers if not any(norm_mac(e.mac) == port.mac for e in s.host_entries)]
        if not (missing_in or no_addr):
            continue
        if servers and not missing_in and not no_addr:
            continue
        if not missing_in and _acked_after(pic, port.mac, no_addr):
            continue  # refused before its entry came, served once it had come: nothing is wrong now
        ev = []
        if port.api:
            ev.append(cite(port.api, f"the API has port {port.id} {port.mac} {port.ip} on network {port.network_id}"))
        for s in missing_in:
            f0 = s.host_entries[0]
            ev.append(cite(f0, f"{port.mac} is not among the {len(s.host_entries)} entries of "
                               f"{f0.origin.path} on {s.host}"))
        title = f"{port.label} is not in dnsmasq's host file: dnsmasq has no address for it"
        fix = ["find why the update never reached the DHCP agent (agent alive? message bus? disk?)",
               f"force a resync: {AGENT_RESTART} on the network node(s) hosting {port.network_id or 'the network'}"]
        if not missing_in and no_addr:
            # the file on disk has it: what dnsmasq loaded does not
            s = next(x for x in pic.servers if any(e in x.log for e in no_addr[:1]))
            failed = _unread_host_file(s)
            pid = s.process.pid if s.process else "<dnsmasq pid>"
            if failed is not None:
                path, _, why = (failed.detail or "").rpartition(": ")
                title = (f"dnsmasq on {s.host} cannot read its host file ({why or 'error'}): it has no address "
                         f"for {port.label}, nor for any other port")
                ev.insert(0, cite(failed))
                fix = [f"on {s.host}: ls -l {path}  # dnsmasq reads it as its own user (nobody): it must be "
                       f"readable by it; chmod 644 {path}",
                       f"then: kill -HUP {pid}  # dnsmasq reads its files again"]
            elif servers:
                title = (f"{port.label} is in the host file on {s.host}, but dnsmasq has not loaded it "
                         "(not reloaded since the file changed)")
                fix = [f"on {s.host}: kill -HUP {pid}  # dnsmasq reads its files again",
                       "if it recurs: the DHCP agent's reload fails; read its log around the port's creation"]
        ev += [cite(e) for e in no_addr[:3]]
        yield Finding(
            id="host-entry-missing", severity="critical", subject=port.label,
            title=title, evidence=ev, time=first_time(no_addr), fix=fix)
    # a client no port of the evidence names (no API view: a pasted log and host file) that
    # dnsmasq turned away for want of a host entry, and whose MAC the host file lacks. With
    # the API's ports at hand, a MAC none of them has is no port's: a foreign or spoofed
    # client, not a missing entry.
    if any(p.mac for p in pic.of(F.ApiPort)):
        return
    known = {p.mac for p in pic.guest_ports()}
    for s in pic.servers:
        refused: dict[str, list] = {}
        for e in s.log:
            mac = norm_mac(e.mac)
            if mac and mac not in known and (e.event == "no-address-available"
                                              or (e.detail and "no address available" in e.detail)):
                refused.setdefault(mac, []).append(e)
        for mac, evs in refused.items():
            if any(norm_mac(h.mac) == mac for h in s.host_entries):
                continue  # in the file, yet refused: another finding's business (conflict, lease)
            ev = [cite(e) for e in evs[:3]]
            if s.host_entries:
                f0 = s.host_entries[0]
                ev.insert(0, cite(f0, f"{mac} is not among the {len(s.host_entries)} entries of "
                                      f"{f0.origin.path} on {s.host}"))
            yield Finding(
                id="host-entry-missing", severity="critical", subject=mac,
                title=f"{mac} is not in dnsmasq's host file for network {_net(s)}: dnsmasq has no address for it",
                evidence=ev, time=first_time(evs),
                fix=[f"check the port: openstack port list --mac-address {mac} (it must exist, on network {_net(s)})",
                     "find why the update never reached the DHCP agent (agent alive? message bus? disk?)",
                     f"force a resync: {AGENT_RESTART} on {s.host}"])


def _acked_after(pic: Picture, mac: str, refused: list[F.DnsmasqLogEvent]) -> bool:
    """A DHCPACK to `mac` logged after the last of these refusals."""
    last = max((e.time for e in refused if e.time is not None), default=None)
    if last is None:
        return False
    return any(e.event == "DHCPACK" and norm_mac(e.mac) == mac and e.time is not None and e.time > last
               for s in pic.servers for e in s.log)


def _unread_host_file(s: DhcpServer) -> F.DnsmasqLogEvent | None:
    """dnsmasq's last word on its host file, when it was that it could not read it."""
    last = None
    for e in s.log:
        if e.event in ("read-file", "read-failed") and (e.detail or "").split(": ")[0].endswith("/host"):
            last = e
    return last if last is not None and last.event == "read-failed" else None


def host_entry_conflict(pic: Picture):
    for s in pic.servers:
        dup_log = _events(s, "duplicate-host-ip", detail="duplicate dhcp-host")
        ips = Counter(e.ip for e in s.host_entries if e.ip)
        dups = {ip for ip, n in ips.items() if n > 1}
        wrong = []
        for e in s.host_entries:
            port = pic.ports.get(norm_mac(e.mac) or "")
            if port and port.api and port.ip and e.ip and port.ip != e.ip:
                wrong.append((e, port))
        if not (dup_log or dups or wrong):
            continue
        ev = [cite(e) for e in s.host_entries if e.ip in dups][:4]
        ev += [cite(e, f"host file maps {e.mac} to {e.ip}, the API says {p.ip}") for e, p in wrong[:3]]
        ev += [cite(p.api, f"port {p.id} has fixed IP {p.ip}") for _, p in wrong[:1]]
        ev += [cite(e) for e in dup_log[:2]]
        yield Finding(
            id="host-entry-conflict", severity="critical", subject=f"network {_net(s)} on {s.host}",
            title=f"dnsmasq's host file for network {_net(s)} on {s.host} disagrees with the ports",
            evidence=ev, time=first_time(dup_log),
            fix=[f"on {s.host}: {AGENT_RESTART}  # the agent rewrites the host file from the API",
                 "if it comes back: look for two ports with one IP (openstack port list --fixed-ip ip-address=<ip>)"])


def stale_lease(pic: Picture):
    for s in pic.servers:
        log = _events(s, "address-in-use", detail="leased to")
        stale = []
        for le in s.leases:
            port = pic.ports.get(norm_mac(le.mac) or "")
            for other in pic.guest_ports():
                if other.ip == le.ip and other.mac != norm_mac(le.mac) and (port is None or port.ip != le.ip):
                    stale.append((le, other))
        if not (log or stale):
            continue
        ev = [cite(e) for e in log[:3]] + [cite(le, f"leases file gives {le.ip} to {le.mac}, "
                                                    f"but {o.label} owns {o.ip}") for le, o in stale[:3]]
        yield Finding(
            id="stale-lease", severity="critical", subject=f"network {_net(s)} on {s.host}",
            title=f"An address of network {_net(s)} is still leased to an old MAC on {s.host}",
            evidence=ev, time=first_time(log),
            fix=[f"on {s.host}: remove the stale line from {s.leases[0].origin.path if s.leases else 'the leases file'} "
                 f"and restart dnsmasq ({AGENT_RESTART})",
                 "Neutron's force_dhcp_release=true releases leases when ports are deleted"])


def dhcp_lease_limit(pic: Picture):
    for s in pic.servers:
        log = _events(s, "no-leases-left", detail="no leases left")
        refused = [e for e in pic.of(F.LogEvent) if e.signal == "dnsmasq-too-many-leases" and e.origin.host == s.host
                   and (not s.network_id or s.network_id in e.message)]
        p = s.process
        over = p is not None and p.lease_max is not None and len(s.host_entries) > p.lease_max
        conf = [c for c in pic.of(F.ConfigValue) if c.origin.host == s.host and c.key == "dnsmasq_lease_max"
                and c.value.strip().isdigit() and int(c.value) < max(len(s.host_entries), 1)]
        if not (log or over or refused or (conf and not s.processes)):
            continue
        ev = [cite(e) for e in (log + refused)[:3]]
        if over:
            ev.append(cite(p, f"--dhcp-lease-max={p.lease_max} but the host file has {len(s.host_entries)} entries"))
        ev += [cite(c, f"dnsmasq_lease_max = {c.value}, the host file has {len(s.host_entries)} entries")
               for c in conf[:1]]
        yield Finding(
            id="dhcp-lease-limit", severity="critical", subject=f"network {_net(s)} on {s.host}",
            title=f"dnsmasq for network {_net(s)} on {s.host} reached its lease limit",
            evidence=ev, time=first_time(log),
            fix=["raise dnsmasq_lease_max in dhcp_agent.ini (Neutron default 2**24) and restart the DHCP agent"])


def _routers_expected(pic: Picture, network_id: str | None) -> dict[str, str]:
    return {s.id: s.gateway_ip for s in pic.subnets.values()
            if s.network_id == network_id and s.gateway_ip and s.enable_dhcp is not False}


def dhcp_options_wrong(pic: Picture):
    for s in pic.servers:
        problems = []
        if s.opts:
            for sub_id, gw in _routers_expected(pic, s.network_id).items():
                routers = [o for o in s.opts if o.option in ("router", "3") and f"subnet-{sub_id}" in " ".join(o.tags)]
                if not routers:
                    problems.append(cite(s.opts[0], f"no router option for subnet {sub_id} (gateway {gw}) in "
                                                    f"{s.opts[0].origin.path}"))
                elif all(gw not in (o.value or "") for o in routers):
                    problems.append(cite(routers[0], f"router option {routers[0].value!r}, gateway is {gw}"))
        net = pic.networks.get(s.network_id or "")
        for o in s.opts:
            if o.option in ("mtu", "26") and net and net.mtu and o.value.strip().isdigit() and int(o.value) > net.mtu:
                problems.append(cite(o, f"MTU option {o.value} above the network MTU {net.mtu}"))
        p = s.process
        if p and net and net.mtu:
            for flag in p.flags:
                m = re.match(r"--dhcp-option(?:-force)?=option:mtu,(\d+)", flag)
                if m and int(m.group(1)) > net.mtu:
                    problems.append(cite(p, f"{flag} above the network MTU {net.mtu}"))
        # the ACKs themselves
        for pkt in pic.of(F.DhcpPacket):
            if pkt.message_type == "ACK" and pkt.server_id == s.ip and pkt.yiaddr:
                port = pic.ports.get(norm_mac(pkt.client_mac) or "")
                gws = _routers_expected(pic, s.network_id)
                if port and gws and not pkt.routers and not pkt.classless_routes:
                    problems.append(cite(pkt, f"ACK to {pkt.client_mac} carries no router"))
                    break
        if problems:
            yield Finding(
                id="dhcp-options-wrong", severity="warning", subject=f"network {_net(s)} on {s.host}",
                title=f"DHCP options for network {_net(s)} on {s.host} are wrong (router/MTU)",
                evidence=problems[:5],
                fix=[f"on {s.host}: {AGENT_RESTART}  # rewrites the opts file from the subnet",
                     "check the subnet: openstack subnet show <subnet> -c gateway_ip -c host_routes -c dns_nameservers"])


def dhcp_disabled(pic: Picture):
    seen = set()
    for sub in pic.subnets.values():
        if sub.enable_dhcp is False:
            seen.add(sub.network_id)
            yield Finding(
                id="dhcp-disabled", severity="critical", subject=f"subnet {sub.id}",
                title=f"Subnet {sub.cidr or sub.id} has DHCP disabled (enable_dhcp False)",
                evidence=[cite(sub, f"subnet {sub.id} {sub.cidr} enable_dhcp False")],
                fix=[f"openstack subnet set --dhcp {sub.id}", "or configure the guest's address statically (config drive)"])
    for s in pic.servers:
        p = s.process
        if p and not p.dhcp_ranges and s.network_id not in seen:
            yield Finding(
                id="dhcp-disabled", severity="critical", subject=f"network {_net(s)} on {s.host}",
                title=f"dnsmasq for network {_net(s)} on {s.host} has no --dhcp-range: it serves no DHCP",
                evidence=[cite(p, "dnsmasq runs without any --dhcp-range")],
                fix=["openstack subnet set --dhcp <subnet>", AGENT_RESTART])


def dhcp_namespace_broken(pic: Picture):
    for s in _hosted_servers(pic):
        log = _events(s, "no-address-on-interface", detail="which has no address")
        ev = [cite(e) for e in log[:2]]
        ns_listed = any(n.origin.host == s.host for n in pic.of(F.Namespace))
        if ns_listed and not s.namespace_fact and (s.processes or s.host_entries):
            ev.append(cite((s.processes or s.host_entries)[0],
                           f"no namespace qdhcp-{_net(s)} on {s.host}, though the network is served there"))
        iface = s.interface_fact
        if iface is not None:
            if iface.admin_up is False or (iface.state and iface.state.upper() == "DOWN"):
                ev.append(cite(iface, f"{iface.name} in qdhcp-{_net(s)} is {iface.state or 'down'}"))
            if s.interface_addresses_known and not any("." in a and not a.startswith("169.254.")
                                                       for a in iface.addresses):
                ev.append(cite(iface, f"{iface.name} in qdhcp-{_net(s)} has no IPv4 address"))
            else:
                outside = _outside_ranges(s, iface)
                if outside:
                    ev.append(cite(iface, f"{iface.name} in qdhcp-{_net(s)} has {', '.join(outside)}, outside the "
                                          f"subnet(s) dnsmasq serves ({', '.join(_range_nets(s))})"))
        # dnsmasq's own word: a request came in on an interface none of its ranges covers
        norange = [e for e in s.log if e.event == "no-address-available" and not e.mac
                   and "address range" in (e.detail or "")]
        if norange:
            ev += [cite(e) for e in norange[:2]]
            log = log + norange
        if ev:
            yield Finding(
                id="dhcp-namespace-broken", severity="critical", subject=f"qdhcp-{_net(s)} on {s.host}",
                title=f"The DHCP namespace of network {_net(s)} on {s.host} is broken "
                      "(device down, or without an IP in the subnet it serves)",
                evidence=ev, time=first_time(log), hop=f"{s.host} qdhcp-{_net(s)} {s.interface or ''}".strip(),
                fix=[f"on {s.host}: {AGENT_RESTART}  # the agent re-plugs the DHCP port and sets its IP",
                     f"check: ip netns exec qdhcp-{_net(s)} ip addr"])


def _range_nets(s: DhcpServer) -> list[str]:
    """The IPv4 subnets of dnsmasq's --dhcp-range options (`[set:tag,]addr,static|start,...,mask,...`)."""
    out = []
    for p in s.processes[:1]:
        for r in p.dhcp_ranges:
            parts = [x for x in r.split(",") if not x.startswith(("set:", "tag:"))]
            addr = parts[0] if parts else ""
            mask = next((x for x in parts[1:] if x.count(".") == 3 and x.startswith("255.")), None)
            try:
                out.append(str(ipaddress.ip_network(f"{addr}/{mask or '24'}", strict=False)))
            except ValueError:
                continue
    return out


def _outside_ranges(s: DhcpServer, iface: F.Interface) -> list[str]:
    """The interface's IPv4 addresses when none of them lies in a subnet dnsmasq serves."""
    nets = [ipaddress.ip_network(n) for n in _range_nets(s)]
    v4 = [a for a in iface.addresses if "." in a and not a.startswith("169.254.")]
    if not nets or not v4:
        return []
    try:
        inside = any(ipaddress.ip_interface(a).ip in n for a in v4 for n in nets)
    except ValueError:
        return []
    return [] if inside else v4


def dnsmasq_port_conflict(pic: Picture):
    for s in pic.servers:
        log = _events(s, "bind-failed", detail="failed to bind dhcp server socket")
        log += [e for e in pic.of(F.LogEvent) if e.signal == "dnsmasq-bind-failed" and e.origin.host == s.host
                and (not s.network_id or s.network_id in e.message)]
        if not log:
            continue
        yield Finding(
            id="dnsmasq-port-conflict", severity="critical", subject=f"qdhcp-{_net(s)} on {s.host}",
            title=f"dnsmasq for network {_net(s)} on {s.host} cannot bind UDP port 67: another process holds it",
            evidence=[cite(e) for e in log[:3]], time=first_time(log),
            fix=[f"on {s.host}: ip netns exec qdhcp-{_net(s)} ss -lunp 'sport = :67'  # who holds the port",
                 "stop that process, then: " + AGENT_RESTART])


def dhcp_nak(pic: Picture):
    naks = [p for p in pic.of(F.DhcpPacket) if p.message_type == "NAK"]
    lognaks = [e for s in pic.servers for e in s.log if e.event == "DHCPNAK"]
    if not (naks or lognaks):
        return
    by_mac = {}
    for x in naks + lognaks:
        mac = norm_mac(getattr(x, "client_mac", None) or getattr(x, "mac", None)) or "?"
        by_mac.setdefault(mac, []).append(x)
    for mac, items in by_mac.items():
        yield Finding(
            id="dhcp-nak", severity="warning", subject=mac,
            title=f"The DHCP server refused {mac}'s request (DHCPNAK)",
            evidence=[cite(x) for x in items[:3]], time=first_time(items),
            fix=["a NAK after a move or a changed fixed IP is normal once; repeated NAKs mean the host file "
                 "or the lease file disagree with the port: restart the DHCP agent"])


def dnsmasq_respawn_loop(pic: Picture):
    for s in pic.servers:
        starts = _events(s, "started")
        respawns = [e for e in pic.of(F.LogEvent) if e.origin.host == s.host and e.signal == "dnsmasq-respawn"
                    and s.network_id and s.network_id in e.message]
        if len(respawns) >= 3 or len(starts) >= 4:
            ev = [cite(e) for e in (respawns or starts)[-4:]]
            yield Finding(
                id="dnsmasq-respawn-loop", severity="critical", subject=f"network {_net(s)} on {s.host}",
                title=f"dnsmasq for network {_net(s)} on {s.host} keeps dying and being respawned",
                evidence=ev, time=first_time(respawns or starts),
                fix=[f"read why it exits: the dnsmasq log just before each start, and `journalctl | grep dnsmasq` on {s.host}"])


def dhcp_logging_off(pic: Picture):
    for s in pic.servers:
        p = s.process
        if p and not p.log_dhcp and not s.log:
            yield Finding(
                id="dhcp-logging-off", severity="info", subject=f"network {_net(s)} on {s.host}",
                title=f"dnsmasq on {s.host} does not log DHCP: the server side cannot be seen",
                evidence=[cite(p, "dnsmasq runs without --log-dhcp")],
                fix=["point dnsmasq_config_file in dhcp_agent.ini at a file with `log-facility=/var/log/neutron/dnsmasq.log` "
                     "and `log-dhcp`, then restart the DHCP agent"])


def _version(v: str | None) -> tuple[int, ...] | None:
    m = re.match(r"(\d+)\.(\d+)", v or "")
    return (int(m.group(1)), int(m.group(2))) if m else None


def dnsmasq_unicast_renew_bug(pic: Picture):
    by_host: dict[str | None, list[DhcpServer]] = {}
    for s in pic.servers:
        if s.processes:
            by_host.setdefault(s.host, []).append(s)
    versions = {p.origin.host: p.version for p in pic.of(F.PackageVersion) if p.name in ("dnsmasq", "dnsmasq-base")}
    for s in pic.servers:
        for e in _events(s, "started"):
            versions.setdefault(s.host, e.version)
    for host, servers in by_host.items():
        v = _version(versions.get(host))
        if len(servers) > 1 and v and v < (2, 61):
            yield Finding(
                id="dnsmasq-unicast-renew-bug", severity="warning", subject=f"{host}",
                title=f"dnsmasq {versions[host]} with {len(servers)} instances on {host}: unicast renewals are "
                      "answered by only one of them",
                evidence=[cite(s.process) for s in servers[:3]],
                references=["dnsmasq CHANGELOG 2.61: fix for several dnsmasq instances bound to different "
                            "interfaces on one host receiving each other's unicast DHCP (bind-interfaces)"],
                fix=["upgrade dnsmasq to 2.61 or later",
                     "if impossible: long leases (dhcp_lease_duration), force_dhcp_release=true"])


RULES = (dnsmasq_not_running, dnsmasq_unresponsive, namespace_firewall_drops_dhcp, host_entry_missing, host_entry_conflict, stale_lease,
         dhcp_lease_limit, dhcp_options_wrong, dhcp_disabled, dhcp_namespace_broken, dnsmasq_port_conflict, dhcp_nak,
         dnsmasq_respawn_loop, dhcp_logging_off, dnsmasq_unicast_renew_bug)
