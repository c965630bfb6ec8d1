"""Running the real tools the lab is made of: commands on the host or inside one of the
lab's network namespaces, with errors turned into one clear `LabError`."""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Sequence

from whynoip.errors import LabError


def run(argv: Sequence[str], ns: str | None = None, *, check: bool = True, input: str | None = None,
        env: dict[str, str] | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run argv (inside namespace `ns` when given) and return the completed process."""
    cmd = list(argv)
    if ns is not None:
        cmd = ["ip", "netns", "exec", ns, *cmd]
    full_env = None
    if env:
        full_env = {**os.environ, **env}
    try:
        cp = subprocess.run(cmd, input=input, capture_output=True, text=True, env=full_env, timeout=timeout)
    except FileNotFoundError as e:
        raise LabError(f"{cmd[0]} is not installed (run ./install.sh)") from e
    except subprocess.TimeoutExpired as e:
        raise LabError(f"timed out after {timeout}s: {' '.join(cmd)}") from e
    if check and cp.returncode != 0:
        msg = (cp.stderr or cp.stdout).strip().splitlines()
        raise LabError(f"`{' '.join(cmd)}` failed ({cp.returncode}): {msg[-1] if msg else 'no output'}")
    return cp


def out(argv: Sequence[str], ns: str | None = None, **kw) -> str:
    return run(argv, ns, **kw).stdout


def ip_batch(commands: list[str], ns: str | None = None) -> None:
    """Many `ip` commands in one process (`ip -batch`), for speed."""
    if not commands:
        return
    argv = ["ip", "-force", "-batch", "-"]
    if ns is not None:
        argv = ["ip", "-n", ns, "-force", "-batch", "-"]
    run(argv, input="\n".join(commands) + "\n")


def require_tools(names: Sequence[str]) -> None:
    missing = [n for n in names if shutil.which(n) is None]
    if missing:
        raise LabError(f"missing tools: {', '.join(missing)} (run ./install.sh)")
    if os.geteuid() != 0:
        raise LabError("the lab needs root (network namespaces, Open vSwitch, iptables)")


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie counts as dead
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def read_pid(path: str) -> int | None:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None
