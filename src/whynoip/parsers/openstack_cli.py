"""The OpenStack API view as the command-line clients print it: networks, subnets, ports,
agents, servers and compute services, from `openstack ... show/list` and the older
`neutron`, `quantum` and `nova` clients, as box tables or as `-f json`, `-f yaml` and
(simple cases of) `-f value`. What the API believes (the port's MAC, fixed IP and binding
host, which DHCP agents host the network and whether they are alive) is half of every
diagnosis: the other half is what the hosts actually do.

The kind of object is decided from the command when it is known (a shell prompt, a
sosreport or lab file name such as `openstack_port_list_-f_json`), otherwise from the
columns or fields the output has (a port has a MAC or fixed IPs, an agent an agent type or
an `alive` column, a compute service a binary and a zone ...).

Real sample (`openstack network agent list`, from the Neutron admin guide,
doc/source/admin/config-dhcp-ha.rst)::

    +--------------------------------------+--------------------+-------+-------------------+-------+-------+---------------------------+
    | ID                                   | Agent Type         | Host  | Availability Zone | Alive | State | Binary                    |
    +--------------------------------------+--------------------+-------+-------------------+-------+-------+---------------------------+
    | 2444c54d-0d28-460c-ab0f-cd1e6b5d3c7b | DHCP agent         | HostA | None              | True  | DOWN  | neutron-dhcp-agent        |
    | 55569f4e-6f31-41a6-be9d-526efce1f7fe | DHCP agent         | HostB | nova              | True  | UP    | neutron-dhcp-agent        |
    +--------------------------------------+--------------------+-------+-------------------+-------+-------+---------------------------+

Keys read (compared lower-cased, spaces as `_`), checked against python-openstackclient's
network/v2 and compute/v2 commands and real pasted output:

- port list: `ID`, `Name`, `MAC Address`, `Fixed IP Addresses`, `Status` (+ `--long`:
  `Security Groups`, `Device Owner`); neutron/quantum `port-list`: id, name, mac_address,
  fixed_ips. port show: `id`, `name`, `network_id`, `mac_address`, `fixed_ips`,
  `device_owner`, `device_id`, `status`, `admin_state_up`, `binding_host_id` /
  `binding:host_id`, `binding_vif_type` / `binding:vif_type`, `security_group_ids` /
  `security_groups`, `allowed_address_pairs`. fixed_ips come as
  `ip_address='10.0.0.5', subnet_id='...'` (openstackclient tables), a JSON list of
  `{"ip_address", "subnet_id"}` (openstackclient -f json), or
  `{"subnet_id": "...", "ip_address": "10.0.0.5"}` (neutron/quantum clients), one per line
  or wrapped over several.
- network list: `ID`, `Name`, `Subnets` (+ `--long`: `Status`, `State`, `Network Type`);
  network show: `id`, `name`, `status`, `admin_state_up`, `provider:network_type`,
  `provider:segmentation_id`, `mtu`, `subnets`.
- subnet list: `ID`, `Name`, `Network`, `Subnet`; subnet show: `id`, `name`,
  `network_id`, `cidr`, `gateway_ip`, `enable_dhcp`, `allocation_pools` (`start-end`, or
  JSON `{"start", "end"}`), `dns_nameservers`, `host_routes` (`destination='..',
  gateway='..'` or JSON `{"destination", "nexthop"}`).
- network agent list: `ID`, `Agent Type`, `Host`, `Availability Zone`, `Alive`, `State`,
  `Binary`; Alive is `:-)`/`XXX` (openstackclient >= Pike, and the neutron client, which
  prints `xxx`), `True`/`False` in older openstackclient tables and a boolean in JSON; State
  is `UP`/`DOWN` (bool in newer JSON); neutron `agent-list`: id, agent_type, host, alive,
  admin_state_up, binary. agent show: `admin_state_up`, `agent_type`, `alive`,
  `availability_zone`, `binary`, `host`, `id`, `last_heartbeat_at` (openstacksdk name) or
  `heartbeat_timestamp` (API and neutron client name).
- DHCP agents hosting a network (`openstack network agent list --network X`, `neutron
  dhcp-agent-list-hosting-net X`): the agent columns above, or `ID`, `Host`,
  `Admin State Up`, `Alive` (older openstackclient) / id, host, admin_state_up, alive.
- server list / `nova list`: `ID`, `Name`, `Status`, `Networks` (`net1=10.0.0.3, 10.0.0.4;
  net2=...`, a dict in newer JSON); server show / `nova show`: `id`, `name`, `status`,
  `OS-EXT-SRV-ATTR:host`, `addresses` (or nova's `<net> network` fields).
- compute service list / `nova service-list`: `Binary`, `Host`, `Zone`, `Status`
  (enabled/disabled), `State` (up/down), `Updated At` / `Updated_at`.

Older openstackclient applied its table formatters to JSON as well (`"admin_state_up":
"UP"`, lists as comma-joined strings); both shapes are accepted.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any, Iterator

from whynoip.evidence.section import Section
from whynoip.facts import (ApiAgent, ApiNetwork, ApiPort, ApiServer, ApiSubnet,
                           ComputeService, Fact, Origin, Unparsed)
from whynoip.parsers._table import BoxTable, read_tables
from whynoip.parsers._time import iso_time

NAME = "openstack_cli"

_OSC = r"\bopenstack\b(?:\s+\S+)*?\s"
COMMANDS = (
    _OSC + r"(?:network|subnet|port|server)\s+(?:show|list|create)(?:\s|$)",
    _OSC + r"network\s+agent\s+(?:show|list)(?:\s|$)",
    _OSC + r"compute\s+service\s+list(?:\s|$)",
    r"\b(?:neutron|quantum)\b(?:\s+\S+)*?\s(?:net|subnet|port|agent)-(?:show|list|create)(?:\s|$)",
    r"\bneutron\b(?:\s+\S+)*?\sdhcp-agent-list-hosting-net(?:\s|$)",
    r"\bnova\b(?:\s+\S+)*?\s(?:list|show|service-list)(?:\s|$)",
)
_FILES = (
    "openstack_network_*", "openstack_subnet_*", "openstack_port_*",
    "openstack_server_*", "openstack_compute_service_*",
    "neutron_net-*", "neutron_subnet-*", "neutron_port-*", "neutron_agent-*",
    "neutron_dhcp-agent-list-hosting-net*", "quantum_*",
    "nova_list*", "nova_show*", "nova_service-list*",
)
# sosreport and lab files named after the command, in a directory or on their own
PATHS = tuple(f"*/{f}" for f in _FILES) + _FILES

# --- what kind of object a command or a set of columns is about ---------------------------

_KIND_BY_COMMAND = (
    ("agent_hosting", re.compile(r"\bnetwork\s+agent\s+list\b.*\s--network\b|\bdhcp-agent-list-hosting-net\b")),
    ("agent", re.compile(r"\bnetwork\s+agent\s+(?:list|show)\b|\bagent-(?:list|show)\b")),
    ("service", re.compile(r"\bcompute\s+service\s+list\b|\bservice-list\b")),
    ("port", re.compile(r"\bport[\s-](?:show|list|create)\b")),
    ("subnet", re.compile(r"\bsubnet[\s-](?:show|list|create)\b")),
    ("network", re.compile(r"\bnetwork\s+(?:show|list|create)\b|\bnet-(?:show|list|create)\b")),
    ("server", re.compile(r"\bserver\s+(?:show|list|create)\b|\bnova\b(?:\s+\S+)*?\s(?:list|show)(?:\s|$)")),
)

_PORT_KEYS = {"mac_address", "fixed_ips", "fixed_ip_addresses", "device_owner", "binding:host_id",
              "binding_host_id", "binding:vif_type", "binding_vif_type"}
_SUBNET_KEYS = {"cidr", "allocation_pools", "enable_dhcp", "gateway_ip"}
_SERVER_KEYS = {"networks", "addresses", "os-ext-srv-attr:host", "power_state", "task_state",
                "os-ext-sts:vm_state", "flavor", "image", "image_name"}
_NETWORK_KEYS = {"subnets", "provider:network_type", "router:external", "router_type"}


def kind_of_command(command: str | None) -> str | None:
    if not command:
        return None
    for kind, rx in _KIND_BY_COMMAND:
        if rx.search(command):
            return kind
    return None


def kind_of_keys(keys: set[str]) -> str | None:
    if "agent_type" in keys or {"alive", "binary"} <= keys:
        return "agent"
    if {"alive", "host", "admin_state_up"} <= keys:
        return "agent_hosting"
    if {"binary", "host"} <= keys and keys & {"zone", "updated_at", "state"}:
        return "service"
    if keys & _PORT_KEYS:
        return "port"
    if keys & _SUBNET_KEYS or {"network", "subnet"} <= keys:
        return "subnet"
    if keys & _SERVER_KEYS:
        return "server"
    if keys & _NETWORK_KEYS:
        return "network"
    if any(k.endswith("_network") and ":" not in k for k in keys):  # nova show "<net> network"
        return "server"
    return None


def sniff(head: str) -> bool:
    """A client table or JSON of one of the kinds above. Conservative: the header or keys
    must name columns only these outputs have."""
    low = head.lower()
    if "| field" in low and "| value" in low:
        return bool(re.search(r"\|\s*(binding[:_]host_id|binding[:_]vif_type|mac_address|agent_type"
                              r"|allocation_pools|provider:network_type|os-ext-srv-attr:host)\s*\|", low))
    if re.search(r"\|\s*(agent type|agent_type)\s*\|", low) and re.search(r"\|\s*alive\s*\|", low):
        return True
    if re.search(r"\|\s*mac address\s*\|", low) and "fixed ip addresses" in low:
        return True
    if re.search(r"\|\s*binary\s*\|\s*host\s*\|\s*zone\s*\|", low):
        return True
    stripped = head.lstrip()
    if stripped[:1] in "[{":
        return bool(re.search(r'"(MAC Address|Fixed IP Addresses|Agent Type|binding_host_id'
                              r'|binding:host_id|fixed_ips)"', head))
    return False


# --- value helpers: every client prints the same thing a little differently ---------------

_NONE = {"", "none", "null", "-", "n/a"}
_TRUE = {"true", "up", "yes", "1", ":-)", "enabled", "on"}
_FALSE = {"false", "down", "no", "0", "xxx", "disabled", "off"}
UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_UUID_RE = re.compile(UUID)
_IPV4 = r"\d{1,3}(?:\.\d{1,3}){3}"
_IP_RE = re.compile(r"(?<![\w.:])(" + _IPV4 + r"|[0-9a-fA-F]{0,4}(?::[0-9a-fA-F]{0,4}){2,7})(?![\w.:])")
_Q = r"""\s*u?['"]?"""  # optional (u-)quote around Python/JSON reprs


def _field_re(name: str) -> re.Pattern:
    return re.compile(r"['\"]?\b" + name + r"\b['\"]?\s*[=:]" + _Q + r"""([^'",\s}\]]+)""")


_IP_ADDRESS_RE = _field_re("ip_address")
_SUBNET_ID_RE = _field_re("subnet_id")
_START_RE = _field_re("start")
_END_RE = _field_re("end")
_DEST_RE = _field_re("destination")
_HOP_RE = re.compile(r"['\"]?\b(?:nexthop|gateway)\b['\"]?\s*[=:]" + _Q + r"""([^'",\s}\]]+)""")


def _s(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, (list, tuple)):
        v = ", ".join(str(x) for x in v)
    v = str(v).strip()
    return None if v.lower() in _NONE else v


def _bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    s = _s(v)
    if s is None:
        return None
    s = s.lower()
    return True if s in _TRUE else False if s in _FALSE else None


def _int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    s = _s(v)
    return int(s) if s is not None and re.fullmatch(r"-?\d+", s) else None


def _time(v: Any) -> float | None:
    s = _s(v)
    if s is None:
        return None
    got = iso_time(s)
    return got[0] if got else None


def _texts(v: Any) -> list[str]:
    """A list value as strings: JSON lists element-wise, text split on commas, semicolons
    and white space."""
    if v is None:
        return []
    if isinstance(v, (list, tuple)):
        out: list[str] = []
        for x in v:
            out.extend(_texts(x) if isinstance(x, (list, tuple)) else [str(x)])
        return [x for x in out if _s(x) is not None]
    s = _s(v)
    return [x for x in re.split(r"[\s,;]+", s) if x] if s else []


def _flat(v: Any) -> str:
    """Any value as one text (JSON structures dumped) for regex extraction."""
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v)
    return "" if v is None else str(v)


def _fixed_ips(v: Any) -> tuple[list[str], list[str]]:
    """(IP addresses, subnet ids) of a fixed_ips value in any of its shapes."""
    text = _flat(v)
    ips = _IP_ADDRESS_RE.findall(text)
    subnets = _SUBNET_ID_RE.findall(text)
    if not ips and not isinstance(v, (dict, list)):
        ips = _IP_RE.findall(text)  # a bare list of addresses
    return ips, subnets


def _pools(v: Any) -> list[str]:
    text = _flat(v)
    starts, ends = _START_RE.findall(text), _END_RE.findall(text)
    if starts:
        return [f"{a}-{b}" for a, b in zip(starts, ends)]
    return [t for t in re.split(r"[\s,;]+", text) if re.fullmatch(r"[0-9a-fA-F.:]+-[0-9a-fA-F.:]+", t)]


def _routes(v: Any) -> list[str]:
    text = _flat(v)
    return [f"{d} via {h}" for d, h in zip(_DEST_RE.findall(text), _HOP_RE.findall(text))]


def _uuids(v: Any) -> list[str]:
    return _UUID_RE.findall(_flat(v))


def _addresses(v: Any) -> dict[str, list[str]]:
    """Server addresses: `net1=10.0.0.3, 10.0.0.4; net2=...` or a JSON mapping."""
    out: dict[str, list[str]] = {}
    if isinstance(v, dict):
        for net, addrs in v.items():
            ips = _IP_RE.findall(_flat(addrs))
            out[str(net)] = ips
        return out
    s = _s(v)
    if not s:
        return out
    for part in re.split(r";\s*|\n", s):
        if "=" in part:
            net, _, rest = part.partition("=")
            out.setdefault(net.strip(), []).extend(_IP_RE.findall(rest))
    return out


def _first(rec: dict[str, Any], *keys: str) -> Any:
    for k in keys:
        if k in rec and _s(rec[k]) is not None:
            return rec[k]
    return None


def _key(k: Any) -> str:
    return re.sub(r"\s+", "_", str(k).strip().lower())


_AGENT_TYPE_BY_BINARY = {
    "neutron-dhcp-agent": "DHCP agent", "neutron-openvswitch-agent": "Open vSwitch agent",
    "neutron-linuxbridge-agent": "Linux bridge agent", "neutron-l3-agent": "L3 agent",
    "neutron-metadata-agent": "Metadata agent", "quantum-dhcp-agent": "DHCP agent",
    "quantum-openvswitch-agent": "Open vSwitch agent", "quantum-l3-agent": "L3 agent",
}


# --- records to facts ------------------------------------------------------------------------

class _Ctx:
    """What the command says beyond the kind: the network an agent listing is about."""

    def __init__(self, command: str | None):
        self.command = command
        self.kind = kind_of_command(command)
        self.network: str | None = None
        if command and self.kind == "agent_hosting":
            m = re.search(r"--network[=\s]+(\S+)", command) or re.search(
                r"dhcp-agent-list-hosting-net\s+(?:-\S+\s+)*([^\s-]\S*)", command)
            if m:
                self.network = m.group(1).strip("'\"")


def _build(kind: str, rec: dict[str, Any], origin: Origin, ctx: _Ctx) -> Fact:
    """One fact from one record (a show table, a list row, a JSON object)."""
    rid = _s(_first(rec, "id"))
    if kind == "port":
        if not rid:
            return Unparsed(origin=origin, reason="port without an id")
        ips, subnets = _fixed_ips(_first(rec, "fixed_ips", "fixed_ip_addresses"))
        return ApiPort(
            origin=origin, id=rid, name=_s(rec.get("name")), network_id=_s(rec.get("network_id")),
            mac=(_s(rec.get("mac_address")) or "").lower() or None, fixed_ips=ips, subnet_ids=subnets,
            device_owner=_s(rec.get("device_owner")), device_id=_s(rec.get("device_id")),
            status=_s(rec.get("status")), admin_state_up=_bool(rec.get("admin_state_up")),
            binding_host=_s(_first(rec, "binding:host_id", "binding_host_id")),
            binding_vif_type=_s(_first(rec, "binding:vif_type", "binding_vif_type")),
            security_groups=_texts(_first(rec, "security_group_ids", "security_groups")),
            allowed_address_pairs=_IP_ADDRESS_RE.findall(_flat(rec.get("allowed_address_pairs"))),
        )
    if kind == "network":
        if not rid:
            return Unparsed(origin=origin, reason="network without an id")
        return ApiNetwork(
            origin=origin, id=rid, name=_s(rec.get("name")), status=_s(rec.get("status")),
            admin_state_up=_bool(_first(rec, "admin_state_up", "state")),
            network_type=_s(rec.get("provider:network_type") or rec.get("network_type")),
            segmentation_id=_int(rec.get("provider:segmentation_id")), mtu=_int(rec.get("mtu")),
            subnets=_uuids(rec.get("subnets")),
        )
    if kind == "subnet":
        if not rid:
            return Unparsed(origin=origin, reason="subnet without an id")
        return ApiSubnet(
            origin=origin, id=rid, name=_s(rec.get("name")),
            network_id=_s(_first(rec, "network_id", "network")), cidr=_s(_first(rec, "cidr", "subnet")),
            gateway_ip=_s(rec.get("gateway_ip")), enable_dhcp=_bool(rec.get("enable_dhcp")),
            allocation_pools=_pools(rec.get("allocation_pools")),
            dns_nameservers=_texts(rec.get("dns_nameservers")), host_routes=_routes(rec.get("host_routes")),
        )
    if kind in ("agent", "agent_hosting"):
        host = _s(rec.get("host"))
        if not host:
            return Unparsed(origin=origin, reason="agent without a host")
        binary = _s(rec.get("binary"))
        agent_type = _s(rec.get("agent_type")) or _AGENT_TYPE_BY_BINARY.get(binary or "") \
            or ("DHCP agent" if kind == "agent_hosting" else "unknown")
        return ApiAgent(
            origin=origin, id=rid, agent_type=agent_type, host=host, alive=_bool(rec.get("alive")),
            admin_state_up=_bool(_first(rec, "admin_state_up", "state")), binary=binary,
            heartbeat=_time(_first(rec, "last_heartbeat_at", "heartbeat_timestamp")),
            availability_zone=_s(rec.get("availability_zone")),
            networks=[ctx.network] if kind == "agent_hosting" and ctx.network else [],
        )
    if kind == "server":
        if not rid:
            return Unparsed(origin=origin, reason="server without an id")
        addresses = _addresses(_first(rec, "networks", "addresses"))
        for k, v in rec.items():  # nova show: "<net> network | 10.0.0.3, 172.24.4.5"
            if k.endswith("_network") and ":" not in k:
                addresses.setdefault(k[: -len("_network")], _IP_RE.findall(_flat(v)))
        return ApiServer(origin=origin, id=rid, name=_s(rec.get("name")), status=_s(rec.get("status")),
                         host=_s(_first(rec, "os-ext-srv-attr:host", "host")), addresses=addresses)
    if kind == "service":
        binary, host = _s(rec.get("binary")), _s(rec.get("host"))
        if not binary or not host:
            return Unparsed(origin=origin, reason="compute service without binary or host")
        return ComputeService(origin=origin, binary=binary, host=host, state=_s(rec.get("state")),
                              status=_s(rec.get("status")), updated_at=_time(rec.get("updated_at")))
    return Unparsed(origin=origin, reason=f"unknown kind {kind}")


# --- the formats --------------------------------------------------------------------------

def _command_of(section: Section) -> str | None:
    """The command line: from the prompt, or from a sosreport/lab file name
    (`openstack_port_list_-f_json` -> `openstack port list -f json`)."""
    if section.origin.command:
        return section.origin.command
    base = section.origin.path.rsplit("/", 1)[-1]
    if re.match(r"(openstack|neutron|quantum|nova)_", base):
        return base.replace("_", " ")
    return None


def _format_of(command: str | None, lines: list[str]) -> str:
    if command:
        m = re.search(r"(?:-f|--format)[=\s]+(\w+)", command)
        if m:
            return m.group(1).lower()
    for line in lines:
        s = line.strip()
        if not s:
            continue
        if s[0] in "[{":
            return "json"
        if re.match(r"^(- )?[\w:\-]+:(\s|$)", s) and not s.startswith("+"):
            return "yaml"
        return "table"
    return "table"


def parse(section: Section) -> Iterator[Fact]:
    try:
        lines = list(section.lines()) if section.lines else []
    except Exception as e:  # an unreadable stream is evidence too
        yield Unparsed(origin=section.origin_at(0), reason=f"cannot read: {e}")
        return
    try:
        command = _command_of(section)
        ctx = _Ctx(command)
        fmt = _format_of(command, lines)
        if fmt == "json":
            facts = _parse_json(section, lines, ctx)
        elif fmt == "yaml":
            facts = _parse_yaml(section, lines, ctx)
        elif fmt == "value":
            facts = _parse_value(section, lines, ctx)
        else:
            facts = _parse_tables(section, lines, ctx)
        hosts = []
        for fact in facts:
            if isinstance(fact, ApiAgent) and "dhcp" in fact.agent_type.lower():
                hosts.append(fact.host)
            yield fact
        if ctx.kind == "agent_hosting" and ctx.network and any(line.strip() for line in lines):
            # which agents host the network, also when the answer is none at all
            yield ApiNetwork(origin=section.origin_at(0, text=lines[0] if lines else None), id=ctx.network,
                             dhcp_agents=hosts)
    except Exception as e:  # never raise on bad input: say what could not be read
        yield Unparsed(origin=section.origin_at(0), end_line=section.origin.line + max(len(lines) - 1, 0),
                       reason=f"openstack_cli: {type(e).__name__}: {e}")


def _unparsed(section: Section, lines: list[str], start: int, end: int, reason: str) -> Unparsed:
    return Unparsed(origin=section.origin_at(start, text=lines[start]),
                    end_line=section.origin_at(end - 1).line, reason=reason)


def _parse_tables(section: Section, lines: list[str], ctx: _Ctx) -> Iterator[Fact]:
    for start, end, item in read_tables(lines):
        if not isinstance(item, BoxTable):
            yield _unparsed(section, lines, start, end, "not an OpenStack client table")
            continue
        yield from _table_facts(section, lines, item, ctx)


def _table_facts(section: Section, lines: list[str], table: BoxTable, ctx: _Ctx) -> Iterator[Fact]:
    if table.is_show:
        fields = table.as_fields()
        rec = {_key(k): v for k, (v, _, _) in fields.items()}
        kind = ctx.kind or kind_of_keys(set(rec))
        if ctx.kind == "agent_hosting":  # a show-shaped table under a listing command: odd
            kind = kind_of_keys(set(rec))
        if kind is None:
            yield _unparsed(section, lines, table.offset, table.end,
                            "show table of unknown kind (fields: " + ", ".join(list(rec)[:8]) + ")")
            return
        anchor = fields.get("id", (None, table.rows[0] if table.rows else None, None))[1]
        offset = anchor.offset if anchor else table.offset
        text = anchor.line if anchor else lines[table.offset]
        yield _build(kind, rec, section.origin_at(offset, text=text.strip()), ctx)
        return
    keys = [_key(h) for h in table.header]
    kind = ctx.kind or kind_of_keys(set(keys))
    if kind is None:
        yield _unparsed(section, lines, table.offset, table.end,
                        "list table of unknown kind (columns: " + ", ".join(table.header) + ")")
        return
    for row in table.rows:
        rec = {k: row.get(i) for i, k in enumerate(keys)}
        yield _build(kind, rec, section.origin_at(row.offset, text=row.line.strip()), ctx)


def _records_of(doc: Any, ctx: _Ctx) -> tuple[str | None, Any]:
    """Unwrap raw API bodies (`{"ports": [...]}`, `{"agent": {...}}`) and name their kind."""
    wrappers = {"ports": "port", "port": "port", "networks": "network", "network": "network",
                "subnets": "subnet", "subnet": "subnet", "agents": "agent", "agent": "agent",
                "servers": "server", "server": "server", "services": "service"}
    if isinstance(doc, dict) and len(doc) == 1:
        (k, v), = doc.items()
        if k in wrappers and isinstance(v, (dict, list)):
            return wrappers[k], v
    return None, doc


def _json_item_offsets(text: str) -> list[int]:
    """Character offsets where the elements of a top-level JSON list start."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    out = []
    n = len(text)
    while True:
        while i < n and text[i] in " \t\r\n,":
            i += 1
        if i >= n or text[i] == "]":
            return out
        out.append(i)
        _, i = dec.raw_decode(text, i)


def _parse_json(section: Section, lines: list[str], ctx: _Ctx) -> Iterator[Fact]:
    text = "\n".join(lines)
    try:
        doc = json.loads(text)
    except ValueError as e:
        yield Unparsed(origin=section.origin_at(0, text=lines[0] if lines else None),
                       end_line=section.origin.line + max(len(lines) - 1, 0), reason=f"bad JSON: {e}")
        return
    wrapped_kind, doc = _records_of(doc, ctx)
    if isinstance(doc, dict):
        items, offsets = [doc], [0]
    elif isinstance(doc, list):
        items = doc
        try:
            offsets = [text.count("\n", 0, o) for o in _json_item_offsets(text)]
        except (ValueError, IndexError):
            offsets = []
        if len(offsets) != len(items):  # wrapped raw bodies: cite the document start
            offsets = [0] * len(items)
    else:
        yield Unparsed(origin=section.origin_at(0, text=lines[0] if lines else None),
                       reason=f"JSON {type(doc).__name__} is no OpenStack object or list")
        return
    yield from _records(section, lines, items, offsets, ctx, wrapped_kind)


def _records(section: Section, lines: list[str], items: list[Any], offsets: list[int], ctx: _Ctx,
             wrapped_kind: str | None = None) -> Iterator[Fact]:
    for item, off in zip(items, offsets):
        text = lines[off].strip() if off < len(lines) else None
        origin = section.origin_at(off, text=text)
        if not isinstance(item, dict):
            yield Unparsed(origin=origin, reason=f"not an object: {str(item)[:80]}")
            continue
        rec = {_key(k): v for k, v in item.items()}
        kind = wrapped_kind or ctx.kind or kind_of_keys(set(rec))
        if ctx.kind == "agent_hosting":
            kind = "agent_hosting"
        if kind is None:
            yield Unparsed(origin=origin, reason="object of unknown kind (keys: " + ", ".join(list(rec)[:8]) + ")")
            continue
        yield _build(kind, rec, origin, ctx)


def _parse_yaml(section: Section, lines: list[str], ctx: _Ctx) -> Iterator[Fact]:
    import yaml

    try:
        doc = yaml.safe_load("\n".join(lines))
    except yaml.YAMLError as e:
        yield Unparsed(origin=section.origin_at(0, text=lines[0] if lines else None),
                       end_line=section.origin.line + max(len(lines) - 1, 0),
                       reason=f"bad YAML: {str(e).splitlines()[0]}")
        return
    wrapped_kind, doc = _records_of(doc, ctx)
    if isinstance(doc, dict):
        items, offsets = [doc], [0]
    elif isinstance(doc, list):
        items = doc
        offsets = [i for i, line in enumerate(lines) if line.startswith("- ") or line.rstrip() == "-"]
        if len(offsets) != len(items):
            offsets = [0] * len(items)
    else:
        yield Unparsed(origin=section.origin_at(0, text=lines[0] if lines else None),
                       reason="YAML is no OpenStack object or list")
        return
    yield from _records(section, lines, items, offsets, ctx, wrapped_kind)


def _parse_value(section: Section, lines: list[str], ctx: _Ctx) -> Iterator[Fact]:
    """`-f value` prints bare values separated by spaces: readable only when `-c` names the
    columns and every row splits into exactly that many words."""
    try:
        argv = shlex.split(ctx.command or "")
    except ValueError:
        argv = (ctx.command or "").split()
    cols = [_key(argv[i + 1]) for i, a in enumerate(argv[:-1]) if a in ("-c", "--column")]
    cols += [_key(a.split("=", 1)[1]) for a in argv if a.startswith("--column=")]
    body = [(i, line) for i, line in enumerate(lines) if line.strip()]
    if not cols or ctx.kind is None:
        if body:
            yield _unparsed(section, lines, body[0][0], body[-1][0] + 1,
                            "-f value output without -c columns of a known command: columns unknown")
        return
    is_show = bool(re.search(r"\bshow\b|-show\b", ctx.command or ""))
    if is_show:
        if len(body) != len(cols):
            yield _unparsed(section, lines, body[0][0] if body else 0, (body[-1][0] + 1) if body else 1,
                            f"-f value show: {len(body)} lines for {len(cols)} columns")
            return
        rec = {c: line.strip() for c, (_, line) in zip(cols, body)}
        if "id" not in rec:  # the object named on the command line
            target = _show_target(argv)
            if target:
                rec["id"] = target
        yield _build(ctx.kind, rec, section.origin_at(body[0][0], text=body[0][1].strip()), ctx)
        return
    for i, line in body:
        words = line.split()
        if len(words) != len(cols):
            yield _unparsed(section, lines, i, i + 1, f"-f value row has {len(words)} words for {len(cols)} columns")
            continue
        yield _build(ctx.kind, dict(zip(cols, words)), section.origin_at(i, text=line.strip()), ctx)


_OPTS_WITH_VALUE = {"-f", "--format", "-c", "--column", "--max-width", "--prefix", "--sort-column",
                    "--sort-ascending", "--sort-descending"}


def _show_target(argv: list[str]) -> str | None:
    """The object a `show` command names: its first argument that is no option nor an
    option's value."""
    start = next((i for i, a in enumerate(argv) if a == "show" or a.endswith("-show")), None)
    if start is None:
        return None
    skip = False
    for a in argv[start + 1:]:
        if skip:
            skip = False
            continue
        if a.startswith("-"):
            skip = (a in _OPTS_WITH_VALUE or a.startswith("--os-")) and "=" not in a
            continue
        return a
    return None
