"""oslo.log files (Neutron, Nova and every OpenStack service) -> LogEvent facts.

An OpenStack service log is mostly DEBUG noise around a few lines that explain an outage.
This parser streams the file once, folds each record's continuation lines (a traceback
printed with the exception prefix, old `TRACE` lines, or raw lines of a multi-line
message) into that record, and keeps a record as a `LogEvent` when it is a WARNING or
worse or when it carries a known signature (`whynoip.parsers.signatures`); every other
record is only counted, by level, in the `LogSummary` that closes the section, with the
time span the log covers. A line is first tested cheaply (its level field, then one
substring alternation of the signatures' needles), so DEBUG lines cost a split and a
search and a 100 MB debug log stays streamable.

Real sample (real-samples var/log/neutron/neutron-dhcp-agent.log.1, hotsos, Apache-2.0):

    2022-02-09 22:38:46.407 1590 INFO neutron.agent.dhcp.agent [-] Synchronizing state
    2022-02-09 22:38:46.444 1590 ERROR oslo.messaging._drivers.impl_rabbit [req-256e4f13-1462-43bc-980c-1f1848e34614 - - - - -] Connection failed: [Errno 111] ECONNREFUSED (retrying in 2.0 seconds): ConnectionRefusedError: [Errno 111] ECONNREFUSED
    2022-02-04 10:59:16.020 224217 ERROR neutron.agent.dhcp.agent [req-ec612d37-4dba-44e1-a2b7-f72fa08c35e7 - - - - -] Failed reporting state!: oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to message ID 5c4d5e139a5a481ba8d5687f1525a0fe
    2022-02-04 10:59:16.020 224217 ERROR neutron.agent.dhcp.agent Traceback (most recent call last):
    2022-02-04 10:59:16.020 224217 ERROR neutron.agent.dhcp.agent   File "/usr/lib/python3/dist-packages/oslo_messaging/_drivers/amqpdriver.py", line 433, in get

gives, for the second line, `LogEvent(service="neutron-dhcp-agent", level="ERROR",
logger="oslo.messaging._drivers.impl_rabbit", pid=1590,
request_id="req-256e4f13-...", signal="amqp-connection-refused",
params={"reason": "[Errno 111] ECONNREFUSED", "retry": "2.0"})`; the third and its
traceback become one event (signal `agent-report-failed`); the INFO `Synchronizing state`
is kept for its signature (`dhcp-sync-start`).

Times carry no zone; they are read as UTC (see `_time`).
"""

from __future__ import annotations

import os
import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, LogEvent, LogSummary, Unparsed
from whynoip.parsers import signatures
from whynoip.parsers._stray import StrayRun
from whynoip.parsers._time import iso_time

NAME = "oslo_log"
COMMANDS: tuple[str, ...] = ()  # read through cat/tail/grep: the file's path decides
PATHS = (
    "*/var/log/neutron/neutron-*.log", "*/var/log/neutron/neutron-*.log.[0-9]*",
    "*/var/log/neutron/server.log*", "*/var/log/neutron/*-agent.log*",
    "*/var/log/neutron/neutron.log*",
    "*/var/log/nova/nova-*.log", "*/var/log/nova/nova-*.log.[0-9]*",
    "*/var/log/nova/compute.log*", "*/var/log/nova/conductor.log*",
    "*/var/log/nova/scheduler.log*", "*/var/log/nova/api.log*",
    "*/var/log/quantum/*.log*",
    "*/var/log/containers/neutron/*agent*.log*", "*/var/log/containers/neutron/server.log*",
    "*/var/log/containers/nova/nova-*.log*",
    "*/var/log/kolla/neutron/neutron-*.log*", "*/var/log/kolla/nova/nova-*.log*",
    "*/var/log/cinder/*.log*", "*/var/log/glance/*.log*",
)

LEVELS = {"DEBUG": "DEBUG", "INFO": "INFO", "AUDIT": "INFO", "WARNING": "WARNING",
          "WARN": "WARNING", "ERROR": "ERROR", "CRITICAL": "CRITICAL", "FATAL": "CRITICAL",
          "TRACE": "TRACE"}
KEPT_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})
MAX_CONTINUATION = 400  # lines folded into one event; beyond that they are only counted

_HEAD_RE = re.compile(
    r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? \d+ "
    r"(?:DEBUG|INFO|AUDIT|WARNING|WARN|ERROR|CRITICAL|FATAL|TRACE) \S", re.M)
_INSTANCE_RE = re.compile(r"\[instance: (?P<id>[0-9a-f-]{36})\] ?")
# A continuation line that repeats the full prefix, context included (some writers prefix
# every line of a traceback or multi-line message that way): only these shapes are folded.
_TRACEBACK_LINE_RE = re.compile(
    r"^(?:$|\s|Traceback \(most recent call last\)|During handling of the above exception|"
    r"The above exception was the direct cause|[\w.]+(?:Error|Exception|Exit|Timeout|Empty|"
    r"Failure|Interrupt)\b)")

# Service name from a logger, when neither the path nor the command names the service.
_LOGGER_SERVICES = (
    ("neutron.agent.dhcp", "neutron-dhcp-agent"), ("neutron.agent.l3", "neutron-l3-agent"),
    ("neutron.agent.metadata", "neutron-metadata-agent"),
    ("neutron.plugins.ml2.drivers.openvswitch.agent", "neutron-openvswitch-agent"),
    ("neutron.plugins.ml2.drivers.linuxbridge.agent", "neutron-linuxbridge-agent"),
    ("neutron.plugins.ml2", "neutron-server"), ("neutron.db", "neutron-server"),
    ("neutron.api", "neutron-server"), ("neutron.scheduler", "neutron-server"),
    ("nova.compute", "nova-compute"), ("nova.virt", "nova-compute"),
    ("nova.conductor", "nova-conductor"), ("nova.scheduler", "nova-scheduler"),
    ("nova.api", "nova-api"),
)
_PROJECTS = {"neutron", "nova", "quantum", "cinder", "glance", "keystone", "heat", "octavia"}


def sniff(head: str) -> bool:
    return _HEAD_RE.search(head) is not None


def service_from_path(path: str | None) -> str | None:
    """`/var/log/neutron/neutron-dhcp-agent.log.1` -> neutron-dhcp-agent; RHEL and TripleO
    names without the project (`/var/log/neutron/dhcp-agent.log`) get it from the folder."""
    if not path or path == "-":
        return None
    base = os.path.basename(path)
    name = re.sub(r"\.log(?:[.-].*)?$", "", base)
    if not name or name == base and "." in base:
        return None
    project = os.path.basename(os.path.dirname(path))
    if project in _PROJECTS and not name.startswith(project):
        name = f"{project}-{name}"
    return name


def service_from_command(command: str | None) -> str | None:
    if not command:
        return None
    for token in reversed(command.split()):
        if ".log" in token:
            return service_from_path(token)
    return None


def service_from_logger(logger: str | None) -> str | None:
    if not logger:
        return None
    for prefix, service in _LOGGER_SERVICES:
        if logger.startswith(prefix):
            return service
    return None


def split_context(rest: str) -> tuple[str | None, str | None, str]:
    """`[req-X user project - - -] [instance: Y] message` -> (request id, instance, message).
    Handles `[-]`, `[None req-X ...]` and `[req-global req-local ...]` (global request id)."""
    request_id = instance = None
    if rest.startswith("["):
        end = rest.find("] ")
        if end < 0 and rest.endswith("]"):
            end = len(rest) - 1
        if end > 0:
            tokens = rest[1:end].split()
            if tokens:
                first = tokens[0]
                second = tokens[1] if len(tokens) > 1 else ""
                if second.startswith("req-") and (first == "None" or first.startswith("req-")):
                    request_id = second
                elif first.startswith("req-"):
                    request_id = first
            rest = rest[end + 2:]
    m = _INSTANCE_RE.match(rest)
    if m:
        instance = m["id"]
        rest = rest[m.end():]
    return request_id, instance, rest


class Tally:
    """What a log parser counted: lines, records, kept records, dropped records by level,
    the first and last record time. Closes the section as one LogSummary fact."""

    __slots__ = ("lines", "records", "kept", "dropped", "first_time", "last_time",
                 "time_inferred", "first_line")

    def __init__(self) -> None:
        self.lines = self.records = self.kept = 0
        self.dropped: dict[str, int] = {}
        self.first_time: float | None = None
        self.last_time: float | None = None
        self.time_inferred = False
        self.first_line = 0

    def drop(self, level: str | None) -> None:
        key = level or "unknown"
        self.dropped[key] = self.dropped.get(key, 0) + 1

    def saw_time(self, t: float | None, inferred: bool = False) -> None:
        if t is None:
            return
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t
        self.time_inferred = self.time_inferred or inferred

    def summary(self, section: Section, service: str | None) -> LogSummary:
        return LogSummary(origin=section.origin_at(0), service=service, lines=self.lines,
                          records=self.records, kept=self.kept, dropped=dict(self.dropped),
                          first_time=self.first_time, last_time=self.last_time,
                          time_inferred=self.time_inferred)


def log_events(origin, *, message: str, time: float | None, time_inferred: bool = False,
               service: str | None, level: str | None, logger: str | None = None,
               request_id: str | None = None, pid: int | None = None,
               params: dict[str, str] | None = None, headline: str | None = None,
               matches: list[tuple[str, dict[str, str]]] | None = None) -> list[LogEvent]:
    """The LogEvent(s) of one kept record: one per signal occurrence (a health check that
    lists three dead agents gives three), or one without a signal."""
    if matches is None:
        matches = signature_matches(message, headline)
    base = dict(params or {})
    if not matches:
        return [LogEvent(origin=origin, time=time, time_inferred=time_inferred, service=service,
                         level=level, logger=logger, request_id=request_id, pid=pid,
                         message=message, params=base)]
    return [LogEvent(origin=origin, time=time, time_inferred=time_inferred, service=service,
                     level=level, logger=logger, request_id=request_id, pid=pid, message=message,
                     signal=signal, params={**base, **p}) for signal, p in matches]


def signature_matches(message: str, headline: str | None = None) -> list[tuple[str, dict[str, str]]]:
    """Signatures of a record: its first line decides when it has one (the headline says what
    happened; a traceback only says how), else the whole record."""
    first = headline if headline is not None else message.split("\n", 1)[0]
    found = signatures.match_all(first)
    if found and found[0][0] == "agent-down" and len(message) > len(first):
        found = signatures.match_all(message)  # the dead agents are listed below the headline
    if not found and len(message) > len(first):
        found = signatures.match_all(message)
    return found


class _Record:
    __slots__ = ("offset", "line", "date", "pid", "level", "logger", "ctx", "rest", "cont",
                 "extra", "hit")

    def __init__(self, offset, line, date, pid, level, logger, ctx, rest, hit):
        self.offset = offset
        self.line = line
        self.date = date
        self.pid = pid
        self.level = level
        self.logger = logger
        self.ctx = ctx  # the raw context bracket, to recognise repeated prefixes
        self.rest = rest
        self.cont: list[str] = []
        self.extra = 0  # continuation lines beyond MAX_CONTINUATION
        self.hit = hit  # a signature needle was seen in one of its lines


def _split_head(line: str):
    """(date, pid, level, logger, rest) when `line` starts an oslo.log record, else None.
    Plain string operations: this runs on every line of the file."""
    if len(line) < 26 or not line[0].isdigit() or line[4] != "-":
        return None
    if line[10] == " ":
        parts = line.split(" ", 5)
        if len(parts) < 5:
            return None
        date = parts[0] + " " + parts[1]
        parts = parts[2:]
    elif line[10] == "T":
        parts = line.split(" ", 4)
        if len(parts) < 4:
            return None
        date = parts[0]
        parts = parts[1:]
    else:
        return None
    pid, level, logger = parts[0], parts[1], parts[2]
    if level not in LEVELS or not pid.isdigit() or date[13:14] != ":":
        return None
    rest = parts[3] if len(parts) > 3 else ""
    return date, pid, LEVELS[level], logger, rest


def parse(section: Section) -> Iterator[Fact]:
    origin = section.origin
    service = (service_from_path(origin.path) or service_from_command(origin.command))
    tally = Tally()
    first_logger: str | None = None
    cur: _Record | None = None
    orphans = StrayRun(section, "continuation lines before the first oslo.log record "
                                "(the log was cut in the middle of a record)")
    has_needle = signatures.may_match_quiet
    max_cont = MAX_CONTINUATION

    def flush(rec: _Record) -> list[Fact]:
        level = "ERROR" if rec.level == "TRACE" else rec.level
        if level not in KEPT_LEVELS and not rec.hit:
            tally.drop(level)
            return []
        request_id, instance, msg = split_context(rec.rest)
        message = msg
        if rec.cont:
            message = msg + "\n" + "\n".join(rec.cont)
            if rec.extra:
                message += f"\n[{rec.extra} more lines]"
        matches = signature_matches(message, msg)
        if not matches and level not in KEPT_LEVELS:
            tally.drop(level)  # a needle without its signature: still only DEBUG/INFO noise
            return []
        t = iso_time(rec.date)
        params = {"instance": instance} if instance else None
        events = log_events(section.origin_at(rec.offset, text=rec.line), message=message,
                            time=t[0] if t else None, service=service or service_from_logger(
                                rec.logger) or service_from_logger(first_logger),
                            level=level, logger=rec.logger, request_id=request_id,
                            pid=int(rec.pid), params=params, matches=matches)
        tally.kept += 1
        return events

    offset = -1
    last_date = first_date = None
    try:
        for offset, line in enumerate(section.lines()):
            head = _split_head(line)
            if head is not None:
                date, pid, level, logger, rest = head
                if cur is not None and pid == cur.pid and logger == cur.logger and (
                        level == "TRACE" or (date == cur.date and level == cur.level and (
                            not rest.startswith("[")
                            or (rest.startswith(cur.ctx) and cur.ctx
                                and _TRACEBACK_LINE_RE.match(rest[len(cur.ctx):]))))):
                    # the same record goes on: a traceback line or a repeated prefix
                    text = rest
                    if cur.ctx and rest.startswith(cur.ctx):
                        text = rest[len(cur.ctx):]
                    if len(cur.cont) < max_cont:
                        cur.cont.append(text)
                    else:
                        cur.extra += 1
                    if not cur.hit and has_needle(text):
                        cur.hit = True
                    continue
                yield from orphans.flush()
                if cur is not None:
                    yield from flush(cur)
                tally.records += 1
                if first_date is None:
                    first_date = date
                    first_logger = logger
                last_date = date
                ctx = ""
                if rest.startswith("["):
                    end = rest.find("] ")
                    if end > 0:
                        ctx = rest[:end + 2]
                # `hit` also stands for "kept anyway": no needle search for WARNING+
                cur = _Record(offset, line, date, pid, level, logger, ctx, rest,
                              level in KEPT_LEVELS or has_needle(rest))
                continue
            # not a record header: a raw continuation line (or junk before the first record)
            if cur is None:
                if line.strip():
                    orphans.add(offset)
                continue
            if len(cur.cont) < max_cont:
                cur.cont.append(line)
            else:
                cur.extra += 1
            if not cur.hit and has_needle(line):
                cur.hit = True
    except Exception as e:  # a broken stream: say where it broke, keep what was read
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading the log failed: {type(e).__name__}: {e}")
    yield from orphans.flush()
    if cur is not None:
        yield from flush(cur)
    tally.lines = offset + 1
    for d in (first_date, last_date):
        if d is not None:
            t = iso_time(d)
            tally.saw_time(t[0] if t else None)
    yield tally.summary(section, service or service_from_logger(first_logger))
