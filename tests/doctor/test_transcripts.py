"""The doctor on terminal scrollback pasted into a ticket (tests/fixtures/capture/
transcript.sh ran the commands on a lab whose vm2 has no host entry): prompts, prose, a
`ps -ef | grep` without its header, a dnsmasq log pasted without a prompt, `ip link` after
`ip addr`. The answer is the missing host entry, and nothing that is not broken."""

from __future__ import annotations

from pathlib import Path

import pytest

from whynoip.diagnose import diagnose
from whynoip.evidence.read import read

TRANSCRIPTS = Path(__file__).parent.parent / "fixtures" / "evidence" / "transcript"
VM2 = "fa:16:3e:c2:57:0d"


@pytest.mark.parametrize("name", ["ticket.txt", "transcript.txt"])
def test_the_missing_host_entry_is_named_first(name):
    d = diagnose(list(read([str(TRANSCRIPTS / name)])))
    roots = [f for f in d.findings if f.root_cause and f.severity == "critical"]
    assert roots and roots[0].id == "host-entry-missing" and roots[0].subject == VM2, d.verdict
    assert [f.id for f in roots] == ["host-entry-missing"], [f.title for f in roots]
    texts = " ".join(e.text for e in roots[0].evidence)
    assert "no address available" in texts and f"{VM2} is not among the 2 entries" in texts
    [server] = [s for s in d.summary["dhcp_servers"]]
    assert server == {"network": "6f1c2a3b-5d4e-4f70-8a9b-0c1d2e3f4a5b", "host": "net-02", "ip": "10.0.0.2"}
