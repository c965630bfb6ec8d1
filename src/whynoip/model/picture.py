"""Join facts into networks, DHCP servers, ports and their paths."""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field

import msgspec

from whynoip import facts as F

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
DEVICE_RE = re.compile(r"^(tap|qbr|qvb|qvo|ns-)([0-9a-f]{8}-[0-9a-f]{2})$")
# `qdhcp-<network id>`, also with a prefix before it (a deployment or a test bed that
# names its namespaces `<prefix>-qdhcp-<id>`)
QDHCP_RE = re.compile(r"(?:^|-)qdhcp-(\S+)$")


def qdhcp_network(namespace: str | None) -> str | None:
    """The network id of a DHCP namespace's name, else None."""
    m = QDHCP_RE.search(namespace) if namespace and "qdhcp-" in namespace else None
    return m.group(1) if m else None


def host_of(fact: F.Fact) -> str | None:
    return fact.origin.host


def norm_mac(mac: str | None) -> str | None:
    return mac.lower() if mac else None


@dataclass(slots=True)
class DhcpServer:
    network_id: str | None
    host: str | None
    namespace: str | None = None
    interface: str | None = None
    ip: str | None = None
    interface_fact: F.Interface | None = None
    interface_addresses_known: bool = False  # interface_fact comes from a listing of addresses
    processes: list[F.DnsmasqProcess] = field(default_factory=list)
    host_entries: list[F.HostEntry] = field(default_factory=list)
    opts: list[F.OptsEntry] = field(default_factory=list)
    leases: list[F.LeaseEntry] = field(default_factory=list)
    log: list[F.DnsmasqLogEvent] = field(default_factory=list)
    namespace_fact: F.Namespace | None = None
    _details: list[str | None] | None = field(default=None, repr=False, compare=False)

    def log_details(self) -> list[str | None]:
        """The `detail` of each log event, lower-cased (rules look for dnsmasq's words in them)."""
        if self._details is None or len(self._details) != len(self.log):
            self._details = [e.detail.lower() if e.detail else None for e in self.log]
        return self._details

    @property
    def name(self) -> str:
        return f"{self.ip or '?'} on {self.host or '?'}"

    @property
    def process(self) -> F.DnsmasqProcess | None:
        # ps shows parent and child: the one whose pid the pid file names, else the first
        return self.processes[0] if self.processes else None


@dataclass(slots=True)
class Port:
    id: str | None
    mac: str
    ip: str | None = None
    network_id: str | None = None
    host: str | None = None
    api: F.ApiPort | None = None
    ovs_ports: list[F.OvsPort] = field(default_factory=list)
    guest: str | None = None

    @property
    def short(self) -> str | None:
        return self.id[:11] if self.id else None

    def device(self, prefix: str) -> str | None:
        return f"{prefix}{self.id[:11]}" if self.id else None

    @property
    def label(self) -> str:
        if self.guest:
            return f"{self.guest} ({self.mac})"
        return f"port {self.id or self.mac}"


@dataclass(slots=True)
class Picture:
    facts: list[F.Fact]
    by_type: dict[type, list] = field(default_factory=lambda: defaultdict(list))
    servers: list[DhcpServer] = field(default_factory=list)
    ports: dict[str, Port] = field(default_factory=dict)  # by MAC
    networks: dict[str, F.ApiNetwork] = field(default_factory=dict)
    subnets: dict[str, F.ApiSubnet] = field(default_factory=dict)
    hosts: set[str] = field(default_factory=set)
    # what several rules derive from the same facts, worked out once (model.paths.path_views)
    derived: dict[str, object] = field(default_factory=dict, repr=False)

    def of(self, kind: type) -> list:
        return self.by_type.get(kind, [])

    def on_host(self, kind: type, host: str | None) -> list:
        return [f for f in self.of(kind) if f.origin.host == host]

    def hosts_with(self, kind: type) -> set[str | None]:
        return {f.origin.host for f in self.of(kind)}

    def network_ids(self) -> set[str]:
        ids = set(self.networks)
        ids.update(s.network_id for s in self.servers if s.network_id)
        ids.update(p.network_id for p in self.ports.values() if p.network_id)
        return ids

    def subnets_of(self, network_id: str) -> list[F.ApiSubnet]:
        return [s for s in self.subnets.values() if s.network_id == network_id]

    def servers_of(self, network_id: str | None) -> list[DhcpServer]:
        return [s for s in self.servers if s.network_id == network_id]

    def server_ips(self) -> set[str]:
        ips = {s.ip for s in self.servers if s.ip}
        ips.update(ip for p in self.of(F.ApiPort) if p.device_owner == "network:dhcp" for ip in p.fixed_ips)
        return ips

    def guest_ports(self) -> list[Port]:
        # without the API, a DHCP port is known by its device in a qdhcp namespace (ns-/tap + id[:11])
        served = {s.interface[3:] for s in self.servers if s.interface and len(s.interface) > 3}
        return [p for p in self.ports.values()
                if not (p.api and p.api.device_owner and p.api.device_owner.startswith("network:"))
                and not (p.api is None and p.id and p.id[:11] in served)]


def build(facts: list[F.Fact]) -> Picture:
    pic = Picture(facts=facts)
    for f in facts:
        pic.by_type[type(f)].append(f)
        if f.origin.host:
            pic.hosts.add(f.origin.host)
    for n in pic.of(F.ApiNetwork):
        pic.networks[n.id] = merge(pic.networks.get(n.id), n)
    for s in pic.of(F.ApiSubnet):
        pic.subnets[s.id] = merge(pic.subnets.get(s.id), s)
    _servers(pic)
    _ports(pic)
    return pic


def merge(old, new):
    """One API object seen in several outputs (`list` and `show`): each field from whichever
    output has it; the first seen keeps its origin, so evidence cites the fuller one first."""
    if old is None:
        return new
    empty = (None, [], {}, "")
    changes = {}
    for name in new.__struct_fields__:
        was, now = getattr(old, name), getattr(new, name)
        if name != "origin" and ((was is None and now is not None) or (was in empty and now not in empty)):
            changes[name] = now
    return msgspec.structs.replace(old, **changes) if changes else old


def _network_in(text: str | None) -> str | None:
    if not text:
        return None
    m = UUID_RE.search(text)
    return m.group(0) if m else None


def _network_of_path(paths: dict[str, str | None], path: str) -> str | None:
    """`_network_in(path)`, remembered: a server's log and files give thousands of facts
    from one path."""
    if path in paths:
        return paths[path]
    net = paths[path] = _network_in(path)
    return net


def _servers(pic: Picture) -> None:
    """A DHCP server is one (host, network): a qdhcp namespace, a dnsmasq, files, a log."""
    servers: dict[tuple[str | None, str], DhcpServer] = {}

    def server(host: str | None, net: str) -> DhcpServer:
        key = (host, net)
        if key not in servers:
            servers[key] = DhcpServer(network_id=net, host=host)
        return servers[key]

    for ns in pic.of(F.Namespace):
        net = qdhcp_network(ns.name)
        if net:
            s = server(ns.origin.host, net)
            s.namespace = ns.name
            s.namespace_fact = ns
    # `ip link` lists no addresses, `ip addr` does (lo's 127.0.0.1 at least): an output
    # that shows an address anywhere is a listing of addresses
    interfaces = pic.of(F.Interface)
    listings = {(i.origin.path, i.origin.command) for i in interfaces if i.addresses}
    for iface in interfaces:
        ns = iface.origin.namespace
        net = qdhcp_network(ns)
        if net and iface.name != "lo":
            s = server(iface.origin.host, net)
            s.namespace = ns
            s.interface = iface.name
            listed = (iface.origin.path, iface.origin.command) in listings
            if s.interface_fact is None or listed or not s.interface_addresses_known:
                s.interface_fact, s.interface_addresses_known = iface, listed
            v4 = [a for a in iface.addresses if "." in a and not a.startswith("169.254.")]
            if v4:
                s.ip = v4[0].split("/")[0]
    for p in pic.of(F.DnsmasqProcess):
        if p.network_id:
            s = server(p.origin.host, p.network_id)
            s.processes.append(p)
            if p.interface and not s.interface:
                s.interface = p.interface
    nets: dict[str, str | None] = {}
    for kind, attr in ((F.HostEntry, "host_entries"), (F.OptsEntry, "opts"), (F.LeaseEntry, "leases")):
        for e in pic.of(kind):
            net = e.network_id or _network_of_path(nets, e.origin.path)
            if net:
                getattr(server(e.origin.host, net), attr).append(e)
    by_iface = {(s.host, s.interface): s for s in servers.values() if s.interface}
    for ev in pic.of(F.DnsmasqLogEvent):
        net = _network_of_path(nets, ev.origin.path)
        s = None
        if net:
            s = server(ev.origin.host, net)
        elif ev.interface:
            s = by_iface.get((ev.origin.host, ev.interface))
        if s is None and len(servers) == 1:
            s = next(iter(servers.values()))
        if s is not None:
            s.log.append(ev)
    # the server IP from the API when the namespace was not seen
    for p in pic.of(F.ApiPort):
        if p.device_owner == "network:dhcp" and p.network_id and p.binding_host:
            key = (p.binding_host, p.network_id)
            if key in servers and not servers[key].ip and p.fixed_ips:
                servers[key].ip = p.fixed_ips[0]
    pic.servers = sorted(servers.values(), key=lambda s: (s.network_id or "", s.host or ""))


def _ports(pic: Picture) -> None:
    ports = pic.ports
    for p in pic.of(F.ApiPort):
        if not p.mac:
            continue
        port = ports.setdefault(norm_mac(p.mac), Port(id=p.id, mac=norm_mac(p.mac)))
        port.api = p = merge(port.api, p)
        port.id = p.id
        port.ip = p.fixed_ips[0] if p.fixed_ips else port.ip
        port.network_id = p.network_id
        port.host = p.binding_host or port.host
    for o in pic.of(F.OvsPort):
        mac, iface_id = norm_mac(o.external_ids.get("attached-mac")), o.external_ids.get("iface-id")
        if not mac and iface_id:
            mac = next((m for m, p in ports.items() if p.id == iface_id), None)
        if not mac:
            continue
        port = ports.setdefault(mac, Port(id=iface_id, mac=mac))
        port.ovs_ports.append(o)
        port.id = port.id or iface_id
        port.host = port.host or o.origin.host
    # host-file entries name ports the API view may not have
    for s in pic.servers:
        for e in s.host_entries:
            mac = norm_mac(e.mac)
            if mac and mac not in ports:
                ports[mac] = Port(id=None, mac=mac, ip=e.ip, network_id=s.network_id)
    # guests: console logs and captures name them
    for srv in pic.of(F.ApiServer):
        for ips in srv.addresses.values():
            for port in ports.values():
                if port.ip in ips:
                    port.guest = srv.name
