"""Reading evidence into facts: open every input, cut it into sections, hand each section
to the parser that reads its format, and say what could not be read.

The parser for a section is chosen in this order: the command that produced it (a shell
prompt, a sosreport file name) through `parsers.for_command`; the file's path through
`parsers.for_path`; the content through `parsers.sniff`. Text no parser claims is tried as
a pasted transcript (shell prompts, or blocks recognised one by one). What still has no
parser becomes an `Unparsed` fact with its place and the reason, except the files of a
sosreport known to hold nothing for DHCP, and empty or binary files met inside a directory
or an archive: those are counted in the `Summary`.

`read()` is a generator that streams: a file is read line by line while its parser runs,
so memory stays flat whatever the size of the input. When the inputs hold several large
files (a node's logs and captures) and the machine several cores, those files are read by
worker processes at the same time, each file whole by one worker, and their facts handed
back in reading order: the facts are the same, in the same order, as read one by one.
"""

from __future__ import annotations

import functools
import gc
import itertools
import os
import shutil
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from types import ModuleType
from typing import BinaryIO, Callable, Iterable, Iterator

import msgspec

from whynoip import facts as F
from whynoip import parsers
from whynoip.errors import EvidenceError
from whynoip.evidence import command as cmdline
from whynoip.evidence import open as evopen
from whynoip.evidence import sosreport, transcript
from whynoip.evidence.section import Section
from whynoip.evidence.stream import (HEAD_BYTES, MAX_LINE, STREAM_ERRORS, Prefixed, ReadNotes, binary_reader,
                                     decompressed_head, decompressing, describe_error, kind_of,
                                     text_lines)
from whynoip.facts import Fact, HostInfo, Origin, Unparsed

TRANSCRIPT_MAX = 64 << 20  # text no parser claims is read whole, as a transcript, up to this size
MAX_DEPTH = 4  # archives inside archives
NO_PARSER = "no parser recognised this section"
COMPRESSED = {"gzip": (".gz", ".tgz"), "xz": (".xz", ".txz"), "bz2": (".bz2", ".tbz2")}
# Reading in worker processes pays when there is enough to share: files of at least
# PARALLEL_FILE bytes, PARALLEL_TOTAL bytes of them in all, and at least two of them.
PARALLEL_FILE = 4 << 20
PARALLEL_TOTAL = 24 << 20
FACT_BATCH = 5_000  # facts per message from a worker, at most
BATCH_BYTES = 4 << 20  # the size a message from a worker is kept near
AHEAD_BYTES = 16 << 20  # facts kept in memory for files later in reading order, at most
SPILL_BYTES = 1 << 30  # and in a temporary file, about


@dataclass(slots=True)
class Summary:
    """What one reading went through."""

    files: int = 0
    sections: int = 0
    skipped: Counter = field(default_factory=Counter)
    facts_by_type: Counter = field(default_factory=Counter)
    parsers_used: Counter = field(default_factory=Counter)


def check_paths(paths: Iterable[str]) -> None:
    """Fail early, in one line, on a path that does not exist or cannot be read."""
    for p in paths:
        if p == "-":
            continue
        if not os.path.lexists(p):
            raise EvidenceError("no such file or directory", path=p)
        if not os.access(p, os.R_OK):
            raise EvidenceError("permission denied", path=p)


def read(paths: Iterable[str], stdin: BinaryIO | None = None, summary: Summary | None = None,
         jobs: int | None = None) -> Iterator[Fact]:
    """Every fact the inputs hold, `Unparsed` included, in reading order. `jobs`: how many
    worker processes may read large files at the same time (None: one per core; 1: none)."""
    paths = list(paths)
    check_paths(paths)
    summary = summary if summary is not None else Summary()
    reader = _Reader(summary)
    events: Iterable[evopen.Event] = evopen.inputs(paths, stdin)
    workers = _Workers.start(events, jobs)
    if workers is not None:
        events, reader.workers = workers.events, workers
    try:
        for fact in reader.events(events):
            summary.facts_by_type[type(fact).__struct_config__.tag] += 1
            yield fact
    finally:
        if workers is not None:
            workers.stop()


# --- reading large files in worker processes ----------------------------------------------------

def _farmable(ev: evopen.Event) -> bool:
    """A plain file of its own (not stdin, not an archive member), large enough."""
    return (isinstance(ev, evopen.Item) and not ev.once and (ev.size or 0) >= PARALLEL_FILE
            and isinstance(ev.opener, functools.partial) and ev.opener.func is open)


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


@dataclass(slots=True, frozen=True)
class _Spilled:
    """A batch of facts kept in the temporary file: where."""

    offset: int
    size: int


class _Workers:
    """Worker processes reading the large files of one `read()`. Each takes the largest
    file no worker has taken (so that they end together) and sends its facts back in
    batches while it reads; the reading here takes them in reading order. What arrives for
    a later file is kept until its turn: in memory up to AHEAD_BYTES, then in a temporary
    file up to about SPILL_BYTES; beyond that, the worker of the file being read is the only
    one listened to and the others wait (their own backlog is a few batches). So memory
    stays flat whatever the size of the input. A worker that dies leaves its files to be
    read here."""

    def __init__(self, events: list, items: list | None = None, procs: list | None = None,
                 conns: list | None = None):
        self.events = events
        self.items = items or []
        self.procs = procs or []
        self.conns = conns or []  # from each worker still sending
        self.task_of = {id(item): i for i, item in enumerate(self.items)}
        self.inbox: dict[int, list] = {i: [] for i in range(len(self.items))}
        self.sender: dict[int, object] = {}  # file -> the connection of the worker reading it
        self.ahead = 0  # bytes kept in memory for files after the one being read
        self.spill: BinaryIO | None = None  # where more of them wait
        self.spilled = 0
        self.current = -1
        self.ended: set = set()
        self.broken = False

    @classmethod
    def start(cls, events: Iterable[evopen.Event], jobs: int | None) -> "_Workers | None":
        jobs = _cores() if jobs is None else jobs
        # workers are forked: only from a process with no other thread (a lock held by
        # another thread at the fork would stay held in the worker)
        if jobs < 2 or threading.active_count() > 1 or not hasattr(os, "fork"):
            return None
        events = list(events)  # the layout only (names, sizes): no file is opened yet
        big = [ev for ev in events if _farmable(ev)]
        if len(big) < 2 or sum(ev.size for ev in big) < PARALLEL_TOTAL:
            return cls(events)
        import multiprocessing
        parsers.registry()  # every parser imported before the fork, not in each worker
        ctx = multiprocessing.get_context("fork")
        procs, conns = [], []
        try:
            order = sorted(range(len(big)), key=lambda i: -big[i].size)
            taken = ctx.Value("i", 0)
            for _ in range(min(jobs, len(big))):
                receiving, sending = ctx.Pipe(duplex=False)
                proc = ctx.Process(target=_worker, args=(big, order, taken, sending), daemon=True)
                proc.start()
                sending.close()  # the worker's alone: its end of file says it ended
                procs.append(proc)
                conns.append(receiving)
        except (OSError, ValueError, RuntimeError):
            for proc in procs:
                proc.terminate()
            return cls(events)
        return cls(events, big, procs, conns)

    def facts(self, reader: "_Reader", item: evopen.Item) -> Iterator[Fact] | None:
        """The facts of `item` if a worker reads it, else None."""
        i = self.task_of.get(id(item))
        if i is None:
            return None
        return self._facts(reader, item, i)

    def _facts(self, reader: "_Reader", item: evopen.Item, i: int) -> Iterator[Fact]:
        self.current = i
        self.ahead -= sum(len(m) for m in self.inbox[i] if isinstance(m, bytes))
        self.spilled -= sum(m.size for m in self.inbox[i] if isinstance(m, _Spilled))
        given = 0
        inbox = self.inbox[i]
        while True:
            while not inbox and not self.broken:
                self._receive()
            if not inbox:  # a worker died: read the file here, after what was already given
                yield from itertools.islice(reader.item(item), given, None)
                return
            msg = inbox.pop(0)
            if isinstance(msg, _Spilled):
                assert self.spill is not None
                self.spill.seek(msg.offset)
                msg = self.spill.read(msg.size)
            if isinstance(msg, bytes):
                facts = _decoded(msg)
                given += len(facts)
                yield from facts
                continue
            sections, skipped, parsers_used = msg
            reader.summary.sections += sections
            reader.summary.skipped.update(skipped)
            reader.summary.parsers_used.update(parsers_used)
            return

    def _receive(self) -> None:
        from multiprocessing.connection import wait
        if not self.conns:
            self.broken = True  # every worker has ended: what is missing will not come
            return
        listen = self.conns
        mine = self.sender.get(self.current)
        if self.spilled >= SPILL_BYTES and mine in self.conns:
            listen = [mine]  # enough kept for later files: let their workers wait
        for conn in wait(listen):
            try:
                i, msg = conn.recv()
            except (EOFError, OSError):
                self.conns.remove(conn)
                if conn not in self.ended:
                    self.broken = True  # it died before its last word
                continue
            if i < 0:
                self.ended.add(conn)
            elif msg is None:
                self.sender[i] = conn  # it starts on file i
            elif i == self.current or not isinstance(msg, bytes):
                self.inbox[i].append(msg)
            elif self.ahead + len(msg) <= AHEAD_BYTES:
                self.inbox[i].append(msg)
                self.ahead += len(msg)
            else:
                if self.spill is None:
                    self.spill = tempfile.TemporaryFile(prefix="whynoip-facts-")
                self.spill.seek(0, os.SEEK_END)
                self.inbox[i].append(_Spilled(self.spill.tell(), len(msg)))
                self.spill.write(msg)
                self.spilled += len(msg)

    def stop(self) -> None:
        for proc in self.procs:
            if proc.is_alive() and proc.exitcode is None:
                proc.terminate()  # the reading was given up: its files are no longer wanted
        for proc in self.procs:
            proc.join(5)
        for conn in self.conns:
            conn.close()
        if self.spill is not None:
            self.spill.close()


def _worker(items: list, order: list[int], taken, conn) -> None:
    """A worker: take the next file no worker has taken, read it, send its facts in
    msgpack-encoded batches, then what the reading counted; until none is left. Messages
    are (file, None) when it starts a file, (file, batch), (file, counts), (-1, None) last."""
    import queue
    # it keeps nothing: the cyclic collector would only walk the facts about to leave
    gc.disable()
    outbox: queue.Queue = queue.Queue(maxsize=2)  # reading waits when two batches wait to leave

    def send() -> None:  # sending waits for the reader here; reading goes on meanwhile
        while (msg := outbox.get()) is not None:
            conn.send(msg)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    encode = msgspec.msgpack.Encoder().encode
    limit = FACT_BATCH
    while True:
        with taken.get_lock():
            k = taken.value
            taken.value = k + 1
        if k >= len(order):
            break
        i = order[k]
        outbox.put((i, None))
        summary = Summary()
        batch: list[Fact] = []
        for fact in _Reader(summary).item(items[i]):
            batch.append(fact)
            if len(batch) >= limit:
                data = encode(batch)
                outbox.put((i, data))
                batch = []
                # facts with long texts (tracebacks) make large batches: fewer per batch then
                limit = max(64, min(FACT_BATCH, limit * BATCH_BYTES // max(len(data), 1)))
        if batch:
            outbox.put((i, encode(batch)))
        outbox.put((i, (summary.sections, dict(summary.skipped), dict(summary.parsers_used))))
    outbox.put((-1, None))  # the last word
    outbox.put(None)
    sender.join()
    conn.close()


_DECODER = msgspec.msgpack.Decoder(list[F.AnyFact])


def _decoded(data: bytes) -> list[Fact]:
    # decoding makes many objects at once: the cyclic collector, run every few hundred of
    # them, would walk all the facts already held again and again (facts hold no cycles)
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _DECODER.decode(data)
    finally:
        if enabled:
            gc.enable()


# --- choosing a parser ------------------------------------------------------------------------

def _guarded(fn: Callable, arg: str) -> ModuleType | None:
    try:
        return fn(arg)
    except Exception:  # a parser's regex or sniff broke: fall back to trying each one
        return None


def _fits(mod: ModuleType | None, binary: bool) -> bool:
    return mod is not None and bool(getattr(mod, "BINARY", False)) == binary


def _each(test: Callable[[ModuleType], bool], binary: bool) -> ModuleType | None:
    for mod in parsers.registry():
        if bool(getattr(mod, "BINARY", False)) != binary:
            continue
        try:
            if test(mod):
                return mod
        except Exception:
            continue
    return None


def by_command(command: str, binary: bool = False) -> ModuleType | None:
    mod = _guarded(parsers.for_command, command)
    if _fits(mod, binary):
        return mod
    return _each(lambda m: any(r.search(command) for r in getattr(m, "_command_res", ())), binary)


def by_path(path: str, binary: bool = False) -> ModuleType | None:
    import fnmatch
    mod = _guarded(parsers.for_path, path)
    if _fits(mod, binary):
        return mod
    return _each(lambda m: any(fnmatch.fnmatch(path, p) for p in getattr(m, "PATHS", ())), binary)


def by_content(head: str) -> ModuleType | None:
    mod = _guarded(parsers.sniff, head)
    if _fits(mod, False):
        return mod
    return _each(lambda m: bool(getattr(m, "sniff", None) and m.sniff(head)), False)


_SUFFIXES = ((".tgz", ".tar"), (".txz", ".tar"), (".tbz2", ".tar"), (".gz", ""), (".xz", ""), (".bz2", ""))


def _strip_compression(path: str) -> str:
    for suffix, instead in _SUFFIXES:
        if path.endswith(suffix) and len(path) > len(suffix):
            return path[: -len(suffix)] + instead
    return path


def choose(cmd: cmdline.CommandLine | None, paths: list[str], head: str, content: bool = True) -> ModuleType | None:
    """The parser for a text section: by command, then by path, then (unless `content` is
    False) by content."""
    if cmd is not None and cmd.core and not cmd.reader:
        mod = by_command(cmd.core)
        if mod is None and cmd.text != cmd.core:
            mod = by_command(cmd.text)
        if mod is not None:
            return mod
    tried = set()
    for p in list(paths) + (cmd.files if cmd is not None and cmd.reader else []):
        for candidate in (p, _strip_compression(p)):
            if candidate and candidate not in tried:
                tried.add(candidate)
                mod = by_path(candidate)
                if mod is not None:
                    return mod
    if content and head.strip():
        return by_content(head)
    return None


def _known_command(text: str) -> bool:
    cmd = cmdline.parse(text)
    return bool(cmd.core) and not cmd.reader and by_command(cmd.core) is not None


def _binary_parser(path: str) -> ModuleType | None:
    mod = by_path(path, binary=True) or by_path(_strip_compression(path), binary=True)
    if mod is not None:
        return mod
    return next((m for m in parsers.registry() if getattr(m, "BINARY", False)), None)


# --- reading ----------------------------------------------------------------------------------

class _Once:
    """The opener of a stream that can be read once: the first call gives the stream with
    its head put back, later calls give nothing (and say so)."""

    def __init__(self, head: bytes, rest: BinaryIO | None, notes: ReadNotes):
        self._stream: BinaryIO | None = Prefixed(head, rest)  # type: ignore[assignment]
        self._notes = notes

    def __call__(self) -> BinaryIO:
        import io
        s, self._stream = self._stream, None
        if s is None:
            self._notes.reopened = True
            return io.BytesIO(b"")
        return s


def _capture_command(path: str) -> str | None:
    """A capture named after the command that took it, sosreport style
    (`ip_netns_exec_qdhcp-X_tcpdump_-i_ns-1234.pcap`): where it was taken."""
    stem = os.path.basename(path)
    for ext in (".pcapng", ".pcap", ".cap"):
        if stem.endswith(ext):
            stem = stem[: -len(ext)]
    if stem.startswith(("tcpdump_", "ip_netns_exec_")) and "tcpdump" in stem:
        return cmdline.command_from_filename(stem)
    return None


def _origin(item: evopen.Item, line: int = 1, cmd: cmdline.CommandLine | None = None, **kw) -> Origin:
    return Origin(path=kw.get("path", item.path), line=line, host=kw.get("host", item.host),
                  namespace=kw.get("namespace", cmd.namespace if cmd else None),
                  interface=kw.get("interface", cmd.interface if cmd else None),
                  command=kw.get("command", cmd.text if cmd else None))


class _Reader:
    def __init__(self, summary: Summary):
        self.summary = summary
        self.workers: _Workers | None = None  # reading the large files in other processes

    # events from opening ----------------------------------------------------------------
    def events(self, events: Iterable[evopen.Event]) -> Iterator[Fact]:
        for ev in events:
            if isinstance(ev, evopen.Item):
                self.summary.files += 1
                farmed = self.workers.facts(self, ev) if self.workers is not None else None
                yield from farmed if farmed is not None else self.item(ev)
            elif isinstance(ev, evopen.Tree):
                yield HostInfo(origin=Origin(path=ev.path, host=ev.host), hostname=ev.host, time=ev.time)
            elif isinstance(ev, evopen.Skip):
                self.summary.skipped[ev.kind] += 1
            elif isinstance(ev, evopen.Problem):
                self.summary.sections += 1
                yield Unparsed(origin=Origin(path=ev.path, line=ev.line), reason=ev.reason)

    def skip_or_note(self, item: evopen.Item, kind: str, reason: str) -> Iterator[Fact]:
        """Named on the command line: a note. Met inside a tree, directory or archive: counted."""
        if item.explicit:
            self.summary.sections += 1
            yield Unparsed(origin=_origin(item, line=0), reason=reason)
        else:
            self.summary.skipped[kind] += 1

    # one file ------------------------------------------------------------------------------
    def item(self, item: evopen.Item) -> Iterator[Fact]:
        try:
            f = item.opener()
            head = f.read(HEAD_BYTES)
        except STREAM_ERRORS as e:
            self.summary.sections += 1
            yield Unparsed(origin=_origin(item, line=0), reason=describe_error(e))
            return
        kind = kind_of(head)
        if kind == "empty":
            _close(f)
            yield from self.skip_or_note(item, "empty files", "empty file")
            return
        if kind in COMPRESSED:
            inner = decompressed_head(kind, head)
            if kind_of(inner) == "tar":
                yield from self.archive(item, head, f)
                return
            yield from self.decompressed(item, kind, head, f)
            return
        if kind == "tar":
            yield from self.archive(item, head, f)
            return
        if kind in ("zstd", "zip"):
            _close(f)
            self.summary.sections += 1
            yield Unparsed(origin=_origin(item, line=0),
                           reason=f"{kind} archive/compression is not read: unpack it and give the files")
            return
        if kind in ("pcap", "pcapng"):
            yield from self.capture(item, head, f)
            return
        if kind == "binary":
            _close(f)
            yield from self.skip_or_note(item, "binary files", "binary data, not text: not read")
            return
        yield from self.text(item, head, f, "utf-16" if kind == "utf-16" else "utf-8")

    def _reopener(self, item: evopen.Item, head: bytes, f: BinaryIO, notes: ReadNotes) -> Callable[[], BinaryIO]:
        if item.once:
            return _Once(head, f, notes)
        _close(f)
        return item.opener

    def decompressed(self, item: evopen.Item, kind: str, head: bytes, f: BinaryIO) -> Iterator[Fact]:
        """A single compressed file (`neutron-dhcp-agent.log.2.gz`): read through its
        decompressor, chosen by the name without the suffix."""
        if item.once:
            stream = Prefixed(head, f)
            opener: Callable[[], BinaryIO] = lambda: decompressing(kind, stream)  # noqa: E731
        else:
            _close(f)
            opener = lambda: decompressing(kind, item.opener())  # noqa: E731
        inner = evopen.Item(path=item.path, match_path=_strip_compression(item.match_path), opener=opener,
                            once=item.once, size=None, mtime=item.mtime, host=item.host,
                            ref_time=item.ref_time, command=item.command,
                            tree_rel=_strip_compression(item.tree_rel) if item.tree_rel else None,
                            explicit=item.explicit, depth=item.depth + 1)
        if inner.depth > MAX_DEPTH + 2:
            self.summary.sections += 1
            yield Unparsed(origin=_origin(item, line=0), reason="compressed too many times over: not read")
            return
        yield from self.item(inner)

    def archive(self, item: evopen.Item, head: bytes, f: BinaryIO) -> Iterator[Fact]:
        if item.depth >= MAX_DEPTH:
            _close(f)
            self.summary.sections += 1
            yield Unparsed(origin=_origin(item, line=0), reason="archives nested too deep: not opened")
            return
        if item.once:
            # one pass to learn the layout, one to read: keep the bytes in a temporary file
            tmp = tempfile.TemporaryFile(prefix="whynoip-")
            try:
                shutil.copyfileobj(Prefixed(head, f), tmp, 1 << 20)  # type: ignore[misc]
            except STREAM_ERRORS:
                pass  # what was copied is read; tarfile reports the break
            try:
                yield from self.events(evopen.walk_tar(item, lambda: evopen._Shared(tmp)))  # type: ignore[arg-type]
            finally:
                tmp.close()
            return
        _close(f)
        yield from self.events(evopen.walk_tar(item, item.opener))

    def capture(self, item: evopen.Item, head: bytes, f: BinaryIO) -> Iterator[Fact]:
        notes = ReadNotes()
        opener = self._reopener(item, head, f, notes)
        self.summary.sections += 1
        mod = _binary_parser(item.match_path)
        command = item.command or _capture_command(item.path)
        origin = _origin(item, cmd=cmdline.parse(command) if command else None)
        if mod is None:
            yield Unparsed(origin=origin, reason="packet capture, but no pcap parser is available")
            return
        section = Section(origin=origin, open_binary=lambda: binary_reader(opener, notes),
                          ref_time=item.ref_time or item.mtime)
        yield from self.run(mod, section, notes)

    def text(self, item: evopen.Item, head: bytes, f: BinaryIO, encoding: str) -> Iterator[Fact]:
        notes = ReadNotes()
        opener = self._reopener(item, head, f, notes)
        head_text = head.decode(encoding, "replace")
        if len(head) == HEAD_BYTES and "\n" in head_text:
            head_text = head_text[: head_text.rindex("\n")]
        cmd = cmdline.parse(item.command) if item.command else None
        ref_time = item.ref_time if item.ref_time is not None else item.mtime
        paths = [item.match_path] if item.match_path != "-" else []
        mod = choose(cmd, paths, head_text[:8192], content=False)
        whole_in_head = len(head) < HEAD_BYTES
        small = whole_in_head or (item.size is not None and item.size <= TRANSCRIPT_MAX)
        # Text that neither its command nor its path gives to a parser may be a pasted
        # transcript (prompts: checked before the content, which is a mix); then the content
        # decides; then, outside a sosreport (whose files are each one thing), the text is
        # cut into blocks recognised one by one.
        if mod is None and cmd is None and transcript.looks_like_transcript(head_text, _known_command):
            yield from self.transcript(item, opener, notes, encoding, ref_time)
            return
        if mod is None:
            mod = by_content(head_text[:8192]) if head_text.strip() else None
        if mod is None and cmd is None and small and item.tree_rel is None:
            yield from self.transcript(item, opener, notes, encoding, ref_time)
            return
        if mod is None:
            if item.once:
                opener().close()
            if item.tree_rel is not None and sosreport.irrelevant(item.tree_rel):
                self.summary.skipped["sosreport files not about DHCP"] += 1
                return
            self.summary.sections += 1
            end = head_text.count("\n") + (0 if head_text.endswith("\n") else 1) if whole_in_head else \
                (_count_lines(opener) if not item.once and small else None)
            reason = NO_PARSER if item.size is None or item.size <= TRANSCRIPT_MAX else \
                f"{NO_PARSER} (and it is too large to be read as a pasted transcript)"
            yield Unparsed(origin=_origin(item, cmd=cmd), end_line=end, reason=reason)
            return
        self.summary.sections += 1
        section = Section(origin=_origin(item, cmd=cmd), lines=lambda: text_lines(opener, notes, encoding),
                          head=head_text[:8192], ref_time=ref_time)
        yield from self.run(mod, section, notes)

    def transcript(self, item: evopen.Item, opener: Callable[[], BinaryIO], notes: ReadNotes, encoding: str,
                   ref_time: float | None) -> Iterator[Fact]:
        lines: list[str] = []
        size = 0
        too_long = False
        for line in text_lines(opener, notes, encoding):
            size += len(line) + 1
            if size > TRANSCRIPT_MAX:
                too_long = True
                break
            lines.append(line)
        if notes.keys:
            self.summary.skipped["private key blocks"] += notes.keys

        def recognise(head: str, path: str | None, cmd: cmdline.CommandLine | None) -> ModuleType | None:
            return choose(cmd, [path] if path else [], head)

        result = transcript.split(lines, 1, recognise, _known_command)
        if result.prose_lines:
            self.summary.skipped["prose lines"] += result.prose_lines
        if result.banner_lines:
            self.summary.skipped["banner lines"] += result.banner_lines
        for piece in result.pieces:
            self.summary.sections += 1
            cmd = piece.command
            path = f"{item.path}#{piece.source}" if piece.source else item.path
            first = piece.line_map[0] if piece.line_map else (piece.prompt_line or 1)
            origin = _origin(item, line=first, cmd=cmd, path=path, host=piece.host or item.host,
                             namespace=piece.namespace or (cmd.namespace if cmd else None))
            mod = piece.parser
            if mod is None:
                if not piece.lines:
                    continue  # a command that printed nothing no parser reads: nothing to say
                yield Unparsed(origin=origin, end_line=piece.line_map[-1], reason=NO_PARSER)
                continue
            section = Section.from_lines(piece.lines, origin, line_map=piece.line_map, ref_time=ref_time)
            if cmd is not None and cmd.filters:
                section.filters = tuple(cmd.filters)
            yield from self.run(mod, section, ReadNotes())  # type: ignore[arg-type]
        yield from _notes(_origin(item), notes)
        if too_long:
            self.summary.sections += 1
            yield Unparsed(origin=_origin(item, line=len(lines) + 1),
                           reason=f"{NO_PARSER}; read as a transcript up to {TRANSCRIPT_MAX >> 20} MiB, "
                                  "the rest was not read")

    # running a parser ---------------------------------------------------------------------------
    def run(self, mod: ModuleType, section: Section, notes: ReadNotes) -> Iterator[Fact]:
        section.format = mod.NAME
        self.summary.parsers_used[mod.NAME] += 1
        try:
            for fact in mod.parse(section):
                yield fact
        except Exception as e:  # parsers must not raise; if one does, say where and go on
            yield Unparsed(origin=section.origin,
                           reason=f"the {mod.NAME} parser failed here ({type(e).__name__}: {str(e)[:200]})")
        if notes.keys:
            self.summary.skipped["private key blocks"] += notes.keys
        yield from _notes(section.origin, notes)


def _notes(origin: Origin, notes: ReadNotes) -> Iterator[Unparsed]:
    """What reading a stream noticed, once per file."""
    def at(line: int | None) -> Origin:
        return Origin(path=origin.path, line=line or 0, host=origin.host, namespace=origin.namespace,
                      interface=origin.interface, command=origin.command)

    if notes.replaced_line is not None:
        yield Unparsed(origin=at(notes.replaced_line),
                       reason="not UTF-8: undecodable bytes were replaced by U+FFFD (first on this line); "
                              "the rest was read")
    if notes.cut_lines:
        yield Unparsed(origin=at(notes.first_cut),
                       reason=f"{notes.cut_lines} line(s) longer than {MAX_LINE >> 20} MiB were cut to their "
                              "first MiB")
    if notes.error is not None:
        yield Unparsed(origin=at((notes.error_line or 0) + 1),
                       reason=f"reading stopped here: {notes.error}; what came before was read")
    if notes.reopened:
        yield Unparsed(origin=at(0), reason="the parser asked for a streamed input twice; "
                                            "the second reading found nothing")


def _count_lines(opener: Callable[[], BinaryIO]) -> int | None:
    """How many lines a file has (for the range of an Unparsed), or None if it cannot say."""
    n = 0
    last = b"\n"
    try:
        with opener() as f:
            while chunk := f.read(1 << 20):
                n += chunk.count(b"\n")
                last = chunk[-1:]
    except STREAM_ERRORS:
        return None
    return n + (0 if last == b"\n" else 1)


def _close(f: BinaryIO) -> None:
    try:
        f.close()
    except STREAM_ERRORS:
        pass

