"""RabbitMQ broker logs -> LogEvent facts, in the three layouts RabbitMQ has written.

When the message bus is sick every OpenStack agent looks dead, so the broker's own log is
where a chain of faults often starts: a full disk raises the disk alarm, publishers are
blocked, agents stop reporting, DHCP stops being updated. This parser reads

- RabbitMQ up to 3.6 (Erlang error_logger): multi-line blocks under a header
  `=WARNING REPORT==== 7-Oct-2015::23:16:34 ===` (INFO, WARNING, ERROR, CRASH,
  SUPERVISOR, PROGRESS reports), a block running until the next header;
- RabbitMQ 3.7/3.8 (lager): `2019-04-17 19:46:29.300 [warning] <0.298.0> message`, with
  the rest of a multi-line message on raw lines;
- RabbitMQ 3.9+ (Erlang logger): `2023-05-02 10:00:00.123456+00:00 [warning] <0.123.0>
  message`, every line of a multi-line message repeating the same prefix;

and keeps a record as a LogEvent when it is a warning or worse or carries a known
signature (disk alarm set/cleared, free disk space insufficient, inconsistent_cluster,
enospc, partitions); the rest is counted in the closing LogSummary.

Real sample (tests/fixtures/capture/rabbitmq_log.sh, RabbitMQ 3.10.8 on this machine):

    2026-11-21 05:59:55.406842+00:00 [info] <0.375.0> Free disk space is insufficient. Free bytes: 85321617408. Limit: 1000000000000000
    2026-11-21 05:59:55.407092+00:00 [warning] <0.371.0> disk resource limit alarm set on node 'wnp-log@localhost'.
    2026-11-21 05:59:55.407092+00:00 [warning] <0.371.0>
    2026-11-21 05:59:55.407092+00:00 [warning] <0.371.0> **********************************************************
    2026-11-21 05:59:55.407092+00:00 [warning] <0.371.0> *** Publishers will be blocked until this alarm clears ***

gives `LogEvent(service="rabbitmq", level="INFO", signal="disk-free-insufficient",
params={"free_bytes": "85321617408", "limit_bytes": "1000000000000000"})` and one
`LogEvent(level="WARNING", signal="disk-alarm-set", params={"node": "wnp-log@localhost"})`
whose message holds the whole banner.
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, Unparsed
from whynoip.parsers import signatures
from whynoip.parsers._time import iso_time, rabbit_old_time
from whynoip.parsers._stray import StrayRun
from whynoip.parsers.oslo_log import MAX_CONTINUATION, Tally, log_events, signature_matches

NAME = "rabbitmq_log"
COMMANDS = (r"\brabbitmq-diagnostics\b.*\blog_tail\b", r"\brabbitmqctl\b.*\blog_tail\b")
PATHS = (
    "*/var/log/rabbitmq/*.log", "*/var/log/rabbitmq/*.log.[0-9]*",
    "*/var/log/rabbitmq/*.log-*", "*/var/log/containers/rabbitmq/*.log*",
    "*/var/log/kolla/rabbitmq/*.log*",
)
SERVICE = "rabbitmq"

_OLD_HEAD_RE = re.compile(
    r"^=(?P<kind>INFO|WARNING|ERROR|CRASH|SUPERVISOR|PROGRESS|INFO MSG|WARNING MSG|ERROR MSG)"
    r" REPORT==== (?P<time>\d{1,2}-[A-Z][a-z]{2}-\d{4}::\d\d:\d\d:\d\d) ===\s*$")
_NEW_HEAD_RE = re.compile(
    r"^(?P<date>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?) "
    r"\[(?P<level>[a-z]+)\] (?:(?P<pid><[\d.]+>|emulator) ?)?(?P<msg>.*)$")
_SNIFF_RE = re.compile(
    r"^(?:=(?:INFO|WARNING|ERROR|CRASH|SUPERVISOR|PROGRESS) REPORT==== \d{1,2}-[A-Z][a-z]{2}-\d{4}::"
    r"|\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d)? \[(?:debug|info|notice|"
    r"warning|error|critical)\] <\d+\.\d+\.\d+>)", re.M)

_OLD_LEVELS = {"INFO": "INFO", "PROGRESS": "INFO", "INFO MSG": "INFO", "WARNING": "WARNING",
               "WARNING MSG": "WARNING", "ERROR": "ERROR", "ERROR MSG": "ERROR",
               "CRASH": "ERROR", "SUPERVISOR": "ERROR"}
_NEW_LEVELS = {"debug": "DEBUG", "info": "INFO", "notice": "INFO", "warning": "WARNING",
               "warn": "WARNING", "error": "ERROR", "critical": "CRITICAL", "alert": "CRITICAL",
               "emergency": "CRITICAL"}
KEPT_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})


def sniff(head: str) -> bool:
    return _SNIFF_RE.search(head) is not None


def _may_match(text: str) -> bool:
    """The prefilter for records below WARNING: the broker logs its signatures at INFO with a
    capital letter ("Free disk space is insufficient", "Disabling disk free space
    monitoring"), and only older releases may log an alarm change at INFO; the rest (alarm
    set, enospc, partitions, inconsistent_cluster) come as warnings or errors, kept anyway."""
    return signatures.may_match_quiet(text) or "resource limit alarm" in text


def _stamp_time(stamp: str) -> float | None:
    """The time of a record header's stamp (3.x `3-Mar-2019::11:02:17` or ISO): parsed only
    for kept records and the first and last one, not for every line of a big log."""
    if "::" in stamp:
        return rabbit_old_time(stamp)
    t = iso_time(stamp)
    return t[0] if t else None


class _Record:
    __slots__ = ("offset", "line", "stamp", "level", "prefix", "lines", "extra", "hit")

    def __init__(self, offset: int, line: str, stamp: str, level: str, prefix: str,
                 first: str | None):
        self.offset = offset
        self.line = line
        self.stamp = stamp
        self.level = level
        self.prefix = prefix  # repeated by RabbitMQ 3.9+ on every line of the record
        self.lines: list[str] = [] if first is None else [first]
        self.extra = 0
        self.hit = level in KEPT_LEVELS or (first is not None and _may_match(first))

    def add(self, text: str) -> None:
        if len(self.lines) < MAX_CONTINUATION:
            self.lines.append(text)
        else:
            self.extra += 1
        if not self.hit and _may_match(text):
            self.hit = True


def parse(section: Section) -> Iterator[Fact]:
    tally = Tally()
    cur: _Record | None = None
    orphans = StrayRun(section, "lines before the first RabbitMQ log record (not a RabbitMQ "
                                "log, or the log was cut in the middle of a record)")

    def flush(rec: _Record) -> list[Fact]:
        if not rec.hit:
            tally.drop(rec.level)
            return []
        lines = list(rec.lines)
        while lines and not lines[-1].strip():
            lines.pop()  # the blank line that ends a 3.x block
        while lines and not lines[0].strip():
            lines.pop(0)
        message = "\n".join(lines)
        if rec.extra:
            message += f"\n[{rec.extra} more lines]"
        headline = lines[0] if lines else ""
        matches = signature_matches(message, headline)
        if not matches and rec.level not in KEPT_LEVELS:
            tally.drop(rec.level)
            return []
        tally.kept += 1
        return log_events(section.origin_at(rec.offset, text=rec.line), message=message,
                          time=_stamp_time(rec.stamp), service=SERVICE, level=rec.level,
                          matches=matches)

    offset = -1
    first_stamp = last_stamp = None
    try:
        for offset, line in enumerate(section.lines()):
            head = None
            if line[:1] == "=":
                m = _OLD_HEAD_RE.match(line)
                if m:
                    head = (m["time"], _OLD_LEVELS[m["kind"]], None, None)
            elif line[:1].isdigit():
                m = _NEW_HEAD_RE.match(line)
                if m and m["level"] in _NEW_LEVELS:
                    prefix = line[:m.start("msg")]
                    if cur is not None and cur.prefix and prefix.rstrip() == cur.prefix.rstrip():
                        cur.add(m["msg"])  # 3.9+: the same record, prefix repeated
                        continue
                    head = (m["date"], _NEW_LEVELS[m["level"]], prefix, m["msg"])
            if head is None:
                if cur is None:
                    if line.strip():
                        orphans.add(offset)
                    continue
                cur.add(line)
                continue
            yield from orphans.flush()
            if cur is not None:
                yield from flush(cur)
            stamp, level, prefix, first = head
            tally.records += 1
            if first_stamp is None:
                first_stamp = stamp
            last_stamp = stamp
            cur = _Record(offset, line, stamp, level, prefix or "", first)
    except Exception as e:  # a broken stream: say where it broke, keep what was read
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading the log failed: {type(e).__name__}: {e}")
    yield from orphans.flush()
    if cur is not None:
        yield from flush(cur)
    tally.lines = offset + 1
    for stamp in (first_stamp, last_stamp):
        if stamp is not None:
            tally.saw_time(_stamp_time(stamp))
    yield tally.summary(section, SERVICE)
