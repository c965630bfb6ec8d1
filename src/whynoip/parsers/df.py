"""`df` output -> DiskUsage facts: which filesystem is full.

A full disk is the quiet first link of many chains (RabbitMQ's disk alarm, dnsmasq unable to
write its leases, an image download that filled `/`). This parser reads `df` in the forms
operators and sosreport produce: 1K blocks (`df`, `df -al -x autofs`), other block sizes
(`df -P`, `df -B1M`, `df -k`), human sizes (`df -h`, powers of 1024; `df -H`/`--si`, powers
of 1000, known from the command), `df -T` (a Type column) and inodes (`df -i`, which only
fills `inodes_use_percent`). Sizes are converted to KiB. A filesystem name too long for its
column is printed alone with the numbers on the next line (older coreutils); the two lines
are joined. `df: ...: Permission denied` lines and anything else that is not a row become
Unparsed facts.

Real sample (real-samples sos_commands/filesys/df_-al_-x_autofs, hotsos, Apache-2.0):

    Filesystem     1K-blocks     Used Available Use% Mounted on
    sysfs                  0        0         0    - /sys
    /dev/vda2      308585260 25514372 267326276   9% /

gives `DiskUsage(filesystem="/dev/vda2", mount="/", size_kb=308585260, used_kb=25514372,
avail_kb=267326276, use_percent=9)` (and one for sysfs with `use_percent=None`).
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import DiskUsage, Fact, Unparsed

NAME = "df"
COMMANDS = (r"^df(?:\s|$)",)
PATHS = ("*/sos_commands/filesys/df_*", "*/sos_commands/filesys/df", "*/df")

_HEADER_RE = re.compile(r"^\s*Filesystem\s+")
_SNIFF_RE = re.compile(r"^Filesystem\s+(?:Type\s+)?(?:\S*blocks|Size|Inodes)\s+(?:Used|IUsed)\s",
                       re.M)
_BLOCKS_RE = re.compile(r"^(?P<n>\d+)(?P<unit>[KMGTPE]?)(?:i?B)?-blocks$")
_HUMAN_RE = re.compile(r"^(?P<n>\d+(?:[.,]\d+)?)(?P<unit>[KMGTPEZY]?)$")
_UNITS = "KMGTPEZY"


def sniff(head: str) -> bool:
    return _SNIFF_RE.search(head) is not None


def _si(command: str | None) -> bool:
    return bool(command and re.search(r"(?:^|\s)(?:-\w*H\w*|--si)(?:\s|$)", command))


class _Layout:
    """What the header says about the columns."""

    def __init__(self, header: list[str], si: bool):
        h = header[1:]
        self.has_type = bool(h) and h[0] == "Type"
        if self.has_type:
            h = h[1:]
        self.inodes = bool(h) and h[0] == "Inodes"
        self.human = bool(h) and h[0] == "Size"
        self.base = 1000 if si else 1024
        self.block_kb = 1.0
        if h and not self.inodes and not self.human:
            m = _BLOCKS_RE.match(h[0])
            if m:  # "1K-blocks", "1024-blocks", "512-blocks", "1M-blocks"
                unit = m["unit"]
                factor = int(m["n"]) * (1024 ** (_UNITS.index(unit) + 1) if unit else 1)
                self.block_kb = factor / 1024
        # data columns before "Mounted on": size, used, avail, use%
        self.ncols = 4

    def kb(self, token: str) -> int | None:
        if token == "-":
            return None
        if self.human:
            m = _HUMAN_RE.match(token)
            if not m:
                raise ValueError(token)
            n = float(m["n"].replace(",", "."))
            unit = m["unit"]
            size_bytes = n * (self.base ** (_UNITS.index(unit) + 1) if unit else 1)
            return round(size_bytes / 1024)
        return round(int(token) * self.block_kb)


def _percent(token: str) -> int | None:
    if token == "-":
        return None
    if not token.endswith("%"):
        raise ValueError(token)
    return int(token[:-1])


def parse(section: Section) -> Iterator[Fact]:
    layout: _Layout | None = None
    si = _si(section.origin.command)
    pending: tuple[int, str] | None = None  # a filesystem name alone on its line
    lines = section.lines() if section.lines else iter(())
    offset = -1
    try:
        for offset, line in enumerate(lines):
            if not line.strip():
                continue
            if _HEADER_RE.match(line):
                layout = _Layout(line.split(), si)
                pending = None
                continue
            if line.startswith("df: "):
                yield Unparsed(origin=section.origin_at(offset, text=line),
                               reason=f"df reported an error: {line[4:]}")
                continue
            if layout is None:
                yield Unparsed(origin=section.origin_at(offset, text=line),
                               reason="df row before any df header")
                continue
            tokens = line.split()
            first_offset = offset
            if pending is not None and line[:1].isspace():
                first_offset, name = pending
                tokens = [name] + tokens
                pending = None
            elif pending is not None:
                p_off, p_name = pending
                pending = None
                yield Unparsed(origin=section.origin_at(p_off, text=p_name),
                               reason="a filesystem name without its numbers")
            need = 1 + (1 if layout.has_type else 0) + layout.ncols + 1
            if len(tokens) == 1 and not line[:1].isspace():
                pending = (offset, tokens[0])  # wrapped: the numbers follow
                continue
            if len(tokens) < need:
                yield Unparsed(origin=section.origin_at(offset, text=line),
                               reason=f"a df row needs {need} columns, this one has {len(tokens)}")
                continue
            fs = tokens[0]
            fstype = tokens[1] if layout.has_type else None
            cols = tokens[2:] if layout.has_type else tokens[1:]
            mount = " ".join(cols[4:])
            try:
                if layout.inodes:
                    fact = DiskUsage(origin=section.origin_at(first_offset, text=line),
                                     filesystem=fs, mount=mount, fstype=fstype,
                                     inodes_use_percent=_percent(cols[3]))
                else:
                    fact = DiskUsage(origin=section.origin_at(first_offset, text=line),
                                     filesystem=fs, mount=mount, fstype=fstype, size_kb=layout.kb(cols[0]),
                                     used_kb=layout.kb(cols[1]), avail_kb=layout.kb(cols[2]),
                                     use_percent=_percent(cols[3]))
            except (ValueError, IndexError) as e:
                yield Unparsed(origin=section.origin_at(offset, text=line),
                               reason=f"not a df value: {e}")
                continue
            yield fact
    except Exception as e:  # a broken stream: say where it broke
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading df output failed: {type(e).__name__}: {e}")
    if pending is not None:
        yield Unparsed(origin=section.origin_at(pending[0], text=pending[1]),
                       reason="a filesystem name without its numbers")
