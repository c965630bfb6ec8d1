"""systemd's view of services -> ServiceState facts (`manager="systemd"`).

Whether neutron-dhcp-agent, openvswitch-switch, libvirtd, nova-compute or rabbitmq-server
is running is the first thing to know on a node. This parser reads

- `systemctl list-units` and `systemctl list-units --failed` / `systemctl --failed`: one
  fact per unit row (`●` marks a failed unit), `state` = the SUB state for active units
  (`running`, `exited`, `plugged`, ...), else the ACTIVE state (`failed`, `inactive`,
  `activating`); `detail` keeps LOAD/ACTIVE/SUB and the description;
- `systemctl status UNIT...`: the header of each unit (`● unit - Description`, `Loaded:`,
  `Active: failed (Result: exit-code) since ...`, `Main PID:`); the journal lines that
  follow are read by the syslog parser (kept when they are warnings or carry a signature);
  `Unit x.service could not be found.` gives state `not-found`;
- `systemctl is-active UNIT`: the one word it prints.

Real sample (real-samples sos_commands/systemd/systemctl_list-units, hotsos, Apache-2.0):

      UNIT                                   LOAD   ACTIVE SUB       DESCRIPTION
      logrotate.timer                        loaded active waiting   Daily rotation of log files

gives `ServiceState(name="logrotate.timer", state="waiting", manager="systemd",
detail="loaded active waiting: Daily rotation of log files")`.
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, ServiceState, Unparsed

NAME = "systemctl"
COMMANDS = (r"^systemctl(?:\s+--\S+)*\s+(?:list-units|--failed|status|is-active)\b",
            r"^systemctl\s*$")
PATHS = ("*/sos_commands/systemd/systemctl_list-units*",
         "*/sos_commands/systemd/systemctl_status_--all", "*/sos_commands/*/systemctl_status_*",
         "*/sos_commands/systemd/systemctl_--failed*")

_UNIT_ROW_RE = re.compile(
    r"^\s*(?:[●*×]\s*)?(?P<unit>\S+\.(?:service|socket|target|mount|automount|device|timer|"
    r"path|slice|scope|swap))\s+(?P<load>loaded|not-found|bad-setting|error|masked|merged|stub)"
    r"\s+(?P<active>\S+)\s+(?P<sub>\S+)(?:\s+(?P<desc>.*?))?\s*$")
_STATUS_HEAD_RE = re.compile(r"^(?:[●*×○↻]\s*)?(?P<unit>\S+\.(?:service|socket|target|mount|"
                             r"timer|path|scope|slice|device|swap|automount))"
                             r"(?: - (?P<desc>.*))?\s*$")
_STATUS_FIELD_RE = re.compile(r"^\s+(?P<key>Loaded|Active|Main PID|Status|Process|Tasks|Memory|"
                              r"CPU|CGroup|Docs|Drop-In|TriggeredBy|Triggers|IP|IO|Invocation|"
                              r"Mem peak|Swap peak|Listen|Accepted|Connected|Trigger|Condition|"
                              r"Assert|Notice|Warning)\s*: ?(?P<value>.*)$")
_ACTIVE_RE = re.compile(r"^(?P<active>[\w-]+)(?: \((?P<sub>[^)]*)\))?")
_NOT_FOUND_RE = re.compile(r"^Unit (?P<unit>\S+?)\.? could not be found\.?\s*$")
_LEGEND_RE = re.compile(r"^(?:\s*UNIT\s+LOAD|LOAD\s+=|ACTIVE\s+=|SUB\s+=|\d+ (?:loaded )?units? "
                        r"listed|To show all|Pass --all|\s*$)")
_IS_ACTIVE_WORDS = {"active", "inactive", "failed", "activating", "deactivating", "reloading",
                    "unknown", "maintenance", "refreshing"}


def sniff(head: str) -> bool:
    return bool(re.search(r"^\s*UNIT\s+LOAD\s+ACTIVE\s+SUB\s+DESCRIPTION", head, re.M)) or bool(
        re.search(r"^\s+Loaded: (?:loaded|not-found|masked)", head, re.M))


def _state(active: str, sub: str | None) -> str:
    if active == "active" and sub:
        return sub
    return active


def parse(section: Section) -> Iterator[Fact]:
    command = section.origin.command or ""
    lines = section.lines() if section.lines else iter(())
    offset = -1
    # systemctl status: the unit being described, and where its journal lines start
    unit: dict | None = None
    journal: list[tuple[int, str]] = []

    def finish_unit() -> list[Fact]:
        nonlocal unit
        out: list[Fact] = []
        if unit is not None:
            active = unit.get("active")
            if active:
                m = _ACTIVE_RE.match(active)
                state = _state(m["active"], m["sub"]) if m else "unknown"
            else:
                state = "unknown"
            parts = [p for p in (unit.get("loaded") and f"Loaded: {unit['loaded']}",
                                 active and f"Active: {active}",
                                 unit.get("pid") and f"Main PID: {unit['pid']}",
                                 unit.get("desc")) if p]
            out.append(ServiceState(origin=section.origin_at(unit["offset"], text=unit["line"]),
                                    name=unit["name"], state=state, manager="systemd",
                                    detail="; ".join(parts) or None))
            unit = None
        return out

    def read_journal() -> list[Fact]:
        if not journal:
            return []
        from whynoip.parsers import syslog  # the journal tail of `systemctl status`
        offsets = [section.origin_at(o).line for o, _ in journal]
        sub = Section.from_lines([t for _, t in journal], section.origin, line_map=offsets,
                                 ref_time=section.ref_time)
        journal.clear()
        return [f for f in syslog.parse(sub) if type(f).__name__ != "LogSummary"]

    m = re.search(r"\bis-active\s+(?P<units>.+)$", command)
    is_active_units = m["units"].split() if m else []
    try:
        for offset, line in enumerate(lines):
            if is_active_units and line.strip() in _IS_ACTIVE_WORDS:
                name = is_active_units.pop(0) if is_active_units else "?"
                yield ServiceState(origin=section.origin_at(offset, text=line), name=name,
                                   state=line.strip(), manager="systemd")
                continue
            m = _UNIT_ROW_RE.match(line)
            if m and unit is None:
                desc = m["desc"] or ""
                yield ServiceState(origin=section.origin_at(offset, text=line), name=m["unit"],
                                   state=_state(m["active"], m["sub"]), manager="systemd",
                                   detail=f"{m['load']} {m['active']} {m['sub']}"
                                          + (f": {desc}" if desc else ""))
                continue
            m = _NOT_FOUND_RE.match(line.strip())
            if m:
                yield from finish_unit()
                yield from read_journal()
                name = m["unit"] if "." in m["unit"] else m["unit"] + ".service"
                yield ServiceState(origin=section.origin_at(offset, text=line), name=name,
                                   state="not-found", manager="systemd")
                continue
            m = _STATUS_HEAD_RE.match(line)
            if m and not line[:1].isspace():
                yield from finish_unit()
                yield from read_journal()
                unit = {"name": m["unit"], "desc": m["desc"], "offset": offset, "line": line}
                continue
            if unit is not None:
                f = _STATUS_FIELD_RE.match(line)
                if f and not journal:
                    key = f["key"]
                    if key == "Loaded":
                        unit["loaded"] = f["value"]
                    elif key == "Active":
                        unit["active"] = f["value"]
                    elif key == "Main PID":
                        unit["pid"] = f["value"]
                    continue
                if line[:1].isspace() and not journal:
                    continue  # the CGroup tree and other indented header lines
                if line.strip():
                    journal.append((offset, line))
                continue
            if _LEGEND_RE.match(line):
                continue
            yield Unparsed(origin=section.origin_at(offset, text=line),
                           reason="not a systemctl line")
    except Exception as e:  # a broken stream: say where it broke
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading systemctl output failed: {type(e).__name__}: {e}")
    yield from finish_unit()
    yield from read_journal()
