"""Linux bridges of the hybrid plug: each qbr must hold the guest's tap and the qvb leg
to br-int; `brctl show` and `bridge link` say which interfaces a bridge holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import brctl as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "brctl"
# fixture -> the command that produced it (None: a sosreport file, known by its path)
CASES = {
    "lab-compute.brctl_show": "ip netns exec wnp-net-compute brctl show",
    "lab-compute.bridge_link": "ip netns exec wnp-net-compute bridge link",
    "hotsos/sos_commands/networking/bridge_-s_-s_-d_link_show": None,
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def members(name: str) -> set[tuple[str, str]]:
    facts = run(name, command=CASES[name])
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return {(f.bridge, f.interface) for f in facts}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_continuation_rows_belong_to_the_bridge_above():
    want = {("qbr5c1d0e77-a2", "qvb5c1d0e77-a2"), ("qbr5c1d0e77-a2", "tap5c1d0e77-a2"),
            ("qbr9a8b7c6d-1e", "qvb9a8b7c6d-1e"), ("qbr9a8b7c6d-1e", "tap9a8b7c6d-1e")}
    assert members("lab-compute.brctl_show") == want
    assert members("lab-compute.bridge_link") == want  # the two commands agree
    (first, second, *_) = run("lab-compute.brctl_show", command=CASES["lab-compute.brctl_show"])
    assert (first.origin.line, second.origin.line) == (2, 3)
    assert first.origin.namespace == "wnp-net-compute"


def test_bridge_link_skips_a_bridge_listed_as_its_own_master():
    got = members("hotsos/sos_commands/networking/bridge_-s_-s_-d_link_show")
    assert ("br-ens3", "ens3") in got and ("br-ens3", "veth1883dceb") in got
    assert ("br-ens3", "br-ens3") not in got and not any(b == "lxdbr0" for b, _ in got)
    assert len(got) == 8


def test_a_bridge_without_interfaces_and_an_error_line():
    text = ("bridge name\tbridge id\t\tSTP enabled\tinterfaces\n"
            "qbr00000000-00\t\t8000.000000000000\tno\t\t\n"
            "can't get info Operation not supported\n")
    facts = run("x", text)
    assert len(facts) == 1 and isinstance(facts[0], F.Unparsed) and facts[0].origin.line == 3


def test_registry_routes_here():
    assert parsers.for_command("brctl show") is P
    assert parsers.for_command("bridge link") is P
    assert parsers.for_path("sos/sos_commands/networking/bridge_-s_-s_-d_link_show") is P
    assert parsers.for_path("sos/sos_commands/networking/brctl_show") is P


@pytest.mark.parametrize("name", sorted(CASES))
def test_sniff_recognises_brctl_and_bridge_link(name: str):
    assert parsers.sniff((FIXTURES / name).read_text()[:8192]) is P


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()]


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=60)), max_size=20))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines):
    for fact in run("fuzz", "\n".join(lines)):
        assert isinstance(fact, (F.BridgeMember, F.Unparsed))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
