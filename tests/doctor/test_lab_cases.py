"""The doctor on the lab's fixture bundles: for every fault the lab injects (each variant,
one and two DHCP agents), the fault is the first root cause reported, with evidence that
cites real lines of the bundle and a fix; a healthy lab yields no critical finding.

The bundles were collected from real labs by tests/fixtures/make_lab_fixtures.py; the
expected answer is only in the directory name, which the doctor never sees (it is given
the bundle's contents)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from whynoip.diagnose import diagnose
from whynoip.evidence.read import read
from whynoip.report.json import to_builtins

BUNDLES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"
CASES = sorted(p for p in BUNDLES.iterdir() if p.is_dir() and not p.name.startswith("."))


def expected(case: Path) -> str | None:
    fault = case.name.split("--")[0].split("+")[0]
    return None if fault == "healthy" else fault


def run(case: Path):
    # the doctor is handed the bundle's children, never the case directory's name
    return diagnose(list(read([str(p) for p in sorted(case.iterdir())])))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_injected_fault_is_the_first_root_cause(case: Path):
    d = run(case)
    want = expected(case)
    if want is None:
        assert not [f.id for f in d.findings if f.severity == "critical"], d.verdict
        return
    roots = [f for f in d.findings if f.root_cause and f.severity != "info"]
    assert roots, f"nothing found; verdict: {d.verdict}"
    top = roots[0]
    assert top.id == want, f"{top.id} first; all roots: {[f.id for f in roots]}"
    assert d.verdict.startswith(want) or top.severity != "critical"
    assert top.fix, "a finding says how to fix it"
    assert top.evidence, "a finding cites its evidence"
    for e in top.evidence:
        src = Path(e.source)
        assert src.exists(), e.source
        if e.line and src.suffix not in (".pcap", ".pcapng") and "captures" not in src.parts:
            lines = src.read_text(errors="replace").splitlines()
            assert 1 <= e.line <= len(lines), (e.source, e.line)


def test_healthy_ha_and_a_fault_differ_only_where_the_fault_is():
    healthy = run(BUNDLES / "healthy--ha")
    broken = run(BUNDLES / "dnsmasq-unresponsive--ha")
    assert not [f for f in healthy.findings if f.severity == "critical"]
    ids = {f.id for f in broken.findings if f.severity == "critical"}
    assert "dnsmasq-unresponsive" in ids
    assert ids <= {"dnsmasq-unresponsive", "dhcp-server-silent"}, ids


def test_the_path_shows_the_hop_where_a_reply_is_dropped():
    d = run(BUNDLES / "security-group-drops-dhcp+drop-rule--default")
    broken = [(p.port, h.name) for p in d.paths for h in p.hops if h.state == "broken"]
    assert broken, "a broken hop is marked"
    assert all(name.split()[-1].startswith(("tap", "qbr", "qvb")) for _, name in broken), broken
    (f,) = [f for f in d.findings if f.id == "security-group-drops-dhcp"]
    assert any("neutron-openvswi-i" in e.text for e in f.evidence), [e.text for e in f.evidence]


def test_a_cascade_names_cause_and_effect():
    d = run(BUNDLES / "disk-full--default")
    by_id = {f.id: f for f in d.findings}
    assert d.findings[0].id == "disk-full"
    effects = [f for f in d.findings if "disk-full" in f.caused_by]
    assert effects, "the full disk explains what followed"
    assert all(not f.root_cause for f in effects)
    assert "host-entry-missing" in by_id


def test_json_report_has_the_documented_schema():
    cp = subprocess.run([sys.executable, "-m", "whynoip.cli", "diagnose", str(BUNDLES / "port-dead-vlan--default"),
                         "-f", "json"], capture_output=True, text=True, timeout=120)
    assert cp.returncode == 1, cp.stderr  # a critical root cause was found
    obj = json.loads(cp.stdout)
    assert obj["schema"] == 1 and obj["verdict"].startswith("port-dead-vlan")
    assert set(obj) >= {"findings", "summary", "paths", "next_steps", "timeline"}
    for f in obj["findings"]:
        assert set(f) >= {"id", "title", "severity", "root_cause", "subject", "evidence", "fix", "caused_by"}
        assert f["severity"] in ("critical", "warning", "info")
        for e in f["evidence"]:
            assert set(e) >= {"source", "line", "text"}
    assert obj["summary"]["root_causes"][0] == "port-dead-vlan"


def test_no_secret_of_the_bundle_reaches_a_report():
    d = run(BUNDLES / "healthy--default")
    text = json.dumps(to_builtins(d))
    for conf in BUNDLES.glob("healthy--default/*/etc/neutron/neutron.conf"):
        for line in conf.read_text().splitlines():
            if "password" in line.lower() or "transport_url" in line:
                value = line.split("=", 1)[-1].strip()
                if value and set(value) != {"*"}:
                    assert value not in text


def test_healthy_text_report_starts_with_the_verdict():
    cp = subprocess.run([sys.executable, "-m", "whynoip.cli", "diagnose", str(BUNDLES / "healthy--default")],
                        capture_output=True, text=True, timeout=120)
    assert cp.returncode == 0, cp.stderr
    assert cp.stdout.splitlines()[0].startswith("No DHCP fault found")
