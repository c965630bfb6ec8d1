"""Neutron's hybrid firewall as iptables-save keeps it: the per-port chains, the DHCP
allow rules and "Prevent DHCP Spoofing by VM." with their counters, Grizzly's quantum-
chains with their negations, and the same from `iptables -S`."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import iptables_save as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "iptables_save"
SOS = "hotsos/sos_commands/networking/"
C = "neutron-openvswi"
# fixture -> the command that produced it (None: a sosreport file, known by its path)
CASES = {
    "lab-compute.iptables-save": "ip netns exec wnp-net-compute iptables-save",
    "lab-compute.iptables-save_-c": "ip netns exec wnp-net-compute iptables-save -c",
    "lab-compute.ip6tables-save": "ip netns exec wnp-net-compute ip6tables-save",
    "lab-compute.iptables_-S": "ip netns exec wnp-net-compute iptables -S",
    # Grizzly's rules, as published, loaded into real iptables by the capture script
    "lab-grizzly.iptables-save_-c": "iptables-save -c",
    "lab-grizzly.iptables_-S": "iptables -S",
    SOS + "ip_netns_exec_qrouter-984c22fd-64b3-4fa1-8ddd-87090f401ce5_iptables-save": None,
    SOS + "ip_netns_exec_snat-984c22fd-64b3-4fa1-8ddd-87090f401ce5_ip6tables-save": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def rules(name: str) -> list[F.IptablesRule]:
    facts = run(name, command=CASES[name])
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return [f for f in facts if isinstance(f, F.IptablesRule)]


def chain(name: str, chain_name: str) -> list[F.IptablesRule]:
    return [r for r in rules(name) if r.chain == chain_name]


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_egress_chain_allows_the_discover_and_drops_spoofed_offers():
    out = chain("lab-compute.iptables-save_-c", f"{C}-o5c1d0e77-a")
    first = out[0]
    assert (first.number, first.source, first.destination, first.protocol) == (1, "0.0.0.0/32", "255.255.255.255/32", "udp")
    assert (first.sport, first.dport, first.target, first.comment) == ("68", "67", "RETURN", "Allow DHCP client traffic.")
    assert first.packets == 2 and first.bytes == 656  # vm1's DISCOVER and REQUEST
    (spoof,) = [r for r in out if r.comment == "Prevent DHCP Spoofing by VM."]
    assert (spoof.sport, spoof.dport, spoof.target, spoof.packets) == ("67", "68", "DROP", 0)
    assert spoof.spec == ('-p udp -m udp --sport 67 --dport 68 -m comment --comment '
                          '"Prevent DHCP Spoofing by VM." -j DROP')
    assert out[1].target == f"{C}-s5c1d0e77-a"
    assert first.origin.namespace == "wnp-net-compute" and first.ip_version == 4


def test_ingress_chain_let_the_offer_in_and_antispoof_chain_knows_the_mac():
    (offer,) = [r for r in chain("lab-compute.iptables-save_-c", f"{C}-i5c1d0e77-a") if r.destination == "10.0.0.5/32"]
    assert (offer.sport, offer.dport, offer.target, offer.packets) == ("67", "68", "RETURN", 2)
    allow, drop = chain("lab-compute.iptables-save_-c", f"{C}-s5c1d0e77-a")
    assert (allow.source, allow.mac_source, allow.target) == ("10.0.0.5/32", "fa:16:3e:4a:0b:91", "RETURN")
    assert drop.target == "DROP" and drop.comment == "Drop traffic without an IP/MAC allow rule."


def test_physdev_jumps_and_chains():
    sg = chain("lab-compute.iptables-save_-c", f"{C}-sg-chain")
    assert (sg[0].physdev_out, sg[0].physdev_is_bridged, sg[0].target) == ("tap5c1d0e77-a2", True, f"{C}-i5c1d0e77-a")
    assert (sg[1].physdev_in, sg[1].target) == ("tap5c1d0e77-a2", f"{C}-o5c1d0e77-a")
    assert sg[2].target == "ACCEPT" and sg[2].physdev_in is None
    chains = {c.chain: c for c in run("lab-compute.iptables-save_-c") if isinstance(c, F.IptablesChain)}
    assert chains["INPUT"].policy == "ACCEPT" and chains[f"{C}-sg-fallback"].policy is None
    assert chains["INPUT"].table == "filter"


def test_without_counters_the_rules_are_the_same():
    with_c, without = rules("lab-compute.iptables-save_-c"), rules("lab-compute.iptables-save")
    assert [r.spec for r in with_c] == [r.spec for r in without]
    assert all(r.packets is None for r in without)
    # and `iptables -S` writes the same rules again
    assert [r.spec for r in rules("lab-compute.iptables_-S")] == [r.spec for r in without]


def test_grizzly_quantum_chains_with_negations():
    out = chain("lab-grizzly.iptables-save_-c", "quantum-openvswi-o7c7ae61e-0")
    assert out[0].negated == ["mac_source"] and out[0].mac_source == "fa:16:3e:03:00:e7"
    assert out[0].target == "DROP"
    assert out[2].negated == ["source"] and out[2].source == "10.1.0.2/32"
    (dhcp,) = [r for r in chain("lab-grizzly.iptables-save_-c", "quantum-openvswi-i7c7ae61e-0")
               if r.dport == "68"]
    assert dhcp.source == "10.1.0.3/32" and dhcp.target == "RETURN"  # only the DHCP server's IP
    assert [r.spec for r in rules("lab-grizzly.iptables_-S")] == [r.spec for r in rules("lab-grizzly.iptables-save_-c")]


def test_real_router_namespace_tables_and_negated_conntrack():
    name = SOS + "ip_netns_exec_qrouter-984c22fd-64b3-4fa1-8ddd-87090f401ce5_iptables-save"
    got = rules(name)
    assert {r.origin.namespace for r in got} == {"qrouter-984c22fd-64b3-4fa1-8ddd-87090f401ce5"}
    assert {"raw", "nat", "mangle", "filter"} <= {r.table for r in got}
    (post,) = [r for r in got if r.chain == "neutron-l3-agent-POSTROUTING" and r.table == "nat"]
    assert post.out_interface == "rfp-984c22fd-6" and post.negated == ["out_interface", "ctstate"]
    (meta,) = [r for r in got if r.table == "nat" and r.dport == "80"]
    assert (meta.destination, meta.in_interface, meta.target) == ("169.254.169.254/32", "qr-+", "REDIRECT")
    chains = [c for c in run(name) if isinstance(c, F.IptablesChain)]
    pre = next(c for c in chains if c.table == "raw" and c.chain == "PREROUTING")
    assert (pre.packets, pre.bytes) == (473, 46354)


def test_ip6tables_is_version_6():
    got = run(SOS + "ip_netns_exec_snat-984c22fd-64b3-4fa1-8ddd-87090f401ce5_ip6tables-save")
    assert got and {f.ip_version for f in got if not isinstance(f, F.Unparsed)} == {6}
    assert {f.ip_version for f in run("lab-compute.ip6tables-save", command=CASES["lab-compute.ip6tables-save"])} == {6}


def test_quotes_and_broken_lines():
    text = ('*filter\n-A X -m comment --comment "say \\"hi\\" twice" -j ACCEPT\n'
            '-A X -m comment --comment "never closed -j DROP\nnonsense\n')
    facts = run("x", text)
    assert facts[0].comment == 'say "hi" twice' and facts[0].target == "ACCEPT"
    assert isinstance(facts[1], F.Unparsed) and isinstance(facts[2], F.Unparsed)


def test_registry_routes_here():
    for cmd in ("iptables-save", "iptables-save -c", "ip6tables-save", "iptables -S", "iptables -t nat -S",
                "ip netns exec qrouter-1 iptables-save"):
        assert parsers.for_command(cmd) is P, cmd
    assert parsers.for_path("sos/" + SOS.split("/", 1)[1] + "ip_netns_exec_qrouter-1_iptables-save") is P


@pytest.mark.parametrize("name", sorted(CASES))
def test_sniff_recognises_save_and_dash_S(name: str):
    assert parsers.sniff((FIXTURES / name).read_text()[:8192]) is P


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()[:60]]


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=80)), max_size=30),
       st.sampled_from([None, "iptables-save -c", "iptables -t nat -S", "ip6tables-save"]))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines, command):
    for fact in run("fuzz", "\n".join(lines), command=command):
        assert isinstance(fact, (F.IptablesChain, F.IptablesRule, F.Unparsed))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
