"""The API view of a cloud, read with openstacksdk and written as python-openstackclient
prints it with `-f json` (the files `whynoip lab collect` writes under `api/`, which the
openstack_cli parser reads): networks, subnets, ports, agents (and those hosting each
network), servers, compute services.

openstacksdk is an optional extra (`pip install 'whynoip[api]'`): measured here it brings
25 packages (83 MB) and takes ~0.55 s and ~47 MB to import, so it is imported only when
credentials exist (clouds.yaml or `OS_*` variables). Only list calls are made (one per
kind, one per network for its DHCP agents), so a large cloud costs a handful of requests;
`port show` files are written from the list's own records.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from whynoip.evidence.redact import redact

MAX_SHOW = 2000  # `show` files written per kind
MAX_HOSTING = 500  # networks asked for their DHCP agents


def _sos_name(command: str) -> str:
    from whynoip.live.collect import sos_name
    return sos_name(command)


def _get(obj, *names, default=None):
    for n in names:
        try:
            v = obj[n] if isinstance(obj, dict) else getattr(obj, n)
        except (KeyError, AttributeError):
            continue
        if v is not None:
            return v
    return default


def network_show(n) -> dict:
    return {
        "admin_state_up": _get(n, "is_admin_state_up", "admin_state_up", default=True),
        "availability_zones": list(_get(n, "availability_zones", default=[])),
        "id": n.id, "mtu": _get(n, "mtu"), "name": _get(n, "name", default=""),
        "port_security_enabled": _get(n, "is_port_security_enabled", default=True),
        "project_id": _get(n, "project_id"), "provider:network_type": _get(n, "provider_network_type"),
        "provider:physical_network": _get(n, "provider_physical_network"),
        "provider:segmentation_id": _get(n, "provider_segmentation_id"),
        "router:external": _get(n, "is_router_external", default=False), "shared": _get(n, "is_shared", default=False),
        "status": _get(n, "status"), "subnets": list(_get(n, "subnet_ids", default=[])),
        "created_at": _get(n, "created_at"), "updated_at": _get(n, "updated_at"),
    }


def subnet_show(s) -> dict:
    return {
        "allocation_pools": list(_get(s, "allocation_pools", default=[])), "cidr": _get(s, "cidr"),
        "dns_nameservers": list(_get(s, "dns_nameservers", default=[])),
        "enable_dhcp": _get(s, "is_dhcp_enabled", default=True), "gateway_ip": _get(s, "gateway_ip"),
        "host_routes": list(_get(s, "host_routes", default=[])), "id": s.id, "ip_version": _get(s, "ip_version"),
        "name": _get(s, "name", default=""), "network_id": _get(s, "network_id"),
        "project_id": _get(s, "project_id"), "created_at": _get(s, "created_at"),
        "updated_at": _get(s, "updated_at"),
    }


def port_show(p) -> dict:
    return {
        "admin_state_up": _get(p, "is_admin_state_up", default=True),
        "allowed_address_pairs": list(_get(p, "allowed_address_pairs", default=[])),
        "binding_host_id": _get(p, "binding_host_id", default=""),
        "binding_profile": dict(_get(p, "binding_profile", default={})),
        "binding_vif_details": dict(_get(p, "binding_vif_details", default={})),
        "binding_vif_type": _get(p, "binding_vif_type"), "binding_vnic_type": _get(p, "binding_vnic_type"),
        "created_at": _get(p, "created_at"), "device_id": _get(p, "device_id", default=""),
        "device_owner": _get(p, "device_owner", default=""),
        "extra_dhcp_opts": list(_get(p, "extra_dhcp_opts", default=[])),
        "fixed_ips": list(_get(p, "fixed_ips", default=[])), "id": p.id,
        "mac_address": _get(p, "mac_address"), "name": _get(p, "name", default=""),
        "network_id": _get(p, "network_id"), "port_security_enabled": _get(p, "is_port_security_enabled"),
        "project_id": _get(p, "project_id"), "security_group_ids": list(_get(p, "security_group_ids", default=[])),
        "status": _get(p, "status"), "updated_at": _get(p, "updated_at"),
    }


def agent_row(a) -> dict:
    return {"ID": a.id, "Agent Type": _get(a, "agent_type"), "Host": _get(a, "host"),
            "Availability Zone": _get(a, "availability_zone"), "Alive": _get(a, "is_alive", default=False),
            "State": _get(a, "is_admin_state_up", default=True), "Binary": _get(a, "binary")}


def agent_show(a) -> dict:
    return {"admin_state_up": _get(a, "is_admin_state_up", default=True), "agent_type": _get(a, "agent_type"),
            "alive": _get(a, "is_alive", default=False), "availability_zone": _get(a, "availability_zone"),
            "binary": _get(a, "binary"), "configuration": dict(_get(a, "configuration", default={})),
            "created_at": _get(a, "created_at"), "description": _get(a, "description"), "host": _get(a, "host"),
            "id": a.id, "last_heartbeat_at": _get(a, "last_heartbeat_at"), "name": _get(a, "name"),
            "resources_synced": _get(a, "resources_synced"), "started_at": _get(a, "started_at"),
            "topic": _get(a, "topic")}


def view(conn) -> dict[str, object]:
    """{command line: what `openstack <command> -f json` prints} for the cloud behind `conn`."""
    out: dict[str, object] = {}
    nets = list(conn.network.networks())
    subnets = list(conn.network.subnets())
    ports = list(conn.network.ports())
    out["openstack network list -f json"] = [
        {"ID": n.id, "Name": _get(n, "name", default=""), "Subnets": list(_get(n, "subnet_ids", default=[]))}
        for n in nets]
    for n in nets[:MAX_SHOW]:
        out[f"openstack network show {n.id} -f json"] = network_show(n)
    out["openstack subnet list -f json"] = [
        {"ID": s.id, "Name": _get(s, "name", default=""), "Network": _get(s, "network_id"), "Subnet": _get(s, "cidr")}
        for s in subnets]
    for s in subnets[:MAX_SHOW]:
        out[f"openstack subnet show {s.id} -f json"] = subnet_show(s)
    rows = [{"ID": p.id, "Name": _get(p, "name", default=""), "MAC Address": _get(p, "mac_address"),
             "Fixed IP Addresses": list(_get(p, "fixed_ips", default=[])), "Status": _get(p, "status")} for p in ports]
    out["openstack port list -f json"] = rows
    out["openstack port list --long -f json"] = [
        {**r, "Security Groups": list(_get(p, "security_group_ids", default=[])),
         "Device Owner": _get(p, "device_owner", default=""), "Tags": list(_get(p, "tags", default=[]))}
        for r, p in zip(rows, ports)]
    # the ports that matter for DHCP first: instances' and DHCP servers'
    wanted = [p for p in ports if (_get(p, "device_owner", default="") or "").startswith(("compute:", "network:dhcp"))]
    for p in wanted[:MAX_SHOW]:
        out[f"openstack port show {p.id} -f json"] = port_show(p)
    try:
        agents = list(conn.network.agents())
    except Exception as e:  # not an admin: no agents, the rest still helps
        agents = None
        out["#agents"] = str(e).splitlines()[0] if str(e) else type(e).__name__
    if agents is not None:
        out["openstack network agent list -f json"] = [agent_row(a) for a in agents]
        for a in agents[:MAX_SHOW]:  # the heartbeats, as `network agent show` gives them
            out[f"openstack network agent show {a.id} -f json"] = agent_show(a)
        dhcp_nets = {s.network_id for s in subnets if _get(s, "is_dhcp_enabled", default=True)}
        for n in [n for n in nets if n.id in dhcp_nets][:MAX_HOSTING]:
            try:
                hosting = list(conn.network.network_hosting_dhcp_agents(n))
            except Exception:
                continue
            out[f"openstack network agent list --network {n.id} -f json"] = [agent_row(a) for a in hosting]
    try:
        servers = list(conn.compute.servers(all_projects=True))
    except Exception:
        try:
            servers = list(conn.compute.servers())
        except Exception:
            servers = []
    out["openstack server list -f json"] = [
        {"ID": s.id, "Name": _get(s, "name", default=""), "Status": _get(s, "status"),
         "Networks": {net: [a.get("addr") for a in addrs if isinstance(a, dict)]
                      for net, addrs in (_get(s, "addresses", default={}) or {}).items()},
         "Image": (_get(s, "image", default={}) or {}).get("name") or (_get(s, "image", default={}) or {}).get("id", ""),
         "Flavor": (_get(s, "flavor", default={}) or {}).get("original_name")
         or (_get(s, "flavor", default={}) or {}).get("name", "")} for s in servers]
    try:
        services = list(conn.compute.services())
    except Exception:
        services = []
    if services:
        out["openstack compute service list -f json"] = [
            {"ID": s.id, "Binary": _get(s, "binary"), "Host": _get(s, "host"),
             "Zone": _get(s, "availability_zone"), "Status": _get(s, "status"), "State": _get(s, "state"),
             "Updated At": _get(s, "updated_at")} for s in services]
    return out


def connect(timeout: float):
    try:
        import openstack
    except ImportError:
        return None
    cloud = os.environ.get("OS_CLOUD")
    return openstack.connect(cloud=cloud, api_timeout=timeout) if cloud else openstack.connect(api_timeout=timeout)


def write(dest: Path, timeout: float = 20.0, conn=None) -> str:
    """Write the API view into `dest`; one line that says what was done."""
    try:
        conn = conn or connect(timeout)
    except Exception as e:
        return f"not collected: {_first_line(e)}"
    if conn is None:
        return "not collected: openstacksdk is not installed (pip install 'whynoip[api]')"
    try:
        files = view(conn)
    except Exception as e:
        return f"not collected: {_first_line(e)}"
    finally:
        try:
            conn.close()
        except Exception:
            pass
    dest.mkdir(parents=True, exist_ok=True)
    notes = [v for k, v in files.items() if k.startswith("#")]
    n = 0
    for command, obj in files.items():
        if command.startswith("#"):
            continue
        # masked as every other file of a bundle (a binding profile or a name may hold one)
        (dest / _sos_name(command)).write_text(redact(json.dumps(obj, indent=2, default=str)) + "\n")
        n += 1
    return f"{n} files" + (f" (agents not listed: {notes[0]})" if notes else "")


def _first_line(e: Exception) -> str:
    text = str(e).strip()
    text = re.sub(r"\s+", " ", text.splitlines()[0]) if text else type(e).__name__
    return redact(text)
