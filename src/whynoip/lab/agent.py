"""The lab's Neutron agents: the DHCP agent (one per network node) and the Open vSwitch
agent's state reports (one per node). Each runs as its own process, started as
`<node>/usr/bin/neutron-dhcp-agent --config-file=... --log-file=...`, so that `ps`, the
agent list and the logs show what a real node shows.

The DHCP agent does what Neutron's does for dnsmasq: on start and on every full sync it
makes sure each network it hosts has its `qdhcp-<network>` namespace, its DHCP port
plugged into br-int, its files written and one dnsmasq running; on port events it
rewrites the files and sends SIGHUP; on subnet changes it restarts dnsmasq; every check
interval it looks for the dnsmasq PID (only the PID: a hung dnsmasq passes) and respawns
a dead one; failures schedule a resync. It reports state every `report_interval`.

With the RabbitMQ bus (`lab up --bus rabbitmq`) the casts arrive over RabbitMQ and the
state reports are RPC calls to neutron-server (`main(kind="server")`, which records the
heartbeats); an agent that cannot report logs "Failed reporting state!" and goes dead in
the API, and when neutron-server says it was dead it schedules a full sync.
"""

from __future__ import annotations

import argparse
import configparser
import ipaddress
import json
import os
import select
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

from whynoip.lab import bus, dnsmasq_files, sh
from whynoip.lab.controlplane import AGENT_REVIVED, DHCP_AGENT, OVS_AGENT, ControlPlane, NeutronServer
from whynoip.lab.oslolog import OsloLogger, new_request_id
from whynoip.lab.ovs import NodeOvs
from whynoip.lab.paths import LabPaths, device

LOGGER = "neutron.agent.dhcp.agent"


class Stop(Exception):
    pass


def _stop(*_):
    raise Stop()


class NodeContext:
    """What an agent knows of its node: derived from its config file's location
    (`<node root>/etc/neutron/...`), as a real agent knows its host's file system."""

    def __init__(self, config_files: list[str]):
        self.root = Path(config_files[0]).resolve().parent.parent.parent
        self.node = self.root.name
        self.lab_dir = self.root.parent.parent
        lab = json.loads((self.lab_dir / "lab.json").read_text())
        self.paths = LabPaths(lab["name"])
        self.conf = configparser.ConfigParser(strict=False, interpolation=None)
        self.conf.read(config_files)
        self.report_interval = self.conf.getfloat("agent", "report_interval", fallback=30.0)
        self.agent_down_time = float(lab.get("agent_down_time", 75))
        self.ns = self.paths.node_ns(self.node)
        self.bus = lab.get("bus", bus.EMBEDDED)
        # the RPC reply timeout of a state report (Neutron: rpc_response_timeout)
        self.rpc_timeout = self.conf.getfloat("DEFAULT", "rpc_response_timeout", fallback=2 * self.report_interval)

    def bus_params(self) -> bus.BusParams:
        retry = self.conf.getfloat("oslo_messaging_rabbit", "rabbit_retry_interval", fallback=1.0)
        return bus.BusParams.from_url(self.conf.get("DEFAULT", "transport_url"), retry)

    def host_path(self, path: str) -> Path:
        """A path as the config names it (/var/log/...) inside this node's root."""
        return self.root / path.lstrip("/")


class DhcpAgent:
    def __init__(self, ctx: NodeContext, log: OsloLogger):
        self.ctx = ctx
        self.log = log
        self.cp = ControlPlane(ctx.lab_dir, agent_down_time=ctx.agent_down_time)
        self.agent_id = self.cp.register_agent(ctx.node, DHCP_AGENT, "neutron-dhcp-agent")
        self.ovs = NodeOvs(ctx.ns, ctx.root)
        self.lease_seconds = ctx.conf.getint("DEFAULT", "dhcp_lease_duration", fallback=86400)
        self.resync_interval = ctx.conf.getfloat("DEFAULT", "resync_interval", fallback=5)
        self.check_interval = ctx.conf.getfloat("agent", "check_child_processes_interval", fallback=60)
        log_base = ctx.conf.get("DEFAULT", "dnsmasq_base_log_dir", fallback="/var/log/neutron/dnsmasq")
        self.log_base = ctx.host_path(log_base)
        self.needs_resync: set[str] = set()
        self.enabled: set[str] = set()

    # --- one network --------------------------------------------------------------------

    def conf_dir(self, net_id: str) -> Path:
        return self.ctx.paths.dhcp_dir(self.ctx.node, net_id)

    def dhcp_port(self, net_id: str):
        return self.cp.dhcp_port(net_id, self.agent_id, self.ctx.node)

    def plug(self, net_id: str, port) -> str:
        """DeviceManager.setup with ovs_use_veth: ns-<id> in qdhcp, tap<id> on br-int."""
        ns = self.ctx.paths.qdhcp_ns(self.ctx.node, net_id)
        ns_dev, tap = device("ns-", port.id), device("tap", port.id)
        if sh.run(["ip", "netns", "pids", ns], check=False).returncode != 0:
            sh.run(["ip", "netns", "add", ns])
            sh.run(["ip", "-n", ns, "link", "set", "lo", "up"])
        if sh.run(["ip", "-n", ns, "link", "show", ns_dev], check=False).returncode != 0:
            net = self.cp.network(net_id)
            sh.run(["ip", "link", "add", ns_dev, "netns", ns, "address", port.mac, "mtu", str(net.mtu), "type", "veth",
                    "peer", "name", tap, "netns", self.ctx.ns, "mtu", str(net.mtu)])
            sh.run(["ethtool", "-K", ns_dev, "tx", "off"], ns, check=False)
            sh.run(["ethtool", "-K", tap, "tx", "off"], self.ctx.ns, check=False)
            sh.run(["ip", "-n", self.ctx.ns, "link", "set", tap, "up"])
            vlan = self.cp.local_vlan(self.ctx.node, net_id)
            self.ovs.vsctl("--may-exist", "add-port", "br-int", tap, f"tag={vlan}", "--", "set", "Interface", tap,
                           f"external_ids:iface-id={port.id}", f"external_ids:attached-mac={port.mac}",
                           "external_ids:iface-status=active")
            sub = self.cp.subnet(port.subnet_id)
            prefix = sub.cidr.split("/")[1]
            sh.run(["ip", "-n", ns, "addr", "add", f"{port.ip}/{prefix}", "dev", ns_dev])
            sh.run(["ip", "-n", ns, "link", "set", ns_dev, "up"])
            self.cp.set_port_status(port.id, "ACTIVE")
        return ns_dev

    def write_files(self, net_id: str, interface: str, init_leases: bool) -> None:
        d = self.conf_dir(net_id)
        d.mkdir(parents=True, exist_ok=True)
        subnets = self.cp.subnets(net_id)
        dhcp_subnets = {s.id for s in subnets if s.enable_dhcp}
        ports = self.cp.ports(net_id)
        my_port = self.dhcp_port(net_id)
        files = {"host": dnsmasq_files.host_file(ports, dhcp_subnets),
                 "addn_hosts": dnsmasq_files.addn_hosts_file(ports, dhcp_subnets),
                 "opts": dnsmasq_files.opts_file(subnets, my_port.ip),
                 "interface": interface + "\n"}
        if init_leases:
            files["leases"] = dnsmasq_files.init_leases_file(ports, dhcp_subnets, self.lease_seconds)
        for name, text in files.items():
            tmp = d / f".{name}.tmp"
            tmp.write_text(text)  # raises OSError on a full disk, as Neutron's replace_file does
            os.replace(tmp, d / name)

    def pid(self, net_id: str) -> int | None:
        return sh.read_pid(str(self.conf_dir(net_id) / "pid"))

    def spawn(self, net_id: str, interface: str) -> None:
        net = self.cp.network(net_id)
        log_file = self.log_base / net_id / "dhcp_dns_log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        subnets = self.cp.subnets(net_id)
        # Neutron: --dhcp-lease-max = min(addresses in the DHCP subnets, dnsmasq_lease_max)
        addresses = sum(ipaddress.ip_network(s.cidr).num_addresses for s in subnets if s.enable_dhcp) or 1
        lease_max = min(addresses, self.ctx.conf.getint("DEFAULT", "dnsmasq_lease_max", fallback=2 ** 24))
        cmd = dnsmasq_files.command(net, subnets, self.conf_dir(net_id), interface, log_file,
                                    self.lease_seconds, lease_max)
        ns = self.ctx.paths.qdhcp_ns(self.ctx.node, net_id)
        self.log.debug(f"Running command: ['ip', 'netns', 'exec', '{Path(ns).name}', {', '.join(repr(c) for c in cmd)}]",
                       name="neutron.agent.linux.utils")
        sh.run(cmd, ns)

    def enable(self, net_id: str, request_id: str | None = None) -> None:
        subnets = self.cp.subnets(net_id)
        if not any(s.enable_dhcp for s in subnets):
            self.disable(net_id, "Network has no DHCP-enabled subnets", request_id)
            return
        port = self.dhcp_port(net_id)
        interface = self.plug(net_id, port)
        pid = self.pid(net_id)
        running = sh.pid_alive(pid)
        self.write_files(net_id, interface, init_leases=not running)
        if running:
            os.kill(pid, signal.SIGHUP)
        else:
            self.spawn(net_id, interface)
        self.enabled.add(net_id)

    def disable(self, net_id: str, why: str, request_id: str | None = None) -> None:
        pid = self.pid(net_id)
        if sh.pid_alive(pid):
            self.log.info(f"{why}: disabling DHCP for network {net_id}", request_id)
            os.kill(pid, signal.SIGTERM)
        self.enabled.discard(net_id)

    def restart(self, net_id: str, request_id: str | None = None) -> None:
        pid = self.pid(net_id)
        if sh.pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 5
            while sh.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)
        self.enable(net_id, request_id)

    def call_driver(self, action: str, net_id: str, request_id: str | None = None) -> None:
        try:
            getattr(self, action)(net_id, request_id)
        except Exception:
            self.log.exception(f"Unable to {action} dhcp for {net_id}.", request_id)
            self.needs_resync.add(net_id)

    def reload_allocations(self, net_id: str, request_id: str | None = None) -> None:
        pid = self.pid(net_id)
        if not sh.pid_alive(pid):
            self.enable(net_id, request_id)
            return
        interface = (self.conf_dir(net_id) / "interface").read_text().strip()
        self.write_files(net_id, interface, init_leases=False)
        os.kill(pid, signal.SIGHUP)
        self.log.debug(f"Reloading allocations for network: {net_id}", request_id, name="neutron.agent.linux.dhcp")

    # --- the agent ----------------------------------------------------------------------

    def sync_state(self) -> None:
        self.log.info("Synchronizing state")
        hosted = set(self.cp.networks_for_agent(self.agent_id))
        failed = False
        for net_id in sorted(hosted):
            try:
                self.enable(net_id)
            except Exception:
                self.log.exception(f"Unable to enable dhcp for {net_id}.")
                failed = True
        for net_id in sorted(self.enabled - hosted):
            self.disable(net_id, "Network is no longer hosted by this agent")
        if failed:
            self.log.error("Unable to sync network state.")
            self.needs_resync.update(hosted)
        else:
            self.needs_resync.clear()
            self.log.info("Synchronizing state complete")

    def handle(self, msg: dict) -> None:
        event, net_id = msg.get("event"), msg.get("network_id")
        rid = new_request_id()
        if event == "network.delete.end":  # also sent when the network is removed from this agent
            if net_id in self.enabled and net_id not in self.cp.networks_for_agent(self.agent_id):
                self.disable(net_id, "Network is no longer hosted by this agent", rid)
            return
        if net_id not in self.cp.networks_for_agent(self.agent_id):
            return
        if event in ("port.create.end", "port.update.end", "port.delete.end"):
            self.log.info(f"Trigger reload_allocations for port {msg.get('port_id')}", rid)
            self.call_driver("reload_allocations", net_id, rid)
        elif event == "subnet.update.end":
            self.call_driver("restart", net_id, rid)
        elif event in ("network.create.end", "dhcp_agent.network.add"):
            self.call_driver("enable", net_id, rid)

    def check_children(self) -> None:
        for net_id in sorted(self.enabled):
            if not sh.pid_alive(self.pid(net_id)):
                self.log.error(f"dnsmasq for dhcp with uuid {net_id} not found. The process should not have died",
                               name="neutron.agent.linux.external_process")
                self.log.warning(f"Respawning dnsmasq for uuid {net_id}", name="neutron.agent.linux.external_process")
                try:
                    self.spawn(net_id, (self.conf_dir(net_id) / "interface").read_text().strip())
                except Exception:
                    self.log.exception(f"Unable to respawn dnsmasq for {net_id}.")

    def report_state(self) -> None:
        if self.cp.heartbeat(self.agent_id):
            self.log.info("Agent has just been revived. Scheduling full sync")
            self.needs_resync.add("*")

    def run(self) -> None:
        rabbit = self.ctx.bus == bus.RABBITMQ
        if rabbit:
            params = self.ctx.bus_params()
            source = bus.Listener(params, self.log, bus.dhcp_agent_topic(self.ctx.node))
            source.start()
            StateReporter(self.ctx, params, self.log, DHCP_AGENT, "neutron-dhcp-agent", "dhcp_agent",
                          "Agent has just been revived. Scheduling full sync", LOGGER,
                          lambda: self.needs_resync.add("*")).start()
        else:
            source = bus.listen(self.ctx.lab_dir, self.ctx.node)
        self.log.info("DHCP agent started")
        if not rabbit:
            self.report_state()
        self.sync_state()
        next_report = next_check = next_resync = time.monotonic()
        while True:
            now = time.monotonic()
            timeout = max(0.0, min(next_report, next_check, next_resync) - now)
            ready, _, _ = select.select([source], [], [], timeout)
            if ready:
                if rabbit:
                    for msg in source.messages():
                        self.handle(msg)
                else:
                    data = source.recv(65536)
                    try:
                        msg = json.loads(data)
                    except ValueError:
                        continue
                    self.handle(msg)
            now = time.monotonic()
            if now >= next_report:
                if not rabbit:
                    self.report_state()
                next_report = now + self.ctx.report_interval
            if now >= next_check:
                self.check_children()
                next_check = now + self.check_interval
            if now >= next_resync:
                if self.needs_resync:
                    self.sync_state()
                next_resync = now + self.resync_interval


class StateReporter(threading.Thread):
    """An agent's state reports over the bus: every report_interval an RPC call
    `report_state` to neutron-server carrying the agent's own clock (`time`), the first
    with `start_flag`; the reply says whether the server had the agent for dead."""

    def __init__(self, ctx: NodeContext, params: bus.BusParams, log: OsloLogger, agent_type: str, binary: str,
                 topic: str, revived_message: str, logger: str, on_revived=None):
        super().__init__(daemon=True, name="report-state")
        self.ctx, self.params, self.log = ctx, params, log
        self.state = {"binary": binary, "host": ctx.node, "topic": topic, "agent_type": agent_type,
                      "configurations": {}, "start_flag": True}
        self.revived_message, self.logger, self.on_revived = revived_message, logger, on_revived
        self.failed = False

    def report(self, client: bus.RpcClient) -> None:
        try:
            status = client.call(bus.REPORTS_TOPIC, "report_state", self.ctx.rpc_timeout,
                                 agent_state={"agent_state": dict(self.state)},
                                 time=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f"))
        except Exception:
            self.log.exception("Failed reporting state!", name=self.logger)
            self.failed = True
            return
        self.state.pop("start_flag", None)
        if self.failed:
            self.failed = False
            self.log.info("Successfully reported state after a previous failure.", name=self.logger)
        # the answer to a report that had timed out may still say the server had us dead
        late, client.late[:] = list(client.late), []
        if status == AGENT_REVIVED or AGENT_REVIVED in late:
            self.log.info(self.revived_message, name=self.logger)
            if self.on_revived:
                self.on_revived()

    def run(self) -> None:
        client = bus.RpcClient(self.params, self.log)
        while True:
            started = time.monotonic()
            self.report(client)
            time.sleep(max(0.0, self.ctx.report_interval - (time.monotonic() - started)))


class OvsAgentReporter:
    """The Open vSwitch agent's state reports (the lab wires ports itself)."""

    def __init__(self, ctx: NodeContext, log: OsloLogger):
        self.ctx = ctx
        self.log = log
        self.cp = ControlPlane(ctx.lab_dir, agent_down_time=ctx.agent_down_time)
        self.agent_id = self.cp.register_agent(ctx.node, OVS_AGENT, "neutron-openvswitch-agent")

    def run(self) -> None:
        self.log.info("Agent initialized successfully, now running... ",
                      name="neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent")
        if self.ctx.bus == bus.RABBITMQ:
            StateReporter(self.ctx, self.ctx.bus_params(), self.log, OVS_AGENT, "neutron-openvswitch-agent",
                          "N/A", "Agent has just been revived. Doing a full sync.",
                          "neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent").run()
            return
        while True:
            if self.cp.heartbeat(self.agent_id):
                self.log.info("Agent has just been revived. Doing a full sync.",
                              name="neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent")
            time.sleep(self.ctx.report_interval)


def main(argv: list[str] | None = None, kind: str = "dhcp") -> None:
    ap = argparse.ArgumentParser(prog="neutron-server" if kind == "server" else f"neutron-{kind}-agent")
    ap.add_argument("--config-file", action="append", required=True)
    ap.add_argument("--log-file", required=True)
    args = ap.parse_args(argv)
    ctx = NodeContext(args.config_file)
    log = OsloLogger(ctx.host_path(args.log_file), "neutron.service" if kind == "server" else LOGGER)
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        if kind == "server":
            NeutronServer(ctx.lab_dir, ctx.bus_params(), log, ctx.agent_down_time).run(
                bus.server_socket_path(ctx.lab_dir))
            return
        (DhcpAgent if kind == "dhcp" else OvsAgentReporter)(ctx, log).run()
    except Stop:
        log.info("Agent caught SIGTERM, quitting daemon loop.", name="neutron.agent.common.polling")
    except Exception:
        log.exception("Agent failed")
        sys.exit(1)


if __name__ == "__main__":
    main(kind=sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in ("dhcp", "openvswitch", "server") else "dhcp")
