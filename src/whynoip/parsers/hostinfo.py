"""Which host the evidence is from and when it was taken -> HostInfo facts.

Every log time without a year, every "agent not seen for N seconds" and every heartbeat is
judged against the moment the evidence was taken; every fact is attributed to a host.
This parser reads `hostname` (and `hostname -f`, `/etc/hostname`), `hostnamectl status`
(`Static hostname:`), and `date` / `date --utc` as sosreport stores them
(`sos_commands/date/date`, `date_--utc`): `Thu Feb 10 16:19:17 UTC 2022` -> the epoch time.
A `date` printed in a zone whose abbreviation is ambiguous or unknown (IST, CST ...) is not
guessed: it becomes an Unparsed fact that says to use `date --utc`; `date +%s` output (an
epoch number) and ISO 8601 (`date -Is`, `date --rfc-3339=seconds`) are read as they are.

Real sample (real-samples sos_commands/date/date_--utc and sos_commands/host/hostname,
hotsos, Apache-2.0):

    Thu Feb 10 16:19:17 UTC 2022
    compute4

gives `HostInfo(time=1644509957.0)` and `HostInfo(hostname="compute4")`.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, HostInfo, Unparsed
from whynoip.parsers._time import MONTHS, iso_time

NAME = "hostinfo"
COMMANDS = (r"^hostname(?:\s+(?:-[fsAaid]|--fqdn|--short|--long))?\s*$", r"^date\b",
            r"^hostnamectl(?:\s+status)?\s*$", r"^cat\s+/etc/hostname\s*$")
PATHS = ("*/sos_commands/host/hostname", "*/sos_commands/host/hostname_-f",
         "*/sos_commands/general/hostname", "*/sos_commands/host/hostnamectl_status",
         "*/sos_commands/date/date", "*/sos_commands/date/date_--utc",
         "*/sos_commands/general/date", "*/etc/hostname", "*/hostname", "*/date")

# `date`'s default output: `Thu Feb 10 16:19:17 UTC 2022` (C locale).
_DATE_RE = re.compile(r"^(?:[A-Z][a-z]{2} )?(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) "
                      r"(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d+))? (?P<zone>\S+) "
                      r"(?P<y>\d{4})$")
# Zone abbreviations that mean one offset everywhere they are used.
ZONES = {"UTC": 0, "GMT": 0, "Z": 0, "UT": 0, "WET": 0, "WEST": 1, "CET": 1, "CEST": 2,
         "EET": 2, "EEST": 3, "MSK": 3, "EST": -5, "EDT": -4, "CDT": -5, "MST": -7,
         "MDT": -6, "PST": -8, "PDT": -7, "AKST": -9, "AKDT": -8, "HST": -10, "JST": 9,
         "KST": 9, "AEST": 10, "AEDT": 11, "NZST": 12, "NZDT": 13}
_HOSTNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]{0,252}$")
_STATIC_RE = re.compile(r"^\s*(?:Static|Transient) hostname:\s*(?P<name>\S+)\s*$")


def _date(text: str) -> tuple[float | None, str | None]:
    """(epoch, None) or (None, why not)."""
    text = text.strip()
    if re.fullmatch(r"\d{9,11}(?:\.\d+)?", text):
        return float(text), None
    m = _DATE_RE.match(text)
    if m:
        zone = m["zone"]
        offset = None
        if zone in ZONES:
            offset = ZONES[zone]
        elif re.fullmatch(r"[+-]\d{4}", zone):
            offset = (1 if zone[0] == "+" else -1) * (int(zone[1:3]) + int(zone[3:]) / 60)
        if offset is None or m["mon"] not in MONTHS:
            return None, (f"time zone {zone!r} is ambiguous or unknown: take `date --utc`")
        try:
            t = datetime(int(m["y"]), MONTHS[m["mon"]], int(m["day"]), int(m["h"]), int(m["m"]),
                         int(m["s"]), tzinfo=timezone(timedelta(hours=offset)))
        except ValueError as e:
            return None, f"not a valid date: {e}"
        return t.timestamp() + (float("0." + m["frac"]) if m["frac"] else 0.0), None
    iso = iso_time(text)
    if iso and iso[1] == len(text):
        return iso[0], None
    return None, "not a date"


def _is_date_source(section: Section) -> bool:
    o = section.origin
    path = o.path or ""
    return bool(re.search(r"(?:^|\s)date\b", o.command or "")) or path.endswith(
        ("/date", "/date_--utc"))


def parse(section: Section) -> Iterator[Fact]:
    want_date = _is_date_source(section)
    offset = -1
    try:
        for offset, line in enumerate(section.lines() if section.lines else iter(())):
            text = line.strip()
            if not text:
                continue
            origin = section.origin_at(offset, text=line)
            m = _STATIC_RE.match(line)
            if m:
                if line.strip().startswith("Static"):
                    yield HostInfo(origin=origin, hostname=m["name"])
                continue
            if re.match(r"^\s*[\w ()-]+:\s", line):
                continue  # other hostnamectl fields (Icon name, Chassis, Kernel ...)
            if want_date or _DATE_RE.match(text):
                t, why = _date(text)
                if t is not None:
                    yield HostInfo(origin=origin, time=t)
                else:
                    yield Unparsed(origin=origin, reason=why or "not a date")
                continue
            if _HOSTNAME_RE.match(text):
                yield HostInfo(origin=origin, hostname=text)
                continue
            yield Unparsed(origin=origin, reason="neither a host name nor a date")
    except Exception as e:  # a broken stream: say where it broke
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading failed: {type(e).__name__}: {e}")
