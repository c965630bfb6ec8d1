"""Cluster-managed services: which resources are stopped or failed, on which node, and
what failed before, in the layouts of Pacemaker 1.1 (pcs 0.9, crm_mon, crm) and 2.1."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import pacemaker as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "pacemaker"
CASES = {
    "pcs-2.1-openshift-docs-110821.txt": "pcs status",
    "pcs-failed-actions-trinity-639.txt": "pcs status",
    "crm_mon-1.1.19-pastebin-dcX3ebqE.txt": "crm_mon -Afr -1",
    "crm-1.1.6-pastebin-sNwkt5Ti.txt": "crm status",
    "pcs-0.9-openstack-astapor-442.txt": "pcs status",
}


def run(name: str, text: str | None = None, command: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    return list(P.parse(Section.from_text(text, F.Origin(path=name, line=1, command=command))))


def states(facts, history=False):
    """(name, node) -> state now; with history, the failed actions instead."""
    return {(f.name, f.node): f.state for f in facts if isinstance(f, F.ServiceState)
            and (f.state == "failed-action") == history}


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name, command=CASES[name]) == expected


def test_pacemaker_2_bulleted_layout():
    facts = run("pcs-2.1-openshift-docs-110821.txt")
    assert not any(isinstance(f, F.Unparsed) for f in facts)
    s = states(facts)
    assert s[("master-1", "master-1")] == "unclean" and s[("master-0", "master-0")] == "online"
    assert s[("kubelet-clone", "master-0")] == "started"
    assert s[("master-0_redfish", "master-0")] == "failed"
    etcd = [f for f in facts if f.name == "etcd" and f.state != "failed-action"]
    assert [(f.node, f.state) for f in etcd] == [("master-1", "started"), ("master-0", "failed")]
    assert "UNCLEAN" in etcd[0].detail and "Clone Set [etcd] etcd-clone" in etcd[0].detail
    # the stonith devices after the clone set are not members of it
    redfish = next(f for f in facts if f.name == "master-1_redfish")
    assert redfish.detail == "stonith:fence_redfish"
    failed = [f for f in facts if f.state == "failed-action"]
    assert [(f.name, f.node) for f in failed] == [("master-0_redfish", "master-0"),
                                                  ("kubelet", "master-0")]
    assert failed[1].detail.startswith("monitor (1m-interval): returned 'not running'")


def test_stopped_members_and_stopped_group():
    s = states(run("crm_mon-1.1.19-pastebin-dcX3ebqE.txt"))
    assert s[("msPostgresql", "sfm-dev-grid1")] == "stopped"
    assert s[("pgsql", "sfm-dev-grid2")] == "slave"
    assert s[("vip-master", None)] == "stopped" and s[("vip-rep", None)] == "stopped"
    assert states(run("crm_mon-1.1.19-pastebin-dcX3ebqE.txt"), history=True) == {
        ("pgsql", "sfm-dev-grid1"): "failed-action"}


def test_openstack_controllers_clone_sets():
    facts = run("pcs-0.9-openstack-astapor-442.txt")
    rabbit = [f for f in facts if f.name == "rabbitmq-server-clone"]
    assert [f.node for f in rabbit] == ["pcmk-c1a1", "pcmk-c1a2", "pcmk-c1a3"]
    assert {f.state for f in rabbit} == {"started"}
    assert rabbit[0].detail == "Clone Set [rabbitmq-server]"
    vip = next(f for f in facts if f.name == "ip-192.168.201.7")
    assert (vip.node, vip.state, vip.detail) == ("pcmk-c1a3", "started", "ocf::heartbeat:IPaddr2")
    assert sum(f.detail == "node" for f in facts) == 3


def test_failed_actions_of_three_generations():
    facts = run("pcs-failed-actions-trinity-639.txt")
    nova = [f for f in facts if f.name == "nova-compute"]
    assert [f.node for f in nova] == ["controller-1.cluster", "controller-2.cluster"]
    assert nova[0].detail.startswith("start: 'not running' (7) last-rc-change='Tue Mar  1 12:47:21")
    old = run("crm-1.1.6-pastebin-sNwkt5Ti.txt")
    gisd = next(f for f in old if f.state == "failed-action")
    assert (gisd.name, gisd.node, gisd.detail) == ("gisd", "steve2", "start: unknown error")


def test_cluster_not_running_and_daemon_status():
    text = ("Error: cluster is not currently running on this node\n")
    (f,) = run("x", text)
    assert (f.name, f.state) == ("pacemaker", "stopped")
    text = "Daemon Status:\n  corosync: active/enabled\n  pacemaker: inactive/enabled\n"
    facts = run("x", text)
    assert [(f.name, f.state, f.manager) for f in facts] == [
        ("corosync", "active", "systemd"), ("pacemaker", "inactive", "systemd")]


def test_unknown_lines_are_unparsed():
    facts = run("x", "Online: [ a ]\nthis is not pacemaker\n")
    assert isinstance(facts[-1], F.Unparsed) and facts[-1].origin.line == 2


def test_registry():
    assert parsers.for_command("pcs status") is P
    assert parsers.for_command("crm_mon -1") is P
    assert parsers.for_command("pcs status --full") is P
    assert P.sniff((FIXTURES / "pcs-0.9-openstack-astapor-442.txt").read_text())


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    run("fuzz", text)


@given(st.lists(st.sampled_from([
    "Failed Actions:", "Full list of resources:", " Clone Set: a-clone [a]", "     Started: [ n1 n2 ]",
    " x\t(ocf::h:y):\tStopped", "* x_monitor_0 on n 'e' (1): call=1", "    last-rc-change='x'",
    "Daemon Status:", "  pcsd: active/enabled", "Node Attributes:", "* Node n:", "", "garbage",
]), max_size=30))
@settings(max_examples=300, deadline=None)
def test_any_mix_of_sections_never_raises(lines):
    run("fuzz", "\n".join(lines))


@given(st.binary())
@settings(max_examples=100, deadline=None)
def test_any_bytes_never_raise(data):
    run("fuzz", data.decode("utf-8", errors="replace"))
