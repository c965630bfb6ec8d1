"""Syslog files and journalctl output -> LogEvent facts (and dnsmasq facts).

The host's syslog is where dnsmasq logs by default, where libvirtd, the kernel, systemd and
OpenStack services running under journald end up, and where a full disk or a failed unit
shows first. This parser reads the file formats operators have:

- BSD syslog: `Mar  3 11:02:17 host prog[pid]: message` (no year: it is inferred from when
  the evidence was taken, and the event says so with `time_inferred`; no zone: UTC, unless
  journalctl's `-- Logs begin at ... PDT` header names one);
- rsyslog's ISO format: `2022-02-10T16:18:11.227123+00:00 host prog[pid]: message`;
- journalctl (`short`, `short-precise`, `short-iso`, `short-iso-precise`), including its
  `-- Logs begin at ... --` / `-- No entries --` / `-- Reboot --` lines and the indented
  continuation lines of multi-line messages.

The service is the program name (`neutron-dhcp-agent`, `libvirtd`, `kernel`). Lines from
dnsmasq (`dnsmasq`, `dnsmasq-dhcp`) are handed to `whynoip.parsers.dnsmasq_log` and become
its facts. Other lines are kept as LogEvents when they match a known signature or are
warnings or worse: the level is the one the message states (oslo.log's `ERROR`, libvirt's
`: error :`, Open vSwitch's `|ERR|`, a leading `WARNING:`); a message that states none is
kept, with no level, when it says it failed (error, failed, cannot, denied, ...). The rest
is counted in the closing LogSummary.

Real sample (real-samples var/log/syslog, hotsos, Apache-2.0):

    Feb 10 09:10:53 compute4 systemd[1]: ceph-osd@0.service: Main process exited, code=exited, status=1/FAILURE
    Feb 10 16:09:49 compute4 networkd-dispatcher[921]: WARNING:Unknown index 33 seen, reloading interface list
    Feb 10 16:10:35 compute4 Keepalived[1775812]: Starting Keepalived v2.0.19 (10/19,2019)

gives a LogEvent (service `systemd`, pid 1, no level: the message says FAILURE), a
LogEvent with level WARNING (service `networkd-dispatcher`), and only a count for the third.
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, Unparsed
from whynoip.parsers._time import iso_time, syslog_time
from whynoip.parsers.oslo_log import (LEVELS as OSLO_LEVELS, MAX_CONTINUATION, Tally,
                                      log_events, signature_matches, split_context)

try:  # written alongside; the dnsmasq lines fall back to plain LogEvents without it
    from whynoip.parsers import dnsmasq_log as _dnsmasq_log
except ImportError:  # pragma: no cover - depends on the dnsmasq parser being present
    _dnsmasq_log = None

NAME = "syslog"
COMMANDS = (r"^journalctl\b",)
PATHS = (
    "*/var/log/syslog*", "*/var/log/messages*", "*journal*",
    "*/var/log/daemon.log*", "*/var/log/kern.log*",
)

DNSMASQ_PROGRAMS = frozenset({"dnsmasq", "dnsmasq-dhcp", "dnsmasq-tftp", "dnsmasq-script"})

_LINE_RE = re.compile(
    r"^(?:(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"|(?P<bsd>[A-Z][a-z]{2} [ \d]?\d \d\d:\d\d:\d\d(?:\.\d+)?)) +"
    r"(?:(?P<host>[^\s\[\]:]+) )?(?P<prog>[^\s\[:]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$")
_JOURNAL_META_RE = re.compile(r"^-- (?:Logs begin at|Journal begins at|No entries|Reboot|Boot "
                              r"[0-9a-f]+|Logs? (?:end|ended)|Subject:|Defined-By:|Support:)")
# journalctl's first line names the zone its short-format times are printed in.
_JOURNAL_ZONE_RE = re.compile(r"^-- (?:Logs begin at|Journal begins at) \w{3} \d{4}-\d\d-\d\d "
                              r"\d\d:\d\d:\d\d (?P<zone>[A-Z]{1,5}|[+-]\d{4})[,.]")
_SNIFF_RE = re.compile(
    r"^(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?|[A-Z][a-z]{2} [ \d]?\d "
    r"\d\d:\d\d:\d\d(?:\.\d+)?) [^\s\[\]:]+ [^\s\[:]+(?:\[\d+\])?: ", re.M)

# Levels as messages state them.
_OSLO_RE = re.compile(
    r"^(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \d+ )?(?P<level>DEBUG|INFO|AUDIT|WARNING|"
    r"ERROR|CRITICAL|TRACE) (?P<logger>[a-z][\w.]*) (?P<rest>\[.*)$")
_LIBVIRT_RE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+\d{4}: \d+: (?P<level>debug|"
                         r"info|warning|error) : ")
_OVS_RE = re.compile(r"\|(?P<level>EMER|ERR|WARN|INFO|DBG)\|")
_LEADING_RE = re.compile(r"^(?:<(?P<tag>\w+)>\s*)?(?P<level>ERROR|Error|error|WARNING|Warning|"
                         r"warning|WARN|CRITICAL|Critical|FATAL|Fatal|EMERG|ALERT)\b[:\s-]")
_OVS_LEVELS = {"EMER": "CRITICAL", "ERR": "ERROR", "WARN": "WARNING", "INFO": "INFO",
               "DBG": "DEBUG"}
_LEADING_LEVELS = {"error": "ERROR", "warning": "WARNING", "warn": "WARNING",
                   "critical": "CRITICAL", "fatal": "CRITICAL", "emerg": "CRITICAL",
                   "alert": "CRITICAL"}
# A message that states no level but says something failed.
_TROUBLE_RE = re.compile(
    r"\b(?:error|errors|failed|failure|fatal|panic|segfault|refused|cannot|can't|"
    r"could not|unable to|timed out|out of memory|oom-killer|killed process|no space left|"
    r"traceback|exception|code=(?:exited,? status=[1-9]\d*|killed|dumped))\b",
    re.I)
KEPT_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})


def sniff(head: str) -> bool:
    return _SNIFF_RE.search(head) is not None or head.startswith("-- Logs begin at ") \
        or head.startswith("-- Journal begins at ")


def _zone_offset(zone: str) -> float:
    from whynoip.parsers.hostinfo import ZONES
    if zone in ZONES:
        return ZONES[zone] * 3600.0
    if re.fullmatch(r"[+-]\d{4}", zone):
        return (1 if zone[0] == "+" else -1) * (int(zone[1:3]) * 3600 + int(zone[3:]) * 60)
    return 0.0


def _stated_level(msg: str):
    """(level, logger, request id, instance, message) as the message states them."""
    m = _OSLO_RE.match(msg)
    if m:
        request_id, instance, text = split_context(m["rest"])
        level = OSLO_LEVELS[m["level"]]
        return ("ERROR" if level == "TRACE" else level), m["logger"], request_id, instance, text
    m = _LIBVIRT_RE.match(msg)
    if m:
        return _LEADING_LEVELS.get(m["level"], m["level"].upper()), None, None, None, msg
    if "|" in msg:
        m = _OVS_RE.search(msg)
        if m:
            return _OVS_LEVELS[m["level"]], None, None, None, msg
    m = _LEADING_RE.match(msg)
    if m:
        return _LEADING_LEVELS[m["level"].lower()], None, None, None, msg
    return None, None, None, None, msg


class _Record:
    __slots__ = ("offset", "line", "time", "inferred", "prog", "pid", "msg", "cont", "extra")

    def __init__(self, offset, line, time, inferred, prog, pid, msg):
        self.offset = offset
        self.line = line
        self.time = time
        self.inferred = inferred
        self.prog = prog
        self.pid = pid
        self.msg = msg
        self.cont: list[str] = []
        self.extra = 0


def _as_facts(result) -> list[Fact]:
    if result is None:
        return []
    if isinstance(result, Fact):
        return [result]
    return [f for f in result if isinstance(f, Fact)]


def parse(section: Section) -> Iterator[Fact]:
    tally = Tally()
    ref_time = section.ref_time
    cur: _Record | None = None
    junk: list[int] = []  # offsets of lines no syslog format fits
    binary = False
    zone_offset = 0.0  # seconds east of UTC of BSD-style times, when journalctl says
    day_starts: dict[str, float | None] = {}  # "Feb 10" -> its midnight (year inferred once)

    def bsd_time(stamp: str) -> float | None:
        # `Feb 10 16:18:11[.123]`: the date part is looked up once per day, not per line
        day, _, clock = stamp.rpartition(" ")
        start = day_starts.get(day, False)
        if start is False:
            t = syslog_time(day + " 00:00:00", ref_time)
            start = day_starts[day] = (t[0] - zone_offset) if t else None
        if start is None or len(clock) < 8 or clock[2] != ":" or clock[5] != ":":
            return None
        try:
            return start + int(clock[:2]) * 3600 + int(clock[3:5]) * 60 + float(clock[6:])
        except ValueError:
            return None

    def flush(rec: _Record) -> list[Fact]:
        message = rec.msg
        if rec.cont:
            message += "\n" + "\n".join(rec.cont)
            if rec.extra:
                message += f"\n[{rec.extra} more lines]"
        program = rec.prog.rsplit("/", 1)[-1]
        if program in DNSMASQ_PROGRAMS and _dnsmasq_log is not None:
            origin = section.origin_at(rec.offset, text=rec.line)
            try:
                facts = _as_facts(_dnsmasq_log.parse_message(
                    message, origin=origin, time=rec.time, time_inferred=rec.inferred,
                    pid=rec.pid))
            except Exception as e:  # the dnsmasq parser must not take this one down
                facts = [Unparsed(origin=origin, reason=f"dnsmasq line not understood: "
                                                        f"{type(e).__name__}: {e}")]
            if facts:
                tally.kept += 1
                return facts
        level, logger, request_id, instance, text = _stated_level(message)
        headline = text.split("\n", 1)[0]
        matches = signature_matches(text, headline)
        if not matches:
            if level is None:
                if not _TROUBLE_RE.search(headline):
                    tally.drop(None)
                    return []
            elif level not in KEPT_LEVELS:
                tally.drop(level)
                return []
        tally.kept += 1
        origin = section.origin_at(rec.offset, text=rec.line)
        return log_events(origin, message=text, time=rec.time, time_inferred=rec.inferred,
                          service=program, level=level, logger=logger, request_id=request_id,
                          pid=rec.pid, params={"instance": instance} if instance else None,
                          matches=matches)

    def junk_fact() -> Unparsed:
        o = section.origin_at(junk[0])
        end = section.origin_at(junk[-1]).line
        junk.clear()
        return Unparsed(origin=o, end_line=end,
                        reason="not a syslog or journal line"
                        + (" (binary data: a journal file is read with journalctl)" if binary
                           else ""))

    offset = -1
    try:
        for offset, line in enumerate(section.lines()):
            if "\x00" in line:
                binary = True
                junk.append(offset)
                continue
            m = _LINE_RE.match(line) if line[:1].isalnum() else None
            if m is None:
                if line[:1] in (" ", "\t") and cur is not None:
                    if len(cur.cont) < MAX_CONTINUATION:
                        cur.cont.append(line.strip())  # journalctl's indented continuation
                    else:
                        cur.extra += 1
                    continue
                if not line.strip() or _JOURNAL_META_RE.match(line):
                    z = _JOURNAL_ZONE_RE.match(line)
                    if z:  # BSD-style times below are in this zone, not UTC
                        zone_offset = _zone_offset(z["zone"])
                        day_starts.clear()
                    continue  # journalctl's own headers, blank lines: not log records
                if cur is not None:  # keep the facts in line order
                    yield from flush(cur)
                    cur = None
                junk.append(offset)
                continue
            if junk:
                yield junk_fact()
            if cur is not None:
                yield from flush(cur)
            if m["iso"]:
                t = iso_time(m["iso"])
                time, inferred = (t[0] if t else None), False
            else:
                time, inferred = bsd_time(m["bsd"]), True
            tally.records += 1
            tally.saw_time(time, inferred)
            cur = _Record(offset, line, time, inferred, m["prog"],
                          int(m["pid"]) if m["pid"] else None, m["msg"])
    except Exception as e:  # a broken stream: say where it broke, keep what was read
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading the log failed: {type(e).__name__}: {e}")
    if junk:
        yield junk_fact()
    if cur is not None:
        yield from flush(cur)
    tally.lines = offset + 1
    yield tally.summary(section, None)
