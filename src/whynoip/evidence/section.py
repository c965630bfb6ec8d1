"""A section of evidence: raw input of one format with its origin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Sequence

from whynoip.facts import Origin


@dataclass(slots=True)
class Section:
    """Raw input for one parser.

    Text sections give their lines (without line ends) through `lines()`, which may stream
    a large file; `origin.line` is the number of the first line. Binary sections (pcaps)
    give bytes through `open_binary()`. `format` is the parser name once decided.

    A section read from a stream (a tarball member, stdin) can be read once, and only
    until the next section is asked for: parse it before moving on."""

    origin: Origin
    lines: Callable[[], Iterator[str]] | None = None
    open_binary: Callable[[], object] | None = None  # returns a binary file object
    format: str | None = None
    head: str = field(default="", repr=False)  # the first few KB, for sniffing
    # When the evidence was taken (sosreport date, file mtime, now): the reference from
    # which a year missing in syslog-style times is inferred.
    ref_time: float | None = None
    # Line numbers of the lines, when they are not consecutive from origin.line (a pasted
    # transcript whose prose was left out, or whose wrapped lines were joined again).
    line_map: Sequence[int] | None = field(default=None, repr=False)
    # Later stages of the command's pipeline (`ps -ef | grep dnsmasq` -> ["grep dnsmasq"]):
    # the output was filtered, so a missing header or a missing line proves nothing.
    filters: tuple[str, ...] = ()

    @classmethod
    def from_text(cls, text: str, origin: Origin, format: str | None = None) -> "Section":
        lines = text.splitlines()
        return cls(origin=origin, lines=lambda: iter(lines), format=format, head=text[:8192])

    @classmethod
    def from_lines(cls, lines: Sequence[str], origin: Origin, line_map: Sequence[int] | None = None,
                   format: str | None = None, ref_time: float | None = None) -> "Section":
        """A section over lines already in memory; `line_map[i]` is the line number of
        `lines[i]` (defaults to consecutive numbers from `origin.line`)."""
        head = "\n".join(lines[:200])[:8192]
        return cls(origin=origin, lines=lambda: iter(lines), format=format, head=head,
                   ref_time=ref_time, line_map=line_map)

    def origin_at(self, offset: int, text: str | None = None) -> Origin:
        """The origin of the line `offset` lines into this section."""
        o = self.origin
        line = o.line + offset
        m = self.line_map
        if m is not None and m:
            line = m[offset] if 0 <= offset < len(m) else m[-1] + (offset - len(m) + 1)
        return Origin(path=o.path, line=line, host=o.host, namespace=o.namespace,
                      interface=o.interface, command=o.command,
                      text=None if text is None else text[:300])
