"""`whynoip lab collect`: the evidence an operator would have from the lab, node by node.

Each node of the lab becomes a directory laid out like a sosreport of that node:
`sos_commands/<plugin>/<command>` (sosreport's naming: spaces become `_`, `/` becomes `.`)
holding what the commands print when run for real inside the node's network namespace,
beside copies of its `/etc/neutron` (secrets masked as sosreport masks them), `/var/log`
and `/var/lib/neutron/dhcp`. Beside the nodes: `api/`, the control plane as
`openstack ... -f json` prints it, and `guests/`, each instance's console log and the
capture taken on its own interface; the per-hop captures of each guest's last DHCP
attempt sit under the node that holds the hop (`<node>/captures/<guest>/tcpdump_-i_<if>.pcap`).

Names are those a real node shows: the lab's namespace prefixes (`wnp-<lab>-...`) and each
node's root directory are rewritten in every text collected and every file name
(`qdhcp-<net>`, `/var/lib/neutron/...`). Nothing the lab keeps for itself is copied (its
database, its config, what was injected into it), so a bundle reads like evidence from a
real cloud and names no cause. Every command runs with a time limit; a command that fails
leaves its error output in its file, as sosreport does, and collection goes on.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from whynoip.errors import LabError
from whynoip.lab import broker as brokermod
from whynoip.lab.controlplane import DHCP_AGENT
from whynoip.lab.lab import Lab
from whynoip.lab.paths import labs_root

COMMAND_TIMEOUT = 10.0
OVS_TIMEOUT = 5  # sosreport runs ovs-vsctl with `-t 5`
DHCP_FILES = ("host", "addn_hosts", "opts", "leases", "pid", "interface")
MASK = "*********"  # what sosreport writes over a secret
# keys sosreport's openstack_neutron plugin masks whole, and the connection URLs whose
# password it masks (sos/report/plugins/openstack_neutron.py, postproc)
PROTECT_KEYS = ("rabbit_password", "qpid_password", "nova_admin_password", "password", "server_auth",
                "admin_password", "metadata_proxy_shared_secret", "transport_url", "memcache_secret_key")
_PROTECT_RE = re.compile(r"(?m)(^\s*(?:%s)\s*=\s*)(.*)$" % "|".join(PROTECT_KEYS))
_CONNECTION_RE = re.compile(r"(?m)(^\s*connection\s*=\s*.*://\w*:)(.*)(@.*)$")
# mount points a real node's `df -al` shows; the rest of this machine's are not the node's
_REAL_MOUNTS = ("/proc", "/sys", "/dev", "/run", "/boot", "/var", "/tmp", "/home", "/srv", "/usr", "/opt")
RESERVED = ("api", "guests")

IMAGE = "cirros-0.6.2-x86_64-disk"
FLAVOR = "m1.tiny"


def sos_name(command: str) -> str:
    """sosreport's file name for a command: the program without its directory, spaces
    as `_`, `/` as `.`, quotes dropped."""
    command = re.sub(r"^/\S+/", "", command.strip())
    name = command.replace(" ", "_").replace("/", ".").replace('"', "").replace("'", "")
    return name[:255]


# --- rewriting lab names into a real node's ----------------------------------------------

@dataclass
class Rewriter:
    """Replaces the lab's own names by those a real node shows, in text and file names."""

    subs: list[tuple[re.Pattern, str | Callable]] = field(default_factory=list)

    def add(self, pattern: str, repl: str | Callable) -> None:
        self.subs.append((re.compile(pattern), repl))

    def text(self, s: str) -> str:
        for rx, repl in self.subs:
            s = rx.sub(repl, s)
        return s


def rewriter_for(lab: Lab, node: str | None) -> Rewriter:
    """`node` is the node whose view this is (None: a guest's or the API's)."""
    rw = Rewriter()
    prefix = re.escape(lab.paths.prefix)
    lab_dir = re.escape(str(lab.paths.dir))
    bus = brokermod.load_state(lab.paths)
    if bus and bus.get("nodes"):
        # a RabbitMQ node is named after the host it runs on (rabbit@net1)
        host = next(iter(bus["nodes"].values()))["host"]
        rw.add(prefix + r"(rabbit\d*)@localhost(?![a-z0-9-]|\.localdomain)", r"\1@" + host)
    if node is not None:
        # the peer of a qdhcp tap is the node's own (unnamed) root namespace
        rw.add(r"link-netns " + re.escape(lab.paths.node_ns(node)) + r"(?![\w-])", "link-netnsid 0")
    # every node's root is the root of the node that shows it
    rw.add(lab_dir + r"/nodes/[a-z][a-z0-9]*(?=/)", "")
    rw.add(lab_dir + r"/nodes/[a-z][a-z0-9]*", "/")
    rw.add(lab_dir + r"/guests/([a-z][a-z0-9]*)", r"/var/lib/cloud/instances/\1")
    rw.add(lab_dir, "/var/lib/neutron")
    rw.add(re.escape(str(labs_root())), "/var/lib")
    rw.add(prefix + r"[a-z][a-z0-9]*-qdhcp-", "qdhcp-")
    rw.add(prefix + r"state\b *", lambda m: "tmpfs".ljust(len(m.group(0))))  # keeps df's columns
    rw.add(prefix + r"g-", "")
    rw.add(prefix, "")
    # the lab's agents are Python programs: show them as a node's packaged services
    for exe in {sys.executable, os.path.realpath(sys.executable)}:
        rw.add(re.escape(exe) + r"(?![\w.-])", "/usr/bin/python3")
    pkg = Path(__file__).resolve().parent.parent
    rw.add(re.escape(str(pkg / "lab")) + "/", "/usr/lib/python3/dist-packages/neutron/agent/linux/")
    rw.add(re.escape(str(pkg)) + "/", "/usr/lib/python3/dist-packages/neutron/")
    # ... and what they raise as what Neutron's agents raise when a command they run fails
    rw.add(r"\bwhynoip\.errors\.LabError\b", "neutron_lib.exceptions.ProcessExecutionError")
    rw.add(r"\bLabError\b", "ProcessExecutionError")
    rw.add(r"\bwhynoip\.lab\.", "neutron.agent.linux.")
    rw.add(r"\bwhynoip\.", "neutron.")
    return rw


def redact(text: str) -> str:
    """Mask secrets in a Neutron config file the way sosreport does."""
    text = _CONNECTION_RE.sub(lambda m: m.group(1) + MASK + m.group(3), text)
    return _PROTECT_RE.sub(lambda m: m.group(1) + MASK, text)


# --- running commands --------------------------------------------------------------------

def run(argv: list[str], ns: str | None = None, env: dict | None = None,
        timeout: float = COMMAND_TIMEOUT) -> bytes:
    """What a command prints, bounded in time. A command that fails leaves its error
    output after its output, as sosreport records it; the warnings of one that succeeds are
    left out (iproute2 complains there about other namespaces of this machine that a real
    node does not have)."""
    cmd = ["ip", "netns", "exec", ns, *argv] if ns else list(argv)
    full_env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}  # ps would cut lines
    full_env.update({"LC_ALL": "C", **(env or {})})
    try:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, env=full_env, timeout=timeout)
        return p.stdout if p.returncode == 0 else p.stdout + p.stderr
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b"") + (e.stderr or b"") + f"\n{argv[0]}: timed out after {timeout:.0f}s\n".encode()
    except OSError as e:
        return f"{argv[0]}: {e.strerror}\n".encode()


def _namespaces() -> list[str]:
    out = run(["ip", "netns", "list"]).decode(errors="replace")
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _pids_of_ns(ns: str) -> set[int]:
    out = run(["ip", "netns", "pids", ns]).decode(errors="replace")
    return {int(p) for p in out.split() if p.isdigit()}


def _pids_by_cmdline(needle: bytes) -> set[int]:
    pids = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    pids.add(int(entry))
        except OSError:
            continue
    return pids


def filter_ps(text: str, pids: set[int]) -> str:
    """Keep the header and the lines of `pids` (with their thread lines, `ps m`)."""
    lines = text.splitlines()
    if not lines:
        return text
    out = [lines[0]]
    head = lines[0].split()
    col = head.index("PID") if "PID" in head else 1
    keep = False
    for line in lines[1:]:
        parts = line.split()
        if len(parts) <= col:
            continue
        pid = parts[col]
        if pid == "-":  # a thread line belongs to the process above it
            if keep:
                out.append(line)
            continue
        keep = pid.isdigit() and int(pid) in pids
        if keep:
            out.append(line)
    return "\n".join(out) + "\n"


def filter_df(text: str, node_root: Path, qdhcp: list[str]) -> str:
    """A real node's `df -al`: this machine's system mounts, the node's own mounts with
    their paths as the node sees them, and the node's qdhcp namespaces."""
    lines = text.splitlines()
    if not lines:
        return text
    out = [lines[0]]
    root = str(node_root)
    labs = str(labs_root()) + "/"
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
        elif mnt.startswith(labs) or mnt == labs.rstrip("/"):
            continue
        elif mnt == "/" or any(mnt == p or mnt.startswith(p + "/") for p in _REAL_MOUNTS):
            out.append(line)
    return "\n".join(out) + "\n"


def _hostname(node: str) -> bytes:
    """`hostname` as the node answers it: run in a UTS namespace holding the node's name."""
    out = run(["unshare", "--uts", "sh", "-c", 'hostname "$1" && hostname', "sh", node])
    return out if out.strip() == node.encode() else (node + "\n").encode()


def _tail(data: bytes, limit: int | None) -> bytes:
    if limit is None or len(data) <= limit:
        return data
    data = data[-limit:]
    nl = data.find(b"\n")
    return data[nl + 1:] if nl >= 0 else data


# --- the bundle ------------------------------------------------------------------------------

class Collector:
    def __init__(self, lab: Lab, out: Path, log_limit: int | None = None, ovs_debug: bool = True):
        self.lab = lab
        self.out = out
        self.log_limit = log_limit
        self.ovs_debug = ovs_debug

    # file writing

    def _write(self, path: Path, data: bytes | str, rw: Rewriter | None) -> None:
        if isinstance(data, bytes):
            text = data.decode("utf-8", errors="surrogateescape")
        else:
            text = data
        if rw is not None:
            text = rw.text(text)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8", errors="surrogateescape"))

    def cmd(self, base: Path, plugin: str, command: str, data: bytes | str, rw: Rewriter) -> None:
        self._write(base / "sos_commands" / plugin / sos_name(rw.text(command)), data, rw)

    # one node

    def node(self, node: str) -> None:
        lab = self.lab
        base = self.out / node
        rw = rewriter_for(lab, node)
        ns = lab.paths.node_ns(node)
        root = lab.paths.node_root(node)
        qprefix = lab.paths.qdhcp_ns(node, "")
        all_ns = _namespaces()
        qdhcp = sorted(n for n in all_ns if n.startswith(qprefix))

        # networking
        for command in ("ip addr", "ip -d address", "ip link", "ip route", "brctl show"):
            self.cmd(base, "networking", command, run(command.split(), ns), rw)
        # `ip netns` lists every namespace of this machine: a node shows only its own
        listing = run(["ip", "netns"], ns).decode(errors="replace")
        named = [line for line in listing.splitlines() if line.split() and line.split()[0] in all_ns]
        if named:  # otherwise an error message: recorded as it is
            listing = "".join(line + "\n" for line in named if line.split()[0] in qdhcp)
        self.cmd(base, "networking", "ip netns", listing, rw)
        for q in qdhcp:
            for command in ("ip address show", "ss -lunp", "iptables-save -c"):
                self.cmd(base, "networking", f"ip netns exec {q} {command}", run(command.split(), q), rw)

        # process
        pids = _pids_of_ns(ns)
        for q in qdhcp:
            pids |= _pids_of_ns(q)
        pids |= _pids_by_cmdline(str(root).encode() + b"/")
        pids.discard(os.getpid())
        for command in ("ps auxwwwm", "ps -ef"):
            text = run(command.split()).decode(errors="replace")
            self.cmd(base, "process", command, filter_ps(text, pids), rw)

        # openvswitch
        env = lab.ovs(node).env
        for command in (f"ovs-vsctl -t {OVS_TIMEOUT} show", f"ovs-vsctl -t {OVS_TIMEOUT} list interface",
                        "ovs-ofctl dump-flows br-int", "ovs-ofctl dump-flows br-tun",
                        "ovs-ofctl show br-int", "ovs-ofctl show br-tun"):
            self.cmd(base, "openvswitch", command, run(command.split(), ns, env=env), rw)

        # firewall_tables
        for command in ("iptables-save -c", "iptables -t filter -nvL"):
            self.cmd(base, "firewall_tables", command, run(command.split(), ns), rw)

        # filesys, date, host
        df = run(["df", "-al"]).decode(errors="replace")
        self.cmd(base, "filesys", "df -al", filter_df(df, root, qdhcp), rw)
        self.cmd(base, "date", "date", run(["date"]), rw)
        self.cmd(base, "date", "date --utc", run(["date", "--utc"]), rw)
        self.cmd(base, "host", "hostname", _hostname(node), rw)

        # rabbitmq, on the node that hosts the lab's broker
        self.rabbitmq(node, base, rw)

        # files
        self.files(node, base, rw)

    def files(self, node: str, base: Path, rw: Rewriter) -> None:
        root = self.lab.paths.node_root(node)

        def copy(src: Path, transform=None, limit: int | None = None) -> None:
            rel = src.relative_to(root)
            try:
                data = src.read_bytes()
            except OSError as e:
                data = f"{e.strerror}\n".encode()
            if transform:
                data = transform(data)
            data = _tail(data, limit)
            dest = base / Path(*(rw.text(p) for p in rel.parts))
            self._write(dest, data, rw)

        etc = root / "etc" / "neutron"
        if etc.is_dir():
            for f in sorted(p for p in etc.rglob("*") if p.is_file()):
                copy(f, lambda b: redact(b.decode("utf-8", errors="surrogateescape")).encode(
                    "utf-8", errors="surrogateescape"))
        if (root / "etc" / "hostname").is_file():
            copy(root / "etc" / "hostname")
        logs = root / "var" / "log" / "neutron"
        if logs.is_dir():
            for f in sorted(logs.glob("*.log")):
                copy(f, limit=self.log_limit)
            dns = logs / "dnsmasq"
            if dns.is_dir():
                for f in sorted(p for p in dns.rglob("*") if p.is_file()):
                    copy(f, limit=self.log_limit)
        dhcp = root / "var" / "lib" / "neutron" / "dhcp"
        if dhcp.is_dir():
            for d in sorted(p for p in dhcp.iterdir() if p.is_dir()):
                for name in DHCP_FILES:
                    if (d / name).is_file():
                        copy(d / name)
        rabbitlog = root / "var" / "log" / "rabbitmq"
        if rabbitlog.is_dir():
            for f in sorted(rabbitlog.glob("*.log")):
                copy(f, limit=self.log_limit)
        ovslog = root / "var" / "log" / "openvswitch"
        if ovslog.is_dir():
            drop = None if self.ovs_debug else _drop_ovs_debug
            for f in sorted(ovslog.glob("*.log")):
                copy(f, drop, limit=self.log_limit)

    def rabbitmq(self, node: str, base: Path, rw: Rewriter) -> None:
        """`rabbitmqctl status` and `cluster_status` of the broker this node hosts (as
        sosreport's rabbitmq plugin runs them), side by side: each starts an Erlang VM."""
        bus = brokermod.load_state(self.lab.paths)
        if not bus or "rabbit" not in bus.get("nodes", {}) or bus["nodes"]["rabbit"]["host"] != node:
            return
        b = brokermod.node(self.lab.paths, "rabbit")
        env = b.env()
        ctl = str(brokermod.RABBIT_BIN / "rabbitmqctl")
        commands = ("rabbitmqctl status", "rabbitmqctl cluster_status")
        with ThreadPoolExecutor(max_workers=len(commands)) as ex:
            outs = list(ex.map(lambda c: run([ctl, "-n", b.nodename, *c.split()[1:]], env=env, timeout=20),
                               commands))
        for command, out in zip(commands, outs):
            self.cmd(base, "rabbitmq", command, re.sub(rb"\x1b\[[0-9;]*m", b"", out), rw)  # no terminal colours

    # captures and guests

    def captures(self) -> None:
        lab = self.lab
        cap_root = lab.paths.dir / "captures"
        if not cap_root.is_dir():
            return
        nodes = {n.name for n in lab.topology.nodes}
        for gdir in sorted(p for p in cap_root.iterdir() if p.is_dir()):
            guest = gdir.name
            try:
                hops = lab.guest_hops(guest)
            except Exception:
                hops = []
            where = {(h["node"], h["interface"]): h["namespace"] for h in hops}
            for pcap in sorted(gdir.glob("*.pcap")):
                m = re.match(r"^\d+_([a-z][a-z0-9]*)_(.+)\.pcap$", pcap.name)
                if not m:
                    continue
                node, iface = m.groups()
                if node == guest and node not in nodes:
                    dest = self.out / "guests" / guest / f"tcpdump_-i_{iface}.pcap"
                elif node in nodes:
                    ns = where.get((node, iface)) or self._ns_holding(node, iface)
                    name = f"tcpdump_-i_{iface}.pcap"
                    if ns and ns.startswith(lab.paths.qdhcp_ns(node, "")):
                        name = sos_name(f"ip netns exec {rewriter_for(lab, node).text(ns)} tcpdump -i {iface}") + ".pcap"
                    dest = self.out / node / "captures" / guest / name
                else:
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(pcap, dest)

    def _ns_holding(self, node: str, iface: str) -> str | None:
        for ns in _namespaces():
            if ns.startswith(self.lab.paths.qdhcp_ns(node, "")):
                if subprocess.run(["ip", "-n", ns, "link", "show", iface], capture_output=True).returncode == 0:
                    return ns
        return None

    def guests(self) -> None:
        lab = self.lab
        rw = rewriter_for(lab, None)
        for inst in lab.cp.instances():
            console = lab.paths.guest_dir(inst["name"]) / "console.log"
            dest = self.out / "guests" / inst["name"] / "console.log"
            if console.is_file():
                self._write(dest, _tail(console.read_bytes(), self.log_limit), rw)
            else:
                dest.parent.mkdir(parents=True, exist_ok=True)

    # the API

    def api(self) -> None:
        base = self.out / "api"
        for command, obj in api_view(self.lab).items():
            self._write(base / sos_name(command), json.dumps(obj, indent=2) + "\n", None)


def _drop_ovs_debug(data: bytes) -> bytes:
    return b"".join(line for line in data.splitlines(keepends=True) if b"|DBG|" not in line)


# --- the API view: what python-openstackclient prints with -f json ------------------------

def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def api_view(lab: Lab) -> dict[str, object]:
    """{command line: what `openstack <command> -f json` prints} for the lab's control
    plane. Keys are python-openstackclient's: list columns as headers ("ID", "MAC Address",
    "Fixed IP Addresses" ...), show keys as its column names (`binding_host_id`,
    `provider:segmentation_id`, `enable_dhcp` ...); booleans stay booleans, lists and dicts
    stay structured, as its formatters' machine_readable() leave them."""
    cp = lab.cp
    created = _iso(lab.config.get("created", time.time()))
    project = uuid.uuid5(uuid.NAMESPACE_DNS, f"project.{lab.name}").hex
    sg = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"default-sg.{lab.name}"))
    nets = cp.networks()
    subnets = cp.subnets()
    ports = cp.ports()
    agents = cp.agents()
    out: dict[str, object] = {}

    out["openstack network list -f json"] = [
        {"ID": n.id, "Name": n.name, "Subnets": [s.id for s in subnets if s.network_id == n.id]} for n in nets]
    for n in nets:
        hosted = cp.dhcp_agents_for(n.id)
        out[f"openstack network show {n.id} -f json"] = {
            "admin_state_up": True, "availability_zone_hints": [],
            "availability_zones": ["nova"] if hosted else [], "created_at": created, "description": "",
            "dns_domain": None, "id": n.id, "ipv4_address_scope": None, "ipv6_address_scope": None,
            "is_default": None, "is_vlan_transparent": None, "l2_adjacency": True, "mtu": n.mtu, "name": n.name,
            "port_security_enabled": True, "project_id": project, "provider:network_type": "vxlan",
            "provider:physical_network": None, "provider:segmentation_id": n.segmentation_id,
            "qos_policy_id": None, "revision_number": 2, "router:external": False, "segments": None,
            "shared": False, "status": "ACTIVE", "subnets": [s.id for s in subnets if s.network_id == n.id],
            "tags": [], "updated_at": created}

    net_name = {n.id: n.name for n in nets}
    out["openstack subnet list -f json"] = [
        {"ID": s.id, "Name": s.name, "Network": s.network_id, "Subnet": s.cidr} for s in subnets]
    for s in subnets:
        out[f"openstack subnet show {s.id} -f json"] = {
            "allocation_pools": [{"start": s.pool_start, "end": s.pool_end}], "cidr": s.cidr,
            "created_at": created, "description": "", "dns_nameservers": list(s.dns),
            "dns_publish_fixed_ip": None, "enable_dhcp": s.enable_dhcp, "gateway_ip": s.gateway_ip,
            "host_routes": [{"destination": d, "nexthop": h} for d, h in s.host_routes], "id": s.id,
            "ip_version": 4, "ipv6_address_mode": None, "ipv6_ra_mode": None, "name": s.name,
            "network_id": s.network_id, "project_id": project, "revision_number": 0, "segment_id": None,
            "service_types": [], "subnetpool_id": None, "tags": [], "updated_at": created}

    def fixed(p) -> list[dict]:
        return [{"subnet_id": p.subnet_id, "ip_address": p.ip}]

    def groups(p) -> list[str]:
        return [sg] if p.device_owner.startswith("compute:") else []

    rows = [{"ID": p.id, "Name": p.name, "MAC Address": p.mac, "Fixed IP Addresses": fixed(p), "Status": p.status}
            for p in ports]
    out["openstack port list -f json"] = rows
    out["openstack port list --long -f json"] = [
        {**r, "Security Groups": groups(p), "Device Owner": p.device_owner, "Tags": []}
        for r, p in zip(rows, ports)]
    port_times = dict(cp.db.execute("SELECT id, created FROM ports").fetchall())
    for p in ports:
        host = f"host-{p.ip.replace('.', '-')}"
        bound = p.vif_type not in ("unbound", "binding_failed")
        out[f"openstack port show {p.id} -f json"] = {
            "admin_state_up": p.admin_state_up, "allowed_address_pairs": [], "binding_host_id": p.binding_host,
            "binding_profile": {},
            "binding_vif_details": ({"bridge_name": "br-int", "connectivity": "l2", "datapath_type": "netdev",
                                     "ovs_hybrid_plug": p.device_owner.startswith("compute:"), "port_filter": True}
                                    if bound else {}),
            "binding_vif_type": p.vif_type, "binding_vnic_type": "normal",
            "created_at": _iso(port_times.get(p.id)), "data_plane_status": None, "description": "",
            "device_id": p.device_id, "device_owner": p.device_owner, "device_profile": None,
            "dns_assignment": [{"ip_address": p.ip, "hostname": host, "fqdn": f"{host}.openstacklocal."}],
            "dns_domain": None, "dns_name": "", "extra_dhcp_opts": [], "fixed_ips": fixed(p), "id": p.id,
            "ip_allocation": "immediate", "mac_address": p.mac, "name": p.name, "network_id": p.network_id,
            "numa_affinity_policy": None, "port_security_enabled": True, "project_id": project,
            "propagate_uplink_status": False, "qos_network_policy_id": None, "qos_policy_id": None,
            "resource_request": None, "revision_number": 4 if p.status == "ACTIVE" else 1,
            "security_group_ids": groups(p), "status": p.status, "tags": [], "trunk_details": None,
            "updated_at": _iso(port_times.get(p.id))}

    def agent_row(a: dict) -> dict:
        return {"ID": a["id"], "Agent Type": a["agent_type"], "Host": a["host"],
                "Availability Zone": "nova" if a["agent_type"] == DHCP_AGENT else None,
                "Alive": a["alive"], "State": a["admin_state_up"], "Binary": a["binary"]}

    out["openstack network agent list -f json"] = [agent_row(a) for a in agents]
    for a in agents:  # the heartbeats, as `network agent show` gives them
        out[f"openstack network agent show {a['id']} -f json"] = {
            "admin_state_up": a["admin_state_up"], "agent_type": a["agent_type"], "alive": a["alive"],
            "availability_zone": "nova" if a["agent_type"] == DHCP_AGENT else None, "binary": a["binary"],
            "configuration": {}, "created_at": _iso(a["started"]).replace("T", " ").rstrip("Z") if a["started"] else None,
            "description": None, "host": a["host"], "id": a["id"],
            "last_heartbeat_at": (_iso(a["heartbeat"]).replace("T", " ").rstrip("Z") if a["heartbeat"] else None),
            "name": None, "resources_synced": None,
            "started_at": _iso(a["started"]).replace("T", " ").rstrip("Z") if a["started"] else None,
            "topic": "dhcp_agent" if a["agent_type"] == DHCP_AGENT else "N/A"}
    for n in nets:
        out[f"openstack network agent list --network {n.id} -f json"] = [
            agent_row(a) for a in cp.dhcp_agents_for(n.id)]

    servers = []
    for inst in cp.instances():
        try:
            p = cp.port(inst["port_id"])
            networks = {net_name.get(p.network_id, p.network_id): [p.ip]}
        except LabError:
            networks = {}
        servers.append({"ID": inst["id"], "Name": inst["name"], "Status": "ACTIVE", "Networks": networks,
                        "Image": IMAGE, "Flavor": FLAVOR})
    out["openstack server list -f json"] = servers
    return out


README = """Evidence collected {when} from {count} nodes, as an operator gathers it:

{nodes}
Each node directory is laid out like a sosreport of that node (sos_commands/<plugin>/<command>,
etc/, var/log/, var/lib/neutron/dhcp/), with the captures taken on its interfaces during the
last DHCP attempt of each instance under captures/<instance>/.
api/     what `openstack ... -f json` prints (networks, subnets, ports, agents, servers)
guests/  each instance's console log and the capture taken on its own interface
"""


def collect(lab: Lab, out: Path, *, log_limit: int | None = None, ovs_debug: bool = True) -> Path:
    """Write the bundle of `lab` into directory `out` (created; must be empty if it exists)."""
    if not lab.exists:
        lab.config  # raises the usual "no lab named ..." error
    topo = lab.topology
    for n in topo.nodes:
        if n.name in RESERVED:
            raise LabError(f"node name {n.name!r} collides with the bundle's {n.name}/ directory")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise LabError(f"{out} exists and is not an empty directory")
    out.mkdir(parents=True, exist_ok=True)
    c = Collector(lab, out, log_limit=log_limit, ovs_debug=ovs_debug)
    steps = [(f"node {n.name}", lambda n=n: c.node(n.name)) for n in topo.nodes]
    steps += [("captures", c.captures), ("guests", c.guests), ("api", c.api)]
    for what, step in steps:
        try:  # one part that cannot be collected must not cost the others
            step()
        except Exception as e:
            print(f"whynoip lab collect: {what}: {e}", file=sys.stderr)
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    nodes = "".join(f"  {n.name:<10} {n.role} node\n" for n in topo.nodes)
    (out / "README").write_text(README.format(when=when, count=len(topo.nodes), nodes=nodes))
    return out


def collect_tar(lab: Lab, target: Path, **kw) -> Path:
    """The bundle as a .tar.gz at `target` (`.tar.gz` appended unless it ends so)."""
    name = target.name
    for suffix in (".tar.gz", ".tgz"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    else:
        target = target.with_name(target.name + ".tar.gz")
    if target.exists():
        raise LabError(f"{target} exists")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".collect-", dir=target.parent) as tmp:
        d = collect(lab, Path(tmp) / name, **kw)
        with tarfile.open(target, "w:gz") as tf:
            tf.add(d, arcname=name)
    return target
