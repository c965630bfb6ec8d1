"""Open vSwitch configuration: `ovs-vsctl show`, `ovs-vsctl list <table>` (record format or
`--format=json`), `ovsdb-client dump` (`-f list` or `-f json`, all tables) and
`ovs-vsctl get Interface X options`, as `OvsBridge` and `OvsPort` facts.

These say where each Neutron port is plugged: a `qvo..`/`tap..` port on br-int with its
local VLAN `tag` (4095 = the dead VLAN, no tag = never bound), patch ports and tunnel
ports with their `options` (`{peer=patch-int}`, `{in_key=flow, local_ip=.., remote_ip=..}`),
an `error` when the device is missing, and, from the records, `external_ids` (`iface-id`
= the Neutron port id, `attached-mac`, `iface-status`) and the OpenFlow port number
`ofport` (-1 when the device could not be opened). One `OvsPort` is emitted per OVS
Interface (named after it), carrying its Port's tag; records read alone (`list
interface`) do not know their bridge (`bridge` None) -- a dump joins Bridge, Port and
Interface tables by uuid and does.

Real sample (sosreport `sos_commands/openvswitch/ovs-vsctl_-t_5_show`)::

    b8a20458-9009-41a0-aa49-71bcc0080537
        Bridge br-tun
            Controller "tcp:127.0.0.1:6633"
                is_connected: true
            fail_mode: secure
            datapath_type: system
            Port vxlan-0a000085
                Interface vxlan-0a000085
                    type: vxlan
                    options: {df_default="true", egress_pkt_mark="0", in_key=flow, local_ip="10.0.0.128", out_key=flow, remote_ip="10.0.0.133"}
            Port patch-int
                Interface patch-int
                    type: patch
                    options: {peer=patch-tun}
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, OvsBridge, OvsPort, Unparsed
from whynoip.parsers.ip_netns import command_of, origin_maker

NAME = "ovs_vsctl"
COMMANDS = (
    r"\bovs-vsctl\s+(?:-\S+\s+(?:\d+\s+)?)*(?:show|list\s+\S+|find\s+\S+|get\s+Interface\s+\S+\s+\S+)",
    r"\bovsdb-client\s+(?:\S+\s+)*?dump\b",
)
PATHS = (
    "*/sos_commands/openvswitch/ovs-vsctl*_show", "*/sos_commands/openvswitch/ovs-vsctl*_list_*",
    "*/sos_commands/openvswitch/ovs-vsctl_get_Interface_*", "*/sos_commands/openvswitch/ovsdb-client*dump",
)

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_UUID_RE = re.compile(rf"^{_UUID}$")
_SHOW_KEY_RE = re.compile(r"^(?P<indent>\s*)(?P<key>Manager|Bridge|Controller|Port|Interface)\s+(?P<name>.+?)\s*$")
_SHOW_ATTR_RE = re.compile(r"^(?P<indent>\s*)(?P<key>[a-z_][a-z0-9_-]*):\s*(?P<value>.*?)\s*$")
_RECORD_RE = re.compile(r"^(?P<key>[a-z_][a-z0-9_]*)\s*:\s?(?P<value>.*)$")
_TABLE_RE = re.compile(r"^(?P<table>[A-Za-z_]+) table$")
_LIST_TABLE_RE = re.compile(r"\b(?:list|find)\s+(?P<table>[A-Za-z_]+)")
_GET_RE = re.compile(r"\bget\s+Interface\s+(?P<name>\S+)\s+(?P<column>\S+)")


def sniff(head: str) -> bool:
    lines = [ln for ln in head.splitlines() if ln.strip()][:3]
    if not lines:
        return False
    first = lines[0].strip()
    if _UUID_RE.match(first):  # show
        return len(lines) > 1 and bool(re.match(r"^\s+(Bridge|Manager|ovs_version)\b", lines[1]))
    return (bool(re.match(rf"^_uuid\s+: {_UUID}$", first))  # list
            or first == "AutoAttach table"  # ovsdb-client -f list dump of Open_vSwitch
            or first.startswith(('{"caption":"AutoAttach table"', '{"data":[[["uuid","')))


def parse(section: Section) -> Iterator[Fact]:
    at = origin_maker(section)
    lines = list(section.lines() if section.lines else ())
    first = next((ln.strip() for ln in lines if ln.strip()), None)
    if first is None:
        return
    command = command_of(section)
    get = _GET_RE.search(command)
    if get and not first.startswith(("{\"", "_uuid")):
        yield from _parse_get(lines, at, get["name"], get["column"])
    elif first.startswith("{\""):
        yield from _parse_json(lines, at)
    elif _UUID_RE.match(first) or re.match(r"^(Bridge|Manager|ovs_version)\b", first):
        yield from _parse_show(lines, at)
    else:
        m = _LIST_TABLE_RE.search(command)
        yield from _parse_records(lines, at, _table_name(m["table"]) if m else None)


# --- ovs-vsctl show -------------------------------------------------------------------------

def _unquote(s: str) -> str:
    s = s.strip()
    if len(s) >= 2 and s[0] == s[-1] == '"':
        try:
            return json.loads(s)
        except ValueError:
            return s[1:-1]
    return s


def _parse_show(lines: list[str], at) -> Iterator[Fact]:
    bridge: dict | None = None
    port: dict | None = None
    iface: dict | None = None
    where = None  # the innermost block: "manager", "bridge", "controller", "port", "interface"

    def close_bridge() -> Iterator[Fact]:
        nonlocal bridge, port, iface
        if bridge is not None:
            yield OvsBridge(origin=bridge["origin"], name=bridge["name"], fail_mode=bridge.get("fail_mode"),
                            datapath_type=bridge.get("datapath_type"), controllers=bridge["controllers"])
            for p in bridge["ports"]:
                ifaces = p["interfaces"] or [{"name": p["name"], "origin": p["origin"]}]
                for i in ifaces:
                    yield OvsPort(origin=p["origin"] if len(ifaces) == 1 else i["origin"],
                                  bridge=bridge["name"], name=i["name"], tag=p.get("tag"),
                                  interface_type=i.get("type"), options=i.get("options", {}),
                                  error=i.get("error"))
        bridge = port = iface = None

    for offset, line in enumerate(lines):
        if not line.strip():
            continue
        stripped = line.strip()
        if _UUID_RE.match(stripped):
            continue
        m = _SHOW_KEY_RE.match(line)
        if m:
            key, name = m["key"], _unquote(m["name"])
            if key == "Manager":
                yield from close_bridge()
                where = "manager"
            elif key == "Bridge":
                yield from close_bridge()
                bridge = {"name": name, "origin": at(offset, line), "controllers": [], "ports": []}
                where = "bridge"
            elif bridge is None:
                yield Unparsed(origin=at(offset, line), reason=f"{key} outside a Bridge")
            elif key == "Controller":
                bridge["controllers"].append(name)
                where = "controller"
            elif key == "Port":
                port = {"name": name, "origin": at(offset, line), "interfaces": []}
                bridge["ports"].append(port)
                iface = None
                where = "port"
            elif port is None:
                yield Unparsed(origin=at(offset, line), reason="Interface outside a Port")
            else:
                iface = {"name": name, "origin": at(offset, line)}
                port["interfaces"].append(iface)
                where = "interface"
            continue
        m = _SHOW_ATTR_RE.match(line)
        if not m:
            yield Unparsed(origin=at(offset, line), reason="not an ovs-vsctl show line")
            continue
        key, value = m["key"], m["value"]
        if key == "ovs_version":
            yield from close_bridge()
            where = None
        elif key == "is_connected":
            pass  # of the Manager or Controller above: not kept
        elif bridge is not None and port is None and key in ("fail_mode", "datapath_type"):
            bridge[key] = _unquote(value)
        elif where == "port" and key == "tag":
            port["tag"] = _int(value)
        elif where == "interface" and key == "type":
            iface["type"] = _unquote(value)
        elif where == "interface" and key == "options":
            opts = _ovs_value(value)
            iface["options"] = {k: _text(v) for k, v in opts.items()} if isinstance(opts, dict) else {}
        elif where == "interface" and key == "error":
            iface["error"] = _unquote(value)
        # other attributes (trunks, bond_mode, lacp, bfd ...) are not facts
    yield from close_bridge()


# --- records: list / find / dump, text or JSON ------------------------------------------------

def _table_name(name: str) -> str:
    low = name.lower().replace("-", "_")
    return {"bridge": "Bridge", "port": "Port", "interface": "Interface", "controller": "Controller",
            "open_vswitch": "Open_vSwitch"}.get(low, name)


def _parse_records(lines: list[str], at, table: str | None) -> Iterator[Fact]:
    tables: dict[str, list[dict]] = {}
    record: dict | None = None
    for offset, line in enumerate(lines):
        if not line.strip():
            record = None
            continue
        t = _TABLE_RE.match(line.strip())
        if t:
            table = t["table"]
            record = None
            tables.setdefault(table, [])
            continue
        m = _RECORD_RE.match(line)
        if not m:
            yield Unparsed(origin=at(offset, line), reason="not an OVSDB record line (column : value)")
            continue
        if record is None or m["key"] == "_uuid":
            record = {"_origin": at(offset, line)}
            tables.setdefault(table or "?", []).append(record)
        try:
            record[m["key"]] = _ovs_value(m["value"])
        except ValueError as e:
            yield Unparsed(origin=at(offset, line), reason=f"unreadable OVSDB value: {e}")
        if m["key"] == "name":  # cite a record by its name line
            record["_origin"] = at(offset, line)
    yield from _facts_from_tables(tables)


def _parse_json(lines: list[str], at) -> Iterator[Fact]:
    tables: dict[str, list[dict]] = {}
    # one JSON object per table, each on its own line (ovsdb-client) or the whole text (ovs-vsctl)
    chunks: list[tuple[int, str]] = []
    if all(not ln.strip() or ln.lstrip().startswith("{") for ln in lines):
        chunks = [(i, ln) for i, ln in enumerate(lines) if ln.strip()]
    else:
        chunks = [(0, "\n".join(lines))]
    for offset, chunk in chunks:
        try:
            obj = json.loads(chunk)
            table = obj.get("caption", "").replace(" table", "") or None
            headings = obj["headings"]
            rows = obj["data"]
            for row in rows:
                rec = {h: _from_json(v) for h, v in zip(headings, row)}
                name = rec.get("name")
                rec["_origin"] = at(offset, f"{table or 'record'} {name or rec.get('_uuid', '')}".strip())
                tables.setdefault(table or "?", []).append(rec)
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            yield Unparsed(origin=at(offset, chunk[:300]), reason=f"not OVSDB JSON output: {e}")
    if "?" in tables:  # ovs-vsctl --format=json list X has no caption: tell the table by its columns
        rows = tables.pop("?")
        cols = set().union(*(r.keys() for r in rows)) if rows else set()
        guess = ("Interface" if "ofport" in cols else "Port" if "interfaces" in cols
                 else "Bridge" if "datapath_type" in cols else "?")
        tables[guess] = rows
    yield from _facts_from_tables(tables)


def _from_json(v: Any) -> Any:
    """OVSDB JSON notation to plain values: ["uuid", u] -> u, ["set", [...]] -> list,
    ["map", [[k, v]...]] -> dict."""
    if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str):
        kind, val = v
        if kind in ("uuid", "named-uuid"):
            return val
        if kind == "set":
            return [_from_json(x) for x in val]
        if kind == "map":
            return {str(_from_json(k)): _from_json(x) for k, x in val}
    return v


def _facts_from_tables(tables: dict[str, list[dict]]) -> Iterator[Fact]:
    controllers = {r.get("_uuid"): _text(r.get("target")) for r in tables.get("Controller", [])}
    port_bridge: dict[str, str] = {}
    for br in tables.get("Bridge", []):
        name = _text(br.get("name"))
        for p in _as_list(br.get("ports")):
            port_bridge[str(p)] = name
        yield OvsBridge(origin=br["_origin"], name=name, fail_mode=_opt(br.get("fail_mode")),
                        datapath_type=_opt(br.get("datapath_type")),
                        controllers=[controllers.get(c, str(c)) for c in _as_list(br.get("controller"))
                                     if c in controllers])
    iface_port: dict[str, dict] = {}
    for p in tables.get("Port", []):
        for i in _as_list(p.get("interfaces")):
            iface_port[str(i)] = p
    if "Interface" in tables:
        for i in tables["Interface"]:
            p = iface_port.get(str(i.get("_uuid")), {})
            yield OvsPort(origin=i["_origin"], bridge=port_bridge.get(str(p.get("_uuid"))) if p else None,
                          name=_text(i.get("name")), tag=_int(_opt(p.get("tag"))) if p else None,
                          interface_type=_opt(i.get("type")), options=_str_map(i.get("options")),
                          external_ids=_str_map(i.get("external_ids")),
                          ofport=_int(_opt(i.get("ofport"))), error=_opt(i.get("error")))
    else:
        for p in tables.get("Port", []):
            yield OvsPort(origin=p["_origin"], bridge=port_bridge.get(str(p.get("_uuid"))),
                          name=_text(p.get("name")), tag=_int(_opt(p.get("tag"))),
                          external_ids=_str_map(p.get("external_ids")))


# --- ovs-vsctl get Interface X <column> ------------------------------------------------------

def _parse_get(lines: list[str], at, name: str, column: str) -> Iterator[Fact]:
    offset, line = next((i, ln) for i, ln in enumerate(lines) if ln.strip())
    try:
        value = _ovs_value(line.strip())
    except ValueError as e:
        yield Unparsed(origin=at(offset, line), reason=f"unreadable OVSDB value: {e}")
        return
    fields: dict[str, Any] = {}
    if column in ("options", "external_ids") and isinstance(value, dict):
        fields[column] = _str_map(value)
    elif column == "ofport":
        fields["ofport"] = _int(_opt(value))
    elif column == "type":
        fields["interface_type"] = _opt(value)
    elif column == "error":
        fields["error"] = _opt(value)
    else:
        return  # a column no fact holds
    yield OvsPort(origin=at(offset, line), name=_unquote(name), **fields)


# --- OVSDB text values -------------------------------------------------------------------------

def _split_items(s: str) -> list[str]:
    """Split `a=b, c="d, e"` on the commas outside quotes."""
    items, cur, quoted, esc = [], [], False, False
    for ch in s:
        if esc:
            cur.append(ch)
            esc = False
        elif ch == "\\" and quoted:
            cur.append(ch)
            esc = True
        elif ch == '"':
            cur.append(ch)
            quoted = not quoted
        elif ch == "," and not quoted:
            items.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if quoted:
        raise ValueError(f"unterminated quote in {s[:80]!r}")
    if "".join(cur).strip():
        items.append("".join(cur).strip())
    return items


def _split_pair(item: str) -> tuple[str, str]:
    quoted = False
    for i, ch in enumerate(item):
        if ch == '"' and (i == 0 or item[i - 1] != "\\"):
            quoted = not quoted
        elif ch == "=" and not quoted:
            return item[:i], item[i + 1:]
    raise ValueError(f"map item without '=': {item[:80]!r}")


def _ovs_value(s: str) -> Any:
    s = s.strip()
    if s.startswith("{") and s.endswith("}"):
        return {_unquote(k): _scalar(v) for k, v in map(_split_pair, _split_items(s[1:-1]))}
    if s.startswith("[") and s.endswith("]"):
        return [_scalar(x) for x in _split_items(s[1:-1])]
    return _scalar(s)


def _scalar(s: str) -> Any:
    s = s.strip()
    if s.startswith('"'):
        return _unquote(s)
    if re.fullmatch(r"-?\d+", s):
        return int(s)
    return {"true": True, "false": False}.get(s, s)


def _opt(v: Any) -> Any:
    """An OVSDB optional value: [] or "" is none, [x] is x."""
    if isinstance(v, list):
        return _opt(v[0]) if len(v) == 1 else None
    if v == "":
        return None
    return v


def _as_list(v: Any) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "" if v is None else str(v)


def _int(v: Any) -> int | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return int(v)
    except (TypeError, ValueError):
        return None


def _str_map(v: Any) -> dict[str, str]:
    return {str(k): _text(x) for k, x in v.items()} if isinstance(v, dict) else {}
