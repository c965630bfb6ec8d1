#!/usr/bin/env python3
"""Lab speed: `lab up`, `lab down` and one DHCP lease, against a baseline measured in the
same run — udhcpc getting a lease from dnsmasq straight over one veth pair, the least a
lease can cost on this machine — so the ratio shows what the full Neutron path adds.

    sudo .venv/bin/python bench/lab_bench.py [--runs 5]
Targets (issue): up < 2 s, down < 1 s, a lease < 1 s."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from whynoip.lab.lab import Lab


def baseline_lease(runs: int) -> float:
    d = Path(tempfile.mkdtemp(prefix="wnp-bench-"))
    d.chmod(0o755)
    s, c = "wnp-bench-srv", "wnp-bench-cli"

    def sh(*a):
        subprocess.run(a, check=True, capture_output=True)
    for ns in (s, c):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", "eth0", "netns", c, "type", "veth", "peer", "name", "srv0", "netns", s)
        sh("ip", "-n", s, "addr", "add", "10.9.0.2/24", "dev", "srv0")
        sh("ip", "-n", s, "link", "set", "srv0", "up")
        sh("ip", "-n", c, "link", "set", "eth0", "up")
        (d / "host").write_text("")
        sh("ip", "netns", "exec", s, "dnsmasq", "--no-hosts", "--no-resolv", f"--pid-file={d}/pid",
           "--dhcp-range=10.9.0.10,10.9.0.200,86400s", f"--dhcp-leasefile={d}/leases", "--interface=srv0",
           "--bind-dynamic", "--no-ping", "--conf-file=/dev/null")
        times = []
        for _ in range(runs):
            t = time.monotonic()
            sh("ip", "netns", "exec", c, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1",
               "-s", "/bin/true")
            times.append(time.monotonic() - t)
        return statistics.median(times)
    finally:
        pid = (d / "pid").read_text().strip() if (d / "pid").exists() else None
        if pid:
            subprocess.run(["kill", pid])
        for ns in (s, c):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    base = baseline_lease(args.runs)
    ups, downs, leases, leases_dhclient = [], [], [], []
    for _ in range(args.runs):
        lab = Lab("bench")
        lab.down()
        ups.append(lab.up("default"))
        a = lab.dhcp("vm1", capture=False)
        assert a.ok, a
        leases.append(a.seconds)
        b = lab.dhcp("vm2", capture=False)
        assert b.ok, b
        leases_dhclient.append(b.seconds)
        downs.append(lab.down())
    med = statistics.median
    print(f"{'what':34} {'median s':>9} {'target s':>9}  ratio to baseline lease")
    print(f"{'baseline: udhcpc <-> dnsmasq, veth':34} {base:9.3f} {'':>9}  1.0x")
    print(f"{'lab lease, udhcpc (vm1, VXLAN)':34} {med(leases):9.3f} {1.0:9.1f}  {med(leases) / base:.1f}x")
    print(f"{'lab lease, dhclient (vm2, VXLAN)':34} {med(leases_dhclient):9.3f} {1.0:9.1f}  "
          f"{med(leases_dhclient) / base:.1f}x")
    print(f"{'lab up (default: 3 nodes, 2 guests)':34} {med(ups):9.3f} {2.0:9.1f}  {med(ups) / base:.1f}x")
    print(f"{'lab down':34} {med(downs):9.3f} {1.0:9.1f}  {med(downs) / base:.1f}x")
    ok = med(ups) < 2 and med(downs) < 1 and med(leases) < 1
    print(f"targets {'met' if ok else 'MISSED'} ({args.runs} runs)")


if __name__ == "__main__":
    main()
