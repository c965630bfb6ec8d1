"""A lab: build, inspect and tear down a miniature Neutron DHCP system from real parts.

`up` runs the provisioning flow: the control plane records networks, subnets and ports;
each emulated node (a network namespace) gets its own Open vSwitch with br-int, br-tun
and VXLAN to the other nodes over an underlay; the DHCP agents start and bring up
dnsmasq in `qdhcp-<network>`; guests are plugged through tap/qbr/qvb/qvo with Neutron's
hybrid iptables firewall. `down` removes everything the lab made — processes by PID and
by namespace, mounts, namespaces, files — also after a crash, by the lab's name prefix.

`up(bus="rabbitmq")` puts a private RabbitMQ (broker.py) between the API side and the
agents: neutron-server runs as a process of its own on the first network node, relays
the casts and records the agents' state reports; the broker's data and the agent's state
share that node's small /var/lib filesystem, as they share a controller's disk."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from whynoip.errors import LabError
from whynoip.lab import broker, bus, firewall, guest as guestmod, sh
from whynoip.lab.controlplane import DHCP_AGENT, ControlPlane
from whynoip.lab.ovs import NodeOvs, br_int_flows, br_tun_flows, tunnel_port_name, wait_for
from whynoip.lab.paths import LabPaths, device, labs_root
from whynoip.lab.topology import GuestSpec, Topology, load

TOOLS = ("ip", "ovs-vsctl", "ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-ofctl", "dnsmasq", "tcpdump",
         "iptables-restore", "ethtool", "udhcpc", "dhclient")
UNDERLAY_NET = "172.16.0."
STATE_FS_SIZE = "16m"  # each network node's /var/lib/neutron is a small filesystem of its own

NEUTRON_CONF = """[DEFAULT]
core_plugin = ml2
auth_strategy = keystone
transport_url = rabbit://openstack:{bus_secret}@127.0.0.1:{bus_port}/
rpc_response_timeout = {rpc_timeout}
dhcp_lease_duration = 86400
dhcp_agents_per_network = {agents}
agent_down_time = {down}
state_path = /var/lib/neutron

[agent]
report_interval = {report}
root_helper = sudo /usr/bin/neutron-rootwrap /etc/neutron/rootwrap.conf

[database]
connection = mysql+pymysql://neutron:{secret}@127.0.0.1/neutron

[oslo_messaging_rabbit]
rabbit_retry_interval = 1
"""

DHCP_AGENT_INI = """[DEFAULT]
interface_driver = openvswitch
dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq
enable_isolated_metadata = true
ovs_use_veth = true
resync_interval = 2
dnsmasq_base_log_dir = /var/log/neutron/dnsmasq

[agent]
check_child_processes_interval = 1
"""

OVS_AGENT_INI = """[ovs]
integration_bridge = br-int
tunnel_bridge = br-tun
local_ip = {local_ip}
datapath_type = netdev

[agent]
tunnel_types = vxlan
l2_population = false

[securitygroup]
firewall_driver = iptables_hybrid
"""

AGENT_SCRIPT = """#!{python}
import sys
from whynoip.lab.agent import main
main(kind="{kind}")
"""
SERVER_LOG = "/var/log/neutron/neutron-server.log"


class Lab:
    def __init__(self, name: str = "lab"):
        self.paths = LabPaths(name)
        self.name = name
        self._cp: ControlPlane | None = None
        self._topo: Topology | None = None

    # --- state ----------------------------------------------------------------------------

    @property
    def exists(self) -> bool:
        return self.paths.config.exists()

    @property
    def config(self) -> dict:
        if not self.exists:
            raise LabError(f"no lab named {self.name!r} (start one with: whynoip lab up --name {self.name})")
        return json.loads(self.paths.config.read_text())

    @property
    def topology(self) -> Topology:
        if self._topo is None:
            from whynoip.lab.topology import parse
            self._topo = parse(self.config["topology"], f"lab {self.name}")
        return self._topo

    @property
    def cp(self) -> ControlPlane:
        if self._cp is None:
            self.config  # raises when there is no lab
            self._cp = ControlPlane(self.paths.dir, self.paths.neutron_log(self.server_node, "neutron-server"),
                                    agent_down_time=self.topology.agent_down_time)
        return self._cp

    @property
    def server_node(self) -> str:
        """neutron-server runs on the first network node (a controller/network node)."""
        return self.topology.network_nodes[0].name

    def ovs(self, node: str) -> NodeOvs:
        return NodeOvs(self.paths.node_ns(node), self.paths.node_root(node))

    def underlay_ip(self, node: str) -> str:
        return UNDERLAY_NET + str(1 + [n.name for n in self.topology.nodes].index(node))

    # --- up ---------------------------------------------------------------------------------

    @property
    def bus_kind(self) -> str:
        return self.config.get("bus", bus.EMBEDDED)

    def broker(self, name: str = "rabbit") -> broker.Broker:
        """A node of the lab's RabbitMQ (LabError when the lab runs the embedded bus)."""
        return broker.node(self.paths, name)

    def up(self, topology: str = "default", bus_kind: str = bus.EMBEDDED) -> float:
        if bus_kind not in bus.KINDS:
            raise LabError(f"unknown bus {bus_kind!r} (buses: {', '.join(bus.KINDS)})")
        sh.require_tools(TOOLS + (("epmd",) if bus_kind == bus.RABBITMQ else ()))
        topo = load(topology)
        if self.exists or self._leftovers():
            raise LabError(f"lab {self.name!r} exists already (whynoip lab down --name {self.name})")
        start = time.monotonic()
        self.paths.dir.mkdir(parents=True, exist_ok=True)
        self.paths.config.write_text(json.dumps({
            "name": self.name, "created": time.time(), "topology_name": topo.name,
            "topology": _topology_dict(topo), "agent_down_time": topo.agent_down_time, "bus": bus_kind}))
        self._topo = topo
        try:
            self._build()
        except BaseException:
            self.down()
            raise
        return time.monotonic() - start

    def _build(self) -> None:
        topo, cp = self.topology, self.cp
        for net in topo.networks:
            n = cp.create_network(net.name, net.segmentation_id, net.mtu)
            for s in net.subnets:
                cp.create_subnet(n.id, s.name, s.cidr, s.gateway, s.allocation_pool, s.dns_nameservers,
                                 s.host_routes, s.enable_dhcp)
        rabbit = self.bus_kind == bus.RABBITMQ
        if rabbit:
            self._bus = broker.plan(self.paths, self.server_node, os.urandom(8).hex())
        for node in topo.nodes:
            self._write_node_files(node.name, node.role)
        self._create_underlay()
        # local VLANs are allocated up front: SQLite connections stay in this thread
        vlans = {n.name: [(net.segmentation_id, cp.local_vlan(n.name, net.id)) for net in cp.networks()]
                 for n in topo.nodes}
        with ThreadPoolExecutor(max_workers=len(topo.nodes) + 1) as ex:
            # the broker boots (~5 s) while the nodes are built
            booting = ex.submit(lambda: broker.launch(self.paths).wait_up()) if rabbit else None
            list(ex.map(lambda n: self._create_node(n.name, n.role, vlans[n.name]), topo.nodes))
            if booting:
                booting.result()
        # the agents register and the scheduler places each network on N DHCP agents
        for node in topo.network_nodes:
            cp.register_agent(node.name, DHCP_AGENT, "neutron-dhcp-agent")
        agents = [a for a in cp.agents() if a["agent_type"] == DHCP_AGENT]
        for net in cp.networks():
            for agent in agents[:topo.dhcp_agents_per_network]:
                cp.schedule(net.id, agent["id"])
                cp.dhcp_port(net.id, agent["id"], agent["host"])
        for g in topo.guests:
            self._create_guest(g, notify=False)
        if rabbit:
            self.start_server()
        for node in topo.nodes:
            self._start_agent(node.name, "openvswitch")
        for node in topo.network_nodes:
            self._start_agent(node.name, "dhcp")
        self.wait_dhcp_ready()

    def _write_node_files(self, node: str, role: str) -> None:
        root = self.paths.node_root(node)
        for d in ("etc/neutron/plugins/ml2", "var/log/neutron", "var/lib/neutron", "run/neutron", "usr/bin"):
            (root / d).mkdir(parents=True, exist_ok=True)
        topo = self.topology
        secret = os.urandom(8).hex()
        b = getattr(self, "_bus", None)
        (root / "etc/hostname").write_text(node + "\n")
        (root / "etc/neutron/neutron.conf").write_text(NEUTRON_CONF.format(
            secret=secret, agents=topo.dhcp_agents_per_network, down=topo.agent_down_time, report=topo.report_interval,
            bus_secret=(broker.load_state(self.paths) or {}).get("password", secret) if b else secret,
            bus_port=b.port if b else 5672, rpc_timeout=f"{2 * topo.report_interval:g}"))
        (root / "etc/neutron/plugins/ml2/openvswitch_agent.ini").write_text(
            OVS_AGENT_INI.format(local_ip=self.underlay_ip(node)))
        kinds = ["openvswitch"]
        if role == "network":
            (root / "etc/neutron/dhcp_agent.ini").write_text(DHCP_AGENT_INI)
            kinds.append("dhcp")
            # the agent's state on a small filesystem of its own, as /var often is; the
            # broker's node keeps its RabbitMQ data there too (/var/lib)
            state_fs = root / ("var/lib" if b and node == b.host else "var/lib/neutron")
            sh.run(["mount", "-t", "tmpfs", "-o", f"size={STATE_FS_SIZE},mode=0755", f"wnp-{self.name}-state",
                    str(state_fs)])
            (root / "var/lib/neutron").mkdir(parents=True, exist_ok=True)
        if b and node == b.host:
            kinds.append("server")
        for kind in kinds:
            script = root / "usr/bin" / ("neutron-server" if kind == "server" else f"neutron-{kind}-agent")
            script.write_text(AGENT_SCRIPT.format(python=sys.executable, kind=kind))
            script.chmod(0o755)

    def _create_underlay(self) -> None:
        ns = self.paths.underlay_ns
        sh.run(["ip", "netns", "add", ns])
        sh.ip_batch(["link set lo up", "link add br-underlay type bridge", "link set br-underlay up"], ns)

    def _create_node(self, node: str, role: str, nets: list[tuple[int, int]]) -> None:
        ns = self.paths.node_ns(node)
        sh.run(["ip", "netns", "add", ns])
        sh.run(["ip", "link", "add", "eth1", "netns", ns, "type", "veth", "peer", "name", f"u-{node}",
                "netns", self.paths.underlay_ns])
        sh.ip_batch([f"link set u-{node} master br-underlay up"], self.paths.underlay_ns)
        sh.ip_batch(["link set lo up", "link set eth1 up"], ns)
        sh.run(["ethtool", "-K", "eth1", "tx", "off"], ns, check=False)
        ovs = self.ovs(node)
        ovs.start()
        my_ip = self.underlay_ip(node)
        others = [self.underlay_ip(n.name) for n in self.topology.nodes if n.name != node]
        tun_ports = [tunnel_port_name(ip) for ip in others]
        args = ["--", "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev", "fail_mode=secure",
                "--", "add-br", "br-phy", "--", "set", "bridge", "br-phy", "datapath_type=netdev",
                "--", "add-port", "br-phy", "eth1",
                "--", "add-br", "br-tun", "--", "set", "bridge", "br-tun", "datapath_type=netdev", "fail_mode=secure",
                "--", "add-port", "br-int", "patch-tun", "--", "set", "interface", "patch-tun", "type=patch",
                "options:peer=patch-int",
                "--", "add-port", "br-tun", "patch-int", "--", "set", "interface", "patch-int", "type=patch",
                "options:peer=patch-tun"]
        for ip, port in zip(others, tun_ports):
            args += ["--", "add-port", "br-tun", port, "--", "set", "interface", port, "type=vxlan",
                     f"options:local_ip={my_ip}", f"options:remote_ip={ip}", "options:key=flow",
                     "options:dst_port=4789", "options:df_default=true", "options:in_key=flow", "options:out_key=flow"]
        ovs.vsctl(*args)
        sh.ip_batch([f"addr add {my_ip}/24 dev br-phy", "link set br-phy up"], ns)
        ovs.replace_flows("br-int", br_int_flows())
        ovs.replace_flows("br-tun", br_tun_flows(tun_ports, nets))
        if role == "compute":
            sh.run(["sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=1"], ns, check=False)

    def _create_guest(self, g: GuestSpec, notify: bool = True) -> dict:
        cp = self.cp
        net = cp.network(g.network)
        inst_dir = self.paths.guest_dir(g.name)
        port = cp.create_port(net.id, name=f"{g.name}-port", binding_host=g.node, notify=notify)
        cp.add_instance(g.name, g.node, net.id, port.id, g.client)
        node_ns = self.paths.node_ns(g.node)
        guestmod.plug(self.paths.guest_ns(g.name), node_ns, port.id, port.mac, net.mtu)
        guestmod.write_client_files(inst_dir)
        qvo = device("qvo", port.id)
        self.ovs(g.node).vsctl("--may-exist", "add-port", "br-int", qvo, f"tag={cp.local_vlan(g.node, net.id)}",
                               "--", "set", "Interface", qvo, f"external_ids:iface-id={port.id}",
                               f"external_ids:attached-mac={port.mac}", "external_ids:iface-status=active",
                               f"external_ids:vm-uuid={port.device_id}")
        self.apply_firewall(g.node)
        cp.set_port_status(port.id, "ACTIVE")
        return {"name": g.name, "port_id": port.id}

    def apply_firewall(self, node: str) -> None:
        """Render the node's Neutron iptables for every port bound to it."""
        ports = [(p.id, p.mac, p.ip) for p in self.cp.ports()
                 if p.binding_host == node and p.device_owner.startswith("compute:")]
        sh.run(["iptables-restore"], self.paths.node_ns(node), input=firewall.filter_table(ports))

    def _start_agent(self, node: str, kind: str, env: dict[str, str] | None = None) -> int:
        root = self.paths.node_root(node)
        confs = [root / "etc/neutron/neutron.conf"]
        if kind != "server":
            confs.append(root / ("etc/neutron/dhcp_agent.ini" if kind == "dhcp"
                                 else "etc/neutron/plugins/ml2/openvswitch_agent.ini"))
        binary = "neutron-server" if kind == "server" else f"neutron-{kind}-agent"
        argv = [str(root / "usr/bin" / binary), *(f"--config-file={c}" for c in confs),
                f"--log-file=/var/log/neutron/{binary}.log"]
        with open(root / f"var/log/neutron/{binary}.stderr", "a") as stderr:
            p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                 start_new_session=True, env={**os.environ, **env} if env else None)
        (root / "run/neutron" / f"{binary}.pid").write_text(f"{p.pid}\n")
        return p.pid

    def start_server(self) -> int:
        """neutron-server's RPC side (labs with the RabbitMQ bus), until it takes casts."""
        pid = self.server_pid()
        if sh.pid_alive(pid):
            return pid
        sock = bus.server_socket_path(self.paths.dir)
        sock.unlink(missing_ok=True)
        pid = self._start_agent(self.server_node, "server")
        wait_for(lambda: sock.exists() or not sh.pid_alive(pid), 15, "neutron-server to start")
        if not sh.pid_alive(pid):
            raise LabError(f"neutron-server exited at start (see {self.paths.neutron_log(self.server_node, 'neutron-server')})")
        return pid

    def server_pid(self) -> int | None:
        return sh.read_pid(str(self.paths.node_root(self.server_node) / "run/neutron/neutron-server.pid"))

    def agent_pid(self, node: str, kind: str = "dhcp") -> int | None:
        return sh.read_pid(str(self.paths.node_root(node) / "run/neutron" / f"neutron-{kind}-agent.pid"))

    def start_agent(self, node: str, kind: str = "dhcp", env: dict[str, str] | None = None) -> int:
        """Start the node's agent unless it runs; `env` adds to its environment."""
        if sh.pid_alive(self.agent_pid(node, kind)):
            return self.agent_pid(node, kind)
        return self._start_agent(node, kind, env)

    def stop_agent(self, node: str, kind: str = "dhcp") -> None:
        pid = self.agent_pid(node, kind)
        if pid and sh.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            wait_for(lambda: not sh.pid_alive(pid), 5, f"neutron-{kind}-agent on {node} to stop")

    def dhcp_servers(self) -> list[dict]:
        """Each (network, agent) that should serve DHCP, with its port and files."""
        out = []
        cp = self.cp
        for net in cp.networks():
            for agent in cp.dhcp_agents_for(net.id):
                node = agent["host"]
                port = next((p for p in cp.ports(net.id)
                             if p.device_owner == "network:dhcp" and p.binding_host == node), None)
                d = self.paths.dhcp_dir(node, net.id)
                out.append({
                    "network": net.id, "node": node, "ip": port.ip if port else None,
                    "namespace": self.paths.qdhcp_ns(node, net.id),
                    "tap": device("ns-", port.id) if port else None,
                    "bridge_port": device("tap", port.id) if port else None,
                    "port_id": port.id if port else None,
                    "pid": sh.read_pid(str(d / "pid")),
                    "host_file": str(d / "host"), "opts_file": str(d / "opts"), "leases_file": str(d / "leases"),
                    "log_file": str(self.paths.dnsmasq_log(node, net.id)),
                })
        return out

    def wait_dhcp_ready(self, timeout: float = 15) -> None:
        """Until every expected dnsmasq has written its pid and listens on :67."""
        for srv in self.dhcp_servers():
            if not any(s.enable_dhcp for s in self.cp.subnets(srv["network"])):
                continue

            def ready(srv=srv) -> bool:
                pid = sh.read_pid(srv["host_file"].rsplit("/", 1)[0] + "/pid")
                if not sh.pid_alive(pid):
                    return False
                cp = sh.run(["ss", "-Hlun", "sport = :67"], srv["namespace"], check=False)
                return ":67" in cp.stdout
            wait_for(ready, timeout, f"dnsmasq for network {srv['network']} on {srv['node']}")

    # --- guests -----------------------------------------------------------------------------

    def add_guest(self, name: str, network: str | None = None, node: str | None = None,
                  client: str = "udhcpc") -> dict:
        topo = self.topology
        computes = [n.name for n in topo.nodes if n.role == "compute"] or [topo.nodes[0].name]
        net = self.cp.network(network) if network else self.cp.networks()[0]
        spec = GuestSpec(name, node or computes[len(self.cp.instances()) % len(computes)], net.id, client)
        topo.node(spec.node)
        return self._create_guest(spec)

    def guest_hops(self, name: str) -> list[dict]:
        """The hops of a guest's path to each DHCP server, in order, with where to capture."""
        inst = self.cp.instance(name)
        port = self.cp.port(inst["port_id"])
        node = inst["host"]
        hops = [{"node": name, "namespace": self.paths.guest_ns(name), "interface": "eth0", "role": "guest"}]
        nns = self.paths.node_ns(node)
        for kind in ("tap", "qbr", "qvb", "qvo"):
            hops.append({"node": node, "namespace": nns, "interface": device(kind, port.id), "role": kind})
        servers = [s for s in self.dhcp_servers() if s["network"] == inst["network_id"]]
        if any(s["node"] != node for s in servers):
            hops.append({"node": node, "namespace": nns, "interface": "eth1", "role": "underlay"})
        for s in servers:
            sns = self.paths.node_ns(s["node"])
            if s["node"] != node:
                hops.append({"node": s["node"], "namespace": sns, "interface": "eth1", "role": "underlay"})
            if s["bridge_port"]:
                hops.append({"node": s["node"], "namespace": sns, "interface": s["bridge_port"], "role": "dhcp-tap"})
                hops.append({"node": s["node"], "namespace": s["namespace"], "interface": s["tap"], "role": "dhcp-ns"})
        return hops

    def dhcp(self, name: str, capture: bool = True) -> guestmod.Attempt:
        inst = self.cp.instance(name)
        gdir = self.paths.guest_dir(name)
        cap = None
        if capture:
            cdir = self.paths.capture_dir(name)
            if cdir.exists():
                for f in cdir.iterdir():
                    f.unlink()
            hops = []
            for i, h in enumerate(self.guest_hops(name), 1):
                if sh.run(["ip", "-n", h["namespace"], "link", "show", h["interface"]], check=False).returncode:
                    continue
                hops.append((h["namespace"], h["interface"], cdir / f"{i:02d}_{h['node']}_{h['interface']}.pcap"))
            cap = guestmod.Capture(hops)
            cap.start()
        try:
            return guestmod.run_client(name, self.paths.guest_ns(name), inst["client"], gdir)
        finally:
            if cap:
                cap.stop()

    # --- status -----------------------------------------------------------------------------

    def status(self) -> dict:
        cp, topo = self.cp, self.topology
        servers = self.dhcp_servers()
        nets = []
        for net in cp.networks():
            nets.append({
                "id": net.id, "name": net.name, "segmentation_id": net.segmentation_id, "mtu": net.mtu,
                "subnets": [{"id": s.id, "name": s.name, "cidr": s.cidr, "gateway_ip": s.gateway_ip,
                             "allocation_pool": f"{s.pool_start}-{s.pool_end}", "enable_dhcp": s.enable_dhcp}
                            for s in cp.subnets(net.id)],
                "dhcp_servers": [{k: s[k] for k in ("ip", "node", "namespace", "tap", "pid", "host_file", "opts_file",
                                                    "leases_file", "log_file")} for s in servers
                                 if s["network"] == net.id],
            })
        guests = []
        for inst in cp.instances():
            port = cp.port(inst["port_id"])
            guests.append({"name": inst["name"], "namespace": self.paths.guest_ns(inst["name"]), "node": inst["host"],
                           "network": inst["network_id"], "mac": port.mac, "port_id": port.id,
                           "expected_ip": port.ip, "client": inst["client"],
                           "console_log": str(self.paths.guest_dir(inst["name"]) / "console.log")})
        return {
            "name": self.name, "dir": str(self.paths.dir), "topology": self.config["topology_name"],
            "nodes": [{"name": n.name, "role": n.role, "namespace": self.paths.node_ns(n.name),
                       "ovs_rundir": str(self.paths.ovs_rundir(n.name)), "root": str(self.paths.node_root(n.name)),
                       "underlay_ip": self.underlay_ip(n.name)} for n in topo.nodes],
            "networks": nets,
            "guests": guests,
            "agents": cp.agents(),
            "bus": self.bus_status(),
        }

    def bus_status(self) -> dict:
        if self.bus_kind != bus.RABBITMQ:
            return {"kind": bus.EMBEDDED, "port": None, "pid": None, "log_file": None}
        b = self.broker()
        return {"kind": bus.RABBITMQ, "port": b.port, "pid": b.pid, "log_file": str(b.log_file),
                "node": b.nodename, "host": b.host, "server_pid": self.server_pid()}

    # --- down -------------------------------------------------------------------------------

    def _namespaces(self) -> list[str]:
        out = sh.run(["ip", "netns", "list"], check=False).stdout
        return [line.split()[0] for line in out.splitlines() if line.startswith(self.paths.prefix)]

    def _mounts(self) -> list[str]:
        base = str(self.paths.dir) + "/"
        with open("/proc/self/mounts") as f:
            points = [line.split()[1].encode().decode("unicode_escape") for line in f]
        return [p for p in points if p.startswith(base)]

    def _leftovers(self) -> bool:
        return bool(self._namespaces() or self._mounts())

    def _own_pids(self, namespaces: list[str]) -> set[int]:
        pids: set[int] = set()
        for ns in namespaces:
            out = sh.run(["ip", "netns", "pids", ns], check=False).stdout
            pids.update(int(p) for p in out.split() if p.isdigit())
        needle = str(self.paths.dir).encode() + b"/"
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if needle in f.read():
                        pids.add(int(entry))
            except OSError:
                continue
        pids.discard(os.getpid())
        return pids

    def down(self) -> float:
        """Remove everything this lab created; safe to run on a half-built or crashed lab."""
        start = time.monotonic()
        if self._cp is not None:
            self._cp.close()
            self._cp = None
        broker.stop_all(self.paths)  # the broker and its epmd, by PID, before the rest
        namespaces = self._namespaces()
        pids = self._own_pids(namespaces)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and any(sh.pid_alive(p) for p in pids):
            time.sleep(0.01)
        for pid in pids:
            if sh.pid_alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        # processes that appeared meanwhile (a respawn racing the kill)
        for pid in self._own_pids(self._namespaces()) - pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for mount in sorted(self._mounts(), key=len, reverse=True):
            sh.run(["umount", "-l", mount], check=False)
        namespaces = self._namespaces()
        if namespaces:
            sh.run(["ip", "-force", "-batch", "-"], input="".join(f"netns del {ns}\n" for ns in namespaces),
                   check=False)
        if self.paths.dir.exists():
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.paths.dir)], check=False)
        return time.monotonic() - start


def _topology_dict(t: Topology) -> dict:
    return {
        "name": t.name, "dhcp_agents_per_network": t.dhcp_agents_per_network,
        "report_interval": t.report_interval, "agent_down_time": t.agent_down_time,
        "nodes": [{"name": n.name, "role": n.role} for n in t.nodes],
        "networks": [{"name": n.name, "segmentation_id": n.segmentation_id, "mtu": n.mtu, "subnets": [
            {"name": s.name, "cidr": s.cidr, "gateway": s.gateway, "allocation_pool": "-".join(s.allocation_pool),
             "dns_nameservers": s.dns_nameservers, "enable_dhcp": s.enable_dhcp,
             "host_routes": [{"destination": d, "nexthop": h} for d, h in s.host_routes]} for s in n.subnets]}
            for n in t.networks],
        "guests": [{"name": g.name, "node": g.node, "network": g.network, "client": g.client} for g in t.guests],
    }


def all_labs() -> list[str]:
    root = labs_root()
    return sorted(p.name for p in root.iterdir() if (p / "lab.json").exists()) if root.exists() else []
