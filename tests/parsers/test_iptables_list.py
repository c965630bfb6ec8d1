"""The firewall as sosreport's firewall_tables plugin keeps it (`iptables -nvL` and
friends): the same Neutron rules, rebuilt from columns, give the same facts as
iptables-save does."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import iptables_list as P
from whynoip.parsers import iptables_save

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "iptables_list"
SAVES = Path(__file__).parent.parent / "fixtures" / "parsers" / "iptables_save"
SOS = "hotsos/sos_commands/firewall_tables/"
C = "neutron-openvswi"
# fixture -> the command that produced it (None: a sosreport file, known by its path)
CASES = {
    "lab-compute.iptables_-nvL": "ip netns exec wnp-net-compute iptables -nvL",
    "lab-compute.iptables_-t_filter_-nvL": "ip netns exec wnp-net-compute iptables -t filter -nvL",
    "lab-compute.iptables_-vnxL": "ip netns exec wnp-net-compute iptables -vnxL",
    "lab-compute.iptables_--line-numbers_-vnL": "ip netns exec wnp-net-compute iptables --line-numbers -vnL",
    "lab-grizzly.iptables_-nvL": "iptables -nvL",
    SOS + "iptables_-t_nat_-nvL": None,
    SOS + "ip6tables_-t_mangle_-nvL": None,
    SOS + "iptables_-vnxL": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def rules(name: str) -> list[F.IptablesRule]:
    facts = run(name, command=CASES[name])
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return [f for f in facts if isinstance(f, F.IptablesRule)]


def saved(name: str) -> list[F.IptablesRule]:
    text = (SAVES / name).read_text()
    facts = iptables_save.parse(Section.from_text(text, F.Origin(path=name, line=1)))
    return [f for f in facts if isinstance(f, F.IptablesRule)]


def comparable(r: F.IptablesRule) -> dict:
    return {f: getattr(r, f) for f in r.__struct_fields__ if f not in ("origin", "ip_version")}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


@pytest.mark.parametrize("listing, save", [
    ("lab-compute.iptables_-vnxL", "lab-compute.iptables-save_-c"),
    ("lab-compute.iptables_--line-numbers_-vnL", "lab-compute.iptables-save_-c"),
    ("lab-grizzly.iptables_-nvL", "lab-grizzly.iptables-save_-c"),
])
def test_listing_and_save_of_one_firewall_give_the_same_rules(listing, save):
    # captured at the same moment from the same namespace: specs, fields and counters agree
    assert [comparable(r) for r in rules(listing)] == [comparable(r) for r in saved(save)]


def test_dhcp_rules_and_counters_from_the_listing():
    out = [r for r in rules("lab-compute.iptables_-nvL") if r.chain == f"{C}-o5c1d0e77-a"]
    assert out[0].spec == ('-s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 '
                           '-m comment --comment "Allow DHCP client traffic." -j RETURN')
    assert (out[0].packets, out[0].protocol, out[0].number) == (2, "udp", 1)
    (spoof,) = [r for r in out if r.comment == "Prevent DHCP Spoofing by VM."]
    assert (spoof.sport, spoof.dport, spoof.target) == ("67", "68", "DROP")
    (mac,) = [r for r in rules("lab-compute.iptables_-nvL") if r.mac_source]
    assert (mac.chain, mac.source, mac.mac_source) == (f"{C}-s5c1d0e77-a", "10.0.0.5/32", "fa:16:3e:4a:0b:91")
    assert mac.origin.namespace == "wnp-net-compute" and mac.table == "filter"


def test_grizzly_negations_from_the_listing():
    out = [r for r in rules("lab-grizzly.iptables_-nvL") if r.chain == "quantum-openvswi-o7c7ae61e-0"]
    assert out[0].negated == ["mac_source"] and out[2].negated == ["source"]
    assert out[2].spec == "! -s 10.1.0.2/32 -j DROP"


def test_policies_with_rounded_counters_on_the_real_node():
    chains = {c.chain: c for c in run(SOS + "iptables_-t_nat_-nvL") if isinstance(c, F.IptablesChain)}
    assert chains["PREROUTING"].table == "nat" and chains["PREROUTING"].policy == "ACCEPT"
    assert (chains["PREROUTING"].packets, chains["PREROUTING"].bytes) == (609_000, 40_000_000)
    assert chains["OUTPUT"].packets == 18145
    six = [c for c in run(SOS + "ip6tables_-t_mangle_-nvL") if isinstance(c, F.IptablesChain)]
    assert {c.ip_version for c in six} == {6} and {c.table for c in six} == {"mangle"}
    assert all(c.ip_version == 4 for c in run(SOS + "iptables_-vnxL"))


def test_rows_without_a_target_and_non_numeric_listings():
    text = ("Chain X (1 references)\n"
            " pkts bytes target     prot opt in     out     source               destination\n"
            "    7   420            all  --  *      *       0.0.0.0/0            0.0.0.0/0\n")
    (_, row) = run("x", text)
    assert (row.target, row.packets, row.spec) == (None, 7, "")
    text = ("Chain neutron-linuxbri-o7a8c0a54-7 (2 references)\n"
            "target     prot opt source               destination\n"
            "RETURN     udp  --  0.0.0.0              255.255.255.255      udp spt:bootpc dpt:bootps "
            "/* Allow DHCP client traffic. */\n")
    (_, row) = run("x", text)
    assert (row.source, row.destination, row.sport, row.dport, row.target) == (
        "0.0.0.0/32", "255.255.255.255/32", "bootpc", "bootps", "RETURN")
    facts = run("x", "Chain X (policy DROP)\nwhat\n")
    assert facts[0].policy == "DROP" and isinstance(facts[1], F.Unparsed)


def test_registry_routes_here():
    for cmd in ("iptables -nvL", "iptables -t filter -nvL", "iptables -vnxL", "ip6tables -nvL",
                "iptables --line-numbers -vnL", "iptables -L -n -v"):
        assert parsers.for_command(cmd) is P, cmd
    assert parsers.for_command("iptables -S") is not P
    assert parsers.for_path("sos/sos_commands/firewall_tables/iptables_-t_filter_-nvL") is P


@pytest.mark.parametrize("name", sorted(CASES))
def test_sniff_recognises_listings(name: str):
    assert parsers.sniff((FIXTURES / name).read_text()[:8192]) is P


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()[:60]]


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=80)), max_size=30),
       st.sampled_from([None, "iptables -nvL", "ip6tables -t nat -nvL"]))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines, command):
    for fact in run("fuzz", "\n".join(lines), command=command):
        assert isinstance(fact, (F.IptablesChain, F.IptablesRule, F.Unparsed))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
