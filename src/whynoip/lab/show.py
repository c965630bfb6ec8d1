"""Terminal views of a lab (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table


def print_status(st: dict) -> None:
    console = Console(emoji=False)
    console.print(f"[bold]lab {st['name']}[/] ({st['topology']}) in {st['dir']}")
    bus = st.get("bus") or {}
    if bus.get("kind") == "rabbitmq":
        state = f"pid {bus['pid']}" if bus.get("pid") else "[red]not running[/]"
        console.print(f"bus: RabbitMQ on 127.0.0.1:{bus['port']} ({state}), log {bus['log_file']}")
    t = Table("node", "role", "namespace", "underlay ip", title="nodes", title_justify="left")
    for n in st["nodes"]:
        t.add_row(n["name"], n["role"], n["namespace"], n["underlay_ip"])
    console.print(t)
    t = Table("network", "subnet", "dhcp server", "node", "pid", title="networks", title_justify="left")
    for net in st["networks"]:
        subnets = ", ".join(f"{s['cidr']}{'' if s['enable_dhcp'] else ' (no dhcp)'}" for s in net["subnets"])
        servers = net["dhcp_servers"] or [{"ip": "-", "node": "-", "pid": None}]
        for i, s in enumerate(servers):
            t.add_row(f"{net['name']} {net['id']}" if i == 0 else "", subnets if i == 0 else "", str(s["ip"]),
                      s["node"], str(s["pid"] or "-"))
    console.print(t)
    t = Table("guest", "node", "mac", "expected ip", "client", title="guests", title_justify="left")
    for g in st["guests"]:
        t.add_row(g["name"], g["node"], g["mac"], g["expected_ip"], g["client"])
    console.print(t)
    t = Table("agent", "host", "alive", title="agents", title_justify="left")
    for a in st["agents"]:
        t.add_row(a["agent_type"], a["host"], ":-)" if a["alive"] else "XXX")
    console.print(t)
