"""The agent's host file: which MAC may get which IP. Fixtures: files written as
neutron/agent/linux/dhcp.py writes them and read by real dnsmasq 2.90 (capture script)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import dnsmasq_hosts as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "dnsmasq_hosts"
NET = "8d1f6b4e-2c3a-4f5e-9b7d-0c41a2e7d3b9"
CASES = sorted(p.name for p in FIXTURES.iterdir() if not p.name.endswith(".json"))


def run(name: str, text: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    path = f"sosreport-net-02/var/lib/neutron/dhcp/{NET}/host"
    return list(P.parse(Section.from_text(text, F.Origin(path=path, line=1))))


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


def test_variants_of_the_agent_line():
    a, b, c, d, e = run("host")
    assert (b.mac, b.ip, b.hostname, b.network_id) == ("fa:16:3e:4a:0b:91", "10.8.1.14", "host-10-8-1-14.openstacklocal", NET)
    assert c.tags == ["port-c1a5e0f2-6b7d-4e8f-a9b0-1c2d3e4f5a6b"]
    assert d.client_id == "ff:00:00:00:01:00:01:2c:9a:41:07:fa:16:3e:d0:11:22" and d.ip == "10.8.1.16"
    assert e.ip == "fd00:8:1::6" and e.mac == "fa:16:3e:6e:60:06"
    assert run("host-trailing-dot")[1].hostname == "host-10-8-1-14.openstacklocal."
    assert [(h.mac, h.hostname) for h in run("host-grizzly")][0] == ("fa:16:3e:4a:0b:91", "10-8-1-14.openstacklocal")


def test_one_ip_given_twice_is_visible():
    ips = [h.ip for h in run("host-duplicate")]
    assert ips.count("10.8.1.14") == 2


def test_bad_lines_are_reported_with_their_line():
    facts = run("x", "fa:16:3e:4a:0b:91,host-1,10.8.1.14\nthis is, not a (host) line\n\n")
    assert isinstance(facts[1], F.Unparsed) and facts[1].origin.line == 2 and len(facts) == 2


def test_registry_and_sniff():
    assert parsers.for_path(f"sos/var/lib/neutron/dhcp/{NET}/host") is P
    assert P.sniff((FIXTURES / "host").read_text())


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str):
    for f in run("fuzz", text):
        assert isinstance(f, (F.HostEntry, F.Unparsed))
