"""Neutron's hybrid iptables firewall (OVSHybridIptablesFirewallDriver) for a compute node.

Per port: an ingress chain `neutron-openvswi-i<port[:10]>`, an egress chain `-o<port[:10]>`
and an anti-spoofing chain `-s<port[:10]>`, reached from FORWARD through `-m physdev` on
the port's tap device, with Neutron's rule texts and comments (DHCP allowed out 68->67,
"Prevent DHCP Spoofing by VM", replies 67->68 allowed in, sg-fallback drop)."""

from __future__ import annotations

from whynoip.lab.paths import device

P = "neutron-openvswi"


def chain(kind: str, port_id: str) -> str:
    return f"{P}-{kind}{port_id[:10]}"


def filter_table(ports: list[tuple[str, str, str]]) -> str:
    """The whole `*filter` table (iptables-restore input) for [(port_id, mac, ip)]."""
    chains = ["neutron-filter-top", f"{P}-FORWARD", f"{P}-INPUT", f"{P}-OUTPUT", f"{P}-local",
              f"{P}-sg-chain", f"{P}-sg-fallback"]
    for pid, _, _ in ports:
        chains += [chain("i", pid), chain("o", pid), chain("s", pid)]
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    lines += [f":{c} - [0:0]" for c in chains]
    lines += [
        f"-A INPUT -j {P}-INPUT",
        "-A FORWARD -j neutron-filter-top",
        f"-A FORWARD -j {P}-FORWARD",
        "-A OUTPUT -j neutron-filter-top",
        f"-A OUTPUT -j {P}-OUTPUT",
        f"-A neutron-filter-top -j {P}-local",
    ]
    for pid, _, _ in ports:
        tap = device("tap", pid)
        lines += [
            f'-A {P}-FORWARD -m physdev --physdev-out {tap} --physdev-is-bridged -m comment --comment '
            f'"Direct traffic from the VM interface to the security group chain." -j {P}-sg-chain',
            f'-A {P}-FORWARD -m physdev --physdev-in {tap} --physdev-is-bridged -m comment --comment '
            f'"Direct traffic from the VM interface to the security group chain." -j {P}-sg-chain',
            f'-A {P}-INPUT -m physdev --physdev-in {tap} --physdev-is-bridged -m comment --comment '
            f'"Direct incoming traffic from VM to the security group chain." -j {chain("o", pid)}',
        ]
    for pid, mac, ip in ports:
        i, o, s = chain("i", pid), chain("o", pid), chain("s", pid)
        lines += [
            f'-A {i} -m state --state RELATED,ESTABLISHED -m comment --comment '
            f'"Direct packets associated with a known session to the RETURN chain." -j RETURN',
            f"-A {i} -d {ip}/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
            f"-A {i} -d 255.255.255.255/32 -p udp -m udp --sport 67 --dport 68 -j RETURN",
            f'-A {i} -m state --state INVALID -m comment --comment "Drop packets that appear related to an '
            f'existing connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack." -j DROP',
            f'-A {i} -m comment --comment "Send unmatched traffic to the fallback chain." -j {P}-sg-fallback',
            f'-A {o} -s 0.0.0.0/32 -d 255.255.255.255/32 -p udp -m udp --sport 68 --dport 67 -m comment '
            f'--comment "Allow DHCP client traffic." -j RETURN',
            f"-A {o} -j {s}",
            f'-A {o} -p udp -m udp --sport 68 --dport 67 -m comment --comment "Allow DHCP client traffic." -j RETURN',
            f'-A {o} -p udp -m udp --sport 67 --dport 68 -m comment --comment "Prevent DHCP Spoofing by VM." -j DROP',
            f'-A {o} -m state --state RELATED,ESTABLISHED -m comment --comment '
            f'"Direct packets associated with a known session to the RETURN chain." -j RETURN',
            f"-A {o} -j RETURN",
            f'-A {o} -m state --state INVALID -m comment --comment "Drop packets that appear related to an '
            f'existing connection (e.g. TCP ACK/FIN) but do not have an entry in conntrack." -j DROP',
            f'-A {o} -m comment --comment "Send unmatched traffic to the fallback chain." -j {P}-sg-fallback',
            f'-A {s} -s {ip}/32 -m mac --mac-source {mac.upper()} -m comment --comment '
            f'"Allow traffic from defined IP/MAC pairs." -j RETURN',
            f'-A {s} -m comment --comment "Drop traffic without an IP/MAC allow rule." -j DROP',
        ]
    for pid, _, _ in ports:
        tap = device("tap", pid)
        lines += [
            f'-A {P}-sg-chain -m physdev --physdev-out {tap} --physdev-is-bridged -m comment --comment '
            f'"Jump to the VM specific chain." -j {chain("i", pid)}',
            f'-A {P}-sg-chain -m physdev --physdev-in {tap} --physdev-is-bridged -m comment --comment '
            f'"Jump to the VM specific chain." -j {chain("o", pid)}',
        ]
    lines += [f"-A {P}-sg-chain -j ACCEPT",
              f'-A {P}-sg-fallback -m comment --comment "Default drop rule for unmatched traffic." -j DROP',
              "COMMIT"]
    return "\n".join(lines) + "\n"
