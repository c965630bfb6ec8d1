"""Log lines in oslo.log's default format, as Neutron's services write them:
`2026-11-21 05:52:11.123 4242 INFO neutron.agent.dhcp.agent [-] Synchronizing state`
(times in UTC; a request id in brackets when the line belongs to one)."""

from __future__ import annotations

import os
import time
import traceback
import uuid
from pathlib import Path


def new_request_id() -> str:
    return f"req-{uuid.uuid4()}"


class OsloLogger:
    def __init__(self, path: Path | None, name: str):
        self.path = path
        self.name = name
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def _write(self, level: str, message: str, request_id: str | None, name: str | None) -> None:
        if self.path is None:
            return
        now = time.time()
        stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}"
        ctx = f"[{request_id} - - - - -]" if request_id else "[-]"
        head = f"{stamp} {os.getpid()} {level} {name or self.name} {ctx} "
        lines = message.splitlines() or [""]
        text = head + lines[0] + "\n" + "".join(f"{head}{line}\n" for line in lines[1:])
        try:
            with open(self.path, "a") as f:
                f.write(text)
        except OSError:
            pass  # a full or read-only log disk must not take the service down with it

    def debug(self, msg: str, request_id: str | None = None, name: str | None = None) -> None:
        self._write("DEBUG", msg, request_id, name)

    def info(self, msg: str, request_id: str | None = None, name: str | None = None) -> None:
        self._write("INFO", msg, request_id, name)

    def warning(self, msg: str, request_id: str | None = None, name: str | None = None) -> None:
        self._write("WARNING", msg, request_id, name)

    def error(self, msg: str, request_id: str | None = None, name: str | None = None) -> None:
        self._write("ERROR", msg, request_id, name)

    def exception(self, msg: str, request_id: str | None = None, name: str | None = None) -> None:
        """ERROR with the current traceback, each line prefixed as oslo.log does."""
        self._write("ERROR", msg + "\n" + traceback.format_exc().rstrip(), request_id, name)
