"""A run of lines that no record of the format claims, reported as one `Unparsed`: the
shared way parsers say "this stretch was not understood" without dropping it."""

from __future__ import annotations

from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Unparsed


class StrayRun:
    def __init__(self, section: Section, reason: str):
        self.section = section
        self.reason = reason
        self.first: int | None = None
        self.last = 0
        self.text: str | None = None

    def __bool__(self) -> bool:
        return self.first is not None

    def add(self, offset: int, text: str | None = None) -> None:
        if self.first is None:
            self.first, self.text = offset, text
        self.last = offset

    def flush(self) -> Iterator[Unparsed]:
        if self.first is not None:
            yield Unparsed(origin=self.section.origin_at(self.first, self.text),
                           end_line=self.section.origin_at(self.last).line, reason=self.reason)
            self.first, self.text = None, None
