"""The agent's opts file: router, DNS, routes and per-port options by tag."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import dnsmasq_opts as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "dnsmasq_opts"
NET = "8d1f6b4e-2c3a-4f5e-9b7d-0c41a2e7d3b9"
SUB = "subnet-4c7e1d2a-9f3b-4a8e-b6d5-2e1f0a9c8b7d"
CASES = sorted(p.name for p in FIXTURES.iterdir() if not p.name.endswith(".json"))


def run(name: str, text: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=f"/var/lib/neutron/dhcp/{NET}/opts", line=1))))


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_subnet_port_and_v6_options():
    got = {(tuple(o.tags), o.option): o.value for o in run("opts")}
    assert got[((SUB,), "router")] == "10.8.1.1"
    assert got[((SUB,), "249")] == got[((SUB,), "classless-static-route")] == "169.254.169.254/32,10.8.1.1,0.0.0.0/0,10.8.1.1"
    assert got[(("subnet-e3b0c442-98fc-4c14-9afb-f4c8996fb924",), "option6:dns-server")] == "[fd00:8:1::2]"
    assert got[(("port-c1a5e0f2-6b7d-4e8f-a9b0-1c2d3e4f5a6b",), "bootfile-name")] == "pxelinux.0"
    assert all(o.network_id == NET for o in run("opts"))


def test_old_numeric_form_is_the_same_option():
    a, b, c = run("opts-grizzly")
    assert (a.option, b.option, a.value, b.value, a.tags) == ("router", "router", "10.8.1.1", "10.8.1.1", ["tag0"])
    assert c.option == "dns-server"


def test_a_bad_line():
    (bad,) = run("x", "tag:x,not an option\n")
    assert isinstance(bad, F.Unparsed)


def test_registry():
    assert parsers.for_path(f"/var/lib/neutron/dhcp/{NET}/opts") is P


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str):
    run("fuzz", text)
