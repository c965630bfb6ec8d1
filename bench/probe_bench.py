#!/usr/bin/env python3
"""Probe fan-out: how many networks a second `whynoip probe` covers, on a lab with as many
networks as asked, each served by two DHCP agents (so every server is probed from the
other agent's qdhcp namespace: two rounds per network, four exchanges each).

The baseline, measured in the same run, is the same probe done one network at a time
(`--parallel 1`) over a sample of the networks: the ratio is what the fan-out buys.
`lab up` of that many networks is timed too (it is the DHCP agents plugging and starting
one dnsmasq per network and agent, one after the other, as Neutron's agent does).

    sudo .venv/bin/python bench/probe_bench.py [--networks 1000] [--labs 4] [--parallel 64,256,1024]
        [--name pwb] [--keep | --reuse]
Goal (issue): 1,000 networks x 2 servers in < 30 s."""

from __future__ import annotations

import argparse
import asyncio
import functools
import resource
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

from whynoip.lab import lab as labmod
from whynoip.lab.lab import Lab
from whynoip.live.probe import Prober, Timing, qdhcp_namespaces


def topology(n: int) -> dict:
    return {
        "name": f"bench{n}",
        "dhcp_agents_per_network": 2,
        # agents report rarely: with this many networks a full sync takes long, and an agent
        # looks dead after agent_down_time without a heartbeat
        "report_interval": 5, "agent_down_time": 3600,
        "nodes": [{"name": "net1", "role": "network"}, {"name": "net2", "role": "network"}],
        "networks": [{"name": f"n{i}", "segmentation_id": 2000 + i, "mtu": 1450,
                      "subnets": [{"name": f"s{i}", "cidr": f"10.{i // 256}.{i % 256}.0/24",
                                   "gateway": f"10.{i // 256}.{i % 256}.1", "enable_dhcp": True}]}
                     for i in range(n)],
        "guests": [],
    }


def probe_all(networks: dict, parallel: int, timeout: float, rate: float = 0.0) -> tuple[float, list]:
    prober = Prober(Timing(timeout=timeout))

    async def go():
        try:
            return await prober.probe_many(networks, parallel, rate)
        finally:
            await prober.close()
    start = time.monotonic()
    results = asyncio.run(go())
    return time.monotonic() - start, results


def summary(results) -> str:
    verdicts = Counter(s.verdict for r in results for s in r.servers)
    findings = Counter(f.id for r in results for f in r.findings)
    lat = sorted(s.latency_ms for r in results for s in r.servers if s.latency_ms is not None)
    p50 = lat[len(lat) // 2] if lat else float("nan")
    p99 = lat[int(len(lat) * 0.99)] if lat else float("nan")
    slow = max((r.seconds for r in results), default=0.0)
    return (f"servers {sum(verdicts.values())} ({dict(verdicts)}), findings {dict(findings) or 0}, "
            f"first-answer latency p50 {p50:.1f} ms p99 {p99:.1f} ms, slowest network {slow:.2f} s")


def build(lab: Lab, n: int) -> float:
    # /var/lib/neutron of a network node is a small tmpfs in the lab (16 MB: ~600
    # networks' files); give it room for this many
    labmod.STATE_FS_SIZE = f"{max(16, n // 16 + 16)}m"
    path = Path(tempfile.mkdtemp(prefix="wnp-bench-")) / "topology.yaml"
    path.write_text(yaml.safe_dump(topology(n)))
    # the lab waits 15 s for each dnsmasq in turn, in another order than the agents start
    # them: far too short for hundreds of networks started one after the other
    lab.wait_dhcp_ready = functools.partial(Lab.wait_dhcp_ready, lab, timeout=max(15.0, n * 1.0))
    start = time.monotonic()
    lab.up(str(path))
    return time.monotonic() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=1000)
    ap.add_argument("--labs", type=int, default=1,
                    help="split the networks over this many labs (each node's userspace Open vSwitch polls "
                         "every port: past a few hundred ports per node its main loop stalls)")
    ap.add_argument("--parallel", default="64,256,1024", help="comma-separated fan-out widths to measure")
    ap.add_argument("--rates", default="0", help="comma-separated start rates (networks/s, 0: all at once)")
    ap.add_argument("--sample", type=int, default=20, help="networks for the one-at-a-time baseline")
    ap.add_argument("--timeout", type=float, default=10.0, help="per network")
    ap.add_argument("--name", default="pwb", help="lab name (with --labs K: NAME1..NAMEK)")
    ap.add_argument("--keep", action="store_true", help="leave the labs up afterwards")
    ap.add_argument("--reuse", action="store_true", help="probe the labs as they are (no up/down)")
    args = ap.parse_args()

    names = [args.name] if args.labs == 1 else [f"{args.name}{i + 1}" for i in range(args.labs)]
    labs = [Lab(n) for n in names]
    try:
        if not args.reuse:
            per = args.networks // len(labs)
            total = 0.0
            for lab in labs:
                print(f"lab up {lab.name}: {per} networks x 2 DHCP agents ...", flush=True)
                seconds = build(lab, per)
                total += seconds
                print(f"lab up {lab.name}: {seconds:.1f} s ({per / seconds:.1f} networks/s)", flush=True)
            print(f"lab up, all: {total:.1f} s for {per * len(labs)} networks", flush=True)
        prefixes = tuple(lab.paths.prefix for lab in labs)
        networks = {net: [ns for ns in nss if ns.startswith(prefixes)] for net, nss in qdhcp_namespaces().items()}
        # every network with both its DHCP servers up (a lab still starting has some with one)
        networks = {net: nss for net, nss in networks.items() if len(nss) >= 2}
        n = len(networks)
        servers = sum(len(v) for v in networks.values())
        print(f"probing {n} networks, {servers} qdhcp namespaces", flush=True)
        sample = dict(list(networks.items())[:args.sample])
        base_s, base_r = probe_all(sample, 1, args.timeout)
        base_rate = len(sample) / base_s
        print(f"  baseline, one network at a time ({len(sample)} networks): {base_s:.2f} s, "
              f"{base_rate:.1f} networks/s; {summary(base_r)}", flush=True)
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        for width in [int(x) for x in args.parallel.split(",")]:
            for start_rate in [float(x) for x in args.rates.split(",")]:
                cpu0 = resource.getrusage(resource.RUSAGE_SELF)
                seconds, results = probe_all(networks, width, args.timeout, start_rate)
                cpu1 = resource.getrusage(resource.RUSAGE_SELF)
                cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
                rate = n / seconds
                print(f"  --parallel {width} --rate {start_rate:g}: {n} networks x {servers / max(n, 1):.0f} "
                      f"servers in {seconds:.2f} s = {rate:.0f} networks/s ({rate / base_rate:.1f}x one at a "
                      f"time), CPU {cpu:.2f} s; {summary(results)}", flush=True)
        ru = resource.getrusage(resource.RUSAGE_SELF)
        print(f"peak RSS {ru.ru_maxrss / 1024:.0f} MB (before the fan-out: {ru0.ru_maxrss / 1024:.0f} MB)")
    finally:
        if not (args.keep or args.reuse):
            for lab in labs:
                start = time.monotonic()
                lab.down()
                print(f"lab down {lab.name}: {time.monotonic() - start:.1f} s", flush=True)


if __name__ == "__main__":
    main()
