"""Reaching a node to read its state: this machine, or another one over SSH.

`collect` and `trace` only ever run read-only commands and read files; a `Node` gives them
the two in one shape wherever the node is. Every command is bounded in time (on a remote
node by `timeout` there too, so nothing outlives a dropped connection); a command that is
not installed is reported as missing, not run. Over SSH (asyncssh) the node's own tools do
the work, so nothing has to be installed there beyond sshd and the usual userland.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import os
import re
import shlex
import signal
import time
from dataclasses import dataclass
from pathlib import Path

from whynoip.errors import WhynoipError

DEFAULT_TIMEOUT = 20.0
KILL_GRACE = 2  # seconds between `timeout`'s TERM and KILL


# Runs a batch of commands on a node (Python 3.6 or later, as on any OpenStack node): the
# jobs come as JSON on stdin, each result goes back as one JSON line, outputs in base64.
REMOTE_RUNNER = r"""
import base64, json, os, signal, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor
jobs = json.load(sys.stdin)
base = dict(os.environ, LC_ALL="C")
base.pop("COLUMNS", None)
base.pop("LINES", None)
def one(ij):
    i, j = ij
    t = time.time()
    env = dict(base)
    env.update(j["env"])
    try:
        p = subprocess.Popen(j["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=env, start_new_session=True)
    except OSError as e:
        return {"i": i, "rc": None, "missing": isinstance(e, FileNotFoundError),
                "err": base64.b64encode(str(e).encode()).decode()}
    timed_out = False
    try:
        out, err = p.communicate(timeout=j["timeout"])
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        out, err = p.communicate()
    return {"i": i, "rc": None if timed_out else p.returncode, "timed_out": timed_out,
            "out": base64.b64encode(out).decode(), "err": base64.b64encode(err).decode(),
            "seconds": time.time() - t}
with ThreadPoolExecutor(int(sys.argv[1])) as ex:
    for r in ex.map(one, enumerate(jobs)):
        sys.stdout.write(json.dumps(r) + "\n")
        sys.stdout.flush()
"""


class NodeError(WhynoipError):
    """A node could not be reached (connection refused, authentication, host key)."""


@dataclass(slots=True)
class Result:
    argv: list[str]
    rc: int | None  # None: not run (missing) or killed on time-out
    out: bytes = b""
    err: bytes = b""
    seconds: float = 0.0
    missing: bool = False
    timed_out: bool = False

    @property
    def status(self) -> str:
        if self.missing:
            return "missing"
        if self.timed_out:
            return "timed out"
        return "ok" if self.rc == 0 else f"exit {self.rc}"


@dataclass(slots=True)
class Job:
    argv: list[str]
    timeout: float = DEFAULT_TIMEOUT
    env: dict[str, str] | None = None


def bounded(argv: list[str], timeout: float) -> list[str]:
    """argv run under coreutils `timeout`: TERM at the limit, KILL a little after."""
    return ["timeout", "-k", str(KILL_GRACE), f"{timeout:g}", *argv]


class Node:
    """A node to read from. `label` names it in messages (`local`, `root@10.0.0.5`)."""

    label = "node"
    sudo = False

    async def run(self, argv: list[str], timeout: float = DEFAULT_TIMEOUT, env: dict[str, str] | None = None,
                  stdin: bytes | None = None) -> Result:
        raise NotImplementedError

    async def spawn(self, argv: list[str]):
        """Start a long-running command and return it at once, its stdin, stdout and stderr
        as streams (`.stdin.write()`, `.stdin.write_eof()`, `.stdout.read(n)`,
        `.stderr.readline()`, `await .wait()`): a capture that runs until told to stop."""
        raise NotImplementedError

    async def run_many(self, jobs: list[Job], parallel: int = 4) -> list[Result]:
        """Run several commands, `parallel` at once; results in the order of `jobs`."""
        sem = asyncio.Semaphore(parallel)

        async def one(j: Job) -> Result:
            async with sem:
                return await self.run(j.argv, timeout=j.timeout, env=j.env)

        return list(await asyncio.gather(*(one(j) for j in jobs)))

    async def which(self, tools: list[str] | tuple[str, ...]) -> set[str]:
        """Which of `tools` the node has (one command, whatever their number)."""
        script = "for t in " + " ".join(shlex.quote(t) for t in tools) + \
                 '; do command -v "$t" >/dev/null 2>&1 && echo "$t"; done; true'
        r = await self.run(["sh", "-c", script], timeout=10)
        return set(r.out.decode(errors="replace").split())

    async def files(self, top: str) -> list[tuple[str, int]]:
        """(path, size) of the regular files under directory `top`, recursively; none when
        it does not exist."""
        return await self.files_many([top])

    async def files_many(self, tops: list[str]) -> list[tuple[str, int]]:
        """(path, size) of the regular files under each of `tops` that exists."""
        r = await self.run(["find", *tops, "-xdev", "-type", "f", "-printf", r"%s %p\n"], timeout=30)
        out = []
        for line in r.out.decode("utf-8", errors="surrogateescape").splitlines():
            size, _, path = line.partition(" ")
            if size.isdigit() and path:
                out.append((path, int(size)))
        return out

    async def read(self, path: str, limit: int | None = None) -> bytes | None:
        """The file's content (its last `limit` bytes), or None when it cannot be read."""
        argv = ["tail", "-c", str(limit), "--", path] if limit else ["cat", "--", path]
        r = await self.run(argv, timeout=60)
        return r.out if r.rc == 0 else None

    async def read_many(self, paths: list[str], limit: int | None = None) -> dict[str, bytes]:
        """{path: content} of the readable files among `paths` (each its last `limit` bytes),
        a few hundred files per command: one channel per file would cost a round trip each."""
        script = ('lim=$1; shift; for f; do [ -f "$f" ] && [ -r "$f" ] || continue; '
                  'printf "%s" "$f" | base64 -w0; printf "\\t"; '
                  'if [ "$lim" = 0 ]; then base64 -w0 -- "$f"; else tail -c "$lim" -- "$f" | base64 -w0; fi; '
                  'printf "\\n"; done')
        out: dict[str, bytes] = {}
        for i in range(0, len(paths), 200):
            r = await self.run(["sh", "-c", script, "sh", str(limit or 0), *paths[i:i + 200]], timeout=120)
            for line in r.out.splitlines():
                name, _, data = line.partition(b"\t")
                try:
                    out[base64.b64decode(name).decode("utf-8", errors="surrogateescape")] = base64.b64decode(data)
                except (ValueError, binascii.Error):
                    continue
        return out

    async def close(self) -> None:
        pass


class LocalNode(Node):
    """This machine. Commands run as child processes in their own process group, killed
    whole at the time limit."""

    label = "local"

    def __init__(self, sudo: bool = False):
        self.sudo = sudo

    async def run(self, argv, timeout=DEFAULT_TIMEOUT, env=None, stdin=None) -> Result:
        full = list(argv)
        if env:
            full = ["env", *(f"{k}={v}" for k, v in env.items()), *full]
        if self.sudo:
            full = ["sudo", "-n", *full]
        start = time.monotonic()
        run_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # ps would cut lines
        run_env["LC_ALL"] = "C"
        try:
            p = await asyncio.create_subprocess_exec(
                *full, stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=run_env,
                start_new_session=True)
        except FileNotFoundError:
            return Result(list(argv), None, missing=True)
        except OSError as e:
            return Result(list(argv), None, err=f"{e.strerror}\n".encode())
        out, err = bytearray(), bytearray()

        async def drain(stream, buf: bytearray) -> None:
            while chunk := await stream.read(65536):
                buf += chunk

        if stdin is not None:
            p.stdin.write(stdin)
            p.stdin.close()
        readers = asyncio.gather(drain(p.stdout, out), drain(p.stderr, err))
        try:
            await asyncio.wait_for(p.wait(), timeout)
        except asyncio.TimeoutError:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await p.wait()
            await readers
            return Result(list(argv), None, bytes(out), bytes(err), time.monotonic() - start, timed_out=True)
        await readers
        return Result(list(argv), p.returncode, bytes(out), bytes(err), time.monotonic() - start)

    async def files_many(self, tops: list[str]) -> list[tuple[str, int]]:
        out = []
        for top in tops:
            out += await self.files(top)
        return out

    async def files(self, top: str) -> list[tuple[str, int]]:
        out = []
        base = Path(top)
        if base.is_file() and not base.is_symlink():  # as find: a file named is listed
            return [(top, base.stat().st_size)]
        if not base.is_dir():
            return out
        dev = base.stat().st_dev
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = sorted(d for d in dirnames if _same_dev(os.path.join(dirpath, d), dev))
            for name in sorted(filenames):
                p = os.path.join(dirpath, name)
                try:
                    st = os.lstat(p)
                except OSError:
                    continue
                if _is_regular(st.st_mode):
                    out.append((p, st.st_size))
        return out

    async def spawn(self, argv: list[str]):
        full = ["sudo", "-n", *argv] if self.sudo else list(argv)
        return await asyncio.create_subprocess_exec(*full, stdin=asyncio.subprocess.PIPE,
                                                    stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                                                    start_new_session=True)

    async def read_many(self, paths: list[str], limit: int | None = None) -> dict[str, bytes]:
        if self.sudo:
            return await super().read_many(paths, limit)
        out = {}
        for p in paths:
            data = await self.read(p, limit)
            if data is not None:
                out[p] = data
        return out

    async def read(self, path: str, limit: int | None = None) -> bytes | None:
        if self.sudo:
            return await super().read(path, limit)
        try:
            with open(path, "rb") as f:
                if limit:
                    size = os.fstat(f.fileno()).st_size
                    if size > limit:
                        f.seek(size - limit)
                return f.read()
        except OSError:
            return None


def _same_dev(path: str, dev: int) -> bool:
    try:
        return os.lstat(path).st_dev == dev and not os.path.islink(path)
    except OSError:
        return False


def _is_regular(mode: int) -> bool:
    import stat
    return stat.S_ISREG(mode)


# --- over SSH ----------------------------------------------------------------------------------

_TARGET_RE = re.compile(r"^(?:(?P<user>[^@\s]+)@)?(?P<host>\[[0-9a-fA-F:.]+\]|[^:@\s]+)(?::(?P<port>\d+))?$")


@dataclass(slots=True)
class SshTarget:
    host: str
    user: str | None = None
    port: int | None = None
    name: str | None = None  # the inventory's name for it
    vars: dict | None = None  # the inventory's whynoip_* variables for it (whynoip_netns, whynoip_root ...)

    @property
    def label(self) -> str:
        s = f"{self.user}@{self.host}" if self.user else self.host
        return f"{s}:{self.port}" if self.port else s

    @classmethod
    def parse(cls, text: str) -> "SshTarget":
        m = _TARGET_RE.match(text.strip())
        if not m:
            raise WhynoipError(f"--ssh {text!r}: expected [user@]host[:port]")
        return cls(m["host"].strip("[]"), m["user"], int(m["port"]) if m["port"] else None)


@dataclass(slots=True)
class SshOptions:
    identity: list[str] | None = None  # private key files; None: the SSH agent and ~/.ssh defaults
    known_hosts: str | None = None  # None: ~/.ssh/known_hosts
    user: str | None = None
    connect_timeout: float = 10.0
    sudo: bool = False


class SshNode(Node):
    """A node reached with asyncssh. Each command is one channel of one connection."""

    CHANNELS = 8  # at once on one connection (OpenSSH's MaxSessions is 10 by default)

    def __init__(self, target: SshTarget, conn, sudo: bool = False):
        self.target = target
        self.conn = conn
        self.sudo = sudo
        self.label = target.label
        self._channels = asyncio.Semaphore(self.CHANNELS)
        self.has_python: bool | None = None  # python3 on the node runs batches of commands

    @classmethod
    async def connect(cls, target: SshTarget, opts: SshOptions) -> "SshNode":
        try:
            import asyncssh
        except ImportError as e:  # pragma: no cover - a pinned dependency
            raise NodeError("SSH needs the asyncssh package (pip install asyncssh)") from e
        kw = {"port": target.port or 22, "username": target.user or opts.user,
              "connect_timeout": opts.connect_timeout, "login_timeout": opts.connect_timeout}
        if opts.identity is not None:
            kw["client_keys"] = opts.identity
            kw["agent_path"] = None
        if opts.known_hosts is not None:
            kw["known_hosts"] = opts.known_hosts
        try:
            conn = await asyncssh.connect(target.host, **{k: v for k, v in kw.items() if v is not None})
        except asyncssh.HostKeyNotVerifiable as e:
            raise NodeError(f"{target.label}: host key not verifiable ({e.reason}); add it to known_hosts "
                            f"or pass --known-hosts") from e
        except asyncssh.PermissionDenied as e:
            raise NodeError(f"{target.label}: permission denied (publickey); pass --identity") from e
        except (OSError, asyncssh.Error, asyncio.TimeoutError) as e:
            raise NodeError(f"{target.label}: cannot connect: {getattr(e, 'reason', None) or e or type(e).__name__}") \
                from e
        return cls(target, conn, sudo=opts.sudo)

    async def run(self, argv, timeout=DEFAULT_TIMEOUT, env=None, stdin=None) -> Result:
        full = list(argv)
        full = ["env", "LC_ALL=C", *(f"{k}={v}" for k, v in (env or {}).items()), *full]
        full = bounded(full, timeout)
        if self.sudo:
            full = ["sudo", "-n", *full]
        async with self._channels:
            return await self._run(argv, full, timeout, stdin)

    async def _run(self, argv, full, timeout, stdin) -> Result:
        start = time.monotonic()
        try:
            r = await asyncio.wait_for(self.conn.run(shlex.join(full), check=False, encoding=None, input=stdin),
                                       timeout + KILL_GRACE + 5)
        except asyncio.TimeoutError:
            return Result(list(argv), None, seconds=time.monotonic() - start, timed_out=True)
        except Exception as e:  # the connection went away
            return Result(list(argv), None, err=f"ssh: {e}\n".encode(), seconds=time.monotonic() - start)
        rc = r.exit_status if r.exit_status is not None else -1
        out, err = r.stdout or b"", r.stderr or b""
        seconds = time.monotonic() - start
        if rc == 124:
            return Result(list(argv), None, out, err, seconds, timed_out=True)
        if rc == 127 and b"No such file" in err or rc == 127 and b"not found" in err:
            return Result(list(argv), None, out, err, seconds, missing=True)
        return Result(list(argv), rc, out, err, seconds)

    async def spawn(self, argv: list[str]):
        full = ["env", "LC_ALL=C", *argv]
        if self.sudo:
            full = ["sudo", "-n", *full]
        try:
            return await self.conn.create_process(shlex.join(full), encoding=None)
        except Exception as e:
            raise NodeError(f"{self.label}: cannot start {argv[0]}: {e}") from e

    async def run_many(self, jobs: list[Job], parallel: int = 4) -> list[Result]:
        """All the commands through one channel: a small Python program on the node runs
        them (`parallel` at once, each under its own time limit) and sends back what each
        printed. One round trip instead of one per command; without python3 there, one
        channel per command."""
        if self.has_python is None:
            r = await self.run(["sh", "-c", "command -v python3"], timeout=10)
            self.has_python = r.rc == 0 and bool(r.out.strip())
        if not self.has_python or not jobs:
            return await super().run_many(jobs, parallel)
        payload = json.dumps([{"argv": j.argv, "timeout": j.timeout, "env": j.env or {}} for j in jobs]).encode()
        limit = max(j.timeout for j in jobs) * (len(jobs) // parallel + 1) + 10
        start = time.monotonic()
        r = await self.run(["python3", "-c", REMOTE_RUNNER, str(parallel)], timeout=limit, stdin=payload)
        results: dict[int, Result] = {}
        for line in r.out.splitlines():
            try:
                d = json.loads(line)
            except ValueError:
                continue
            i = d["i"]
            results[i] = Result(jobs[i].argv, d.get("rc"), base64.b64decode(d.get("out", "")),
                                base64.b64decode(d.get("err", "")), d.get("seconds", 0.0),
                                missing=d.get("missing", False), timed_out=d.get("timed_out", False))
        lost = time.monotonic() - start
        return [results.get(i) or Result(j.argv, None, err=b"not run: the batch was cut\n", seconds=lost,
                                          timed_out=r.timed_out) for i, j in enumerate(jobs)]

    async def close(self) -> None:
        self.conn.close()
        try:
            await asyncio.wait_for(self.conn.wait_closed(), 5)
        except Exception:
            pass
