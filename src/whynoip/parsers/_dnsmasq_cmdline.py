"""A dnsmasq command line, read the way dnsmasq reads it, into the fields of DnsmasqProcess.

The process list is where an operator first sees which DHCP servers a host runs and how:
which files each dnsmasq reads (Neutron keeps them under
`/var/lib/neutron/dhcp/<network-id>/`, Grizzly-era Quantum under `/var/lib/quantum/dhcp/`),
whether it logs DHCP (`--log-dhcp`, `--log-facility`), its lease limit, its ranges and
how it binds. Neutron writes `--opt=value`; libvirt and LXD also write `--opt value` and
short options (`-s lxd`, `-u lxd`), so options known to take a value consume the next
argument when they have no `=`. A dnsmasq without a Neutron path (LXD's `lxdbr0`,
libvirt's `virbr0`) has no network id: it is a DHCP server all the same.

Current Neutron (sample from neutron/agent/linux/dhcp.py, as run by the capture script):

    dnsmasq --no-hosts --no-resolv --pid-file=/var/lib/neutron/dhcp/<net>/pid
      --dhcp-hostsfile=/var/lib/neutron/dhcp/<net>/host --addn-hosts=.../addn_hosts
      --dhcp-optsfile=.../opts --dhcp-leasefile=.../leases --dhcp-match=set:ipxe,175
      --dhcp-userclass=set:ipxe6,iPXE --local-service --bind-dynamic
      --dhcp-range=set:subnet-<id>,10.8.1.0,static,255.255.255.0,86400s
      --dhcp-option-force=option:mtu,1450 --dhcp-lease-max=512 --conf-file=/dev/null
      --domain=openstacklocal

Grizzly/Havana: `--bind-interfaces --interface=tapX --except-interface=lo
--dhcp-range=set:tag0,10.8.1.0,static,120s --leasefile-ro --dhcp-script=...`.
"""

from __future__ import annotations

import re

NETWORK_PATH_RE = re.compile(
    r"/(?:neutron|quantum)/dhcp/(?P<net>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})(?:/|$)",
    re.I)
ANY_DHCP_PATH_RE = re.compile(
    r"/dhcp/(?P<net>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/", re.I)

# short option -> long name (dnsmasq's option table, for the ones that matter here)
SHORT = {
    "i": "interface", "I": "except-interface", "a": "listen-address", "x": "pid-file",
    "l": "dhcp-leasefile", "C": "conf-file", "8": "log-facility", "X": "dhcp-lease-max",
    "F": "dhcp-range", "z": "bind-interfaces", "K": "dhcp-authoritative", "k": "keep-in-foreground",
    "s": "domain", "S": "server", "u": "user", "g": "group", "H": "addn-hosts", "O": "dhcp-option",
    "G": "dhcp-host", "6": "dhcp-script", "p": "port", "c": "cache-size", "q": "log-queries",
    "d": "no-daemon", "h": "no-hosts", "R": "no-resolv", "o": "strict-order", "2": "no-dhcp-interface",
}
# options whose value may be the next argument (required argument in dnsmasq's table)
TAKES_VALUE = {
    "interface", "except-interface", "listen-address", "pid-file", "dhcp-leasefile",
    "dhcp-hostsfile", "dhcp-optsfile", "addn-hosts", "log-facility", "dhcp-lease-max",
    "dhcp-range", "domain", "server", "local", "user", "group", "dhcp-option",
    "dhcp-option-force", "dhcp-host", "dhcp-match", "dhcp-userclass", "dhcp-vendorclass",
    "dhcp-script", "port", "cache-size", "interface-name", "bridge-interface", "dhcp-boot",
    "dhcp-hostsdir", "dhcp-optsdir", "hostsdir", "no-dhcp-interface", "address", "dhcp-mac",
    "dhcp-name-match", "dhcp-ignore", "tag-if", "dhcp-relay", "resolv-file", "dhcp-leasefile",
    "auth-zone", "auth-server", "ra-param", "dhcp-duid", "host-record", "cname", "srv-host",
}


def network_id_from_path(path: str | None) -> str | None:
    """The Neutron network id of a path under `.../dhcp/<uuid>/` (also below a sosreport
    root), or None."""
    if not path:
        return None
    m = NETWORK_PATH_RE.search(path) or ANY_DHCP_PATH_RE.search(path)
    return m["net"].lower() if m else None


def _options(argv: list[str]) -> list[tuple[str, str | None]]:
    """(long option name, value or None) for every option, in order; non-options are
    returned with the name ''."""
    out: list[tuple[str, str | None]] = []
    i = 1
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg.startswith("--") and len(arg) > 2:
            name, eq, value = arg[2:].partition("=")
            if not eq:
                value = None
                if name in TAKES_VALUE and i < len(argv) and not argv[i].startswith("-"):
                    value = argv[i]
                    i += 1
            out.append((name, value))
        elif arg.startswith("-") and len(arg) >= 2 and arg[1] in SHORT:
            name = SHORT[arg[1]]
            value = arg[2:] or None
            if value is None and name in TAKES_VALUE and i < len(argv) and not argv[i].startswith("-"):
                value = argv[i]
                i += 1
            out.append((name, value))
        else:
            out.append(("", arg))
    return out


def parse_cmdline(argv: list[str]) -> dict:
    """The DnsmasqProcess fields a dnsmasq command line gives (pid, user, state are the
    caller's). `argv[0]` is the program; `flags` keeps every argument after it."""
    fields: dict = {"flags": list(argv[1:]), "dhcp_ranges": [], "log_dhcp": False}
    interfaces: list[str] = []
    for name, value in _options(argv):
        if name == "interface" and value:
            interfaces.append(value)
        elif name == "pid-file":
            fields["pid_file"] = value or None
        elif name == "dhcp-hostsfile":
            fields["hosts_file"] = value
        elif name == "addn-hosts":
            fields["addn_hosts_file"] = value
        elif name == "dhcp-optsfile":
            fields["opts_file"] = value
        elif name == "dhcp-leasefile":
            fields["leases_file"] = value
        elif name == "conf-file":
            fields["conf_file"] = value if value is not None else ""
        elif name == "log-facility":
            fields["log_facility"] = value
        elif name == "log-dhcp":
            fields["log_dhcp"] = True
        elif name == "dhcp-lease-max" and value and value.isdigit():
            fields["lease_max"] = int(value)
        elif name == "dhcp-range" and value:
            fields["dhcp_ranges"].append(value)
        elif name in ("bind-interfaces", "bind-dynamic"):
            fields["bind_mode"] = name
    if interfaces:
        fields["interface"] = ",".join(interfaces)
    for key in ("pid_file", "hosts_file", "opts_file", "leases_file", "addn_hosts_file", "log_facility"):
        net = network_id_from_path(fields.get(key))
        if net:
            fields["network_id"] = net
            break
    return fields
