"""The lab's message broker: a private RabbitMQ (Debian's rabbitmq-server) per lab.

Each broker node is a real Erlang VM running RabbitMQ with everything of its own: its node
name (`wnp-<lab>-rabbit@localhost`, so that two labs never meet), its AMQP and Erlang
distribution ports on loopback (chosen free), its own epmd on a loopback port of its own
(started first, so that the VM never starts a shared one that would outlive the lab), its
Erlang cookie (HOME), and its data, log and config directories inside the node that hosts
it (`/var/lib/rabbitmq`, `/var/log/rabbitmq`, `/etc/rabbitmq` of the first network node),
where a real node keeps them. It is started and stopped by PID; the system's rabbitmq
service, /etc/rabbitmq and /var/lib/rabbitmq are never touched.

The lab's bookkeeping (ports, PIDs) is `<lab dir>/bus.json`; `rabbitmqctl` runs with the
environment that finds the node (`Broker.ctl`)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from whynoip.errors import LabError
from whynoip.lab import sh
from whynoip.lab.paths import LabPaths

RABBIT_BIN = Path("/usr/lib/rabbitmq/bin")
START_TIMEOUT = 60.0
STATE_FILE = "bus.json"
USER = "openstack"
# free space the broker insists on: small, as the lab's /var/lib is a small filesystem
DISK_FREE_LIMIT = "2MB"

RABBITMQ_CONF = """# RabbitMQ of {node}: loopback only
listeners.tcp.1 = 127.0.0.1:{port}
default_user = {user}
default_pass = {password}
default_vhost = /
disk_free_limit.absolute = {disk_free_limit}
log.file.level = info
log.console = false
cluster_partition_handling = ignore
"""


def free_port() -> int:
    """A TCP port nothing listens on now, on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout):
            return True
    except OSError:
        return False


def _kill(pid: int | None, sig: int = signal.SIGTERM) -> None:
    if pid and sh.pid_alive(pid):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def _wait_dead(pid: int | None, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while pid and sh.pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


class Broker:
    """One RabbitMQ node of a lab. `name` is the node's short name (`rabbit`, `rabbit2`)."""

    def __init__(self, paths: LabPaths, host: str, name: str = "rabbit", port: int | None = None,
                 dist_port: int | None = None, epmd_port: int | None = None):
        self.paths = paths
        self.host = host  # the lab node whose file system holds it
        self.name = name
        self.nodename = f"{paths.prefix}{name}@localhost"
        self.port = port
        self.dist_port = dist_port
        self.epmd_port = epmd_port
        root = paths.node_root(host)
        self.home = root / "var/lib/rabbitmq"
        self.mnesia_base = self.home / "mnesia"
        self.log_base = root / "var/log/rabbitmq"
        self.etc = root / "etc/rabbitmq"
        self.run_dir = root / "run/rabbitmq"

    # --- where things are ----------------------------------------------------------------

    @property
    def log_file(self) -> Path:
        return self.log_base / f"{self.nodename}.log"

    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def mnesia_dir(self) -> Path:
        return self.mnesia_base / self.nodename

    @property
    def pid(self) -> int | None:
        pid = sh.read_pid(str(self.pid_file))
        return pid if sh.pid_alive(pid) else None

    def env(self) -> dict[str, str]:
        """The environment of this node's server and of `rabbitmqctl` aimed at it."""
        return {
            "HOME": str(self.home),  # the Erlang cookie
            "RABBITMQ_NODENAME": self.nodename,
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self.mnesia_base),
            "RABBITMQ_LOG_BASE": str(self.log_base),
            "RABBITMQ_CONFIG_FILE": str(self.etc / self.name),  # <name>.conf
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.etc / f"{self.name}-advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.etc / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.etc / "rabbitmq-env.conf"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            # exec the VM itself (no shell wrapper in between), so its PID is the broker's
            "RUNNING_UNDER_SYSTEMD": "true",
            "LC_ALL": "C.UTF-8",
        }

    # --- running it ----------------------------------------------------------------------

    def write_config(self, password: str) -> None:
        for d in (self.home, self.mnesia_base, self.log_base, self.etc, self.run_dir):
            d.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        (self.etc / f"{self.name}.conf").write_text(RABBITMQ_CONF.format(
            node=self.nodename, port=self.port, user=USER, password=password, disk_free_limit=DISK_FREE_LIMIT))
        (self.etc / "enabled_plugins").write_text("[].\n")
        env_conf = self.etc / "rabbitmq-env.conf"
        if not env_conf.exists():
            env_conf.write_text("")

    def spawn(self) -> int:
        """Start the VM (not waiting for RabbitMQ to be up); returns its PID."""
        if not (RABBIT_BIN / "rabbitmq-server").exists():
            raise LabError("rabbitmq-server is not installed (run ./install.sh)")
        self.pid_file.unlink(missing_ok=True)
        with open(self.run_dir / f"{self.name}.stdout", "ab") as out:
            p = subprocess.Popen([str(RABBIT_BIN / "rabbitmq-server")], env={**os.environ, **self.env()},
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=str(self.home))
        # the VM writes its pid file late in its boot; until then the Popen PID is it
        self.pid_file.write_text(f"{p.pid}\n")
        self._popen = p
        return p.pid

    def wait_up(self, timeout: float = START_TIMEOUT) -> None:
        """Until the AMQP listener accepts connections (the last step of RabbitMQ's boot)."""
        deadline = time.monotonic() + timeout
        while not port_open(self.port):
            if not self.pid:
                raise LabError(f"RabbitMQ node {self.nodename} exited while starting "
                               f"(see {self.log_file}){self._last_error()}")
            if time.monotonic() > deadline:
                raise LabError(f"RabbitMQ node {self.nodename} did not listen on 127.0.0.1:{self.port} "
                               f"within {timeout:.0f}s (see {self.log_file})")
            time.sleep(0.05)

    def _last_error(self) -> str:
        try:
            lines = (self.run_dir / f"{self.name}.stdout").read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        for line in reversed(lines):
            if "error" in line.lower() or "failed" in line.lower():
                return f": {line.strip()[:200]}"
        return ""

    def start(self, timeout: float = START_TIMEOUT) -> int:
        pid = self.spawn()
        self.wait_up(timeout)
        return pid

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (the VM shuts RabbitMQ down cleanly), SIGKILL after `timeout`."""
        pid = self.pid
        if not pid:
            return
        _kill(pid, signal.SIGTERM)
        if not _wait_dead(pid, timeout):
            _kill(pid, signal.SIGKILL)
            _wait_dead(pid, 5)
        self._reap()

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a power cut stops a broker."""
        pid = self.pid
        _kill(pid, signal.SIGKILL)
        _wait_dead(pid, 5)
        self._reap()

    def _reap(self) -> None:
        p = getattr(self, "_popen", None)
        if p is not None:
            try:
                p.wait(timeout=1)
            except subprocess.TimeoutExpired:
                pass

    def ctl(self, *args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
        """`rabbitmqctl -n <node> ARGS` with this node's environment."""
        return sh.run([str(RABBIT_BIN / "rabbitmqctl"), "-n", self.nodename, *args], env=self.env(), check=check,
                      timeout=timeout)

    def to_dict(self) -> dict:
        return {"name": self.name, "host": self.host, "nodename": self.nodename, "port": self.port,
                "dist_port": self.dist_port, "epmd_port": self.epmd_port}


# --- the lab's bus: epmd and the broker nodes, recorded in bus.json -----------------------

def state_path(paths: LabPaths) -> Path:
    return paths.dir / STATE_FILE


def load_state(paths: LabPaths) -> dict | None:
    try:
        return json.loads(state_path(paths).read_text())
    except (OSError, ValueError):
        return None


def save_state(paths: LabPaths, state: dict) -> None:
    p = state_path(paths)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(tmp, p)


def node(paths: LabPaths, name: str = "rabbit") -> Broker:
    """A broker node recorded in the lab's bus.json."""
    state = load_state(paths)
    if not state or name not in state.get("nodes", {}):
        raise LabError(f"lab {paths.name!r} has no RabbitMQ node {name!r} (whynoip lab up --bus rabbitmq)")
    d = state["nodes"][name]
    return Broker(paths, d["host"], name, d["port"], d["dist_port"], state["epmd_port"])


def start_epmd(port: int) -> int:
    """A private epmd on a loopback port; returns its PID."""
    p = subprocess.Popen(["epmd", "-port", str(port), "-address", "127.0.0.1"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 10
    while not port_open(port):
        if p.poll() is not None or time.monotonic() > deadline:
            raise LabError(f"epmd did not start on 127.0.0.1:{port}")
        time.sleep(0.02)
    return p.pid


def plan(paths: LabPaths, host: str, password: str) -> Broker:
    """The lab's bus on paper: ports chosen and recorded in bus.json, nothing started yet
    (the nodes' config files need the broker's address before it runs)."""
    b = Broker(paths, host, "rabbit", free_port(), free_port(), free_port())
    save_state(paths, {"kind": "rabbitmq", "epmd_pid": None, "epmd_port": b.epmd_port,
                       "nodes": {"rabbit": b.to_dict()}, "password": password})
    return b


def launch(paths: LabPaths) -> Broker:
    """Start the planned bus: its epmd, then its first broker node (spawned, not yet up:
    `wait_up()` it). Each PID is recorded as soon as it exists, so that `down` finds it
    even when the start fails half-way."""
    state = load_state(paths)
    b = node(paths, "rabbit")
    state["epmd_pid"] = start_epmd(b.epmd_port)
    save_state(paths, state)
    b.write_config(state.get("password", ""))
    b.spawn()
    return b


def add_node(paths: LabPaths, host: str, name: str) -> Broker:
    """Record (and configure) one more broker node of the lab, sharing its epmd and cookie."""
    state = load_state(paths)
    if not state:
        raise LabError(f"lab {paths.name!r} has no RabbitMQ bus")
    first = node(paths, "rabbit")
    b = Broker(paths, host, name, free_port(), free_port(), state["epmd_port"])
    state["nodes"][name] = b.to_dict()
    save_state(paths, state)
    b.write_config(state.get("password", ""))
    cookie = first.home / ".erlang.cookie"
    if b.home != first.home and cookie.exists():
        (b.home / ".erlang.cookie").write_bytes(cookie.read_bytes())
        (b.home / ".erlang.cookie").chmod(0o400)
    return b


def remove_node(paths: LabPaths, name: str) -> None:
    state = load_state(paths)
    if state and name in state.get("nodes", {}):
        del state["nodes"][name]
        save_state(paths, state)


def stop_all(paths: LabPaths) -> None:
    """Stop every broker node of the lab and its epmd, by PID (for `lab down`)."""
    state = load_state(paths)
    if not state:
        return
    nodes = [node(paths, n) for n in state.get("nodes", {})]
    pids = [b.pid for b in nodes]
    for pid in pids:
        _kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 5
    for pid in pids:
        if not _wait_dead(pid, max(0.0, deadline - time.monotonic())):
            _kill(pid, signal.SIGKILL)
            _wait_dead(pid, 2)
    epmd = state.get("epmd_pid")
    if epmd and _is_epmd(epmd, state.get("epmd_port")):
        _kill(epmd, signal.SIGKILL)
        _wait_dead(epmd, 2)


def _is_epmd(pid: int, port: int | None) -> bool:
    """The recorded PID is still our epmd (not a reused PID)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return bool(argv) and argv[0].endswith(b"epmd") and str(port).encode() in argv
