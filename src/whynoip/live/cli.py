"""`whynoip probe` and `whynoip watch`: ask the DHCP servers of this node's networks
whether they answer, once or on a schedule with Prometheus metrics."""

from __future__ import annotations

import sys

import click

format_option = click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                             show_default=True)


def _echo_json(results) -> None:
    import msgspec

    from whynoip.live.probe import report_object
    click.echo(msgspec.json.format(msgspec.json.encode(report_object(results)).decode(), indent=2))


def _echo_text(results) -> None:
    from whynoip.live.probe import SENT
    for r in results:
        click.echo(f"network {r.network or '?'}  ({r.seconds:.2f} s)")
        for v in r.vantages:
            click.echo(f"  from {v.host + ' ' if v.host else ''}{v.namespace} {v.interface} "
                       f"(MAC {v.mac}{', ' + v.ip if v.ip else ''}, {v.kind})")
        for s in r.servers:
            latency = f"{s.latency_ms:.1f} ms" if s.latency_ms is not None else "-"
            got = []
            for e in s.exchanges:
                if e.reply:
                    got.append(f"{SENT[e.kind]}->{e.reply}" + (f" ({e.message})" if e.message else ""))
                elif e.sent:
                    got.append(f"{SENT[e.kind]}->none (sent {e.sent}x)")
            who = "" if s.known else "  [not a known DHCP port]"
            click.echo(f"  {s.server:<15} {s.verdict:<8} {latency:>9}  {', '.join(got)}{who}")
            if s.offered and s.offered.ip:
                o = s.offered
                bits = [f"offers {o.ip}/{o.subnet_mask or '?'}"]
                if o.routers:
                    bits.append("router " + ",".join(o.routers))
                if o.dns_servers:
                    bits.append("dns " + ",".join(o.dns_servers))
                if o.mtu:
                    bits.append(f"mtu {o.mtu}")
                if o.lease_time:
                    bits.append(f"lease {o.lease_time}s")
                click.echo(f"  {'':<15} {'; '.join(bits)}")
        for note in r.notes:
            click.echo(f"  note: {note}")
        for f in r.findings:
            tag = "root cause" if f.root_cause else f"caused by {', '.join(f.caused_by)}"
            click.echo(f"  [{f.severity}] {f.id}: {f.title} ({tag})")
            for e in f.evidence[:4]:
                click.echo(f"      {e.text}")
            for fix in f.fix:
                click.echo(f"      fix: {fix}")


def _timing(timeout: float):
    from whynoip.live.probe import Timing
    if timeout <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--timeout")
    return Timing(timeout=timeout)


@click.command()
@click.option("--network", "networks", multiple=True, metavar="ID",
              help="Network id (or its first 8+ characters); repeat for several. Default: every network "
                   "with a qdhcp namespace on this node.")
@click.option("--namespace", default=None, metavar="NS", help="Probe from this namespace (with --interface).")
@click.option("--interface", default=None, metavar="IF", help="The interface in --namespace to send from.")
@click.option("--server", "servers", multiple=True, metavar="IP",
              help="A DHCP server address of the network (its other agents' ports); repeat for several.")
@click.option("--mac", default=None, metavar="MAC",
              help="Probe from a probe port with this MAC (a port made for probing).")
@click.option("--ip", default=None, metavar="IP", help="With --mac: the port's fixed IP, for the renewal and the INFORM.")
@click.option("--timeout", type=float, default=10.0, show_default=True,
              help="Seconds for a network's exchanges (plugging a probe port, when needed, comes before).")
@click.option("--parallel", type=int, default=256, show_default=True, help="Networks probed at once.")
@click.option("--rate", type=float, default=0.0, show_default=True,
              help="Networks started per second, to spread the load on a busy node (0: all at once).")
@format_option
def probe(networks, namespace, interface, servers, mac, ip, timeout, parallel, rate, fmt) -> None:
    """Does each DHCP server of the network answer? DISCOVER, REQUEST, a unicast renewal
    and an INFORM to each, from a namespace on the segment (another DHCP agent's, or a
    probe port plugged into br-int and removed afterwards).

    Exit status: 0 when every known server answers, 1 when a critical finding was made,
    2 on bad input."""
    from whynoip.live.probe import probe as run_probe

    if ip and not mac:
        raise click.BadParameter("--ip goes with --mac", param_hint="--ip")
    results = run_probe(list(networks) or None, namespace=namespace, interface=interface, servers=list(servers),
                        mac=mac, ip=ip, timing=_timing(timeout), parallel=parallel, rate=rate)
    if fmt == "json":
        _echo_json(results)
    else:
        _echo_text(results)
    if any(f.severity == "critical" for r in results for f in r.findings):
        sys.exit(1)


@click.command()
@click.option("--interval", type=float, default=10.0, show_default=True, help="Seconds between probe rounds.")
@click.option("--listen", default="127.0.0.1:9465", show_default=True, metavar="ADDR:PORT",
              help="Where to serve /metrics.")
@click.option("--network", "networks", multiple=True, metavar="ID",
              help="Network id; repeat for several. Default: every network with a qdhcp namespace here, "
                   "looked up again each round.")
@click.option("--server", "servers", multiple=True, metavar="IP", help="Known DHCP server addresses (see probe).")
@click.option("--timeout", type=float, default=None, help="Seconds for one round [default: the interval, at most 10].")
@click.option("--duration", type=float, default=None, help="Stop after this many seconds (default: run until stopped).")
@click.option("--parallel", type=int, default=256, show_default=True, help="Networks probed at once.")
@click.option("--rate", type=float, default=0.0, show_default=True, help="Networks started per second (see probe).")
def watch(interval, listen, networks, servers, timeout, duration, parallel, rate) -> None:
    """Probe every network on this node every --interval seconds and serve Prometheus
    metrics: whynoip_dhcp_server_up{network,server}, reply latencies, findings by id.
    Each change of a server's state is logged on stderr, one line."""
    from whynoip.live.watch import parse_listen, run_watch

    if interval <= 0:
        raise click.BadParameter("must be more than 0", param_hint="--interval")
    addr, port = parse_listen(listen)
    timing = _timing(timeout if timeout is not None else min(interval, 10.0))
    run_watch(addr, port, interval=interval, networks=list(networks) or None, servers=list(servers),
              timing=timing, duration=duration, parallel=parallel, rate=rate)
