"""Collecting many nodes over SSH: a real OpenSSH sshd from Debian, started privately on
loopback with a throwaway host key and client key, stopped by its PID (the system's sshd
is never touched). The lab's nodes are reached through it as an inventory whose
`whynoip_netns`/`whynoip_root` variables say which node each host is."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from whynoip.diagnose import diagnose
from whynoip.evidence.read import read
from whynoip.lab import faults
from whynoip.live import collect as livecollect
from whynoip.live.collect import NodeView, collect_nodes
from whynoip.live.node import SshOptions, SshTarget

WHYNOIP = [sys.executable, "-m", "whynoip.cli"]
SSHD = "/usr/sbin/sshd"
PLAYBOOK = Path(livecollect.__file__).parent / "ansible" / "collect.yml"

class Sshd:
    def __init__(self, d: Path, port: int, proc: subprocess.Popen):
        self.dir, self.port, self.proc = d, port, proc
        self.key = d / "client_key"
        self.known_hosts = d / "known_hosts"

    def args(self) -> list[str]:
        return ["--identity", str(self.key), "--known-hosts", str(self.known_hosts)]

    def options(self) -> SshOptions:
        return SshOptions(identity=[str(self.key)], known_hosts=str(self.known_hosts))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("sshd tests run as root (the collected node's commands need it)")
    if not Path(SSHD).exists():
        pytest.fail("openssh-server is not installed (./install.sh)")
    d = tmp_path_factory.mktemp("sshd")
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"whynoip-test-{name}",
                        "-f", str(d / name)], check=True)
    shutil.copyfile(d / "client_key.pub", d / "authorized_keys")
    port = _free_port()
    (d / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.pid\n"
        f"AuthorizedKeysFile {d}/authorized_keys\nPermitRootLogin prohibit-password\nPasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nMaxStartups 64\nMaxSessions 20\n"
        "Subsystem sftp internal-sftp\nLogLevel ERROR\n")
    host_pub = (d / "host_key.pub").read_text().split()
    (d / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    privsep = Path("/run/sshd")  # sshd's compiled-in privilege separation directory
    made = not privsep.exists()
    privsep.mkdir(mode=0o755, exist_ok=True)
    log = open(d / "sshd.log", "w")
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(d / "sshd_config")], stdout=log, stderr=log,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"sshd did not start: {(d / 'sshd.log').read_text()}")
                time.sleep(0.05)
        yield Sshd(d, port, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if made:
            shutil.rmtree(privsep, ignore_errors=True)


def whynoip(*args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run([*WHYNOIP, *args], capture_output=True, text=True, timeout=timeout)


def test_this_machine_over_ssh_is_collected_as_locally(sshd, tmp_path):
    host = os.uname().nodename.split(".")[0]
    root = tmp_path / "root"  # this machine's commands; its files from a small directory
    (root / "var/log/neutron").mkdir(parents=True)
    (root / "var/log/neutron/neutron-dhcp-agent.log").write_text("2026-01-01 00:00:00.000 1 INFO x [-] started\n")
    r = whynoip("collect", "--no-api", "-o", str(tmp_path / "ssh"), "--ssh", f"root@127.0.0.1:{sshd.port}",
                "--root", str(root), *sshd.args())
    assert r.returncode == 0, r.stderr
    assert f"root@127.0.0.1:{sshd.port}: {host}:" in r.stderr
    r = whynoip("collect", "--no-api", "-q", "-o", str(tmp_path / "local"), "--root", str(root))
    assert r.returncode == 0, r.stderr

    def names(base: Path) -> set[str]:
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file() and "sos_logs" not in p.parts}

    assert names(tmp_path / "ssh" / host) == names(tmp_path / "local" / host)
    assert "var/log/neutron/neutron-dhcp-agent.log" in names(tmp_path / "ssh" / host)
    assert (tmp_path / "ssh" / host / "sos_commands/networking/ip_addr").read_text().startswith("1: lo:")
    log = (tmp_path / "ssh" / host / "sos_logs/whynoip-collect.log").read_text()
    assert "missing" in log and "rpm -qa" in log


def test_unreachable_and_unverifiable_hosts_are_one_line_each_and_the_rest_is_collected(sshd, tmp_path):
    other = tmp_path / "other_known_hosts"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "k")], check=True)
    other.write_text(f"[127.0.0.1]:{sshd.port} " + " ".join((tmp_path / "k.pub").read_text().split()[:2]) + "\n")
    closed = _free_port()
    root = tmp_path / "root"  # a small node: its file system is this directory
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("small\n")
    r = whynoip("collect", "--no-api", "-o", str(tmp_path / "b"), "--ssh", f"root@127.0.0.1:{closed}",
                "--ssh", f"root@127.0.0.1:{sshd.port}", "--root", str(root), *sshd.args(), "--timeout", "5")
    assert r.returncode == 1
    assert f"root@127.0.0.1:{closed}: cannot connect" in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count(f"root@127.0.0.1:{closed}") == 1
    assert "1 of 2 nodes not collected" in r.stderr
    assert len([p for p in (tmp_path / "b").iterdir() if p.is_dir()]) == 1
    assert "was not collected" in (tmp_path / "b" / "README").read_text()
    r = whynoip("collect", "--no-api", "-o", str(tmp_path / "c"), "--ssh", f"root@127.0.0.1:{sshd.port}",
                "--identity", str(sshd.key), "--known-hosts", str(other))
    assert r.returncode == 1 and "host key not verifiable" in r.stderr, r.stderr
    r = whynoip("collect", "--no-api", "-o", str(tmp_path / "d"), "--ssh", f"root@127.0.0.1:{sshd.port}",
                "--identity", str(tmp_path / "k"), "--known-hosts", str(sshd.known_hosts))
    assert r.returncode == 1 and "permission denied" in r.stderr, r.stderr


def test_the_concurrency_limit_holds(sshd, tmp_path, monkeypatch):
    """Three hosts, two at a time: never more than two collections in flight."""
    running, peak = 0, 0
    real = livecollect.NodeCollector.collect

    async def counted(self):
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.2)
            return await real(self)
        finally:
            running -= 1

    monkeypatch.setattr(livecollect.NodeCollector, "collect", counted)
    (tmp_path / "root").mkdir()
    targets = [(SshTarget("127.0.0.1", "root", sshd.port), NodeView(root=str(tmp_path / "root"), hostname=f"node{i}"))
               for i in range(3)]
    (tmp_path / "out").mkdir()
    reports = asyncio.run(collect_nodes(targets, tmp_path / "out", concurrency=2, ssh=sshd.options()))
    assert [r.error for r in reports] == [None] * 3
    assert sorted(r.host for r in reports) == [f"node{i}" for i in range(3)]
    assert peak == 2


@pytest.mark.lab
def test_a_labs_nodes_over_ssh_from_an_inventory_name_the_fault(sshd, lab_factory, tmp_path):
    """An inventory of the lab's three nodes (one sshd; each host's whynoip_netns and
    whynoip_root say which node it is), collected two at a time: the doctor names the
    frozen dnsmasq."""
    lab = lab_factory(prefix="ct")
    faults.inject(lab, "dnsmasq-unresponsive")
    for inst in lab.cp.instances():
        lab.dhcp(inst["name"])
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump({"all": {"hosts": {
        n.name: {"ansible_host": "127.0.0.1", "ansible_port": sshd.port, "ansible_user": "root",
                 "whynoip_netns": lab.paths.node_ns(n.name), "whynoip_root": str(lab.paths.node_root(n.name))}
        for n in lab.topology.nodes}}}))
    out = tmp_path / "bundle.tar.gz"
    r = whynoip("collect", "--no-api", "--inventory", str(inv), "--concurrency", "2", "-o", str(out), *sshd.args())
    assert r.returncode == 0, r.stderr
    d = diagnose(list(read([str(out)])))
    assert sorted(d.summary["hosts"]) == sorted(n.name for n in lab.topology.nodes)
    top = [f.id for f in d.findings if f.root_cause and f.severity != "info"]
    assert top[:1] == ["dnsmasq-unresponsive"], top

    # the same fleet through the shipped playbook: collect runs on each host, the bundles come back
    playbook = Path(sys.executable).parent / "ansible-playbook"
    assert playbook.exists(), "ansible-core is a test dependency (./install.sh)"
    ini = tmp_path / "hosts.ini"
    ini.write_text("".join(
        f"{n.name} ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user=root "
        f"ansible_ssh_private_key_file={sshd.key} "
        f"ansible_ssh_common_args='-o UserKnownHostsFile={sshd.known_hosts} -o StrictHostKeyChecking=yes' "
        f"ansible_python_interpreter=/usr/bin/python3 ansible_remote_tmp={tmp_path}/ansible-remote "
        f"whynoip_bin={Path(sys.executable).parent / 'whynoip'} whynoip_remote_dir={tmp_path} "
        f"whynoip_netns={lab.paths.node_ns(n.name)} whynoip_root={lab.paths.node_root(n.name)}\n"
        for n in lab.topology.nodes))
    # everything ansible keeps for itself goes to the test's directory; no lingering ssh master
    env = {**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-local"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_CONFIG": str(tmp_path / "none.cfg"), "ANSIBLE_FORKS": "3", "ANSIBLE_PIPELINING": "True",
           "ANSIBLE_SSH_ARGS": "-o ControlMaster=no",
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path / "ansible-cp"), "ANSIBLE_HOME": str(tmp_path / "ansible-home")}
    bundles = tmp_path / "bundles"
    r = subprocess.run([str(playbook), "-i", str(ini), str(PLAYBOOK), "-e", f"whynoip_bundles={bundles}"],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert sorted(p.name for p in bundles.iterdir()) == sorted(f"whynoip-collect-{n.name}.tar.gz"
                                                               for n in lab.topology.nodes)
    assert not list(tmp_path.glob("whynoip-collect-*.tar.gz"))  # removed from the nodes once fetched
    d = diagnose(list(read([str(p) for p in sorted(bundles.iterdir())])))
    top = [f.id for f in d.findings if f.root_cause and f.severity != "info"]
    assert top[:1] == ["dnsmasq-unresponsive"], top


def test_the_fleet_playbook_is_valid(tmp_path):
    """The shipped playbook parses, runs collect then fetches on every host, and passes
    ansible-playbook's syntax check (it is run for real on a lab's nodes above)."""
    plays = yaml.safe_load(PLAYBOOK.read_text())
    assert isinstance(plays, list) and plays[0]["hosts"]
    tasks = plays[0]["tasks"]
    modules = [next(k for k in t if k.startswith("ansible.builtin.")) for t in tasks]
    assert modules == ["ansible.builtin.command", "ansible.builtin.fetch", "ansible.builtin.file"]
    assert "'collect'" in tasks[0]["ansible.builtin.command"]["argv"]
    playbook = Path(sys.executable).parent / "ansible-playbook"
    inv = tmp_path / "hosts"
    inv.write_text("node1 ansible_host=127.0.0.1\n")
    r = subprocess.run([str(playbook), "-i", str(inv), "--syntax-check", str(PLAYBOOK)], capture_output=True,
                       text=True, timeout=120, env={**os.environ, "ANSIBLE_LOCAL_TEMP": str(tmp_path / "t"),
                                                    "ANSIBLE_HOME": str(tmp_path / "h")})
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.lab
def test_trace_over_ssh_across_nodes_finds_where_the_reply_is_dropped(sshd, lab_factory, tmp_path):
    """Real-node tracing through SSH: the compute node and the network node (each a lab
    node reached through the private sshd) give their own hops; tcpdump runs on all of
    them at once while the guest tries; the OFFER crosses the underlay and stops at the
    port's tap; the doctor, with both nodes' state, names the firewall."""
    lab = lab_factory(prefix="ct")
    faults.inject(lab, "security-group-drops-dhcp", variant="drop-rule")
    inst = lab.cp.instance("vm1")
    nodes = [inst["host"], lab.topology.network_nodes[0].name]
    inv = tmp_path / "hosts.ini"
    inv.write_text("".join(f"{n} ansible_host=127.0.0.1 ansible_port={sshd.port} ansible_user=root "
                           f"whynoip_netns={lab.paths.node_ns(n)} whynoip_root={lab.paths.node_root(n)} "
                           f"whynoip_hostname={n}\n" for n in nodes))
    p = subprocess.Popen([*WHYNOIP, "trace", "-f", "json", "--port", inst["port_id"], "--inventory", str(inv),
                          "--wait", "8", "-o", str(tmp_path / "t"), *sshd.args()],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = p.stderr.readline()
    assert line.startswith("capturing on 8 hops"), line + p.stderr.read()  # said once tcpdump listens on each
    lab.dhcp("vm1", capture=False)
    out, err = p.communicate(timeout=120)
    import json
    t = json.loads(out)
    hosts = {h["host"] for h in t["hops"]}
    assert hosts == set(nodes), t["hops"]
    roles = {h["role"] for h in t["hops"]}
    assert {"tap", "qbr", "qvb", "qvo", "underlay-compute", "underlay-server", "dhcp-tap", "dhcp-ns"} <= roles, roles
    (b,) = t["breaks"]
    assert b["what"] == "reply" and b["after"].endswith("qbr" + inst["port_id"][:11]), b
    assert b["before"].endswith("tap" + inst["port_id"][:11]), b
    top = [f["id"] for f in t["diagnosis"]["findings"] if f["root_cause"] and f["severity"] != "info"]
    assert top[:1] == ["security-group-drops-dhcp"], top
