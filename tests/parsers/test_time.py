"""Syslog times: the per-date shortcut gives exactly what working each line out in full gives
(year inferred from when the evidence was taken, Feb 29, the turn of the year, bad times)."""

from __future__ import annotations

from datetime import datetime, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip.parsers import _time
from whynoip.parsers._time import MONTHS, SYSLOG_RE, syslog_time


def slow(text: str, ref_time: float | None):
    m = SYSLOG_RE.match(text)
    if not m or m["mon"] not in MONTHS:
        return None
    return _time._syslog_time_slow(m, ref_time)


def ts(*args) -> float:
    return datetime(*args, tzinfo=timezone.utc).timestamp()


def test_real_lines_and_the_year_they_fall_in():
    ref = ts(2026, 11, 21, 6, 16, 10)
    assert syslog_time("Nov 21 06:16:09 dnsmasq[12853]: started", ref) == (ts(2026, 11, 21, 6, 16, 9), 15)
    # a day of slack after the evidence, then it was last year
    assert syslog_time("Nov 22 06:16:10 x", ref)[0] == ts(2026, 11, 22, 6, 16, 10)
    assert syslog_time("Nov 22 06:16:11 x", ref)[0] == ts(2025, 11, 22, 6, 16, 11)
    assert syslog_time("Dec 31 23:59:59.25 x", ref)[0] == ts(2025, 12, 31, 23, 59, 59) + 0.25
    # Feb 29: the year before when this one has none; a bad time of day is no time at all
    assert syslog_time("Feb 29 10:00:00 x", ts(2025, 6, 1))[0] == ts(2024, 2, 29, 10)
    assert syslog_time("Feb 29 10:00:00 x", ref) is None  # neither 2026 nor 2025 had one
    assert syslog_time("Feb 29 10:00:00 x", ts(2024, 2, 1)) is None  # after the evidence, and 2023 had none
    assert syslog_time("Nov 21 24:00:00 x", ref) is None
    assert syslog_time("Nov 31 10:00:00 x", ref) is None
    assert syslog_time("Foo 21 10:00:00 x", ref) is None


@settings(max_examples=600, deadline=None)
@given(mon=st.sampled_from(list(MONTHS) + ["Xyz"]), day=st.integers(0, 32), h=st.integers(0, 25),
       m=st.integers(0, 60), s=st.integers(0, 61), frac=st.sampled_from(["", ".5", ".123456", ".0"]),
       ref=st.floats(min_value=-2e9, max_value=4e9, allow_nan=False), micro=st.integers(0, 999_999),
       pad=st.booleans())
def test_same_as_working_each_line_out_in_full(mon, day, h, m, s, frac, ref, micro, pad):
    ref_time = int(ref) + micro / 1e6
    text = f"{mon} {f'{day:>2}' if pad else day} {h:02d}:{m:02d}:{s:02d}{frac} host prog: msg"
    assert syslog_time(text, ref_time) == slow(text, ref_time)


def test_edges_of_the_day_of_slack():
    ref = ts(2026, 3, 1, 12, 0, 0) + 0.5
    for clock in ("12:00:00", "12:00:01", "11:59:59"):
        for date in ("Mar  2", "Mar  1", "Feb 29", "Feb 28", "Mar  3"):
            text = f"{date} {clock} h p: m"
            assert syslog_time(text, ref) == slow(text, ref), text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Nov 21", "Nov  2", "Nov 2", "Feb 29", "Dec 31"]),
                          st.sampled_from(["06:18:01", "06:18:02", "23:59:59"]),
                          st.sampled_from(["", ".5", ".", ".x", "Z"]),
                          st.sampled_from([" dnsmasq-dhcp[5]: 12 DHCPACK(tap1) 10.0.0.3 fa:16:3e:00:00:01",
                                           " host dnsmasq[5]: started", "dnsmasq[5]: x"])), max_size=12))
def test_dnsmasq_lines_sharing_a_stamp_get_the_same_parts(lines):
    from whynoip.parsers.dnsmasq_log import split_line
    ref = ts(2026, 11, 21, 6, 16, 10)
    last: list = [None, None]
    for date, clock, frac, rest in lines:
        line = f"{date} {clock}{frac}{rest}"
        assert split_line(line, ref, last) == split_line(line, ref), line
