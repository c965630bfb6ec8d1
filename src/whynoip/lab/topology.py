"""The lab's topology: which emulated nodes, networks, subnets and guests to build.

Read from a YAML file, or one of the built-in ones (`default`, `ha`) that ship beside this
module. Validation errors name the file and the field, never a traceback."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml

from whynoip.errors import LabError

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
BUILTIN = ("default", "ha")


@dataclass(slots=True)
class NodeSpec:
    name: str
    role: str  # network | compute


@dataclass(slots=True)
class SubnetSpec:
    name: str
    cidr: str
    gateway: str | None
    allocation_pool: tuple[str, str]
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[tuple[str, str]] = field(default_factory=list)  # (destination, nexthop)
    enable_dhcp: bool = True


@dataclass(slots=True)
class NetworkSpec:
    name: str
    segmentation_id: int
    mtu: int
    subnets: list[SubnetSpec]


@dataclass(slots=True)
class GuestSpec:
    name: str
    node: str
    network: str
    client: str = "udhcpc"  # udhcpc | dhclient


@dataclass(slots=True)
class Topology:
    name: str
    nodes: list[NodeSpec]
    networks: list[NetworkSpec]
    guests: list[GuestSpec]
    dhcp_agents_per_network: int = 1
    report_interval: float = 1.0  # seconds between agent heartbeats (Neutron: 30)
    agent_down_time: float = 4.0  # seconds without heartbeat before an agent is dead (Neutron: 75)

    def node(self, name: str) -> NodeSpec:
        for n in self.nodes:
            if n.name == name:
                return n
        raise LabError(f"no node {name!r} in topology {self.name!r}")

    @property
    def network_nodes(self) -> list[NodeSpec]:
        return [n for n in self.nodes if n.role == "network"]


def load(spec: str) -> Topology:
    """`spec` is a built-in name or a path to a YAML file."""
    if spec in BUILTIN:
        text = resources.files("whynoip.lab").joinpath(f"topologies/{spec}.yaml").read_text()
        where = f"built-in topology {spec!r}"
    else:
        p = Path(spec)
        if not p.is_file():
            raise LabError(f"topology {spec!r}: neither a built-in ({', '.join(BUILTIN)}) nor a file")
        text, where = p.read_text(errors="replace"), str(p)
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise LabError(f"{where}: not valid YAML: {e}") from None
    return parse(data, where)


def _need(d: dict, key: str, where: str, kind=None):
    if not isinstance(d, dict) or key not in d:
        raise LabError(f"{where}: missing '{key}'")
    v = d[key]
    if kind is not None and not isinstance(v, kind):
        raise LabError(f"{where}: '{key}' must be {kind.__name__ if isinstance(kind, type) else kind}")
    return v


def _name(v, where: str) -> str:
    if not isinstance(v, str) or not NAME_RE.match(v):
        raise LabError(f"{where}: name {v!r} must be 1-10 lowercase letters/digits starting with a letter")
    return v


def parse(data, where: str) -> Topology:
    if not isinstance(data, dict):
        raise LabError(f"{where}: a topology is a mapping")
    nodes = []
    for i, n in enumerate(_need(data, "nodes", where, list)):
        w = f"{where}: nodes[{i}]"
        role = _need(n, "role", w, str)
        if role not in ("network", "compute"):
            raise LabError(f"{w}: role must be network or compute")
        nodes.append(NodeSpec(_name(_need(n, "name", w), w), role))
    if len({n.name for n in nodes}) != len(nodes):
        raise LabError(f"{where}: node names must be unique")
    networks = []
    for i, n in enumerate(_need(data, "networks", where, list)):
        w = f"{where}: networks[{i}]"
        subnets = []
        for j, s in enumerate(_need(n, "subnets", w, list)):
            ws = f"{w}.subnets[{j}]"
            try:
                cidr = ipaddress.ip_network(_need(s, "cidr", ws, str))
            except ValueError as e:
                raise LabError(f"{ws}: {e}") from None
            hosts = list(cidr.hosts())
            pool = s.get("allocation_pool") or f"{hosts[1]}-{hosts[-1]}"
            try:
                start, end = (str(ipaddress.ip_address(x.strip())) for x in pool.split("-"))
            except (ValueError, AttributeError):
                raise LabError(f"{ws}: allocation_pool must be 'first-last'") from None
            routes = []
            for r in s.get("host_routes") or []:
                routes.append((_need(r, "destination", ws, str), _need(r, "nexthop", ws, str)))
            subnets.append(SubnetSpec(
                name=str(s.get("name") or f"subnet{j}"), cidr=str(cidr),
                gateway=s.get("gateway", str(hosts[0])), allocation_pool=(start, end),
                dns_nameservers=list(s.get("dns_nameservers") or []), host_routes=routes,
                enable_dhcp=bool(s.get("enable_dhcp", True))))
        networks.append(NetworkSpec(
            name=_name(_need(n, "name", w), w), segmentation_id=int(n.get("segmentation_id", 1000 + i)),
            mtu=int(n.get("mtu", 1450)), subnets=subnets))
    guests = []
    for i, g in enumerate(data.get("guests") or []):
        w = f"{where}: guests[{i}]"
        client = g.get("client", "udhcpc")
        if client not in ("udhcpc", "dhclient"):
            raise LabError(f"{w}: client must be udhcpc or dhclient")
        guests.append(GuestSpec(_name(_need(g, "name", w), w), _need(g, "node", w, str),
                                _need(g, "network", w, str), client))
    topo = Topology(name=str(data.get("name", "custom")), nodes=nodes, networks=networks, guests=guests,
                    dhcp_agents_per_network=int(data.get("dhcp_agents_per_network", 1)),
                    report_interval=float(data.get("report_interval", 1.0)),
                    agent_down_time=float(data.get("agent_down_time", 4.0)))
    if not topo.network_nodes:
        raise LabError(f"{where}: at least one node must have role network")
    if topo.dhcp_agents_per_network > len(topo.network_nodes):
        raise LabError(f"{where}: dhcp_agents_per_network={topo.dhcp_agents_per_network} "
                       f"but only {len(topo.network_nodes)} network nodes")
    netnames = {n.name for n in networks}
    for g in guests:
        topo.node(g.node)
        if g.network not in netnames:
            raise LabError(f"{where}: guest {g.name}: no network {g.network!r}")
    return topo
