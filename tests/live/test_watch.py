"""`whynoip watch`: scraped over HTTP (urllib, on loopback) while the lab freezes and
thaws a dnsmasq; the server's `whynoip_dhcp_server_up` flips with the next round each way,
the findings follow, each change is one line on stderr, and the watch stops by itself."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from whynoip.lab import faults

WHYNOIP = [sys.executable, "-m", "whynoip.cli"]

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Watch:
    """A `whynoip watch` subprocess on loopback, bounded by --duration, and its scrapes."""

    def __init__(self, *args: str, duration: float):
        self.port = free_port()
        self.proc = subprocess.Popen([*WHYNOIP, "watch", "--listen", f"127.0.0.1:{self.port}",
                                      "--duration", str(duration), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stderr = ""

    def scrape(self) -> dict:
        """{(metric sample name, frozenset(labels)): value}, read with Prometheus' own parser."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text = r.read().decode()
        out = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                out[(s.name, frozenset(s.labels.items()))] = s.value
        return out

    def wait(self, pred, timeout: float, what: str) -> tuple[dict, float]:
        start = time.monotonic()
        while True:
            assert self.proc.poll() is None, self.proc.stderr.read()
            try:
                m = self.scrape()
            except OSError:
                m = {}
            if m and pred(m):
                return m, time.monotonic() - start
            assert time.monotonic() - start < timeout, f"{what} not within {timeout} s: {m}"
            time.sleep(0.05)

    def stop(self, sig=signal.SIGTERM, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.stderr += self.proc.stderr.read()
        return rc


def up(m: dict, net: str, server: str):
    return m.get(("whynoip_dhcp_server_up", frozenset({("network", net), ("server", server)})))


def finding(m: dict, fid: str):
    return m.get(("whynoip_findings", frozenset({("id", fid)})))


def test_metrics_flip_with_the_next_round_when_dnsmasq_freezes_and_thaws(module_lab_factory):
    lab = module_lab_factory("ha", prefix="pw")
    net = lab.cp.networks()[0].id
    servers = {s["node"]: s["ip"] for s in lab.dhcp_servers()}
    frozen, other = servers["net1"], servers["net2"]
    interval, timeout = 2.0, 1.0
    w = Watch("--network", net, "--interval", str(interval), "--timeout", str(timeout), duration=60)
    try:
        m, _ = w.wait(lambda m: up(m, net, frozen) == 1 and up(m, net, other) == 1, 20, "both servers up")
        assert finding(m, "dnsmasq-unresponsive") == 0
        # a round waits at most one interval to start and `timeout` to end
        bound = interval + timeout + 0.5
        faults.inject(lab, "dnsmasq-unresponsive", "private@net1")
        try:
            rounds = m[("whynoip_probe_rounds_total", frozenset())]
            m, took = w.wait(lambda m: up(m, net, frozen) == 0, bound + 5, "the frozen server down")
            assert took < bound, took
            assert m[("whynoip_probe_rounds_total", frozenset())] - rounds <= 2
            assert up(m, net, other) == 1
            assert finding(m, "dnsmasq-unresponsive") == 1 and finding(m, "dhcp-server-silent") == 1
            assert ("whynoip_dhcp_server_latency_seconds", frozenset({("network", net), ("server", frozen)})) not in m
        finally:
            faults.heal(lab)
        m, took = w.wait(lambda m: up(m, net, frozen) == 1, bound + 5, "the thawed server up")
        assert took < bound, took
        assert finding(m, "dnsmasq-unresponsive") == 0 and finding(m, "dhcp-server-silent") == 0
        # the latency histogram: cumulative buckets, +Inf equals the count, one per exchange kind
        for kind in ("discover", "request", "renew", "inform"):
            buckets = sorted((float(dict(k[1])["le"]), v) for k, v in m.items()
                             if k[0] == "whynoip_dhcp_reply_latency_seconds_bucket" and ("exchange", kind) in k[1])
            counts = [v for _, v in buckets]
            assert counts == sorted(counts) and counts[-1] > 0
            assert counts[-1] == m[("whynoip_dhcp_reply_latency_seconds_count", frozenset({("exchange", kind)}))]
        assert w.stop() == 0
    finally:
        w.stop(signal.SIGKILL)
    lines = w.stderr.splitlines()
    assert any(f"server {frozen}: answers -> silent (dnsmasq-unresponsive)" in line for line in lines), w.stderr
    assert any(f"server {frozen}: silent -> answers" in line for line in lines), w.stderr
    assert not any(other in line for line in lines), w.stderr  # only changes are logged
    assert lines[-1].endswith("stopped") and "Traceback" not in w.stderr


def test_a_watch_stops_by_itself_and_removes_its_probe_port(module_lab_factory):
    lab = module_lab_factory("default", prefix="pw")
    net = lab.cp.networks()[0].id
    [server] = [s["ip"] for s in lab.dhcp_servers()]
    agent_log = lab.paths.neutron_log("net1", "neutron-dhcp-agent")
    before = agent_log.read_text().count("Trigger reload_allocations for port")
    start = time.monotonic()
    w = Watch("--network", net, "--interval", "0.5", duration=4)
    try:
        w.wait(lambda m: up(m, net, server) == 1 and m[("whynoip_probe_rounds_total", frozenset())] >= 3, 10,
               "three rounds")
        probe_ns = [ns for ns in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout.split()
                    if ns.startswith(lab.paths.prefix + "probe")]
        assert len(probe_ns) == 1  # one probe port, kept across rounds
        rc = w.proc.wait(10)
        assert rc == 0 and time.monotonic() - start < 4 + 5
    finally:
        w.stop(signal.SIGKILL)
    assert "Traceback" not in w.stderr
    ns_list = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert probe_ns[0] not in ns_list
    assert not [p for p in lab.ovs("net1").vsctl("list-ports", "br-int").split() if p.startswith("wnpp")]
    assert not [p for p in lab.cp.ports(net) if p.device_owner == "network:probe"]
    time.sleep(0.3)
    # the probe port was registered once and removed once, not once per round
    assert agent_log.read_text().count("Trigger reload_allocations for port") - before == 2


@pytest.mark.parametrize("args, says", [
    (["--listen", "nonsense"], "expected ADDR:PORT"),
    (["--interval", "0"], "must be more than 0"),
])
def test_bad_input_is_one_line(lab_host, args, says):
    r = subprocess.run([*WHYNOIP, "watch", *args], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr


def test_a_taken_port_is_one_line(lab_host):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run([*WHYNOIP, "watch", "--listen", f"127.0.0.1:{port}", "--duration", "1"],
                           capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "cannot serve metrics on 127.0.0.1" in r.stderr and "Traceback" not in r.stderr
