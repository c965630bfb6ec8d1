"""Which host, and when the evidence was taken: the reference every yearless log time and
every heartbeat age is judged against."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import hostinfo as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "hostinfo"
CASES = [
    "hotsos/sos_commands/date/date", "hotsos/sos_commands/date/date_--utc",
    "hotsos/sos_commands/host/hostname", "hotsos/sos_commands/host/hostname_-f",
    "hotsos/sos_commands/host/hostnamectl_status", "hotsos/etc/hostname",
]


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_sosreport_time_and_names():
    (t,) = run("hotsos/sos_commands/date/date_--utc")
    assert t.time == 1644509957.0 and t.hostname is None  # Thu Feb 10 16:19:17 UTC 2022
    assert run("hotsos/sos_commands/host/hostname")[0].hostname == "compute4"
    assert run("hotsos/sos_commands/host/hostname_-f")[0].hostname == "compute4.mylab.home"
    (h,) = run("hotsos/sos_commands/host/hostnamectl_status")
    assert h.hostname == "compute4" and h.origin.line == 1


@pytest.mark.parametrize("text, epoch", [
    ("Thu Feb 10 17:19:17 CET 2022", 1644509957.0),
    ("Thu Feb 10 08:19:17 PST 2022", 1644509957.0),
    ("Thu Feb 10 16:19:17 +0000 2022", 1644509957.0),
    ("1644509957", 1644509957.0),
    ("2022-02-10T17:19:17+01:00", 1644509957.0),
])
def test_date_forms(text, epoch):
    (f,) = run("date", text + "\n", command="date")
    assert f.time == epoch


def test_an_ambiguous_zone_is_not_guessed():
    (f,) = run("date", "Thu Feb 10 21:49:17 IST 2022\n", command="date")
    assert isinstance(f, F.Unparsed) and "date --utc" in f.reason


def test_registry():
    assert parsers.for_command("hostname -f") is P
    assert parsers.for_command("date --utc") is P
    assert parsers.for_path("sos/sos_commands/date/date_--utc") is P
    assert parsers.for_path("sos/sos_commands/host/hostname") is P
    assert parsers.for_path("sos/sos_commands/date/hwclock") is not P


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    run("fuzz", text)
    run("date", text, command="date")


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
