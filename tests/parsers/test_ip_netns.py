"""Namespaces of a node: `ip netns` tells whether the qdhcp namespace exists and which id
`ip addr` uses for it; the shared helpers tell in which namespace any output was taken."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import ip_netns as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "ip_netns"
# fixture -> the command that produced it (None: a sosreport file, known by its path)
CASES = {
    "lab.ip_netns": "ip netns",
    "lab-compute.ip_netns_list": "ip netns exec wnp-net-compute ip netns list",
    "hotsos/sos_commands/networking/ip_netns": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_dvr_node_namespaces_with_ids():
    got = {n.name: n.id for n in run("hotsos/sos_commands/networking/ip_netns")}
    assert got == {"fip-32981f34-497a-4fae-914a-8576055c8d0d": 9,
                   "qrouter-984c22fd-64b3-4fa1-8ddd-87090f401ce5": 10,
                   "snat-984c22fd-64b3-4fa1-8ddd-87090f401ce5": 8}
    assert not any(n.startswith("qdhcp-") for n in got)  # this node hosts no DHCP


def test_lab_lists_the_qdhcp_namespace_and_ids_only_where_a_peer_lives():
    names = run("lab-compute.ip_netns_list", command=CASES["lab-compute.ip_netns_list"])
    by_name = {n.name: n for n in names}
    assert "wnp-net-qdhcp-6f1c2a3b-5d4e-4f70-8a9b-0c1d2e3f4a5b" in by_name
    # the compute node's veths reach vm1, vm2 and the network node: those got ids
    assert by_name["wnp-net-vm1"].id is not None and by_name["wnp-net-vm2"].id is not None
    assert by_name["wnp-net-grizzly"].id is None
    # the plain `ip netns` ran in the root namespace, which holds no peer: no ids at all
    assert all(n.id is None for n in run("lab.ip_netns"))


def test_a_garbage_line_is_kept_as_unparsed():
    facts = run("x", "qdhcp-1 (id: 3)\nSegmentation fault (core dumped)\n")
    assert isinstance(facts[0], F.Namespace) and facts[0].id == 3
    assert isinstance(facts[1], F.Unparsed) and facts[1].origin.line == 2


@pytest.mark.parametrize("command, ns", [
    ("ip netns exec qdhcp-6f1c ip addr", "qdhcp-6f1c"),
    ("sudo ip -n qrouter-1 link", "qrouter-1"),
    ("ip addr", None),
])
def test_namespace_from_the_command(command, ns):
    section = Section.from_text("", F.Origin(path="-", command=command))
    assert P.namespace_of(section) == ns


def test_namespace_from_a_sosreport_file_name():
    path = "sos/sos_commands/networking/ip_netns_exec_qdhcp-6f1c2a3b-5d4e-4f70-8a9b-0c1d2e3f4a5b_ip_address_show"
    section = Section.from_text("", F.Origin(path=path))
    assert P.namespace_of(section) == "qdhcp-6f1c2a3b-5d4e-4f70-8a9b-0c1d2e3f4a5b"
    assert P.command_of(section).endswith("ip address show")
    # a namespace the origin already names wins
    section = Section.from_text("", F.Origin(path=path, namespace="given"))
    assert P.namespace_of(section) == "given"


def test_registry_routes_commands_and_paths_here():
    assert parsers.for_command("ip netns") is P
    assert parsers.for_command("ip netns list") is P
    assert parsers.for_command("ip netns exec qdhcp-1 ip addr") is not P
    assert parsers.for_path("x/sos_commands/networking/ip_netns") is P


def test_sniff_knows_neutron_namespace_lists_only():
    assert parsers.sniff((FIXTURES / "hotsos/sos_commands/networking/ip_netns").read_text()) is P
    assert P.sniff((FIXTURES / "lab.ip_netns").read_text()) is False  # any word list is no proof


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    for fact in run("fuzz", text):
        assert isinstance(fact, (F.Namespace, F.Unparsed))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
