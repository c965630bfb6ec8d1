"""A section of evidence: raw input of one format with its origin."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator

from whynoip.facts import Origin


@dataclass(slots=True)
class Section:
    """Raw input for one parser.

    Text sections give their lines (without line ends) through `lines()`, which may stream
    a large file; `origin.line` is the number of the first line. Binary sections (pcaps)
    give bytes through `open_binary()`. `format` is the parser name once decided."""

    origin: Origin
    lines: Callable[[], Iterator[str]] | None = None
    open_binary: Callable[[], object] | None = None  # returns a binary file object
    format: str | None = None
    head: str = field(default="", repr=False)  # the first few KB, for sniffing
    # When the evidence was taken (sosreport date, file mtime, now): the reference from
    # which a year missing in syslog-style times is inferred.
    ref_time: float | None = None

    @classmethod
    def from_text(cls, text: str, origin: Origin, format: str | None = None) -> "Section":
        lines = text.splitlines()
        return cls(origin=origin, lines=lambda: iter(lines), format=format, head=text[:8192])

    def origin_at(self, offset: int, text: str | None = None) -> Origin:
        """The origin of the line `offset` lines into this section."""
        o = self.origin
        return Origin(path=o.path, line=o.line + offset, host=o.host, namespace=o.namespace,
                      interface=o.interface, command=o.command,
                      text=None if text is None else text[:300])
