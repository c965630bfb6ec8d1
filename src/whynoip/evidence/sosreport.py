"""sosreport trees: recognising one, and what its layout says about each file in it.

A sosreport is a copy of a host's `/etc` and `/var/log` (and more) beside
`sos_commands/<plugin>/<command_with_underscores>`, the outputs of the commands it ran.
From the tree we learn the host (`etc/hostname`, `sos_commands/host/hostname`), when the
evidence was taken (`sos_commands/date/date_--utc`), and from each file name under
`sos_commands` the command that produced it. A lab bundle or a case's attachment directory
puts several such trees side by side, one per node.

Most of a real sosreport says nothing about DHCP (CPU flags, ethtool offloads, kernel
tunables): files no parser reads that match `IRRELEVANT` are counted, not listed one by one.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, timezone

from whynoip.parsers import _time

HOSTNAME_FILES = ("etc/hostname", "sos_commands/host/hostname", "sos_commands/general/hostname",
                  "sos_commands/host/hostname_-f", "hostname")
DATE_FILES = ("sos_commands/date/date_--utc", "sos_commands/general/date_--utc",
              "sos_commands/date/hwclock", "sos_commands/date/date", "sos_commands/general/date",
              "date")
CONTEXT_FILES = frozenset(HOSTNAME_FILES + DATE_FILES)

# sosreport's own bookkeeping and plugins that hold nothing for this diagnosis.
IRRELEVANT = tuple(fnmatch.translate(p) for p in (
    "sos_logs/*", "sos_reports/*", "sos_strings/*", "version.txt", "environment",
    "proc/*", "sys/*", "boot/*", "lib/*", "usr/*", "dev/*", "run/udev/*",
    "sos_commands/kernel/*", "sos_commands/hardware/*", "sos_commands/processor/*",
    "sos_commands/memory/*", "sos_commands/block/*", "sos_commands/devicemapper/*",
    "sos_commands/lvm2/*", "sos_commands/scsi/*", "sos_commands/pci/*", "sos_commands/usb/*",
    "sos_commands/selinux/*", "sos_commands/apparmor/*", "sos_commands/boot/*",
    "sos_commands/grub2/*", "sos_commands/cron/*", "sos_commands/login/*", "sos_commands/snap/*",
    "sos_commands/python/*", "sos_commands/perl/*", "sos_commands/ceph*/*", "sos_commands/ata/*",
    "sos_commands/i18n/*", "sos_commands/keyboard/*", "sos_commands/x11/*", "sos_commands/pam/*",
    "sos_commands/udev/*", "sos_commands/nvme/*", "sos_commands/md/*", "sos_commands/multipath/*",
    "sos_commands/iscsi/*", "sos_commands/ssh/*", "sos_commands/sudo/*", "sos_commands/tuned/*",
    "sos_commands/kdump/*", "sos_commands/sar/*", "sos_commands/ebpf/*", "sos_commands/auditd/*",
    "sos_commands/juju/*", "sos_commands/lxd/*", "sos_commands/ubuntu/*", "sos_commands/logs/*",
    "sos_commands/date/hwclock", "sos_commands/host/uptime", "sos_commands/host/hostnamectl_status",
    "sos_commands/filesys/findmnt", "sos_commands/filesys/mount_-l", "sos_commands/filesys/lsof*",
    "sos_commands/networking/ethtool_*", "sos_commands/networking/*ethtool_*",
    "sos_commands/networking/*netstat_-s", "sos_commands/networking/*nstat_-zas",
    "sos_commands/networking/ip_maddr_show", "sos_commands/networking/ip_mroute_show",
    "sos_commands/networking/*ip_-6_*", "sos_commands/networking/*ip6tables*",
    "sos_commands/networking/bridge_-s_-s_-d_-t_mdb_show", "sos_commands/networking/tc_*",
    "sos_commands/networking/*_sysctl_*", "sos_commands/networking/devlink*",
    "sos_commands/networking/ss_*", "sos_commands/networking/biosdevname*",
    "sos_commands/firewall_tables/ip6tables*", "sos_commands/firewall_tables/nft_*",
    "sos_commands/openvswitch/ovs-appctl_bond.*", "sos_commands/openvswitch/ovs-appctl_cfm.*",
    "sos_commands/openvswitch/ovs-appctl_coverage.*", "sos_commands/openvswitch/ovs-appctl_lacp.*",
    "sos_commands/openvswitch/ovs-appctl_mdb*", "sos_commands/openvswitch/ovs-appctl_memory*",
    "sos_commands/openvswitch/ovs-appctl_upcall*", "sos_commands/openvswitch/ovs-appctl_dpif-netdev*",
    "sos_commands/openvswitch/ovs-appctl_tnl.*", "sos_commands/openvswitch/ovs-appctl_-t_ovs-monitor-ipsec*",
    "sos_commands/openvswitch/ovs-appctl_dpctl.ct-*", "sos_commands/openvswitch/ovs-appctl_dpctl.ipf*",
    "sos_commands/openvswitch/ovs-appctl_dpctl.dump-conntrack*", "sos_commands/openvswitch/ovs-appctl_fdb.stats*",
    "sos_commands/openvswitch/ovs-appctl_ovs.*", "sos_commands/openvswitch/ovs-appctl_vlog*",
    "sos_commands/openvswitch/ovs-ofctl_queue-*", "sos_commands/openvswitch/ovs-ofctl_*dump-groups*",
    "sos_commands/openvswitch/ovs-ofctl_*dump-group-stats*", "sos_commands/openvswitch/ovs-ofctl_*dump-meters*",
    "sos_commands/openvswitch/ovs-ofctl_*dump-tlv-map*", "sos_commands/openvswitch/ovs-ofctl_*dump-ipfix*",
    "sos_commands/openvswitch/ovs-ofctl_*snoop*", "sos_commands/openvswitch/ls_-laZ_*",
    "sos_commands/openvswitch/ovs-vsctl_-t_5_get_Open_vSwitch_*", "sos_commands/openvswitch/ovs-dpctl*",
    "sos_commands/openvswitch/ovs-pki*", "sos_commands/openvswitch/ovs-vsctl_-t_5_list_Open_vSwitch",
    "sos_commands/openvswitch/ovs-vsctl_-t_5_list-br",
    "sos_commands/openvswitch/ovs-appctl_fdb.show*", "sos_commands/openvswitch/ovs-appctl_bridge.dump-flows*",
    "sos_commands/openvswitch/ovsdb-client_*", "sos_commands/openvswitch/ovs-appctl_dpctl.dump-dps", "sos_commands/openvswitch/ovs-appctl_dpctl.show*",
    "sos_commands/openvswitch/ovs-appctl_-t_*", "sos_commands/openvswitch/ovs-appctl_qos.*",
    "sos_commands/openvswitch/ovs-appctl_dpif.show-dp-features*",
    "sos_commands/networking/*ip_-s_-s_neigh_show", "sos_commands/networking/*ip_neigh_show*",
    "sos_commands/networking/*ip_-4_rule", "sos_commands/networking/*ip_rule_list",
    "sos_commands/networking/*netstat_-W_-agn", "sos_commands/networking/bridge_-s_-s_-d_-t_fdb_show",
    "sos_commands/networking/bridge_-d_vlan_show", "sos_commands/openstack_neutron/ls_*",
    # the same outputs again, once per OpenFlow version (dump-flows is read when a parser does)
    "sos_commands/openvswitch/ovs-ofctl_-O_OpenFlow1?_show_*",
    "sos_commands/openvswitch/ovs-ofctl_-O_OpenFlow1?_dump-ports*",
    "sos_commands/dpkg/dpkg_-L*", "sos_commands/rpm/rpm_-V*", "sos_commands/rpm/package-data",
    "sos_commands/systemd/systemd-analyze*", "sos_commands/systemd/systemctl_show*",
    "sos_commands/systemd/systemctl_list-unit-files", "sos_commands/systemd/systemd-*",
    "sos_commands/systemd/ls_*", "sos_commands/systemd/timedatectl", "sos_commands/systemd/journalctl_--list-boots",
    "etc/neutron/rootwrap.d/*", "etc/neutron/api-paste.ini", "etc/neutron/policy.json",
    "etc/neutron/policy.yaml", "etc/neutron/rootwrap.conf", "etc/neutron/fwaas_driver.ini",
    "etc/neutron/neutron_fwaas.conf", "etc/neutron/metering_agent.ini",
    "etc/neutron/plugins/ml2/sriov_agent.ini", "etc/neutron/plugins/ml2/macvtap_agent.ini",
    "etc/neutron/plugins/ml2/linuxbridge_agent.ini", "etc/neutron/ovn.ini",
    "etc/neutron/neutron_ovn_metadata_agent.ini", "etc/hostname", "etc/machine-id",
    "var/log/journal/*", "var/log/wtmp*", "var/log/btmp*",
    "var/log/lastlog", "var/log/faillog", "var/log/sa/*", "var/log/installer/*",
    "var/log/apt/*", "var/log/dpkg.log*", "var/log/unattended-upgrades/*", "var/log/landscape/*",
    "var/log/juju/*", "var/log/cloud-init*", "var/log/audit/*",
))
_IRRELEVANT_RE = re.compile("|".join(f"(?:{p})" for p in IRRELEVANT))


def looks_like_tree(children: set[str] | frozenset[str]) -> bool:
    """A directory holding these child names is a sosreport (or a per-node copy of a host)."""
    return "sos_commands" in children or ("etc" in children and "var" in children)


def irrelevant(relpath: str) -> bool:
    """A file of a sosreport tree (relative to its root) known to hold nothing for DHCP."""
    return _IRRELEVANT_RE.match(relpath) is not None


def command_file(relpath: str) -> str | None:
    """The mangled command name of a command output file (`sos_commands/<plugin>/<name>`,
    or `api/<name>` in a lab bundle); None for a copied file."""
    parts = relpath.split("/")
    if len(parts) >= 3 and parts[-3] == "sos_commands":
        return parts[-1]
    if len(parts) >= 2 and parts[-2] in ("api", "commands"):
        return parts[-1]
    return None


def hostname_from(text: str) -> str | None:
    for line in text.splitlines():
        word = line.strip().split()[0] if line.strip() else ""
        if word and re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,252}", word):
            return word
    return None


_DATE_RE = re.compile(
    r"(?:(?P<mon>[A-Z][a-z]{2})\s+(?P<day>\d{1,2})|(?P<day2>\d{1,2})\s+(?P<mon2>[A-Z][a-z]{2}))\s+"
    r"(?:(?P<y1>\d{4})\s+)?(?P<h>\d{1,2}):(?P<m>\d\d):(?P<s>\d\d)(?:\s*(?P<ampm>[AP]M))?"
    r"(?:\s+(?P<tz>[A-Z]{2,5}|[+-]\d{4}))?(?:\s+(?P<y2>\d{4}))?")


def date_from(text: str, utc: bool = False) -> float | None:
    """When `date` (C or en_US locale), `date --utc` or `hwclock` says it is, or None when
    the zone is not UTC (an abbreviation like CET is no offset)."""
    text = text.strip()
    iso = _time.iso_time(text)
    if iso is not None:
        return iso[0]
    m = _DATE_RE.search(text)
    if not m:
        return None
    mon = m["mon"] or m["mon2"]
    day = int(m["day"] or m["day2"])
    year = m["y1"] or m["y2"]
    tz = m["tz"]
    if mon not in _time.MONTHS or not year:
        return None
    if not utc and tz not in ("UTC", "GMT", "Z", "+0000"):
        return None
    h = int(m["h"])
    if m["ampm"] == "PM" and h < 12:
        h += 12
    elif m["ampm"] == "AM" and h == 12:
        h = 0
    try:
        return datetime(int(year), _time.MONTHS[mon], day, h, int(m["m"]), int(m["s"]),
                        tzinfo=timezone.utc).timestamp()
    except ValueError:
        return None


def context_from(files: dict[str, str]) -> tuple[str | None, float | None]:
    """(host, time) of a tree from the contents of its `CONTEXT_FILES` (relative path -> text)."""
    host = None
    for name in HOSTNAME_FILES:
        if name in files:
            host = hostname_from(files[name])
            if host:
                break
    when = None
    for name in DATE_FILES:
        if name in files:
            when = date_from(files[name], utc=name.endswith("--utc"))
            if when is not None:
                break
    return host, when
