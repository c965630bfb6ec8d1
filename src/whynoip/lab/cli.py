"""`whynoip lab ...`: build, break, inspect and export the lab."""

from __future__ import annotations

import json

import click

from whynoip.lab.lab import Lab, all_labs

name_option = click.option("--name", default="lab", show_default=True, help="Which lab (several can coexist).")
format_option = click.option("-f", "--format", "fmt", type=click.Choice(["text", "json"]), default="text",
                             show_default=True)


def _echo_json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, sort_keys=False))


@click.group()
def lab() -> None:
    """A working miniature of Neutron's DHCP system, from real parts, with faults on demand."""


@lab.command()
@click.option("--topology", default="default", show_default=True, help="default, ha, or a YAML file.")
@click.option("--bus", "bus_kind", type=click.Choice(["embedded", "rabbitmq"]), default="embedded", show_default=True,
              help="How the API side reaches the agents: embedded casts, or a private RabbitMQ (starts in ~5 s; "
                   "the control-plane faults need it).")
@name_option
def up(topology: str, bus_kind: str, name: str) -> None:
    """Build a lab: nodes, Open vSwitch, VXLAN, DHCP agents, dnsmasq, guests."""
    seconds = Lab(name).up(topology, bus_kind)
    st = Lab(name).status()
    via = f", RabbitMQ on 127.0.0.1:{st['bus']['port']}" if st["bus"]["kind"] == "rabbitmq" else ""
    click.echo(f"lab {name} up in {seconds:.2f}s: {len(st['nodes'])} nodes, {len(st['networks'])} networks, "
               f"{len(st['guests'])} guests{via}")


@lab.command()
@name_option
@click.option("--all", "all_", is_flag=True, help="Every lab on this machine.")
def down(name: str, all_: bool) -> None:
    """Remove everything a lab created (also after a crash)."""
    for n in (all_labs() if all_ else [name]):
        seconds = Lab(n).down()
        click.echo(f"lab {n} down in {seconds:.2f}s")


@lab.command()
@name_option
@format_option
def status(name: str, fmt: str) -> None:
    """Nodes, networks, DHCP servers and guests of a lab."""
    st = Lab(name).status()
    if fmt == "json":
        _echo_json(st)
        return
    from whynoip.lab.show import print_status
    print_status(st)


@lab.command()
@click.argument("guest")
@name_option
@format_option
@click.option("--no-capture", is_flag=True, help="Do not capture on the hops of the guest's path.")
def dhcp(guest: str, name: str, fmt: str, no_capture: bool) -> None:
    """One DHCP attempt from a guest, with its real DHCP client."""
    a = Lab(name).dhcp(guest, capture=not no_capture)
    result = {"guest": a.guest, "ok": a.ok, "ip": a.ip, "server_id": a.server_id, "seconds": a.seconds}
    if fmt == "json":
        _echo_json(result)
    else:
        verdict = f"got {a.ip} from {a.server_id}" if a.ok else "got no IP"
        click.echo(f"{guest}: {verdict} in {a.seconds:.2f}s")
    if not a.ok:
        raise SystemExit(1)


@lab.group()
def guest() -> None:
    """Guests (instances) of a lab."""


@guest.command("add")
@click.argument("guest_name")
@click.option("--network", default=None, help="Network id or name (default: the first).")
@click.option("--node", default=None, help="Compute node (default: round robin).")
@click.option("--client", type=click.Choice(["udhcpc", "dhclient"]), default="udhcpc", show_default=True)
@name_option
def guest_add(guest_name: str, network: str | None, node: str | None, client: str, name: str) -> None:
    """Create a port through the control plane and plug a guest on it."""
    g = Lab(name).add_guest(guest_name, network, node, client)
    click.echo(f"guest {g['name']} on port {g['port_id']}")


@lab.group()
def port() -> None:
    """Ports, through the lab's control plane (API -> agent -> host file)."""


@port.command("create")
@click.option("--network", default=None, help="Network id or name (default: the first).")
@click.option("--host", "binding_host", default="", help="binding:host_id")
@name_option
@format_option
def port_create(network: str | None, binding_host: str, name: str, fmt: str) -> None:
    lab_ = Lab(name)
    net = lab_.cp.network(network) if network else lab_.cp.networks()[0]
    p = lab_.cp.create_port(net.id, binding_host=binding_host)
    if fmt == "json":
        _echo_json({"id": p.id, "network_id": p.network_id, "mac": p.mac, "ip": p.ip})
    else:
        click.echo(f"port {p.id} {p.mac} {p.ip}")


@port.command("delete")
@click.argument("port_id")
@name_option
def port_delete(port_id: str, name: str) -> None:
    Lab(name).cp.delete_port(port_id)
    click.echo(f"port {port_id} deleted")


@lab.command()
@name_option
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=True, dir_okay=True),
              help="Directory to write (must not exist or be empty); with --tar, the .tar.gz file.")
@click.option("--tar", "as_tar", is_flag=True, help="Write one .tar.gz instead of a directory.")
def collect(name: str, output: str, as_tar: bool) -> None:
    """The evidence an operator would have: per node a sosreport-like tree, the API view,
    console logs and the captures of each guest's last DHCP attempt."""
    import time as _time
    from pathlib import Path as _Path

    from whynoip.lab.collect import collect as _collect, collect_tar as _collect_tar

    start = _time.monotonic()
    lab_ = Lab(name)
    where = _collect_tar(lab_, _Path(output)) if as_tar else _collect(lab_, _Path(output))
    click.echo(f"lab {name} collected in {_time.monotonic() - start:.2f}s: {where}")


def _fault_epilog() -> str:
    from whynoip.lab.faults import help_text
    # "\b" keeps click from re-wrapping the table
    table, targets = help_text().split("\n\n", 1)
    return f"Fault ids (the doctor's finding ids):\n\n\b\n{table}\n\n\b\n{targets}"


@lab.command(epilog=_fault_epilog())
@click.argument("fault_id", metavar="FAULT_ID")
@click.option("--target", default=None, metavar="TARGET",
              help="What to break: a guest, a DHCP server, a network or a node, as the fault says below.")
@click.option("--variant", default=None, help="How to break it, for faults that have several ways (below).")
@name_option
@format_option
def fault(fault_id: str, target: str | None, variant: str | None, name: str, fmt: str) -> None:
    """Break the lab the way the field breaks: FAULT_ID is a finding id.

    The fault is done to the real parts (processes, files, OVS, iptables, MTUs, the
    control plane) and recorded only in the lab's faults.json; faults stack, and
    `whynoip lab heal` undoes them all."""
    from whynoip.lab import faults

    record = faults.inject(Lab(name), fault_id, target, variant)
    if fmt == "json":
        _echo_json(record)
    else:
        how = f" ({record['variant']})" if record["variant"] else ""
        click.echo(f"{record['id']}{how} on {record['target']}")


@lab.command()
@name_option
@format_option
def heal(name: str, fmt: str) -> None:
    """Undo every fault injected into the lab, newest first."""
    from whynoip.lab import faults

    healed = faults.heal(Lab(name))
    if fmt == "json":
        _echo_json(healed)
        return
    for record in healed:
        how = f" ({record['variant']})" if record["variant"] else ""
        click.echo(f"healed {record['id']}{how} on {record['target']}")
    if not healed:
        click.echo("no fault to heal")
