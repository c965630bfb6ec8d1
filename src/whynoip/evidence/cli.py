"""`whynoip facts PATH...`: what whynoip reads in the evidence, before any diagnosis.

Prints every fact found (JSON, or a table per fact type) and every section it could not
read, with its place and why, so that an operator can see what the diagnosis will be
based on and what it missed. Secrets are redacted from everything printed.
"""

from __future__ import annotations

import sys
from collections import defaultdict

import click
import msgspec

from whynoip.evidence.read import Summary, read
from whynoip.evidence.redact import redact_fact
from whynoip.facts import Fact, Unparsed


def _key(f: Fact) -> tuple[str, int]:
    return (f.origin.path, f.origin.line)


def collect(paths: list[str], stdin=None) -> tuple[list[Fact], list[Unparsed], Summary]:
    summary = Summary()
    facts: list[Fact] = []
    unparsed: list[Unparsed] = []
    for fact in read(paths, stdin=stdin, summary=summary):
        fact = redact_fact(fact)
        (unparsed if isinstance(fact, Unparsed) else facts).append(fact)  # type: ignore[arg-type]
    facts.sort(key=_key)
    unparsed.sort(key=_key)
    return facts, unparsed, summary


def summary_dict(summary: Summary) -> dict:
    return {
        "facts_by_type": dict(sorted(summary.facts_by_type.items())),
        "sections": summary.sections,
        "files": summary.files,
        "skipped": dict(sorted(summary.skipped.items())),
    }


@click.command("facts")
@click.argument("paths", nargs=-1, required=True)
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="a table per fact type, or JSON")
@click.option("--limit", type=int, default=40, show_default=True,
              help="text: rows shown per fact type (0: all)")
def facts(paths: tuple[str, ...], fmt: str, limit: int) -> None:
    """Read the evidence in PATH... (files, directories, tarballs, sosreports, pcaps,
    pasted transcripts; `-` for stdin) and print the facts found."""
    found, unparsed, summary = collect(list(paths), stdin=sys.stdin.buffer if "-" in paths else None)
    try:
        if fmt == "json":
            out = {"facts": found, "unparsed": unparsed, "summary": summary_dict(summary)}
            data = msgspec.json.format(msgspec.json.encode(out), indent=2)
            sys.stdout.buffer.write(data + b"\n")
            sys.stdout.flush()
        else:
            _print_text(found, unparsed, summary, limit)
    except BrokenPipeError:
        # `whynoip facts ... | head`: the reader left; say nothing more
        import os
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


# --- text ---------------------------------------------------------------------------------------

def _tail(text: str, width: int) -> str:
    return text if len(text) <= width else "\u2026" + text[-(width - 1):]


def _where(f: Fact, strip: str = "", width: int = 0) -> str:
    o = f.origin
    path = o.path[len(strip):] if strip and o.path.startswith(strip) else o.path
    where = f"{path}:{o.line}" if o.line else (path or ".")
    return _tail(where, width) if width else where


def _common_dir(paths: list[str]) -> str:
    """The directory all shown paths share (printed once above the tables, not on every row)."""
    import os
    if not paths:
        return ""
    common = os.path.commonpath(paths) if all(p.startswith("/") for p in paths) or \
        not any(p.startswith("/") for p in paths) else ""
    if not common or common in ("/", "."):
        return ""
    if any(p == common for p in paths) and not os.path.isdir(common):
        common = os.path.dirname(common)  # one file: keep its name
    return common.rstrip("/") + "/" if common else ""


def _context(f: Fact) -> str:
    o = f.origin
    bits = [o.host or ""]
    if o.namespace:
        bits.append(o.namespace if len(o.namespace) <= 16 else o.namespace[:15] + "\u2026")
    if o.interface:
        bits.append(f"if={o.interface}")
    return " ".join(b for b in bits if b)


def _details(f: Fact) -> str:
    parts = []
    defaults = type(f).__struct_defaults__
    fields = type(f).__struct_fields__
    first_default = len(fields) - len(defaults)
    for i, name in enumerate(fields):
        if name == "origin":
            continue
        v = getattr(f, name)
        if i >= first_default and v == defaults[i - first_default]:
            continue
        if v is None or v == [] or v == {}:
            continue
        if isinstance(v, dict):
            v = ",".join(f"{k}={x}" for k, x in v.items())
        elif isinstance(v, list):
            v = ",".join(str(x) for x in v)
        elif isinstance(v, float) and name in ("time", "expiry", "heartbeat", "updated_at"):
            from datetime import datetime, timezone
            v = datetime.fromtimestamp(v, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"
        parts.append(f"{name}={v}")
    return " ".join(" ".join(parts).split())  # one line: tracebacks and tabs flattened


def _print_text(found: list[Fact], unparsed: list[Unparsed], summary: Summary, limit: int) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(highlight=False, soft_wrap=False, emoji=False)
    strip = _common_dir(sorted({f.origin.path for f in found} | {u.origin.path for u in unparsed}))
    if strip:
        console.print(Text(f"paths below {strip}", style="dim"))
    groups: dict[str, list[Fact]] = defaultdict(list)
    for f in found:
        groups[type(f).__struct_config__.tag].append(f)  # type: ignore[attr-defined]
    for tag in sorted(groups):
        rows = groups[tag]
        shown = rows if limit <= 0 else rows[:limit]
        table = Table(title=f"{tag} ({len(rows)})", title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False, show_edge=False, expand=True)
        where_width = max(24, console.width // 3)
        table.add_column("where", no_wrap=True, max_width=where_width, style="dim")
        table.add_column("host/ns", overflow="ellipsis", no_wrap=True, max_width=max(12, console.width // 6))
        table.add_column("fact", overflow="ellipsis", no_wrap=True, ratio=1, min_width=20)
        for f in shown:
            table.add_row(Text(_where(f, strip, where_width)), Text(_context(f)), Text(_details(f)))
        console.print(table)
        if len(rows) > len(shown):
            console.print(f"  ... and {len(rows) - len(shown)} more {tag} facts (--limit 0 shows all, -f json lists all)")
    if unparsed:
        console.print()
        table = Table(title=f"not understood ({len(unparsed)})", title_justify="left", box=box.SIMPLE_HEAD,
                      pad_edge=False, show_edge=False, expand=True)
        where_width = max(24, console.width * 2 // 5)
        table.add_column("where", no_wrap=True, max_width=where_width)
        table.add_column("why", overflow="fold", ratio=1)
        for u in unparsed:
            end = f"-{u.end_line}" if u.end_line and u.end_line != u.origin.line else ""
            path = u.origin.path[len(strip):] if strip and u.origin.path.startswith(strip) else u.origin.path
            where = f"{path}:{u.origin.line}{end}" if u.origin.line else (path or ".")
            table.add_row(Text(_tail(where, where_width)), Text(u.reason))
        console.print(table)
    console.print()
    s = summary_dict(summary)
    line = f"{s['files']} files, {s['sections']} sections, {len(found)} facts, {len(unparsed)} not understood"
    if s["skipped"]:
        line += "; skipped: " + ", ".join(f"{v} {k}" for k, v in s["skipped"].items())
    console.print(Text(line))
