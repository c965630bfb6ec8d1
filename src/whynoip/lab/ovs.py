"""A private userspace Open vSwitch per emulated node, and Neutron's bridges on it.

Each node runs its own ovsdb-server and ovs-vswitchd inside the node's network namespace
with `OVS_RUNDIR` pointing into the node's root, so instances never meet (they would
collide on `br-int.mgmt` otherwise). Bridges use the netdev (userspace) datapath, since
the kernel module is not needed. br-int and br-tun carry the flow tables Neutron's OVS
agent installs (dead-VLAN drop, NORMAL; tunnel tables 0/2/4/10/20/22 with learning)."""

from __future__ import annotations

import os
import time
from pathlib import Path

from whynoip.errors import LabError
from whynoip.lab import sh

SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
DEAD_VLAN = 4095


class NodeOvs:
    def __init__(self, ns: str, root: Path):
        self.ns = ns
        self.root = root
        self.rundir = root / "run" / "openvswitch"
        self.logdir = root / "var" / "log" / "openvswitch"
        self.db = root / "etc" / "openvswitch" / "conf.db"
        self.env = {"OVS_RUNDIR": str(self.rundir), "OVS_LOGDIR": str(self.logdir),
                    "OVS_DBDIR": str(self.db.parent), "OVS_SYSCONFDIR": str(root / "etc")}

    # --- daemons ---------------------------------------------------------------------------

    def start(self) -> None:
        for d in (self.rundir, self.logdir, self.db.parent):
            d.mkdir(parents=True, exist_ok=True)
        if not self.db.exists():
            sh.run(["ovsdb-tool", "create", str(self.db), SCHEMA])
        sh.run(["ovsdb-server", str(self.db), f"--remote=punix:{self.rundir}/db.sock",
                f"--pidfile={self.rundir}/ovsdb-server.pid", f"--log-file={self.logdir}/ovsdb-server.log",
                "--detach", "--no-chdir"], self.ns, env=self.env)
        self.vsctl("--no-wait", "init")
        self.start_vswitchd()

    def start_vswitchd(self) -> None:
        sh.run(["ovs-vswitchd", f"--pidfile={self.rundir}/ovs-vswitchd.pid",
                f"--log-file={self.logdir}/ovs-vswitchd.log", "--detach", "--no-chdir", "-vconsole:off"],
               self.ns, env=self.env)

    def pids(self) -> dict[str, int | None]:
        return {d: sh.read_pid(str(self.rundir / f"{d}.pid")) for d in ("ovsdb-server", "ovs-vswitchd")}

    def stop_vswitchd(self) -> None:
        pid = self.pids()["ovs-vswitchd"]
        if pid and sh.pid_alive(pid):
            os.kill(pid, 15)
            deadline = time.monotonic() + 5
            while sh.pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.02)

    # --- commands ------------------------------------------------------------------------

    def vsctl(self, *args: str, check: bool = True) -> str:
        return sh.out(["ovs-vsctl", "--timeout=10", *args], self.ns, env=self.env, check=check)

    def ofctl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return sh.out(["ovs-ofctl", *args], self.ns, env=self.env, input=input, check=check)

    def appctl(self, *args: str, check: bool = True) -> str:
        return sh.out(["ovs-appctl", *args], self.ns, env=self.env, check=check)

    def add_flows(self, bridge: str, flows: list[str]) -> None:
        self.ofctl("add-flows", bridge, "-", input="\n".join(flows) + "\n")

    def replace_flows(self, bridge: str, flows: list[str]) -> None:
        # `replace-flows` misbehaves with learn() actions on userspace bridges: delete, then add.
        self.ofctl("del-flows", bridge)
        self.add_flows(bridge, flows)


def br_int_flows() -> list[str]:
    """Neutron's br-int base flows: drop the dead VLAN, then everything to NORMAL."""
    return [
        f"table=0,priority=65535,vlan_tci=0x{DEAD_VLAN:04x}/0x1fff,actions=drop",
        "table=0,priority=0,actions=resubmit(,60)",
        "table=23,priority=0,actions=drop",
        "table=24,priority=0,actions=drop",
        "table=60,priority=3,actions=NORMAL",
    ]


def br_tun_flows(tunnel_ports: list[str], networks: list[tuple[int, int]]) -> list[str]:
    """Neutron's br-tun tables for `networks` [(segmentation_id, local_vlan)] and the
    VXLAN ports to the other nodes."""
    flows = [
        "table=0,priority=1,in_port=patch-int,actions=resubmit(,2)",
        *(f"table=0,priority=1,in_port={p},actions=resubmit(,4)" for p in tunnel_ports),
        "table=0,priority=0,actions=drop",
        "table=2,priority=0,dl_dst=00:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,20)",
        "table=2,priority=0,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=resubmit(,22)",
        "table=3,priority=0,actions=drop",
        "table=4,priority=0,actions=drop",
        "table=6,priority=0,actions=drop",
        "table=10,priority=1,actions=learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],"
        "NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],"
        "output:OXM_OF_IN_PORT[]),output:patch-int",
        "table=20,priority=0,actions=resubmit(,22)",
        "table=22,priority=0,actions=drop",
    ]
    for seg, vlan in networks:
        flows.append(f"table=4,priority=1,tun_id=0x{seg:x},actions=mod_vlan_vid:{vlan},resubmit(,10)")
        if tunnel_ports:
            outs = ",".join(f"output:{p}" for p in tunnel_ports)
            flows.append(f"table=22,priority=1,dl_vlan={vlan},actions=strip_vlan,load:0x{seg:x}->NXM_NX_TUN_ID[],{outs}")
    return flows


def tunnel_port_name(remote_ip: str) -> str:
    """Neutron names a tunnel port after the remote IP in hex: vxlan-ac100002."""
    return "vxlan-" + "".join(f"{int(o):02x}" for o in remote_ip.split("."))


def wait_for(pred, timeout: float, what: str, interval: float = 0.02) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise LabError(f"timed out waiting for {what}")
        time.sleep(interval)
