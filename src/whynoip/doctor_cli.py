"""`whynoip diagnose` and `whynoip demo`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from whynoip.diagnose import diagnose as run_diagnosis
from whynoip.evidence.read import check_paths, read


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--port", "port", default=None, help="Port id (or its first characters).")
@click.option("--mac", default=None)
@click.option("--ip", default=None)
@click.option("--guest", default=None, help="Instance name.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the report to a file.")
def diagnose(paths, port, mac, ip, guest, fmt, output) -> None:
    """Why has the instance no IP? Reads the evidence (files, directories, tarballs,
    sosreports, pcaps, pasted transcripts; `-` for stdin) and names the fault."""
    check_paths(paths)
    stdin = sys.stdin.buffer if "-" in paths else None
    facts = list(read(paths, stdin=stdin))
    d = run_diagnosis(facts, target=port or mac or ip or guest)
    write_report(d, fmt, output)
    sys.exit(1 if any(f.root_cause and f.severity == "critical" for f in d.findings) else 0)


def write_report(d, fmt: str, output: str | None) -> None:
    if fmt == "json":
        from whynoip.report.json import render
        text = render(d)
    elif fmt == "html":
        from whynoip.report.html import render
        text = render(d)
    else:
        from rich.console import Console
        from whynoip.report.text import render
        if output:
            with open(output, "w") as f:
                render(d, Console(file=f, width=120, force_terminal=False))
            return
        render(d)
        return
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text)
