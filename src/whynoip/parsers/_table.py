"""Box tables as the OpenStack command-line clients print them (cliff/prettytable).

    +----------------+--------------------------------------+
    | Field          | Value                                |
    +----------------+--------------------------------------+
    | fixed_ips      | ip_address='203.0.113.11',           |
    |                | subnet_id='67c251d9-2b7a-...'        |

A table is a border, header row(s), a border, data rows and a closing border. A value too
long for its column continues on the next row with the first column empty (show tables,
multi-valued cells like fixed_ips) or, when cliff wraps a whole list row to the terminal
width, with every column continued (`ad88e059-e7fa-` then `4cf7-8857-6731a2a3a554`). The
reader keeps every cell as its lines; `Cell.text` joins them back. It knows nothing of
OpenStack: the openstack_cli parser gives the columns their meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, Iterator

BORDER_RE = re.compile(r"^(?P<indent>.*?)(?P<border>\+(?:[-=]+\+)+)\s*$")
ROW_RE = re.compile(r"^.*?\|.*\|\s*$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)


@dataclass(slots=True)
class Cell:
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """The lines joined again: a piece ending in `-` was cut at the hyphen by the
        wrapper and joins without a space; others join with one."""
        out = ""
        for piece in self.lines:
            if not piece:
                continue
            if out and not out.endswith("-"):
                out += " "
            out += piece
        return out


@dataclass(slots=True)
class Row:
    offset: int  # line offset of the row's first line in the section
    line: str  # that line, for citing
    cells: list[Cell]

    def get(self, i: int) -> str:
        return self.cells[i].text if i < len(self.cells) else ""


@dataclass(slots=True)
class BoxTable:
    offset: int  # line offset of the top border
    end: int  # line offset one past the closing border
    header: list[str]
    rows: list[Row]

    @property
    def is_show(self) -> bool:
        """A Field/Value (or Property/Value) table of one object."""
        return len(self.header) == 2 and self.header[1].lower() == "value" \
            and self.header[0].lower() in ("field", "property")

    def as_fields(self) -> dict[str, tuple[str, Row, Cell]]:
        """For show tables: field name -> (joined value, its row, its cell)."""
        out: dict[str, tuple[str, Row, Cell]] = {}
        for row in self.rows:
            if len(row.cells) < 2:
                continue
            name = row.get(0)
            if name and name not in out:
                out[name] = (row.get(1), row, row.cells[1])
        return out


def _columns(border: str, start: int) -> list[tuple[int, int]]:
    """(from, to) character spans of the columns, from the `+` positions of a border."""
    plus = [start + i for i, c in enumerate(border) if c == "+"]
    return [(a + 1, b) for a, b in zip(plus, plus[1:])]


def _split(line: str, spans: list[tuple[int, int]]) -> list[str] | None:
    """Cells of a row line. By the border's positions when the line has its `|` there
    (values may hold a `|`); by splitting on `|` otherwise (a row pasted with other
    indentation)."""
    if spans and len(line) > spans[-1][1] and all(
            line[a - 1] == "|" for a, _ in spans) and line[spans[-1][1]] == "|":
        return [line[a:b].strip() for a, b in spans]
    body = line.strip()
    if not (body.startswith("|") and body.endswith("|")):
        return None
    parts = [p.strip() for p in body[1:-1].split("|")]
    return parts if len(parts) == len(spans) else None


def _continues(prev: Row, cells: list[str]) -> bool:
    """Is this row line the continuation of `prev` rather than a row of its own?"""
    if not cells[0]:
        return True
    # cliff cut a long first value (an ID) at a hyphen to fit the terminal
    first = prev.cells[0].lines
    return bool(first) and first[-1].endswith("-") and bool(
        UUID_RE.match("".join(first) + cells[0]))


def read_tables(lines: Iterable[str]) -> Iterator[tuple[int, int, BoxTable | str]]:
    """Walk the lines and yield, in order, `(start, end, BoxTable)` for each table and
    `(start, end, "text")` for each stretch of other non-blank lines (offsets are line
    offsets in `lines`, `end` exclusive)."""
    lines = list(lines)
    n = len(lines)
    i = 0
    text_start: int | None = None
    while i < n:
        m = BORDER_RE.match(lines[i])
        table = _table_at(lines, i, m) if m else None
        if table is None:
            if lines[i].strip():
                if text_start is None:
                    text_start = i
            elif text_start is not None:
                yield text_start, i, "text"
                text_start = None
            i += 1
            continue
        if text_start is not None:
            yield text_start, i, "text"
            text_start = None
        yield table.offset, table.end, table
        i = table.end
    if text_start is not None:
        yield text_start, n, "text"


def _table_at(lines: list[str], i: int, m: re.Match) -> BoxTable | None:
    spans = _columns(m["border"], m.start("border"))
    if not spans:
        return None
    n = len(lines)
    j = i + 1
    header_lines: list[list[str]] = []
    while j < n and not BORDER_RE.match(lines[j]):
        cells = _split(lines[j], spans) if ROW_RE.match(lines[j]) else None
        if cells is None:
            return None
        header_lines.append(cells)
        j += 1
    if j >= n or not header_lines:
        return None
    header = [" ".join(h[k] for h in header_lines if h[k]).strip() for k in range(len(spans))]
    j += 1  # the border under the header
    rows: list[Row] = []
    while j < n:
        line = lines[j]
        if BORDER_RE.match(line):
            # a closing border, or a separator between rows (some clients draw them)
            if j + 1 < n and ROW_RE.match(lines[j + 1]) and _split(lines[j + 1], spans) is not None:
                j += 1
                rows.append(None)  # type: ignore[arg-type]  # row boundary marker
                continue
            j += 1
            break
        cells = _split(line, spans) if ROW_RE.match(line) else None
        if cells is None:
            break  # table cut short (a truncated paste): keep what was read
        prev = rows[-1] if rows else None
        if prev is not None and _continues(prev, cells):
            for cell, piece in zip(prev.cells, cells):
                cell.lines.append(piece)
        else:
            rows.append(Row(offset=j, line=line, cells=[Cell([c]) for c in cells]))
        j += 1
    return BoxTable(offset=i, end=j, header=header, rows=[r for r in rows if r is not None])
