"""Parsers: one module per format, raw input in, typed facts out.

Every module here that defines `parse` is a parser; the registry finds them by name, so
adding a format is adding one module, one fixture pair and one test. A parser module has:

- `NAME`: the format's name (what `Section.format` holds);
- `COMMANDS`: regular expressions matched against a command line (from a shell prompt or
  a sosreport file name turned back into a command) that produces this format;
- `PATHS`: fnmatch patterns matched against a file path (`*/var/log/neutron/*dhcp*`);
- `sniff(head: str) -> bool` (optional): recognises the format from the first few KB;
- `parse(section) -> Iterator[Fact]`: the facts, plus `Unparsed` for what it could not read.
  It never raises on bad input.
- `BINARY = True` for formats read as bytes (pcap).
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import re
from functools import cache
from types import ModuleType


@cache
def registry() -> tuple[ModuleType, ...]:
    mods = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(mod, "parse") and hasattr(mod, "NAME"):
            mod._command_res = [re.compile(c) for c in getattr(mod, "COMMANDS", ())]
            mods.append(mod)
    return tuple(mods)


def by_name(name: str) -> ModuleType | None:
    return next((m for m in registry() if m.NAME == name), None)


def for_command(command: str) -> ModuleType | None:
    for mod in registry():
        if any(r.search(command) for r in mod._command_res):
            return mod
    return None


def for_path(path: str) -> ModuleType | None:
    for mod in registry():
        if any(fnmatch.fnmatch(path, p) for p in getattr(mod, "PATHS", ())):
            return mod
    return None


def sniff(head: str) -> ModuleType | None:
    for mod in registry():
        fn = getattr(mod, "sniff", None)
        if fn is not None and fn(head):
            return mod
    return None
