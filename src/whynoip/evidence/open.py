"""Opening what an operator has: files, directories, tarballs, stdin, sosreport trees.

`inputs()` turns the paths on the command line into a stream of events: an `Item` for
every file of evidence (with what its place says: the host of the sosreport it sits in,
the command its name stands for, when the evidence was taken), a `Tree` for every
sosreport-like tree found (one per host), `Skip` for what is left out on purpose (links,
sockets) and `Problem` for what could not be opened. Archives are opened by
`walk_tar()` when reading meets one, whatever its depth (a sosreport tarball inside a
case's tarball).

A tarball is read twice, both times as a stream: once to learn its layout (which
directories are sosreports, their host names and dates), once to hand out its members in
order. A member is valid until the next one is asked for.
"""

from __future__ import annotations

import io
import os
import tarfile
import time
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from typing import BinaryIO, Callable, Iterator

from whynoip.evidence import sosreport
from whynoip.evidence.command import command_from_filename
from whynoip.evidence.stream import STREAM_ERRORS, describe_error

SLURP_MAX = 16 << 20  # archive members up to this size are held in memory (re-readable)
CONTEXT_MAX = 64 << 10


@dataclass(slots=True)
class Item:
    """One file of evidence."""

    path: str  # as shown to the operator (origin.path)
    match_path: str  # matched against the parsers' PATHS
    opener: Callable[[], BinaryIO]
    once: bool = False  # the opener works once (stdin, a large archive member)
    size: int | None = None
    mtime: float | None = None
    host: str | None = None
    ref_time: float | None = None  # when the evidence was taken, if its tree says
    command: str | None = None  # the command this file is the output of
    tree_rel: str | None = None  # path inside its sosreport tree
    explicit: bool = False  # named on the command line
    depth: int = 0  # archive nesting


@dataclass(slots=True)
class Tree:
    """A sosreport-like tree: one host's evidence."""

    path: str
    host: str | None
    time: float | None


@dataclass(slots=True)
class Skip:
    kind: str
    path: str


@dataclass(slots=True)
class Problem:
    path: str
    reason: str
    line: int = 0


Event = Item | Tree | Skip | Problem


def inputs(paths: list[str], stdin: BinaryIO | None = None) -> Iterator[Event]:
    for p in paths:
        if p == "-":
            stream = stdin if stdin is not None else _stdin()
            yield Item(path="-", match_path="-", opener=lambda s=stream: s, once=True,
                       mtime=time.time(), explicit=True)
        elif os.path.isdir(p):
            yield from walk_dir(p)
        else:
            try:
                st = os.stat(p)
            except OSError as e:
                yield Problem(p, describe_error(e))
                continue
            item = Item(path=p, match_path=os.path.abspath(p), opener=partial(open, p, "rb"),
                        size=st.st_size, mtime=st.st_mtime, explicit=True)
            _place_in_tree(item)
            yield item


def _place_in_tree(item: Item) -> None:
    """A file named alone that sits inside a sosreport tree (`sosreport-x/sos_commands/
    process/ps_auxwwwm`) gets what the tree says: host, date, the command of its name."""
    path = os.path.abspath(item.path)
    d = os.path.dirname(path)
    for _ in range(8):
        parent = os.path.dirname(d)
        if parent == d:
            return  # the file system's root holds etc/ and var/ too: it is no sosreport
        try:
            names = {n for n in os.listdir(d) if os.path.isdir(os.path.join(d, n))}
        except OSError:
            names = set()
        if sosreport.looks_like_tree(names):
            files = {}
            for rel in sosreport.CONTEXT_FILES:
                text = _read_small(os.path.join(d, rel))
                if text is not None:
                    files[rel] = text
            host, when = sosreport.context_from(files)
            rel = os.path.relpath(path, d).replace(os.sep, "/")
            item.host = tree_host(os.path.basename(d), host, False)
            item.ref_time = when
            item.tree_rel = rel
            item.match_path = "/" + rel
            cmd_name = sosreport.command_file(rel)
            item.command = command_from_filename(cmd_name) if cmd_name else None
            return
        d = parent


def _stdin() -> BinaryIO:
    import sys
    return sys.stdin.buffer


# --- directories ------------------------------------------------------------------------------

@dataclass(slots=True)
class _TreeCtx:
    root: str
    host: str | None
    time: float | None


def _read_small(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return f.read(CONTEXT_MAX).decode("utf-8", "replace")
    except OSError:
        return None


def tree_host(name: str, said: str | None, is_top: bool) -> str | None:
    """The tree's own word on its host, else its directory's name (a node of a bundle),
    unless it is the input itself or a sosreport's generated name."""
    if said:
        return said
    if is_top or not name or name.startswith(("sosreport", "sos_")):
        return None
    return name


def walk_dir(top: str) -> Iterator[Event]:
    disp = top.rstrip("/") or "/"
    yield from _visit(top, disp, None, True, top)


def _visit(d: str, disp: str, tree: _TreeCtx | None, is_top: bool, top: str) -> Iterator[Event]:
    try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
    except OSError as e:
        yield Problem(disp, describe_error(e))
        return
    if tree is None:
        dirs = {e.name for e in entries if e.is_dir(follow_symlinks=False)}
        if sosreport.looks_like_tree(dirs):
            files = {}
            for rel in sosreport.CONTEXT_FILES:
                text = _read_small(os.path.join(d, rel))
                if text is not None:
                    files[rel] = text
            host, when = sosreport.context_from(files)
            tree = _TreeCtx(root=d, host=tree_host(os.path.basename(os.path.abspath(d)), host, is_top),
                            time=when)
            yield Tree(path=disp, host=tree.host, time=when)
    for e in entries:
        path = os.path.join(d, e.name)
        edisp = f"{disp}/{e.name}" if disp != "/" else f"/{e.name}"
        try:
            if e.is_symlink():
                yield Skip("links", edisp)
                continue
            if e.is_dir():
                if e.name in (".git", ".hg", ".svn", "__pycache__"):
                    continue
                yield from _visit(path, edisp, tree, False, top)
                continue
            if not e.is_file():
                yield Skip("special files", edisp)
                continue
            st = e.stat()
        except OSError as err:
            yield Problem(edisp, describe_error(err))
            continue
        rel = os.path.relpath(path, tree.root if tree else top).replace(os.sep, "/")
        cmd_name = sosreport.command_file(rel)
        yield Item(
            path=edisp,
            match_path="/" + rel if tree else os.path.abspath(path),
            opener=partial(open, path, "rb"),
            size=st.st_size, mtime=st.st_mtime,
            host=tree.host if tree else None,
            ref_time=tree.time if tree else None,
            command=command_from_filename(cmd_name) if cmd_name else None,
            tree_rel=rel if tree else None,
        )


# --- tarballs ---------------------------------------------------------------------------------

def _norm(name: str) -> str:
    while name.startswith("./"):
        name = name[2:]
    return name.strip("/")


def _trees_of(names: list[str], context: dict[str, str]) -> dict[str, _TreeCtx]:
    """The shallowest directories of an archive laid out like sosreports, with their context."""
    children: dict[str, set[str]] = defaultdict(set)
    for name in names:
        parts = name.split("/")
        for i in range(len(parts)):
            children["/".join(parts[:i])].add(parts[i])
    trees: dict[str, _TreeCtx] = {}
    for d in sorted(children, key=lambda x: (x.count("/") if x else -1, x)):
        if not sosreport.looks_like_tree(children[d]):
            continue
        if any(d == t or d.startswith(t + "/") for t in trees if t) or ("" in trees):
            continue
        prefix = d + "/" if d else ""
        files = {k[len(prefix):]: v for k, v in context.items() if k.startswith(prefix)}
        host, when = sosreport.context_from(files)
        trees[d] = _TreeCtx(root=d, host=tree_host(d.rsplit("/", 1)[-1], host, d == ""), time=when)
    return trees


def _tree_of(name: str, trees: dict[str, _TreeCtx]) -> tuple[str, _TreeCtx] | None:
    d = name
    while True:
        d = d.rsplit("/", 1)[0] if "/" in d else ""
        if d in trees:
            return d, trees[d]
        if not d:
            return None


class _Shared(io.RawIOBase):
    """A view on a seekable file that tarfile may close without closing the file."""

    def __init__(self, f: BinaryIO):
        f.seek(0)
        self._f = f

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:  # type: ignore[override]
        data = self._f.read(len(b))
        b[:len(data)] = data
        return len(data)


def walk_tar(item: Item, reopen: Callable[[], BinaryIO]) -> Iterator[Event]:
    """The members of a tarball (any compression tarfile reads), as events. `reopen` gives
    the archive's bytes from the start, each time it is called."""
    names: list[str] = []
    context: dict[str, str] = {}
    first_error = None
    try:
        with tarfile.open(fileobj=reopen(), mode="r|*") as tf:
            for m in tf:
                name = _norm(m.name)
                names.append(name)
                if m.isfile() and m.size <= CONTEXT_MAX and any(
                        name == c or name.endswith("/" + c) for c in sosreport.CONTEXT_FILES):
                    f = tf.extractfile(m)
                    if f is not None:
                        context[name] = f.read().decode("utf-8", "replace")
            # tarfile ends quietly when the data stops exactly between two members; an
            # archive that ends whole has its end-of-archive block (read past: pos > offset)
            if names and getattr(tf.fileobj, "pos", None) == tf.offset:
                first_error = EOFError("no end-of-archive block")
    except STREAM_ERRORS as e:
        first_error = e
    if not names and first_error is not None:
        yield Problem(item.path, f"cannot read the archive: {describe_error(first_error)}")
        return
    trees = _trees_of(names, context)
    for d, t in trees.items():
        yield Tree(path=f"{item.path}/{d}" if d else item.path, host=t.host, time=t.time)

    last = None
    try:
        with tarfile.open(fileobj=reopen(), mode="r|*") as tf:
            for m in tf:
                name = _norm(m.name)
                mpath = f"{item.path}/{name}"
                last = name
                if m.isdir():
                    continue
                if m.issym() or m.islnk():
                    yield Skip("links", mpath)
                    continue
                if not m.isfile():
                    yield Skip("special files", mpath)
                    continue
                found = _tree_of(name, trees)
                if found is not None:
                    root, ctx = found
                    rel = name[len(root) + 1:] if root else name
                else:
                    root, ctx, rel = "", None, None
                f = tf.extractfile(m)
                if f is None:
                    continue
                if m.size <= SLURP_MAX:
                    data = f.read()  # errors here: the member is cut short
                    if len(data) < m.size:
                        raise EOFError("member cut short")
                    opener: Callable[[], BinaryIO] = partial(io.BytesIO, data)
                    once = False
                else:
                    opener, once = (lambda f=f: f), True
                cmd_name = sosreport.command_file(rel if rel is not None else name)
                yield Item(
                    path=mpath,
                    match_path="/" + (rel if rel is not None else name),
                    opener=opener, once=once, size=m.size, mtime=float(m.mtime),
                    host=ctx.host if ctx else None, ref_time=ctx.time if ctx else None,
                    command=command_from_filename(cmd_name) if cmd_name else None,
                    tree_rel=rel, depth=item.depth + 1,
                )
    except STREAM_ERRORS as e:
        where = f" after {last}" if last else ""
        yield Problem(item.path, f"the archive breaks off{where}: {describe_error(e)}; "
                                 "the members before it were read")
        return
    if first_error is not None:  # pass 2 got through what pass 1 could not: say so anyway
        yield Problem(item.path, f"the archive is damaged: {describe_error(first_error)}")
