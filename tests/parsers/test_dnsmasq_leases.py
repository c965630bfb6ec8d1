"""Lease files that dnsmasq 2.90 itself wrote after serving real clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import dnsmasq_leases as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "dnsmasq_leases"
NET = "8d1f6b4e-2c3a-4f5e-9b7d-0c41a2e7d3b9"
CASES = sorted(p.name for p in FIXTURES.iterdir() if not p.name.endswith(".json"))


def run(name: str, text: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=f"/var/lib/neutron/dhcp/{NET}/leases", line=1))))


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_v4_and_v6_leases_and_the_duid_line():
    facts = run("leases-v4v6")
    assert not [f for f in facts if isinstance(f, F.Unparsed)] and len(facts) == 3
    dhclient, udhcpc, v6 = facts
    assert (dhclient.mac, dhclient.ip, dhclient.hostname, dhclient.client_id) == (
        "fa:16:3e:7b:e1:3f", "10.8.1.15", "host-10-8-1-15", None)
    assert udhcpc.client_id == "01:fa:16:3e:4a:0b:91" and udhcpc.expiry > 1.7e9
    assert (v6.ip, v6.mac, v6.network_id) == ("fd00:8:1::6", "fa:16:3e:6e:60:06", NET)
    assert v6.origin.line == 4  # line 3 is the server's duid


def test_the_stale_lease_is_still_held_by_the_old_mac():
    assert [(l.ip, l.mac) for l in run("leases-stale") if l.ip == "10.8.1.14"] == [("10.8.1.14", "fa:16:3e:4a:0b:91")]


def test_neutrons_seed_line_and_a_bad_line():
    seed, bad = run("x", "1795328477 fa:16:3e:4a:0b:91 10.8.1.14 * *\nnonsense here\n")
    assert seed.hostname is None and seed.client_id is None
    assert isinstance(bad, F.Unparsed)


def test_registry():
    assert parsers.for_path(f"sos/var/lib/neutron/dhcp/{NET}/leases") is P


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str):
    run("fuzz", text)
