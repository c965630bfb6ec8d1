"""Process listings (`ps -ef`, `ps aux[www][m]`, `ps alxwww`, `ps -eo ...`) -> Process facts,
and for every dnsmasq also a DnsmasqProcess.

Whether a network's DHCP server runs at all, whether it is stopped (STAT `T`) or a zombie,
which files it reads and whether it logs DHCP are all in the process list; sosreport keeps
it as `sos_commands/process/ps_alxwww` and `ps_auxwwwm`. Every listing has a header line
naming its columns; the command is the last column and the only one with spaces, so a row
is split into one field per header column before it. In `ps m` listings a process row
(STAT `-`) is followed by one row per thread (PID `-`): the process takes its main
thread's state. Rows that lost their header to a `grep` are read by their shape, as
`ps -ef` or `ps aux` rows. Two dnsmasq per network are normal (with a `--dhcp-script`, dnsmasq forks
a helper that keeps the same command line); both are reported, the ppid links them. A
dnsmasq with no Neutron path (LXD's `--interface=lxdbr0` on the real sample node) is a
DnsmasqProcess without a network id.

Real sample (the capture script, `ps -ef`, Grizzly flags; the second row is the helper):

    UID        PID  PPID  C STIME TTY          TIME CMD
    nobody    8148     1  0 06:22 ?        00:00:00 dnsmasq --no-hosts --no-resolv --strict-order --bind-interfaces --interface=tap3f8e2a61-c4 ...
    root      8149  8148  0 06:22 ?        00:00:00 dnsmasq --no-hosts --no-resolv --strict-order --bind-interfaces --interface=tap3f8e2a61-c4 ...
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import DnsmasqProcess, Fact, Process, Unparsed
from whynoip.parsers._dnsmasq_cmdline import parse_cmdline

NAME = "ps"
COMMANDS = (r"^(?:\S*/)?ps(?:\s|$)",)
PATHS = ("*/sos_commands/process/ps_*",)

COMMAND_COLUMNS = {"COMMAND", "CMD", "ARGS", "COMM", "UCMD"}
USER_COLUMNS = ("USER", "UID", "EUSER", "RUSER", "UNAME", "RUID", "EUID")
STATE_COLUMNS = ("STAT", "S", "STATE")
HEADER_RE = re.compile(r"^\s*(?:[A-Z%]+\s+)*PID\s+(?:[A-Z%]+\s+)*(?:COMMAND|CMD|ARGS|COMM)\s*$")


# Rows whose header went away (`ps -ef | grep dnsmasq`, `ps aux | grep [d]nsmasq`, the
# most pasted form of all): the two listings told apart by their shape.
HEADERLESS = (
    # UID PID PPID C STIME TTY TIME CMD
    (re.compile(r"^\S+\s+\d+\s+\d+\s+\d+\s+\S+\s+\S+\s+(?:\d+-)?\d+:\d\d(?::\d\d)?\s+\S"),
     "UID PID PPID C STIME TTY TIME CMD".split()),
    # USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND
    (re.compile(r"^\S+\s+\d+\s+\d+(?:\.\d+)?\s+\d+(?:\.\d+)?\s+\d+\s+\d+\s+\S+\s+\S+\s+\S+\s+"
                r"\d+:\d\d(?::\d\d)?\s+\S"),
     "USER PID %CPU %MEM VSZ RSS TTY STAT START TIME COMMAND".split()),
)


def headerless_columns(line: str) -> list[str] | None:
    """The columns of a `ps -ef` or `ps aux` row seen without its header, by its shape."""
    for row_re, columns in HEADERLESS:
        if row_re.match(line):
            return columns
    return None


def sniff(head: str) -> bool:
    first = head.lstrip("\n").split("\n", 1)[0]
    return bool(HEADER_RE.match(first)) or headerless_columns(first) is not None


def process_name(command: str) -> str:
    """basename of argv[0]; kernel threads keep their bracketed name without brackets."""
    command = command.strip()
    if command.startswith("[") and command.endswith("]"):
        return command[1:-1]
    argv0 = command.split(None, 1)[0] if command else ""
    return argv0.rstrip(":").rsplit("/", 1)[-1]


def _int(value: str | None) -> int | None:
    return int(value) if value is not None and value.isdigit() else None


def parse(section: Section) -> Iterator[Fact]:
    columns: list[str] | None = None
    pending: tuple | None = None  # a `ps m` process row waiting for its first thread's state

    def emit(row: dict, command: str, offset: int, line: str, state: str | None) -> Iterator[Fact]:
        pid = _int(row.get("PID"))
        user = next((row[c] for c in USER_COLUMNS if c in row), None)
        ppid = _int(row.get("PPID"))
        origin = section.origin_at(offset, text=line)
        name = process_name(command)
        yield Process(origin=origin, pid=pid, ppid=ppid, user=user, state=state,
                      command=command, name=name)
        if name == "dnsmasq":
            fields = parse_cmdline(command.split())
            yield DnsmasqProcess(origin=origin, pid=pid, ppid=ppid, user=user, state=state, **fields)

    for offset, line in enumerate(section.lines()):
        if not line.strip():
            continue
        if columns is None or HEADER_RE.match(line):
            if HEADER_RE.match(line):
                columns = line.split()
                continue
            columns = headerless_columns(line)
        if columns is None:
            yield Unparsed(origin=section.origin_at(offset, text=line),
                           reason="ps row before any header line")
            continue
        parts = line.split(None, len(columns) - 1)
        if len(parts) < len(columns) - 1:
            yield Unparsed(origin=section.origin_at(offset, text=line),
                           reason=f"ps row has {len(parts)} fields, the header {len(columns)}")
            continue
        row = dict(zip(columns, parts))
        command = parts[len(columns) - 1] if len(parts) == len(columns) else ""
        if columns[-1] not in COMMAND_COLUMNS:
            command = ""
        state = next((row[c] for c in STATE_COLUMNS if c in row), None)
        if row.get("PID") == "-":  # a thread row of `ps m`: the state of its process
            if pending is not None:
                prow, pcommand, poffset, pline = pending
                pending = None
                yield from emit(prow, pcommand, poffset, pline, state)
            continue
        if pending is not None:
            prow, pcommand, poffset, pline = pending
            pending = None
            yield from emit(prow, pcommand, poffset, pline, None)
        if _int(row.get("PID")) is None:
            yield Unparsed(origin=section.origin_at(offset, text=line), reason="ps row without a PID")
            continue
        if state == "-":
            pending = (row, command, offset, line)
            continue
        yield from emit(row, command, offset, line, state)
    if pending is not None:
        prow, pcommand, poffset, pline = pending
        yield from emit(prow, pcommand, poffset, pline, None)
