"""Data-path findings: where on the port's path the DHCP exchange breaks, and why.

The hop analysis (model.paths) says between which capture points a request or a reply
disappeared; the state of that stretch (OVS tags and flows, iptables counters, links)
says why."""

from __future__ import annotations

import re

from whynoip import facts as F
from whynoip.findings import Finding
from whynoip.model.paths import REPLIES, REQUESTS, PathView, path_views
from whynoip.model.picture import Picture, Port, norm_mac, qdhcp_network
from whynoip.rules._util import cite, cite_rule, port_in, unique_rules

DEAD_VLAN = 4095
VXLAN_OVERHEAD = 50


def _port_ovs(pic: Picture, port: Port) -> list[F.OvsPort]:
    return [o for o in pic.of(F.OvsPort) if port.id and o.name == port.device("qvo")] or port.ovs_ports


def _stretch(a, b) -> str:
    return f"between {a.name} and {b.name}" if b is not None else f"after {a.name}"


def _foreign_requests(pic: Picture, port: Port) -> dict[str, list[F.DhcpPacket]]:
    """DHCP requests on this port's own devices (tap/qbr/qvb/qvo) from a MAC that is not the
    port's: the guest is sending as someone else. Keyed by the device's role."""
    out: dict[str, list[F.DhcpPacket]] = {}
    if not port.id:
        return out
    by_iface = _requests_by_interface(pic)
    mine = [(i, p) for dev in ("tap", "qbr", "qvb", "qvo") for i, p in by_iface.get(dev + port.id[:11], ())]
    for _, p in sorted(mine, key=lambda ip: ip[0]):  # in capture order, as read
        if norm_mac(p.src_mac or p.client_mac) != port.mac:
            out.setdefault(p.origin.interface[:3], []).append(p)
    return out


def _requests_by_interface(pic: Picture) -> dict[str, list[tuple[int, F.DhcpPacket]]]:
    """The DHCP requests of every capture, by the interface they were captured on, with
    their place among all packets; worked out once per picture (asked for each port)."""
    found = pic.derived.get("requests_by_interface")
    if found is None:
        found = {}
        for i, p in enumerate(pic.of(F.DhcpPacket)):
            if p.message_type in REQUESTS and p.origin.interface:
                found.setdefault(p.origin.interface, []).append((i, p))
        pic.derived["requests_by_interface"] = found
    return found  # type: ignore[return-value]


def anti_spoofing_drop(pic: Picture):
    for port in pic.guest_ports():
        foreign = _foreign_requests(pic, port)
        if not foreign:
            continue
        pkts = next(iter(foreign.values()))
        macs = sorted({norm_mac(p.src_mac or p.client_mac) for p in pkts})
        spoof = [r for r in pic.of(F.IptablesRule) if r.origin.host == port.host
                 and r.chain.endswith(f"s{port.id[:10]}") and r.target == "DROP"]
        ev = [cite(pkts[0], f"requests from MAC {', '.join(macs)} on {pkts[0].origin.interface}; the port's MAC is "
                            f"{port.mac}")]
        ev += [cite(r) for r in spoof if (r.packets or 0) > 0][:2]
        yield Finding(id="anti-spoofing-drop", severity="critical", subject=port.label,
                      title=TITLES["anti-spoofing-drop"].format(who=port.label),
                      hop=f"between {port.host} {port.device('qvb')} and {port.device('qvo')}",
                      evidence=ev, fix=FIXES["anti-spoofing-drop"])


def guest_not_requesting(pic: Picture):
    yield from _console_not_requesting(pic)
    for v in path_views(pic):
        if _foreign_requests(pic, v.port):
            continue  # it does request, as another MAC: anti-spoofing's case
        guest_side = [p for p in v.points if p.role in ("guest", "tap", "qbr", "qvb", "qvo")]
        if guest_side and not any(pt.seen(v.port.mac) & set(REQUESTS) for pt in v.points):
            ev = [cite(pt.packets[0], f"capture on {pt.name}: no DHCP request from {v.port.mac}") if pt.packets
                  else None for pt in guest_side]
            yield Finding(
                id="guest-not-requesting", severity="critical", subject=v.port.label,
                title=f"No DHCP request ever left {v.port.label}",
                hop=guest_side[0].name, evidence=[e for e in ev if e],
                fix=["look at the guest's console log (openstack console log show <server>): is the interface up, "
                     "does the image run a DHCP client on it?"])
            return


def _console_not_requesting(pic: Picture):
    """The guest's console says its link is down: nothing it sends can leave."""
    by_guest: dict[str, list[F.ConsoleEvent]] = {}
    for c in pic.of(F.ConsoleEvent):
        if c.guest:
            by_guest.setdefault(c.guest, []).append(c)
    for guest, events in by_guest.items():
        down = [c for c in events if c.event == "interface-down"]
        if not down or any(c.event in ("lease-obtained", "offer-received", "ack-received") for c in events):
            continue
        port = next((p for p in pic.guest_ports() if p.guest == guest), None)
        if port is not None and any(norm_mac(p.client_mac) == port.mac and p.message_type in REQUESTS
                                    for p in pic.of(F.DhcpPacket)):
            continue  # requests did leave: the link was down only for a while
        label = port.label if port else guest
        yield Finding(id="guest-not-requesting", severity="critical", subject=label,
                      title=f"No DHCP request can leave {label}: its network interface is down",
                      hop=f"{guest} eth0", evidence=[cite(c) for c in down[:2]],
                      fix=[f"inside {guest}: ip link set eth0 up (and make the image bring it up at boot, "
                           "e.g. cloud-init network config or /etc/network/interfaces)"])


def _why_request_lost(pic: Picture, v: PathView, a, b):
    """Findings for a request that reached point a and not point b."""
    port = v.port
    ovs = _port_ovs(pic, port)
    if a.role in ("guest", "tap", "qbr", "qvb") and (b is None or b.role in ("tap", "qbr", "qvb", "qvo")):
        # inside the compute node's bridge: the firewall or the plug
        spoof = [r for r in pic.of(F.IptablesRule) if r.origin.host == port.host and port.id
                 and r.chain.endswith(f"s{port.id[:10]}") and r.target == "DROP" and (r.packets or 0) > 0]
        if spoof:
            frames = [pk for pk in a.packets if norm_mac(pk.client_mac) == port.mac]
            src = {norm_mac(pk.src_mac) for pk in frames if pk.src_mac}
            ev = [cite(r) for r in spoof[:2]]
            if src - {port.mac}:
                ev.append(cite(frames[0], f"frames leave the guest from MAC {', '.join(sorted(src))}, "
                                          f"the port's MAC is {port.mac}"))
            yield "anti-spoofing-drop", ev
            return
        egress = [r for r in pic.of(F.IptablesRule) if r.origin.host == port.host and port.id
                  and r.chain.endswith(f"o{port.id[:10]}") and r.target == "DROP" and (r.packets or 0) > 0]
        if egress:
            yield "security-group-drops-dhcp", [cite(r) for r in egress[:3]]
            return
        foreign = _host_firewall_drops(pic, port.host)
        if foreign:
            # no Neutron chain: a restart of the agent leaves it; it goes by hand
            yield "security-group-drops-dhcp", [cite_rule(r) for r in foreign[:3]] + [
                ("fix", f"on {port.host}: iptables -D {r.chain} {r.spec}") for r in foreign[:3]] + [
                ("fix", f"then find what put it there (a host firewall: firewalld, ufw, a config tool); "
                        f"Neutron's own rules live in neutron-* chains")]
            return
        yield "vif-plug-missing", _plug_evidence(pic, port)
        return
    if a.role == "qvo" or (a.role in ("guest", "tap", "qbr", "qvb") and b and b.role.startswith("underlay")):
        dead = [o for o in ovs if o.tag == DEAD_VLAN or o.tag is None and o.bridge == "br-int"]
        if dead:
            yield "port-dead-vlan", [cite(o, f"Port {o.name} tag: {o.tag or 'none'} (dead VLAN)") for o in dead]
            return
        yield "l2-path-broken", _flow_evidence(pic, port.host, port)
        return
    if a.role.startswith("underlay") or a.role == "dhcp-tap":
        host = b.host if b else a.host
        yield "l2-path-broken", _dhcp_port_evidence(pic, host, port) + _flow_evidence(pic, host, port)
        return
    yield "l2-path-broken", []


def _plug_evidence(pic: Picture, port: Port) -> list:
    """The state of the port's devices on its host, when `ip link` is in the evidence: which
    are missing or down, or that all are there and up (then the plug is not what is wrong
    and whatever drops on the bridge left no trace: ebtables, a rule without counters)."""
    if not port.host or port.host not in pic.hosts_with(F.Interface):
        return []
    names = {i.name: i for i in pic.on_host(F.Interface, port.host)}
    devices = [d for d in (port.device(x) for x in ("tap", "qbr", "qvb", "qvo")) if d]
    missing = [d for d in devices if d not in names]
    down = [names[d] for d in devices if d in names and names[d].admin_up is False]
    ev = [cite(i, f"{i.name} on {port.host} is down") for i in down]
    if missing:
        any_iface = next(iter(names.values()))
        ev.append(cite(any_iface, f"{', '.join(missing)} missing from ip link on {port.host}"))
    elif not down and devices:
        ev.append(cite(names[devices[-1]], f"{', '.join(devices)} are all present and up on {port.host}: the "
                                           "plug looks whole; look for what drops on the bridge (ebtables -L, "
                                           "iptables rules without counters, br_netfilter)"))
    return ev


def _host_firewall_drops(pic: Picture, host: str | None) -> list[F.IptablesRule]:
    """Rules no Neutron chain holds that drop DHCP requests crossing the host's bridges (a
    host firewall, a rule added by hand): DROP or REJECT of UDP to port 67 that counted
    packets (or whose counters are not known)."""
    return [r for r in unique_rules(pic.of(F.IptablesRule))
            if r.origin.host == host and r.table == "filter" and not r.chain.startswith("neutron-")
            and r.target in ("DROP", "REJECT") and not r.negated and r.protocol == "udp"
            and r.dport and port_in(r.dport, 67) and r.origin.namespace is None
            and (r.packets is None or r.packets > 0)]


_MOD_VLAN_RE = re.compile(r"mod_vlan_vid:(\d+)")


def _dhcp_port_evidence(pic: Picture, host: str | None, port: Port) -> list:
    """What is wrong with the DHCP port on its bridge: missing from br-int (the DHCP agent
    plugs it), or on another tag than the local VLAN br-tun gives the network on that node
    (table 4: tunnel id -> mod_vlan_vid; traffic from the tunnel goes to that VLAN only)."""
    net = pic.networks.get(port.network_id or "")
    if not net:
        return []
    ovs_ports = [o for o in pic.of(F.OvsPort) if o.origin.host == host]
    if ovs_ports:
        for s in pic.servers:
            if s.host == host and s.network_id == net.id and s.interface and not any(
                    o.name[3:] == s.interface[3:] and o.name.startswith(("tap", "ns-")) for o in ovs_ports):
                dev = "tap" + s.interface[3:]
                return [cite(ovs_ports[0], f"the DHCP port {dev} of network {net.id} is on no bridge of {host} "
                                           f"(ovs-vsctl show): requests have nowhere to go"),
                        ("fix", f"on {host}: systemctl restart neutron-dhcp-agent  # it plugs its port into br-int "
                                f"again"),
                        ("fix", f"check: ovs-vsctl port-to-br {dev}")]
    if net.segmentation_id is None:
        return []
    seg = net.segmentation_id
    local = {m.group(1) for f in pic.of(F.OvsFlow) if f.origin.host == host and f.bridge == "br-tun"
             and f.table == 4 and f.match.get("tun_id") in (hex(seg), str(seg))
             and (m := _MOD_VLAN_RE.search(f.actions or ""))}
    if len(local) != 1:
        return []
    vlan = local.pop()
    ev = []
    for s in pic.servers:
        if s.host != host or s.network_id != net.id or not s.interface:
            continue
        for o in pic.of(F.OvsPort):
            if o.origin.host == host and o.name[3:] == s.interface[3:] and o.name.startswith(("tap", "ns-")) \
                    and o.tag is not None and str(o.tag) != vlan:
                ev.append(cite(o, f"the DHCP port {o.name} on {host} has tag {o.tag}, but br-tun puts network "
                                  f"{net.id} on local VLAN {vlan}: requests from the tunnel never reach it"))
    return ev


TUNNEL_TYPES = ("vxlan", "gre", "geneve")


def _tunnel_evidence(pic: Picture, host: str | None) -> list:
    """Tunnels `host` lacks: each other node's tunnel ports name its own address (local_ip);
    a node whose br-tun has no tunnel port to that address cannot reach it."""
    mine = [o for o in pic.of(F.OvsPort) if o.origin.host == host and o.bridge is not None]
    if not mine:
        return []  # no ovs-vsctl show of that node: nothing to say
    remotes = {o.options.get("remote_ip") for o in mine if o.interface_type in TUNNEL_TYPES}
    local = {o.options.get("local_ip") for o in mine if o.interface_type in TUNNEL_TYPES} - {None}
    peers: dict[str, F.OvsPort] = {}
    for o in pic.of(F.OvsPort):
        ip = o.options.get("local_ip")
        if o.origin.host != host and o.interface_type in TUNNEL_TYPES and ip and ip not in local:
            peers.setdefault(ip, o)
    missing = sorted(ip for ip in peers if ip not in remotes)
    if not missing:
        return []
    where = next((o for o in mine if o.bridge == "br-tun"), mine[0])
    return [cite(where, f"br-tun on {host} has no tunnel port to {ip} ({peers[ip].origin.host}), which has "
                        f"one to it: they cannot reach each other") for ip in missing]


def _underlay_evidence(pic: Picture, hosts: list[str | None]) -> list:
    """The interface holding a node's tunnel address (local_ip), when it is down."""
    ev = []
    for host in dict.fromkeys(hosts):
        local = {o.options.get("local_ip") for o in pic.of(F.OvsPort)
                 if o.origin.host == host and o.interface_type in TUNNEL_TYPES} - {None}
        ifaces: dict[str, list[F.Interface]] = {}  # ip addr, ip link, ... each list the same links
        for i in pic.on_host(F.Interface, host):
            if i.origin.namespace is None:
                ifaces.setdefault(i.name, []).append(i)
        for name, seen in ifaces.items():
            if not any(a.split("/")[0] in local for i in seen for a in i.addresses):
                continue
            # the address may sit on an OVS bridge (br-phy, br-ex): its physical port carries it too
            names = [name] + [o.name for o in pic.of(F.OvsPort) if o.origin.host == host and o.bridge == name
                              and o.name != name and o.name in ifaces]
            for d in dict.fromkeys(names):
                down = next((i for i in ifaces[d] if i.admin_up is False or (i.state or "").upper() == "DOWN"), None)
                if down is not None:
                    ev.append(cite(down, f"{d} on {host}, which carries its tunnels ({', '.join(sorted(local))}), "
                                         f"is {'down' if down.admin_up is False else down.state}"))
                    ev.append(("fix", f"on {host}: ip link set {d} up  # then its link: ethtool {d}; "
                                      f"ip -s link show {d}"))
    return ev


def _flow_evidence(pic: Picture, host: str | None, port: Port) -> list:
    servers = [s.host for s in pic.servers if s.network_id == port.network_id]
    ev = _underlay_evidence(pic, [port.host, host, *servers]) + _tunnel_evidence(pic, host)
    flows = [f for f in pic.of(F.OvsFlow) if f.origin.host == host]
    tun = [f for f in flows if f.bridge == "br-tun"]
    if pic.hosts_with(F.OvsFlow) and host in pic.hosts_with(F.OvsFlow) and not flows:
        ev.append(f"no flows at all on {host}'s bridges (ovs-vswitchd restarted and the agent did not resync?)")
    net = pic.networks.get(port.network_id or "")
    if net and net.segmentation_id is not None and tun:
        if not any(f.table == 4 and f.match.get("tun_id") in (hex(net.segmentation_id), str(net.segmentation_id))
                   for f in tun):
            ev.append(cite(tun[0], f"br-tun on {host} has no table 4 flow for tunnel id "
                                   f"{hex(net.segmentation_id)} (network {net.id})"))
    drops = [f for f in flows if f.actions == "drop" and (f.n_packets or 0) > 0 and f.priority == 0 and f.bridge == "br-tun"]
    ev += [cite(f) for f in drops[:2]]
    return ev


def _why_reply_lost(pic: Picture, v: PathView, a, b):
    port = v.port
    if a.role in ("qvo", "qvb", "qbr", "tap") and b.role in ("qvb", "qbr", "tap", "guest"):
        ingress = [r for r in pic.of(F.IptablesRule) if r.origin.host == port.host and port.id
                   and r.chain.endswith(f"i{port.id[:10]}")]
        drops = [r for r in ingress if r.target == "DROP" and (r.packets or 0) > 0]
        allows = [r for r in ingress if r.target == "RETURN" and r.sport == "67" and r.dport == "68"]
        fallback = [r for r in pic.of(F.IptablesRule) if r.origin.host == port.host
                    and r.chain.endswith("sg-fallback") and r.target == "DROP" and (r.packets or 0) > 0]
        ev = [cite(r) for r in drops[:2]]
        if ingress and not allows:
            ev.append(cite(ingress[0], f"chain {ingress[0].chain} has no RETURN rule for udp 67->68"))
        ev += [cite(r) for r in fallback[:1]]
        yield "security-group-drops-dhcp", ev
        return
    if a.role.startswith("underlay") or a.role in ("dhcp-tap", "dhcp-ns", "qvo"):
        dead = [o for o in _port_ovs(pic, port) if o.tag == DEAD_VLAN]
        if dead:
            yield "port-dead-vlan", [cite(o) for o in dead]
            return
        yield "l2-path-broken", _flow_evidence(pic, b.host, port)
        return
    yield "l2-path-broken", []


TITLES = {
    "anti-spoofing-drop": "Frames from {who} are dropped by anti-spoofing: they do not carry the port's MAC/IP",
    "security-group-drops-dhcp": "The firewall on {host} drops DHCP for {who}",
    "vif-plug-missing": "{who}'s VIF is not fully plugged on {host}",
    "port-dead-vlan": "{who}'s OVS port on {host} sits on the dead VLAN 4095",
    "l2-path-broken": "The L2 path of {who} is broken {where}",
}
FIXES = {
    "anti-spoofing-drop": ["make the guest use the port's MAC and IP, or add them as allowed_address_pairs: "
                           "openstack port set --allowed-address ip-address=<ip>,mac-address=<mac> <port>"],
    "security-group-drops-dhcp": ["on {host}: restart neutron-openvswitch-agent (it rebuilds the port's chains)",
                                  "remove any hand-made rule that drops udp 67/68: iptables-save -c | grep -E '67|68'"],
    "vif-plug-missing": ["hard reboot the instance (openstack server reboot --hard <server>) so Nova plugs the VIF again",
                         "check: ip link show | grep {short}; brctl show qbr{short}"],
    "port-dead-vlan": ["find why the port is dead: openstack port show <port> (binding:vif_type, admin_state_up); "
                       "neutron-openvswitch-agent log on {host}", "restart neutron-openvswitch-agent on {host}"],
    "l2-path-broken": ["on {host}: restart neutron-openvswitch-agent (reinstalls flows and tags)",
                       "trace it: ovs-appctl ofproto/trace br-int in_port=<qvo>,dl_src={mac},dl_dst=ff:ff:ff:ff:ff:ff,"
                       "udp,nw_src=0.0.0.0,nw_dst=255.255.255.255,udp_src=68,udp_dst=67"],
}


def path_breaks(pic: Picture):
    """Where the exchange breaks on each port's path, and the finding that explains it."""
    done = set()
    for v in path_views(pic):
        port = v.port
        req = v.request_break()
        rep = v.reply_break()
        if req is not None:
            a, b = req
            # a request that reached the server is a server matter (server rules), unless no reply came back
            for fid, ev in _why_request_lost(pic, v, a, b):
                yield _finding(fid, ev, port, a, b, "request", done)
                break
        elif rep is not None:
            a, b = rep
            for fid, ev in _why_reply_lost(pic, v, a, b):
                yield _finding(fid, ev, port, a, b, "reply", done)
                break


def _finding(fid: str, ev: list, port: Port, a, b, what: str, done: set) -> Finding | None:
    host = (b.host if b is not None and fid == "l2-path-broken" else None) or port.host or a.host
    where = _stretch(a, b)
    texts = [e for e in ev if isinstance(e, str)]
    own_fix = [e[1] for e in ev if isinstance(e, tuple)]  # ("fix", text): instead of the usual fixes
    ev = [e for e in ev if not isinstance(e, (str, tuple))]
    lost = a.first(port.mac, REQUESTS if what == "request" else REPLIES)
    if lost is not None:
        ev.insert(0, cite(lost, f"the {what} ({lost.message_type}) is seen on {a.name} "
                                f"but not on {b.name if b else 'the next hop'}"))
    fmt = {"who": port.label, "host": host or "?", "where": where, "short": port.short or "", "mac": port.mac}
    f = Finding(id=fid, severity="critical", subject=port.label, title=TITLES[fid].format(**fmt),
                evidence=ev, hop=where, fix=(own_fix or [x.format(**fmt) for x in FIXES[fid]]) + texts)
    if f.key in done:
        return None
    done.add(f.key)
    return f


def state_checks(pic: Picture):
    """Data-path faults visible in the state alone, without captures."""
    for port in pic.guest_ports():
        # `ovs-vsctl show` carries the tag but no iface-id: its port is found by its qvo name
        dead = [o for o in _port_ovs(pic, port) if o.tag == DEAD_VLAN]
        if dead:
            yield Finding(id="port-dead-vlan", severity="critical", subject=port.label,
                          title=TITLES["port-dead-vlan"].format(who=port.label, host=port.host or "?"),
                          evidence=[cite(o, f"Port {o.name} tag: {o.tag}") for o in dead],
                          fix=[x.format(host=port.host or "?") for x in FIXES["port-dead-vlan"]])
        flows = _missing_tunnel_flows(pic, port)
        if flows:
            fmt = {"who": port.label, "host": port.host, "where": f"in br-tun on {port.host}",
                   "mac": port.mac, "short": port.short or ""}
            yield Finding(id="l2-path-broken", severity="critical", subject=port.label,
                          title=TITLES["l2-path-broken"].format(**fmt), evidence=flows,
                          fix=[x.format(**fmt) for x in FIXES["l2-path-broken"]])
        if port.id and port.host and port.host in pic.hosts_with(F.Interface) and port.api and \
                (port.api.device_owner or "").startswith("compute:"):
            names = {i.name: i for i in pic.on_host(F.Interface, port.host)}
            missing = [d for d in (port.device(x) for x in ("tap", "qbr", "qvb", "qvo")) if d not in names]
            down = [names[d] for d in (port.device(x) for x in ("tap", "qbr", "qvb", "qvo"))
                    if d in names and names[d].admin_up is False]
            if missing or down:
                ev = [cite(port.api, f"port {port.id} is bound to {port.host}")]
                ev += [cite(i, f"{i.name} is down") for i in down]
                if missing:
                    anyi = next(iter(names.values()))
                    ev.append(cite(anyi, f"{', '.join(missing)} missing from ip link on {port.host}"))
                yield Finding(id="vif-plug-missing", severity="critical", subject=port.label,
                              title=TITLES["vif-plug-missing"].format(who=port.label, host=port.host),
                              evidence=ev, fix=[x.format(short=port.short) for x in FIXES["vif-plug-missing"]])


def _missing_tunnel_flows(pic: Picture, port: Port) -> list:
    """Evidence that the port's node cannot tunnel its network, from the flows alone: br-tun
    has flows, the DHCP servers are elsewhere, and the network's tunnel id has no table 4
    flow (tunnel -> local VLAN) or the port's local VLAN no table 22 flow (VLAN -> tunnels)."""
    net = pic.networks.get(port.network_id or "")
    if not port.host or not net or net.segmentation_id is None:
        return []
    servers = {s.host for s in pic.servers if s.network_id == net.id and s.host}
    if not servers or servers <= {port.host}:
        return []
    tun = [f for f in pic.of(F.OvsFlow) if f.origin.host == port.host and f.bridge == "br-tun"]
    if not tun:
        return []
    ev = []
    seg = net.segmentation_id
    if not any(f.table == 4 and f.match.get("tun_id") in (hex(seg), str(seg)) for f in tun):
        ev.append(cite(tun[0], f"br-tun on {port.host} has no table 4 flow for tunnel id {hex(seg)} (network {net.id})"))
    tags = {o.tag for o in _port_ovs(pic, port) if o.tag is not None and o.tag != DEAD_VLAN}
    for tag in sorted(tags):
        if not any(f.table == 22 and f.match.get("dl_vlan") == str(tag) for f in tun):
            ev.append(cite(tun[0], f"br-tun on {port.host} has no table 22 flow for the port's local VLAN {tag}"))
    return ev


def udp_checksum_bad(pic: Picture):
    # A capture on the sender's own device shows checksums the NIC has not filled in yet
    # (tx offload): normal there. Only replies seen on their way count.
    server_devs = {(s.host, s.interface) for s in pic.servers if s.interface}
    bad = [p for p in pic.of(F.DhcpPacket) if p.udp_checksum_ok is False and p.message_type in REPLIES
           and not qdhcp_network(p.origin.namespace)
           and (p.origin.host, p.origin.interface) not in server_devs]
    if not bad:
        return
    by_point = {}
    for p in bad:
        by_point.setdefault((p.origin.host, p.origin.namespace, p.origin.interface), []).append(p)
    ev = [cite(ps[0], f"{len(ps)} replies with a bad UDP checksum on "
                      f"{' '.join(x for x in k if x)}") for k, ps in by_point.items()][:4]
    yield Finding(id="udp-checksum-bad", severity="critical", subject=", ".join(sorted({p.client_mac or "?" for p in bad})),
                  title="DHCP replies carry bad UDP checksums (checksum offload) and the guest drops them",
                  evidence=ev,
                  fix=["turn off tx checksum offload where the replies are made or first bridged, e.g. "
                       "ip netns exec qdhcp-<net> ethtool -K <ns-/tap-device> tx off",
                       "or add the iptables CHECKSUM fill rule in the qdhcp namespace (as older Neutron did): "
                       "iptables -t mangle -A POSTROUTING -p udp --dport 68 -j CHECKSUM --checksum-fill"])


def mtu_mismatch(pic: Picture):
    advertised = {}
    for s in pic.servers:
        for p in s.processes:
            for flag in p.flags:
                if flag.startswith("--dhcp-option-force=option:mtu,") or flag.startswith("--dhcp-option=option:mtu,"):
                    advertised[(s.host, s.network_id)] = (int(flag.rsplit(",", 1)[1]), p)
    for pkt in pic.of(F.DhcpPacket):
        if pkt.message_type == "ACK" and pkt.mtu and pkt.vxlan_vni is None:
            advertised.setdefault(("ack", pkt.server_id), (pkt.mtu, pkt))
    if not advertised:
        return
    # the underlay: what carries the tunnels on each host
    underlay = []
    for port in pic.of(F.OvsPort):
        if port.interface_type in ("vxlan", "gre", "geneve") and port.options.get("local_ip"):
            local = port.options["local_ip"]
            for i in pic.on_host(F.Interface, port.origin.host):
                if any(a.split("/")[0] == local for a in i.addresses) and i.mtu:
                    underlay.append((i, port.interface_type))
    for (host, net), (mtu, fact) in advertised.items():
        for iface, kind in underlay:
            overhead = VXLAN_OVERHEAD if kind == "vxlan" else 42
            if mtu + overhead > iface.mtu:
                yield Finding(
                    id="mtu-mismatch", severity="warning", subject=f"network {net or '?'}",
                    title=f"Guests are told MTU {mtu}, but the {kind} underlay on {iface.origin.host} carries only "
                          f"{iface.mtu - overhead}",
                    evidence=[cite(fact, f"advertised MTU {mtu}"),
                              cite(iface, f"{iface.name} on {iface.origin.host} (tunnel endpoint) has MTU {iface.mtu}")],
                    fix=["raise the underlay MTU to at least advertised + 50 (VXLAN), or lower the network's MTU: "
                         "openstack network set --mtu <n> <network>; guests pick it up at their next renewal"])
                return


def rogue_dhcp_server(pic: Picture):
    known = pic.server_ips()
    if not known:
        return
    rogue = {}
    for p in pic.of(F.DhcpPacket):
        if p.message_type in ("OFFER", "ACK", "NAK") and p.server_id and p.server_id not in known:
            rogue.setdefault(p.server_id, []).append(p)
    for sid, pkts in rogue.items():
        yield Finding(id="rogue-dhcp-server", severity="critical", subject=sid,
                      title=f"A DHCP server that is no Neutron DHCP port answers on the segment: {sid}",
                      evidence=[cite(p) for p in pkts[:3]],
                      fix=[f"find it: the OFFER's source MAC {pkts[0].src_mac or '?'} -> openstack port list --mac-address <mac>",
                           "stop the DHCP server inside that instance; Neutron's port security "
                           "('Prevent DHCP Spoofing by VM') blocks it when enabled on its port"])


def dhcp_server_silent(pic: Picture):
    """From the client side: a server that gets requests and never answers, while others may."""
    for s in pic.servers:
        if not s.ip:
            continue
        answered = {q.xid for q in pic.of(F.DhcpPacket) if q.message_type in ("ACK", "NAK") and q.server_id == s.ip}
        unanswered = [p for p in pic.of(F.DhcpPacket) if p.message_type == "REQUEST"
                      and (p.server_id == s.ip or p.dst_ip == s.ip) and p.xid not in answered]
        views = [v for v in path_views(pic) if v.server_host == s.host]
        ns_silent = [pt for v in views for pt in v.points if pt.role == "dhcp-ns" and pt.first(v.port.mac, REQUESTS)
                     and not pt.seen(v.port.mac) & set(REPLIES)]
        client_side = [p for p in pic.of(F.DhcpPacket) if p.message_type == "DISCOVER" and p.vxlan_vni is None]
        offers_from_me = [p for p in pic.of(F.DhcpPacket) if p.message_type == "OFFER" and p.server_id == s.ip]
        if unanswered or ns_silent or (client_side and views and not offers_from_me
                                       and any(pt.role == "dhcp-ns" for v in views for pt in v.points)):
            ev = [cite(p, f"REQUEST to server {s.ip} xid 0x{(p.xid or 0):08x} unanswered") for p in unanswered[:2]]
            ev += [cite(pt.packets[0], f"requests reach {pt.name} and no reply leaves it") for pt in ns_silent[:1]]
            yield Finding(id="dhcp-server-silent", severity="critical", subject=s.ip,
                          title=f"DHCP server {s.ip} ({s.host}) answers nothing",
                          evidence=ev, hop=f"{s.host} {s.namespace or ''} {s.interface or ''}".strip(),
                          fix=[f"look at dnsmasq on {s.host}: ps -o pid,stat,args -C dnsmasq; "
                               f"ip netns exec {s.namespace or 'qdhcp-<net>'} ss -lunp 'sport = :67'"])


RULES = (anti_spoofing_drop, guest_not_requesting, path_breaks, state_checks, udp_checksum_bad, mtu_mismatch, rogue_dhcp_server,
         dhcp_server_silent)
