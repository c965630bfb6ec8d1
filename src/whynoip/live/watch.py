"""Watch: probe every network on this node every interval and serve what was found as
Prometheus metrics, logging each change of a server's state on stderr (one line).

Metrics (text exposition format, at http://ADDR:PORT/metrics):

    whynoip_dhcp_server_up{network,server}               1 answers (or refuses: it is alive), 0 silent
    whynoip_dhcp_server_latency_seconds{network,server}  its first answer in the last round
    whynoip_dhcp_reply_latency_seconds{exchange}         histogram of every answer since start
                                                         (exchange: discover, request, renew, inform)
    whynoip_findings{id}                                 findings of the last round, by finding id
    whynoip_probe_rounds_total, whynoip_probe_round_seconds, whynoip_probe_last_round_timestamp_seconds,
    whynoip_networks                                     rounds, the last one's duration and time, networks probed

A server is up when it answers anything: a NAK too shows a dnsmasq that works. The metrics
of a round replace the previous round's whole (a network that disappears loses its
series). The exposition is prometheus_client's (measured: 0.65 MB, pure Python, no
dependencies, ~40 ms of import beyond the standard library's HTTP server; its own parser
checks the format in the tests), fed by a collector that reads the last round.

The probe ports a network needs (one DHCP agent only) are plugged once and kept for the
whole watch, then removed.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from whynoip.live.dhcp_client import ProbeError
from whynoip.live.probe import KINDS, NetworkResult, Prober, Timing, select_networks

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# the ids a probe can find: always exported, 0 when none, so that an alert sees them clear
FINDING_IDS = ("dhcp-server-silent", "dnsmasq-unresponsive", "dnsmasq-not-running", "dhcp-namespace-broken",
               "l2-path-broken", "udp-checksum-bad", "rogue-dhcp-server", "dhcp-nak", "host-entry-missing")


def parse_listen(text: str) -> tuple[str, int]:
    """`ADDR:PORT`, `:PORT` (all addresses) or `[v6]:PORT`."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ProbeError(f"--listen {text!r}: expected ADDR:PORT, like 127.0.0.1:9465")
    host = host.strip("[]") or "0.0.0.0"
    return host, int(port)


@dataclass(slots=True)
class _Histogram:
    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0
    n: int = 0

    def observe(self, seconds: float) -> None:
        for i, le in enumerate(BUCKETS):
            if seconds <= le:
                self.counts[i] += 1
        self.total += seconds
        self.n += 1


class Metrics:
    """What the exposition shows: the last round's state and the histograms since start.
    A scrape (another thread) reads it under the lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.servers: dict[tuple[str, str], tuple[int, float | None]] = {}
        self.findings: dict[str, int] = dict.fromkeys(FINDING_IDS, 0)
        self.hist = {k: _Histogram() for k in KINDS}
        self.rounds = 0
        self.round_seconds = 0.0
        self.last_round = 0.0
        self.networks = 0

    def update(self, results: list[NetworkResult], seconds: float) -> None:
        servers = {}
        findings = dict.fromkeys(FINDING_IDS, 0)
        observed = []
        for r in results:
            for s in r.servers:
                if s.known:
                    latency = s.latency_ms / 1000 if s.latency_ms is not None else None
                    servers[(r.network or "", s.server)] = (0 if s.verdict == "silent" else 1, latency)
                observed += [(e.kind, e.latency_ms / 1000) for e in s.exchanges if e.reply and e.latency_ms is not None]
            for f in r.findings:
                findings[f.id] = findings.get(f.id, 0) + 1
        with self.lock:
            self.servers = servers
            self.findings = findings
            for kind, value in observed:
                self.hist[kind].observe(value)
            self.rounds += 1
            self.round_seconds = seconds
            self.last_round = time.time()
            self.networks = len(results)

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        with self.lock:
            up = GaugeMetricFamily("whynoip_dhcp_server_up", "1 when the DHCP server answered the last probe "
                                   "(a NAK too), 0 when it was silent", labels=["network", "server"])
            lat = GaugeMetricFamily("whynoip_dhcp_server_latency_seconds", "The DHCP server's first answer in "
                                    "the last probe", labels=["network", "server"])
            for (net, server), (value, latency) in sorted(self.servers.items()):
                up.add_metric([net, server], value)
                if latency is not None:
                    lat.add_metric([net, server], latency)
            hist = HistogramMetricFamily("whynoip_dhcp_reply_latency_seconds", "Time from a probe's request to "
                                         "the server's answer", labels=["exchange"])
            for kind, h in self.hist.items():
                buckets = [(repr(le), c) for le, c in zip(BUCKETS, h.counts)] + [("+Inf", h.n)]
                hist.add_metric([kind], buckets, h.total)
            found = GaugeMetricFamily("whynoip_findings", "Findings of the last probe round, by finding id",
                                      labels=["id"])
            for fid, n in sorted(self.findings.items()):
                found.add_metric([fid], n)
            rounds = CounterMetricFamily("whynoip_probe_rounds", "Probe rounds done", value=self.rounds)
            seconds = GaugeMetricFamily("whynoip_probe_round_seconds", "Duration of the last probe round",
                                        value=self.round_seconds)
            last = GaugeMetricFamily("whynoip_probe_last_round_timestamp_seconds", "When the last round ended",
                                     value=self.last_round)
            nets = GaugeMetricFamily("whynoip_networks", "Networks probed in the last round", value=self.networks)
        yield from (up, lat, hist, found, rounds, seconds, last, nets)


def _log(line: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    print(f"{stamp} whynoip watch: {line}", file=sys.stderr, flush=True)


class Watcher:
    def __init__(self, prober: Prober, networks: list[str] | None, interval: float, parallel: int,
                 metrics: Metrics, log=_log, rate: float = 0.0):
        self.prober = prober
        self.networks = networks
        self.interval = interval
        self.parallel = parallel
        self.rate = rate
        self.metrics = metrics
        self.log = log
        self.states: dict[tuple[str, str], str] = {}

    def _changes(self, results: list[NetworkResult]) -> None:
        now: dict[tuple[str, str], tuple[str, str]] = {}
        for r in results:
            causes = {}
            for f in r.findings:  # subjects name the server first ("10.0.0.2 on net1") or last (a path)
                if f.root_cause:
                    words = f.subject.split()
                    for ip in {words[0], words[-1]}:
                        causes.setdefault(ip, f.id)
            for s in r.servers:
                state = s.verdict if s.known else f"{s.verdict} (not a known DHCP port)"
                now[(r.network or "", s.server)] = (state, causes.get(s.server, ""))
            for note in r.notes:
                if note.startswith("not probed"):
                    self.log(f"network {r.network}: {note}")
        for key, (state, cause) in now.items():
            before = self.states.get(key)
            why = f" ({cause})" if cause and state != "answers" else ""
            if before is None:
                if state != "answers":
                    self.log(f"network {key[0]} server {key[1]}: {state}{why}")
            elif before != state:
                self.log(f"network {key[0]} server {key[1]}: {before} -> {state}{why}")
        for key in self.states.keys() - now.keys():
            self.log(f"network {key[0]} server {key[1]}: gone")
        self.states = {k: v[0] for k, v in now.items()}

    async def round(self) -> list[NetworkResult]:
        start = time.monotonic()
        try:
            selected = select_networks(self.networks)
        except ProbeError as e:
            self.log(str(e))
            selected = {}
        results = await self.prober.probe_many(selected, self.parallel, self.rate) if selected else []
        await self.prober.drop_ports_except(set(selected))
        self.metrics.update(results, time.monotonic() - start)
        self._changes(results)
        return results

    async def run(self, stop: asyncio.Event, duration: float | None = None) -> None:
        end = None if duration is None else time.monotonic() + duration
        first = True
        while not stop.is_set():
            started = time.monotonic()
            results = await self.round()
            if first:
                counts = {v: sum(1 for r in results for s in r.servers if s.known and s.verdict == v)
                          for v in ("answers", "nak", "silent")}
                self.log(f"watching {len(results)} network(s): {counts['answers']} server(s) answer, "
                         f"{counts['nak']} refuse, {counts['silent']} silent; every {self.interval:g} s")
                first = False
            wake = started + self.interval
            if end is not None:
                if time.monotonic() >= end:
                    break
                wake = min(wake, end)
            try:
                await asyncio.wait_for(stop.wait(), max(0.0, wake - time.monotonic()))
            except TimeoutError:
                pass
            if end is not None and time.monotonic() >= end:
                break


async def _main(addr: str, port: int, *, interval: float, networks: list[str] | None, servers: list[str],
                timing: Timing, duration: float | None, parallel: int, rate: float) -> None:
    from prometheus_client import CollectorRegistry, start_http_server

    metrics = Metrics()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    try:
        httpd, thread = start_http_server(port, addr, registry=registry)
    except OSError as e:
        raise ProbeError(f"cannot serve metrics on {addr}:{port}: {e.strerror or e}") from None
    _log(f"serving metrics on http://{addr}:{port}/metrics")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    prober = Prober(timing, servers, keep_ports=True)
    try:
        await Watcher(prober, networks, interval, parallel, metrics, rate=rate).run(stop, duration)
    finally:
        await prober.close()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
        _log("stopped")


def run_watch(addr: str, port: int, *, interval: float, networks: list[str] | None, servers: list[str],
              timing: Timing, duration: float | None = None, parallel: int = 256, rate: float = 0.0) -> None:
    import os
    if os.geteuid() != 0:
        raise ProbeError("watching needs root (raw sockets, network namespaces)")
    asyncio.run(_main(addr, port, interval=interval, networks=networks, servers=servers, timing=timing,
                      duration=duration, parallel=parallel, rate=rate))
