"""Installed versions: dnsmasq, Neutron, Open vSwitch, RabbitMQ, from dpkg -l (whole table
or grepped) and rpm -qa."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import dpkg as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "dpkg"
CASES = {
    "hotsos/sos_commands/dpkg/dpkg_-l.lines-1-30": None,
    "hotsos/sos_commands/dpkg/dpkg_-l.grep": "dpkg -l",
    "public/rpm_-qa_shuzhiduo": "rpm -qa",
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def versions(facts):
    return {f.name: f.version for f in facts if isinstance(f, F.PackageVersion)}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_dpkg_table_with_its_header():
    facts = run("hotsos/sos_commands/dpkg/dpkg_-l.lines-1-30")
    assert len(facts) == 25 and all(isinstance(f, F.PackageVersion) for f in facts)
    assert facts[0].name == "accountsservice" and facts[0].origin.line == 6


def test_grepped_dpkg_rows_without_header():
    v = versions(run("hotsos/sos_commands/dpkg/dpkg_-l.grep"))
    assert v["dnsmasq-base"] == "2.80-1.1ubuntu1.4"
    assert v["neutron-dhcp-agent"] == "2:16.4.1-0ubuntu2"
    assert v["openvswitch-switch"] == "2.13.3-0ubuntu0.20.04.2"
    assert v["librabbitmq4"] == "0.10.0-1"  # ":amd64" dropped
    assert len(v) == 31


def test_rpm_names_and_versions():
    v = versions(run("public/rpm_-qa_shuzhiduo"))
    assert v["python-heatclient"] == "0.4.0-1.ibm.el7"
    assert v["libchamplain-gtk"] == "0.12.4-4.el7"
    assert v["compat-openldap"] == "2.3.43-5.el7"
    assert len(v) == 12


def test_removed_packages_are_not_installed_versions():
    text = ("rc  dnsmasq        2.79-1  amd64  Small caching DNS proxy\n"
            "ii  dnsmasq-base   2.80-1  amd64  Small caching DNS proxy\n"
            "un  quantum-common <none> <none> (no description available)\n")
    assert versions(run("x", text)) == {"dnsmasq-base": "2.80-1"}


def test_other_lines_are_unparsed():
    facts = run("x", "dnsmasq-2.79-11.el8.x86_64\nnot a package\npackage foo is not installed\n")
    assert versions(facts) == {"dnsmasq": "2.79-11.el8"}
    assert [f.origin.line for f in facts if isinstance(f, F.Unparsed)] == [2]


def test_registry():
    assert parsers.for_command("dpkg -l") is P
    assert parsers.for_command("rpm -qa") is P
    assert parsers.for_path("sos/sos_commands/dpkg/dpkg_-l") is P
    assert parsers.for_path("sos/installed-rpms") is P


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    run("fuzz", text)
    run("fuzz", "||/ Name Version Architecture Description\n" + text)


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
