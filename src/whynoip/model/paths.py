"""Per port, the capture points on its path and the DHCP messages seen at each.

A capture point is where a pcap or tcpdump text was taken: a host, a namespace and an
interface. Its role on the path is told by Neutron's device names (tap/qbr/qvb/qvo + the
port id, `qdhcp-<net>` namespaces, a DHCP port's tap on br-int) or by what it carried
(VXLAN-encapsulated packets are the underlay; eth0 with the port's own frames is the
guest). Requests travel guest -> server, replies back: the exchange breaks between the
last point that saw a message and the next one that should have."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from whynoip import facts as F
from whynoip.model.picture import Picture, Port, norm_mac, qdhcp_network

REQUESTS = ("DISCOVER", "REQUEST", "INFORM", "DECLINE", "RELEASE")
REPLIES = ("OFFER", "ACK", "NAK")
ORDER = {"guest": 0, "tap": 1, "qbr": 2, "qvb": 3, "qvo": 4, "underlay-compute": 5, "underlay-server": 6,
         "dhcp-tap": 7, "dhcp-ns": 8}


@dataclass(slots=True)
class Point:
    host: str | None
    namespace: str | None
    interface: str | None
    role: str
    packets: list[F.DhcpPacket] = field(default_factory=list)
    source: str | None = None
    # client MAC -> (message types seen, its packets in capture order): a capture of a busy
    # segment holds many clients, and each port's questions are about its own MAC
    by_mac: dict[str | None, tuple[set[str], list[F.DhcpPacket]]] | None = field(default=None, repr=False,
                                                                                 compare=False)

    @property
    def name(self) -> str:
        parts = [self.host or "?"]
        if self.namespace:
            parts.append(self.namespace)
        parts.append(self.interface or "?")
        return " ".join(parts)

    def index(self) -> dict[str | None, tuple[set[str], list[F.DhcpPacket]]]:
        if self.by_mac is None:
            self.by_mac = _index(self.packets)
        return self.by_mac

    def seen(self, mac: str) -> set[str]:
        found = self.index().get(mac)
        return set(found[0]) if found else set()

    def first(self, mac: str, kinds: tuple[str, ...]) -> F.DhcpPacket | None:
        found = self.index().get(mac)
        return next((p for p in found[1] if p.message_type in kinds), None) if found else None


def _index(packets: list[F.DhcpPacket]) -> dict[str | None, tuple[set[str], list[F.DhcpPacket]]]:
    out: dict[str | None, tuple[set[str], list[F.DhcpPacket]]] = {}
    for p in packets:
        mac = norm_mac(p.client_mac)
        entry = out.get(mac)
        if entry is None:
            entry = out[mac] = (set(), [])
        if p.message_type:
            entry[0].add(p.message_type)
        entry[1].append(p)
    return out


@dataclass(slots=True)
class PathView:
    port: Port
    points: list[Point]  # in order guest -> server (one server's branch at the end)
    server_host: str | None = None

    def seen(self, i: int) -> set[str]:
        return self.points[i].seen(self.port.mac)

    def request_break(self) -> tuple[Point, Point | None] | None:
        """(last point a request reached, the next point that missed it)."""
        last = None
        for i, pt in enumerate(self.points):
            if self.seen(i) & set(REQUESTS):
                last = i
            elif last is not None:
                return self.points[last], pt
        return None

    def server_silent(self) -> Point | None:
        """The server-side point that requests reached and no reply ever left."""
        last = self.points[-1]
        if last.role == "dhcp-ns" and last.seen(self.port.mac) & set(REQUESTS) \
                and not any(self.seen(i) & set(REPLIES) for i in range(len(self.points))):
            return last
        return None

    def reply_break(self) -> tuple[Point, Point] | None:
        """(the point nearest the guest that saw a reply, the next one toward the guest that missed it)."""
        for i in range(len(self.points) - 1, 0, -1):
            if self.seen(i) & set(REPLIES) and not self.seen(i - 1) & set(REPLIES):
                return self.points[i], self.points[i - 1]
        return None


def _role(iface: str | None, ns: str | None, host: str | None, pkts: list[F.DhcpPacket], pic: Picture,
          port: Port) -> str | None:
    if qdhcp_network(ns):
        return "dhcp-ns"
    if any(p.vxlan_vni is not None for p in pkts):
        return "underlay-compute" if host == port.host else "underlay-server"
    if iface and port.id and iface[3:] == port.id[:11] and iface[:3] in ("tap", "qbr", "qvb", "qvo"):
        return iface[:3]
    if iface and iface.startswith("tap") and any(
            s.interface and s.interface[3:] == iface[3:] for s in pic.servers):
        return "dhcp-tap"
    if iface and iface.startswith("tap") and any(
            p.device_owner == "network:dhcp" and p.id[:11] == iface[3:] for p in pic.of(F.ApiPort)):
        return "dhcp-tap"
    if iface in ("eth0", "ens3", "ens4") and any(norm_mac(p.src_mac) == port.mac for p in pkts):
        return "guest"
    if iface == "eth0" and not ns and host not in pic.hosts_with(F.Interface):
        return "guest"
    return None


def points(pic: Picture) -> list[Point]:
    by_point: dict[tuple, list[F.DhcpPacket]] = defaultdict(list)
    sources: dict[tuple, str] = {}
    for p in pic.of(F.DhcpPacket):
        key = (p.origin.host, p.origin.namespace, p.origin.interface)
        by_point[key].append(p)
        sources.setdefault(key, p.origin.path)
    for c in pic.of(F.Capture):  # a capture that saw no DHCP: a point where nothing passed
        key = (c.origin.host, c.origin.namespace, c.origin.interface)
        if c.origin.interface and key not in by_point:
            by_point[key] = []
            sources[key] = c.origin.path
    return [Point(h, ns, i, "?", pk, sources[(h, ns, i)]) for (h, ns, i), pk in by_point.items()]


def path_views(pic: Picture) -> list[PathView]:
    """One view per (guest port, DHCP server host) that captures tell anything about.
    Several rules ask: the views are worked out once per picture (a fresh list each time)."""
    views = pic.derived.get("path_views")
    if views is None:
        views = pic.derived["path_views"] = _path_views(pic)
    return list(views)


def _path_views(pic: Picture) -> list[PathView]:
    pts = points(pic)
    views = []
    for port in pic.guest_ports():
        mine = []
        for pt in pts:
            role = _role(pt.interface, pt.namespace, pt.host, pt.packets, pic, port)
            if role is None:
                continue
            if port.mac not in pt.index() and role in ("guest", "tap", "qbr", "qvb", "qvo"):
                # a capture on this port's own device that saw nothing from it still counts
                if not (pt.interface and port.id and pt.interface[3:] == port.id[:11]):
                    continue
            host = pt.host if pt.host or role != "guest" else (port.guest or "guest")
            mine.append(Point(host, pt.namespace, pt.interface, role, pt.packets, pt.source, pt.index()))
        if not mine:
            continue
        # a server branch belongs to a host that serves DHCP: its capture points say so, or the
        # servers seen in the state do; an underlay capture on another compute node is not one
        serving = {s.host for s in pic.servers if s.network_id in (port.network_id, None)}
        serving |= {p.host for p in mine if p.role in ("dhcp-tap", "dhcp-ns")}
        mine = [p for p in mine if p.role != "underlay-server" or p.host in serving]
        server_hosts = sorted({p.host for p in mine if p.role in ("underlay-server", "dhcp-tap", "dhcp-ns")},
                              key=str) or [None]
        for sh in server_hosts:
            branch = [p for p in mine if p.role in ("guest", "tap", "qbr", "qvb", "qvo", "underlay-compute")
                      or p.host == sh]
            branch.sort(key=lambda p: ORDER[p.role])
            if any(pt.seen(port.mac) for pt in branch):  # captures of this port's own attempt
                views.append(PathView(port, branch, sh))
    return views
