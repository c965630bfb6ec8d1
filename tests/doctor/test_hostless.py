"""Evidence that names no host (one log file, output pasted without prompts): the findings
speak of "the node", never of None or "?"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from whynoip.diagnose import diagnose
from whynoip.evidence.read import read

PARSERS = Path(__file__).parent.parent / "fixtures" / "parsers"


@pytest.mark.parametrize("where", ["oslo_log/public", "ovs_vsctl", "pcap"])
def test_no_none_host_in_what_is_said(where):
    d = diagnose(list(read([str(PARSERS / where)])))
    assert d.findings
    texts = [d.verdict] + [t for f in d.findings for t in (f.title, f.subject, f.hop or "", *f.fix)] \
        + [t for s in d.next_steps for t in (s.why, s.command)]
    bad = [t for t in texts if re.search(r"\bNone\b|\bon \?(?:\W|$)", t)]
    assert not bad, bad
