"""The lab's fault catalogue: break a running lab the way the field breaks it, and heal it.

Each fault id is a finding id of the doctor's catalogue. A fault does to the real parts
what happens on a real cloud — it stops or freezes real processes, leaves the agent's
files as a lost update leaves them, retags OVS ports, wipes flows, edits iptables, lowers
MTUs, turns offloads back on, changes the control plane — and nothing else: no marker
file, no log line that names it. What the doctor finds, it finds from what a real node
would show. The one record of what was done is `<lab dir>/faults.json`, the lab's own
bookkeeping (the evidence export never copies it): a stack, so faults can be combined,
that `heal` unwinds newest first.

Targets (`--target`) name what a fault acts on, as fits the fault:
  guest    a guest (default: the first); `GUEST@NODE` where a fault touches the files of
           the guest's DHCP servers limits it to the server on that network node;
  server   one DHCP server: `GUEST` or `NETWORK` (its network's first server), `NODE` (the
           server on that network node) or `GUEST@NODE` / `NETWORK@NODE`; default the first
           guest's network's first server;
  servers  like server, but without `@NODE` every server of the network;
  network  a network (name or id) or a guest (its network); default the first guest's;
  node     a node (default as each fault says)."""

from __future__ import annotations

import contextlib
import difflib
import ipaddress
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from whynoip.errors import LabError
from whynoip.lab import broker, bus, dnsmasq_files, firewall, sh
from whynoip.lab.lab import Lab
from whynoip.lab.ovs import DEAD_VLAN, br_int_flows, br_tun_flows, tunnel_port_name, wait_for
from whynoip.lab.paths import device

FAULTS_FILE = "faults.json"


# --- targets ------------------------------------------------------------------------------

@dataclass(slots=True)
class Target:
    """What a fault acts on, resolved from `--target`; `text` is how the record names it."""
    text: str
    guest: str | None = None
    network: str | None = None
    node: str | None = None
    servers: list[tuple[str, str]] = field(default_factory=list)  # (network id, node)


def _guests(lab: Lab) -> list[dict]:
    return lab.cp.instances()


def _guest(lab: Lab, ref: str | None) -> dict:
    guests = _guests(lab)
    if not guests:
        raise LabError(f"lab {lab.name} has no guest")
    if ref is None:
        return guests[0]
    for g in guests:
        if ref == g["name"]:
            return g
    raise LabError(f"no guest {ref!r} in lab {lab.name} (guests: {', '.join(g['name'] for g in guests)})")


def _network(lab: Lab, ref: str | None) -> str:
    """A network id from a network name/id or a guest name; default the first guest's."""
    if ref is None:
        guests = _guests(lab)
        return guests[0]["network_id"] if guests else lab.cp.networks()[0].id
    for g in _guests(lab):
        if ref == g["name"]:
            return g["network_id"]
    for n in lab.cp.networks():
        if ref in (n.id, n.name):
            return n.id
    raise LabError(f"no guest or network {ref!r} in lab {lab.name} "
                   f"(guests: {', '.join(g['name'] for g in _guests(lab)) or '-'}; "
                   f"networks: {', '.join(n.name for n in lab.cp.networks())})")


def _net_name(lab: Lab, net_id: str) -> str:
    return lab.cp.network(net_id).name


def _node(lab: Lab, ref: str, role: str | None = None) -> str:
    names = [n.name for n in lab.topology.nodes if role is None or n.role == role]
    if ref not in names:
        raise LabError(f"no {role + ' ' if role else ''}node {ref!r} in lab {lab.name} (nodes: {', '.join(names)})")
    return ref


def _servers(lab: Lab, ref: str | None, every: bool) -> list[tuple[str, str]]:
    base, _, node = (ref or "").partition("@")
    network_nodes = [n.name for n in lab.topology.network_nodes]
    if base in network_nodes and not node:
        base, node = "", base
    net = _network(lab, base or None)
    hosts = [a["host"] for a in lab.cp.dhcp_agents_for(net)]
    if not hosts:
        raise LabError(f"network {_net_name(lab, net)} is hosted by no DHCP agent")
    if node:
        if node not in hosts:
            raise LabError(f"network {_net_name(lab, net)} has no DHCP server on {node!r} "
                           f"(servers on: {', '.join(hosts)})")
        hosts = [node]
    elif not every:
        hosts = hosts[:1]
    return [(net, h) for h in hosts]


def resolve(lab: Lab, kind: str, ref: str | None) -> Target:
    if kind == "guest":
        g = _guest(lab, ref)
        return Target(g["name"], guest=g["name"], network=g["network_id"], node=g["host"])
    if kind == "guest-servers":
        name, _, node = (ref or "").partition("@")
        g = _guest(lab, name or None)
        servers = _servers(lab, g["name"] + (f"@{node}" if node else ""), every=True)
        return Target(g["name"] + (f"@{node}" if node else ""), guest=g["name"], network=g["network_id"],
                      node=g["host"], servers=servers)
    if kind in ("server", "servers"):
        servers = _servers(lab, ref, every=kind == "servers")
        name = _net_name(lab, servers[0][0])
        return Target(",".join(f"{name}@{n}" for _, n in servers), network=servers[0][0], servers=servers)
    if kind == "network":
        net = _network(lab, ref)
        return Target(_net_name(lab, net), network=net)
    if kind == "node":
        return Target(ref, node=_node(lab, ref))
    if kind == "network-node":
        if ref is None:
            ref = lab.topology.network_nodes[0].name
        return Target(ref, node=_node(lab, ref, "network"))
    raise AssertionError(kind)


# --- the parts a fault touches ------------------------------------------------------------

def _dir(lab: Lab, net: str, node: str):
    return lab.paths.dhcp_dir(node, net)


def _dnsmasq_pid(lab: Lab, net: str, node: str) -> int | None:
    pid = sh.read_pid(str(_dir(lab, net, node) / "pid"))
    return pid if sh.pid_alive(pid) else None


def _interface(lab: Lab, net: str, node: str) -> str:
    return (_dir(lab, net, node) / "interface").read_text().strip()


def _server_ip(lab: Lab, net: str, node: str) -> str:
    for s in lab.dhcp_servers():
        if s["network"] == net and s["node"] == node and s["ip"]:
            return s["ip"]
    raise LabError(f"no DHCP port for network {net} on {node}")


def _write(path, text: str) -> None:
    """Replace a file the way the agent does (a new file moved into place)."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _wait_stopped(pid: int, timeout: float = 3.0) -> None:
    """Until the kernel shows `pid` stopped (state T): SIGSTOP is delivered asynchronously,
    and a busy machine may run the process a little longer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] in ("T", "t"):
                    return
        except OSError:
            return  # gone: nothing to wait for
        time.sleep(0.01)
    raise LabError(f"process {pid} did not stop within {timeout:.0f} s of SIGSTOP")


def _signal(pid: int | None, sig: int) -> None:
    if pid and sh.pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _terminate(pid: int | None, what: str, sig: int = signal.SIGTERM) -> None:
    if not pid or not sh.pid_alive(pid):
        return
    _signal(pid, sig)
    wait_for(lambda: not sh.pid_alive(pid), 5, f"{what} (pid {pid}) to exit")


def _agent_alive(lab: Lab, node: str) -> bool:
    """The node's DHCP agent runs (neither dead nor stopped)."""
    pid = lab.agent_pid(node, "dhcp")
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("T", "Z", "X")
    except (OSError, TypeError):
        return False


@contextlib.contextmanager
def _agent_frozen(lab: Lab, node: str):
    """Hold the node's DHCP agent still for a moment (SIGSTOP/SIGCONT, well under its
    report interval) so that its process monitor cannot race a change to dnsmasq."""
    pid = lab.agent_pid(node, "dhcp")
    running = _agent_alive(lab, node)
    if running:
        os.kill(pid, signal.SIGSTOP)
        _wait_stopped(pid)
    try:
        yield
    finally:
        if running:
            _signal(pid, signal.SIGCONT)


def _expected_host_file(lab: Lab, net: str) -> str:
    dhcp_subnets = {s.id for s in lab.cp.subnets(net) if s.enable_dhcp}
    return dnsmasq_files.host_file(lab.cp.ports(net), dhcp_subnets)


def _host_file_synced(lab: Lab, net: str, node: str) -> bool:
    try:
        return (_dir(lab, net, node) / "host").read_text() == _expected_host_file(lab, net)
    except OSError:
        return False


def _listening(lab: Lab, net: str, node: str) -> bool:
    if not _dnsmasq_pid(lab, net, node):
        return False
    out = sh.run(["ss", "-Hlun", "sport = :67"], lab.paths.qdhcp_ns(node, net), check=False).stdout
    return ":67" in out


def _wait_served(lab: Lab, net: str, nodes: list[str] | None = None, timeout: float = 15) -> None:
    """Until each server of `net` (or those on `nodes`) runs, listens and has the host
    file the control plane implies: the agent has caught up."""
    if not any(s.enable_dhcp for s in lab.cp.subnets(net)):
        return
    hosts = nodes or [a["host"] for a in lab.cp.dhcp_agents_for(net)]
    for node in hosts:
        wait_for(lambda node=node: _listening(lab, net, node) and _host_file_synced(lab, net, node), timeout,
                 f"the DHCP server of network {_net_name(lab, net)} on {node} to serve again")


def _notify_port_update(lab: Lab, net: str, port_id: str) -> None:
    lab.cp.notify(net, "port.update.end", {"port_id": port_id})


def _restart_dnsmasq(lab: Lab, net: str, node: str, leases: str | None = None) -> None:
    """Restart one dnsmasq with its own command line (as `systemctl restart` or the agent's
    restart would), optionally with a fresh lease file as Neutron writes it on restart."""
    pid = _dnsmasq_pid(lab, net, node)
    if not pid:
        raise LabError(f"no dnsmasq runs for network {_net_name(lab, net)} on {node}")
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0") if a]
    with _agent_frozen(lab, node):
        _terminate(pid, "dnsmasq")
        if leases is not None:
            _write(_dir(lab, net, node) / "leases", leases)
        sh.run(argv, lab.paths.qdhcp_ns(node, net))
    wait_for(lambda: _listening(lab, net, node), 10, f"dnsmasq on {node} to listen")


def _init_leases(lab: Lab, net: str) -> str:
    dhcp_subnets = {s.id for s in lab.cp.subnets(net) if s.enable_dhcp}
    return dnsmasq_files.init_leases_file(lab.cp.ports(net), dhcp_subnets, 86400)


def _free_mac(lab: Lab, prefix: str = "fa:16:3e") -> str:
    used = {p.mac for p in lab.cp.ports()}
    while True:
        mac = prefix + ":" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))
        if mac not in used:
            return mac


def _guest_port(lab: Lab, guest: str):
    return lab.cp.port(lab.cp.instance(guest)["port_id"])


def _link_attr(ns: str, dev: str) -> dict:
    return json.loads(sh.out(["ip", "-j", "addr", "show", "dev", dev], ns))[0]


def _agent_log_has(lab: Lab, node: str, needle: str, since: int) -> bool:
    try:
        with open(lab.paths.neutron_log(node, "neutron-dhcp-agent"), "rb") as f:
            f.seek(since)
            return needle.encode() in f.read()
    except OSError:
        return False


def _agent_log_size(lab: Lab, node: str) -> int:
    try:
        return lab.paths.neutron_log(node, "neutron-dhcp-agent").stat().st_size
    except OSError:
        return 0


# --- the catalogue ------------------------------------------------------------------------

class Fault:
    id: str = ""
    summary: str = ""
    target: str = "guest"  # guest | guest-servers | server | servers | network | network-node
    variants: tuple[str, ...] = ()  # the first is the default
    needs_new_port = False  # it shows on ports created after it (the guests already served keep their IP)
    # the buses (`lab up --bus`) it is reproduced on; without "embedded" it needs RabbitMQ
    buses: tuple[str, ...] = ("embedded",)

    def resolve(self, lab: Lab, ref: str | None, variant: str | None) -> Target:
        return resolve(lab, self.target, ref)

    def inject(self, lab: Lab, t: Target, variant: str | None, state: dict) -> None:
        raise NotImplementedError

    def heal(self, lab: Lab, state: dict) -> None:
        raise NotImplementedError


CATALOGUE: dict[str, Fault] = {}


def _register(cls: type[Fault]) -> type[Fault]:
    CATALOGUE[cls.id] = cls()
    return cls


@_register
class DnsmasqNotRunning(Fault):
    """The agent's process monitor respawns a dead dnsmasq within a check interval, so in
    the field dnsmasq stays dead when the agent is down too: the DHCP agent is stopped
    (SIGTERM, as its service manager stops it), then dnsmasq exits (SIGTERM). The pid file
    stays behind; nothing listens on :67; DISCOVERs reach the qdhcp tap unanswered."""
    id = "dnsmasq-not-running"
    summary = "the DHCP agent is stopped and dnsmasq exits, so nobody respawns it"
    target = "server"

    def inject(self, lab, t, variant, state):
        net, node = t.servers[0]
        state.update(network=net, node=node, agent_stopped=False)
        if _agent_alive(lab, node):
            lab.stop_agent(node, "dhcp")
            state["agent_stopped"] = True
        _terminate(_dnsmasq_pid(lab, net, node), "dnsmasq")

    def heal(self, lab, state):
        if state.get("agent_stopped"):
            lab.start_agent(state["node"], "dhcp")
        if _agent_alive(lab, state["node"]):
            _wait_served(lab, state["network"], [state["node"]])


@_register
class DnsmasqUnresponsive(Fault):
    """dnsmasq frozen with SIGSTOP: its PID is alive, so the agent's check passes; the
    socket's receive queue grows; no reply and no log line. SIGCONT heals (queued requests
    are then answered late)."""
    id = "dnsmasq-unresponsive"
    summary = "dnsmasq stopped (SIGSTOP): PID present, answers nothing, logs nothing"
    target = "server"

    def inject(self, lab, t, variant, state):
        net, node = t.servers[0]
        pid = _dnsmasq_pid(lab, net, node)
        if not pid:
            raise LabError(f"no dnsmasq runs for network {_net_name(lab, net)} on {node}")
        state.update(network=net, node=node, pid=pid)
        os.kill(pid, signal.SIGSTOP)
        _wait_stopped(pid)

    def heal(self, lab, state):
        _signal(state.get("pid"), signal.SIGCONT)


@_register
class HostEntryMissing(Fault):
    """The port's line is missing from the agent's `host` (and `addn_hosts`) file, as a
    lost port update leaves it, and dnsmasq re-read them (SIGHUP): "no address available".
    Heals with the next update for the port (the agent rewrites the files)."""
    id = "host-entry-missing"
    summary = "the guest's MAC is not in dnsmasq's host file (a lost port update)"
    target = "guest-servers"

    def inject(self, lab, t, variant, state):
        port = _guest_port(lab, t.guest)
        state.update(network=t.network, port_id=port.id, nodes=[n for _, n in t.servers], files={})
        for net, node in t.servers:
            d = _dir(lab, net, node)
            for name, keep in (("host", lambda line: not line.startswith(port.mac + ",")),
                               ("addn_hosts", lambda line: not line.startswith(port.ip + "\t"))):
                text = (d / name).read_text()
                state["files"][str(d / name)] = text
                _write(d / name, "".join(line for line in text.splitlines(True) if keep(line)))
            _signal(_dnsmasq_pid(lab, net, node), signal.SIGHUP)

    def heal(self, lab, state):
        _heal_files_by_update(lab, state)


def _heal_files_by_update(lab: Lab, state: dict) -> None:
    """Let the agent rewrite what a fault changed (a port update, as the field heals);
    when no agent listens, put back what was there and SIGHUP."""
    if not state.get("nodes"):
        return
    net = state["network"]
    _notify_port_update(lab, net, state["port_id"])
    try:
        _wait_served(lab, net, state["nodes"], timeout=4)
        return
    except LabError:
        pass
    for path, text in state.get("files", {}).items():
        _write(Path(path), text)
    for node in state["nodes"]:
        _signal(_dnsmasq_pid(lab, net, node), signal.SIGHUP)


@_register
class HostEntryConflict(Fault):
    """duplicate-ip: the guest's IP appears twice in `host`: a line of a deleted port
    (another MAC) kept before the guest's, as after a lost delete when Neutron reused the
    IP; dnsmasq logs "duplicate dhcp-host IP address" and ignores the guest's line.
    other-ip: the guest's MAC mapped to another (free) IP, as a lost fixed-IP update
    leaves it; the guest gets an address the port does not have."""
    id = "host-entry-conflict"
    summary = "host file maps the guest's IP twice (duplicate-ip) or its MAC to another IP (other-ip)"
    target = "guest-servers"
    variants = ("duplicate-ip", "other-ip")

    def inject(self, lab, t, variant, state):
        port = _guest_port(lab, t.guest)
        servers = t.servers
        state.update(network=t.network, port_id=port.id, nodes=[n for _, n in servers], files={})
        if variant == "duplicate-ip":
            bad = f"{_free_mac(lab)},{dnsmasq_files.hostname(port.ip)}.{dnsmasq_files.DOMAIN},{port.ip}\n"
        else:
            ip = _free_ip(lab, t.network)
            state["other_ip"] = ip
            bad = f"{port.mac},{dnsmasq_files.hostname(ip)}.{dnsmasq_files.DOMAIN},{ip}\n"
        for net, node in servers:
            path = _dir(lab, net, node) / "host"
            text = path.read_text()
            state["files"][str(path)] = text
            out = []
            for line in text.splitlines(True):
                if line.startswith(port.mac + ","):
                    out.append(bad)  # before the guest's own line, or instead of it
                    if variant == "other-ip":
                        continue
                out.append(line)
            _write(path, "".join(out))
            _signal(_dnsmasq_pid(lab, net, node), signal.SIGHUP)

    def heal(self, lab, state):
        _heal_files_by_update(lab, state)


def _free_ip(lab: Lab, net: str) -> str:
    sub = next(s for s in lab.cp.subnets(net) if s.enable_dhcp)
    used = {p.ip for p in lab.cp.ports(net)} | {sub.gateway_ip}
    start, end = int(ipaddress.ip_address(sub.pool_start)), int(ipaddress.ip_address(sub.pool_end))
    for i in range(end, start - 1, -1):
        ip = str(ipaddress.ip_address(i))
        if ip not in used:
            return ip
    raise LabError(f"subnet {sub.cidr}: no free address")


# A DHCPRELEASE as a client sends it (dhclient -r, udhcpc -R): unicast from the leased
# address to the server that granted it.
RELEASE_SCRIPT = r"""
import os, socket, struct, sys
ip, mac, server, clid = sys.argv[1:5]
hw = bytes.fromhex(mac.replace(":", ""))
opts = bytes([53, 1, 7, 54, 4]) + socket.inet_aton(server)
if clid != "*":
    c = bytes.fromhex(clid.replace(":", ""))
    opts += bytes([61, len(c)]) + c
pkt = struct.pack("!BBBBIHH4s4s4s4s16s64s128s4s", 1, 1, 6, 0, int.from_bytes(os.urandom(4), "big"), 0, 0,
                  socket.inet_aton(ip), bytes(4), bytes(4), bytes(4), hw, b"", b"", b"\x63\x82\x53\x63")
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((ip, 68))
s.sendto(pkt + opts + b"\xff", (server, 67))
"""


@_register
class StaleLease(Fault):
    """The guest's IP is still leased to another MAC in dnsmasq (a deleted port's VM whose
    lease was never released; Neutron then gave the IP to this port). Built with real DHCP:
    the guest's own lease is released, the old MAC's host line takes its place and a real
    client with the old MAC leases the IP, then the agent's next update brings the guest's
    line back. dnsmasq: "not using configured address ... because it is leased to ...".
    Heals with a dnsmasq restart that writes a fresh lease file, as Neutron's restart does."""
    id = "stale-lease"
    summary = "the guest's IP is held in dnsmasq's leases by an old MAC"
    target = "guest-servers"

    def inject(self, lab, t, variant, state):
        port = _guest_port(lab, t.guest)
        servers = t.servers
        old_mac = _free_mac(lab)
        gns = lab.paths.guest_ns(t.guest)
        prefix = ipaddress.ip_network(lab.cp.subnet(port.subnet_id).cidr).prefixlen
        state.update(network=t.network, port_id=port.id, nodes=[n for _, n in servers], old_mac=old_mac,
                     files={})
        for net, node in servers:  # one server at a time: the old client's lease must be on each
            d, sid = _dir(lab, net, node), _server_ip(lab, net, node)
            clid = "*"
            for line in (d / "leases").read_text().splitlines():
                f = line.split()
                if len(f) >= 5 and f[1] == port.mac:
                    clid = f[4]
            sh.run(["ip", "addr", "replace", f"{port.ip}/{prefix}", "dev", "eth0"], gns)
            try:
                sh.run([sys.executable, "-c", RELEASE_SCRIPT, port.ip, port.mac, sid, clid], gns)
            finally:
                sh.run(["ip", "addr", "flush", "dev", "eth0"], gns, check=False)
            text = state["files"][str(d / "host")] = (d / "host").read_text()
            _write(d / "host", text.replace(port.mac + ",", old_mac + ",", 1))
            _signal(_dnsmasq_pid(lab, net, node), signal.SIGHUP)
            # the old VM's client, on the same segment, leases the address
            sh.run(["ip", "link", "set", "eth0", "address", old_mac], gns)
            try:
                r = sh.run(["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1", "-A", "1",
                            "-s", "/bin/true"], gns, check=False)
            finally:
                sh.run(["ip", "link", "set", "eth0", "address", port.mac], gns)
                sh.run(["ip", "addr", "flush", "dev", "eth0"], gns, check=False)
            _write(d / "host", text)
            _signal(_dnsmasq_pid(lab, net, node), signal.SIGHUP)
            if f"lease of {port.ip} obtained from {sid}" not in r.stdout + r.stderr:
                raise LabError(f"stale-lease: the old MAC could not lease {port.ip} from {sid}: "
                               f"{(r.stdout + r.stderr).strip().splitlines()[-1:]}")
        # the agent's next update for the port rewrites the files as they were
        _heal_files_by_update(lab, state)

    def heal(self, lab, state):
        net = state.get("network")
        for node in state.get("nodes", []):
            if _dnsmasq_pid(lab, net, node):
                _restart_dnsmasq(lab, net, node, leases=_init_leases(lab, net))


@_register
class DhcpLeaseLimit(Fault):
    """dhcp_agent.ini gets a `dnsmasq_lease_max` too low and the agent is restarted, which
    restarts dnsmasq with `--dhcp-lease-max=N` and Neutron's initial lease file (one lease
    per port). full: N = the ports now on the network, so the next new port gets
    "no leases left"; below: N is under that, and dnsmasq refuses to start ("too many
    stored leases"; the agent's respawns keep failing)."""
    id = "dhcp-lease-limit"
    summary = "dnsmasq_lease_max too low: new ports get no lease (full) or dnsmasq will not start (below)"
    target = "servers"
    variants = ("full", "below")

    def inject(self, lab, t, variant, state):
        net = t.network
        hosts = len([line for line in _expected_host_file(lab, net).splitlines() if line])
        limit = hosts if variant == "full" else max(1, hosts - 1)
        state.update(network=net, nodes=[n for _, n in t.servers], inis={}, limit=limit)
        since = {}
        for _, node in t.servers:
            ini = self._ini(lab, node)
            text = ini.read_text()
            state["inis"][node] = text
            ini.write_text(_set_ini(text, "DEFAULT", "dnsmasq_lease_max", str(limit)))
            since[node] = _agent_log_size(lab, node)
            self._restart_agent(lab, net, node)
        if variant == "full":
            _wait_served(lab, net, state["nodes"])
        else:
            for node in state["nodes"]:
                wait_for(lambda node=node: _agent_log_has(lab, node, "too many stored leases", since[node]), 10,
                         f"the agent on {node} to try dnsmasq")

    @staticmethod
    def _ini(lab: Lab, node: str) -> Path:
        return lab.paths.node_root(node) / "etc/neutron/dhcp_agent.ini"

    @staticmethod
    def _restart_agent(lab: Lab, net: str, node: str) -> None:
        lab.stop_agent(node, "dhcp")
        _terminate(_dnsmasq_pid(lab, net, node), "dnsmasq")
        lab.start_agent(node, "dhcp")

    def heal(self, lab, state):
        for node, text in state.get("inis", {}).items():
            self._ini(lab, node).write_text(text)
            self._restart_agent(lab, state["network"], node)
        if state.get("inis"):
            _wait_served(lab, state["network"], state["nodes"])


def _set_ini(text: str, section: str, key: str, value: str) -> str:
    out, in_section, done = [], False, False
    for line in text.splitlines():
        if line.strip().startswith("["):
            if in_section and not done:
                out.append(f"{key} = {value}")
                done = True
            in_section = line.strip() == f"[{section}]"
        elif in_section and re.match(rf"\s*{re.escape(key)}\s*=", line):
            line, done = f"{key} = {value}", True
        out.append(line)
    if not done:
        if not in_section:
            out.append(f"[{section}]")
        out.append(f"{key} = {value}")
    return "\n".join(out) + "\n"


@_register
class DhcpOptionsWrong(Fault):
    """The agent's `opts` file as it must not be, re-read with SIGHUP. no-router: no router
    option and no default route in option 121/249 (what Neutron writes for a subnet without
    gateway) while the subnet has one: the guest gets an IP but no way out. wrong-mtu: an
    extra subnet option advertising MTU 9000 on the 1450 overlay."""
    id = "dhcp-options-wrong"
    summary = "dnsmasq's opts file lacks the router (no-router) or advertises a wrong MTU (wrong-mtu)"
    target = "servers"
    variants = ("no-router", "wrong-mtu")

    def inject(self, lab, t, variant, state):
        net = t.network
        sub = next(s for s in lab.cp.subnets(net) if s.enable_dhcp)
        state.update(network=net, nodes=[n for _, n in t.servers], files={},
                     port_id=next(p.id for p in lab.cp.ports(net)))
        for _, node in t.servers:
            path = _dir(lab, net, node) / "opts"
            text = state["files"][str(path)] = path.read_text()
            out = []
            for line in text.splitlines():
                if variant == "no-router" and line.startswith(f"tag:subnet-{sub.id},"):
                    if ",option:router," in line:
                        line = line.split(",option:router,")[0] + ",option:router"
                    line = line.replace(f",0.0.0.0/0,{sub.gateway_ip}", "")
                out.append(line)
            if variant == "wrong-mtu":
                out.append(f"tag:subnet-{sub.id},option:mtu,9000")
            _write(path, "\n".join(out) + "\n")
            _signal(_dnsmasq_pid(lab, net, node), signal.SIGHUP)

    def heal(self, lab, state):
        if not state.get("nodes"):
            return
        # the agent rewrites opts with the host file on the next update of the network
        net = state["network"]
        _notify_port_update(lab, net, state["port_id"])
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            if all(Path(p).read_text() == t for p, t in state["files"].items()):
                return
            time.sleep(0.05)
        for path, text in state["files"].items():
            _write(Path(path), text)
        for node in state["nodes"]:
            _signal(_dnsmasq_pid(lab, net, node), signal.SIGHUP)


@_register
class DhcpDisabled(Fault):
    """enable_dhcp set False on the network's subnets through the control plane; the
    agents restart and, with no DHCP subnet left, disable dnsmasq."""
    id = "dhcp-disabled"
    summary = "the subnet's enable_dhcp turned off (the agents stop dnsmasq)"
    target = "network"

    def inject(self, lab, t, variant, state):
        net = t.network
        subs = [s.id for s in lab.cp.subnets(net) if s.enable_dhcp]
        state.update(network=net, subnets=subs, nodes=[a["host"] for a in lab.cp.dhcp_agents_for(net)])
        for sid in subs:
            lab.cp.update_subnet(sid, enable_dhcp=False)
        for node in state["nodes"]:
            if _agent_alive(lab, node):
                wait_for(lambda node=node: not _dnsmasq_pid(lab, net, node), 10, f"dnsmasq on {node} to stop")

    def heal(self, lab, state):
        for sid in state.get("subnets", []):
            lab.cp.update_subnet(sid, enable_dhcp=True)
        if state.get("subnets"):
            _wait_served(lab, state["network"], [n for n in state["nodes"] if _agent_alive(lab, n)])


@_register
class DhcpNamespaceBroken(Fault):
    """The DHCP port's device in qdhcp-<network> loses its IP (no-address: dnsmasq logs
    "DHCP packet received on ns-... which has no address") or goes down (link-down)."""
    id = "dhcp-namespace-broken"
    summary = "the ns- device in qdhcp has no IP (no-address) or is down (link-down)"
    target = "server"
    variants = ("no-address", "link-down")

    def inject(self, lab, t, variant, state):
        net, node = t.servers[0]
        ns, dev = lab.paths.qdhcp_ns(node, net), _interface(lab, net, node)
        state.update(network=net, node=node, namespace=ns, device=dev, variant=variant)
        if variant == "no-address":
            addrs = [f"{a['local']}/{a['prefixlen']}" for a in _link_attr(ns, dev).get("addr_info", [])
                     if a.get("family") == "inet"]
            state["addresses"] = addrs
            for a in addrs:
                sh.run(["ip", "addr", "del", a, "dev", dev], ns)
        else:
            sh.run(["ip", "link", "set", dev, "down"], ns)

    def heal(self, lab, state):
        if not state.get("device"):
            return
        ns, dev = state["namespace"], state["device"]
        if state["variant"] == "no-address":
            for a in state.get("addresses", []):
                sh.run(["ip", "addr", "replace", a, "dev", dev], ns)
        else:
            sh.run(["ip", "link", "set", dev, "up"], ns)
        wait_for(lambda: _listening(lab, state["network"], state["node"]), 10, "dnsmasq to listen again")


@_register
class DnsmasqPortConflict(Fault):
    """Another dnsmasq — started by hand in the qdhcp namespace without --bind-interfaces,
    so it holds 0.0.0.0:67 exclusively, and serving another range — took UDP 67 when
    Neutron's dnsmasq was down; the agent's respawns fail with "failed to bind DHCP server
    socket: Address already in use". Heals when that process is killed (the agent's next
    respawn succeeds)."""
    id = "dnsmasq-port-conflict"
    summary = "another process holds UDP 67 in qdhcp; Neutron's dnsmasq cannot start"
    target = "server"

    def inject(self, lab, t, variant, state):
        net, node = t.servers[0]
        root = lab.paths.node_root(node)
        pidfile, leasefile = root / "run/dnsmasq/dnsmasq.pid", root / "var/lib/misc/dnsmasq.leases"
        state.update(network=net, node=node, files=[str(pidfile), str(leasefile)])
        pidfile.parent.mkdir(parents=True, exist_ok=True)
        leasefile.parent.mkdir(parents=True, exist_ok=True)
        since = _agent_log_size(lab, node)
        with _agent_frozen(lab, node):
            _terminate(_dnsmasq_pid(lab, net, node), "dnsmasq")
            sh.run(["dnsmasq", "--port=0", "--conf-file=/dev/null", "--dhcp-range=192.168.122.2,192.168.122.254,1h",
                    f"--pid-file={pidfile}", f"--dhcp-leasefile={leasefile}"], lab.paths.qdhcp_ns(node, net))
            wait_for(lambda: sh.pid_alive(sh.read_pid(str(pidfile))), 5, "the other dnsmasq to start")
            state["pid"] = sh.read_pid(str(pidfile))
        if _agent_alive(lab, node):
            wait_for(lambda: _agent_log_has(lab, node, "Address already in use", since), 10,
                     f"the agent on {node} to try to respawn dnsmasq")

    def heal(self, lab, state):
        if state.get("pid"):
            _terminate(state["pid"], "the other dnsmasq")
        for f in state.get("files", []):
            with contextlib.suppress(OSError):
                os.unlink(f)
        if state.get("node") and _agent_alive(lab, state["node"]):
            _wait_served(lab, state["network"], [state["node"]])


@_register
class RogueDhcpServer(Fault):
    """A VM that is no Neutron port — a hand-made libvirt domain (52:54:00 MAC, `vnet`
    device) plugged into br-int on the guest's compute node with the network's local VLAN
    — runs a DHCP server for the same subnet that answers at once and broadcasts its
    replies (so the port's ingress rules let them in), offering another address and itself
    as router. Which OFFER the guest takes is a race (the rogue usually wins here); to
    decide it, freeze Neutron's dnsmasq as well (dnsmasq-unresponsive)."""
    id = "rogue-dhcp-server"
    summary = "a non-Neutron DHCP server on the guest's segment offers other addresses"
    target = "guest"

    def inject(self, lab, t, variant, state):
        node, net = t.node, t.network
        sub = next(s for s in lab.cp.subnets(net) if s.enable_dhcp)
        cidr = ipaddress.ip_network(sub.cidr)
        ip = _free_ip(lab, net)
        first = ipaddress.ip_address(ip) - 50
        used = {p.ip for p in lab.cp.ports(net)}
        start = next(str(first + i) for i in range(50) if str(first + i) not in used)
        name = "vrouter1"
        ns, nns = lab.paths.guest_ns(name), lab.paths.node_ns(node)
        links = json.loads(sh.out(["ip", "-j", "link", "show"], nns))
        vnet = next(f"vnet{i}" for i in range(100) if f"vnet{i}" not in {link["ifname"] for link in links})
        gdir = lab.paths.guest_dir(name)
        mtu = lab.cp.network(net).mtu
        state.update(node=node, namespace=ns, device=vnet, dir=str(gdir))
        gdir.mkdir(parents=True, exist_ok=True)
        sh.run(["ip", "netns", "add", ns])
        sh.run(["ip", "link", "add", "eth0", "netns", ns, "address", _free_mac(lab, "52:54:00"), "mtu", str(mtu),
                "type", "veth", "peer", "name", vnet, "netns", nns, "mtu", str(mtu)])
        for n, dev in ((ns, "eth0"), (nns, vnet)):
            sh.run(["ethtool", "-K", dev, "tx", "off"], n, check=False)
        sh.ip_batch(["link set lo up", f"addr add {ip}/{cidr.prefixlen} dev eth0", "link set eth0 up"], ns)
        sh.run(["ip", "-n", nns, "link", "set", vnet, "up"])
        lab.ovs(node).vsctl("--may-exist", "add-port", "br-int", vnet, f"tag={lab.cp.local_vlan(node, net)}")
        sh.run(["dnsmasq", "--port=0", "--conf-file=/dev/null", "--no-ping", "--dhcp-broadcast",
                f"--dhcp-range={start},{ipaddress.ip_address(ip) - 1},{cidr.netmask},12h",
                f"--dhcp-option=option:router,{ip}", f"--dhcp-leasefile={gdir}/dnsmasq.leases",
                f"--pid-file={gdir}/dnsmasq.pid", "--log-dhcp", f"--log-facility={gdir}/dnsmasq.log"], ns)
        wait_for(lambda: sh.pid_alive(sh.read_pid(str(gdir / "dnsmasq.pid"))), 5, "the other DHCP server to start")
        state.update(pid=sh.read_pid(str(gdir / "dnsmasq.pid")), ip=ip)
        wait_for(lambda: ":67" in sh.run(["ss", "-Hlun", "sport = :67"], ns, check=False).stdout, 5,
                 "the other DHCP server to listen")

    def heal(self, lab, state):
        if state.get("pid"):
            _terminate(state["pid"], "the other DHCP server")
        if state.get("device"):
            lab.ovs(state["node"]).vsctl("--if-exists", "del-port", "br-int", state["device"])
        if state.get("namespace"):
            sh.run(["ip", "netns", "del", state["namespace"]], check=False)
        if state.get("dir"):
            subprocess.run(["rm", "-rf", state["dir"]], check=False)


@_register
class PortDeadVlan(Fault):
    """The guest's qvo on br-int tagged 4095, the dead VLAN the OVS agent parks unbound or
    admin-down ports on; br-int drops everything from it."""
    id = "port-dead-vlan"
    summary = "the guest's qvo port sits on the dead VLAN 4095"
    target = "guest"

    def inject(self, lab, t, variant, state):
        qvo = device("qvo", _guest_port(lab, t.guest).id)
        ovs = lab.ovs(t.node)
        state.update(node=t.node, port=qvo, tag=ovs.vsctl("get", "Port", qvo, "tag").strip())
        ovs.vsctl("set", "Port", qvo, f"tag={DEAD_VLAN}")

    def heal(self, lab, state):
        if state.get("tag"):
            lab.ovs(state["node"]).vsctl("set", "Port", state["port"], f"tag={state['tag']}")


@_register
class VifPlugMissing(Fault):
    """The hybrid plug is incomplete: the qvb/qvo veth pair is gone (veth-missing: br-int
    keeps its qvo record, "could not open network device") or the tap is down (tap-down)."""
    id = "vif-plug-missing"
    summary = "the guest's qvb/qvo veth is gone (veth-missing) or its tap is down (tap-down)"
    target = "guest"
    variants = ("veth-missing", "tap-down")

    def inject(self, lab, t, variant, state):
        port = _guest_port(lab, t.guest)
        nns = lab.paths.node_ns(t.node)
        state.update(node=t.node, port_id=port.id, variant=variant)
        if variant == "tap-down":
            sh.run(["ip", "link", "set", device("tap", port.id), "down"], nns)
            return
        qvo = device("qvo", port.id)
        ovs = lab.ovs(t.node)
        state.update(tag=ovs.vsctl("get", "Port", qvo, "tag").strip(),
                     external_ids=json.loads(ovs.vsctl("--format=json", "--columns=external_ids", "list",
                                                       "Interface", qvo))["data"][0][0][1],
                     mtu=_link_attr(nns, qvo)["mtu"])
        sh.run(["ip", "link", "del", device("qvb", port.id)], nns)

    def heal(self, lab, state):
        if not state.get("port_id"):
            return
        pid, nns = state["port_id"], lab.paths.node_ns(state["node"])
        if state["variant"] == "tap-down":
            sh.run(["ip", "link", "set", device("tap", pid), "up"], nns)
            return
        qbr, qvb, qvo, mtu = device("qbr", pid), device("qvb", pid), device("qvo", pid), state["mtu"]
        if sh.run(["ip", "link", "show", qvb], nns, check=False).returncode:
            sh.ip_batch([f"link add {qvb} mtu {mtu} type veth peer name {qvo} mtu {mtu}",
                         f"link set {qvb} master {qbr} up", f"link set {qvo} up"], nns)
            for dev in (qvb, qvo):
                sh.run(["ethtool", "-K", dev, "tx", "off"], nns, check=False)
        ids = [f"external_ids:{k}={v}" for k, v in state["external_ids"]]
        ovs = lab.ovs(state["node"])
        # two transactions: vswitchd must let go of the vanished device before the new one
        # of the same name is added, or it keeps reading the dead one
        ovs.vsctl("--if-exists", "del-port", "br-int", qvo)
        ovs.vsctl("add-port", "br-int", qvo, f"tag={state['tag']}", "--", "set", "Interface", qvo, *ids)


@_register
class L2PathBroken(Fault):
    """The frame is lost between two hops. wrong-tag: the guest's qvo carries a local VLAN
    br-tun has no translation for (dropped in br-tun table 22). missing-tunnel-flows: the
    node's br-tun lacks the network's flows (tun_id -> local VLAN, local VLAN -> tunnels),
    as an OVS agent that never finished wiring the network leaves it. ovs-restarted:
    ovs-vswitchd on the node restarted (target: a node; default the guest's) and, with
    fail_mode=secure and no agent resync, br-int and br-tun have no flows at all.
    Heal: the agent's resync (tag and flows put back)."""
    id = "l2-path-broken"
    summary = "frames lost between hops: no tunnel flows, a wrong local VLAN, or OVS restarted"
    target = "guest"
    variants = ("missing-tunnel-flows", "wrong-tag", "ovs-restarted")

    def resolve(self, lab, ref, variant):
        if variant == "ovs-restarted" and ref in [n.name for n in lab.topology.nodes]:
            return resolve(lab, "node", ref)
        return resolve(lab, "guest", ref)

    def inject(self, lab, t, variant, state):
        state.update(variant=variant, node=t.node)
        ovs = lab.ovs(t.node)
        if variant == "ovs-restarted":
            ovs.stop_vswitchd()
            ovs.start_vswitchd()
            wait_for(lambda: "NXST_FLOW" in ovs.ofctl("dump-flows", "br-tun", check=False), 10, "ovs-vswitchd")
            return
        net = lab.cp.network(t.network)
        vlan = lab.cp.local_vlan(t.node, net.id)
        state.update(network=net.id, segmentation_id=net.segmentation_id, vlan=vlan)
        if variant == "wrong-tag":
            qvo = device("qvo", _guest_port(lab, t.guest).id)
            used = {int(x) for x in re.findall(r"\d+", ovs.vsctl("--columns=tag", "--bare", "list", "Port"))}
            state.update(port=qvo, tag=vlan)
            ovs.vsctl("set", "Port", qvo, f"tag={next(v for v in range(1, 4094) if v not in used)}")
        else:
            ovs.ofctl("del-flows", "br-tun", f"table=4,tun_id=0x{net.segmentation_id:x}")
            ovs.ofctl("del-flows", "br-tun", f"table=22,dl_vlan={vlan}")

    def heal(self, lab, state):
        node, variant = state.get("node"), state.get("variant")
        if not node:
            return
        ovs = lab.ovs(node)
        tun_ports = [tunnel_port_name(lab.underlay_ip(n.name)) for n in lab.topology.nodes if n.name != node]
        if variant == "ovs-restarted":
            nets = [(n.segmentation_id, lab.cp.local_vlan(node, n.id)) for n in lab.cp.networks()]
            ovs.replace_flows("br-int", br_int_flows())
            ovs.replace_flows("br-tun", br_tun_flows(tun_ports, nets))
        elif variant == "wrong-tag":
            ovs.vsctl("set", "Port", state["port"], f"tag={state['tag']}")
        elif "vlan" in state:
            seg, vlan = state["segmentation_id"], state["vlan"]
            ovs.add_flows("br-tun", [f for f in br_tun_flows(tun_ports, [(seg, vlan)])
                                     if f"tun_id=0x{seg:x}," in f or f"dl_vlan={vlan}," in f])


# Flush the conntrack table of the namespace it runs in (ctnetlink IPCTNL_MSG_CT_DELETE
# without a tuple), as `conntrack -F` would.
CONNTRACK_FLUSH_SCRIPT = r"""
import socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
body = struct.pack("=BBH", socket.AF_INET, 0, 0)
s.send(struct.pack("=LHHLL", 16 + len(body), (1 << 8) | 2, 1 | 4, 1, 0) + body)
err = struct.unpack("=i", s.recv(4096)[16:20])[0]
raise SystemExit(f"conntrack flush failed: errno {-err}" if err else 0)
"""


@_register
class SecurityGroupDropsDhcp(Fault):
    """The port's ingress chain neutron-openvswi-i<port> no longer lets DHCP replies in:
    no-return: its RETURN rules for udp 67->68 are gone, so OFFERs fall to the sg-fallback
    DROP (and the conntrack entries they had let in are cleared, as Neutron does);
    drop-rule: a DROP for udp 67->68 sits on top of it. The DROP counters rise.
    Heal: the firewall driver refreshes the node's rules."""
    id = "security-group-drops-dhcp"
    summary = "the port's ingress chain drops DHCP replies"
    target = "guest"
    variants = ("no-return", "drop-rule")

    def inject(self, lab, t, variant, state):
        port = _guest_port(lab, t.guest)
        ns, chain = lab.paths.node_ns(t.node), firewall.chain("i", port.id)
        state.update(node=t.node)
        if variant == "drop-rule":
            sh.run(["iptables", "-I", chain, "1", "-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68",
                    "-j", "DROP"], ns)
            return
        for dst in (f"{port.ip}/32", "255.255.255.255/32"):
            sh.run(["iptables", "-D", chain, "-d", dst, "-p", "udp", "-m", "udp", "--sport", "67", "--dport", "68",
                    "-j", "RETURN"], ns)
        # Neutron clears the conntrack entries the removed rules had let in; else a recent
        # exchange keeps replies ESTABLISHED for minutes
        sh.run([sys.executable, "-c", CONNTRACK_FLUSH_SCRIPT], ns)

    def heal(self, lab, state):
        if state.get("node"):
            lab.apply_firewall(state["node"])


@_register
class AntiSpoofingDrop(Fault):
    """The guest's eth0 now has another MAC (a cloned image's fixed MAC, MAC randomisation):
    Neutron's anti-spoofing chain neutron-openvswi-s<port> drops everything it sends but
    the DHCP broadcasts, and dnsmasq knows no host for that MAC."""
    id = "anti-spoofing-drop"
    summary = "the guest sends with a MAC its port does not allow"
    target = "guest"

    def inject(self, lab, t, variant, state):
        gns = lab.paths.guest_ns(t.guest)
        state.update(namespace=gns, mac=_link_attr(gns, "eth0")["address"])
        sh.run(["ip", "link", "set", "eth0", "address", _free_mac(lab)], gns)

    def heal(self, lab, state):
        if state.get("mac"):
            sh.run(["ip", "link", "set", "eth0", "address", state["mac"]], state["namespace"])


@_register
class UdpChecksumBad(Fault):
    """Transmit checksum offload back on for the DHCP port's ns- device in qdhcp (the lab,
    like Neutron's checksum-fill rule, keeps it off). dnsmasq's replies then leave with a
    partial checksum that nobody completes — userspace OVS does not — and reach the guest
    with a bad UDP checksum, which its DHCP client drops. Of the devices on the path this
    is the one that shows the symptom for replies: tap, qvb, qvo, the guest's eth0 and
    the server's br-int tap do not."""
    id = "udp-checksum-bad"
    summary = "tx checksum offload on the DHCP port: replies carry bad UDP checksums"
    target = "server"

    def inject(self, lab, t, variant, state):
        net, node = t.servers[0]
        ns, dev = lab.paths.qdhcp_ns(node, net), _interface(lab, net, node)
        state.update(namespace=ns, device=dev)
        sh.run(["ethtool", "-K", dev, "tx", "on"], ns)

    def heal(self, lab, state):
        if state.get("device"):
            sh.run(["ethtool", "-K", state["device"], "tx", "off"], state["namespace"])


@_register
class MtuMismatch(Fault):
    """underlay: every node's underlay interface (eth1) MTU drops to 1400, below the 1500
    that a 1450 VXLAN network needs: DHCP still works (small packets), big packets die
    (vswitchd: "Message too long"). advertised: the network's MTU in Neutron becomes 1500
    (as a global_physnet_mtu set too high gives), the agents restart dnsmasq advertising
    1500 while the path carries 1450: the guest takes 1500 and its big packets die."""
    id = "mtu-mismatch"
    summary = "the underlay MTU is too low (underlay) or the advertised MTU too high (advertised)"
    target = "network"
    variants = ("underlay", "advertised")

    def inject(self, lab, t, variant, state):
        state.update(variant=variant, network=t.network)
        if variant == "underlay":
            state["mtus"] = {}
            for n in lab.topology.nodes:
                ns = lab.paths.node_ns(n.name)
                state["mtus"][n.name] = _link_attr(ns, "eth1")["mtu"]
                sh.run(["ip", "link", "set", "eth1", "mtu", "1400"], ns)
            return
        self._set_mtu(lab, state, t.network, 1500)

    @staticmethod
    def _set_mtu(lab: Lab, state: dict, net: str, mtu: int) -> None:
        old = lab.cp.network(net).mtu
        state.setdefault("mtu", old)
        nodes = [a["host"] for a in lab.cp.dhcp_agents_for(net)]
        pids = {n: _dnsmasq_pid(lab, net, n) for n in nodes}
        lab.cp.db.execute("UPDATE networks SET mtu=? WHERE id=?", (mtu, net))
        sub = lab.cp.subnets(net)[0]
        lab.cp.notify(net, "subnet.update.end", {"subnet_id": sub.id})
        for n in nodes:
            if _agent_alive(lab, n):
                wait_for(lambda n=n: _dnsmasq_pid(lab, net, n) not in (None, pids[n]) and _listening(lab, net, n),
                         10, f"dnsmasq on {n} to restart")

    def heal(self, lab, state):
        if state.get("variant") == "underlay":
            for node, mtu in state.get("mtus", {}).items():
                sh.run(["ip", "link", "set", "eth1", "mtu", str(mtu)], lab.paths.node_ns(node))
        elif state.get("mtu"):
            self._set_mtu(lab, {}, state["network"], state["mtu"])


@_register
class GuestNotRequesting(Fault):
    """The guest's DHCP client never gets a packet out: eth0 is down inside the guest (an
    image whose network config does not bring it up). No DISCOVER reaches the tap."""
    id = "guest-not-requesting"
    summary = "the guest's eth0 is down: its DHCP client sends nothing"
    target = "guest"

    def inject(self, lab, t, variant, state):
        gns = lab.paths.guest_ns(t.guest)
        state.update(namespace=gns)
        sh.run(["ip", "link", "set", "eth0", "down"], gns)

    def heal(self, lab, state):
        if state.get("namespace"):
            sh.run(["ip", "link", "set", "eth0", "up"], state["namespace"])


@_register
class DhcpAgentDown(Fault):
    """The DHCP agent process on a network node dies (killed: SIGKILL, as a crash or the
    OOM killer), is stopped (stopped: SIGTERM) or hangs (hung: SIGSTOP): dnsmasq keeps
    serving what it knows, but nothing applies new ports (a guest created now gets no IP),
    nothing respawns dnsmasq, and agent_down_time after its last heartbeat the server shows
    it dead. Heal: the agent starts (or continues), is "revived" and resyncs."""
    id = "dhcp-agent-down"
    summary = "the DHCP agent is dead or hung: new ports never reach dnsmasq"
    target = "network-node"
    variants = ("killed", "stopped", "hung")
    needs_new_port = True
    buses = ("embedded", "rabbitmq")

    def inject(self, lab, t, variant, state):
        pid = lab.agent_pid(t.node, "dhcp")
        if not _agent_alive(lab, t.node):
            raise LabError(f"the DHCP agent on {t.node} is not running")
        state.update(node=t.node, variant=variant, pid=pid)
        if variant == "hung":
            os.kill(pid, signal.SIGSTOP)
            _wait_stopped(pid)
        else:
            _terminate(pid, "neutron-dhcp-agent", signal.SIGKILL if variant == "killed" else signal.SIGTERM)

    def heal(self, lab, state):
        node = state.get("node")
        if not node:
            return
        if state["variant"] == "hung":
            _signal(state["pid"], signal.SIGCONT)
        else:
            lab.start_agent(node, "dhcp")
        agent_id = next(a["id"] for a in lab.cp.agents() if a["host"] == node and a["binary"] == "neutron-dhcp-agent")
        for net in lab.cp.networks_for_agent(agent_id):
            _wait_served(lab, net, [node])


@_register
class NetworkNotHosted(Fault):
    """The network removed from every DHCP agent (as the server does when its agents are
    found dead and none is left to take it); each agent is told and disables its dnsmasq.
    Heal: the network is scheduled back on the same agents."""
    id = "network-not-hosted"
    summary = "no DHCP agent hosts the network (unscheduled; dnsmasq disabled)"
    target = "network"

    def inject(self, lab, t, variant, state):
        net = t.network
        agents = [(a["id"], a["host"]) for a in lab.cp.dhcp_agents_for(net)]
        state.update(network=net, agents=agents)
        for agent_id, host in agents:
            lab.cp.unschedule(net, agent_id)
            bus.cast(lab.paths.dir, host, {"event": "network.delete.end", "network_id": net})
        for _, host in agents:
            if _agent_alive(lab, host):
                wait_for(lambda host=host: not _dnsmasq_pid(lab, net, host), 10, f"dnsmasq on {host} to stop")

    def heal(self, lab, state):
        net = state.get("network")
        for agent_id, host in state.get("agents", []):
            lab.cp.schedule(net, agent_id)
            bus.cast(lab.paths.dir, host, {"event": "dhcp_agent.network.add", "network_id": net})
        if state.get("agents"):
            _wait_served(lab, net, [h for _, h in state["agents"] if _agent_alive(lab, h)])


@_register
class DiskFull(Fault):
    """The network node's /var/lib/neutron (a small filesystem of its own) fills up with a
    core dump of the agent: the agent can no longer write a new port's host line (ENOSPC
    traceback, resync loop) and dnsmasq cannot write its lease file. Heal: the file is
    removed; the agent's next resync catches up."""
    id = "disk-full"
    summary = "the network node's /var/lib/neutron is full: new ports never reach dnsmasq"
    target = "network-node"
    needs_new_port = True
    buses = ("embedded", "rabbitmq")  # with RabbitMQ its data shares the filesystem: the disk alarm follows

    def inject(self, lab, t, variant, state):
        state_dir = lab.paths.node_root(t.node) / "var/lib/neutron"
        path = state_dir / f"core.{lab.agent_pid(t.node, 'dhcp') or 1}"
        state.update(node=t.node, path=str(path))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            st = os.statvfs(state_dir)
            with contextlib.suppress(OSError):
                os.posix_fallocate(fd, 0, max(st.f_bavail * st.f_frsize - (1 << 16), 1))
            os.lseek(fd, 0, os.SEEK_END)
            block = b"\0" * 4096
            with contextlib.suppress(OSError):  # the last blocks, until ENOSPC
                while os.write(fd, block):
                    pass
        finally:
            os.close(fd)

    def heal(self, lab, state):
        if not state.get("path"):
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(state["path"])
        node = state["node"]
        if lab.bus_kind == "rabbitmq":
            _clear_disk_alarm(lab)  # the broker's data shares the disk
        if _agent_alive(lab, node):
            agent_id = next(a["id"] for a in lab.cp.agents()
                            if a["host"] == node and a["binary"] == "neutron-dhcp-agent")
            for net in lab.cp.networks_for_agent(agent_id):
                _wait_served(lab, net, [node])


# --- the control plane over RabbitMQ (labs built with `lab up --bus rabbitmq`) ------------

FAKETIME_LIB = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def _dhcp_hosts(lab: Lab) -> list[str]:
    return [a["host"] for a in lab.cp.agents() if a["binary"] == "neutron-dhcp-agent"]


def _wait_agents(lab: Lab, alive: bool, hosts: list[str] | None = None, timeout: float = 15) -> None:
    """Until the API shows the DHCP agents (on `hosts`) alive, or dead."""
    hosts = hosts or _dhcp_hosts(lab)

    def shown() -> bool:
        rows = [a for a in lab.cp.agents() if a["binary"] == "neutron-dhcp-agent" and a["host"] in hosts]
        return bool(rows) and all(a["alive"] == alive for a in rows)
    wait_for(shown, timeout, f"the API to show the DHCP agents on {', '.join(hosts)} {'alive' if alive else 'dead'}")


def _wait_resynced(lab: Lab, hosts: list[str] | None = None, timeout: float = 30) -> None:
    """Until the DHCP agents are alive again and each serves what the API holds; an agent
    that does not catch up (its revival went unnoticed) is restarted, as an operator does."""
    hosts = hosts or _dhcp_hosts(lab)
    _wait_agents(lab, True, hosts, timeout)
    for a in lab.cp.agents():
        if a["binary"] == "neutron-dhcp-agent" and a["host"] in hosts:
            for net in lab.cp.networks_for_agent(a["id"]):
                try:
                    _wait_served(lab, net, [a["host"]], 8)
                except LabError:
                    lab.stop_agent(a["host"], "dhcp")
                    lab.start_agent(a["host"], "dhcp")
                    _wait_served(lab, net, [a["host"]], timeout)


def _log_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _wait_log(path: Path, needle: str, since: int, timeout: float, what: str) -> None:
    def seen() -> bool:
        try:
            with open(path, "rb") as f:
                f.seek(since)
                return needle.encode() in f.read()
        except OSError:
            return False
    wait_for(seen, timeout, what)


def _clear_disk_alarm(lab: Lab) -> None:
    """After a disk is freed, make the broker look again (setting its limit makes it check
    at once, else it may take its time) and wait until its disk alarm, if set, clears."""
    b = lab.broker()
    if not b.pid:
        return
    b.ctl("set_disk_free_limit", broker.DISK_FREE_LIMIT)

    def clear() -> bool:
        try:
            text = b.log_file.read_text(errors="replace")
        except OSError:
            return True
        return text.rfind("disk resource limit alarm set") < text.rfind("disk resource limit alarm cleared")
    wait_for(clear, 15, "RabbitMQ to clear its disk alarm")


class BusFault(Fault):
    """A fault of the message bus: it needs the lab's RabbitMQ, on the first network node."""
    target = "network-node"
    buses = ("rabbitmq",)

    def resolve(self, lab, ref, variant):
        host = lab.broker().host
        if ref not in (None, host):
            raise LabError(f"fault {self.id}: RabbitMQ runs on {host}, not on {ref!r}")
        return Target(host, node=host)


@_register
class RabbitmqDiskAlarm(BusFault):
    """The broker's free-disk limit set above what its disk has free (`rabbitmqctl
    set_disk_free_limit`): RabbitMQ logs "Free disk space is insufficient" and "disk
    resource limit alarm set" and blocks every connection that publishes. The agents' state
    reports get no reply ("The broker has blocked the connection", "Failed reporting
    state!") and agent_down_time later the server has them dead; the cast of a new port
    waits in neutron-server's blocked connection, so the port never reaches dnsmasq's host
    file. Heal: the limit back; the alarm clears, the casts flow, the agents are revived
    ("Agent has just been revived. Scheduling full sync") and resync."""
    id = "rabbitmq-disk-alarm"
    summary = "RabbitMQ's disk alarm blocks publishers: state reports and new ports stop"
    needs_new_port = True

    def inject(self, lab, t, variant, state):
        b = lab.broker()
        since = _log_size(b.log_file)
        state.update(limit=broker.DISK_FREE_LIMIT)
        b.ctl("set_disk_free_limit", "1000000GB")  # far above any disk here: the real alarm
        _wait_log(b.log_file, "disk resource limit alarm set", since, 15, "RabbitMQ to raise its disk alarm")
        _wait_agents(lab, False)

    def heal(self, lab, state):
        if not state.get("limit"):
            return
        b = lab.broker()
        since = _log_size(b.log_file)
        b.ctl("set_disk_free_limit", state["limit"])
        _wait_log(b.log_file, "disk resource limit alarm cleared", since, 15, "RabbitMQ to clear its disk alarm")
        _wait_resynced(lab)


@_register
class RabbitmqUnreachable(BusFault):
    """The broker goes away: stopped (SIGTERM: RabbitMQ closes every connection with
    CONNECTION_FORCED and shuts down) or killed (SIGKILL, as the OOM killer does: the
    connections just break). Every service logs "AMQP server on 127.0.0.1:<port> is
    unreachable: ... Trying again in 1 seconds." and retries; no state report arrives, so
    the agents go dead; a new port's cast is dropped ("Failed to publish message"). Heal:
    the broker starts again on its ports and data; the services reconnect ("Reconnected to
    AMQP server"), the agents are revived and resync."""
    id = "rabbitmq-unreachable"
    summary = "the RabbitMQ broker is stopped or killed: services retry, agents go dead"
    variants = ("stopped", "killed")
    needs_new_port = True

    def inject(self, lab, t, variant, state):
        b = lab.broker()
        state.update(variant=variant, broker=b.name)
        if variant == "killed":
            b.kill()
        else:
            b.stop()
        _wait_agents(lab, False)

    def heal(self, lab, state):
        if not state.get("broker"):
            return
        b = lab.broker(state["broker"])
        if not b.pid:
            b.start()
        _wait_resynced(lab)


@_register
class RabbitmqClusterInconsistent(BusFault):
    """A two-node RabbitMQ cluster disagrees about its members: a second node joins the
    lab's broker (`join_cluster`), the lab's broker is stopped, the second node is reset
    (`force_reset`, as an operator does to a node that will not start) and runs alone;
    then the lab's broker restarts and refuses to: "inconsistent_cluster ... thinks it's
    clustered with node ..., but ... disagrees". It stays down, so the services cannot reach
    the bus and the agents go dead. Heal: the second node stops and goes, the lab's broker
    is reset and starts alone; the services reconnect and resync."""
    id = "rabbitmq-cluster-inconsistent"
    summary = "a RabbitMQ node reset behind its peer's back: the broker restart fails with inconsistent_cluster"
    needs_new_port = True
    PEER = "rabbit2"

    def inject(self, lab, t, variant, state):
        main = lab.broker()
        peer = broker.add_node(lab.paths, main.host, self.PEER)
        state.update(peer=self.PEER)
        peer.start()
        peer.ctl("stop_app")
        peer.ctl("join_cluster", main.nodename)
        peer.ctl("start_app")
        main.stop()
        peer.ctl("stop_app")
        peer.ctl("force_reset")
        peer.ctl("start_app")
        since = _log_size(main.log_file)
        state.update(restarted=True)
        main.spawn()
        try:
            main.wait_up(60)
        except LabError:
            pass  # what is expected: it exits
        else:
            raise LabError("rabbitmq-cluster-inconsistent: the broker restarted although its peer was reset")
        _wait_log(main.log_file, "inconsistent_cluster", since, 10, "RabbitMQ to refuse the inconsistent cluster")
        _wait_agents(lab, False)

    def heal(self, lab, state):
        if not state.get("peer"):
            return
        with contextlib.suppress(LabError):
            peer = lab.broker(state["peer"])
            peer.stop()
            subprocess.run(["rm", "-rf", "--one-file-system", str(peer.mnesia_dir)], check=False)
        broker.remove_node(lab.paths, state["peer"])
        main = lab.broker()
        if not main.pid:
            # the node that still lists its peer is reset and starts alone
            subprocess.run(["rm", "-rf", "--one-file-system", str(main.mnesia_dir)], check=False)
            main.start()
        _wait_resynced(lab, timeout=40)


@_register
class ClockSkew(BusFault):
    """The network node's clock runs an hour behind and its DHCP agent is restarted on it
    (libfaketime: the process's clock, not the machine's). Its state reports carry its own
    time: at its start neutron-server logs that the timestamp "differs from the current
    server timestamp by ... seconds", then skips each report as "Stale message received"
    (older than the server's start), so the API shows the agent dead although it runs and
    serves; its log lines carry the shifted time. Heal: the agent restarts on the right
    clock and is revived."""
    id = "clock-skew"
    summary = "the DHCP agent's clock is an hour behind: the API has it dead while it runs"

    def resolve(self, lab, ref, variant):
        lab.broker()  # the check of a report's time is neutron-server's, over the bus
        return resolve(lab, "network-node", ref)

    def inject(self, lab, t, variant, state):
        if not Path(FAKETIME_LIB).exists():
            raise LabError("clock-skew needs libfaketime (apt-get install faketime; ./install.sh does)")
        server_log = lab.paths.neutron_log(lab.server_node, "neutron-server")
        since = _log_size(server_log)
        offset = 3600 + int(time.time() - lab.config.get("created", time.time()))
        state.update(node=t.node, offset=-offset)
        lab.stop_agent(t.node, "dhcp")
        lab.start_agent(t.node, "dhcp", env={"LD_PRELOAD": FAKETIME_LIB, "FAKETIME": f"-{offset}",
                                             "FAKETIME_DONT_FAKE_MONOTONIC": "1"})
        # the agent starts, connects to the broker and reports: seconds, more on a busy machine
        _wait_log(server_log, "This differs from the current server timestamp", since, 45,
                  "neutron-server to see the agent's clock")
        _wait_agents(lab, False, [t.node])

    def heal(self, lab, state):
        if not state.get("node"):
            return
        lab.stop_agent(state["node"], "dhcp")
        lab.start_agent(state["node"], "dhcp")
        _wait_resynced(lab, [state["node"]])


# --- the record and the commands ----------------------------------------------------------

def _path(lab: Lab):
    return lab.paths.dir / FAULTS_FILE


def active(lab: Lab) -> list[dict]:
    """The faults injected and not healed, oldest first."""
    lab.config  # raises when there is no lab
    try:
        return json.loads(_path(lab).read_text())
    except FileNotFoundError:
        return []


def _save(lab: Lab, records: list[dict]) -> None:
    p = _path(lab)
    tmp = p.with_name(f".{p.name}.tmp")
    tmp.write_text(json.dumps(records, indent=2) + "\n")
    os.replace(tmp, p)


def lookup(fault_id: str) -> Fault:
    if fault_id in CATALOGUE:
        return CATALOGUE[fault_id]
    close = difflib.get_close_matches(fault_id, list(CATALOGUE), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise LabError(f"unknown fault {fault_id!r}{hint} (whynoip lab fault --help lists them)")


def inject(lab: Lab, fault_id: str, target: str | None = None, variant: str | None = None) -> dict:
    """Break the lab with `fault_id` and record it; returns the record."""
    fault = lookup(fault_id)
    records = active(lab)
    if fault.variants:
        variant = variant or fault.variants[0]
        if variant not in fault.variants:
            raise LabError(f"fault {fault_id}: unknown variant {variant!r} (variants: {', '.join(fault.variants)})")
    elif variant:
        raise LabError(f"fault {fault_id} has no variants")
    if "embedded" not in fault.buses and lab.bus_kind not in fault.buses:
        raise LabError(f"fault {fault_id} needs the lab's RabbitMQ bus "
                       f"(whynoip lab up --bus rabbitmq --name {lab.name}); lab {lab.name} runs the {lab.bus_kind} bus")
    t = fault.resolve(lab, target, variant)
    state: dict = {}
    try:
        fault.inject(lab, t, variant, state)
    except BaseException:
        with contextlib.suppress(Exception):
            fault.heal(lab, state)
        raise
    record = {"id": fault_id, "target": t.text, "variant": variant, "guest": t.guest, "injected_at": time.time(),
              "state": state}
    _save(lab, records + [record])
    return record


def heal(lab: Lab) -> list[dict]:
    """Undo every recorded fault, newest first; returns what was healed."""
    records = active(lab)
    healed = []
    while records:
        record = records[-1]
        CATALOGUE[record["id"]].heal(lab, record["state"])
        records.pop()
        _save(lab, records)
        healed.append(record)
    return healed


TARGETS = {
    "guest": "GUEST (default: the first guest)",
    "guest-servers": "GUEST[@NODE]: the guest's entry on each DHCP server, or the one on NODE",
    "server": "GUEST|NETWORK[@NODE] or NODE: one DHCP server (default: the first guest's first)",
    "servers": "like server, but without @NODE every DHCP server of the network",
    "network": "NETWORK|GUEST (default: the first guest's network)",
    "network-node": "NODE, a network node (default: the first)",
}


def help_text() -> str:
    """The catalogue, for `whynoip lab fault --help`: each id with its summary, then the
    kind of target it takes and its variants (the first is the default)."""
    width = max(len(f) for f in CATALOGUE)
    lines = []
    for f in CATALOGUE.values():
        lines.append(f"{f.id:<{width}}  {f.summary}")
        kind = "guest, or node for ovs-restarted" if isinstance(f, L2PathBroken) else f.target
        if "embedded" not in f.buses:
            kind += "; needs lab up --bus rabbitmq"
        more = f"  --variant {'|'.join(f.variants)}" if f.variants else ""
        lines.append(f"{'':<{width}}  [{kind}]{more}")
    lines += ["", "Targets (--target):"]
    lines += [f"  {kind:<14} {text}" for kind, text in TARGETS.items()]
    return "\n".join(lines)
