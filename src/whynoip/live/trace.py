"""`whynoip trace`: follow one port's DHCP exchange hop by hop, live.

Captures start at once on every hop of the port's path — the guest's side (`tap`, `qbr`,
`qvb`, `qvo`), the underlay on each node, the DHCP port's device on br-int and inside each
`qdhcp-<network>` namespace — then a DHCP attempt is triggered (on a lab: the guest's own
client runs) or awaited (`--wait S` on a real node, while the instance boots or renews), the
captures stop, and each hop's capture says which of DISCOVER, OFFER, REQUEST, ACK it saw.
The report names the first hop where the request or the reply disappears; then the nodes'
state is collected (`whynoip collect`) beside the captures and everything goes to the
doctor, which names the cause.

On a lab the hops are the lab's own (`Lab.guest_hops`) and its tcpdump runner
(`lab.guest.Capture`) does the capturing. On real nodes the hops come from each node's
state: `ip link` for the port's tap/qbr/qvb/qvo (Neutron names them after the port id's
first 11 characters), the node's qdhcp namespaces and their devices, the interface holding
the tunnel `local_ip` (and, when it is an OVS bridge, the system ports under it); there
tcpdump runs through the node's connection (local or SSH) for `--wait` seconds.

Captures are written where the doctor expects them:
`<host>/captures/<what>/tcpdump_-i_<if>.pcap` (in a qdhcp namespace
`ip_netns_exec_qdhcp-<net>_tcpdump_-i_<if>.pcap`), the guest's own under
`guests/<guest>/`.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from whynoip import facts as F
from whynoip.errors import WhynoipError
from whynoip.live.collect import NodeView, sos_name
from whynoip.live.node import LocalNode, Node, SshNode, SshOptions, SshTarget

SSH_CAPTURES = 9  # captures at once through one SSH connection (OpenSSH's MaxSessions is 10 by default)
REQUESTS = ("DISCOVER", "REQUEST", "INFORM", "DECLINE", "RELEASE")
REPLIES = ("OFFER", "ACK", "NAK")
DORA = ("DISCOVER", "OFFER", "REQUEST", "ACK")
FILTER = "udp port 67 or udp port 68 or udp port 4789"  # DHCP, and VXLAN that may carry it
SERVER_ROLES = ("underlay-server", "dhcp-tap", "dhcp-ns")
ORDER = {"guest": 0, "tap": 1, "qbr": 2, "qvb": 3, "qvo": 4, "underlay-compute": 5, "underlay-server": 6,
         "dhcp-tap": 7, "dhcp-ns": 8}


class TraceError(WhynoipError):
    pass


@dataclass
class Hop:
    host: str  # the node's name (or the guest's)
    interface: str
    role: str  # guest, tap, qbr, qvb, qvo, underlay-compute, underlay-server, dhcp-tap, dhcp-ns
    namespace: str | None = None  # where to capture on this machine / the node
    shown_ns: str | None = None  # the namespace as the node knows it (qdhcp-<net>)
    pcap: Path | None = None
    seen: list[str] = field(default_factory=list)  # message types of the port's exchange, in order first seen
    packets: int = 0
    error: str | None = None
    # on a server's side of the path: that server's IPs. A reply counts there only when it
    # comes from them, so that with several servers the one that never answers shows
    server_ips: set[str] | None = None

    @property
    def name(self) -> str:
        return " ".join(x for x in (self.host, self.shown_ns, self.interface) if x)

    def to_dict(self) -> dict:
        return {"name": self.name, "host": self.host, "namespace": self.shown_ns, "interface": self.interface,
                "role": self.role, "seen": self.seen, "packets": self.packets, "capture": str(self.pcap or ""),
                **({"error": self.error} if self.error else {})}


@dataclass
class Break:
    what: str  # request | reply | server
    after: Hop  # the last hop that saw it
    before: Hop | None  # the next hop that did not

    def text(self) -> str:
        if self.what == "server":
            return f"requests reach {self.after.name} and no reply ever leaves it"
        return (f"the {self.what} is seen on {self.after.name} but not on "
                f"{self.before.name if self.before else 'the next hop'}")

    def to_dict(self) -> dict:
        return {"what": self.what, "after": self.after.name, "before": self.before.name if self.before else None,
                "text": self.text()}


@dataclass
class Trace:
    port: str | None
    mac: str | None
    out: Path
    hops: list[Hop]
    attempt: dict | None = None  # the guest's DHCP attempt, on a lab
    breaks: list[Break] = field(default_factory=list)
    diagnosis: object = None
    seconds: float = 0.0

    @property
    def branches(self) -> list[list[Hop]]:
        return branches(self.hops)

    def to_dict(self) -> dict:
        from whynoip.report.json import to_builtins
        return {"port": self.port, "mac": self.mac, "bundle": str(self.out), "attempt": self.attempt,
                "hops": [h.to_dict() for h in self.hops], "breaks": [b.to_dict() for b in self.breaks],
                "diagnosis": to_builtins(self.diagnosis) if self.diagnosis is not None else None}


# --- what each hop saw -------------------------------------------------------------------------

def read_hop(hop: Hop, mac: str | None) -> list[F.DhcpPacket]:
    from whynoip.evidence.read import read
    if hop.pcap is None or not hop.pcap.exists() or hop.pcap.stat().st_size == 0:
        return []
    try:
        return [f for f in read([str(hop.pcap)]) if isinstance(f, F.DhcpPacket)]
    except WhynoipError as e:
        hop.error = str(e)
        return []


def _norm(mac: str | None) -> str | None:
    return mac.lower() if mac else None


def guess_mac(hops: list[Hop], packets: dict[int, list[F.DhcpPacket]]) -> str | None:
    """The port's MAC when nobody said it: the client of the requests on its own devices."""
    macs = Counter(_norm(p.client_mac) for h in hops if h.role in ("guest", "tap", "qbr", "qvb", "qvo")
                   for p in packets.get(id(h), []) if p.message_type in REQUESTS and p.client_mac)
    return macs.most_common(1)[0][0] if macs else None


def mark_seen(hops: list[Hop], mac: str | None) -> str | None:
    packets = {id(h): read_hop(h, mac) for h in hops}
    mac = _norm(mac) or guess_mac(hops, packets)
    for h in hops:
        mine = [p for p in packets[id(h)] if mac and _norm(p.client_mac) == mac]
        if h.server_ips:
            mine = [p for p in mine if p.message_type not in REPLIES or _from(p, h.server_ips)]
        h.packets = len(mine)
        seen: list[str] = []
        for p in mine:
            if p.message_type and p.message_type not in seen:
                seen.append(p.message_type)
        h.seen = seen
    return mac


def _from(p: F.DhcpPacket, ips: set[str]) -> bool:
    server_id = (p.options or {}).get(54) or (p.options or {}).get("54")
    return p.src_ip in ips or (server_id in ips)


def branches(hops: list[Hop]) -> list[list[Hop]]:
    """The path to each DHCP server: the guest's side, then one server node's hops."""
    common = sorted((h for h in hops if h.role not in SERVER_ROLES), key=lambda h: ORDER.get(h.role, 9))
    servers: dict[str, list[Hop]] = {}
    for h in hops:
        if h.role in SERVER_ROLES:
            servers.setdefault(h.host, []).append(h)
    if not servers:
        return [common] if common else []
    return [common + sorted(s, key=lambda h: ORDER.get(h.role, 9)) for s in servers.values()]


def find_breaks(hops: list[Hop]) -> list[Break]:
    """Per branch: where the request stops going toward the server, where the reply stops
    coming back, or the server that requests reach and that never answers."""
    out: list[Break] = []
    for branch in branches(hops):
        req = [bool(set(h.seen) & set(REQUESTS)) for h in branch]
        rep = [bool(set(h.seen) & set(REPLIES)) for h in branch]
        found = None
        last = None
        for i, h in enumerate(branch):
            if req[i]:
                last = i
            elif last is not None:
                found = Break("request", branch[last], h)
                break
        if found is None and any(rep):
            for i in range(len(branch) - 1, 0, -1):
                if rep[i] and not rep[i - 1]:
                    found = Break("reply", branch[i], branch[i - 1])
                    break
        # the server that requests reach and whose side of the path no reply of its own leaves
        # (another server's replies may well reach the guest)
        own = [rep[i] for i, h in enumerate(branch) if h.role in SERVER_ROLES]
        if found is None and branch and branch[-1].role == "dhcp-ns" and req[-1] and not any(own):
            found = Break("server", branch[-1], None)
        if found and not any(b.text() == found.text() for b in out):
            out.append(found)
    return out


# --- where captures go -------------------------------------------------------------------------

def capture_path(out: Path, hop: Hop, what: str) -> Path:
    if hop.role == "guest":
        return out / "guests" / hop.host / f"tcpdump_-i_{hop.interface}.pcap"
    name = f"tcpdump -i {hop.interface}"
    if hop.shown_ns:
        name = f"ip netns exec {hop.shown_ns} {name}"
    return out / hop.host / "captures" / what / (sos_name(name) + ".pcap")


# --- on a lab ------------------------------------------------------------------------------------

def lab_trace(lab_name: str, out: Path, *, guest: str | None = None, port: str | None = None,
              wait: float | None = None, collect: bool = True, progress=None) -> Trace:
    """Trace a lab guest's (or port's) DHCP exchange with the lab's own capture runner."""
    from whynoip.lab import guest as guestmod, sh
    from whynoip.lab.lab import Lab

    say = progress or (lambda s: None)
    start = time.monotonic()
    lab = Lab(lab_name)
    lab.config  # no such lab: one clear line
    cp = lab.cp
    inst = None
    if guest:
        inst = cp.instance(guest)
    else:
        matches = [p for p in cp.ports() if p.id.startswith(port)]
        if len(matches) != 1:
            raise TraceError(f"--port {port}: {'no' if not matches else 'more than one'} port of lab {lab_name} "
                             f"starts so")
        inst = next((i for i in cp.instances() if i["port_id"] == matches[0].id), None)
        if inst is None:
            raise TraceError(f"port {matches[0].id} is no guest's port in lab {lab_name}: trace it as on a real node "
                             f"(--port without --name, with its node's --netns and --root)")
    name = inst["name"]
    p = cp.port(inst["port_id"])
    prefix = lab.paths.prefix
    nodes = {n.name for n in lab.topology.nodes}
    hops: list[Hop] = []
    for h in lab.guest_hops(name):
        ns = h["namespace"]
        if sh.run(["ip", "-n", ns, "link", "show", h["interface"]], check=False).returncode:
            continue  # a device the fault removed: no capture there
        role = h["role"]
        if role == "underlay":
            role = "underlay-compute" if h["node"] == inst["host"] else "underlay-server"
        shown = None
        if h["node"] in nodes and ns != lab.paths.node_ns(h["node"]):
            shown = ns[len(lab.paths.node_ns(h["node"])) + 1:] if ns.startswith(prefix) else ns
        hops.append(Hop(h["node"], h["interface"], role, ns, shown))
    server_ips: dict[str, set[str]] = {}
    for srv in lab.dhcp_servers():
        if srv["network"] == inst["network_id"] and srv["ip"]:
            server_ips.setdefault(srv["node"], set()).add(srv["ip"])
    for h in hops:
        h.pcap = capture_path(out, h, name)
        if h.role in SERVER_ROLES:
            h.server_ips = server_ips.get(h.host)
    cap = guestmod.Capture([(h.namespace, h.interface, h.pcap) for h in hops])
    say(f"capturing on {len(hops)} hops of {name}'s path ({p.id})")
    attempt = None
    cap.start()
    try:
        if wait is not None:
            say(f"waiting {wait:g}s for a DHCP attempt")
            time.sleep(wait)
        else:
            a = guestmod.run_client(name, lab.paths.guest_ns(name), inst["client"], lab.paths.guest_dir(name))
            attempt = {"guest": a.guest, "ok": a.ok, "ip": a.ip, "server_id": a.server_id, "seconds": a.seconds}
            say(f"{name}: {'got ' + a.ip if a.ok else 'got no IP'} in {a.seconds:.2f}s")
    finally:
        cap.stop()
    mac = mark_seen(hops, p.mac)
    trace = Trace(p.id, mac, out, hops, attempt)
    trace.breaks = find_breaks(hops)
    if collect:
        views = [(LocalNode(), NodeView(lab.paths.node_ns(n), str(lab.paths.node_root(n)),
                                        str(lab.paths.ovs_rundir(n)), n)) for n in sorted(nodes)]
        _collect_into(out, views, say)
        console = lab.paths.guest_dir(name) / "console.log"
        if console.is_file():
            dest = out / "guests" / name / "console.log"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(console, dest)
        # the lab has no Keystone: its control plane's view stands in for openstacksdk's
        from whynoip.lab.collect import api_view
        api = out / "api"
        api.mkdir(parents=True, exist_ok=True)
        for command, obj in api_view(lab).items():
            (api / sos_name(command)).write_text(json.dumps(obj, indent=2) + "\n")
    trace.seconds = time.monotonic() - start
    return trace


def _collect_into(out: Path, views: list[tuple[Node | SshTarget, NodeView]], say,
                  ssh: SshOptions | None = None) -> None:
    from whynoip.live.collect import collect_nodes
    asyncio.run(collect_nodes(views, out, progress=say, ssh=ssh))  # a node that fails says so


# --- on real nodes -------------------------------------------------------------------------------

async def node_hops(node: Node, view: NodeView, port: str, host: str, network: str | None = None) -> list[Hop]:
    """The capture points of `port` on one node, from the node's own state."""
    async def run(argv, ns=None):
        full = ["ip", "netns", "exec", ns, *argv] if ns else argv
        r = await node.run(full, timeout=10)
        return r.out.decode(errors="replace") if r.rc == 0 else ""

    def links(text: str) -> list[str]:
        return [m.group(1) for m in re.finditer(r"^\d+:\s+([^:@\s]+)", text, re.M)]

    hops: list[Hop] = []
    server_ips: set[str] = set()
    root_links = links(await run(["ip", "-o", "link", "show"], view.netns))
    short = port[:11]
    for kind in ("tap", "qbr", "qvb", "qvo"):
        if kind + short in root_links:
            hops.append(Hop(host, kind + short, kind, view.netns))
    # the DHCP servers this node holds: each qdhcp namespace's devices
    spaces = [n.split()[0] for n in (await run(["ip", "netns", "list"])).splitlines() if n.strip()]
    for real in spaces:
        shown = view.own_namespace(real)
        if not shown or not shown.startswith("qdhcp-") or (network and not shown[6:].startswith(network)):
            continue
        for dev in links(await run(["ip", "-o", "link", "show"], real)):
            if dev == "lo":
                continue
            hops.append(Hop(host, dev, "dhcp-ns", real, shown))
            ips = set(re.findall(r"inet ([\d.]+)/", await run(["ip", "-o", "-4", "addr", "show", "dev", dev], real)))
            server_ips.update(ips)
            if dev.startswith("ns-") and "tap" + dev[3:] in root_links:  # ovs_use_veth: its peer on br-int
                hops.append(Hop(host, "tap" + dev[3:], "dhcp-tap", view.netns))
    # the underlay: the interface holding the tunnel's local_ip (and the ports of an OVS bridge holding it)
    rundir = view.ovs_rundir
    if rundir is None and view.root not in ("", "/"):
        sock = await node.run(["test", "-S", view.path("/run/openvswitch/db.sock")], timeout=5)
        rundir = view.path("/run/openvswitch") if sock.rc == 0 else None
    env = {"OVS_RUNDIR": rundir} if rundir else None
    r = await node.run((["ip", "netns", "exec", view.netns] if view.netns else []) +
                       ["ovs-vsctl", "-t", "5", "show"], timeout=10, env=env)
    local_ips = set(re.findall(r'local_ip="?([\d.]+)"?', r.out.decode(errors="replace")))
    if local_ips:
        addrs = await run(["ip", "-o", "-4", "addr", "show"], view.netns)
        for m in re.finditer(r"^\d+:\s+(\S+)\s+inet\s+([\d.]+)/", addrs, re.M):
            dev, ip = m.groups()
            if ip not in local_ips:
                continue
            under = [dev]
            r = await node.run((["ip", "netns", "exec", view.netns] if view.netns else []) +
                               ["ovs-vsctl", "-t", "5", "list-ports", dev], timeout=10, env=env)
            if r.rc == 0:
                under = [p for p in r.out.decode(errors="replace").split() if p in root_links] or under
            for d in under:
                hops.append(Hop(host, d, "underlay", view.netns))
    for h in hops:
        if h.role in ("dhcp-ns", "dhcp-tap"):
            h.server_ips = server_ips or None
    return hops


# tcpdump in the background of a shell that stops it (SIGINT: it writes what it holds) when
# a line or the end of its input comes: the same on this machine and through SSH, and a
# dropped connection stops it too. `timeout` bounds it whatever happens.
CAPTURE_SCRIPT = ('tcpdump -i "$1" --immediate-mode -U -n -s 0 -w - "$2" & p=$!; read _ ; '
                  'kill -INT $p 2>/dev/null; wait $p')


class HopCapture:
    """tcpdump on one hop of a real node, its pcap streamed into `hop.pcap`."""

    def __init__(self, node: Node, hop: Hop, limit: float):
        self.node, self.hop, self.limit = node, hop, limit
        self.proc = None
        self.writer: asyncio.Task | None = None

    async def start(self, timeout: float = 15) -> None:
        argv = ["timeout", "-k", "2", f"{self.limit:g}", "sh", "-c", CAPTURE_SCRIPT, "sh", self.hop.interface, FILTER]
        if self.hop.namespace:
            argv = ["ip", "netns", "exec", self.hop.namespace, *argv]
        self.hop.pcap.parent.mkdir(parents=True, exist_ok=True)
        self.proc = await self.node.spawn(argv)
        self.writer = asyncio.ensure_future(self._write())
        # until tcpdump says it listens (or fails)
        err = b""
        try:
            async with asyncio.timeout(timeout):
                while b"listening on" not in err:
                    line = await self.proc.stderr.readline()
                    if not line:
                        break
                    err += line
        except TimeoutError:
            pass
        if b"listening on" not in err:
            self.hop.error = err.decode(errors="replace").strip().splitlines()[-1] if err.strip() else "no tcpdump"

    async def _write(self) -> None:
        with open(self.hop.pcap, "wb") as f:
            while chunk := await self.proc.stdout.read(65536):
                f.write(chunk)

    async def stop(self) -> None:
        if self.proc is None:
            return
        try:
            self.proc.stdin.write(b"stop\n")
            self.proc.stdin.write_eof()
        except Exception:
            pass
        try:
            async with asyncio.timeout(10):
                await self.proc.wait()
                await self.writer
        except TimeoutError:
            self.hop.error = self.hop.error or "capture did not stop in time"
            if self.writer:
                self.writer.cancel()


def node_trace(port: str, out: Path, nodes: list[tuple[Node | SshTarget, NodeView]], wait: float,
               ssh: SshOptions | None = None, collect: bool = True, progress=None,
               network: str | None = None) -> Trace:
    """Trace a port on real nodes: derive each node's hops, capture on all for `wait`
    seconds at once, collect the nodes, report."""
    say = progress or (lambda s: None)
    if not re.fullmatch(r"[0-9a-fA-F-]{11,36}", port):
        raise TraceError(f"--port {port}: give the port id (at least its first 11 characters)")
    start = time.monotonic()

    async def main() -> list[Hop]:
        conns: list[tuple[Node, NodeView, bool]] = []
        try:
            for target, view in nodes:
                if isinstance(target, Node):
                    conns.append((target, view, False))
                else:
                    conns.append((await SshNode.connect(target, ssh or SshOptions()), view, True))
            hops: list[Hop] = []
            per_node = []
            for node, view, _ in conns:
                host = await _host(node, view)
                mine = await node_hops(node, view, port, host, network)
                compute = any(h.role in ("tap", "qbr", "qvb", "qvo") for h in mine)
                ips = set().union(*(h.server_ips or set() for h in mine))
                for h in mine:
                    if h.role == "underlay":
                        h.role = "underlay-compute" if compute else "underlay-server"
                        h.server_ips = None if compute else (ips or None)
                    h.pcap = capture_path(out, h, port[:11])
                per_node.append((node, mine))
                hops += mine
            if not hops:
                raise TraceError(f"no hop of port {port} found on {', '.join(n.label for n, _, _ in conns)} "
                                 f"(no tap/qbr/qvb/qvo{port[:11]} and no qdhcp namespace)")
            for node, mine in per_node:
                if isinstance(node, SshNode) and len(mine) > SSH_CAPTURES:
                    raise TraceError(f"{node.label}: {len(mine)} hops to capture on, more than one SSH connection "
                                     f"carries ({SSH_CAPTURES}); name the port's network with --network")
            caps = [HopCapture(node, h, wait + 60) for node, mine in per_node for h in mine]
            await asyncio.gather(*(c.start() for c in caps))
            try:
                live = [c.hop for c in caps if not c.hop.error]
                say(f"capturing on {len(live)} hops for {wait:g}s: start the instance's DHCP attempt now")
                for c in caps:
                    if c.hop.error:
                        say(f"{c.hop.name}: no capture: {c.hop.error}")
                await asyncio.sleep(wait)
            finally:
                await asyncio.gather(*(c.stop() for c in caps))
            return hops
        finally:
            for node, _, opened in conns:
                if opened:
                    await node.close()

    hops = asyncio.run(main())
    mac = mark_seen(hops, None)
    trace = Trace(port, mac, out, hops)
    trace.breaks = find_breaks(hops)
    if collect:
        _collect_into(out, nodes, say, ssh)
    trace.seconds = time.monotonic() - start
    return trace


async def _host(node: Node, view: NodeView) -> str:
    if view.hostname:
        return view.hostname
    if view.root not in ("", "/"):
        data = await node.read(view.path("/etc/hostname"), 256)
        if data and data.strip():
            return data.decode(errors="replace").split()[0]
    r = await node.run(["hostname"], timeout=5)
    name = r.out.decode(errors="replace").strip()
    return name or re.sub(r"[^\w.-]", "_", node.label)


# --- to the doctor -------------------------------------------------------------------------------

def diagnose(trace: Trace) -> None:
    from whynoip.diagnose import diagnose as run_diagnosis
    from whynoip.evidence.read import read
    paths = [str(p) for p in sorted(trace.out.iterdir())]
    trace.diagnosis = run_diagnosis(list(read(paths)), target=trace.port)


def render(trace: Trace, console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console(emoji=False)
    t = Table(title=f"DHCP of port {trace.port} ({trace.mac or 'MAC unknown'}) hop by hop", show_lines=False)
    t.add_column("hop")
    t.add_column("role")
    for m in DORA:
        t.add_column(m[:4], justify="center")
    t.add_column("other")
    lost = {id(b.before) for b in trace.breaks if b.before is not None} | {id(b.after) for b in trace.breaks
                                                                          if b.what == "server"}
    for h in trace.hops:
        marks = ["✓" if m in h.seen else "·" for m in DORA]
        other = ", ".join(m for m in h.seen if m not in DORA) or (h.error or "")
        style = "red" if id(h) in lost else None
        t.add_row(h.name, h.role, *marks, other, style=style)
    console.print(t)
    if trace.attempt:
        a = trace.attempt
        console.print(f"{a['guest']}: {'got ' + a['ip'] if a['ok'] else 'got no IP'} in {a['seconds']:.2f}s")
    if trace.breaks:
        for b in trace.breaks:
            console.print(f"[bold red]lost:[/] {b.text()}")
    elif any(h.seen for h in trace.hops):
        console.print("no hop lost the exchange")
    else:
        console.print("no DHCP packet of this port was seen on any hop (did the instance try during the capture?)")
    console.print(f"captures and node state: {trace.out}")
    if trace.diagnosis is not None:
        from whynoip.report.text import render as render_report
        console.rule("the doctor")
        render_report(trace.diagnosis, console)
