"""Guests: a network namespace whose eth0 carries the port's MAC, plugged the way Nova
and os-vif plug a VM with the hybrid firewall (tap -> qbr -> qvb/qvo -> br-int), and a
real DHCP client (udhcpc or dhclient) run with a bounded time. What the client prints is
appended to the guest's console log, as `nova console-log` would show it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from whynoip.lab import sh
from whynoip.lab.paths import device

UDHCPC_SCRIPT = """#!/bin/sh
# udhcpc event script: apply the lease and record what was offered.
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$mtu" ] && ip link set "$interface" mtu "$mtu"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    { echo "ip=$ip"; echo "mask=$mask"; echo "server_id=$serverid"; echo "router=$router"; echo "dns=$dns";
      echo "mtu=$mtu"; echo "lease=$lease"; echo "domain=$domain"; } > "{lease_env}" ;;
  deconfig) ip addr flush dev "$interface" ;;
esac
exit 0
"""

DHCLIENT_SCRIPT = """#!/bin/sh
# dhclient script: apply the lease and record what was offered; never touches resolv.conf.
case "$reason" in
  BOUND|RENEW|REBIND|REBOOT)
    ip addr flush dev "$interface"
    ip addr add "$new_ip_address/$new_subnet_mask" dev "$interface"
    [ -n "$new_interface_mtu" ] && ip link set "$interface" mtu "$new_interface_mtu"
    { echo "ip=$new_ip_address"; echo "mask=$new_subnet_mask"; echo "server_id=$new_dhcp_server_identifier";
      echo "router=$new_routers"; echo "dns=$new_domain_name_servers"; echo "mtu=$new_interface_mtu";
      echo "lease=$new_dhcp_lease_time"; echo "domain=$new_domain_name"; } > "{lease_env}" ;;
  EXPIRE|FAIL|RELEASE|STOP|PREINIT) ip addr flush dev "$interface" 2>/dev/null ;;
esac
exit 0
"""

DHCLIENT_CONF = """option rfc3442-classless-static-routes code 121 = array of unsigned integer 8;
timeout 4;
retry 1;
initial-interval 1;
request subnet-mask, broadcast-address, routers, domain-name, domain-name-servers, host-name, interface-mtu,
        rfc3442-classless-static-routes;
"""


@dataclass(slots=True)
class Attempt:
    guest: str
    ok: bool
    ip: str | None
    server_id: str | None
    seconds: float
    offered: dict[str, str]


def plug(guest_ns: str, node_ns: str, port_id: str, mac: str, mtu: int) -> None:
    """os-vif's hybrid plug: guest eth0 <-> tap in qbr; qvb in qbr <-> qvo (added to br-int by the caller)."""
    tap, qbr, qvb, qvo = (device(p, port_id) for p in ("tap", "qbr", "qvb", "qvo"))
    sh.run(["ip", "netns", "add", guest_ns])
    sh.ip_batch(["link set lo up"], guest_ns)
    sh.run(["ip", "link", "add", "eth0", "netns", guest_ns, "address", mac, "mtu", str(mtu), "type", "veth",
            "peer", "name", tap, "netns", node_ns, "mtu", str(mtu)])
    sh.ip_batch([
        f"link add {qbr} type bridge",
        f"link add {qvb} mtu {mtu} type veth peer name {qvo} mtu {mtu}",
        f"link set {qbr} up",
        f"link set {tap} master {qbr} up",
        f"link set {qvb} master {qbr} up",
        f"link set {qvo} up",
    ], node_ns)
    # Userspace OVS does not complete partial checksums coming from veths.
    for ns, dev in ((node_ns, qvb), (node_ns, qvo), (guest_ns, "eth0")):
        sh.run(["ethtool", "-K", dev, "tx", "off"], ns, check=False)
    sh.ip_batch(["link set eth0 up"], guest_ns)


def write_client_files(guest_dir: Path) -> None:
    guest_dir.mkdir(parents=True, exist_ok=True)
    # dhclient runs its script with a clean environment: the lease file's path is written in
    lease_env = str(guest_dir / "lease.env")
    for name, text in (("udhcpc.script", UDHCPC_SCRIPT), ("dhclient.script", DHCLIENT_SCRIPT),
                       ("dhclient.conf", DHCLIENT_CONF)):
        p = guest_dir / name
        p.write_text(text.replace("{lease_env}", lease_env))
        p.chmod(0o755)


def client_command(client: str, guest_dir: Path) -> list[str]:
    if client == "dhclient":
        return ["dhclient", "-1", "-v", "-d", "-cf", str(guest_dir / "dhclient.conf"),
                "-sf", str(guest_dir / "dhclient.script"), "-lf", str(guest_dir / "dhclient.leases"),
                "-pf", str(guest_dir / "dhclient.pid"), "eth0"]
    return ["udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1", "-A", "1", "-x", "hostname:" + guest_dir.name,
            "-O", "mtu", "-O", "staticroutes", "-s", str(guest_dir / "udhcpc.script")]


def run_client(name: str, guest_ns: str, client: str, guest_dir: Path, timeout: float = 15) -> Attempt:
    lease_env = guest_dir / "lease.env"
    lease_env.unlink(missing_ok=True)
    (guest_dir / "dhclient.leases").unlink(missing_ok=True)
    sh.run(["ip", "-n", guest_ns, "addr", "flush", "dev", "eth0"], check=False)
    cmd = ["ip", "netns", "exec", guest_ns, *client_command(client, guest_dir)]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    output = _read_until_done(proc, timeout)
    seconds = time.monotonic() - start
    if proc.returncode is None:  # dhclient stays in the foreground once bound (-d): stop it
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
    with open(guest_dir / "console.log", "a") as f:
        f.write(output if output.endswith("\n") else output + "\n")
    offered = {}
    if lease_env.exists():
        for line in lease_env.read_text().splitlines():
            k, _, v = line.partition("=")
            offered[k] = v
    ip = offered.get("ip") or None
    return Attempt(name, bool(ip), ip, offered.get("server_id") or None,
                   round(seconds, 3), offered)


def _read_until_done(proc: subprocess.Popen, timeout: float) -> str:
    """The client's output until it exits, binds (dhclient's "bound to"), or times out."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = proc.stdout.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return buf.decode(errors="replace") + f"\nkilled after {timeout:.0f}s\n"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            if not chunk:
                proc.wait()
                return buf.decode(errors="replace")
            buf += chunk
            if b"bound to " in buf and buf.endswith(b"\n"):
                return buf.decode(errors="replace")


class Capture:
    """tcpdump on several hops at once; `--immediate-mode -U` or SIGINT loses the buffer."""

    FILTER = "udp port 67 or udp port 68 or udp port 4789"

    def __init__(self, hops: list[tuple[str, str, Path]]):
        self.hops = hops  # (namespace, interface, pcap path)
        self.procs: list[tuple[subprocess.Popen, Path]] = []

    def start(self, timeout: float = 5) -> None:
        for ns, dev, path in self.hops:
            path.parent.mkdir(parents=True, exist_ok=True)
            err = path.with_suffix(".err")
            with open(err, "w") as e:
                p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", dev, "--immediate-mode", "-U", "-n",
                                      "-s", "0", "-w", str(path), self.FILTER],
                                     stdout=subprocess.DEVNULL, stderr=e, start_new_session=True)
            self.procs.append((p, err))
        deadline = time.monotonic() + timeout
        pending = list(self.procs)
        while pending and time.monotonic() < deadline:
            pending = [(p, err) for p, err in pending
                       if p.poll() is None and "listening on" not in err.read_text(errors="replace")]
            time.sleep(0.01)

    def stop(self) -> None:
        time.sleep(0.15)  # let the last replies cross the hops
        for p, _ in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for p, err in self.procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            err.unlink(missing_ok=True)
