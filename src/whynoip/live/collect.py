"""`whynoip collect`: what the doctor reads, gathered from live nodes as sosreport does.

For each node — this machine, a network namespace of it standing for a node, or a host
reached over SSH — read-only commands are run and files copied into one sosreport-like
tree per node, the layout the evidence reader already knows:

    <host>/sos_commands/<plugin>/<command_with_underscores>   what each command printed
    <host>/etc/neutron/..., <host>/var/log/..., <host>/var/lib/neutron/dhcp/<net>/...
    <host>/sos_logs/whynoip-collect.log                        each command: status, seconds
    api/openstack_..._-f_json                                  the API view (when credentials exist)

Every command is bounded in time; one that is not installed is recorded as missing in the
collect log and collection goes on. Nothing is changed on a node: only commands that read
are run (`ip netns exec` only enters a namespace). Secrets are masked before anything is
written: configuration files as sosreport masks them (`whynoip.lab.collect.redact`), then
every text by `whynoip.evidence.redact` (passwords, URL credentials, tokens, private keys).

A node emulated on this machine (a lab node) is collected as the real node it stands for:
`--netns NS` runs every command inside namespace NS and takes the namespaces named
`NS-<name>` for the node's own (shown as `<name>`, so `NS-qdhcp-<net>` is `qdhcp-<net>`);
`--root DIR` reads the node's files under DIR (sosreport's `--sysroot`) and shows paths
under DIR as the node sees them; `--ovs-rundir DIR` talks to the node's own Open vSwitch.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from whynoip.errors import WhynoipError
from whynoip.evidence.redact import redact
from whynoip.live.node import DEFAULT_TIMEOUT, Job, Node, NodeError, Result, SshNode, SshOptions, SshTarget

OVS_TIMEOUT = 5  # sosreport runs ovs-vsctl with `-t 5`
LOG_LIMIT = 5 * 1024 * 1024  # the last 5 MB of each log
FILE_LIMIT = 1024 * 1024  # config and state files
JOURNAL_LINES = 20000
NODE_PARALLEL = 4  # commands at once on one node (sshd allows 10 sessions per connection)
DHCP_FILES = ("host", "addn_hosts", "opts", "leases", "pid", "interface")
CONFIG_DIRS = ("/etc/neutron",)
CONFIG_FILES = ("/etc/nova/nova.conf", "/etc/hostname")
LOG_DIRS = ("/var/log/neutron", "/var/log/nova", "/var/log/rabbitmq", "/var/log/openvswitch", "/var/log/libvirt")
SYSLOG_FILES = ("/var/log/syslog", "/var/log/messages", "/var/log/daemon.log")
STATE_DIRS = ("/var/lib/libvirt/dnsmasq",)
STATE_FILES = ("/var/lib/misc/dnsmasq.leases",)
ROTATED = re.compile(r"\.(?:gz|xz|bz2|zst|lz4)$|\.\d+$|-\d{8}$")
PACKAGES = re.compile(r"dnsmasq|openvswitch|neutron|nova|rabbitmq|libvirt|iptables|iproute|keepalived|haproxy")
TOOLS = ("ip", "ss", "ps", "df", "date", "hostname", "brctl", "ovs-vsctl", "ovs-ofctl", "iptables-save", "iptables",
         "dpkg", "rpm", "journalctl", "systemctl", "pcs", "crm_mon", "rabbitmqctl", "timeout", "tail", "find")


class CollectError(WhynoipError):
    """Collection cannot start (bad option, no such namespace, bad inventory)."""


def sos_name(command: str) -> str:
    """sosreport's file name for a command: the program without its directory, spaces
    as `_`, `/` as `.`, quotes dropped (the lab's collect names files the same way)."""
    from whynoip.lab.collect import sos_name as lab_sos_name
    return lab_sos_name(command)


def mask_config(text: str) -> str:
    """A configuration file's secrets masked as sosreport masks them (whole values of
    password keys, `transport_url`, a connection's password), then whatever else looks
    like a secret."""
    from whynoip.lab.collect import redact as sosreport_mask
    return redact(sosreport_mask(text))


# --- what a node is, as seen from where we run -------------------------------------------------

@dataclass(slots=True)
class NodeView:
    """How to see one node: where its namespace, files and Open vSwitch are."""

    netns: str | None = None  # the node is this namespace of the machine
    root: str = "/"  # its file system
    ovs_rundir: str | None = None  # its Open vSwitch's run directory
    hostname: str | None = None  # override what the node says

    @classmethod
    def from_vars(cls, v: dict | None, default: "NodeView") -> "NodeView":
        """A node's view from its inventory variables (whynoip_netns, whynoip_root,
        whynoip_ovs_rundir, whynoip_hostname), else `default`'s."""
        if not v:
            return cls(default.netns, default.root, default.ovs_rundir, None)
        return cls(v.get("whynoip_netns", default.netns), v.get("whynoip_root", default.root),
                   v.get("whynoip_ovs_rundir", default.ovs_rundir), v.get("whynoip_hostname"))

    def path(self, p: str) -> str:
        return p if self.root in ("", "/") else self.root.rstrip("/") + p

    def own_namespace(self, name: str) -> str | None:
        """The name the node knows a namespace of this machine by, or None when it is not the node's."""
        if self.netns is None:
            return name
        prefix = self.netns + "-"
        return name[len(prefix):] if name.startswith(prefix) and len(name) > len(prefix) else None


@dataclass
class Rewriter:
    """Shows paths and namespace names as the node itself knows them."""

    subs: list[tuple[re.Pattern, str | Callable]] = field(default_factory=list)

    @classmethod
    def for_view(cls, view: NodeView) -> "Rewriter":
        rw = cls()
        if view.root not in ("", "/"):
            root = re.escape(view.root.rstrip("/"))
            rw.subs.append((re.compile(root + r"(?=/)"), ""))
            rw.subs.append((re.compile(root + r"(?![\w.-])"), "/"))
        if view.netns:
            ns = re.escape(view.netns)
            # the peer of a veth in one of the node's namespaces is the node's own root namespace
            rw.subs.append((re.compile(r"link-netns " + ns + r"(?![\w-])"), "link-netnsid 0"))
            rw.subs.append((re.compile(r"(?<![\w-])" + ns + r"-(?=[\w])"), ""))
        return rw

    def text(self, s: str) -> str:
        for rx, repl in self.subs:
            s = rx.sub(repl, s)
        return s


# --- one node ------------------------------------------------------------------------------------

@dataclass(slots=True)
class Command:
    plugin: str
    argv: list[str]  # what runs
    shown: str  # the command as the node would run it (names the file)
    netns: str | None = None  # runs inside this namespace
    env: dict[str, str] | None = None
    timeout: float | None = None
    keep: Callable[[str], str] | None = None  # a filter of the output
    hidden: bool = False  # run for the collection's own use: neither written nor logged


@dataclass
class NodeReport:
    label: str
    host: str | None = None
    dir: Path | None = None
    commands: int = 0
    missing: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    error: str | None = None


class NodeCollector:
    """Collects one node into `<out>/<host>/`."""

    def __init__(self, node: Node, view: NodeView, out: Path, *, timeout: float = DEFAULT_TIMEOUT,
                 log_limit: int = LOG_LIMIT, journal_lines: int = JOURNAL_LINES):
        self.node = node
        self.view = view
        self.out = out
        self.timeout = timeout
        self.log_limit = log_limit
        self.journal_lines = journal_lines
        self.rw = Rewriter.for_view(view)
        self.report = NodeReport(node.label)
        self.log: list[str] = []
        self.base: Path | None = None
        self.tools: set[str] = set()

    # running and writing

    def _write(self, rel: str, data: bytes | str, config: bool = False) -> None:
        text = data.decode("utf-8", errors="surrogateescape") if isinstance(data, bytes) else data
        text = self.rw.text(text)
        text = mask_config(text) if config else redact(text)
        dest = self.base / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        raw = text.encode("utf-8", errors="surrogateescape")
        dest.write_bytes(raw)
        self.report.files += 1
        self.report.bytes += len(raw)

    def _note(self, what: str, r: Result | None = None, status: str | None = None) -> None:
        status = status or (r.status if r else "ok")
        secs = f"{r.seconds:.2f}s" if r else "-"
        self.log.append(f"{status:<10} {secs:>7}  {self.rw.text(what)}")

    async def command(self, c: Command) -> str | None:
        """Run one command and write its output; the text when it succeeded, else None."""
        return (await self.commands([c]))[0]

    async def commands(self, cmds: list[Command]) -> list[str | None]:
        """Run the commands (at once, as the node allows) and write their outputs; for each,
        its text when it succeeded, else None."""
        texts: list[str | None] = [None] * len(cmds)
        runnable = []
        for i, c in enumerate(cmds):
            if c.argv[0] not in self.tools:
                self.report.missing.append(c.shown)
                self._note(c.shown, status="missing")
            else:
                runnable.append(i)
        jobs = [Job(["ip", "netns", "exec", cmds[i].netns, *cmds[i].argv] if cmds[i].netns else list(cmds[i].argv),
                    cmds[i].timeout or self.timeout, cmds[i].env) for i in runnable]
        results = await self.node.run_many(jobs, NODE_PARALLEL)
        for i, r in zip(runnable, results):  # in order: a hidden command's output may serve the next ones
            if cmds[i].hidden:
                text = r.out.decode("utf-8", errors="surrogateescape") if r.rc == 0 else ""
                texts[i] = cmds[i].keep(text) if cmds[i].keep else text
            else:
                texts[i] = self._finish(cmds[i], r)
        return texts

    def _finish(self, c: Command, r: Result) -> str | None:
        self.report.commands += 1
        self._note(c.shown, r)
        if r.missing:
            self.report.missing.append(c.shown)
            return None
        if r.timed_out:
            self.report.timed_out.append(c.shown)
        # as sosreport: a failed command leaves its error output in its file
        data = r.out if r.rc == 0 else r.out + r.err
        if r.timed_out:
            data += f"\n{c.argv[0]}: timed out after {c.timeout or self.timeout:g}s\n".encode()
        text = data.decode("utf-8", errors="surrogateescape")
        if c.keep is not None and r.rc == 0:
            text = c.keep(text)
        self._write(f"sos_commands/{c.plugin}/{sos_name(self.rw.text(c.shown))}", text)
        return text if r.rc == 0 else None

    async def copy_many(self, paths: list[str], limit: int | None, config: bool = False) -> list[str]:
        """Copy the node's files (paths as the node sees them); those copied."""
        real = {self.view.path(p): p for p in paths}
        got = await self.node.read_many(list(real), limit)
        done = []
        for rp, data in got.items():
            path = real[rp]
            if b"\0" in data[:8192]:  # binary (a journal file, a database): not evidence we read
                continue
            shown = self.rw.text(path)
            self._write(shown.lstrip("/"), data, config=config)
            self._note(f"copy {shown}" + (f" (last {limit} bytes)" if limit and len(data) >= limit else ""))
            done.append(path)
        return sorted(done)

    # the node

    async def collect(self) -> NodeReport:
        start = time.monotonic()
        view = self.view
        self.tools = await self.node.which(TOOLS + ("python3",))
        if isinstance(self.node, SshNode):
            if "timeout" not in self.tools:
                raise NodeError(f"{self.node.label}: coreutils `timeout` is missing there; commands could not be "
                                f"bounded")
            self.node.has_python = "python3" in self.tools
        # what the node is called, its namespaces, its Open vSwitch: at once
        rundir = view.path("/run/openvswitch")
        tops = [view.path(d) for d in CONFIG_DIRS + LOG_DIRS + STATE_DIRS + ("/var/lib/neutron/dhcp",)]
        host, listed, sock, booted, files = await asyncio.gather(
            self._hostname(), self.node.run(["ip", "netns", "list"], timeout=10),
            self.node.run(["test", "-S", rundir + "/db.sock"], timeout=5),
            self.node.run(["test", "-d", "/run/systemd/system"], timeout=5),
            self.node.files_many(tops + [view.path(f) for f in SYSLOG_FILES]))
        prefix = view.path("/").rstrip("/")
        files = [p[len(prefix):] if prefix and p.startswith(prefix) else p for p, _ in files]
        self.report.host = host
        self.base = self.out / host
        if (self.base / "sos_commands").exists():
            raise CollectError(f"{self.base} holds a collection already (two nodes named {host}?)")
        all_ns = _ns_names(listed.out.decode(errors="replace")) if "ip" in self.tools and listed.rc == 0 else []
        if view.netns and "ip" in self.tools and view.netns not in all_ns:
            raise CollectError(f"--netns {view.netns}: no such network namespace on {self.node.label}")
        self.base.mkdir(parents=True, exist_ok=True)
        if view.ovs_rundir is None and view.root not in ("", "/") and sock.rc == 0:
            view.ovs_rundir = rundir

        mine = {ns: view.own_namespace(ns) for ns in all_ns}
        mine = {real: shown for real, shown in mine.items() if shown}
        qdhcp = {real: shown for real, shown in mine.items() if shown.startswith("qdhcp-")}
        ns = view.netns
        ovs_env = {"OVS_RUNDIR": view.ovs_rundir} if view.ovs_rundir else None

        cmds = [Command("networking", c.split(), c, ns) for c in
                ("ip addr", "ip -d address", "ip link", "ip route", "brctl show")]
        cmds.append(Command("networking", ["ip", "netns", "list"], "ip netns", ns,
                            keep=lambda t: _keep_namespaces(t, view)))
        for real, shown in sorted(qdhcp.items(), key=lambda x: x[1]):
            for c in ("ip address show", "ss -lunp", "iptables-save -c"):
                cmds.append(Command("networking", c.split(), f"ip netns exec {shown} {c}", real))
        cmds += [Command("openvswitch", ["ovs-vsctl", "-t", str(OVS_TIMEOUT)] + c.split(),
                         f"ovs-vsctl -t {OVS_TIMEOUT} {c}", ns, ovs_env) for c in ("show", "list interface", "list-br")]
        cmds += [Command("firewall_tables", ["iptables-save", "-c"], "iptables-save -c", ns),
                 Command("firewall_tables", ["iptables", "-t", "filter", "-nvL"], "iptables -t filter -nvL", ns),
                 Command("date", ["date"], "date"), Command("date", ["date", "--utc"], "date --utc"),
                 Command("dpkg", ["dpkg", "-l"], "dpkg -l", keep=_keep_dpkg),
                 Command("rpm", ["rpm", "-qa"], "rpm -qa", keep=_keep_rpm)]
        if "systemctl" in self.tools and view.netns is None and booted.rc == 0:
            cmds.append(Command("systemd", ["systemctl", "list-units", "--all", "--no-pager"],
                                "systemctl list-units --all --no-pager"))
        if view.netns is None:
            cmds += [Command("pacemaker", ["pcs", "status"], "pcs status"),
                     Command("pacemaker", ["crm_mon", "-1"], "crm_mon -1")]
            if "rabbitmqctl" in self.tools:  # each starts an Erlang VM: a longer time limit
                cmds += [Command("rabbitmq", ["rabbitmqctl", c], f"rabbitmqctl {c}", timeout=max(self.timeout, 30))
                         for c in ("status", "cluster_status")]

        # process and filesys show the node's own processes and mounts: on a machine that holds
        # other nodes, the processes inside its namespaces or running from its root
        shared = bool(view.netns) or view.root not in ("", "/")
        pids: set[int] = set()
        if shared:
            cmds = self._pid_commands(list(qdhcp), pids) + cmds
        for c in ("ps auxwwwm", "ps -ef"):
            cmds.append(Command("process", c.split(), c, keep=(lambda t: _keep_pids(t, pids)) if shared else None))
        if not set(files) & set(SYSLOG_FILES) and "journalctl" in self.tools and view.netns is None \
                and view.root in ("", "/"):  # (the journal is this machine's, not that of a node under --root)
            n = str(self.journal_lines)
            cmds.append(Command("logs", ["journalctl", "--no-pager", "-n", n], f"journalctl --no-pager -n {n}"))
        cmds.append(Command("filesys", ["df", "-al"], "df -al",
                            keep=(lambda t: _keep_mounts(t, view, qdhcp)) if view.root not in ("", "/") else None))

        outputs = await self.commands(cmds)
        by_shown = {c.shown: o for c, o in zip(cmds, outputs) if not c.hidden}
        bridges = (by_shown.get(f"ovs-vsctl -t {OVS_TIMEOUT} list-br") or "").split()
        bridges = [b for b in bridges if re.fullmatch(r"[\w.-]+", b)]
        await asyncio.gather(
            self.commands([Command("openvswitch", ["ovs-ofctl", verb, br], f"ovs-ofctl {verb} {br}", ns, ovs_env)
                           for br in bridges for verb in ("dump-flows", "show")]),
            self._hostname_file(host), self.files(files, by_shown.get("ps auxwwwm") or ""))
        (self.base / "sos_logs").mkdir(exist_ok=True)
        (self.base / "sos_logs" / "whynoip-collect.log").write_text(
            f"whynoip collect of {self.node.label} as {host}\n" + "\n".join(self.log) + "\n")
        self.report.dir = self.base
        self.report.seconds = time.monotonic() - start
        return self.report

    async def _hostname(self) -> str:
        name = self.view.hostname
        if not name and self.view.root not in ("", "/"):
            data = await self.node.read(self.view.path("/etc/hostname"), 256)
            name = (data or b"").decode(errors="replace").strip()
        if not name and "hostname" in self.tools:
            r = await self.node.run(["hostname"], timeout=5)
            name = r.out.decode(errors="replace").strip() if r.rc == 0 else ""
        name = name.split()[0] if name else ""
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", name) or name in ("api", "guests"):
            name = re.sub(r"[^A-Za-z0-9._-]", "_", self.node.label) or "node"
        return name

    async def _hostname_file(self, host: str) -> None:
        # `hostname` as the node answers it (a node in a namespace shares this machine's UTS name)
        if self.view.root not in ("", "/") or self.view.hostname:
            self._write("sos_commands/host/hostname", host + "\n")
        else:
            await self.command(Command("host", ["hostname"], "hostname"))

    def _pid_commands(self, namespaces: list[str], pids: set[int]) -> list[Command]:
        """Hidden commands that fill `pids` with the node's processes as their outputs are
        read (they come first in a batch, so the ps filters after them see the set full)."""
        def add_ns(text: str) -> str:
            pids.update(int(p) for p in text.split() if p.isdigit())
            return text

        def add_root(text: str) -> str:
            needle = self.view.root.rstrip("/") + "/"
            for line in text.splitlines():
                pid, _, args = line.strip().partition(" ")
                if needle in args and pid.isdigit() and int(pid) != os.getpid():
                    pids.add(int(pid))
            return text

        spaces = ([self.view.netns] if self.view.netns else []) + namespaces
        cmds = [Command("", ["ip", "netns", "pids", n], "", hidden=True, keep=add_ns) for n in spaces]
        if self.view.root not in ("", "/"):
            cmds.append(Command("", ["ps", "-eo", "pid=,args="], "", hidden=True, keep=add_root))
        return cmds

    async def files(self, found: list[str], ps_text: str) -> None:
        """The node's configuration, logs and DHCP state (`found`: the files listed under
        the directories that hold them), read in one go per kind."""
        found = [p for p in found if not ROTATED.search(p.rsplit("/", 1)[-1])]
        configs = [p for p in found if p.startswith(CONFIG_DIRS)] + list(CONFIG_FILES)
        dhcp = [p for p in found if p.startswith("/var/lib/neutron/dhcp/") and p.rsplit("/", 1)[-1] in DHCP_FILES]
        state = [p for p in found if p.startswith(STATE_DIRS)] + list(STATE_FILES)
        logs = [p for p in found if p.startswith(LOG_DIRS) or p in SYSLOG_FILES]
        # dnsmasq logging somewhere of its own (--log-facility=FILE)
        root = self.view.root.rstrip("/")
        for path in sorted(set(re.findall(r"--log-facility=(/\S+)", ps_text))):
            node_path = path[len(root):] if root and path.startswith(root + "/") else path
            if not node_path.startswith(LOG_DIRS):
                logs.append(node_path)
        await asyncio.gather(self.copy_many(configs, FILE_LIMIT, config=True), self.copy_many(dhcp + state, FILE_LIMIT),
                             self.copy_many(logs, self.log_limit))


def _ns_names(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if line.strip()]


def _keep_namespaces(text: str, view: NodeView) -> str:
    if view.netns is None:
        return text
    out = []
    for line in text.splitlines():
        parts = line.split()
        if parts and view.own_namespace(parts[0]):
            out.append(line)
    return "".join(line + "\n" for line in out)


def _keep_pids(text: str, pids: set[int]) -> str:
    from whynoip.lab.collect import filter_ps
    return filter_ps(text, pids)


def _keep_dpkg(text: str) -> str:
    """`dpkg -l`: its header and the packages that matter here."""
    out = []
    header = True
    for line in text.splitlines():
        if header:
            out.append(line)
            header = not line.startswith("+++-")
            continue
        parts = line.split()
        if len(parts) > 1 and PACKAGES.search(parts[1]):
            out.append(line)
    return "".join(line + "\n" for line in out)


def _keep_rpm(text: str) -> str:
    return "".join(line + "\n" for line in text.splitlines() if PACKAGES.search(line))


def _keep_mounts(text: str, view: NodeView, qdhcp: dict[str, str]) -> str:
    """`df -al` as the node sees it: its own mounts (under its root), its namespaces,
    and none of the other nodes sharing this machine."""
    root = view.root.rstrip("/")
    top = "/" + root.strip("/").split("/")[0] if root else "/"
    lines = text.splitlines()
    if not lines:
        return text
    out = [lines[0]]
    for line in lines[1:]:
        parts = line.split()
        if len(parts) < 6:
            continue
        mnt = parts[-1]
        if mnt == root or mnt.startswith(root + "/"):
            out.append(line)
        elif mnt.startswith("/run/netns/"):
            if mnt[len("/run/netns/"):] in qdhcp:
                out.append(line)
        elif mnt == "/" or not (mnt == top or mnt.startswith(top + "/")):
            out.append(line)
    return "".join(line + "\n" for line in out)


# --- the API view --------------------------------------------------------------------------------

def api_credentials() -> bool:
    """Whether openstacksdk would find a cloud: OS_* variables or a clouds.yaml."""
    if os.environ.get("OS_CLOUD") or os.environ.get("OS_AUTH_URL"):
        return True
    places = [Path.cwd() / "clouds.yaml", Path.home() / ".config/openstack/clouds.yaml",
              Path("/etc/openstack/clouds.yaml")]
    if os.environ.get("OS_CLIENT_CONFIG_FILE"):
        places.insert(0, Path(os.environ["OS_CLIENT_CONFIG_FILE"]))
    return any(p.is_file() for p in places)


# --- the bundle ----------------------------------------------------------------------------------

@dataclass
class CollectResult:
    out: Path  # the directory or tarball written
    nodes: list[NodeReport]
    api: str | None = None  # what happened to the API view

    @property
    def failed(self) -> list[NodeReport]:
        return [n for n in self.nodes if n.error]


README = """Evidence collected by whynoip collect, {when}.

{nodes}
Each node directory is laid out like a sosreport of that node: what each command printed
under sos_commands, copies of its configuration, logs and DHCP files beside, and in sos_logs
the status of every command that was run, missing or timed out. The api directory, when
present, holds the cloud as the openstack client prints it. Secrets were masked before
anything was written. Read it with whynoip diagnose.
"""


async def collect_nodes(targets: list[tuple[Node | SshTarget, NodeView]], out: Path, *, concurrency: int = 8,
                        timeout: float = DEFAULT_TIMEOUT, log_limit: int = LOG_LIMIT,
                        ssh: SshOptions | None = None, progress: Callable[[str], None] | None = None) -> list[NodeReport]:
    """Collect every target into `out` (a directory), at most `concurrency` nodes at once."""
    sem = asyncio.Semaphore(max(1, concurrency))
    say = progress or (lambda s: None)

    async def one(target, view: NodeView) -> NodeReport:
        async with sem:
            label = target.label
            node = None
            try:
                node = target if isinstance(target, Node) else await SshNode.connect(target, ssh or SshOptions())
                c = NodeCollector(node, view, out, timeout=timeout, log_limit=log_limit)
                rep = await c.collect()
                say(f"{label}: {rep.host}: {rep.commands} commands, {rep.files} files, {rep.bytes // 1024} KiB "
                    f"in {rep.seconds:.1f}s" + (f"; missing: {len(rep.missing)}" if rep.missing else "")
                    + (f"; timed out: {', '.join(rep.timed_out)}" if rep.timed_out else ""))
                return rep
            except WhynoipError as e:
                say(str(e) if str(e).startswith(label) else f"{label}: {e}")
                return NodeReport(label, error=str(e))
            finally:
                if node is not None and node is not target:
                    await node.close()

    return list(await asyncio.gather(*(one(t, v) for t, v in targets)))


def write_readme(out: Path, reports: list[NodeReport], api: str | None) -> None:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    lines = []
    for r in reports:
        if r.error:
            lines.append(f"Node {r.label} was not collected: {r.error}.")
        else:
            lines.append(f"Node {r.host} was collected from {r.label}: {r.commands} commands and {r.files} files.")
    if api:
        lines.append(f"The API view: {api}.")
    text = README.format(when=when, nodes="\n".join(lines) + "\n")
    readme = out / "README"
    if readme.exists():  # several collections into one directory: one README for all
        text = readme.read_text() + "\n" + text
    readme.write_text(text)


def output_kind(output: str | None) -> str:
    if output == "-":
        return "stdout"
    if output is None or output.endswith((".tar.gz", ".tgz")):
        return "tar"
    return "dir"


def default_output() -> str:
    return f"whynoip-collect-{datetime.now().strftime('%Y%m%d-%H%M%S')}.tar.gz"


def collect(targets: list[tuple[Node | SshTarget, NodeView]], output: str | None, *, concurrency: int = 8,
            timeout: float = DEFAULT_TIMEOUT, log_limit: int = LOG_LIMIT, ssh: SshOptions | None = None,
            api: bool | None = None, progress: Callable[[str], None] | None = None) -> CollectResult:
    """Collect the nodes (and the API view when `api`, or when credentials exist and `api`
    is None) into `output`: a `.tar.gz`, a directory (created, or one that holds earlier
    collections: the new nodes are added beside them), or `-` (a .tar.gz on stdout)."""
    kind = output_kind(output)
    output = output or default_output()
    if kind == "tar" and Path(output).exists():
        raise CollectError(f"{output} exists")
    if kind == "dir" and Path(output).exists() and not Path(output).is_dir():
        raise CollectError(f"{output} exists and is not a directory")
    tmp = None
    if kind == "dir":
        out = Path(output)
        out.mkdir(parents=True, exist_ok=True)
    else:
        parent = Path(output).parent if kind == "tar" else Path(tempfile.gettempdir())
        parent.mkdir(parents=True, exist_ok=True)
        tmp = tempfile.TemporaryDirectory(prefix=".whynoip-collect-", dir=parent)
        out = Path(tmp.name) / _bundle_name(output)
        out.mkdir()
    try:
        reports = asyncio.run(collect_nodes(targets, out, concurrency=concurrency, timeout=timeout,
                                            log_limit=log_limit, ssh=ssh, progress=progress))
        api_note = None
        if api or (api is None and api_credentials()):
            from whynoip.live import api as apiview
            api_note = apiview.write(out / "api", timeout=timeout)
            if progress:
                progress(f"api: {api_note}")
        write_readme(out, reports, api_note)
        if kind == "dir":
            return CollectResult(out, reports, api_note)
        if kind == "stdout":
            buf = sys.stdout.buffer
            with tarfile.open(fileobj=buf, mode="w|gz") as tf:
                tf.add(out, arcname=out.name)
            buf.flush()
            return CollectResult(Path("-"), reports, api_note)
        with tarfile.open(output, "w:gz") as tf:
            tf.add(out, arcname=out.name)
        return CollectResult(Path(output), reports, api_note)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _bundle_name(output: str) -> str:
    name = Path(output).name if output != "-" else "whynoip-collect"
    for suffix in (".tar.gz", ".tgz"):
        if name.endswith(suffix):
            return name[: -len(suffix)] or "whynoip-collect"
    return name


# --- inventories ---------------------------------------------------------------------------------

def read_inventory(path: str) -> list[SshTarget]:
    """The hosts of an Ansible inventory (INI or YAML) or a plain list (one `[user@]host[:port]`
    a line): each with its `ansible_host`, `ansible_user`, `ansible_port` when given."""
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise CollectError(f"--inventory {path}: {e.strerror}") from e
    stripped = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith(("#", ";"))]
    if stripped and (stripped[0].rstrip().endswith(":") or stripped[0].startswith(("all:", "---"))):
        return _yaml_inventory(text, path)
    targets: dict[str, SshTarget] = {}
    section_vars = False
    for n, line in enumerate(stripped, 1):
        line = line.strip()
        if line.startswith("["):
            section_vars = line.endswith(":vars]") or line.endswith(":children]")
            continue
        if section_vars:
            continue
        words = shlex.split(line, comments=True)
        if not words:
            continue
        name, kv = words[0], dict(w.split("=", 1) for w in words[1:] if "=" in w)
        if "[" in name and ":" in name.split("[", 1)[1]:
            raise CollectError(f"--inventory {path}: host ranges like {name} are not supported; list the hosts")
        try:
            t = SshTarget.parse(name) if "ansible_host" not in kv else SshTarget(kv["ansible_host"])
        except WhynoipError as e:
            raise CollectError(f"--inventory {path}:{n}: {e}") from e
        t.user = kv.get("ansible_user") or t.user
        t.port = int(kv["ansible_port"]) if kv.get("ansible_port", "").isdigit() else t.port
        t.name = name
        t.vars = {k: v for k, v in kv.items() if k.startswith("whynoip_")} or None
        targets.setdefault(name, t)
    if not targets:
        raise CollectError(f"--inventory {path}: no hosts in it")
    return list(targets.values())


def _yaml_inventory(text: str, path: str) -> list[SshTarget]:
    import yaml
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise CollectError(f"--inventory {path}: not valid YAML: {str(e).splitlines()[0]}") from e
    targets: dict[str, SshTarget] = {}

    def walk(group) -> None:
        if not isinstance(group, dict):
            return
        for name, hv in (group.get("hosts") or {}).items():
            hv = hv or {}
            t = SshTarget(str(hv.get("ansible_host") or name), hv.get("ansible_user"),
                          int(hv["ansible_port"]) if hv.get("ansible_port") else None, str(name),
                          {k: str(v) for k, v in hv.items() if k.startswith("whynoip_")} or None)
            targets.setdefault(str(name), t)
        for child in (group.get("children") or {}).values():
            walk(child)

    if isinstance(data, dict):
        for group in data.values():
            walk(group)
    if not targets:
        raise CollectError(f"--inventory {path}: no hosts in it")
    return list(targets.values())
