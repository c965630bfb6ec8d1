"""Many findings of one kind read as one: a NAK storm of thousands of clients is one finding
with the other clients in `also`, in every report."""

from __future__ import annotations

import io
import json

from rich.console import Console

from whynoip.diagnose import FOLD_AT, fold
from whynoip.findings import Diagnosis, Evidence, Finding
from whynoip.report import html as html_report
from whynoip.report import json as json_report
from whynoip.report import text as text_report


def nak(i: int, fix: str = "restart the DHCP agent") -> Finding:
    mac = f"fa:16:3e:00:00:{i:02x}"
    return Finding(id="dhcp-nak", title=f"The DHCP server refused {mac}'s request (DHCPNAK)",
                   severity="warning", subject=mac, fix=[fix], time=100.0 + i,
                   evidence=[Evidence(source="dora.pcap", line=i, text=f"NAK to {mac}")])


def test_few_stay_apart():
    findings = [nak(i) for i in range(FOLD_AT)]
    assert fold(findings) == (findings, {})


def test_many_fold_into_the_first():
    other = Finding(id="dhcp-agent-down", title="t", severity="critical", subject="net1")
    findings = [other] + [nak(i) for i in range(40)]
    out, members = fold(findings)
    assert [f.id for f in out] == ["dhcp-agent-down", "dhcp-nak"]
    f = out[1]
    assert f.subject == "fa:16:3e:00:00:00" and f.also == [f"fa:16:3e:00:00:{i:02x}" for i in range(1, 40)]
    assert f.title.endswith("(and 39 more like it)")
    assert [e.line for e in f.evidence] == [0, 1, 2, 3, 4] and f.time == 100.0
    assert members == {id(f): findings[1:]}


def test_the_target_stays_apart_and_other_causes_do_not_mix():
    findings = [nak(i) for i in range(10)] + [nak(i, "other fix") for i in range(20, 30)]
    out, _ = fold(findings, target="fa:16:3e:00:00:05")
    assert [(f.subject, len(f.also)) for f in out] == [
        ("fa:16:3e:00:00:00", 8), ("fa:16:3e:00:00:05", 0), ("fa:16:3e:00:00:14", 9)]


def test_reports_show_the_folded_subjects():
    d = Diagnosis(verdict="v", findings=fold([nak(i) for i in range(30)])[0])
    obj = json.loads(json_report.render(d))
    assert len(obj["findings"]) == 1 and len(obj["findings"][0]["also"]) == 29
    out = io.StringIO()
    text_report.render(d, Console(file=out, width=200))
    assert "also: fa:16:3e:00:00:01, fa:16:3e:00:00:02" in out.getvalue() and "(21 more)" in out.getvalue()
    assert "and 29 more like it" in html_report.render(d)


def test_macs_are_not_read_as_emoji_codes():
    # rich turns ":ab:" into an emoji unless told not to: fa:16:3e:ab:... must stay as it is
    f = Finding(id="dhcp-nak", title="The DHCP server refused fa:16:3e:ab:cd:01's request", severity="warning",
                subject="fa:16:3e:ab:cd:01", evidence=[Evidence(source="x", line=1, text="NAK fa:16:3e:ab:cd:01")])
    out = io.StringIO()
    text_report.render(Diagnosis(verdict="v", findings=[f]), Console(file=out, width=200, emoji=False))
    assert out.getvalue().count("fa:16:3e:ab:cd:01") == 2
    default = io.StringIO()
    import contextlib
    with contextlib.redirect_stdout(default):
        text_report.render(Diagnosis(verdict="v", findings=[f]))
    assert "\N{NEGATIVE SQUARED AB}" not in default.getvalue() and "fa:16:3e:ab:cd:01" in default.getvalue()
