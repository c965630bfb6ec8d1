"""The lab, built from real parts: the provisioning flow works end to end, several labs
coexist, and `down` leaves nothing behind, also after a crash."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from whynoip.errors import LabError
from whynoip.lab.lab import Lab

pytestmark = pytest.mark.lab
WHYNOIP = [sys.executable, "-m", "whynoip.cli"]


def _netns_possible() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    probe = f"wnp-probe{os.getpid()}"
    cp = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if cp.returncode != 0:
        return f"cannot create network namespaces: {cp.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe])
    return None


_why = _netns_possible()
if _why:
    pytest.skip(_why, allow_module_level=True)


def lab_traces(name: str) -> dict:
    """What a lab named `name` has on this machine: namespaces, processes, mounts, files."""
    prefix = f"wnp-{name}-"
    ns = [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                     text=True).stdout.splitlines() if line.startswith(prefix)]
    lab_dir = str(Lab(name).paths.dir)
    procs = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if (lab_dir + "/").encode() in cmd and int(pid) != os.getpid():
            procs.append(int(pid))
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
              if line.split()[1].startswith(lab_dir + "/")]
    return {"namespaces": ns, "processes": procs, "mounts": mounts, "dir": Path(lab_dir).exists()}


NOTHING = {"namespaces": [], "processes": [], "mounts": [], "dir": False}


@pytest.fixture(scope="module")
def default_lab():
    lab = Lab("tlab")
    lab.down()
    lab.up("default")
    yield lab
    lab.down()
    assert lab_traces("tlab") == NOTHING


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    cp = subprocess.run([*WHYNOIP, *args], capture_output=True, text=True, timeout=120)
    if check and cp.returncode != 0:
        raise AssertionError(f"whynoip {' '.join(args)} failed: {cp.stderr}")
    return cp


def test_status_json_has_the_documented_shape(default_lab):
    st = json.loads(cli("lab", "status", "--name", "tlab", "-f", "json").stdout)
    assert {n["name"]: n["role"] for n in st["nodes"]} == {"net1": "network", "cmp1": "compute", "cmp2": "compute"}
    for n in st["nodes"]:
        assert n["namespace"].startswith("wnp-tlab-") and Path(n["ovs_rundir"]).is_absolute()
    (net,) = st["networks"]
    (srv,) = net["dhcp_servers"]
    assert srv["namespace"].endswith(f"qdhcp-{net['id']}")
    assert srv["node"] == "net1" and srv["ip"] == "10.0.0.2"
    for key in ("host_file", "opts_file", "leases_file", "log_file"):
        assert Path(srv[key]).is_absolute() and Path(srv[key]).exists(), key
    assert os.path.exists(f"/proc/{srv['pid']}")
    assert Path(f"/proc/{srv['pid']}/comm").read_text().strip() == "dnsmasq"
    assert [g["name"] for g in st["guests"]] == ["vm1", "vm2"]
    for g in st["guests"]:
        assert g["mac"].startswith("fa:16:3e:") and g["network"] == net["id"]
        assert g["expected_ip"] != "10.0.0.1"  # never the gateway
    assert len({g["expected_ip"] for g in st["guests"]} | {srv["ip"]}) == 3  # never twice


def test_every_guest_gets_its_expected_ip_over_vxlan(default_lab):
    st = default_lab.status()
    server_ip = st["networks"][0]["dhcp_servers"][0]["ip"]
    for g in st["guests"]:
        res = json.loads(cli("lab", "dhcp", g["name"], "--name", "tlab", "-f", "json").stdout)
        assert set(res) >= {"guest", "ok", "ip", "server_id", "seconds"}
        assert res["ok"] is True, res
        assert res["ip"] == g["expected_ip"]
        assert res["server_id"] == server_ip
        assert res["seconds"] < 5
        addr = subprocess.run(["ip", "-n", g["namespace"], "-4", "addr", "show", "eth0"], capture_output=True,
                              text=True).stdout
        assert f"inet {g['expected_ip']}/24" in addr


def test_the_dhcp_exchange_crosses_every_hop(default_lab):
    default_lab.dhcp("vm1")
    caps = sorted(default_lab.paths.capture_dir("vm1").glob("*.pcap"))
    hops = [h["interface"] for h in default_lab.guest_hops("vm1")]
    assert len(caps) == len(hops) == 9
    for cap in caps:
        out = subprocess.run(["tcpdump", "-r", str(cap), "-n", "-v"], capture_output=True, text=True).stdout
        # all four DORA messages on every hop (inside VXLAN on the underlay)
        for kind in ("Discover", "Offer", "Request", "ACK"):
            assert f"DHCP-Message (53), length 1: {kind}" in out, (cap.name, kind)


def test_dnsmasq_runs_with_neutrons_flags_and_files(default_lab):
    srv = default_lab.status()["networks"][0]["dhcp_servers"][0]
    cmdline = Path(f"/proc/{srv['pid']}/cmdline").read_bytes().split(b"\0")
    args = [a.decode() for a in cmdline if a]
    for flag in ("--no-hosts", "--no-resolv", "--bind-dynamic", "--local-service", "--log-dhcp",
                 "--dhcp-option-force=option:mtu,1450", "--dhcp-lease-max=256", "--domain=openstacklocal"):
        assert flag in args
    assert any(a.startswith("--dhcp-range=set:subnet-") and a.endswith(",10.0.0.0,static,255.255.255.0,86400s")
               for a in args)
    host = Path(srv["host_file"]).read_text().splitlines()
    for g in default_lab.status()["guests"]:
        assert f"{g['mac']},host-{g['expected_ip'].replace('.', '-')}.openstacklocal,{g['expected_ip']}" in host
    opts = Path(srv["opts_file"]).read_text()
    assert ",option:router,10.0.0.1" in opts and ",option:dns-server,10.0.0.1" in opts


def test_new_port_travels_from_api_through_agent_to_host_file(default_lab):
    out = cli("lab", "guest", "add", "vm9", "--name", "tlab").stdout
    port_id = out.split()[-1]
    st = default_lab.status()
    g = next(g for g in st["guests"] if g["name"] == "vm9")
    assert g["port_id"] == port_id
    host_file = Path(st["networks"][0]["dhcp_servers"][0]["host_file"])
    deadline = time.monotonic() + 5
    while g["mac"] not in host_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert g["mac"] in host_file.read_text()
    log = (default_lab.paths.neutron_log("net1", "neutron-dhcp-agent")).read_text()
    assert f"Trigger reload_allocations for port {port_id}" in log
    assert default_lab.dhcp("vm9").ip == g["expected_ip"]
    # and a deleted port leaves the host file
    p = json.loads(cli("lab", "port", "create", "--name", "tlab", "-f", "json").stdout)
    time.sleep(0.3)
    assert p["mac"] in host_file.read_text()
    cli("lab", "port", "delete", p["id"], "--name", "tlab")
    deadline = time.monotonic() + 5
    while p["mac"] in host_file.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert p["mac"] not in host_file.read_text()


def test_agent_respawns_a_dead_dnsmasq(default_lab):
    srv = default_lab.status()["networks"][0]["dhcp_servers"][0]
    os.kill(srv["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    new = None
    while time.monotonic() < deadline:
        new = default_lab.status()["networks"][0]["dhcp_servers"][0]["pid"]
        if new and new != srv["pid"] and os.path.exists(f"/proc/{new}"):
            break
        time.sleep(0.1)
    assert new and new != srv["pid"]
    log = default_lab.paths.neutron_log("net1", "neutron-dhcp-agent").read_text()
    net_id = default_lab.status()["networks"][0]["id"]
    assert f"dnsmasq for dhcp with uuid {net_id} not found. The process should not have died" in log
    assert f"Respawning dnsmasq for uuid {net_id}" in log
    default_lab.wait_dhcp_ready()
    assert default_lab.dhcp("vm1", capture=False).ok


def test_ha_topology_runs_two_dhcp_servers_on_two_network_nodes():
    lab = Lab("tha")
    lab.down()
    try:
        lab.up("ha")
        st = lab.status()
        servers = st["networks"][0]["dhcp_servers"]
        assert sorted(s["node"] for s in servers) == ["net1", "net2"]
        assert len({s["ip"] for s in servers}) == 2
        assert all(os.path.exists(f"/proc/{s['pid']}") for s in servers)
        # both read the same host list
        hosts = [Path(s["host_file"]).read_text() for s in servers]
        assert hosts[0] == hosts[1]
        for g in st["guests"]:
            a = lab.dhcp(g["name"], capture=False)
            assert a.ok and a.ip == g["expected_ip"] and a.server_id in {s["ip"] for s in servers}
    finally:
        lab.down()
    assert lab_traces("tha") == NOTHING


def test_two_labs_with_the_same_inner_names_coexist():
    a, b = Lab("tco1"), Lab("tco2")
    try:
        a.up("default")
        b.up("default")
        assert a.dhcp("vm1", capture=False).ok and b.dhcp("vm1", capture=False).ok
        a.down()
        assert lab_traces("tco1") == NOTHING
        assert b.dhcp("vm2", capture=False).ok  # untouched by the other lab's teardown
    finally:
        a.down()
        b.down()
    assert lab_traces("tco2") == NOTHING


def test_down_cleans_up_after_kill_9_during_up():
    name = "tcrash"
    Lab(name).down()
    proc = subprocess.Popen([*WHYNOIP, "lab", "up", "--name", name], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    # kill it mid-build: once OVS runs in some node but before the lab is complete
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not any(
            p.name.startswith("ovs-vswitchd.pid") for p in Lab(name).paths.dir.glob("nodes/*/run/openvswitch/*")):
        time.sleep(0.01)
    proc.kill()
    proc.wait()
    assert lab_traces(name)["namespaces"], "the crash left nothing to clean: the test did not test"
    cli("lab", "down", "--name", name)
    assert lab_traces(name) == NOTHING


def test_twenty_up_down_cycles_leak_nothing():
    name = "tcyc"
    before = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.count("wnp-tcyc-")
    assert before == 0
    for _ in range(20):
        lab = Lab(name)
        lab.up("default")
        lab.down()
        assert lab_traces(name) == NOTHING
    # no mount of this lab's anywhere (its state filesystems are named after it); other labs
    # may mount and unmount meanwhile, so the machine's mount count is no measure
    assert f"wnp-{name}-" not in Path("/proc/self/mounts").read_text()


def test_bad_topology_and_unknown_lab_give_one_clear_line(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("nodes: [{name: x, role: compute}]\nnetworks: []\n")
    cp = cli("lab", "up", "--name", "tbad", "--topology", str(bad), check=False)
    assert cp.returncode == 2 and "Traceback" not in cp.stderr
    assert cp.stderr.strip().count("\n") == 0 and "network" in cp.stderr
    cp = cli("lab", "status", "--name", "tnolab", check=False)
    assert cp.returncode == 2 and "no lab named 'tnolab'" in cp.stderr and "Traceback" not in cp.stderr
    with pytest.raises(LabError):
        Lab("Bad Name")
    assert lab_traces("tbad") == NOTHING
