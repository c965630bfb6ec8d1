#!/usr/bin/env python3
"""How fast the doctor diagnoses a whole node bundle: ~100 MB of logs and a 1M-packet capture.

Builds, in a temporary directory, a bundle laid out like the lab's (the committed bundle
`tests/fixtures/lab/healthy--default` is the skeleton: its nodes, API view and captures are
kept), whose network node `net1` has lived a while longer:

  var/log/neutron/neutron-dhcp-agent.log     real oslo.log lines of the real-samples node's
  var/log/neutron/neutron-openvswitch-agent.log   agents (hotsos, DEBUG on), repeated with
  var/log/neutron/neutron-l3-agent.log        their times rewritten to run on, one after the
                                              other, over the two weeks before the lab's lines
  var/log/syslog                              the real-samples node's syslog, likewise
  var/log/openvswitch/ovs-vswitchd.log        the real-samples node's Open vSwitch lines
                                              (whynoip has no parser for it: lines counted)
  var/log/neutron/dnsmasq/<net>/dhcp_dns_log  the lab dnsmasq's own DHCP transactions
                                              (renewals of the lab's guests)

each ending with the lab's own lines of that file, and a capture of one million packets on
the DHCP port's tap (`captures/bulk/tcpdump_-i_tap<port>.pcap`), built by
`bench/pcap_bench.py` from the real packets of `tests/fixtures/parsers/pcap/`: one packet in
ten is DHCP, DORAs of ten thousand clients of the lab's server 10.0.0.2, each client also
NAKed once (the real capture of a dhclient reboot), so the doctor reports a `dhcp-nak`
warning per client. Then, in the same run, it times:

  whynoip      the console script, `whynoip diagnose BUNDLE -f json -o FILE`, end to end
               (best of --repeat), with its CPU time and peak RSS; then once with the text
               report
  in process   the same pipeline in a child Python, stage by stage: read (its workers' CPU
               apart), diagnose (and, timed again apart, the model and the rules), report
  per file     each big input read alone, one after the other, on one core
  grep         grep -c -E '<the needles of every signature>' over the same log files
  tshark       tshark -T fields on the capture (as bench/pcap_bench.py runs it; skipped
               with a note when tshark is not installed: ./install.sh --bench installs it)

and prints the ratios, the verdict on the skeleton and on the grown bundle, and the load
average (the machine may be shared). The target is a whole diagnosis under 5 seconds.

    .venv/bin/python bench/bundle_bench.py [--mb 100] [--packets 1000000] [--repeat 3]
                                           [--keep DIR [--reuse]] [--no-tshark]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

import logs_bench  # noqa: E402  (the grep baseline and its pattern)
import pcap_bench  # noqa: E402  (the capture builder and the tshark baseline)

SKELETON = ROOT / "tests" / "fixtures" / "lab" / "healthy--default"
SAMPLE = ROOT / "tests" / "fixtures" / "real-samples" / "hotsos-openstack-node"
NODE = "net1"

OSLO_TIME = (re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"), "%Y-%m-%d %H:%M:%S", ".{ms:03d}")
OVS_TIME = (re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"), "%Y-%m-%dT%H:%M:%S", ".{ms:03d}Z")
BSD_TIME = (re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d"), "%b %e %H:%M:%S", "")

# (file in the node, share of the log megabytes, time format, real sources of its lines)
LOGS = (
    ("var/log/neutron/neutron-dhcp-agent.log", 0.28, OSLO_TIME,
     ["var/log/neutron/neutron-dhcp-agent.log.1", "var/log/neutron/neutron-dhcp-agent.log"]),
    ("var/log/neutron/neutron-openvswitch-agent.log", 0.20, OSLO_TIME,
     ["var/log/neutron/neutron-openvswitch-agent.log"]),
    ("var/log/neutron/neutron-l3-agent.log", 0.12, OSLO_TIME, ["var/log/neutron/neutron-l3-agent.log"]),
    ("var/log/syslog", 0.20, BSD_TIME, ["var/log/syslog"]),
    ("var/log/openvswitch/ovs-vswitchd.log", 0.08, OVS_TIME, ["var/log/openvswitch/ovs-vswitchd.log"]),
    ("var/log/neutron/dnsmasq/{net}/dhcp_dns_log", 0.12, BSD_TIME, []),  # the lab's own lines
)
# dnsmasq's lines of one DHCP transaction (`<xid> DHCPREQUEST(...)`, `<xid> tags: ...`): a
# renewal repeats those, not the start-up lines (which would say dnsmasq restarted)
DNSMASQ_TRANSACTION = re.compile(r"^\S+ +\d+ \d\d:\d\d:\d\d dnsmasq-dhcp\[\d+\]: \d+ ")
HISTORY_DAYS = 14


# --- building the bundle ------------------------------------------------------------------------

def _bundle_time(node: Path) -> float:
    text = (node / "sos_commands" / "date" / "date_--utc").read_text().strip()
    return datetime.strptime(text, "%a %b %d %H:%M:%S UTC %Y").replace(tzinfo=timezone.utc).timestamp()


def _first_time(lines: list[str], fmt) -> float | None:
    rx, pattern, _ = fmt
    for line in lines:
        m = rx.match(line)
        if m and "%b" not in pattern:
            return datetime.strptime(m.group(0)[:19], pattern).replace(tzinfo=timezone.utc).timestamp()
    return None


def _write_history(out, templates: list[str], fmt, size: int, start: float, end: float) -> int:
    """Write `size` bytes of the template lines over and over, each timed line given the
    next time of a clock running from `start` to `end` (lines that shared one time in the
    source, such as a traceback printed with the record's prefix, share one here too);
    continuation lines stay as they are. Returns the bytes written."""
    rx, pattern, frac = fmt
    stamps = [(m.group(0) if (m := rx.match(t)) else None) for t in templates]
    rests = [t[len(st):] if st else t for t, st in zip(templates, stamps)]
    # 1: a new time, 0: the previous line's time again, None: no time on this line
    ticks = []
    prev = None
    for st in stamps:
        ticks.append(None if st is None else int(st != prev))
        prev = st if st is not None else prev
    per_pass = sum(len(t.encode()) + 1 for t in templates)
    n_times = max(1, int(sum(x or 0 for x in ticks) * size / max(per_pass, 1)) + 1)
    step = (end - start) / n_times
    t = start
    second, stamp, line_stamp = -1, "", ""
    written = 0
    batch: list[str] = []
    while written < size:
        for rest, tick in zip(rests, ticks):
            if tick is None:
                line = rest
            else:
                if tick:
                    t += step
                    s = int(t)
                    if s != second:
                        second, stamp = s, time.strftime(pattern, time.gmtime(s))
                    line_stamp = stamp + frac.format(ms=int((t - s) * 1000)) if frac else stamp
                line = line_stamp + rest
            batch.append(line)
            written += len(line) + 1
            if written >= size:
                break
        out.write("\n".join(batch) + "\n")
        batch.clear()
    return written


def build(dest: Path, mb: float, packets: int) -> dict:
    """The bundle under `dest`; returns what was written."""
    shutil.copytree(SKELETON, dest)
    node = dest / NODE
    now = _bundle_time(node)
    nets = [p.name for p in (node / "var/log/neutron/dnsmasq").iterdir()]
    info = {"logs": {}, "log_bytes": 0}
    total = int(mb * (1 << 20))
    for rel, share, fmt, sources in LOGS:
        path = node / rel.format(net=nets[0])
        own = path.read_text(errors="replace").splitlines() if path.exists() else []
        if sources:
            templates = [ln for src in sources for ln in (SAMPLE / src).read_text(errors="replace").splitlines()]
        else:
            templates = [ln for ln in own if DNSMASQ_TRANSACTION.match(ln)]
        templates = [ln for ln in templates if ln.strip()]
        if not templates:
            raise SystemExit(f"no real lines to grow {rel} from")
        # history: the weeks before the lab's own first line, which close the file
        end = (_first_time(own, fmt) or now) - 60
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as out:
            _write_history(out, templates, fmt, int(total * share), end - HISTORY_DAYS * 86400, end)
            for ln in own:
                out.write(ln + "\n")
        info["logs"][str(path.relative_to(dest))] = path.stat().st_size
        info["log_bytes"] += path.stat().st_size
    taps = sorted((node / "captures").glob("*/tcpdump_-i_tap*.pcap"))
    tap = taps[0].name if taps else "tcpdump_-i_tap-dhcp.pcap"
    pcap = node / "captures" / "bulk" / tap
    pcap.parent.mkdir(parents=True)
    info["dhcp_packets"] = pcap_bench.build(pcap, packets, 10)
    info["pcap"] = str(pcap)
    info["pcap_bytes"] = pcap.stat().st_size
    return info


# --- measuring ----------------------------------------------------------------------------------

IN_PROCESS = r"""
import gc, json, os, resource, sys, time
t0 = time.perf_counter()
from whynoip.diagnose import diagnose, run_rules
from whynoip.evidence.read import read
from whynoip.model import build
from whynoip.report.json import render


def stage(fn):
    w, c = time.perf_counter(), time.process_time()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = fn()
    k2 = resource.getrusage(resource.RUSAGE_CHILDREN)
    workers = (k2.ru_utime + k2.ru_stime) - (kids.ru_utime + kids.ru_stime)
    return out, {"wall": time.perf_counter() - w, "cpu": time.process_time() - c, "workers_cpu": workers}


def paused(fn):  # as diagnose() runs the model and the rules: the cyclic collector paused
    def run():
        gc.disable()
        try:
            return fn()
        finally:
            gc.enable()
    return run


imported = time.perf_counter() - t0
paths = sys.argv[1:]
facts, s_read = stage(lambda: list(read(paths)))
d, s_diag = stage(lambda: diagnose(facts))
report, s_report = stage(lambda: render(d))
total = time.perf_counter() - t0
# what diagnose() spent joining the facts and running the rules, timed again apart
pic, s_model = stage(paused(lambda: build(facts)))
_, s_rules = stage(paused(lambda: run_rules(pic)))
by_type = {}
for f in facts:
    by_type[type(f).__name__] = by_type.get(type(f).__name__, 0) + 1
print(json.dumps({
    "import": imported, "total": total, "read": s_read, "model": s_model, "rules": s_rules, "diagnose": s_diag,
    "report": s_report, "facts": len(facts), "by_type": by_type, "verdict": d.verdict,
    "root_causes": d.summary["root_causes"], "findings": len(d.findings),
    "critical": d.summary["critical"], "report_bytes": len(report)}))
"""

PER_FILE = r"""
import json, sys, time
from whynoip.evidence.read import Summary, read
out = []
for p in sys.argv[1:]:
    s = Summary()
    t, c = time.perf_counter(), time.process_time()
    n = sum(1 for _ in read([p], summary=s))
    out.append([p, time.perf_counter() - t, time.process_time() - c, n, sorted(s.parsers_used)])
print(json.dumps(out))
"""


def run_measured(argv: list[str]) -> tuple[float, float, int, str, int, str]:
    """(wall s, CPU s, peak RSS KiB, stdout, exit code, stderr) of a command, by wait4."""
    t = time.perf_counter()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, out.read().decode(),
                proc.returncode, err.read().decode())


def _stages(r: dict) -> str:
    def one(name: str, label: str) -> str:
        st = r[name]
        workers = f", its workers {st['workers_cpu']:.1f} s CPU" if st["workers_cpu"] > 0.05 else ""
        return f"{label} {st['wall']:.2f} s ({st['cpu']:.2f} s CPU{workers})"
    return (f"import {r['import']:.2f} s, {one('read', 'read')}, {one('diagnose', 'diagnose')} "
            f"[of which {one('model', 'model')}, {one('rules', 'rules')}], {one('report', 'JSON report')}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100, help="megabytes of logs")
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--keep", metavar="DIR", help="build the bundle here and keep it")
    ap.add_argument("--reuse", action="store_true", help="with --keep: use the bundle already built there")
    ap.add_argument("--repeat", type=int, default=3, help="runs of the console script (the best is kept)")
    ap.add_argument("--no-tshark", action="store_true", help="skip the tshark baseline (minutes on 1M packets)")
    args = ap.parse_args()
    if not SAMPLE.is_dir():
        raise SystemExit(f"{SAMPLE}: the real sample is needed to build the logs")
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="whynoip-bundle-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle = work / "bundle"
    info_file = work / "bundle.json"
    try:
        t = time.perf_counter()
        if args.reuse and args.keep and info_file.exists() and bundle.is_dir():
            info = json.loads(info_file.read_text())
        else:
            if bundle.exists():
                shutil.rmtree(bundle)
            try:
                info = build(bundle, args.mb, args.packets)
            except OSError as e:
                print(f"cannot write the bundle: {e}", file=sys.stderr)
                return 2
            info_file.write_text(json.dumps(info))
        size = sum(p.stat().st_size for p in bundle.rglob("*") if p.is_file())
        print(f"bundle: {size / 1e6:.0f} MB ({info['log_bytes'] / (1 << 20):.0f} MiB of logs on {NODE}, "
              f"a capture of {info['pcap_bytes'] / 1e6:.0f} MB with {info['dhcp_packets']} DHCP packets), "
              f"ready in {time.perf_counter() - t:.1f} s; {len(os.sched_getaffinity(0))} cores, load average "
              f"{os.getloadavg()[0]:.1f} before the runs")
        for rel, n in info["logs"].items():
            print(f"  {rel:<72}{n / (1 << 20):6.1f} MiB")

        py = sys.executable
        whynoip = str(Path(sys.executable).parent / "whynoip")
        paths = [str(bundle)]
        log_files = [str(bundle / p) for p in info["logs"]]

        # the skeleton alone, for comparison
        *_, out, code, err = run_measured([py, "-c", IN_PROCESS, str(SKELETON)])
        if code:
            print(err, file=sys.stderr)
            return 1
        base = json.loads(out)

        # the console script, end to end (JSON report; the best of --repeat), then the text report
        runs = []
        for _ in range(max(1, args.repeat)):
            cli = run_measured([whynoip, "diagnose", *paths, "-f", "json", "-o", str(work / "report.json")])
            if cli[4] not in (0, 1):
                print(f"whynoip diagnose failed ({cli[4]}): {cli[5].strip()[-500:]}", file=sys.stderr)
                return 1
            runs.append(cli)
        best = min(runs, key=lambda r: r[0])
        text = run_measured([whynoip, "diagnose", *paths, "-o", str(work / "report.txt")])

        # the same, in process, stage by stage
        *_, out, code, err = run_measured([py, "-c", IN_PROCESS, *paths])
        if code:
            print(err, file=sys.stderr)
            return 1
        inproc = json.loads(out)

        # what each big input costs on its own, read one after the other in one process
        *_, out, code, err = run_measured([py, "-c", PER_FILE, *log_files, info["pcap"]])
        per_file = json.loads(out) if code == 0 else []

        # the baselines
        g_s, g_n = logs_bench.time_grep([Path(p) for p in log_files])
        tshark = None if args.no_tshark else shutil.which("tshark")
        ts = None
        if tshark:
            ts = pcap_bench.run_child(
                [tshark, "-n", "-r", info["pcap"], "-Y", "dhcp", "-T", "fields", "-e", "frame.number",
                 "-e", "dhcp.id", "-e", "dhcp.option.dhcp", "-e", "dhcp.hw.mac_addr"], stdout_lines=True)

        log_mb = info["log_bytes"] / (1 << 20)
        print(f"\nthe skeleton alone (healthy--default): read {base['read']['wall']:.3f} s, "
              f"diagnose {base['diagnose']['wall']:.3f} s; verdict: {base['verdict']}")
        print("\nwhynoip diagnose BUNDLE (the console script, end to end)")
        print(f"  -f json: {best[0]:6.2f} s wall (runs: {', '.join(f'{r[0]:.2f}' for r in runs)}), "
              f"{best[1]:.1f} s CPU with its workers, peak RSS {best[2] / 1024:.0f} MiB   (target < 5 s)")
        print(f"  text:    {text[0]:6.2f} s wall, {text[1]:.1f} s CPU, peak RSS {text[2] / 1024:.0f} MiB")
        print(f"in process: {inproc['total']:.2f} s: {_stages(inproc)}")
        print(f"  facts: {inproc['facts']} ({', '.join(f'{k} {v}' for k, v in sorted(inproc['by_type'].items(), key=lambda kv: -kv[1])[:4])})")
        print(f"  findings: {inproc['findings']} ({inproc['critical']} critical); root causes: "
              f"{', '.join(f'{k} x{v}' for k, v in Counter(inproc['root_causes']).items()) or 'none'}")
        print(f"  verdict: {inproc['verdict']}")
        if per_file:
            print("\neach big input read alone, one after the other (read() in one process):")
            for p, secs, cpu_s, n, used in per_file:
                mb = os.path.getsize(p) / (1 << 20)
                print(f"  {os.path.relpath(p, bundle):<72}{secs:6.2f} s {mb / secs:7.1f} MiB/s {n:>7} facts  "
                      f"{','.join(used) or 'no parser (lines counted)'}")
        print("\nbaselines, same run")
        print(f"  grep -c -E <{len(logs_bench.grep_pattern().split('|'))} needles> over the logs: {g_s:6.2f} s "
              f"({log_mb / g_s:.0f} MiB/s, {g_n} lines)")
        logs_s = sum(r[1] for r in per_file if r[0] in log_files)
        if logs_s:
            print(f"  whynoip reading the same logs, one core: {logs_s:6.2f} s ({log_mb / logs_s:.1f} MiB/s), "
                  f"{logs_s / g_s:.0f}x grep's time")
        pcap_s = next((r[1] for r in per_file if r[0] == info["pcap"]), None)
        if ts:
            print(f"  tshark -Y dhcp -T fields on the capture: {ts[0]:6.2f} s, peak RSS {ts[3] / 1024:.0f} MiB, "
                  f"{ts[2]} DHCP packets")
            if pcap_s:
                print(f"  whynoip reading the same capture:        {pcap_s:6.2f} s, {ts[0] / pcap_s:.1f}x faster")
            print(f"  the whole diagnosis (-f json) vs tshark on the capture alone: {ts[0] / best[0]:.1f}x faster")
        elif not args.no_tshark:
            print("  tshark: not installed, skipped (./install.sh --bench installs it)")
        print(f"\nload average after the runs: {os.getloadavg()[0]:.1f}")
        verdict = "met" if best[0] < 5 else "NOT met"
        print(f"target: the whole diagnosis under 5 s: {verdict} ({best[0]:.2f} s)")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
