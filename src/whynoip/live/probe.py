"""Probe: ask every DHCP server of a network, from a namespace on its segment, whether it
answers — as a guest asks: a broadcast DISCOVER, a REQUEST naming each server, a unicast
renewal and an INFORM to each server's address. Per server the verdict is `answers`,
`nak` (it replies, only to refuse) or `silent`, with the latency and the options offered.

Where it asks from (the *vantage*) is never the probed server's own namespace: a frame a
namespace sends never reaches its own dnsmasq. With several DHCP agents per network, each
server is probed from another agent's `qdhcp-<network>` namespace on this node, with that
DHCP port's MAC and address, which every server's host file knows. Where no other
namespace exists, the probe plugs a port of its own into br-int with the network's local
VLAN (a veth into a namespace it creates and removes), with a MAC that the lab's control
plane registers, or that the operator gives with `--mac` (and `--ip`) on a real node. A MAC
the servers do not know gets no OFFER (dnsmasq logs "no address available") but still a
NAK to a REQUEST naming the server and an answer to an INFORM: a server is judged alive by
those, and the unknown MAC is reported.

A server whose namespace is on this node is also watched on its own interface while it
is probed (a packet socket that only reads, as tcpdump on the qdhcp tap would): requests
that arrive and no reply that leaves is a dnsmasq that does not answer; no request
arriving, or replies leaving that never reach the vantage, is the path.

From this it draws findings with the doctor's ids: `dhcp-server-silent` for a known
server that answers nothing, and why: `dnsmasq-unresponsive` (alive — its PID passes the
DHCP agent's own check, which only looks for the PID — and reading without answering, or
stopped), `dnsmasq-not-running`, `dhcp-namespace-broken` (its port down or without
address), `l2-path-broken`; `udp-checksum-bad` for replies a client would drop,
`rogue-dhcp-server` for a server id that is no known DHCP port, `host-entry-missing` and
`dhcp-nak` for a known MAC refused.

Many networks are probed at once on one event loop: each vantage's sockets are opened
inside its namespace (setns on the calling thread, then back: 0.04 ms) and used from the
loop. Every wait is bounded: the exchanges of a network end within `--timeout`, after a
probe port (when one is needed) is plugged, which is bounded on its own.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import msgspec

from whynoip.findings import Evidence, Finding
from whynoip.live import dhcp_client as dc
from whynoip.live.dhcp_client import ProbeError, Reply

# a qdhcp namespace: Neutron's `qdhcp-<network id>`, or the lab's `wnp-<lab>-<node>-qdhcp-<id>`
QDHCP_RE = re.compile(r"(?:^|-)qdhcp-(?P<net>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
LAB_QDHCP_RE = re.compile(r"^wnp-(?P<lab>[a-z][a-z0-9]*)-(?P<node>[a-z][a-z0-9]*)-qdhcp-(?P<net>[0-9a-f-]{36})$")
PROBE_OWNER = "network:probe"  # the device_owner neutron-debug gave its probe ports
KINDS = ("discover", "request", "renew", "inform")
SENT = {"discover": "DISCOVER", "request": "REQUEST", "renew": "REQUEST (renew)", "inform": "INFORM"}


@dataclass(slots=True)
class Timing:
    timeout: float = 10.0  # the whole probe
    discover_wait: float = 1.0  # for OFFERs; static ranges (Neutron's) answer at once
    address_check: float = 3.0  # dnsmasq pings a dynamic address ~3 s before its first OFFER
    reply_wait: float = 1.0  # for the answer to a REQUEST, renewal or INFORM
    rogue_wait: float = 0.2  # listen at least this long for OFFERs from servers nobody knows
    retransmit: float = 0.25  # resend what is unanswered (a lost frame, a SIGHUP in progress), then 0.5, 1...


# --- results (the JSON contract: servers[{server, verdict, latency_ms, ...}]) -------------------

class Exchange(msgspec.Struct, kw_only=True):
    kind: str  # discover | request | renew | inform
    sent: int = 0  # transmissions; 0 when not sent (see note)
    reply: str | None = None  # OFFER | ACK | NAK
    latency_ms: float | None = None
    message: str | None = None  # the server's option 56: why it refused
    checksum_ok: bool | None = None  # the reply's UDP checksum (a DHCP client drops a wrong one)
    note: str | None = None


class Offered(msgspec.Struct, kw_only=True, omit_defaults=True):
    ip: str | None = None
    subnet_mask: str | None = None
    routers: list[str] = []
    dns_servers: list[str] = []
    domain: str | None = None
    mtu: int | None = None
    lease_time: int | None = None
    classless_routes: list[str] = []
    options: dict[str, str] = {}


class ServerResult(msgspec.Struct, kw_only=True):
    server: str
    verdict: str  # answers | nak | silent
    latency_ms: float | None  # the first answer's, in the order discover, request, renew, inform
    network: str | None = None
    known: bool  # a DHCP port of the network (or named with --server)
    mac: str | None = None  # the source MAC of its replies
    host: str | None = None  # where it runs, when that is known
    namespace: str | None = None
    interface: str | None = None
    vantage: str | None = None  # where it was probed from
    exchanges: list[Exchange] = []
    offered: Offered | None = None
    witness: Witness | None = None  # seen on the server's own interface, when it is on this node


class Witness(msgspec.Struct, kw_only=True):
    """What the server's own interface showed during the probe (a local server only)."""
    requests_reached: list[str]  # exchange kinds whose request reached the server
    replies_left: list[str]  # exchange kinds the server answered on the wire


class VantageInfo(msgspec.Struct, kw_only=True, omit_defaults=True):
    kind: str  # qdhcp | namespace | probe-port
    namespace: str | None
    interface: str
    mac: str
    ip: str | None = None
    host: str | None = None


class NetworkResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    network: str | None
    servers: list[ServerResult] = []
    findings: list[Finding] = []
    vantages: list[VantageInfo] = []
    mac_known: bool | None = None  # whether the probe's MAC is a port the servers should know
    seconds: float = 0.0
    notes: list[str] = []


# --- what runs on this node -----------------------------------------------------------------

@dataclass(slots=True)
class DnsmasqProcess:
    pid: int
    state: str  # /proc/<pid>/stat: R, S, T (stopped), Z...
    argv: list[str]

    @property
    def dynamic(self) -> bool:
        """It pings an address before offering it (a range that is not `static`, no --no-ping)."""
        from whynoip.parsers._dnsmasq_cmdline import parse_cmdline
        fields = parse_cmdline(self.argv)
        if "--no-ping" in self.argv:
            return False
        return any("static" not in r.split(",") for r in fields["dhcp_ranges"])

    def rx_queue_67(self) -> int | None:
        """Bytes waiting unread on its DHCP socket (a frozen dnsmasq's queue grows)."""
        try:
            with open(f"/proc/{self.pid}/net/udp") as f:
                for line in f.readlines()[1:]:
                    cols = line.split()
                    if cols[1].endswith(":0043"):
                        return int(cols[4].split(":")[1], 16)
        except (OSError, IndexError, ValueError):
            return None
        return None


def dnsmasq_by_namespace() -> dict[int, list[DnsmasqProcess]]:
    """Every dnsmasq on this machine, by the inode of its network namespace."""
    out: dict[int, list[DnsmasqProcess]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                if f.read().strip() != "dnsmasq":
                    continue
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
            with open(f"/proc/{entry}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except (OSError, IndexError):
            continue
        out.setdefault(ino, []).append(DnsmasqProcess(int(entry), state, argv))
    return out


def namespace_inode(ns: str) -> int | None:
    try:
        return os.stat(dc.namespace_path(ns)).st_ino
    except OSError:
        return None


def qdhcp_namespaces() -> dict[str, list[str]]:
    """network id -> the namespaces on this node whose names end in `qdhcp-<id>`."""
    try:
        names = sorted(os.listdir(dc.NETNS_DIR))
    except FileNotFoundError:
        return {}
    out: dict[str, list[str]] = {}
    for ns in names:
        m = QDHCP_RE.search(ns)
        if m:
            out.setdefault(m["net"], []).append(ns)
    return out


@dataclass(slots=True)
class LocalServer:
    """A DHCP server whose namespace is on this node."""
    ip: str
    prefixlen: int | None
    namespace: str
    interface: str
    mac: str
    host: str | None
    up: bool = True
    processes: list[DnsmasqProcess] = field(default_factory=list)


def local_servers(namespaces: list[str], procs: dict[int, list[DnsmasqProcess]]) -> list[LocalServer]:
    out = []
    for ns in namespaces:
        m = LAB_QDHCP_RE.match(ns)
        host = m["node"] if m else socket.gethostname()
        try:
            with dc.in_namespace(ns):
                ifs = dc.interfaces()
        except ProbeError:
            continue
        ino = namespace_inode(ns)
        for i in ifs:
            if i.ip:
                out.append(LocalServer(i.ip, i.prefixlen, ns, i.name, i.mac, host, i.up, procs.get(ino, [])))
    return out


# --- vantages ---------------------------------------------------------------------------------

@dataclass(slots=True)
class Vantage:
    """Where probes are sent from: a namespace, an interface in it, the MAC and address used."""
    kind: str  # qdhcp | namespace | probe-port
    namespace: str | None
    interface: str
    mac: str
    ip: str | None
    mac_known: bool | None
    host: str | None = None
    own: frozenset[str] = frozenset()  # server addresses in this namespace: never probed from here
    release: bool = False  # give back the leases it gets (a probe port's own)

    @property
    def label(self) -> str:
        where = f"{self.host} " if self.host else ""
        return f"{where}{self.namespace or '(host)'} {self.interface}"

    def info(self) -> VantageInfo:
        return VantageInfo(kind=self.kind, namespace=self.namespace, interface=self.interface, mac=self.mac,
                           ip=self.ip, host=self.host)


def namespace_vantage(ns: str, interface: str, host: str | None = None) -> Vantage:
    with dc.in_namespace(ns):
        ifs = {i.name: i for i in dc.interfaces()}
    if interface not in ifs:
        raise ProbeError(f"no interface {interface!r} in namespace {ns} (there: {', '.join(ifs) or 'none'})")
    i = ifs[interface]
    if not i.up:
        raise ProbeError(f"interface {interface} in namespace {ns} is down")
    qdhcp = bool(QDHCP_RE.search(ns))
    m = LAB_QDHCP_RE.match(ns)
    own = frozenset(x.ip for x in ifs.values() if x.ip)
    return Vantage("qdhcp" if qdhcp else "namespace", ns, interface, i.mac, i.ip, mac_known=True if qdhcp else None,
                   host=host or (m["node"] if m else None), own=own)


def _random_mac() -> str:
    return "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))


def _run(argv: list[str], ns: str | None = None, env: dict | None = None, check: bool = True):
    from whynoip.lab import sh  # runs a tool with a bounded time and one clear error
    return sh.run(argv, ns, env=env, check=check, timeout=10)


class ProbePort:
    """A port of the probe's own on br-int: a namespace with a veth whose peer sits on br-int
    with the network's local VLAN tag (as a VM's would, without the firewall), no
    `iface-id` so that an OVS agent leaves it alone. Removed by `close`."""

    def __init__(self, namespace: str, node_ns: str | None, ovs_env: dict | None, tag: int, mac: str,
                 ip: str | None, prefixlen: int | None, host: str | None):
        self.namespace = namespace
        self.node_ns = node_ns
        self.ovs_env = ovs_env
        self.tag = tag
        self.mac = mac
        self.ip = ip
        self.prefixlen = prefixlen
        self.host = host
        self.bridge_port = "wnpp" + os.urandom(4).hex()
        self.created = False
        self.registered = None  # the control-plane port that made its MAC known (a lab's)

    def _vsctl(self, *args: str, check: bool = True):
        return _run(["ovs-vsctl", "--timeout=10", *args], self.node_ns, env=self.ovs_env, check=check)

    def open(self) -> None:
        """Plug it (blocking: a few `ip` and `ovs-vsctl` calls)."""
        self.created = True
        _run(["ip", "netns", "add", self.namespace])
        _run(["ip", "-n", self.namespace, "link", "set", "lo", "up"])
        peer = ["netns", self.node_ns] if self.node_ns else []
        _run(["ip", "link", "add", "eth0", "netns", self.namespace, "address", self.mac, "type", "veth",
              "peer", "name", self.bridge_port, *peer])
        # the kernel leaves UDP checksums to the NIC; a userspace OVS never fills them in
        _run(["ethtool", "-K", "eth0", "tx", "off"], self.namespace, check=False)
        _run(["ethtool", "-K", self.bridge_port, "tx", "off"], self.node_ns, check=False)
        self._vsctl("--may-exist", "add-port", "br-int", self.bridge_port, f"tag={self.tag}")
        _run(["ip", "link", "set", self.bridge_port, "up"], self.node_ns)
        if self.ip:
            _run(["ip", "-n", self.namespace, "addr", "add", f"{self.ip}/{self.prefixlen or 32}", "dev", "eth0"])
        _run(["ip", "-n", self.namespace, "link", "set", "eth0", "up"])

    def close(self) -> None:
        if not self.created:
            return
        self._vsctl("--if-exists", "del-port", "br-int", self.bridge_port, check=False)
        _run(["ip", "link", "del", self.bridge_port], self.node_ns, check=False)
        _run(["ip", "netns", "del", self.namespace], check=False)
        self.created = False

    def vantage(self, mac_known: bool | None) -> Vantage:
        return Vantage("probe-port", self.namespace, "eth0", self.mac, self.ip, mac_known=mac_known,
                       host=self.host, release=True)


# --- segments: what is known of a network beyond this node's namespaces ------------------------

class HostSegment:
    """A network on a real node: the known servers are the local ones and those named with
    --server; a probe port goes on the host's br-int."""

    authoritative = False

    def __init__(self, network: str | None, servers: list[LocalServer], declared: list[str]):
        self.network = network
        self.local = servers
        self.known = {s.ip for s in servers} | set(declared)
        if declared:
            self.authoritative = True
        self.node_ns: str | None = None
        self.ovs_env: dict | None = None

    def where(self, ip: str) -> tuple[str | None, str | None, str | None]:
        for s in self.local:
            if s.ip == ip:
                return s.host, s.namespace, s.interface
        return None, None, None

    def local_vlan(self) -> int:
        """The tag of the first local DHCP port on br-int (Neutron: `tap<id>`, also when
        the namespace holds `ns-<id>` with ovs_use_veth)."""
        for s in self.local:
            bridge_port = "tap" + s.interface[3:]
            out = _run(["ovs-vsctl", "--timeout=10", "get", "Port", bridge_port, "tag"], self.node_ns,
                       env=self.ovs_env, check=False)
            tag = out.stdout.strip()
            if out.returncode == 0 and tag.isdigit():
                return int(tag)
        raise ProbeError(f"network {self.network}: no DHCP port of this node on br-int to take the local VLAN "
                         "from; pass --namespace NS --interface IF (a namespace on the segment)")

    async def open_port(self, mac: str | None, ip: str | None, prefixlen: int | None) -> tuple[ProbePort, bool | None]:
        tag = await asyncio.to_thread(self.local_vlan)
        port = ProbePort(f"whynoip-probe-{os.urandom(4).hex()}", self.node_ns, self.ovs_env, tag, mac or _random_mac(),
                         ip, prefixlen or (self.local[0].prefixlen if self.local else None), socket.gethostname())
        try:
            await asyncio.to_thread(port.open)
        except BaseException:
            await asyncio.to_thread(port.close)
            raise
        return port, (True if mac else False)

    async def close_port(self, port: ProbePort) -> None:
        await asyncio.to_thread(port.close)


class LabSegment:
    """A network of a lab on this machine: the lab's control plane names every DHCP port
    (so an unknown server id is certainly no Neutron port), and registers the probe
    port's MAC so that the agents put it into the host files, as Neutron would."""

    authoritative = True

    def __init__(self, lab, network: str, servers: list[LocalServer], dhcp_ports: list):
        self.lab = lab
        self.network = network
        self.local = servers
        self.ports = dhcp_ports  # the network's DHCP ports (control plane rows)
        self.known = {p.ip for p in dhcp_ports}

    def where(self, ip: str) -> tuple[str | None, str | None, str | None]:
        for s in self.local:
            if s.ip == ip:
                return s.host, s.namespace, s.interface
        for p in self.ports:
            if p.ip == ip:
                return p.binding_host, self.lab.paths.qdhcp_ns(p.binding_host, self.network), None
        return None, None, None

    async def open_port(self, mac: str | None, ip: str | None, prefixlen: int | None) -> tuple[ProbePort, bool | None]:
        lab, cp = self.lab, self.lab.cp
        node = (self.ports[0].binding_host if self.ports else lab.topology.network_nodes[0].name)
        sub = next((s for s in cp.subnets(self.network) if s.enable_dhcp), None)
        prefix = int(sub.cidr.split("/")[1]) if sub else 24
        registered = None
        if mac is None:
            registered = cp.create_port(self.network, name="whynoip-probe", device_owner=PROBE_OWNER,
                                        binding_host=node)
            mac, ip = registered.mac, registered.ip
        port = ProbePort(f"{lab.paths.prefix}probe-{os.urandom(3).hex()}", lab.paths.node_ns(node),
                         lab.ovs(node).env, cp.local_vlan(node, self.network), mac, ip, prefix, node)
        port.registered = registered
        try:
            await asyncio.to_thread(port.open)
            if registered:
                await self._wait_host_files(mac)
        except BaseException:
            await self.close_port(port)
            raise
        return port, True  # registered here, or given by the operator as a port's

    async def _wait_host_files(self, mac: str, timeout: float = 2.0) -> None:
        """Until the agents wrote the MAC into every server's host file (they then SIGHUP
        dnsmasq; the DISCOVER is resent a few times meanwhile). A stopped agent never
        does: the probe goes on and finds the MAC unknown."""
        files = [self.lab.paths.dhcp_dir(p.binding_host, self.network) / "host" for p in self.ports]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(_file_has(f, mac) for f in files):
                return
            await asyncio.sleep(0.02)

    async def close_port(self, port: ProbePort) -> None:
        if port.registered is not None and port.ip and port.created:
            # a server thawed after the last round may have leased the address meanwhile
            try:
                with dc.in_namespace(port.namespace):
                    us = dc.UnicastSocket(port.ip, "eth0")
                release(us, port.mac, port.ip, sorted(self.known))
                us.close()
            except (ProbeError, OSError):
                pass
        try:
            await asyncio.to_thread(port.close)
        finally:
            if port.registered is not None:
                self.lab.cp.delete_port(port.registered.id)
                port.registered = None


def _file_has(path, text: str) -> bool:
    try:
        return text in path.read_text()
    except OSError:
        return False


_CLOSER: ThreadPoolExecutor | None = None


def _closer() -> ThreadPoolExecutor:
    global _CLOSER
    if _CLOSER is None:
        _CLOSER = ThreadPoolExecutor(max_workers=64, thread_name_prefix="whynoip-close")
    return _CLOSER


# --- one round: one vantage, its targets ---------------------------------------------------------

@dataclass(slots=True)
class _Seen:
    """What one server did in one round."""
    exchanges: dict[str, Exchange] = field(default_factory=dict)
    first_offer: Reply | None = None  # OFFER or ACK with an address, for the options offered
    mac: str | None = None
    witnessed: bool = False  # a witness socket watched the server's own interface
    reached: set[str] = field(default_factory=set)  # kinds whose request reached its interface
    replied: set[str] = field(default_factory=set)  # kinds for which a reply left it


class Round:
    """Probe `targets` from `vantage`: DISCOVER, a REQUEST naming each server, then a
    renewal and an INFORM to each server's address (when the vantage has an address)."""

    def __init__(self, vantage: Vantage, targets: list[str], timing: Timing, deadline: float, dynamic: bool,
                 local: dict[str, LocalServer] | None = None):
        self.v = vantage
        self.targets = [t for t in targets if t not in vantage.own]
        # the targets whose interface is on this node get a witness
        self.local = {t: (local or {})[t] for t in self.targets if t in (local or {})}
        self.witnesses: dict[str, dc.WitnessSocket] = {}
        self.xids: dict[int, tuple[str, str | None]] = {}  # every xid sent: (kind, target)
        self.sent: dict[int, tuple[float, int]] = {}  # xid -> (its phase's start, transmissions)
        self.t = timing
        self.deadline = deadline
        self.dynamic = dynamic
        self.seen: dict[str, _Seen] = {t: _Seen() for t in self.targets}
        self.replies: list[Reply] = []
        self.wake: asyncio.Event | None = None

    def _on_readable(self) -> None:
        got = self.ps.read(time.monotonic())
        if got:
            self.replies.extend(got)
            self.wake.set()

    def _on_witness(self, server: str) -> None:
        seen = self.seen[server]
        for outgoing, m in self.witnesses[server].read_messages(time.monotonic()):
            sent = self.xids.get(m.xid)
            if sent is None:
                continue
            kind, target = sent
            if not outgoing and m.fields.get("op") == 1 and target in (None, server):
                seen.reached.add(kind)
            elif outgoing and m.fields.get("op") == 2:
                seen.replied.add(kind)

    def _open_witnesses(self, loop) -> None:
        for sid, ls in self.local.items():
            try:
                with dc.in_namespace(ls.namespace):
                    w = dc.WitnessSocket(ls.interface)
            except ProbeError:  # the namespace or its interface is gone: nothing to watch
                continue
            self.witnesses[sid] = w
            self.seen[sid].witnessed = True
            loop.add_reader(w.fileno(), self._on_witness, sid)

    async def run(self) -> dict[str, _Seen]:
        loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.us = None
        with dc.in_namespace(self.v.namespace):  # no await in here: the loop's thread is elsewhere
            self.ps = dc.PacketSocket(self.v.interface)
            try:
                self.us = dc.UnicastSocket(self.v.ip, self.v.interface) if self.v.ip else None
            except BaseException:
                self.ps.close()
                raise
        loop.add_reader(self.ps.fileno(), self._on_readable)
        try:
            self._open_witnesses(loop)
            await self._discover()
            await self._request()
            await self._unicast()
            self._release()
        finally:
            loop.remove_reader(self.ps.fileno())
            for sid, w in self.witnesses.items():
                self._on_witness(sid)  # what is still queued
                loop.remove_reader(w.fileno())
            # closing a packet socket waits for an RCU grace period (synchronize_net: ~13 ms
            # here); on worker threads the waits of many rounds overlap, and the loop runs on
            # (not awaited: the answer does not wait for them)
            for sock in [self.ps, *self.witnesses.values()] + ([self.us] if self.us else []):
                _closer().submit(sock.close)
        return self.seen

    # each phase: send, resend what is unanswered, collect until all answered or the window ends
    async def _phase(self, pending: dict[int, tuple[str, str | None, object]], window: float,
                     min_listen: float = 0.0) -> None:
        """pending: xid -> (kind, the server it is for or None for a broadcast to all,
        transmit()). A reply with a pending xid is filed under the server id it carries."""
        start = time.monotonic()
        end = min(start + window, self.deadline)
        sent = {xid: 0 for xid in pending}
        answered: set[int] = set()
        for xid, (kind, target, tx) in pending.items():
            self.xids[xid] = (kind, target)
            tx()
            sent[xid] += 1
            self.sent[xid] = (start, 1)
        gap = self.t.retransmit
        next_tx = start + gap
        while True:
            # replies to this phase, and late ones to an earlier phase (a slow server answers)
            for r in self.replies:
                if r.xid in self.xids:
                    began, count = self.sent[r.xid]
                    self._file(r, self.xids[r.xid][0], count, began)
            self.replies.clear()
            for xid, (kind, target, _tx) in pending.items():
                if target is not None:
                    if self._answered(target, kind):
                        answered.add(xid)
                elif self.targets:
                    if all(self._answered(t, kind) for t in self.targets):
                        answered.add(xid)
                elif any(self._answered(t, kind) for t in self.seen):
                    answered.add(xid)  # nobody expected: whoever answers, then the listening time
            now = time.monotonic()
            done = len(answered) == len(pending)
            if (done and now >= start + min_listen) or now >= end:
                break
            if now >= next_tx:
                for xid, (_kind, _target, tx) in pending.items():
                    if xid not in answered:
                        tx()
                        sent[xid] += 1
                        self.sent[xid] = (start, sent[xid])
                gap *= 2  # as clients back off: a frozen server is not flooded meanwhile
                next_tx += gap
            wake_at = min(end, start + min_listen) if done else min(end, next_tx)
            self.wake.clear()
            try:
                await asyncio.wait_for(self.wake.wait(), max(0.0, wake_at - time.monotonic()))
            except TimeoutError:
                pass
        for xid, (kind, target, _tx) in pending.items():  # what went unanswered
            for t in ([target] if target else self.targets):
                ex = self.seen.setdefault(t, _Seen()).exchanges
                if kind not in ex:
                    ex[kind] = Exchange(kind=kind, sent=sent[xid])

    def _share(self, window: float, later: float) -> float:
        """A phase's window, cut so that the phases still to come (`later`: their windows)
        get their share of the time left: a short --timeout shortens every phase in
        proportion, not only the last."""
        left = self.deadline - time.monotonic()
        return max(0.0, min(window, left * window / (window + later)))

    def _answered(self, server: str, kind: str) -> bool:
        s = self.seen.get(server)
        return bool(s and kind in s.exchanges and s.exchanges[kind].reply)

    def _file(self, r: Reply, kind: str, sent: int, start: float) -> None:
        sid = r.server_id
        seen = self.seen.setdefault(sid, _Seen())
        seen.mac = seen.mac or r.src_mac
        if not self._answered(sid, kind):
            seen.exchanges[kind] = Exchange(kind=kind, sent=sent, reply=r.message_type,
                                            latency_ms=round((r.at - start) * 1000, 2),
                                            message=r.fields.get("message"), checksum_ok=r.checksum_ok)
        if r.message_type in ("OFFER", "ACK") and r.fields.get("yiaddr") not in (None, "0.0.0.0"):
            seen.first_offer = seen.first_offer or r

    def _broadcast(self, msg: bytes):
        data = dc.frame(self.v.mac, msg)

        def send() -> None:
            try:
                self.ps.send(data)
            except OSError:  # the vantage's interface went down: nothing leaves, nothing answers
                pass
        return send

    async def _discover(self) -> None:
        xid = dc.new_xid()
        msg = dc.build(dc.DISCOVER, xid=xid, mac=self.v.mac)
        window = self.t.discover_wait + (self.t.address_check if self.dynamic else 0.0)
        await self._phase({xid: ("discover", None, self._broadcast(msg))},
                          self._share(window, 2 * self.t.reply_wait), self.t.rogue_wait)

    async def _request(self) -> None:
        offers = {sid: s.first_offer for sid, s in self.seen.items() if s.first_offer}
        any_offer = next(iter(offers.values()), None)
        pending = {}
        for sid in list(dict.fromkeys([*self.targets, *offers])):
            offer = offers.get(sid)
            # the address to ask for: this server's offer, the vantage's own, another's offer,
            # else any (an unknown MAC is refused whatever it asks: the NAK shows the server is alive)
            want = (offer.fields.get("yiaddr") if offer else None) or self.v.ip or \
                (any_offer.fields.get("yiaddr") if any_offer else None) or sid
            xid = dc.new_xid()
            msg = dc.build(dc.REQUEST, xid=xid, mac=self.v.mac, requested_ip=want, server_id=sid)
            pending[xid] = ("request", sid, self._broadcast(msg))
        if pending:
            await self._phase(pending, self._share(self.t.reply_wait, self.t.reply_wait))

    async def _unicast(self) -> None:
        servers = list(dict.fromkeys([*self.targets, *(s for s, x in self.seen.items() if x.exchanges)]))
        if not self.us:
            for sid in servers:
                for kind in ("renew", "inform"):
                    self.seen[sid].exchanges[kind] = Exchange(
                        kind=kind, note="not sent: the probe has no address of its own on the segment")
            return
        pending = {}
        for sid in servers:
            for kind, mtype in (("renew", dc.REQUEST), ("inform", dc.INFORM)):
                xid = dc.new_xid()
                msg = dc.build(mtype, xid=xid, mac=self.v.mac, ciaddr=self.v.ip, broadcast=False)
                pending[xid] = (kind, sid, lambda m=msg, s=sid: self._send_unicast(m, s))
        if pending:
            await self._phase(pending, self._share(self.t.reply_wait, 0.0))
        self.us.drain()

    def _send_unicast(self, msg: bytes, server: str) -> None:
        try:
            self.us.send(msg, server)
        except OSError:  # no route, no ARP answer yet: resent, and then silent
            pass

    def _release(self) -> None:
        """Give back the lease a probe port's own address may have got, at every server it
        asked (Neutron's agent runs dhcp_release for a deleted port; a lease left behind
        would keep the address from the next port that gets it). A RELEASE for no lease
        is ignored, so it goes to every server, also one that did not answer in time."""
        if self.v.release and self.us:
            release(self.us, self.v.mac, self.v.ip, [*self.targets, *(s for s in self.seen if s not in self.targets)])


def release(us: dc.UnicastSocket, mac: str, ip: str, servers: list[str]) -> None:
    for sid in servers:
        msg = dc.build(dc.RELEASE, xid=dc.new_xid(), mac=mac, ciaddr=ip, broadcast=False, server_id=sid)
        try:
            us.send(msg, sid)
        except OSError:
            pass


# --- one network -----------------------------------------------------------------------------

def verdict_of(exchanges: list[Exchange]) -> tuple[str, float | None]:
    replies = [e for e in exchanges if e.reply]
    if any(e.reply in ("OFFER", "ACK") for e in replies):
        verdict = "answers"
    elif replies:
        verdict = "nak"
    else:
        verdict = "silent"
    return verdict, (replies[0].latency_ms if replies else None)


def offered_of(r: Reply | None) -> Offered | None:
    if r is None:
        return None
    f = r.fields
    return Offered(ip=f.get("yiaddr"), subnet_mask=f.get("subnet_mask"), routers=f.get("routers", []),
                   dns_servers=f.get("dns_servers", []), domain=f.get("domain"), mtu=f.get("mtu"),
                   lease_time=f.get("lease_time"), classless_routes=f.get("classless_routes", []),
                   options={str(k): v for k, v in sorted(f.get("options", {}).items())})


class Prober:
    """Probes networks; keeps what outlives one probe (the /proc scan of one pass, the
    labs' control planes, probe ports a watcher reuses) and removes its ports on `close`."""

    def __init__(self, timing: Timing | None = None, servers: list[str] | None = None, mac: str | None = None,
                 ip: str | None = None, namespace: str | None = None, interface: str | None = None,
                 keep_ports: bool = False):
        self.timing = timing or Timing()
        self.declared = list(servers or [])
        self.mac = mac
        self.ip = ip
        self.namespace = namespace
        self.interface = interface
        self.keep_ports = keep_ports
        self._labs: dict[str, object] = {}
        self._lab_ports: dict[str, dict[str, list]] = {}
        self._ports: dict[str | None, tuple[object, ProbePort, bool | None]] = {}
        if mac:
            dc.mac_bytes(mac)
        if (namespace is None) != (interface is None):
            raise ProbeError("--namespace and --interface go together")

    # --- segments ---
    def _lab(self, name: str):
        if name not in self._labs:
            from whynoip.lab.lab import Lab
            lab = Lab(name)
            if not lab.exists:
                raise ProbeError(f"namespaces of lab {name!r} but no such lab")
            self._labs[name] = lab
        return self._labs[name]

    def _lab_dhcp_ports(self, name: str) -> dict[str, list]:
        """network id -> its DHCP ports, read once per pass over the networks."""
        if name not in self._lab_ports:
            ports: dict[str, list] = {}
            for p in self._lab(name).cp.ports():
                if p.device_owner == "network:dhcp":
                    ports.setdefault(p.network_id, []).append(p)
            self._lab_ports[name] = ports
        return self._lab_ports[name]

    def segment(self, network: str | None, namespaces: list[str], procs) -> HostSegment | LabSegment:
        servers = local_servers(namespaces, procs)
        matches = [LAB_QDHCP_RE.match(ns) for ns in namespaces]
        labs = {m["lab"] for m in matches if m}
        if network and matches and all(matches) and len(labs) == 1:
            name = labs.pop()
            seg = LabSegment(self._lab(name), network, servers, self._lab_dhcp_ports(name).get(network, []))
            seg.known |= set(self.declared)
            return seg
        return HostSegment(network, servers, self.declared)

    # --- probing ---
    async def probe_network(self, network: str | None, namespaces: list[str], procs=None) -> NetworkResult:
        start = time.monotonic()
        procs = dnsmasq_by_namespace() if procs is None else procs
        seg = self.segment(network, namespaces, procs)
        result = NetworkResult(network=network)
        targets = sorted(seg.known, key=_ip_key)
        # wait for dnsmasq's address check where it applies: a local dnsmasq with a dynamic
        # range, or servers whose dnsmasq is not on this node to look at
        procs_here = [p for s in seg.local for p in s.processes]
        dynamic = any(p.dynamic for p in procs_here) or not procs_here
        # vantages: the one given, else other agents' namespaces, else a probe port
        plan: list[tuple[Vantage, list[str]]] = []
        port_entry = None
        if self.namespace:
            v = namespace_vantage(self.namespace, self.interface)
            plan.append((v, [t for t in targets if t not in v.own]))
        else:
            left = list(targets)
            if not self.mac:
                for s in seg.local:
                    if not s.up:
                        continue
                    v = Vantage("qdhcp", s.namespace, s.interface, s.mac, s.ip, mac_known=True, host=s.host,
                                own=frozenset(x.ip for x in seg.local if x.namespace == s.namespace))
                    mine = [t for t in left if t not in v.own]
                    if mine:
                        plan.append((v, mine))
                        left = [t for t in left if t in v.own]
                    if not left:
                        break
            if left or not plan:
                port_entry = await self._probe_port(network, seg)
                port, mac_known = port_entry[1], port_entry[2]
                plan.append((port.vantage(mac_known), left or targets))
        # the exchanges get the whole --timeout; plugging a probe port (bounded on its own)
        # comes before it, so that a first round is not cut short by the plumbing
        deadline = time.monotonic() + self.timing.timeout
        local = {s.ip: s for s in seg.local}
        rounds = [Round(v, tg, self.timing, deadline, dynamic, local) for v, tg in plan]
        try:
            seen_per_round = await asyncio.gather(*(r.run() for r in rounds))
        finally:
            if port_entry and not self.keep_ports:
                await self._drop_port(network)
        result.vantages = [r.v.info() for r in rounds]
        macs = {r.v.mac_known for r in rounds}
        result.mac_known = macs.pop() if len(macs) == 1 else None
        # merge: a target from the round that aimed at it; other servers from wherever seen
        merged: dict[str, tuple[_Seen, Vantage]] = {}
        for r, seen in zip(rounds, seen_per_round):
            for sid in r.targets:
                merged[sid] = (seen[sid], r.v)
        for r, seen in zip(rounds, seen_per_round):
            for sid, s in seen.items():
                if sid not in merged and sid not in r.v.own and any(e.reply for e in s.exchanges.values()):
                    merged[sid] = (s, r.v)
        for sid in sorted(merged, key=_ip_key):
            s, v = merged[sid]
            exchanges = [s.exchanges[k] for k in KINDS if k in s.exchanges]
            verdict, latency = verdict_of(exchanges)
            host, ns, iface = seg.where(sid)
            result.servers.append(ServerResult(
                server=sid, verdict=verdict, latency_ms=latency, network=network, known=sid in seg.known,
                mac=s.mac, host=host, namespace=ns, interface=iface, vantage=v.label, exchanges=exchanges,
                offered=offered_of(s.first_offer),
                witness=Witness(requests_reached=[k for k in KINDS if k in s.reached],
                                replies_left=[k for k in KINDS if k in s.replied]) if s.witnessed else None))
        result.findings = findings_for(result, seg, local, rounds)
        if not seg.known:
            result.notes.append("no DHCP server is known for this segment (pass --network or --server): every "
                                "server that answers is listed, none is called rogue")
        if result.mac_known is False:
            result.notes.append(f"the probe's MAC {rounds[-1].v.mac} is no port's: no server offers it an address "
                                "(dnsmasq logs 'no address available'); servers were judged by their NAKs and "
                                "INFORM answers. Pass --mac (and --ip) of a port made for probing to test the "
                                "whole exchange.")
        result.seconds = round(time.monotonic() - start, 4)
        return result

    async def _probe_port(self, network: str | None, seg) -> tuple:
        if network in self._ports:
            return self._ports[network]
        if not seg.local and isinstance(seg, HostSegment):
            raise ProbeError(f"network {network}: no qdhcp namespace on this node to probe from; "
                             "pass --namespace NS --interface IF (a namespace on the segment)")
        port, mac_known = await seg.open_port(self.mac, self.ip, None)
        self._ports[network] = (seg, port, mac_known)
        return self._ports[network]

    async def _drop_port(self, network: str | None) -> None:
        entry = self._ports.pop(network, None)
        if entry:
            await entry[0].close_port(entry[1])

    async def drop_ports_except(self, networks: set) -> None:
        """Remove the probe ports of networks no longer probed (a watcher's)."""
        for network in [n for n in self._ports if n not in networks]:
            await self._drop_port(network)

    async def close(self) -> None:
        """Remove every probe port (a watcher's, at its end)."""
        for network in list(self._ports):
            await self._drop_port(network)
        for lab in self._labs.values():
            if lab._cp is not None:
                lab._cp.close()
                lab._cp = None

    async def probe_many(self, networks: dict[str | None, list[str]], parallel: int = 256,
                         rate: float = 0.0) -> list[NetworkResult]:
        """Probe several networks at once, at most `parallel` at a time, starting at most
        `rate` a second (0: all at once), to spread the load on a busy node's bridges."""
        procs = dnsmasq_by_namespace()
        self._lab_ports.clear()
        sem = asyncio.Semaphore(max(1, parallel))
        begin = time.monotonic()

        async def one(i, net, namespaces):
            if rate > 0:
                await asyncio.sleep(max(0.0, begin + i / rate - time.monotonic()))
            async with sem:
                try:
                    return await self.probe_network(net, namespaces, procs)
                except ProbeError as e:
                    return NetworkResult(network=net, notes=[f"not probed: {e}"])
        return list(await asyncio.gather(*(one(i, n, ns) for i, (n, ns) in enumerate(networks.items()))))


def _ip_key(ip: str):
    try:
        return (0, socket.inet_aton(ip))
    except OSError:
        return (1, ip.encode())


def select_networks(networks: list[str] | None, namespace: str | None = None) -> dict[str | None, list[str]]:
    """network id -> its qdhcp namespaces here: the ones asked for (an id or its first
    characters), or every network on this node."""
    found = qdhcp_namespaces()
    if namespace and not networks:
        m = QDHCP_RE.search(namespace)
        net = m["net"] if m else None
        return {net: found.get(net, []) if net else []}
    if not networks:
        if not found:
            raise ProbeError("no qdhcp namespace on this node: pass --network ID, or --namespace NS --interface IF")
        return found
    out: dict[str | None, list[str]] = {}
    for ref in networks:
        matches = [n for n in found if n == ref or (len(ref) >= 8 and n.startswith(ref))]
        if len(matches) > 1:
            raise ProbeError(f"network {ref!r} is ambiguous: {', '.join(matches)}")
        if not matches:
            if namespace:
                out[ref] = []
                continue
            raise ProbeError(f"no namespace ending in qdhcp-{ref} on this node")
        out[matches[0]] = found[matches[0]]
    return out


# --- findings --------------------------------------------------------------------------------

def _ev(text: str, host: str | None = None) -> Evidence:
    return Evidence(source="whynoip probe", text=text[:300], host=host, time=time.time())


def _unanswered(s: ServerResult) -> list[Evidence]:
    out = []
    for e in s.exchanges:
        if e.sent and not e.reply:
            out.append(_ev(f"{SENT[e.kind]} from {s.vantage} sent {e.sent}x: no answer from {s.server}"))
    return out


def _namespace_broken(s: ServerResult, net: str, where: str | None) -> list[Finding]:
    """A server the control plane places in a namespace of this node that holds no address."""
    try:
        with dc.in_namespace(s.namespace):
            ifs = dc.interfaces()
    except ProbeError:
        what = f"namespace {s.namespace} does not exist"
    else:
        if any(i.ip for i in ifs):
            return []
        what = f"no interface in {s.namespace} has an address ({', '.join(i.name for i in ifs) or 'none'})"
    return [Finding(
        id="dhcp-namespace-broken", severity="critical", subject=f"{s.server} on {s.host}", hop=where,
        title=f"the DHCP port {s.server} of network {net} on {s.host} is not plugged: {what}",
        evidence=[_ev(what, s.host)],
        fix=[f"restart the DHCP agent on {s.host}: it plugs the port into qdhcp-{net} again"])]


def _why_silent(s: ServerResult, ls: LocalServer, net: str, where: str | None) -> list[Finding]:
    """Why a server on this node is silent, from its interface, its processes and what its
    interface showed: namespace broken, no dnsmasq, dnsmasq that does not answer, or a
    path that loses the requests or the replies."""
    alive = [p for p in ls.processes if not p.state.startswith("Z")]
    stopped = [p for p in alive if p.state.startswith("T")]
    w = s.witness
    reached = w.requests_reached if w else []
    left = w.replies_left if w else []
    seen_there = (f"on {ls.interface} in {ls.namespace}: requests reached it ({', '.join(reached) or 'none'}), "
                  f"replies left it ({', '.join(left) or 'none'})")
    if not ls.up:
        return [Finding(
            id="dhcp-namespace-broken", severity="critical", subject=f"{s.server} on {ls.host}", hop=where,
            title=f"the DHCP port {ls.interface} of network {net} on {ls.host} is down",
            evidence=[_ev(f"{ls.interface} in {ls.namespace} is down", ls.host)],
            fix=[f"on {ls.host}: ip netns exec {ls.namespace} ip link set {ls.interface} up; or restart the DHCP "
                 "agent, which plugs the port again"])]
    if not alive:
        return [Finding(
            id="dnsmasq-not-running", severity="critical", subject=f"{s.server} on {ls.host}", hop=where,
            title=f"no dnsmasq runs for network {net} on {ls.host}",
            evidence=[_ev(f"no dnsmasq process in {ls.namespace}", ls.host)] + _unanswered(s),
            fix=["restart the DHCP agent on that node (it respawns dnsmasq), then look at its log for "
                 "why dnsmasq died"])]
    if stopped or (w and reached and not left) or not w:
        ev = []
        for p in alive:
            q = p.rx_queue_67()
            queued = f"; {q} bytes wait unread on its :67 socket" if q else ""
            how = " (stopped)" if p.state.startswith("T") else ""
            ev.append(_ev(f"dnsmasq pid {p.pid} state {p.state}{how} in {ls.namespace}{queued}", ls.host))
        if w:
            ev.append(_ev(seen_there, ls.host))
        return [Finding(
            id="dnsmasq-unresponsive", severity="critical", subject=f"{s.server} on {ls.host}", hop=where,
            title=f"dnsmasq for network {net} on {ls.host} is alive but answers nothing",
            evidence=ev + _unanswered(s),
            fix=[f"on {ls.host}: kill {alive[0].pid}  # the DHCP agent respawns it (its liveness check "
                 "only looks for the PID, so a hung dnsmasq passes it)",
                 "or restart the DHCP agent; then probe again and check the PID stays the same"])]
    # dnsmasq runs and is not stopped: the path loses the requests, or the replies
    way = "its replies never reach the probe" if left else "the probe's requests never reach it"
    return [Finding(
        id="l2-path-broken", severity="critical", subject=f"{s.vantage} <-> {s.server}",
        hop=f"between {s.vantage} and {where}",
        title=f"DHCP server {s.server} of network {net} works, but {way}",
        evidence=[_ev(seen_there, ls.host)] + _unanswered(s),
        fix=["trace the path hop by hop (whynoip trace, or tcpdump on the qdhcp tap, br-int, br-tun and the "
             "tunnel underlay): compare local VLAN tags and br-tun flows on both nodes"])]


def findings_for(result: NetworkResult, seg, local: dict[str, LocalServer], rounds: list[Round]) -> list[Finding]:
    from whynoip.diagnose import link, rank
    net = result.network or "?"
    groups: list[list[Finding]] = []
    # a known MAC that no live server offers an address: it is missing from the host files
    # (that also explains the NAKs its REQUESTs get)
    answering = [s for s in result.servers if s.known and s.verdict != "silent"]
    missing = bool(result.mac_known and answering and not any(s.offered for s in answering))
    if missing:
        mac = next((r.v.mac for r in rounds if r.v.mac_known), rounds[0].v.mac if rounds else "?")
        groups.append([Finding(
            id="host-entry-missing", severity="warning", subject=mac,
            title=f"No DHCP server of network {net} offers an address to port MAC {mac}: it is in no host file",
            evidence=[_ev(f"{s.server}: DISCOVER unanswered while it answers "
                          + ", ".join(f"{SENT[e.kind]} with {e.reply}" + (f" ({e.message})" if e.message else "")
                                      for e in s.exchanges if e.reply)
                          + " (dnsmasq logs 'no address available')") for s in answering],
            fix=["check that the DHCP agents are up and got the port (openstack network agent list --network "
                 f"{net}); the agent rewrites the host file and sends dnsmasq SIGHUP"])])
    for s in result.servers:
        group: list[Finding] = []
        where = " ".join(x for x in (s.host, s.namespace, s.interface) if x) or None
        if s.known and s.verdict == "silent":
            group.append(Finding(
                id="dhcp-server-silent", severity="critical", subject=s.server, hop=where,
                title=f"DHCP server {s.server} of network {net} answers nothing (probed from {s.vantage})",
                evidence=_unanswered(s),
                fix=[f"look at dnsmasq on {s.host or 'the node that hosts it'}: ps -o pid,stat,args -C dnsmasq; "
                     f"ip netns exec {s.namespace or 'qdhcp-' + net} ss -lunp 'sport = :67'"]))
            ls = local.get(s.server)
            if ls is not None:
                group.extend(_why_silent(s, ls, net, where))
            elif s.namespace:
                group.extend(_namespace_broken(s, net, where))
        if not s.known and s.verdict != "silent" and seg.known:
            offer = s.offered
            what = f", offering {offer.ip}" + (f" with router {offer.routers[0]}" if offer.routers else "") if offer else ""
            sure = seg.authoritative
            group.append(Finding(
                id="rogue-dhcp-server", severity="critical" if sure else "warning", subject=s.server,
                title=f"A DHCP server that is no {'Neutron DHCP port' if sure else 'DHCP port on this node'} answers "
                      f"on network {net}: {s.server}" + ("" if sure else " (pass --server to name the network's "
                                                          "other DHCP servers)"),
                evidence=[_ev(f"{e.reply} from server id {s.server} (MAC {s.mac})"
                              + (what if e.reply in ("OFFER", "ACK") else f" ({e.message or 'no reason'})")
                              + f" to {SENT[e.kind]} from {s.vantage}") for e in s.exchanges if e.reply][:3],
                fix=[f"find it: its MAC {s.mac} -> openstack port list --mac-address {s.mac}",
                     "stop the DHCP server inside that instance; port security ('Prevent DHCP Spoofing by VM') "
                     "blocks it when enabled on its port"]))
        bad = [e for e in s.exchanges if e.reply and e.checksum_ok is False]
        if bad:
            group.append(Finding(
                id="udp-checksum-bad", severity="critical", subject=s.server, hop=where,
                title=f"DHCP server {s.server} of network {net} answers with bad UDP checksums: DHCP clients drop "
                      "its replies",
                evidence=[_ev(f"{e.reply} to {SENT[e.kind]} from {s.vantage}: UDP checksum wrong") for e in bad],
                fix=[f"turn transmit checksum offload off on the DHCP port: ip netns exec "
                     f"{s.namespace or 'qdhcp-' + net} ethtool -K {s.interface or '<ns- device>'} tx off "
                     "(or add Neutron's checksum-fill rule: iptables -t mangle -A POSTROUTING -p udp --dport 68 "
                     "-j CHECKSUM --checksum-fill)"]))
        if s.known and s.verdict == "nak" and result.mac_known and not missing:
            naks = [e for e in s.exchanges if e.reply == "NAK"]
            group.append(Finding(
                id="dhcp-nak", severity="warning", subject=s.server,
                title=f"DHCP server {s.server} refuses the probe's requests on network {net}",
                evidence=[_ev(f"NAK to {SENT[e.kind]}: {e.message or 'no reason given'}") for e in naks],
                fix=["compare the server's host and leases files with the ports of the network"]))
        if group:
            groups.append(group)
    out: list[Finding] = []
    for g in groups:
        link(g)
        out.extend(g)
    return rank(out)


# --- entry points ------------------------------------------------------------------------------

async def run(prober: Prober, networks: dict[str | None, list[str]], parallel: int,
              rate: float = 0.0) -> list[NetworkResult]:
    try:
        return await prober.probe_many(networks, parallel, rate)
    finally:
        await prober.close()


def probe(networks: list[str] | None = None, *, namespace: str | None = None, interface: str | None = None,
          servers: list[str] | None = None, mac: str | None = None, ip: str | None = None,
          timing: Timing | None = None, parallel: int = 256, rate: float = 0.0) -> list[NetworkResult]:
    """Probe the networks asked for (all on this node by default); blocking."""
    if os.geteuid() != 0:
        raise ProbeError("probing needs root (raw sockets, network namespaces)")
    prober = Prober(timing, servers, mac, ip, namespace, interface)
    selected = select_networks(networks, namespace)
    results = asyncio.run(run(prober, selected, parallel, rate))
    failed = [r for r in results if not r.servers and r.notes and r.notes[0].startswith("not probed: ")]
    if failed and len(failed) == len(results):
        raise ProbeError(failed[0].notes[0].removeprefix("not probed: "))
    return results


SCHEMA_VERSION = 1


def report_object(results: list[NetworkResult]) -> dict:
    """The JSON report: `servers` (every server of every network probed, each with its
    `network`, `verdict` and `latency_ms`: a contract), `findings` (root causes first),
    and per network where it was probed from and how long it took."""
    from whynoip.diagnose import rank
    from whynoip.report.json import scrub

    servers = [msgspec.to_builtins(s) for r in results for s in r.servers]
    findings = rank([f for r in results for f in r.findings])
    counts = {v: sum(1 for s in servers if s["verdict"] == v) for v in ("answers", "nak", "silent")}
    return scrub({
        "schema": SCHEMA_VERSION,
        "servers": servers,
        "findings": msgspec.to_builtins(findings),
        "networks": [{"network": r.network, "servers": len(r.servers), "mac_known": r.mac_known,
                      "seconds": r.seconds, "vantages": msgspec.to_builtins(r.vantages), "notes": r.notes}
                     for r in results],
        "summary": {"networks": len(results), "servers": len(servers), **counts,
                    "critical": sum(1 for f in findings if f.severity == "critical")},
    })
