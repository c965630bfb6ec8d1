"""`whynoip lab collect`: per node a sosreport-like tree of real command output and files,
with a real node's names, the captures of each guest's last DHCP attempt, the API view as
python-openstackclient prints it, and nothing of the lab's own bookkeeping."""

from __future__ import annotations

import json
import os
import re
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from whynoip.lab.collect import filter_df, filter_ps, redact, run, sos_name

WHYNOIP = [sys.executable, "-m", "whynoip.cli"]
LAB = "cotest"
REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real-samples" / "hotsos-openstack-node"
NODE_COMMANDS = {
    "networking": ["ip_addr", "ip_-d_address", "ip_link", "ip_netns", "ip_route", "brctl_show"],
    "process": ["ps_auxwwwm", "ps_-ef"],
    "openvswitch": ["ovs-vsctl_-t_5_show", "ovs-vsctl_-t_5_list_interface", "ovs-ofctl_dump-flows_br-int",
                    "ovs-ofctl_dump-flows_br-tun", "ovs-ofctl_show_br-int"],
    "firewall_tables": ["iptables-save_-c", "iptables_-t_filter_-nvL"],
    "filesys": ["df_-al"],
    "date": ["date", "date_--utc"],
    "host": ["hostname"],
}


# --- without a lab ------------------------------------------------------------------------

def test_sos_name_follows_sosreport():
    assert sos_name("ip -d address") == "ip_-d_address"
    assert sos_name("ls -laZR /var/lib/neutron/lock") == "ls_-laZR_.var.lib.neutron.lock"
    assert sos_name("/usr/bin/ovs-vsctl -t 5 show") == "ovs-vsctl_-t_5_show"
    assert sos_name("ip netns exec qdhcp-x ss -lunp") == "ip_netns_exec_qdhcp-x_ss_-lunp"


def test_redact_masks_as_sosreport_does():
    conf = ("[DEFAULT]\ntransport_url = rabbit://openstack:s3cret@10.0.0.5:5672/\n"
            "[database]\nconnection = mysql+pymysql://neutron:dbpw@10.0.0.5/neutron\n"
            "[agent]\nmetadata_proxy_shared_secret=abc\nreport_interval = 30\n")
    out = redact(conf)
    assert "s3cret" not in out and "dbpw" not in out and "abc" not in out
    assert "transport_url = *********\n" in out
    assert "connection = mysql+pymysql://neutron:*********@10.0.0.5/neutron\n" in out
    assert "report_interval = 30" in out


def test_failed_command_keeps_its_error_and_a_hung_one_is_cut():
    out = run(["sh", "-c", "echo out; echo oops >&2; exit 3"])
    assert out == b"out\noops\n"
    assert run(["sh", "-c", "echo out; echo noise >&2"]) == b"out\n"
    out = run(["sh", "-c", "echo partial; exec sleep 30"], timeout=0.5)
    assert out.startswith(b"partial\n") and b"timed out" in out
    assert b"No such file" in run(["/nonexistent/tool"])


@pytest.mark.skipif(not (REAL / "sos_commands/process/ps_auxwwwm").exists(), reason="no real sample")
def test_filter_ps_keeps_processes_with_their_threads():
    text = (REAL / "sos_commands/process/ps_auxwwwm").read_text()
    out = filter_ps(text, {1, 19086}).splitlines()
    assert out[0].split()[:2] == ["USER", "PID"]
    assert [line.split()[1] for line in out[1:]] == ["1", "-", "19086", "-"]
    assert "--interface=lxdbr0" in out[3]


def test_filter_df_shows_the_node_mounts_as_the_node_sees_them(tmp_path):
    root = tmp_path / "nodes" / "net1"
    text = ("Filesystem 1K-blocks Used Available Use% Mounted on\n"
            "/dev/vda 100 50 50 50% /\n"
            "nsfs 0 0 0 - /run/netns/wnp-x-net1-qdhcp-n1\n"
            "nsfs 0 0 0 - /run/netns/other\n"
            f"wnp-x-state 16384 16384 0 100% {root}/var/lib/neutron\n"
            "sandbox 4 0 4 0% /mnt/elsewhere\n")
    out = filter_df(text, root, ["wnp-x-net1-qdhcp-n1"])
    assert "/run/netns/wnp-x-net1-qdhcp-n1" in out and "/run/netns/other" not in out
    assert f"{root}/var/lib/neutron" in out and "/mnt/elsewhere" not in out and "/dev/vda" in out


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "lab"
# the lab's database file, not Neutron's own loggers (neutron.db.agents_db)
LEAK = re.compile(rb"wnp-|/run/whynoip|whynoip|\.venv|lab\.json|neutron\.db(?![._a-z])|lease\.env")
FAULT_WORD = re.compile(rb"(?i)(?<![a-z_])faults?(?![a-z_])")  # not "default", not OVS's cfm_fault


def _bundles() -> list[Path]:
    return sorted(p for p in FIXTURES.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if FIXTURES.is_dir() else []


@pytest.mark.parametrize("bundle", _bundles(), ids=lambda p: p.name)
def test_committed_bundle_names_nothing_of_the_lab_or_its_case(bundle):
    """The doctor's fixtures (tests/fixtures/make_lab_fixtures.py): only the directory name
    says which case a bundle is."""
    case = bundle.name.split("--")[0].split("+")[0]
    assert (bundle / "README").is_file() and (bundle / "api").is_dir()
    for f in bundle.rglob("*"):
        rel = str(f.relative_to(bundle))
        assert not LEAK.search(rel.encode()) and "fault" not in rel, rel
        if not f.is_file() or f.suffix == ".pcap":
            continue
        data = f.read_bytes()
        assert not LEAK.search(data), (rel, LEAK.search(data))
        assert not FAULT_WORD.search(data), (rel, FAULT_WORD.search(data))
        if case != "healthy":
            assert case.encode() not in data, rel


def test_committed_bundles_are_the_cases_the_script_makes():
    cp = subprocess.run([sys.executable, str(FIXTURES.parent / "make_lab_fixtures.py"), "--list"],
                        capture_output=True, text=True, timeout=60)
    assert cp.returncode == 0, cp.stderr
    cases = cp.stdout.split()
    assert cases[:2] == ["healthy--default", "healthy--ha"]
    assert all(re.fullmatch(r"[a-z0-9-]+(\+[a-z0-9-]+)?--(default|ha|bus)", c) for c in cases), cases
    stale = [b.name for b in _bundles() if b.name not in cases]
    assert not stale, f"bundles of cases the script no longer makes: {stale}"


def test_committed_bundles_stay_small():
    total = sum(f.stat().st_size for f in FIXTURES.rglob("*") if f.is_file()) if FIXTURES.is_dir() else 0
    assert total < 20 * 1024 * 1024


# --- with a real lab ----------------------------------------------------------------------

def _netns_possible() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    probe = f"wnp-coprobe{os.getpid()}"
    cp = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if cp.returncode != 0:
        return f"cannot create network namespaces: {cp.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe])
    return None


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    cp = subprocess.run([*WHYNOIP, *args], capture_output=True, text=True, timeout=180)
    if check and cp.returncode != 0:
        raise AssertionError(f"whynoip {' '.join(args)} failed: {cp.stdout}{cp.stderr}")
    return cp


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """A default lab after one DHCP attempt per guest, its status and its bundle."""
    why = _netns_possible()
    if why:
        pytest.skip(why)
    from whynoip.lab.lab import Lab
    lab = Lab(LAB)
    lab.down()
    lab.up("default")
    try:
        attempts = {g: json.loads(cli("lab", "dhcp", g, "--name", LAB, "-f", "json").stdout)
                    for g in ("vm1", "vm2")}
        status = json.loads(cli("lab", "status", "--name", LAB, "-f", "json").stdout)
        out = tmp_path_factory.mktemp("bundle") / "b"
        cli("lab", "collect", "--name", LAB, "-o", str(out))
        yield {"lab": lab, "status": status, "attempts": attempts, "dir": out,
               "secrets": [re.search(r"openstack:(\w+)@", (Path(n["root"]) / "etc/neutron/neutron.conf")
                                     .read_text()).group(1) for n in status["nodes"]]}
    finally:
        lab.down()


def _files(d: Path) -> list[Path]:
    return sorted(p for p in d.rglob("*") if p.is_file())


def _pcap_records(path: Path) -> list[bytes]:
    data = path.read_bytes()
    assert len(data) >= 24, f"{path} is not a pcap"
    magic = data[:4]
    assert magic in (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d"), path
    endian = "<" if magic[0] in (0xD4, 0x4D) else ">"
    off, recs = 24, []
    while off + 16 <= len(data):
        incl = struct.unpack(endian + "IIII", data[off:off + 16])[2]
        recs.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return recs


@pytest.mark.lab
def test_healthy_lab_gave_both_guests_an_ip(collected):
    assert all(a["ok"] for a in collected["attempts"].values()), collected["attempts"]


@pytest.mark.lab
def test_each_node_is_a_sosreport_tree(collected):
    d, st = collected["dir"], collected["status"]
    nodes = [n["name"] for n in st["nodes"]]
    assert sorted(p.name for p in d.iterdir()) == sorted(nodes + ["README", "api", "guests"])
    net = st["networks"][0]["id"]
    for node in nodes:
        for plugin, names in NODE_COMMANDS.items():
            for name in names:
                f = d / node / "sos_commands" / plugin / name
                assert f.is_file(), f
                # empty on a node without Linux bridges, namespaces or iptables rules
                assert f.stat().st_size > 0 or name in ("brctl_show", "ip_netns", "iptables-save_-c"), f
        assert (d / node / "etc/hostname").read_text().strip() == node
        assert (d / node / "sos_commands/host/hostname").read_text().strip() == node
        assert (d / node / "etc/neutron/neutron.conf").is_file()
        assert (d / node / "var/log/openvswitch/ovs-vswitchd.log").is_file()
        assert (d / node / "var/log/neutron/neutron-openvswitch-agent.log").is_file()
    n1 = d / "net1"
    for name in ("host", "addn_hosts", "opts", "leases", "pid", "interface"):
        assert (n1 / "var/lib/neutron/dhcp" / net / name).is_file(), name
    assert (n1 / "var/log/neutron/neutron-dhcp-agent.log").is_file()
    assert (n1 / "var/log/neutron/dnsmasq" / net / "dhcp_dns_log").is_file()
    assert (n1 / "etc/neutron/dhcp_agent.ini").is_file()
    ss = n1 / "sos_commands/networking" / f"ip_netns_exec_qdhcp-{net}_ss_-lunp"
    assert re.search(r":67\s.*dnsmasq", ss.read_text())
    addr = n1 / "sos_commands/networking" / f"ip_netns_exec_qdhcp-{net}_ip_address_show"
    assert st["networks"][0]["dhcp_servers"][0]["ip"] + "/24" in addr.read_text()
    assert "Error:" not in addr.read_text()
    assert not (d / "cmp1/var/lib/neutron/dhcp").exists()
    assert "qbr" in (d / "cmp1/sos_commands/networking/brctl_show").read_text()
    assert re.search(r"^\[\d+:\d+\] -A neutron-openvswi-",
                     (d / "cmp1/sos_commands/firewall_tables/iptables-save_-c").read_text(), re.M)


@pytest.mark.lab
def test_names_are_a_real_nodes(collected):
    d, st = collected["dir"], collected["status"]
    net = st["networks"][0]["id"]
    n1 = d / "net1/sos_commands"
    assert (n1 / "networking/ip_netns").read_text().split()[0] == f"qdhcp-{net}"
    assert (d / "cmp1/sos_commands/networking/ip_netns").read_text().strip() == ""
    ps = (n1 / "process/ps_auxwwwm").read_text()
    assert f"--pid-file=/var/lib/neutron/dhcp/{net}/pid" in ps
    assert "/usr/bin/neutron-dhcp-agent --config-file=/etc/neutron/neutron.conf" in ps
    assert f"--log-facility=/var/log/neutron/dnsmasq/{net}/dhcp_dns_log" in ps
    df = (n1 / "filesys/df_-al").read_text().splitlines()
    neutron = [line for line in df if line.split()[-1] == "/var/lib/neutron"]
    assert len(neutron) == 1 and neutron[0].split()[0] == "tmpfs", df
    assert any(line.split()[-1] == f"/run/netns/qdhcp-{net}" for line in df)
    assert not any("/var/lib/neutron" == line.split()[-1] for line in
                   (d / "cmp1/sos_commands/filesys/df_-al").read_text().splitlines())
    assert "ovs-vswitchd --pidfile=/run/openvswitch/ovs-vswitchd.pid" in ps
    log = (d / "net1/var/log/neutron/neutron-dhcp-agent.log").read_text()
    assert f"'ip', 'netns', 'exec', 'qdhcp-{net}', 'dnsmasq'" in log


@pytest.mark.lab
def test_process_lists_hold_only_the_nodes_processes(collected):
    d = collected["dir"]

    def commands(node: str) -> list[str]:
        lines = (d / node / "sos_commands/process/ps_-ef").read_text().splitlines()[1:]
        return [" ".join(line.split()[7:]) for line in lines]

    net1, cmp1 = commands("net1"), commands("cmp1")
    assert sum(c.startswith("dnsmasq ") for c in net1) >= 1
    assert sum("neutron-dhcp-agent" in c for c in net1) == 1
    for node in ("net1", "cmp1", "cmp2"):
        cmds = commands(node)
        assert sum(c.startswith("ovs-vswitchd ") for c in cmds) == 1, (node, cmds)
        assert sum(c.startswith("ovsdb-server ") for c in cmds) == 1, (node, cmds)
        assert sum("neutron-openvswitch-agent" in c for c in cmds) == 1, (node, cmds)
    assert not any("dnsmasq" in c or "neutron-dhcp-agent" in c for c in cmp1)
    pids = {n: {line.split()[1] for line in (d / n / "sos_commands/process/ps_-ef").read_text().splitlines()[1:]}
            for n in ("net1", "cmp1", "cmp2")}
    assert not (pids["net1"] & pids["cmp1"]) and not (pids["cmp1"] & pids["cmp2"])


@pytest.mark.lab
def test_secrets_are_masked(collected):
    d = collected["dir"]
    conf = (d / "net1/etc/neutron/neutron.conf").read_text()
    assert "transport_url = *********" in conf
    assert "connection = mysql+pymysql://neutron:*********@" in conf
    everything = b"".join(f.read_bytes() for f in _files(d))
    for secret in collected["secrets"]:
        assert secret.encode() not in everything


@pytest.mark.lab
def test_every_hop_capture_is_there_with_packets(collected):
    d, st = collected["dir"], collected["status"]
    net = st["networks"][0]["id"]
    for g in st["guests"]:
        name, node, port = g["name"], g["node"], g["port_id"]
        own = _pcap_records(d / "guests" / name / "tcpdump_-i_eth0.pcap")
        assert len(own) >= 4, f"{name}: DORA expected on the guest"
        for kind in ("tap", "qbr", "qvb", "qvo"):
            recs = _pcap_records(d / node / "captures" / name / f"tcpdump_-i_{kind}{port[:11]}.pcap")
            assert len(recs) >= 4, (name, kind)
        assert _pcap_records(d / node / "captures" / name / "tcpdump_-i_eth1.pcap")
        srv = st["networks"][0]["dhcp_servers"][0]
        qd = d / srv["node"] / "captures" / name / f"ip_netns_exec_qdhcp-{net}_tcpdump_-i_{srv['tap']}.pcap"
        recs = _pcap_records(qd)
        assert len(recs) >= 4
        mac = bytes.fromhex(g["mac"].replace(":", ""))
        assert any(mac in r for r in recs), "the guest's DISCOVER reaches the DHCP namespace"
        console = (d / "guests" / name / "console.log").read_text()
        assert g["expected_ip"] in console


@pytest.mark.lab
def test_api_view_parses_and_agrees_with_status(collected):
    d, st = collected["dir"], collected["status"]
    api = {f.name: json.loads(f.read_text()) for f in (d / "api").iterdir()}
    net = st["networks"][0]
    sub = net["subnets"][0]
    assert api["openstack_network_list_-f_json"] == [{"ID": net["id"], "Name": net["name"], "Subnets": [sub["id"]]}]
    show = api[f"openstack_network_show_{net['id']}_-f_json"]
    assert show["provider:segmentation_id"] == net["segmentation_id"] and show["mtu"] == net["mtu"]
    assert show["provider:network_type"] == "vxlan" and show["subnets"] == [sub["id"]]
    sshow = api[f"openstack_subnet_show_{sub['id']}_-f_json"]
    assert sshow["cidr"] == sub["cidr"] and sshow["gateway_ip"] == sub["gateway_ip"]
    assert sshow["enable_dhcp"] is True
    start, end = sub["allocation_pool"].split("-")
    assert sshow["allocation_pools"] == [{"start": start, "end": end}]
    assert api["openstack_subnet_list_-f_json"][0]["Subnet"] == sub["cidr"]

    ports = {p["ID"]: p for p in api["openstack_port_list_-f_json"]}
    assert set(ports) >= {g["port_id"] for g in st["guests"]}
    assert all(set(p) == {"ID", "Name", "MAC Address", "Fixed IP Addresses", "Status"} for p in ports.values())
    long_ = api["openstack_port_list_--long_-f_json"]
    assert all({"Security Groups", "Device Owner", "Tags"} <= set(p) for p in long_)
    for g in st["guests"]:
        p = ports[g["port_id"]]
        assert p["MAC Address"] == g["mac"]
        assert p["Fixed IP Addresses"] == [{"subnet_id": sub["id"], "ip_address": g["expected_ip"]}]
        pshow = api[f"openstack_port_show_{g['port_id']}_-f_json"]
        assert pshow["binding_host_id"] == g["node"] and pshow["mac_address"] == g["mac"]
        assert pshow["binding_vif_type"] == "ovs" and pshow["device_owner"].startswith("compute:")
        assert pshow["fixed_ips"][0]["ip_address"] == g["expected_ip"] and pshow["admin_state_up"] is True
    dhcp_ports = [p for p in long_ if p["Device Owner"] == "network:dhcp"]
    assert [p["Fixed IP Addresses"][0]["ip_address"] for p in dhcp_ports] == [s["ip"] for s in net["dhcp_servers"]]

    agents = api["openstack_network_agent_list_-f_json"]
    assert {(a["ID"], a["Host"], a["Agent Type"], a["Binary"]) for a in agents} == {
        (a["id"], a["host"], a["agent_type"], a["binary"]) for a in st["agents"]}
    assert all(a["Alive"] is True and a["State"] is True for a in agents)
    assert all(set(a) == {"ID", "Agent Type", "Host", "Availability Zone", "Alive", "State", "Binary"}
               for a in agents)
    hosting = api[f"openstack_network_agent_list_--network_{net['id']}_-f_json"]
    assert [a["Host"] for a in hosting] == [s["node"] for s in net["dhcp_servers"]]
    assert all(a["Agent Type"] == "DHCP agent" for a in hosting)

    servers = {s["Name"]: s for s in api["openstack_server_list_-f_json"]}
    assert set(servers) == {g["name"] for g in st["guests"]}
    for g in st["guests"]:
        assert servers[g["name"]]["Networks"] == {net["name"]: [g["expected_ip"]]}
        assert servers[g["name"]]["Status"] == "ACTIVE"


@pytest.mark.lab
def test_no_bookkeeping_leaks(collected):
    d = collected["dir"]
    names = [str(p.relative_to(d)) for p in d.rglob("*")]
    for bad in ("lab.json", "faults.json", "neutron.db", "lease.env", "fault", "wnp-", "whynoip", ".err",
                "udhcpc.script", "dhclient.", ".stderr", "run/neutron", "usr/bin"):
        assert not [n for n in names if bad in n], bad
    leaks = re.compile(rb"wnp-|/run/whynoip|whynoip|\.venv|" + re.escape(str(collected["lab"].paths.dir)).encode())
    # "fault" alone (not "default", not OVS's cfm_fault columns)
    fault = re.compile(rb"(?i)(?<![a-z_])faults?(?![a-z_])")
    for f in _files(d):
        if f.suffix == ".pcap":
            continue
        data = f.read_bytes()
        assert not leaks.search(data), (f, leaks.search(data))
        assert not fault.search(data), (f, fault.search(data))
    try:
        from whynoip.lab import faults
    except ImportError:
        return
    ids = [i for i in getattr(faults, "CATALOG", {})]
    for f in _files(d):
        data = f.read_bytes()
        for i in ids:
            if "-" in i:  # ids like "dnsmasq-not-running"; single words can be common
                assert i.encode() not in data, (f, i)


@pytest.mark.lab
def test_tar_and_refusing_to_overwrite(collected, tmp_path):
    target = tmp_path / "bundle.tar.gz"
    cp = cli("lab", "collect", "--name", LAB, "-o", str(target), "--tar")
    assert str(target) in cp.stdout
    with tarfile.open(target) as tf:
        names = tf.getnames()
    assert "bundle/README" in names and "bundle/net1/sos_commands/process/ps_-ef" in names
    assert any(n.startswith("bundle/api/openstack_port_show_") for n in names)
    cp = cli("lab", "collect", "--name", LAB, "-o", str(collected["dir"]), check=False)
    assert cp.returncode != 0 and "not an empty directory" in cp.stderr
    cp = cli("lab", "collect", "--name", "conone", "-o", str(tmp_path / "x"), check=False)
    assert cp.returncode != 0 and "no lab named" in cp.stderr and "Traceback" not in cp.stderr


@pytest.mark.lab
def test_a_failing_command_is_recorded_and_collection_goes_on(collected, tmp_path):
    lab = collected["lab"]
    lab.ovs("cmp2").stop_vswitchd()
    out = tmp_path / "b2"
    cli("lab", "collect", "--name", LAB, "-o", str(out))
    flows = (out / "cmp2/sos_commands/openvswitch/ovs-ofctl_dump-flows_br-int").read_text()
    assert flows.startswith("ovs-ofctl: br-int is not a bridge or a socket")  # the tool's own error
    assert "NXST_FLOW" in (out / "cmp1/sos_commands/openvswitch/ovs-ofctl_dump-flows_br-int").read_text()
    assert (out / "cmp2/sos_commands/process/ps_-ef").is_file()
    assert "ovs-vswitchd" not in (out / "cmp2/sos_commands/process/ps_-ef").read_text()
    assert (out / "api/openstack_server_list_-f_json").is_file()
