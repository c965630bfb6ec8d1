"""`pcs status` and `crm_mon -1` -> ServiceState facts for cluster nodes and resources.

In HA OpenStack deployments Pacemaker runs the pieces DHCP depends on (RabbitMQ, Galera,
HAProxy, and in older releases the Neutron agents and dnsmasq themselves). A resource that
is Stopped or FAILED on every controller explains an outage before any log does. This
parser reads both the classic layout (Pacemaker 1.1, pcs 0.9: `Online: [ a b ]`,
`Clone Set: x-clone [x]`, ` name (ocf::heartbeat:agent): Started node`, `Failed Actions:`)
and the bulleted layout of Pacemaker 2.x (`* Clone Set: x-clone [x]:`, `* Started: [ a ]`,
`Failed Resource Actions:` with `returned 'error' at ...`), indented or not (pasted output
often loses indentation).

Facts (all `manager="pacemaker"` unless said):
- a cluster node: `ServiceState(name=<node>, node=<node>, state=online|offline|standby|
  unclean|maintenance, detail="node")`;
- a resource instance: `ServiceState(name=<resource>, node=<node or None>, state=started|
  stopped|failed|promoted|unpromoted|master|slave|starting|stopping, detail=<agent, set and
  flags such as "disabled", "UNCLEAN", "unmanaged">)`; a clone's `Started: [ a b ]` /
  `Stopped: [ c ]` lists give one fact per node, named after the clone;
- a past failed operation (Failed Actions): `state="failed-action"`, the operation and the
  result in `detail` (the resource may be running again now: it has its own fact);
- the cluster daemons (`Daemon Status:`): `manager="systemd"`, state active/inactive/failed;
- pcs's `Error: cluster is not currently running on this node`: `name="pacemaker",
  state="stopped"`.

Real sample (github.com/openshift/openshift-docs pull 110821, `pcs status` of Pacemaker
2.1.10):

    Full List of Resources:
      * Clone Set: kubelet-clone [kubelet]:
        * kubelet	(systemd:kubelet):	 Started master-1 (UNCLEAN)
        * Started: [ master-0 ]
      * master-0_redfish	(stonith:fence_redfish):	 FAILED master-0
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, ServiceState, Unparsed

NAME = "pacemaker"
COMMANDS = (r"^pcs\s+(?:-f\s+\S+\s+)?status\b", r"^pcs\s+resource(?:\s+(?:status|show))?\s*$",
            r"^crm_mon\b", r"^crm\s+(?:status|resource\s+status)\b")
PATHS = ("*/sos_commands/pacemaker/pcs_status*", "*/sos_commands/pacemaker/crm_mon*",
         "*/sos_commands/pacemaker/pcs_resource*", "*/sos_commands/cluster/crm_mon*",
         "*/sos_commands/crm/crm_status*")

_BULLET = r"^\s*(?:[*+-]\s+)?"
_NODE_LIST_RE = re.compile(_BULLET + r"(?P<kind>Online|OFFLINE|GuestOnline|RemoteOnline|"
                           r"RemoteOFFLINE|Standby|Maintenance):\s*\[(?P<nodes>[^\]]*)\]\s*$")
_NODE_RE = re.compile(_BULLET + r"Node (?P<node>\S+?)(?: \([^)]*\))?: (?P<state>[\w -]+?)"
                      r"(?: \((?P<why>[^)]*)\))?\s*$")
_SET_RE = re.compile(_BULLET + r"(?P<kind>Clone Set|Master/Slave Set|Resource Group|"
                     r"(?:Podman|Docker|rkt|Bundle) container set|Container bundle set|"
                     r"Container bundle)\s*:\s*(?P<name>\S+)(?:\s+\[(?P<inner>[^\]]*)\])?"
                     r"(?P<flags>(?:\s*\([^)]*\))*)\s*:?\s*$")
_MEMBERS_RE = re.compile(_BULLET + r"(?P<state>Started|Stopped|Masters|Slaves|Promoted|"
                         r"Unpromoted|Starting|Stopping|FAILED)(?: \((?P<flags>[^)]*)\))?:\s*"
                         r"\[(?P<nodes>[^\]]*)\]\s*$")
_RESOURCE_RE = re.compile(
    _BULLET + r"(?P<name>[^\s(]\S*)\s+\((?P<agent>[\w.:@-]+)\)(?:\s*\((?P<pre>[^)]*)\))?:"
    r"\s*(?P<state>Started|Stopped|FAILED|Master|Slave|Promoted|Unpromoted|Starting|Stopping|"
    r"Migrating|Demoting|Promoting|ORPHANED)(?:\s+(?P<role>Master|Slave|Promoted|Unpromoted))?"
    r"(?:\s+(?P<node>[^\s(]+))?(?P<flags>(?:\s*\([^)]*\))*)\s*$")
# Failed Actions, three generations of wording.
_FAILED_NEW_RE = re.compile(  # pacemaker 2.1: "* rsc 1m-interval monitor on node returned ..."
    _BULLET + r"(?P<rsc>\S+) (?:(?P<interval>\S+-interval) )?(?P<op>\w+) on (?P<node>\S+) "
    r"(?P<result>returned .*?|could not be executed .*?|timed out .*?)\s*$")
_FAILED_OLD_RE = re.compile(  # 1.1: "* rsc_monitor_4000 on node 'not running' (7): call=..."
    _BULLET + r"(?P<action>\S+?)_(?P<op>monitor|start|stop|promote|demote|migrate_to|"
    r"migrate_from|notify|reload)_(?P<interval>\d+) on (?P<node>\S+) (?P<result>'[^']*' "
    r"\(\d+\)).*$")
_FAILED_OLDEST_RE = re.compile(  # 1.1.6: "rsc_start_0 (node=n, call=25, rc=1, ...): unknown error"
    _BULLET + r"(?P<action>\S+?)_(?P<op>monitor|start|stop|promote|demote|migrate_to|"
    r"migrate_from|notify|reload)_(?P<interval>\d+) \(node=(?P<node>[^,]+),[^)]*\):\s*"
    r"(?P<result>.*)$")
_DAEMON_RE = re.compile(r"^\s*(?P<name>corosync|pacemaker|pacemaker_remote|pcsd|sbd|corosync-qdevice)"
                        r":\s*(?P<state>[\w-]+)(?:/(?P<enabled>[\w-]+))?\s*$")
_NOT_RUNNING_RE = re.compile(r"^Error: (?:cluster is not currently running on this node|"
                             r"unable to get cluster status)", re.I)
_CONNECTION_FAILED_RE = re.compile(r"^(?:Could not connect to the CIB|Connection to cluster "
                                   r"failed):", re.I)

# Headings and lines carrying nothing this parser turns into facts.
_SKIP_RE = re.compile(
    r"^\s*(?:[*+-]\s+)?(?:Cluster name|Cluster Summary|Stack|Current DC|Last updated|Last change|"
    r"\d+ nodes? configured|\d+ resources? configured|\d+ resource instances configured|"
    r"\d+ Nodes configured|Version|Full [Ll]ist of [Rr]esources|Node List|PCSD Status|"
    r"Daemon Status|WARNINGS?|No resources|No active resources|Inactive [Rr]esources|"
    r"Migration [Ss]ummary|Node [Aa]ttributes|Tickets|Operations|Negative [Ll]ocation|"
    r"Fencing History|Pending Fencing Actions|Failed Fencing Actions|Transaction|=+|"
    r"[\w.-]+: Online$|Clone Set:|Resource Group:|Docker container|Podman container|"
    r"Last cleaned|Cluster is|Stonith is|\w+ with \w+)", re.I)
_ATTR_SECTIONS = ("Node Attributes", "Migration Summary", "Tickets", "Operations",
                  "Negative Location", "Fencing History", "PCSD Status")

_NODE_STATES = {"online": "online", "offline": "offline", "guestonline": "online",
                "remoteonline": "online", "remoteoffline": "offline", "standby": "standby",
                "maintenance": "maintenance"}
_MEMBER_STATES = {"Started": "started", "Stopped": "stopped", "Masters": "master",
                  "Slaves": "slave", "Promoted": "promoted", "Unpromoted": "unpromoted",
                  "Starting": "starting", "Stopping": "stopping", "FAILED": "failed"}


def sniff(head: str) -> bool:
    return bool(re.search(r"^\s*(?:\* )?(?:Online|OFFLINE): \[", head, re.M)) and (
        "resources" in head.lower() or "Current DC" in head)


def _flags(text: str | None) -> list[str]:
    return re.findall(r"\(([^)]*)\)", text or "")


def parse(section: Section) -> Iterator[Fact]:
    current_set: tuple[str, str, int] | None = None  # (kind, name, indent)
    in_failed = in_attrs = in_daemons = False
    last_failed: ServiceState | None = None
    offset = -1

    def o(off: int, line: str):
        return section.origin_at(off, text=line)

    try:
        for offset, line in enumerate(section.lines() if section.lines else iter(())):
            stripped = line.strip()
            if not stripped:
                if last_failed is not None:
                    yield last_failed
                    last_failed = None
                continue
            indent = len(line) - len(line.lstrip())
            heading = stripped.lstrip("*+- ").rstrip(":")
            if re.match(r"^(?:Failed (?:Resource )?[Aa]ctions)$", heading):
                in_failed, in_attrs, in_daemons, current_set = True, False, False, None
                continue
            if heading == "Daemon Status":
                in_failed, in_attrs, in_daemons, current_set = False, False, True, None
                continue
            if any(heading.startswith(s) for s in _ATTR_SECTIONS) and stripped.rstrip().endswith(":"):
                in_failed, in_attrs, in_daemons, current_set = False, True, False, None
                continue
            if heading.startswith("Full") and "esources" in heading:
                in_failed = in_attrs = in_daemons = False
                continue
            if in_daemons:
                m = _DAEMON_RE.match(line)
                if m:
                    yield ServiceState(origin=o(offset, line), name=m["name"],
                                       state=m["state"].lower(), manager="systemd",
                                       detail=f"enabled: {m['enabled']}" if m["enabled"] else None)
                    continue
                in_daemons = False
            if in_failed:
                m = (_FAILED_NEW_RE.match(line) or _FAILED_OLD_RE.match(line)
                     or _FAILED_OLDEST_RE.match(line))
                if m:
                    if last_failed is not None:
                        yield last_failed
                    d = m.groupdict()
                    rsc = d.get("rsc") or d.get("action")
                    interval = d.get("interval")
                    what = d["op"] + (f" ({interval})" if interval and interval != "0" else "")
                    last_failed = ServiceState(origin=o(offset, line), name=rsc,
                                               state="failed-action", node=d["node"],
                                               manager="pacemaker",
                                               detail=f"{what}: {d['result'].strip()}")
                    continue
                if last_failed is not None and (indent > 0 or re.match(r"^[\w-]+=", stripped)):
                    # continuation: "last-rc-change='...', queued=0ms, exec=306ms"
                    last_failed = ServiceState(
                        origin=last_failed.origin, name=last_failed.name, state=last_failed.state,
                        node=last_failed.node, manager=last_failed.manager,
                        detail=f"{last_failed.detail} {stripped}")
                    continue
            if in_attrs:
                continue  # attribute values, fail counts, pcsd lines: not resource states
            if last_failed is not None:
                yield last_failed
                last_failed = None
            if _NOT_RUNNING_RE.match(stripped) or _CONNECTION_FAILED_RE.match(stripped):
                yield ServiceState(origin=o(offset, line), name="pacemaker", state="stopped",
                                   manager="pacemaker", detail=stripped)
                continue
            m = _NODE_LIST_RE.match(line)
            if m:
                state = _NODE_STATES[m["kind"].lower()]
                for node in m["nodes"].split():
                    yield ServiceState(origin=o(offset, line), name=node, node=node.split("@")[0]
                                       if "@" not in node else node.split("@")[1],
                                       state=state, manager="pacemaker",
                                       detail="guest node" if m["kind"] == "GuestOnline" else "node")
                current_set = None
                continue
            m = _SET_RE.match(line)
            if m:
                kind = m["kind"] + (f" [{m['inner']}]" if m["inner"] else "")
                current_set = (kind, m["name"], indent)
                continue
            if current_set is not None and indent <= current_set[2] and (
                    indent > 0 or current_set[2] > 0):
                current_set = None  # back at the set's own level: the set has ended
                # (an unindented paste cannot tell; the next set or heading ends it)
            m = _MEMBERS_RE.match(line)
            if m:
                name = current_set[1] if current_set else "?"
                flags = [m["flags"]] if m["flags"] else []
                detail = ", ".join(([current_set[0]] if current_set else []) + flags) or None
                for node in m["nodes"].split():
                    yield ServiceState(origin=o(offset, line), name=name, node=node,
                                       state=_MEMBER_STATES[m["state"]], manager="pacemaker",
                                       detail=detail)
                continue
            m = _RESOURCE_RE.match(line)
            if m:
                state = m["state"].lower()
                flags = _flags(m["flags"]) + ([m["pre"]] if m["pre"] else [])
                if m["role"]:
                    flags.insert(0, m["role"].lower())
                parts = [m["agent"]]
                if current_set is not None:
                    parts.append(f"{current_set[0]} {current_set[1]}")
                parts += flags
                yield ServiceState(origin=o(offset, line), name=m["name"], node=m["node"],
                                   state=state, manager="pacemaker", detail=", ".join(parts))
                continue
            m = _NODE_RE.match(line)
            if m and not in_attrs:
                state = m["state"].strip().lower()
                state = {"unclean": "unclean"}.get(state.split()[0], state)
                why = m["why"]
                yield ServiceState(origin=o(offset, line), name=m["node"], node=m["node"],
                                   state=state.split()[0] if state else "unknown",
                                   manager="pacemaker",
                                   detail="node" + (f", {why}" if why else ""))
                continue
            if _SKIP_RE.match(line) or stripped.startswith(("[root@", "$ ", "# ")):
                continue
            yield Unparsed(origin=o(offset, line), reason="not a pcs/crm_mon status line")
    except Exception as e:  # a broken stream: say where it broke
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading cluster status failed: {type(e).__name__}: {e}")
    if last_failed is not None:
        yield last_failed
