"""Times as logs print them, turned into seconds since the epoch (UTC).

Syslog lines (`Mar  3 11:02:17`) carry no year and no zone: the year is inferred as the
latest one that does not put the line after the evidence was taken (plus a day of
slack), and the caller is told it was inferred. Zoneless times are read as UTC, which is
what servers in the field log in by default and what sosreport's `date --utc` confirms.
"""

from __future__ import annotations

import re
import time as _time
from datetime import datetime, timedelta, timezone
from functools import lru_cache

MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}

SYSLOG_RE = re.compile(r"^(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)(?:\.(?P<frac>\d+))?")
ISO_RE = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d\d)-(?P<d>\d\d)[ T](?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"
    r"(?:[.,](?P<frac>\d+))?(?P<tz>Z|[+-]\d\d:?\d\d)?")
RABBIT_OLD_RE = re.compile(r"(?P<d>\d{1,2})-(?P<mon>[A-Z][a-z]{2})-(?P<y>\d{4})::(?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)")


def _frac(s: str | None) -> float:
    return float("0." + s) if s else 0.0


def syslog_time(text: str, ref_time: float | None) -> tuple[float, int] | None:
    """(epoch, length matched) for a syslog timestamp at the start of `text`; the year is
    inferred from `ref_time` (or now)."""
    m = SYSLOG_RE.match(text)
    if not m or m["mon"] not in MONTHS:
        return None
    if ref_time is None:
        return _syslog_time_slow(m, None)
    h, mi, s = int(m["h"]), int(m["m"]), int(m["s"])
    if h > 23 or mi > 59 or s > 59:
        return None  # no such time in any year
    days = _syslog_days(ref_time, MONTHS[m["mon"]], int(m["day"]))
    if days is None:
        return None
    this_year, year_before, latest = days
    clock = h * 3600 + mi * 60 + s
    # the latest year that does not put the line more than a day after the evidence
    t = this_year + clock if this_year is not None and (this_year + clock) * 1_000_000 <= latest else None
    if t is None:
        if year_before is None:
            return None
        t = year_before + clock
    return t + _frac(m["frac"]), m.end()


@lru_cache(maxsize=4096)
def _syslog_days(ref_time: float, month: int, day: int) -> tuple[int | None, int | None, int] | None:
    """For a syslog date (month, day) read against `ref_time`: the epoch of its midnight in
    the candidate year and in the year before (None where no such date exists), and the
    latest time allowed, ref + 1 day, in integer microseconds. A log's lines share few
    dates: worked out once per date instead of once per line (the same answers as
    `_syslog_time_slow`)."""
    ref = datetime.fromtimestamp(ref_time, timezone.utc)

    def midnight(year: int) -> int | None:
        try:
            return (datetime(year, month, day, tzinfo=timezone.utc) - _EPOCH) // timedelta(seconds=1)
        except (ValueError, OverflowError):
            return None

    first = midnight(ref.year)
    if first is None:  # Feb 29 in a non-leap year: it was the year before
        first = midnight(ref.year - 1)
        if first is None:
            return None
        year = ref.year - 1
    else:
        year = ref.year
    latest = (ref + timedelta(days=1) - _EPOCH) // timedelta(microseconds=1)
    return first, midnight(year - 1), latest


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


def _syslog_time_slow(m: re.Match, ref_time: float | None) -> tuple[float, int] | None:
    ref = datetime.fromtimestamp(ref_time if ref_time is not None else _time.time(), timezone.utc)
    try:
        t = datetime(ref.year, MONTHS[m["mon"]], int(m["day"]), int(m["h"]), int(m["m"]), int(m["s"]),
                     tzinfo=timezone.utc)
    except ValueError:  # Feb 29 in a non-leap year: it was the year before
        try:
            t = datetime(ref.year - 1, MONTHS[m["mon"]], int(m["day"]), int(m["h"]), int(m["m"]),
                         int(m["s"]), tzinfo=timezone.utc)
        except ValueError:
            return None
    if t > ref + timedelta(days=1):
        try:
            t = t.replace(year=t.year - 1)
        except ValueError:
            return None
    return t.timestamp() + _frac(m["frac"]), m.end()


def iso_time(text: str) -> tuple[float, int] | None:
    """(epoch, length matched) for `2022-02-09 22:39:01.123` / ISO 8601 at the start of `text`."""
    m = ISO_RE.match(text)
    if not m:
        return None
    tz = timezone.utc
    if m["tz"] and m["tz"] != "Z":
        sign = 1 if m["tz"][0] == "+" else -1
        digits = m["tz"][1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        t = datetime(int(m["y"]), int(m["mo"]), int(m["d"]), int(m["h"]), int(m["m"]), int(m["s"]), tzinfo=tz)
    except ValueError:
        return None
    return t.timestamp() + _frac(m["frac"]), m.end()


def rabbit_old_time(text: str) -> float | None:
    """`3-Mar-2019::11:02:17` (RabbitMQ 3.x report headers)."""
    m = RABBIT_OLD_RE.search(text)
    if not m or m["mon"] not in MONTHS:
        return None
    try:
        return datetime(int(m["y"]), MONTHS[m["mon"]], int(m["d"]), int(m["h"]), int(m["m"]), int(m["s"]),
                        tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None
