"""`whynoip diagnose` and `whynoip demo`."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from whynoip.diagnose import diagnose as run_diagnosis
from whynoip.evidence.read import check_paths, read


@click.command()
@click.argument("paths", nargs=-1)
@click.option("--live", is_flag=True, help="Collect this machine first (whynoip collect) and diagnose that too.")
@click.option("--port", "port", default=None, help="Port id (or its first characters).")
@click.option("--mac", default=None)
@click.option("--ip", default=None)
@click.option("--guest", default=None, help="Instance name.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json", "html"]), default="text", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), default=None, help="Write the report to a file.")
def diagnose(paths, live, port, mac, ip, guest, fmt, output) -> None:
    """Why has the instance no IP? Reads the evidence (files, directories, tarballs,
    sosreports, pcaps, pasted transcripts; `-` for stdin) and names the fault."""
    if not paths and not live:
        raise click.UsageError("give the evidence: PATH... (or --live to collect this machine)")
    check_paths(paths)
    if live:
        from whynoip.live.collect_cli import live_bundle
        paths = (*paths, str(live_bundle()))
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
                render(d, Console(file=f, width=120, force_terminal=False, emoji=False))
            return
        render(d)
        return
    if output:
        Path(output).write_text(text)
    else:
        click.echo(text)


@click.command()
@click.option("--fault", "fault_id", default="dnsmasq-unresponsive", show_default=True,
              help="Which fault of the lab's catalogue to inject (whynoip lab fault --help lists them).")
@click.option("--topology", default="default", show_default=True)
@click.option("--name", default="demo", show_default=True, help="Name of the demo's lab.")
@click.option("--keep", is_flag=True, help="Leave the lab and the bundle in place afterwards.")
@click.option("-o", "--output", "bundle_dir", default=None, help="Where to write the collected bundle.")
def demo(fault_id: str, topology: str, name: str, keep: bool, bundle_dir: str | None) -> None:
    """Build the lab, break it, collect the evidence as an operator would, and diagnose it."""
    import tempfile

    from rich.console import Console

    from whynoip.lab import collect, faults
    from whynoip.lab.lab import Lab

    console = Console(emoji=False)
    lab = Lab(name)
    lab.down()
    out = Path(bundle_dir) if bundle_dir else Path(tempfile.mkdtemp(prefix="whynoip-demo-")) / "bundle"
    try:
        console.rule("[bold]1. build the lab")
        seconds = lab.up(topology)
        st = lab.status()
        console.print(f"{len(st['nodes'])} nodes, dnsmasq on "
                      f"{', '.join(s['node'] for n in st['networks'] for s in n['dhcp_servers'])}, "
                      f"guests {', '.join(g['name'] for g in st['guests'])} — built in {seconds:.2f}s")
        guest = st["guests"][0]["name"]
        a = lab.dhcp(guest)
        console.print(f"{guest}: {'got ' + str(a.ip) if a.ok else 'got no IP'} in {a.seconds:.2f}s (healthy)")
        console.rule(f"[bold]2. break it: {fault_id}")
        record = faults.inject(lab, fault_id)
        guest = (record or {}).get("guest") or guest
        a = lab.dhcp(guest)
        console.print(f"{guest}: {'got ' + str(a.ip) if a.ok else 'got no IP'} in {a.seconds:.2f}s")
        console.rule("[bold]3. collect the evidence")
        collect.collect(lab, out)
        console.print(f"bundle: {out} (what an operator would gather: sosreport-like trees per node, captures, "
                      f"console logs, the API view)")
        console.rule(f"[bold]4. whynoip diagnose {out}")
        d = run_diagnosis(list(read([str(out)])))
        from whynoip.report.text import render
        render(d, console)
        found = [f.id for f in d.findings if f.root_cause]
        console.rule()
        console.print(f"injected: [bold]{fault_id}[/]   first root cause reported: "
                      f"[bold]{found[0] if found else 'none'}[/]")
    finally:
        if not keep:
            lab.down()
            if not bundle_dir:
                import shutil
                shutil.rmtree(out.parent, ignore_errors=True)
