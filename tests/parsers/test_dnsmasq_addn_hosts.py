"""The agent's addn_hosts: DNS names for every port of the network."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import dnsmasq_addn_hosts as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "dnsmasq_addn_hosts"
NET = "8d1f6b4e-2c3a-4f5e-9b7d-0c41a2e7d3b9"


def run(text: str) -> list[F.Fact]:
    return list(P.parse(Section.from_text(text, F.Origin(path=f"/var/lib/neutron/dhcp/{NET}/addn_hosts", line=1))))


def test_fixture_gives_the_expected_facts():
    expected = F.from_json((FIXTURES / "addn_hosts.expected.json").read_bytes())
    got = run((FIXTURES / "addn_hosts").read_text())
    assert got == expected
    assert (got[1].ip, got[1].names, got[1].network_id) == (
        "10.8.1.14", ["host-10-8-1-14.openstacklocal", "host-10-8-1-14"], NET)
    assert got[-1].ip == "fd00:8:1::6"


def test_comments_and_bad_lines():
    facts = run("# hosts\n10.0.0.5 a b # c\nnot-an-ip x\n10.0.0.6\n")
    assert facts[0].names == ["a", "b"]
    assert [type(f).__name__ for f in facts[1:]] == ["Unparsed", "Unparsed"]


def test_registry():
    assert parsers.for_path(f"/var/lib/neutron/dhcp/{NET}/addn_hosts") is P


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str):
    run(text)
