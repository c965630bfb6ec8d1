"""Where a lab keeps everything, and the names it gives what it creates.

Every namespace a lab creates starts with `wnp-<lab>-`, every file lives under its lab
directory: that is how several labs coexist and how `down` finds all that is its own,
even after a crash. Inside, names are Neutron's own (`qdhcp-<network-id>`, `tap`, `qbr`,
`qvb`, `qvo` + 11 characters of the port id), and each node has a root directory laid
out like a real node's file system (`etc/neutron`, `var/lib/neutron/dhcp`, `var/log`)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from whynoip.errors import LabError

LAB_NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")


def labs_root() -> Path:
    return Path(os.environ.get("WHYNOIP_LAB_ROOT", "/run/whynoip/labs"))


def device(prefix: str, port_id: str) -> str:
    """Neutron's device name: a 3-letter prefix and the first 11 characters of the port id."""
    return f"{prefix}{port_id[:11]}"


@dataclass(frozen=True, slots=True)
class LabPaths:
    name: str

    def __post_init__(self):
        if not LAB_NAME_RE.match(self.name):
            raise LabError(f"lab name {self.name!r}: 1-12 lowercase letters/digits, starting with a letter")

    @property
    def prefix(self) -> str:
        return f"wnp-{self.name}-"

    @property
    def dir(self) -> Path:
        return labs_root() / self.name

    @property
    def config(self) -> Path:
        return self.dir / "lab.json"

    def node_root(self, node: str) -> Path:
        return self.dir / "nodes" / node

    def ovs_rundir(self, node: str) -> Path:
        return self.node_root(node) / "run" / "openvswitch"

    def node_ns(self, node: str) -> str:
        return f"{self.prefix}{node}"

    def qdhcp_ns(self, node: str, network_id: str) -> str:
        return f"{self.prefix}{node}-qdhcp-{network_id}"

    def guest_ns(self, guest: str) -> str:
        return f"{self.prefix}g-{guest}"

    @property
    def underlay_ns(self) -> str:
        return f"{self.prefix}underlay"

    def dhcp_dir(self, node: str, network_id: str) -> Path:
        return self.node_root(node) / "var" / "lib" / "neutron" / "dhcp" / network_id

    def neutron_log(self, node: str, service: str) -> Path:
        return self.node_root(node) / "var" / "log" / "neutron" / f"{service}.log"

    def dnsmasq_log(self, node: str, network_id: str) -> Path:
        return self.node_root(node) / "var" / "log" / "neutron" / "dnsmasq" / network_id / "dhcp_dns_log"

    def guest_dir(self, guest: str) -> Path:
        return self.dir / "guests" / guest

    def capture_dir(self, guest: str) -> Path:
        return self.dir / "captures" / guest
