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


def _chains(c: Console, chains: list[dict]) -> None:
    """Each cascade as one chain: its first cause first, each step with its time, indented
    by how far it stands from the cause, the guests left without an IP at its end, then
    the fixes in the order that recovers the cloud."""
    times = [s["time"] for ch in chains for s in ch["steps"] if s.get("time")]
    days = {time.strftime("%Y-%m-%d", time.gmtime(t)) for t in times}
    one_day = len(days) == 1

    def when(t: float | None) -> str:
        if not t:
            return " " * (9 if one_day else 20)
        return time.strftime("%H:%M:%S" if one_day else "%Y-%m-%d %H:%M:%S", time.gmtime(t)) + "Z"

    c.print(f"\n[bold]Chain[/] [dim](first cause first; times UTC{', ' + days.pop() if one_day else ''})[/]")
    for ch in chains:
        depth = 0
        for s in ch["steps"]:
            depth = s["depth"]
            arrow = "└─> " if depth else ""
            c.print(f"  {when(s.get('time'))}  {'    ' * max(0, depth - 1)}{arrow}[bold]{escape(s['finding'])}[/]"
                    f": {escape(s['title'])}")
        for g in ch.get("no_ip", []):
            src = f"{g['source']}:{g['line']}" if g.get("line") else g["source"]
            c.print(f"  {when(g.get('time'))}  {'    ' * depth}└─> [bold red]{escape(g['guest'])} gets no IP[/]"
                    f" ({escape(g.get('ip') or '')} expected): {escape(g['text'])} [dim]{escape(src)}[/]")
        if ch.get("fix"):
            c.print("  [green]fix, in the order that recovers the cloud:[/]")
            for i, fix in enumerate(ch["fix"], 1):
                c.print(f"    {i}. {escape(fix)}")


def render(d: Diagnosis, console: Console | None = None, max_evidence: int = 6) -> None:
    c = console or Console(emoji=False)
    obj = to_builtins(d)  # redacted
    roots = [f for f in obj["findings"] if f["root_cause"] and f["severity"] == "critical"]
    c.print(f"[bold {'red' if roots else 'green'}]{escape(obj['verdict'])}[/]")
    if not obj["findings"]:
        c.print("[dim]Read {facts} facts from {hosts} host(s).[/]".format(
            facts=obj["summary"].get("facts", 0), hosts=len(obj["summary"].get("hosts", []))))
    if obj.get("chains"):
        _chains(c, obj["chains"])
    # the chain: each root cause with the effects it explains
    chains = []
    for f in [] if obj.get("chains") else obj["findings"]:
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
    if obj.get("clock_offsets"):
        c.print("\n[bold]Clocks[/] [dim](times of those sources are shifted by that much)[/]")
        for o in obj["clock_offsets"]:
            c.print(f"  {escape(o['text'])}")
    if obj["findings"]:
        c.print("\n[bold]Findings[/]")
    for i, f in enumerate(obj["findings"], 1):
        color = COLORS.get(f["severity"], "white")
        tag = "root cause" if f["root_cause"] else f"caused by {', '.join(f['caused_by'])}"
        c.print(f"\n[{color}]{i}. [{f['severity']}] {escape(f['id'])}[/] — {escape(f['title'])} [dim]({tag})[/]")
        if f.get("hop"):
            c.print(f"   where: {escape(f['hop'])}")
        if f.get("also"):
            shown = ", ".join(f["also"][:8]) + (f", ... ({len(f['also']) - 8} more)" if len(f["also"]) > 8 else "")
            c.print(f"   also: {escape(shown)}")
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
