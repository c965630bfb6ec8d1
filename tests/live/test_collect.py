"""`whynoip collect`: a node's evidence gathered live, laid out as a sosreport the doctor
reads, secrets masked, every command bounded, missing tools recorded. A lab node
collected as a real node (`--netns --root --ovs-rundir`) yields the same diagnosis as the
lab's own bundle."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from whynoip.diagnose import diagnose
from whynoip.evidence.read import read
from whynoip.lab import collect as lab_collect, faults
from whynoip.live.collect import (NodeView, Rewriter, _keep_dpkg, _keep_mounts, collect, output_kind,
                                  read_inventory)
from whynoip.live.node import LocalNode, SshTarget

WHYNOIP = [sys.executable, "-m", "whynoip.cli"]

def whynoip(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*WHYNOIP, *args], capture_output=True, text=True, timeout=120, **kw)


def roots(paths) -> list[str]:
    d = diagnose(list(read([str(p) for p in paths])))
    return [f.id for f in d.findings if f.root_cause and f.severity != "info"]


def collect_lab_nodes(lab, out: Path, cli: bool = True) -> None:
    """Each node of the lab collected as the real node it stands for: by the CLI, one
    command per node, or (cli=False) by the library, all nodes at once."""
    views = [NodeView(lab.paths.node_ns(n.name), str(lab.paths.node_root(n.name)), str(lab.paths.ovs_rundir(n.name)))
             for n in lab.topology.nodes]
    if not cli:
        res = collect([(LocalNode(), v) for v in views], str(out), api=False)
        assert not res.failed, [n.error for n in res.failed]
        return
    for v in views:
        r = whynoip("collect", "-q", "--no-api", "-o", str(out), "--netns", v.netns, "--root", v.root,
                    "--ovs-rundir", v.ovs_rundir)
        assert r.returncode == 0, r.stderr
        assert r.stdout.strip() == str(out)


# --- without a lab ------------------------------------------------------------------------------

def test_names_are_shown_as_the_node_knows_them():
    rw = Rewriter.for_view(NodeView(netns="wnp-x-net1", root="/run/labs/x/nodes/net1"))
    text = ("dnsmasq --pid-file=/run/labs/x/nodes/net1/var/lib/neutron/dhcp/n1/pid\n"
            "wnp-x-net1-qdhcp-n1 (id: 1)\n"
            "link/ether aa link-netns wnp-x-net1 promiscuity 0\n"
            "link-netns wnp-x-net10 stays; /run/labs/x/nodes/net10/x stays\n"
            "root /run/labs/x/nodes/net1\n")
    assert rw.text(text) == ("dnsmasq --pid-file=/var/lib/neutron/dhcp/n1/pid\n"
                             "qdhcp-n1 (id: 1)\n"
                             "link/ether aa link-netnsid 0 promiscuity 0\n"
                             "link-netns wnp-x-net10 stays; /run/labs/x/nodes/net10/x stays\n"
                             "root /\n")
    assert Rewriter.for_view(NodeView()).text(text) == text


def test_df_shows_only_the_nodes_mounts():
    view = NodeView(netns="wnp-x-net1", root="/run/labs/x/nodes/net1")
    text = ("Filesystem 1K-blocks Used Available Use% Mounted on\n"
            "/dev/vda 100 50 50 50% /\n"
            "tmpfs 10 10 0 100% /run/labs/x/nodes/net1/var/lib/neutron\n"
            "tmpfs 10 10 0 100% /run/labs/y/nodes/net1/var/lib/neutron\n"
            "nsfs 0 0 0 - /run/netns/wnp-x-net1-qdhcp-n1\n"
            "nsfs 0 0 0 - /run/netns/wnp-y-net1-qdhcp-n1\n"
            "/dev/vdb 100 1 99 1% /srv\n")
    out = _keep_mounts(text, view, {"wnp-x-net1-qdhcp-n1": "qdhcp-n1"}).splitlines()
    assert [line.split()[-1] for line in out[1:]] == [
        "/", "/run/labs/x/nodes/net1/var/lib/neutron", "/run/netns/wnp-x-net1-qdhcp-n1", "/srv"]


def test_dpkg_keeps_its_header_and_the_packages_that_matter():
    text = ("Desired=Unknown/Install/Remove/Purge/Hold\n"
            "||/ Name           Version      Architecture Description\n"
            "+++-==============-============-============-=================\n"
            "ii  bash           5.2.15-2     amd64        GNU Bourne Again SHell\n"
            "ii  dnsmasq-base   2.90-4       amd64        Small caching DNS proxy and DHCP/TFTP server\n"
            "ii  openvswitch-switch 3.1.0-2  amd64        Open vSwitch switch implementations\n")
    out = _keep_dpkg(text)
    assert "bash" not in out and "dnsmasq-base" in out and "openvswitch-switch" in out
    assert out.startswith("Desired=")


def test_inventories_ini_yaml_and_plain(tmp_path):
    ini = tmp_path / "hosts.ini"
    ini.write_text("[network]\nnet1 ansible_host=10.0.0.11 ansible_user=ops ansible_port=2222\n"
                   "# a comment\n[compute]\ncmp1 ansible_host=10.0.0.21\nroot@cmp2:2200\n"
                   "[compute:vars]\nansible_user=ignored\n")
    got = [(t.name, t.host, t.user, t.port) for t in read_inventory(str(ini))]
    assert got == [("net1", "10.0.0.11", "ops", 2222), ("cmp1", "10.0.0.21", None, None),
                   ("root@cmp2:2200", "cmp2", "root", 2200)]
    yml = tmp_path / "hosts.yml"
    yml.write_text("all:\n  children:\n    network:\n      hosts:\n        net1:\n          ansible_host: 10.0.0.11\n"
                   "    compute:\n      hosts:\n        cmp1:\n        cmp2: {ansible_port: 2200}\n")
    got = [(t.name, t.host, t.port) for t in read_inventory(str(yml))]
    assert got == [("net1", "10.0.0.11", None), ("cmp1", "cmp1", None), ("cmp2", "cmp2", 2200)]
    empty = tmp_path / "empty"
    empty.write_text("# nothing\n")
    r = whynoip("collect", "--inventory", str(empty))
    assert r.returncode == 2 and r.stderr.strip() == f"whynoip: --inventory {empty}: no hosts in it"


def test_targets_and_outputs():
    assert (SshTarget.parse("root@10.0.0.5:2222").label, SshTarget.parse("cmp1").label) == ("root@10.0.0.5:2222",
                                                                                            "cmp1")
    assert SshTarget.parse("[::1]:22").host == "::1"
    assert [output_kind(x) for x in (None, "a.tar.gz", "a.tgz", "dir", "-")] == ["tar", "tar", "tar", "dir", "stdout"]


def test_a_hung_command_is_cut_and_a_missing_one_is_recorded():
    node = LocalNode()
    start = time.monotonic()
    r = asyncio.run(node.run(["sh", "-c", "echo partial; exec sleep 30"], timeout=0.5))
    assert r.timed_out and r.out == b"partial\n" and time.monotonic() - start < 5
    assert asyncio.run(node.run(["/nonexistent/tool"])).missing
    assert asyncio.run(node.which(["sh", "no-such-tool-here"])) == {"sh"}


def test_this_machine_collected_into_a_tarball_the_doctor_reads(tmp_path):
    """This machine as a node (its files read from a small directory, as with sosreport's
    --sysroot): a .tar.gz with one sosreport-like tree, every command of it in the collect
    log, tools this machine lacks (rpm on Debian) recorded as missing."""
    out = tmp_path / "bundle.tar.gz"
    root = tmp_path / "root"  # this machine's commands, and no more files than the test needs
    (root / "etc").mkdir(parents=True)
    r = whynoip("collect", "--no-api", "-o", str(out), "--root", str(root))
    assert r.returncode == 0, r.stderr
    with tarfile.open(out) as tf:
        names = tf.getnames()
    host = os.uname().nodename.split(".")[0]
    top = "bundle"
    for f in ("README", f"{host}/sos_commands/networking/ip_addr", f"{host}/sos_commands/process/ps_auxwwwm",
              f"{host}/sos_commands/firewall_tables/iptables-save_-c", f"{host}/sos_commands/filesys/df_-al",
              f"{host}/sos_commands/date/date_--utc", f"{host}/sos_commands/host/hostname",
              f"{host}/sos_logs/whynoip-collect.log"):
        assert f"{top}/{f}" in names, f
    with tarfile.open(out) as tf:
        log = tf.extractfile(f"{top}/{host}/sos_logs/whynoip-collect.log").read().decode()
    assert "missing" in log and "rpm -qa" in log  # Debian: no rpm; recorded, not fatal
    facts = whynoip("facts", "-f", "json", str(out))
    assert facts.returncode == 0, facts.stderr
    assert f'"host":"{host}"' in facts.stdout.replace(" ", "")


def test_secrets_planted_on_a_node_never_reach_the_bundle(tmp_path):
    """Passwords, transport_url and connection credentials, tokens and a private key in the
    node's configuration, logs and process list: none is in the bundle, the keys around
    them are."""
    root = tmp_path / "node"
    planted = {
        "etc/neutron/neutron.conf": "[DEFAULT]\ntransport_url = rabbit://openstack:RabbitPw1@10.0.0.5:5672/\n"
                                    "[database]\nconnection = mysql+pymysql://neutron:DbPw22@db/neutron\n"
                                    "[keystone_authtoken]\npassword = KeystonePw3\nmemcache_secret_key = MemKey44\n",
        "etc/neutron/metadata_agent.ini": "[DEFAULT]\nmetadata_proxy_shared_secret = MetaSecret5\n",
        "etc/neutron/ssl/agent.key": "-----BEGIN RSA PRIVATE KEY-----\nPrivKeyBody6\n-----END RSA PRIVATE KEY-----\n",
        "etc/nova/nova.conf": "[neutron]\npassword = NovaNeutronPw7\n[DEFAULT]\ntransport_url=rabbit://nova:NovaRabbit8@r1:5672,nova:NovaRabbit9@r2:5672/\n",
        "var/log/neutron/neutron-server.log": "2026-01-01 00:00:00.000 1 DEBUG x [-] REQ: curl -H 'X-Auth-Token: gAAAAToken10'\n"
                                              "2026-01-01 00:00:01.000 1 INFO x [-] env OS_PASSWORD=EnvPw11 export OS_TOKEN=EnvTok12\n",
        "var/log/syslog": "Jan  1 00:00:00 node sudo: root : COMMAND=/usr/bin/openstack --os-password FlagPw13 server list\n",
        "etc/hostname": "secretnode\n",
    }
    for rel, text in planted.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    # a process of the node whose command line carries a password, as ps shows it
    proc = subprocess.Popen(["sh", "-c", "sleep 30", f"{root}/usr/bin/agent", "--os-password", "PsPw14",
                             "OS_PASSWORD=PsEnv15"], start_new_session=True)
    try:
        out = tmp_path / "bundle"
        res = collect([(LocalNode(), NodeView(root=str(root)))], str(out), api=False)
    finally:
        proc.kill()
        proc.wait()
    assert not res.failed
    blob = b"".join(p.read_bytes() for p in out.rglob("*") if p.is_file())
    for secret in ("RabbitPw1", "DbPw22", "KeystonePw3", "MemKey44", "MetaSecret5", "PrivKeyBody6", "NovaNeutronPw7",
                   "NovaRabbit8", "NovaRabbit9", "gAAAAToken10", "EnvPw11", "EnvTok12", "FlagPw13", "PsPw14", "PsEnv15"):
        assert secret.encode() not in blob, secret
    node = out / "secretnode"
    conf = (node / "etc/neutron/neutron.conf").read_text()
    assert "transport_url = " in conf and "connection = mysql+pymysql://neutron:" in conf and "@db/neutron" in conf
    ps = (node / "sos_commands/process/ps_auxwwwm").read_text()
    assert "/usr/bin/agent --os-password" in ps, ps  # the node's own process, its path as the node sees it
    assert str(root) not in ps
    assert (node / "var/log/syslog").read_text().count("\n") == 1


# --- on a lab -------------------------------------------------------------------------------------

def _break_and_exercise(lab, fault: str, variant: str | None = None) -> None:
    faults.inject(lab, fault, variant=variant)
    for inst in lab.cp.instances():
        lab.dhcp(inst["name"])


@pytest.mark.lab
@pytest.mark.parametrize("fault,variant", [("dnsmasq-unresponsive", None), ("port-dead-vlan", None)])
def test_a_lab_node_collected_as_a_real_node_names_the_fault(lab_factory, tmp_path, fault, variant):
    """Build, break, let the guests try, collect every node from inside its namespace as a
    real node would be collected: the doctor names the fault first, as it does on the lab's
    own bundle."""
    lab = lab_factory(prefix="ct")
    _break_and_exercise(lab, fault, variant)
    live = tmp_path / "live"
    collect_lab_nodes(lab, live, cli=fault == "dnsmasq-unresponsive")
    assert sorted(p.name for p in live.iterdir()) == sorted(["README"] + [n.name for n in lab.topology.nodes])
    net = live / lab.topology.network_nodes[0].name
    # the node's own names: qdhcp-<net>, /var/lib/neutron, no trace of the lab's
    listing = (net / "sos_commands/networking/ip_netns").read_text()
    assert listing.startswith("qdhcp-") and lab.paths.prefix not in listing
    assert any(p.name.startswith("ip_netns_exec_qdhcp-") for p in (net / "sos_commands/networking").iterdir())
    blob = "".join(p.read_text(errors="replace") for p in live.rglob("*") if p.is_file())
    assert str(lab.paths.dir) not in blob and lab.paths.prefix + "net1-qdhcp" not in blob
    assert list(net.glob("var/lib/neutron/dhcp/*/host")) and list(net.glob("var/log/neutron/dnsmasq/*/dhcp_dns_log"))
    live_roots = roots(sorted(live.iterdir()))
    lab_bundle = tmp_path / "lab"
    lab_collect.collect(lab, lab_bundle)
    assert live_roots[:1] == [fault], live_roots
    assert roots(sorted(lab_bundle.iterdir()))[:1] == [fault]


@pytest.mark.lab
def test_a_firewall_fault_is_named_from_the_collection_with_the_traces_captures(lab_factory, tmp_path):
    """security-group-drops-dhcp lives in iptables counters and in where the reply stops:
    collect (the nodes' state) and trace (the captures) into one directory, and the doctor
    names it, as on the lab's bundle."""
    lab = lab_factory(prefix="ct")
    faults.inject(lab, "security-group-drops-dhcp", variant="drop-rule")
    guest = lab.cp.instances()[0]["name"]
    out = tmp_path / "evidence"
    r = whynoip("trace", "--guest", guest, "--name", lab.name, "--no-collect", "-o", str(out), "-f", "json")
    assert r.returncode == 0, r.stderr
    collect_lab_nodes(lab, out, cli=False)
    assert roots(sorted(out.iterdir()))[:1] == ["security-group-drops-dhcp"]


@pytest.mark.lab
def test_bad_options_are_one_clear_line(lab_factory, tmp_path):
    r = whynoip("collect", "-o", str(tmp_path / "x"), "--netns", "wnp-ct-no-such-ns")
    assert r.returncode == 1
    assert "--netns wnp-ct-no-such-ns: no such network namespace on local" in r.stderr
    assert "Traceback" not in r.stderr
    (tmp_path / "exists.tar.gz").write_text("")
    r = whynoip("collect", "-o", str(tmp_path / "exists.tar.gz"))
    assert r.returncode == 2 and r.stderr.strip() == f"whynoip: {tmp_path / 'exists.tar.gz'} exists"


def test_diagnose_live_collects_this_machine_and_diagnoses(tmp_path):
    r = whynoip("diagnose", "--live", "-f", "json")
    assert r.returncode in (0, 1), r.stderr
    import json
    d = json.loads(r.stdout)
    assert d["schema"] == 1 and os.uname().nodename.split(".")[0] in d["summary"]["hosts"]
    r = whynoip("diagnose")
    assert r.returncode == 2 and "PATH" in r.stderr


# --- the API view through openstacksdk ------------------------------------------------------------

def _api_facts(d: Path) -> dict[str, list[str]]:
    import json

    import msgspec

    from whynoip import facts as F
    out: dict[str, list[str]] = {}
    for f in read([str(d)]):
        if isinstance(f, (F.ApiNetwork, F.ApiSubnet, F.ApiPort, F.ApiAgent, F.ApiServer)):
            b = msgspec.to_builtins(f)
            b.pop("origin")
            b.pop("heartbeat", None)  # the agents keep reporting between two collections
            out.setdefault(type(f).__name__, []).append(json.dumps(b, sort_keys=True))
    return {k: sorted(v) for k, v in out.items()}


@pytest.mark.lab
def test_the_api_view_through_openstacksdk_reads_as_the_labs(lab_factory, tmp_path):
    """openstacksdk, led by OS_* variables to the lab's control plane served as the
    OpenStack API, writes the `openstack ... -f json` files the lab's collect writes: the
    doctor reads the same networks, subnets, ports, agents and servers from both. The
    password and the token appear nowhere; bad credentials cost the API view only."""
    sys.path.insert(0, str(Path(__file__).parent))
    from lab_api import TOKEN, LabApi

    lab = lab_factory(prefix="ct")
    node = lab.topology.network_nodes[0].name
    args = ["collect", "-q", "--netns", lab.paths.node_ns(node), "--root", str(lab.paths.node_root(node))]
    with LabApi(lab, password="Sdk-Pw-31") as api:
        env = {**os.environ, **api.env}
        r = subprocess.run([*WHYNOIP, *args, "-o", str(tmp_path / "live")], env=env, capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 0, r.stderr
        bad = subprocess.run([*WHYNOIP, *args, "-o", str(tmp_path / "bad"), "--api"], capture_output=True, text=True,
                             timeout=120, env={**env, "OS_PASSWORD": "wrong-Pw-32"})
    assert "POST /identity/v3/auth/tokens" in api.requests and "GET /network/v2.0/ports" in api.requests
    lab_collect.collect(lab, tmp_path / "lab")
    live, mine = _api_facts(tmp_path / "live" / "api"), _api_facts(tmp_path / "lab" / "api")
    assert set(live) == {"ApiNetwork", "ApiSubnet", "ApiPort", "ApiAgent", "ApiServer"}
    assert live == mine
    blob = b"".join(p.read_bytes() for p in (tmp_path / "live").rglob("*") if p.is_file())
    assert b"Sdk-Pw-31" not in blob and TOKEN.encode() not in blob
    assert bad.returncode == 0, bad.stderr
    assert not (tmp_path / "bad" / "api").exists() and (tmp_path / "bad" / node / "sos_commands").is_dir()
    assert "The API view: not collected:" in (tmp_path / "bad" / "README").read_text()
    assert "wrong-Pw-32" not in (tmp_path / "bad" / "README").read_text()
