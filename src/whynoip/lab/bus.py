"""The lab's embedded message bus: a Unix datagram socket per agent host.

Casts are fire and forget, as Neutron's RPC casts to the DHCP agents are: when the agent
is not listening (stopped, dead) the message is simply lost and the agent only catches
up at its next full sync. Used when the lab runs without a broker."""

from __future__ import annotations

import json
import socket
from pathlib import Path


def socket_path(lab_dir: Path, host: str) -> Path:
    return lab_dir / "nodes" / host / "run" / "neutron" / "dhcp-agent.sock"


def cast(lab_dir: Path, host: str, message: dict) -> bool:
    """Send `message` to the DHCP agent on `host`; False when nobody received it."""
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
