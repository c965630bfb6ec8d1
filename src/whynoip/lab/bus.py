"""The lab's embedded message bus: a Unix datagram socket per agent host.

Casts are fire and forget, as Neutron's RPC casts to the DHCP agents are: when the agent
is not listening (stopped, dead) the message is simply lost and the agent only catches
up at its next full sync. Used when the lab runs without a broker.

With `lab up --bus rabbitmq` the same casts and the agents' state reports travel over a
real RabbitMQ (see broker.py) through kombu, laid out as oslo.messaging lays them out."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import socket
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path


def socket_path(lab_dir: Path, host: str) -> Path:
    return lab_dir / "nodes" / host / "run" / "neutron" / "dhcp-agent.sock"


def cast(lab_dir: Path, host: str, message: dict) -> bool:
    """Send `message` to the DHCP agent on `host` over the lab's transport; False when it
    surely did not leave (nobody listening)."""
    if kind(lab_dir) == RABBITMQ:
        return _relay(lab_dir, host, message)
    path = socket_path(lab_dir, host)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(json.dumps(message).encode(), str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()


def listen(lab_dir: Path, host: str) -> socket.socket:
    path = socket_path(lab_dir, host)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    return s


# --- which transport a lab uses --------------------------------------------------------------

EMBEDDED = "embedded"
RABBITMQ = "rabbitmq"
KINDS = (EMBEDDED, RABBITMQ)


def kind(lab_dir: Path) -> str:
    """The lab's transport, as `lab up --bus` chose it (lab.json)."""
    try:
        return json.loads((lab_dir / "lab.json").read_text()).get("bus", EMBEDDED)
    except (OSError, ValueError):
        return EMBEDDED


def server_node(lab_dir: Path) -> str:
    """neutron-server's node: the lab's first network node."""
    lab = json.loads((lab_dir / "lab.json").read_text())
    return next(n["name"] for n in lab["topology"]["nodes"] if n["role"] == "network")


def server_socket_path(lab_dir: Path) -> Path:
    return lab_dir / "nodes" / server_node(lab_dir) / "run" / "neutron" / "neutron-server.sock"


def _relay(lab_dir: Path, host: str, message: dict) -> bool:
    """With RabbitMQ a cast is handed to neutron-server, which publishes it on its own AMQP
    connection, fire and forget."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.sendto(json.dumps({"host": host, "message": message}).encode(), str(server_socket_path(lab_dir)))
        return True
    except OSError:
        return False
    finally:
        s.close()


# --- RabbitMQ, as oslo.messaging's rabbit driver uses it ------------------------------------
#
# The topology is oslo.messaging's: a topic exchange named after the control exchange
# (`neutron`); each DHCP agent consumes its own queue `dhcp_agent.<host>` (casts to one
# server); state reports are calls to the topic `q-reports-plugin`, answered on the caller's
# reply queue. Messages carry oslo.messaging's envelope ({"oslo.version", "oslo.message"}).
# Connections log what impl_rabbit logs, in its words: "AMQP server on H:P is unreachable:
# <reason>. Trying again in N seconds.", "Reconnected to AMQP server on ...", "The broker
# has blocked the connection: <reason>".

CONTROL_EXCHANGE = "neutron"
REPORTS_TOPIC = "q-reports-plugin"
AMQP_LOGGER = "oslo.messaging._drivers.impl_rabbit"


class MessagingTimeout(Exception):
    """oslo_messaging.exceptions.MessagingTimeout"""


MessagingTimeout.__module__ = "oslo_messaging.exceptions"


def dhcp_agent_topic(host: str) -> str:
    return f"dhcp_agent.{host}"


def envelope(msg: dict) -> dict:
    return {"oslo.version": "2.0", "oslo.message": json.dumps(msg)}


def unwrap(body) -> dict:
    if isinstance(body, (bytes, str)):
        body = json.loads(body)
    if isinstance(body, dict) and "oslo.message" in body:
        return json.loads(body["oslo.message"])
    return body


@dataclass(frozen=True, slots=True)
class BusParams:
    """Where the broker is, from a `transport_url` (rabbit://user:pass@host:port/vhost)."""
    host: str
    port: int
    user: str
    password: str
    vhost: str = "/"
    retry_interval: float = 1.0

    @classmethod
    def from_url(cls, url: str, retry_interval: float = 1.0) -> "BusParams":
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("rabbit", "amqp") or not u.hostname:
            raise ValueError(f"not a rabbit:// transport_url: {url!r}")
        vhost = urllib.parse.unquote(u.path[1:]) if len(u.path) > 1 else "/"
        return cls(u.hostname, u.port or 5672, urllib.parse.unquote(u.username or "guest"),
                   urllib.parse.unquote(u.password or "guest"), vhost, retry_interval)


class Link:
    """One AMQP connection that comes back after the broker goes away, logging each failed
    attempt and the reconnection as oslo.messaging does. Not shared between threads."""

    def __init__(self, params: BusParams, log):
        self.params = params
        self.log = log
        self.id = str(uuid.uuid4())
        self.conn = None
        self.failed = False  # the last attempt failed: the next success is a reconnection
        self.ever_connected = False
        self.blocked = False

    def _on_blocked(self, reason) -> None:
        self.blocked = True
        self.log.warning(f"The broker has blocked the connection: {reason}", name=AMQP_LOGGER)

    def _on_unblocked(self) -> None:
        self.blocked = False
        self.log.info("The broker has unblocked the connection", name=AMQP_LOGGER)

    def connected(self) -> bool:
        return self.conn is not None

    def connect_once(self):
        """One attempt; returns the kombu connection or raises (after logging)."""
        import kombu  # only labs with the RabbitMQ bus need it

        p = self.params
        conn = kombu.Connection(hostname=p.host, port=p.port, userid=p.user, password=p.password,
                                virtual_host=p.vhost, connect_timeout=2, heartbeat=0,
                                transport_options={"on_blocked": self._on_blocked,
                                                   "on_unblocked": self._on_unblocked,
                                                   "client_properties": {"connection_name": self.id}})
        try:
            # one attempt (kombu's connect() would wait and retry on its own)
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, interval_max=0,
                                   reraise_as_library_errors=False)
        except Exception as e:
            with contextlib.suppress(Exception):
                conn.release()
            self.unreachable(e)
            raise
        self.conn = conn
        try:
            client_port = conn.connection.sock.getsockname()[1]
        except Exception:
            client_port = "?"
        verb = "Reconnected" if self.failed or self.ever_connected else "Connected"
        self.log.info(f"[{self.id}] {verb} to AMQP server on {p.host}:{p.port} via [amqp] client with port "
                      f"{client_port}.", name=AMQP_LOGGER)
        self.failed = False
        self.ever_connected = True
        self.blocked = False
        return conn

    def unreachable(self, e: BaseException) -> None:
        p = self.params
        reason = str(e) or type(e).__name__
        self.log.error(f"[{self.id}] AMQP server on {p.host}:{p.port} is unreachable: {reason}. Trying again in "
                       f"{p.retry_interval:.0f} seconds.", name=AMQP_LOGGER)
        self.failed = True

    def lost(self, e: BaseException) -> None:
        """The connection broke while in use: log it as the driver does, drop it."""
        self.close()
        self.unreachable(e)

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.release()
        self.conn = None

    def ensure(self, stop: threading.Event | None = None, deadline: float | None = None):
        """Connect, retrying every retry_interval, until connected, `stop` is set or the
        monotonic `deadline` passes (then raises MessagingTimeout)."""
        while self.conn is None:
            try:
                return self.connect_once()
            except Exception:
                pass
            wait = self.params.retry_interval
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MessagingTimeout("Timed out waiting for the AMQP server")
                wait = min(wait, left)
            if stop is not None:
                if stop.wait(wait):
                    raise MessagingTimeout("stopped")
            else:
                time.sleep(wait)
        return self.conn


class Listener(threading.Thread):
    """Consumes one topic queue in a thread of its own (the agent's RPC server), hands
    each message to the main loop through a queue and a pipe it can select() on."""

    def __init__(self, params: BusParams, log, topic: str):
        super().__init__(daemon=True, name=f"listener-{topic}")
        self.link = Link(params, log)
        self.topic = topic
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self._r, self._w = os.pipe()
        os.set_blocking(self._r, False)
        self.stop_event = threading.Event()

    def fileno(self) -> int:
        return self._r

    def messages(self) -> list[dict]:
        with contextlib.suppress(BlockingIOError):
            os.read(self._r, 4096)
        out = []
        while True:
            try:
                out.append(self.inbox.get_nowait())
            except queue.Empty:
                return out

    def _deliver(self, body, message) -> None:
        try:
            self.inbox.put(unwrap(body).get("args", {}).get("payload", {}))
            os.write(self._w, b"!")
        finally:
            message.ack()

    def run(self) -> None:
        import kombu

        exchange = kombu.Exchange(CONTROL_EXCHANGE, type="topic", durable=False)
        q = kombu.Queue(self.topic, exchange, routing_key=self.topic, durable=False, auto_delete=False)
        while not self.stop_event.is_set():
            try:
                conn = self.link.ensure(self.stop_event)
            except MessagingTimeout:
                return
            try:
                with conn.Consumer([q], callbacks=[self._deliver], accept=["json"]):
                    while not self.stop_event.is_set():
                        try:
                            conn.drain_events(timeout=1)
                        except socket.timeout:
                            continue
            except Exception as e:
                if self.stop_event.is_set():
                    return
                self.link.lost(e)
                self.stop_event.wait(self.link.params.retry_interval)


class RpcClient:
    """Calls over the bus (a reply queue of its own), as oslo.messaging's RPCClient.call:
    waits for the reply up to `timeout`, reconnecting meanwhile, else MessagingTimeout."""

    def __init__(self, params: BusParams, log):
        self.link = Link(params, log)
        self.reply_q = f"reply_{uuid.uuid4().hex}"
        self._consumer = None
        self._replies: dict[str, dict] = {}
        self._waiting: str | None = None
        self.late: list = []  # results of calls that had timed out when their reply came

    def _on_reply(self, body, message) -> None:
        msg = unwrap(body)
        if msg.get("_msg_id") == self._waiting:
            self._replies[msg["_msg_id"]] = msg
        else:
            self.late.append(msg.get("result"))
        message.ack()

    def _ready(self, deadline: float):
        import kombu

        if self._consumer is not None and self.link.connected():
            return self.link.conn
        conn = self.link.ensure(deadline=deadline)
        q = kombu.Queue(self.reply_q, exchange=kombu.Exchange(self.reply_q, type="direct", durable=False),
                        routing_key=self.reply_q, durable=False, auto_delete=True)
        self._consumer = conn.Consumer([q], callbacks=[self._on_reply], accept=["json"])
        self._consumer.consume()
        return conn

    def call(self, topic: str, method: str, timeout: float, **args):
        import kombu

        deadline = time.monotonic() + timeout
        msg_id = self._waiting = uuid.uuid4().hex
        sent = False
        while True:
            try:
                conn = self._ready(deadline)
                if not sent:
                    producer = kombu.Producer(conn.default_channel,
                                              exchange=kombu.Exchange(CONTROL_EXCHANGE, type="topic", durable=False))
                    producer.publish(envelope({"method": method, "args": args, "_msg_id": msg_id,
                                               "_reply_q": self.reply_q, "_unique_id": uuid.uuid4().hex}),
                                     routing_key=topic, serializer="json", retry=False)
                    sent = True
                    # a request sent late, after reconnecting, still gets a moment for its reply
                    deadline = max(deadline, time.monotonic() + min(timeout, 1.0))
                while msg_id not in self._replies:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise MessagingTimeout(f"Timed out waiting for a reply to message ID {msg_id}")
                    try:
                        conn.drain_events(timeout=min(left, 0.5))
                    except socket.timeout:
                        continue
                reply = self._replies.pop(msg_id)
                self._waiting = None
                return reply.get("result")
            except MessagingTimeout:
                raise
            except Exception as e:
                self._consumer = None
                self.link.lost(e)
                sent = False  # oslo.messaging re-sends the request on the new connection
                left = deadline - time.monotonic()
                if left <= 0:
                    raise MessagingTimeout(f"Timed out waiting for a reply to message ID {msg_id}") from None
                time.sleep(min(self.link.params.retry_interval, left))


class Publisher:
    """Casts and replies from one connection (the sending side's pool of one)."""

    def __init__(self, params: BusParams, log):
        self.link = Link(params, log)

    def publish(self, routing_key: str, body: dict, exchange: str = CONTROL_EXCHANGE) -> bool:
        """One try (fire and forget); on a failure the message is dropped, and logged."""
        import kombu

        try:
            conn = self.link.conn or self.link.connect_once()
        except Exception:
            self.link.log.error(f"Failed to publish message to topic '{routing_key}': the AMQP server is unreachable",
                                name=AMQP_LOGGER)
            return False
        try:
            ex = kombu.Exchange(exchange, type="topic" if exchange else "direct", durable=False)
            kombu.Producer(conn.default_channel, exchange=ex).publish(body, routing_key=routing_key,
                                                                       serializer="json", retry=False)
            self.poll()
            return True
        except Exception as e:
            self.link.lost(e)
            self.link.log.error(f"Failed to publish message to topic '{routing_key}': {e}", name=AMQP_LOGGER)
            return False

    def poll(self) -> None:
        """Read what the broker sent this connection (blocked/unblocked, a close)."""
        conn = self.link.conn
        if conn is None:
            return
        try:
            conn.drain_events(timeout=0.01)
        except socket.timeout:
            pass
        except Exception as e:
            self.link.lost(e)
