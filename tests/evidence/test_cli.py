"""`whynoip facts` through click's runner and through the installed console script."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from whynoip.cli import cli

from .conftest import SAMPLE, TRANSCRIPTS

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / ".venv" / "bin" / "whynoip"


def test_json_shape_sorted_and_summarised(fake_parsers):
    res = CliRunner().invoke(cli, ["facts", "-f", "json", str(TRANSCRIPTS / "ticket.txt"),
                                   str(TRANSCRIPTS / "transcript.txt")])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data) == {"facts", "unparsed", "summary"}
    assert set(data["summary"]) == {"facts_by_type", "sections", "files", "skipped"}
    keys = [(f["origin"]["path"], f["origin"].get("line", 0)) for f in data["facts"]]
    assert keys == sorted(keys)
    assert data["summary"]["files"] == 2
    assert data["summary"]["facts_by_type"]["log_event"] == sum(1 for f in data["facts"] if f["type"] == "log_event")
    assert data["summary"]["facts_by_type"]["unparsed"] == len(data["unparsed"])
    assert all(u["type"] == "unparsed" and u["reason"] for u in data["unparsed"])
    assert data["summary"]["skipped"]["prose lines"] > 0


def test_text_tables_and_what_was_not_understood(fake_parsers, monkeypatch):
    monkeypatch.setenv("COLUMNS", "160")
    res = CliRunner().invoke(cli, ["facts", str(TRANSCRIPTS / "transcript.txt")])
    assert res.exit_code == 0, res.output
    out = res.output
    assert "log_event (" in out and "not understood (" in out
    assert "no parser recognised this section" in out
    assert "transcript.txt:133-221" in out  # dhcpdump, which no stand-in reads: path:line-end
    assert out.rstrip().splitlines()[-1].startswith("1 files, ")


def test_stdin_dash(fake_parsers):
    res = CliRunner().invoke(cli, ["facts", "-f", "json", "-"], input=(TRANSCRIPTS / "transcript.txt").read_bytes())
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert {f["origin"]["path"] for f in data["facts"]} >= {"-", f"-#/var/lib/neutron/dhcp/6f1c2a3b-5d4e-4f70-8a9b-0c1d2e3f4a5b/opts"}


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_console_script_missing_path_is_one_line():
    p = subprocess.run([str(SCRIPT), "facts", "/no/such/evidence"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert p.stdout == ""
    assert p.stderr.splitlines() == ["whynoip: /no/such/evidence: no such file or directory"]


@pytest.mark.skipif(not SCRIPT.exists() or not SAMPLE.is_dir(), reason="console script or sample missing")
def test_console_script_reads_a_sosreport_and_stdin():
    p = subprocess.run([str(SCRIPT), "facts", "-f", "json", str(SAMPLE)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["summary"]["files"] == 366
    assert any(f["type"] == "host_info" and f["hostname"] == "compute4" for f in data["facts"])
    assert "Traceback" not in p.stderr
    t = subprocess.run([str(SCRIPT), "facts", "-f", "json", "-"], input=(TRANSCRIPTS / "transcript.txt").read_text(),
                       capture_output=True, text=True, timeout=60)
    assert t.returncode == 0, t.stderr
    assert json.loads(t.stdout)["summary"]["files"] == 1


@pytest.mark.skipif(not SCRIPT.exists(), reason="console script not installed")
def test_console_script_bad_input_has_no_traceback(tmp_path):
    bad = tmp_path / "weird.tar.gz"
    bad.write_bytes(b"\x1f\x8b\x08\x00" + bytes(range(256)) * 8)
    p = subprocess.run([str(SCRIPT), "facts", str(bad)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    assert "Traceback" not in p.stderr + p.stdout
    assert "not understood (1)" in p.stdout
