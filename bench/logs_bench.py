#!/usr/bin/env python3
"""How fast `whynoip facts` reads logs, next to `grep -c -E` for the same signatures.

Builds, in a temporary directory laid out like a node's /var/log, a corpus of ~100 MB
(`--mb`) from the real logs of the sample node in
tests/fixtures/real-samples/hotsos-openstack-node (its neutron agent logs and
syslog, repeated), sprinkled with that sample's own real lines that carry a known signature
(`whynoip.parsers.signatures`: MessagingTimeout, ECONNREFUSED, apparmor DENIED, ...), one
every `--every` lines. Then, in the same run, it times:

  whynoip   the reading pipeline in a child process (`whynoip.evidence.read.read` over the
            directory: open, cut into sections, choose the parser, parse, count facts;
            nothing is kept, as it streams), with its peak RSS, on the whole corpus and on a
            tenth of it (flat memory: the two peaks are alike)
  grep      grep -c -E '<the needles of every signature>' over the same files
  lines     the evidence layer alone (open, decode, split into lines; no parser), to tell
            the reading's share of the time from the parsers'

and prints MB/s, the ratio and the peak RSS. With --big (or when the first run says 1 GB
would take under a minute) it also reads a 1 GB corpus and prints its time and peak RSS.

    .venv/bin/python bench/logs_bench.py [--mb 100] [--every 200] [--big] [--keep DIR]
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "real-samples" / "hotsos-openstack-node"
SOURCES = (  # (sample file, where the corpus puts it, share of the corpus)
    ("var/log/neutron/neutron-dhcp-agent.log.1", "var/log/neutron/neutron-dhcp-agent.log", 0.35),
    ("var/log/neutron/neutron-openvswitch-agent.log", "var/log/neutron/neutron-openvswitch-agent.log", 0.2),
    ("var/log/neutron/neutron-l3-agent.log", "var/log/neutron/neutron-l3-agent.log", 0.15),
    ("var/log/syslog", "var/log/syslog", 0.3),
)


def _signatures():
    sys.path.insert(0, str(ROOT / "src"))
    from whynoip.parsers import signatures
    return signatures


def build(dest: Path, mb: float, every: int) -> dict:
    """Write the corpus; returns what was written."""
    sig = _signatures()
    written = {"bytes": 0, "files": 0, "sprinkled": 0}
    for src, rel, share in SOURCES:
        lines = (SAMPLE / src).read_text(errors="replace").splitlines(keepends=True)
        marked = [ln for ln in lines if sig.has_needle(ln) and sig.match(ln)]
        target = int(mb * share * (1 << 20))
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        size = 0
        k = 0
        with open(out, "w") as f:
            while size < target:
                for i, ln in enumerate(lines):
                    f.write(ln)
                    size += len(ln)
                    if marked and i % every == every - 1:
                        extra = marked[k % len(marked)]
                        k += 1
                        f.write(extra)
                        size += len(extra)
                    if size >= target:
                        break
        written["bytes"] += out.stat().st_size
        written["files"] += 1
        written["sprinkled"] += k
    return written


def grep_pattern() -> str:
    sig = _signatures()
    needles = sorted({n for s in sig.SIGNATURES for n in s.needles})
    return "|".join(re.sub(r"([.^$*+?()\[\]{}|\\])", r"\\\1", n) for n in needles)


def run_child(corpus: Path, lines_only: bool = False) -> dict:
    """The pipeline in a child process: wall time, peak RSS (KiB), what it found."""
    t0 = time.perf_counter()
    argv = [sys.executable, __file__, "--child", str(corpus)] + (["--lines-only"] if lines_only else [])
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    out = p.stdout.read() if p.stdout else ""
    if status != 0:
        raise SystemExit(f"the pipeline failed on {corpus} (status {status})")
    result = json.loads(out)
    result.update(seconds=elapsed, peak_rss_kib=usage.ru_maxrss)
    return result


def child(corpus: str, lines_only: bool) -> None:
    sys.path.insert(0, str(ROOT / "src"))
    from whynoip.evidence.read import Summary, read
    if lines_only:
        # the evidence layer alone: open, decode and split every file, no parser
        from functools import partial
        from whynoip.evidence.stream import ReadNotes, text_lines
        n = sum(1 for p in sorted(Path(corpus).rglob("*")) if p.is_file()
                for _ in text_lines(partial(open, p, "rb"), ReadNotes()))
        print(json.dumps({"facts": 0, "lines": n, "signals": 0, "by_type": {}, "parsers": {}}))
        return
    s = Summary()
    signals = 0
    n = 0
    for fact in read([corpus], summary=s):
        n += 1
        if getattr(fact, "signal", None):
            signals += 1
    print(json.dumps({"facts": n, "signals": signals, "by_type": dict(s.facts_by_type),
                      "parsers": dict(s.parsers_used)}))


def time_grep(files: list[Path]) -> tuple[float, int]:
    t0 = time.perf_counter()
    p = subprocess.run(["grep", "-c", "-E", grep_pattern(), *map(str, files)], capture_output=True, text=True,
                       env={**os.environ, "LC_ALL": "C"})
    elapsed = time.perf_counter() - t0
    total = sum(int(line.rsplit(":", 1)[1]) for line in p.stdout.splitlines() if ":" in line) \
        if len(files) > 1 else int(p.stdout.strip() or 0)
    return elapsed, total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mb", type=float, default=100)
    ap.add_argument("--every", type=int, default=200, help="a signature line every N lines")
    ap.add_argument("--big", action="store_true", help="also read a 1 GB corpus")
    ap.add_argument("--keep", type=Path, help="build the corpus here and keep it")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--lines-only", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.lines_only)
        return
    if not SAMPLE.is_dir():
        raise SystemExit(f"{SAMPLE}: the real sample is needed to build the corpus")
    work = args.keep or Path(tempfile.mkdtemp(prefix="whynoip-logs-bench-"))
    try:
        corpus, small = work / "node", work / "node-tenth"
        t0 = time.perf_counter()
        info = build(corpus, args.mb, args.every)
        build(small, args.mb / 10, args.every)
        mb = info["bytes"] / (1 << 20)
        print(f"corpus: {info['files']} files, {mb:.1f} MB, {info['sprinkled']} signature lines sprinkled "
              f"(built in {time.perf_counter() - t0:.1f} s)")
        files = sorted(p for p in corpus.rglob("*") if p.is_file())
        g_s, g_n = time_grep(files)
        w = run_child(corpus)
        w10 = run_child(small)
        raw = run_child(corpus, lines_only=True)
        print(f"grep -c -E <{len(grep_pattern().split('|'))} needles>: {g_s:6.2f} s  {mb / g_s:8.1f} MB/s  "
              f"{g_n} matching lines")
        print(f"whynoip read():            {w['seconds']:6.2f} s  {mb / w['seconds']:8.1f} MB/s  "
              f"{w['facts']} facts, {w['signals']} with a signal; parsers {w['parsers']}")
        print(f"ratio whynoip/grep time:   {w['seconds'] / g_s:.1f}x")
        print(f"of which reading lines:    {raw['seconds']:6.2f} s  {mb / raw['seconds']:8.1f} MB/s  "
              f"({raw['lines']} lines decoded and split, no parser)")
        print(f"peak RSS: {w['peak_rss_kib'] / 1024:.0f} MiB on {mb:.0f} MB, "
              f"{w10['peak_rss_kib'] / 1024:.0f} MiB on {mb / 10:.0f} MB")
        per_gb = w["seconds"] * 1024 / mb
        if args.big or per_gb < 60:
            big = work / "node-1g"
            build(big, 1024, args.every)
            gb = sum(p.stat().st_size for p in big.rglob("*") if p.is_file()) / (1 << 20)
            b = run_child(big)
            print(f"1 GB streaming check: {gb:.0f} MB in {b['seconds']:.1f} s ({gb / b['seconds']:.1f} MB/s), "
                  f"peak RSS {b['peak_rss_kib'] / 1024:.0f} MiB, {b['facts']} facts")
            shutil.rmtree(big, ignore_errors=True)
        else:
            print(f"1 GB streaming check skipped: it would take about {per_gb:.0f} s; run with --big")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
