"""`whynoip collect` and `whynoip trace`: evidence from live nodes for the doctor."""

from __future__ import annotations

import sys

import click

from whynoip.live.node import DEFAULT_TIMEOUT

NODE_HELP = "Collect a node emulated on this machine: "


def _say(quiet: bool):
    return (lambda s: None) if quiet else (lambda s: click.echo(s, err=True))


def node_view_options(f):
    """--netns/--root/--ovs-rundir/--hostname: how to see the node (a lab node as a real one)."""
    for opt in reversed([
        click.option("--netns", default=None, metavar="NS",
                     help="The node is network namespace NS of this machine: commands run inside it, and "
                          "namespaces named NS-<name> are its own (shown as <name>, e.g. qdhcp-<net>)."),
        click.option("--root", default="/", show_default=True, metavar="DIR",
                     help="The node's file system (as sosreport's --sysroot); paths under DIR are shown as the "
                          "node sees them."),
        click.option("--ovs-rundir", default=None, metavar="DIR",
                     help="The node's Open vSwitch run directory (OVS_RUNDIR); default DIR/run/openvswitch "
                          "under --root when it holds db.sock."),
        click.option("--hostname", "node_name", default=None, help="The node's name (default: what it says)."),
    ]):
        f = opt(f)
    return f


def ssh_options(f):
    for opt in reversed([
        click.option("--ssh", "ssh_targets", multiple=True, metavar="[USER@]HOST[:PORT]",
                     help="Collect this host over SSH (repeatable)."),
        click.option("--inventory", default=None, metavar="FILE",
                     help="Collect every host of an Ansible inventory (INI or YAML) or a list of hosts."),
        click.option("--identity", "-i", multiple=True, metavar="KEY", help="SSH private key (repeatable)."),
        click.option("--known-hosts", default=None, metavar="FILE",
                     help="Known hosts file to check host keys against (default ~/.ssh/known_hosts)."),
        click.option("--user", "-l", default=None, help="SSH user when a target names none."),
        click.option("--sudo", is_flag=True, help="Run the node's commands with `sudo -n` (a non-root SSH user)."),
        click.option("--concurrency", default=8, show_default=True, type=click.IntRange(1, 256),
                     help="Nodes collected at once."),
    ]):
        f = opt(f)
    return f


def _targets(netns, root, ovs_rundir, node_name, ssh_targets, inventory, sudo, local: bool | None):
    from whynoip.live.collect import NodeView, read_inventory
    from whynoip.live.node import LocalNode, SshTarget

    remote = [SshTarget.parse(t) for t in ssh_targets]
    if inventory:
        remote += read_inventory(inventory)
    targets = []
    if local or (local is None and not remote):
        targets.append((LocalNode(sudo=sudo), NodeView(netns, root, ovs_rundir, node_name)))
    for t in remote:
        targets.append((t, NodeView.from_vars(t.vars, NodeView(netns, root, ovs_rundir))))
    return targets


@click.command()
@click.option("-o", "--output", default=None, metavar="FILE|DIR|-",
              help="A .tar.gz (default whynoip-collect-<time>.tar.gz), a directory (nodes are added to it), "
                   "or - for a .tar.gz on stdout.")
@ssh_options
@click.option("--local/--no-local", default=None,
              help="Also collect this machine (the default when no --ssh/--inventory is given).")
@node_view_options
@click.option("--timeout", default=DEFAULT_TIMEOUT, show_default=True, type=float, help="Seconds each command may take.")
@click.option("--log-limit", default=5 * 1024 * 1024, show_default=True, type=int, help="Bytes kept of each log (its end).")
@click.option("--api/--no-api", default=None,
              help="The API view through openstacksdk (default: when clouds.yaml or OS_* credentials exist).")
@click.option("-q", "--quiet", is_flag=True)
def collect(output, ssh_targets, inventory, identity, known_hosts, user, sudo, concurrency, local, netns, root,
            ovs_rundir, node_name, timeout, log_limit, api, quiet) -> None:
    """Gather what the doctor reads from live nodes, as sosreport does: commands and files
    per node (namespaces, dnsmasq, Open vSwitch, iptables, logs, configuration), secrets
    masked, every command bounded in time, nothing changed. Then: whynoip diagnose BUNDLE."""
    from whynoip.live.collect import collect as run_collect
    from whynoip.live.node import SshOptions

    targets = _targets(netns, root, ovs_rundir, node_name, ssh_targets, inventory, sudo, local)
    if not targets:
        raise click.UsageError("nothing to collect (--no-local and no --ssh/--inventory)")
    if output == "-" and sys.stdout.isatty():
        raise click.UsageError("-o -: stdout is a terminal; redirect it to a file")
    ssh = SshOptions(identity=list(identity) or None, known_hosts=known_hosts, user=user, sudo=sudo,
                     connect_timeout=min(timeout, 30))
    res = run_collect(targets, output, concurrency=concurrency, timeout=timeout, log_limit=log_limit, ssh=ssh,
                      api=api, progress=_say(quiet))
    if output != "-":
        click.echo(str(res.out))
    if res.failed:
        click.echo(f"whynoip collect: {len(res.failed)} of {len(res.nodes)} nodes not collected", err=True)
        sys.exit(1)


def live_bundle(timeout: float = DEFAULT_TIMEOUT):
    """Collect this machine into a new directory under the temporary directory (for
    `diagnose --live`); it is kept, so that the report's citations can be opened."""
    import tempfile
    from datetime import datetime
    from pathlib import Path

    from whynoip.live.collect import NodeView, collect as run_collect
    from whynoip.live.node import LocalNode

    out = Path(tempfile.mkdtemp(prefix=f"whynoip-live-{datetime.now().strftime('%Y%m%d-%H%M%S')}-"))
    run_collect([(LocalNode(), NodeView())], str(out), timeout=timeout)
    click.echo(f"whynoip: collected this machine into {out}", err=True)
    return out




@click.command()
@click.option("--port", default=None, help="The port's id (at least its first 11 characters).")
@click.option("--guest", default=None, help="The instance's name (on a lab).")
@click.option("--name", "lab_name", default=None, help="Trace on this lab (its guests, hops and capture runner).")
@click.option("--wait", type=float, default=None,
              help="Capture this many seconds and let the instance try by itself (the default on real nodes: 30); "
                   "on a lab without it, the guest's DHCP client is run.")
@click.option("-o", "--output", default=None, metavar="DIR",
              help="Where captures and node state go (default: ./whynoip-trace-<time>).")
@ssh_options
@click.option("--local/--no-local", default=None, help="Also trace on this machine (the default without --ssh).")
@node_view_options
@click.option("--network", default=None, metavar="ID",
              help="On real nodes: capture only in this network's qdhcp namespace (its id or first characters).")
@click.option("--no-collect", is_flag=True, help="Captures only: do not collect the nodes' state for the doctor.")
@click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def trace(port, guest, lab_name, wait, output, ssh_targets, inventory, identity, known_hosts, user, sudo,
          concurrency, local, netns, root, ovs_rundir, node_name, network, no_collect, fmt, quiet) -> None:
    """Follow one port's DHCP exchange hop by hop: capture on every hop of its path at once,
    trigger (on a lab) or await (--wait) an attempt, say which of DISCOVER/OFFER/REQUEST/ACK
    each hop saw and where the request or the reply disappears, then hand it all to the doctor."""
    from datetime import datetime
    from pathlib import Path

    from whynoip.live import trace as tr
    from whynoip.live.node import SshOptions

    if bool(port) == bool(guest):
        raise click.UsageError("give one of --port ID or --guest NAME")
    if guest and not lab_name:
        raise click.UsageError("--guest names a lab instance: add --name LAB (on real nodes use --port ID)")
    out = Path(output or f"whynoip-trace-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    if out.exists() and any(out.iterdir()):
        raise click.UsageError(f"{out} exists and is not empty")
    out.mkdir(parents=True, exist_ok=True)
    say = _say(quiet)  # progress on stderr: stdout holds the report
    if lab_name:
        t = tr.lab_trace(lab_name, out, guest=guest, port=port, wait=wait, collect=not no_collect, progress=say)
    else:
        targets = _targets(netns, root, ovs_rundir, node_name, ssh_targets, inventory, sudo, local)
        ssh = SshOptions(identity=list(identity) or None, known_hosts=known_hosts, user=user, sudo=sudo)
        t = tr.node_trace(port, out, targets, wait if wait is not None else 30.0, ssh=ssh,
                          collect=not no_collect, progress=say, network=network)
    if not no_collect:
        tr.diagnose(t)
    if fmt == "json":
        import json
        click.echo(json.dumps(t.to_dict(), indent=2))
    else:
        tr.render(t)
    d = t.diagnosis
    sys.exit(1 if d is not None and any(f.root_cause and f.severity == "critical" for f in d.findings) else 0)


def register(cli: click.Group) -> None:
    cli.add_command(collect)
    cli.add_command(trace)
