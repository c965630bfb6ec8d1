"""The terminal report: the verdict first (what a person grasps in ten seconds), then the
causal chain, each finding's evidence and fix, the path hop by hop, and what to collect
next."""

from __future__ import annotations

import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from whynoip.findings import Diagnosis
from whynoip.report.json import to_builtins

COLORS = {"critical": "red", "warning": "yellow", "info": "blue"}
HOP = {"ok": "[green]●[/]", "broken": "[red]✗[/]", "unknown": "[dim]○[/]"}


def _t(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z" if ts else ""


def render(d: Diagnosis, console: Console | None = None, max_evidence: int = 6) -> None:
    c = console or Console()
    obj = to_builtins(d)  # redacted
    roots = [f for f in obj["findings"] if f["root_cause"] and f["severity"] == "critical"]
    c.print(f"[bold {'red' if roots else 'green'}]{escape(obj['verdict'])}[/]")
    if not obj["findings"]:
        c.print("[dim]Read {facts} facts from {hosts} host(s).[/]".format(
            facts=obj["summary"].get("facts", 0), hosts=len(obj["summary"].get("hosts", []))))
    # the chain: each root cause with the effects it explains
    chains = []
    for f in obj["findings"]:
        if f["root_cause"]:
            effects = [g for g in obj["findings"] if f["id"] in g["caused_by"]]
            if effects:
                chains.append((f, effects))
    if chains:
        c.print("\n[bold]Chain[/]")
        for f, effects in chains:
            when = f" at {_t(f.get('time'))}" if f.get("time") else ""
            c.print(f"  {escape(f['id'])}{when}")
            for g in effects:
                gw = f" at {_t(g.get('time'))}" if g.get("time") else ""
                c.print(f"    └─> {escape(g['id'])}{gw}: {escape(g['title'])}")
    c.print("\n[bold]Findings[/]")
    for i, f in enumerate(obj["findings"], 1):
        color = COLORS.get(f["severity"], "white")
        tag = "root cause" if f["root_cause"] else f"caused by {', '.join(f['caused_by'])}"
        c.print(f"\n[{color}]{i}. [{f['severity']}] {escape(f['id'])}[/] — {escape(f['title'])} [dim]({tag})[/]")
        if f.get("hop"):
            c.print(f"   where: {escape(f['hop'])}")
        for e in f["evidence"][:max_evidence]:
            src = f"{e['source']}:{e['line']}" if e.get("line") else e["source"]
            host = f"{e['host']} " if e.get("host") else ""
            c.print(f"   [dim]{escape(host + src)}[/]  {escape(e.get('text', ''))}")
        if len(f["evidence"]) > max_evidence:
            c.print(f"   [dim]... {len(f['evidence']) - max_evidence} more[/]")
        for fix in f["fix"]:
            c.print(f"   [green]fix:[/] {escape(fix)}")
        for ref in f.get("references", []):
            c.print(f"   [dim]see: {escape(ref)}[/]")
    if obj["paths"]:
        c.print("\n[bold]Path[/]")
        for p in obj["paths"]:
            t = Table(title=f"{p['port']} -> server on {p.get('server') or '?'}", title_justify="left", box=None)
            t.add_column("")
            t.add_column("hop")
            t.add_column("seen")
            for h in p["hops"]:
                t.add_row(HOP.get(h["state"], "?"), escape(h["name"]), " ".join(h["seen"]) or "-")
            c.print(t)
    if obj["next_steps"]:
        c.print("\n[bold]Collect next[/]")
        for s in obj["next_steps"]:
            on = f"on {s['host']}: " if s.get("host") else ""
            c.print(f"  {escape(s['why'])}\n    {escape(on)}[cyan]{escape(s['command'])}[/]")
    if obj["summary"].get("unparsed_sections"):
        c.print(f"\n[dim]{obj['summary']['unparsed_sections']} section(s) of the input were not understood "
                "(whynoip facts PATH shows which).[/]")
