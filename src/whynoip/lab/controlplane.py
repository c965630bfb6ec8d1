"""The lab's control plane: Neutron's server side in miniature.

Networks, subnets, ports and agents live in an embedded SQLite database (one per lab).
Ports get a random MAC with OpenStack's `fa:16:3e` prefix and a fixed IP from the
subnet's allocation pool (never the gateway, never twice). Every change is cast to the
DHCP agents hosting the network over the lab's bus, fire and forget as Neutron's RPC
casts are: an agent that is down misses it and only learns at its next full sync.
Agents report heartbeats into the database; an agent is alive while its last heartbeat is
younger than `agent_down_time`, as Neutron decides it.
"""

from __future__ import annotations

import ipaddress
import json
import random
import socket
import sqlite3
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from whynoip.errors import LabError
from whynoip.lab import bus
from whynoip.lab.oslolog import OsloLogger

SCHEMA = """
CREATE TABLE IF NOT EXISTS networks (id TEXT PRIMARY KEY, name TEXT, segmentation_id INTEGER,
    mtu INTEGER, admin_state_up INTEGER DEFAULT 1, status TEXT DEFAULT 'ACTIVE');
CREATE TABLE IF NOT EXISTS subnets (id TEXT PRIMARY KEY, network_id TEXT, name TEXT, cidr TEXT,
    gateway_ip TEXT, pool_start TEXT, pool_end TEXT, dns TEXT, host_routes TEXT, enable_dhcp INTEGER);
CREATE TABLE IF NOT EXISTS ports (id TEXT PRIMARY KEY, network_id TEXT, name TEXT, mac TEXT UNIQUE,
    ip TEXT, subnet_id TEXT, device_owner TEXT, device_id TEXT, binding_host TEXT,
    vif_type TEXT DEFAULT 'ovs', status TEXT DEFAULT 'DOWN', admin_state_up INTEGER DEFAULT 1,
    created REAL);
CREATE TABLE IF NOT EXISTS agents (id TEXT PRIMARY KEY, host TEXT, agent_type TEXT, binary TEXT,
    heartbeat REAL, started REAL, admin_state_up INTEGER DEFAULT 1, UNIQUE(host, agent_type));
CREATE TABLE IF NOT EXISTS network_dhcp_agents (network_id TEXT, agent_id TEXT,
    PRIMARY KEY (network_id, agent_id));
CREATE TABLE IF NOT EXISTS instances (id TEXT PRIMARY KEY, name TEXT UNIQUE, host TEXT,
    network_id TEXT, port_id TEXT, client TEXT, created REAL);
CREATE TABLE IF NOT EXISTS local_vlans (node TEXT, network_id TEXT, vlan INTEGER,
    PRIMARY KEY (node, network_id));
"""

DHCP_AGENT = "DHCP agent"
OVS_AGENT = "Open vSwitch agent"


@dataclass(slots=True)
class Port:
    id: str
    network_id: str
    name: str
    mac: str
    ip: str
    subnet_id: str
    device_owner: str
    device_id: str
    binding_host: str
    vif_type: str
    status: str
    admin_state_up: bool


@dataclass(slots=True)
class Subnet:
    id: str
    network_id: str
    name: str
    cidr: str
    gateway_ip: str | None
    pool_start: str
    pool_end: str
    dns: list[str]
    host_routes: list[tuple[str, str]]
    enable_dhcp: bool


@dataclass(slots=True)
class Network:
    id: str
    name: str
    segmentation_id: int
    mtu: int


class ControlPlane:
    def __init__(self, lab_dir: Path, log_path: Path | None = None, agent_down_time: float = 4.0):
        self.lab_dir = lab_dir
        self.db_path = lab_dir / "neutron.db"
        self.agent_down_time = agent_down_time
        self.db = sqlite3.connect(self.db_path, timeout=10, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.executescript(SCHEMA)
        self.log = OsloLogger(log_path, "neutron.plugins.ml2.plugin") if log_path else None

    def close(self) -> None:
        self.db.close()

    # --- networks and subnets ---------------------------------------------------------

    def create_network(self, name: str, segmentation_id: int, mtu: int) -> Network:
        net = Network(str(uuid.uuid4()), name, segmentation_id, mtu)
        self.db.execute("INSERT INTO networks (id, name, segmentation_id, mtu) VALUES (?,?,?,?)",
                        (net.id, name, segmentation_id, mtu))
        return net

    def create_subnet(self, network_id: str, name: str, cidr: str, gateway_ip: str | None,
                      pool: tuple[str, str], dns: list[str], host_routes: list[tuple[str, str]],
                      enable_dhcp: bool) -> Subnet:
        sub = Subnet(str(uuid.uuid4()), network_id, name, cidr, gateway_ip, pool[0], pool[1], list(dns),
                     list(host_routes), enable_dhcp)
        self.db.execute("INSERT INTO subnets VALUES (?,?,?,?,?,?,?,?,?,?)",
                        (sub.id, network_id, name, cidr, gateway_ip, pool[0], pool[1], json.dumps(dns),
                         json.dumps(host_routes), int(enable_dhcp)))
        return sub

    def update_subnet(self, subnet_id: str, **changes) -> Subnet:
        cols = {"enable_dhcp": lambda v: int(v), "gateway_ip": str, "dns": json.dumps,
                "host_routes": json.dumps}
        for k, v in changes.items():
            self.db.execute(f"UPDATE subnets SET {k}=? WHERE id=?", (cols[k](v), subnet_id))
        sub = self.subnet(subnet_id)
        self.notify(sub.network_id, "subnet.update.end", {"subnet_id": subnet_id})
        return sub

    def networks(self) -> list[Network]:
        return [Network(*r) for r in self.db.execute(
            "SELECT id, name, segmentation_id, mtu FROM networks ORDER BY rowid")]

    def network(self, ref: str) -> Network:
        for n in self.networks():
            if ref in (n.id, n.name):
                return n
        raise LabError(f"no network {ref!r}")

    def _subnet(self, row) -> Subnet:
        return Subnet(row[0], row[1], row[2], row[3], row[4], row[5], row[6], json.loads(row[7]),
                      [tuple(r) for r in json.loads(row[8])], bool(row[9]))

    def subnets(self, network_id: str | None = None) -> list[Subnet]:
        q = "SELECT * FROM subnets" + (" WHERE network_id=?" if network_id else "") + " ORDER BY rowid"
        return [self._subnet(r) for r in self.db.execute(q, (network_id,) if network_id else ())]

    def subnet(self, subnet_id: str) -> Subnet:
        row = self.db.execute("SELECT * FROM subnets WHERE id=?", (subnet_id,)).fetchone()
        if row is None:
            raise LabError(f"no subnet {subnet_id!r}")
        return self._subnet(row)

    # --- ports ----------------------------------------------------------------------------

    def _port(self, row) -> Port:
        return Port(*row[:11], bool(row[11]))

    def ports(self, network_id: str | None = None) -> list[Port]:
        q = "SELECT * FROM ports" + (" WHERE network_id=?" if network_id else "") + " ORDER BY created"
        return [self._port(r) for r in self.db.execute(q, (network_id,) if network_id else ())]

    def port(self, ref: str) -> Port:
        row = self.db.execute("SELECT * FROM ports WHERE id=? OR name=? OR id LIKE ?",
                              (ref, ref, ref + "%")).fetchone()
        if row is None:
            raise LabError(f"no port {ref!r}")
        return self._port(row)

    def _allocate_ip(self, sub: Subnet) -> str:
        used = {r[0] for r in self.db.execute("SELECT ip FROM ports WHERE subnet_id=?", (sub.id,))}
        start, end = int(ipaddress.ip_address(sub.pool_start)), int(ipaddress.ip_address(sub.pool_end))
        net = ipaddress.ip_network(sub.cidr)
        for i in range(start, end + 1):
            ip = ipaddress.ip_address(i)
            if str(ip) in used or ip == net.network_address or ip == net.broadcast_address:
                continue
            if sub.gateway_ip and str(ip) == sub.gateway_ip:
                continue
            return str(ip)
        raise LabError(f"subnet {sub.cidr}: no address left in the allocation pool")

    def _random_mac(self) -> str:
        used = {r[0] for r in self.db.execute("SELECT mac FROM ports")}
        while True:
            mac = "fa:16:3e:" + ":".join(f"{random.randrange(256):02x}" for _ in range(3))
            if mac not in used:
                return mac

    def create_port(self, network_id: str, *, name: str = "", device_owner: str = "compute:nova",
                    device_id: str = "", binding_host: str = "", notify: bool = True,
                    ip: str | None = None, mac: str | None = None) -> Port:
        subs = self.subnets(network_id)
        if not subs:
            raise LabError(f"network {network_id} has no subnet")
        sub = subs[0]
        port = Port(str(uuid.uuid4()), network_id, name, mac or self._random_mac(), ip or self._allocate_ip(sub),
                    sub.id, device_owner, device_id or str(uuid.uuid4()), binding_host, "ovs", "DOWN", True)
        self.db.execute("INSERT INTO ports VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                        (port.id, network_id, name, port.mac, port.ip, sub.id, device_owner, port.device_id,
                         binding_host, port.vif_type, port.status, 1, time.time()))
        if notify:
            self.notify(network_id, "port.create.end", {"port_id": port.id})
        return port

    def delete_port(self, port_id: str) -> None:
        port = self.port(port_id)
        self.db.execute("DELETE FROM ports WHERE id=?", (port.id,))
        self.notify(port.network_id, "port.delete.end", {"port_id": port.id})

    def set_port_status(self, port_id: str, status: str) -> None:
        self.db.execute("UPDATE ports SET status=? WHERE id=?", (status, port_id))

    # --- instances (the lab's guests, as Nova would list them) ---------------------------

    def add_instance(self, name: str, host: str, network_id: str, port_id: str, client: str) -> str:
        inst_id = str(uuid.uuid4())
        try:
            self.db.execute("INSERT INTO instances VALUES (?,?,?,?,?,?,?)",
                            (inst_id, name, host, network_id, port_id, client, time.time()))
        except sqlite3.IntegrityError:
            raise LabError(f"a guest named {name!r} exists already") from None
        return inst_id

    def instances(self) -> list[dict]:
        cols = ("id", "name", "host", "network_id", "port_id", "client")
        return [dict(zip(cols, r)) for r in self.db.execute(
            "SELECT id, name, host, network_id, port_id, client FROM instances ORDER BY created")]

    def instance(self, name: str) -> dict:
        for inst in self.instances():
            if name in (inst["name"], inst["id"]):
                return inst
        raise LabError(f"no guest {name!r}")

    def dhcp_port(self, network_id: str, agent_id: str, host: str) -> Port:
        """The DHCP port of `agent_id` on the network, created on first use (device_id
        `dhcp<agent>-<network>`, as Neutron derives it from the agent host)."""
        device_id = f"dhcp{agent_id[:8]}-{network_id}"
        for p in self.ports(network_id):
            if p.device_owner == "network:dhcp" and p.device_id == device_id:
                return p
        return self.create_port(network_id, device_owner="network:dhcp", device_id=device_id,
                                binding_host=host, notify=True)

    # --- agents and scheduling ------------------------------------------------------------

    def register_agent(self, host: str, agent_type: str, binary: str) -> str:
        row = self.db.execute("SELECT id FROM agents WHERE host=? AND agent_type=?", (host, agent_type)).fetchone()
        if row:
            return row[0]
        agent_id = str(uuid.uuid4())
        now = time.time()
        self.db.execute("INSERT INTO agents (id, host, agent_type, binary, heartbeat, started) VALUES (?,?,?,?,?,?)",
                        (agent_id, host, agent_type, binary, now, now))
        return agent_id

    def heartbeat(self, agent_id: str, at: float | None = None) -> bool:
        """Record a state report; True when the agent had been dead (Neutron then logs
        "Agent has just been revived" and the agent does a full sync)."""
        now = time.time() if at is None else at
        row = self.db.execute("SELECT heartbeat FROM agents WHERE id=?", (agent_id,)).fetchone()
        revived = bool(row) and row[0] is not None and now - row[0] > self.agent_down_time
        self.db.execute("UPDATE agents SET heartbeat=? WHERE id=?", (now, agent_id))
        return revived

    def agents(self) -> list[dict]:
        now = time.time()
        out = []
        for agent_id, host, agent_type, binary, hb, started, admin in self.db.execute(
                "SELECT id, host, agent_type, binary, heartbeat, started, admin_state_up FROM agents ORDER BY rowid"):
            out.append({"id": agent_id, "host": host, "agent_type": agent_type, "binary": binary,
                        "heartbeat": hb, "started": started, "admin_state_up": bool(admin),
                        "alive": hb is not None and now - hb <= self.agent_down_time})
        return out

    def schedule(self, network_id: str, agent_id: str) -> None:
        self.db.execute("INSERT OR IGNORE INTO network_dhcp_agents VALUES (?,?)", (network_id, agent_id))

    def unschedule(self, network_id: str, agent_id: str | None = None) -> None:
        if agent_id is None:
            self.db.execute("DELETE FROM network_dhcp_agents WHERE network_id=?", (network_id,))
        else:
            self.db.execute("DELETE FROM network_dhcp_agents WHERE network_id=? AND agent_id=?",
                            (network_id, agent_id))

    def dhcp_agents_for(self, network_id: str) -> list[dict]:
        ids = {r[0] for r in self.db.execute("SELECT agent_id FROM network_dhcp_agents WHERE network_id=?",
                                             (network_id,))}
        return [a for a in self.agents() if a["id"] in ids]

    def networks_for_agent(self, agent_id: str) -> list[str]:
        return [r[0] for r in self.db.execute("SELECT network_id FROM network_dhcp_agents WHERE agent_id=?",
                                              (agent_id,))]

    def local_vlan(self, node: str, network_id: str) -> int:
        row = self.db.execute("SELECT vlan FROM local_vlans WHERE node=? AND network_id=?", (node, network_id)).fetchone()
        if row:
            return row[0]
        used = {r[0] for r in self.db.execute("SELECT vlan FROM local_vlans WHERE node=?", (node,))}
        vlan = next(v for v in range(1, 4094) if v not in used)
        self.db.execute("INSERT INTO local_vlans VALUES (?,?,?)", (node, network_id, vlan))
        return vlan

    # --- the bus ----------------------------------------------------------------------------

    def notify(self, network_id: str, event: str, payload: dict) -> None:
        """Cast `event` to every DHCP agent hosting the network (dhcp_agent_notifier)."""
        for agent in self.dhcp_agents_for(network_id):
            delivered = bus.cast(self.lab_dir, agent["host"], {"event": event, "network_id": network_id, **payload})
            if self.log and not delivered:
                # neutron-server does not know whether a cast arrived; the lab logs what the
                # broker would have dropped, at DEBUG, as the messaging layer does.
                self.log.debug(f"Notification {event} for network {network_id} to dhcp_agent.{agent['host']} "
                               f"was not delivered")


# --- neutron-server's RPC side, for labs with the RabbitMQ bus ------------------------------

AGENT_ALIVE, AGENT_REVIVED = "alive", "revived"
SERVER_LOGGER = "neutron.db.agents_db"


def _parse_agent_time(text: str) -> float:
    """The `time` of a state report (`%Y-%m-%dT%H:%M:%S.%f`, UTC) as epoch seconds."""
    from datetime import datetime, timezone

    for fmt in ("%Y-%m-%dT%H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return datetime.strptime(text, fmt).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    raise ValueError(f"bad report time {text!r}")


def _iso(t: float) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None).isoformat()


class NeutronServer:
    """What neutron-server does with the bus: it relays the lab's casts to the DHCP agents
    (publishing them on its own connection), answers the agents' state reports
    (AgentExtRpcCallback.report_state: a report older than the server's start is skipped as
    stale; at an agent's start its clock is checked against the server's; a heartbeat of a
    dead agent revives it), and every agent_down_time/2 logs the agents found dead
    (agent_health_check)."""

    def __init__(self, lab_dir: Path, params, log: OsloLogger, agent_down_time: float):
        self.lab_dir = lab_dir
        self.params = params
        self.log = log
        self.agent_down_time = agent_down_time
        self.start_time = time.time()

    # AgentExtRpcCallback.report_state
    def report_state(self, cp: ControlPlane, args: dict) -> str | None:
        state = (args.get("agent_state") or {}).get("agent_state") or {}
        agent_time = _parse_agent_time(args["time"])
        if state.get("start_flag"):
            now = time.time()
            diff = abs(now - agent_time)
            if diff > self.agent_down_time:
                self.log.error(
                    f"Message received from the host: {state.get('host')} during the registration of "
                    f"{state.get('agent_type')} has a timestamp: {_iso(agent_time)}. This differs from the current "
                    f"server timestamp: {_iso(now)} by {diff:.6f} seconds, which is more than the threshold agent "
                    f"downtime: {self.agent_down_time:.0f}.", name="neutron.db.agents_db")
        if agent_time < self.start_time:
            self.log.debug(f"Stale message received with timestamp: {_iso(agent_time)}. Skipping processing "
                           f"because it's older than the server start timestamp: {_iso(self.start_time)}",
                           name="neutron.db.agents_db")
            return None
        agent_id = cp.register_agent(state.get("host", "?"), state.get("agent_type", "?"), state.get("binary", "?"))
        return AGENT_REVIVED if cp.heartbeat(agent_id) else AGENT_ALIVE

    def health_check(self, cp: ControlPlane) -> None:
        agents = cp.agents()
        dead = [a for a in agents if not a["alive"]]
        if not dead:
            return
        rows = [f"{'Type':>20} {'Last heartbeat':>20} host"]
        for a in dead:
            hb = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(a["heartbeat"])) if a["heartbeat"] else "None"
            rows.append(f"{a['agent_type']:>20} {hb:>20} {a['host']}")
        self.log.warning(f"Agent healthcheck: found {len(dead)} dead agents out of {len(agents)}:\n"
                         + "\n".join(rows), name=SERVER_LOGGER)

    def _serve_reports(self, stop) -> None:
        import kombu

        cp = ControlPlane(self.lab_dir, agent_down_time=self.agent_down_time)  # this thread's connection
        link = bus.Link(self.params, self.log)
        exchange = kombu.Exchange(bus.CONTROL_EXCHANGE, type="topic", durable=False)
        q = kombu.Queue(bus.REPORTS_TOPIC, exchange, routing_key=bus.REPORTS_TOPIC, durable=False, auto_delete=False)

        def on_request(body, message) -> None:
            try:
                msg = bus.unwrap(body)
                result, failure = None, None
                try:
                    if msg.get("method") == "report_state":
                        result = self.report_state(cp, msg.get("args", {}))
                except Exception as e:
                    failure = repr(e)
                    self.log.exception("Exception during message handling", name="oslo_messaging.rpc.server")
                if msg.get("_reply_q"):
                    kombu.Producer(message.channel, exchange=kombu.Exchange("")).publish(
                        bus.envelope({"result": result, "failure": failure, "ending": True,
                                      "_msg_id": msg.get("_msg_id")}),
                        routing_key=msg["_reply_q"], serializer="json", retry=False)
            finally:
                message.ack()

        while not stop.is_set():
            try:
                conn = link.ensure(stop)
            except bus.MessagingTimeout:
                return
            try:
                with conn.Consumer([q], callbacks=[on_request], accept=["json"]):
                    while not stop.is_set():
                        try:
                            conn.drain_events(timeout=1)
                        except socket.timeout:
                            continue
            except Exception as e:
                if stop.is_set():
                    return
                link.lost(e)
                stop.wait(self.params.retry_interval)

    def run(self, sock_path: Path) -> None:
        import select
        import threading

        stop = threading.Event()
        threading.Thread(target=self._serve_reports, args=(stop,), daemon=True, name="reports").start()
        cp = ControlPlane(self.lab_dir, agent_down_time=self.agent_down_time)
        sock_path.parent.mkdir(parents=True, exist_ok=True)
        sock_path.unlink(missing_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(sock_path))
        publisher = bus.Publisher(self.params, self.log)
        period = max(1.0, self.agent_down_time / 2)
        next_check = time.monotonic() + period
        self.log.info("Starting neutron-server RPC workers", name="neutron.service")
        try:
            while True:
                ready, _, _ = select.select([sock], [], [], 0.5)
                if ready:
                    try:
                        relay = json.loads(sock.recv(65536))
                        host, message = relay["host"], relay["message"]
                    except (ValueError, KeyError, TypeError):
                        continue
                    publisher.publish(bus.dhcp_agent_topic(host), bus.envelope(
                        {"method": message.get("event", "notify").replace(".", "_"), "args": {"payload": message},
                         "_unique_id": uuid.uuid4().hex}))
                else:
                    publisher.poll()
                if time.monotonic() >= next_check:
                    self.health_check(cp)
                    next_check = time.monotonic() + period
        finally:
            stop.set()
            sock.close()
