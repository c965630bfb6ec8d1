#!/usr/bin/env python3
"""The doctor's accuracy on the lab's fault matrix: every injectable fault (each variant),
on the single-agent and the two-agent topology, plus healthy labs. Each case is built from
real parts, broken, exercised with the guests' real DHCP clients, collected as an operator
would, and diagnosed; the table shows the first root cause reported and the time taken.
The last line is `accuracy: <correct>/<total>`: a fault counts when it is the first root
cause reported, a healthy lab when no critical finding is reported.

    sudo .venv/bin/python bench/accuracy.py [--cases PATTERN] [--from-fixtures]

`--from-fixtures` diagnoses the committed bundles in tests/fixtures/lab instead of
building labs (seconds instead of minutes)."""

from __future__ import annotations

import argparse
import fnmatch
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

from whynoip.diagnose import diagnose  # noqa: E402
from whynoip.evidence.read import read  # noqa: E402


def expected_of(case_name: str) -> str | None:
    fault = case_name.split("--")[0].split("+")[0]
    return None if fault == "healthy" else fault


def judge(case_name: str, bundle: Path) -> tuple[bool, str, list[str], float]:
    start = time.monotonic()
    d = diagnose(list(read([str(bundle)])))
    seconds = time.monotonic() - start
    roots = [f.id for f in d.findings if f.root_cause and f.severity != "info"]
    critical = [f.id for f in d.findings if f.severity == "critical"]
    want = expected_of(case_name)
    ok = (not critical) if want is None else bool(roots) and roots[0] == want
    return ok, roots[0] if roots else "-", roots[1:], seconds


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--cases", default="*", help="fnmatch pattern on case names")
    ap.add_argument("--from-fixtures", action="store_true")
    args = ap.parse_args()
    rows = []
    if args.from_fixtures:
        for bundle in sorted(p for p in (ROOT / "tests/fixtures/lab").iterdir() if p.is_dir()):
            if fnmatch.fnmatch(bundle.name, args.cases):
                rows.append((bundle.name, 0.0, *judge(bundle.name, bundle)))
    else:
        import make_lab_fixtures as matrix
        work = Path(tempfile.mkdtemp(prefix="whynoip-accuracy-"))
        try:
            for case in matrix.cases():
                if not fnmatch.fnmatch(case.name, args.cases):
                    continue
                t = time.monotonic()
                matrix.make(case, work)
                build = time.monotonic() - t
                rows.append((case.name, build, *judge(case.name, work / case.name)))
                shutil.rmtree(work / case.name, ignore_errors=True)
                print(f"  {case.name}: {rows[-1][3]} ({build:.1f}s)", file=sys.stderr)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'case':52} {'expected':28} {'first root cause':28} {'lab s':>6} {'diag s':>6}  also")
    for name, build, ok, first, rest, secs in rows:
        print(f"{'ok ' if ok else 'BAD'} {name:48} {expected_of(name) or '(none critical)':28} {first:28} "
              f"{build:6.1f} {secs:6.2f}  {','.join(rest[:3])}")
    correct = sum(r[2] for r in rows)
    print(f"accuracy: {correct}/{len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
