"""What Neutron's DHCP agent writes for dnsmasq, in Neutron's exact formats, and the
dnsmasq command line it starts (neutron/agent/linux/dhcp.py, current releases)."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path

from whynoip.lab.controlplane import Network, Port, Subnet

DOMAIN = "openstacklocal"
METADATA_IP = "169.254.169.254"


def hostname(ip: str) -> str:
    return "host-" + ip.replace(".", "-").replace(":", "-")


def host_file(ports: list[Port], dhcp_subnets: set[str]) -> str:
    return "".join(f"{p.mac},{hostname(p.ip)}.{DOMAIN},{p.ip}\n" for p in ports if p.subnet_id in dhcp_subnets)


def addn_hosts_file(ports: list[Port], dhcp_subnets: set[str]) -> str:
    return "".join(f"{p.ip}\t{hostname(p.ip)}.{DOMAIN} {hostname(p.ip)}\n"
                   for p in ports if p.subnet_id in dhcp_subnets)


def opts_file(subnets: list[Subnet], dhcp_port_ip: str | None) -> str:
    lines = []
    for s in subnets:
        if not s.enable_dhcp:
            continue
        tag = f"tag:subnet-{s.id}"
        if s.dns:
            lines.append(f"{tag},option:dns-server,{','.join(s.dns)}")
        routes = [f"{d},{n}" for d, n in s.host_routes]
        if dhcp_port_ip:
            routes.insert(0, f"{METADATA_IP}/32,{dhcp_port_ip}")
        if s.gateway_ip:
            routes.append(f"0.0.0.0/0,{s.gateway_ip}")
        if routes:
            lines.append(f"{tag},option:classless-static-route,{','.join(routes)}")
            lines.append(f"{tag},249,{','.join(routes)}")
        if s.gateway_ip:
            lines.append(f"{tag},option:router,{s.gateway_ip}")
        else:
            lines.append(f"{tag},option:router")
    return "".join(line + "\n" for line in lines)


def init_leases_file(ports: list[Port], dhcp_subnets: set[str], lease_seconds: int) -> str:
    expiry = int(time.time()) + lease_seconds
    return "".join(f"{expiry} {p.mac} {p.ip} * *\n" for p in ports if p.subnet_id in dhcp_subnets)


def dhcp_range(subnet: Subnet, lease_seconds: int) -> str:
    net = ipaddress.ip_network(subnet.cidr)
    return f"--dhcp-range=set:subnet-{subnet.id},{net.network_address},static,{net.netmask},{lease_seconds}s"


def command(net: Network, subnets: list[Subnet], conf_dir: Path, interface: str, log_file: Path,
            lease_seconds: int, lease_max: int | None = None) -> list[str]:
    if lease_max is None:  # Neutron: min(addresses in the DHCP subnets, dnsmasq_lease_max = 2**24)
        lease_max = min(sum(ipaddress.ip_network(s.cidr).num_addresses for s in subnets if s.enable_dhcp)
                        or 1, 2 ** 24)
    cmd = [
        "dnsmasq", "--no-hosts", "--no-resolv",
        f"--pid-file={conf_dir}/pid",
        f"--dhcp-hostsfile={conf_dir}/host",
        f"--addn-hosts={conf_dir}/addn_hosts",
        f"--dhcp-optsfile={conf_dir}/opts",
        f"--dhcp-leasefile={conf_dir}/leases",
        "--dhcp-match=set:ipxe,175",
        "--dhcp-userclass=set:ipxe6,iPXE",
        "--local-service",
        "--bind-dynamic",
        f"--interface={interface}",
    ]
    cmd += [dhcp_range(s, lease_seconds) for s in subnets if s.enable_dhcp]
    cmd += [
        f"--dhcp-option-force=option:mtu,{net.mtu}",
        f"--dhcp-lease-max={lease_max}",
        "--conf-file=/dev/null",
        f"--domain={DOMAIN}",
        f"--log-facility={log_file}",
        "--log-queries",
        "--log-dhcp",
    ]
    return cmd
