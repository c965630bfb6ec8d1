"""Known log signatures: the one table that turns a log line's wording into a named signal.

Services say the same thing in many ways across releases (`AMQP server on X is unreachable`,
`Connection failed: [Errno 111] ECONNREFUSED`, ...). The log parsers (oslo_log,
rabbitmq_log, syslog) run every record they keep through `match()`; what comes out is a
kebab-case `signal` name and the values the pattern captured (`params`), so that the
doctor's rules decide on `signal == "amqp-unreachable"` and `params["host"]` and never read
text. Signal names are a contract with the rules: add new ones freely, never rename one.

Each signature carries `needles`: literal substrings at least one of which is in every text
its pattern matches. `match()` finds a text's needles through the few keys they hold
(`needles_in`) and tries a pattern only when one of its needles is present; a DEBUG or INFO
line of an OpenStack service without a key (`may_match_quiet`) is only counted, never
matched, and `has_needle()` answers yes/no for any text. The first signature that matches wins, so specific
signatures come before general ones. Every signature cites where its wording comes from:
the source file that logs it (as stored in the public repositories) or a real log.

    >>> match("AMQP server on 10.20.0.11:5672 is unreachable: [Errno 32] Broken pipe. "
    ...       "Trying again in 5 seconds.")
    ('amqp-unreachable', {'host': '10.20.0.11', 'port': '5672', 'reason': '[Errno 32] Broken pipe', 'retry': '5'})
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# An AMQP host as oslo.messaging prints it: a name, an IPv4 address or [IPv6].
_HOST = r"(?P<host>\[[0-9A-Fa-f:.]+\]|[^\s:\[\]]+)"
# A RabbitMQ node name, quoted by Erlang when it holds '-' or '.': 'rabbit@net-02' / rabbit@x.
_NODE = r"'?(?P<node>[\w.-]+@[\w-]+(?:\.[\w-]+)*)'?"


@dataclass(frozen=True, slots=True)
class Signature:
    signal: str
    needles: tuple[str, ...]
    pattern: re.Pattern
    source: str  # where the wording comes from
    # Optional: each match of `each` in the text adds one signal occurrence with its own
    # params (for messages that list several things, e.g. a table of dead agents).
    each: re.Pattern | None = field(default=None)


def _sig(signal: str, needles: str | tuple[str, ...], pattern: str, source: str,
         flags: int = 0, each: str | None = None) -> Signature:
    if isinstance(needles, str):
        needles = (needles,)
    return Signature(signal, needles, re.compile(pattern, flags), source,
                     re.compile(each, re.M) if each else None)


SIGNATURES: tuple[Signature, ...] = (
    # --- oslo.messaging / the message bus, seen from the services ------------------------
    _sig("amqp-unreachable", "is unreachable",
         rf"AMQP server on {_HOST}:(?P<port>\d+) is unreachable: (?P<reason>.*?)\. "
         r"Trying again in (?P<retry>\d+) seconds",
         "openstack/oslo.messaging oslo_messaging/_drivers/impl_rabbit.py (Connection.ensure "
         "on_error); older impl_kombu.py has the same wording without the [connection id]"),
    _sig("amqp-unreachable", "Unable to connect to AMQP server",
         rf"Unable to connect to AMQP server on {_HOST}:(?P<port>\d+) after (?P<tries>\S+) "
         r"tries: (?P<reason>.*)",
         "openstack/oslo.messaging oslo_messaging/_drivers/impl_rabbit.py (Connection.ensure)"),
    _sig("amqp-connection-closed", "closed the connection. Check login credentials",
         rf"AMQP server {_HOST}:(?P<port>\d+) closed the connection\. Check login credentials: "
         r"(?P<reason>.*)",
         "openstack/oslo.messaging oslo_messaging/_drivers/impl_rabbit.py (Connection.ensure)"),
    _sig("amqp-reconnected", "Reconnected to AMQP server",
         rf"Reconnected to AMQP server on {_HOST}:(?P<port>\d+)",
         "openstack/oslo.messaging oslo_messaging/_drivers/impl_rabbit.py (on_reconnection)"),
    _sig("amqp-connection-refused", ("ECONNREFUSED", "Errno 111"),
         r"Connection failed: (?P<reason>[^()]*?(?:ECONNREFUSED|\[Errno 111\])[^()]*?)\s*"
         r"\(retrying in (?P<retry>[\d.]+) seconds\)",
         "openstack/oslo.messaging impl_rabbit.py (ensure_connection on_error); real: "
         "real-samples var/log/neutron/neutron-dhcp-agent.log.1 2022-02-09 22:38:46"),
    _sig("amqp-unreachable", "Connection failed:",
         r"Connection failed: (?P<reason>.*?)\s*\(retrying in (?P<retry>[\d.]+) seconds\)",
         "openstack/oslo.messaging oslo_messaging/_drivers/impl_rabbit.py (ensure_connection)"),
    _sig("amqp-blocked", "blocked the connection",
         r"The broker has blocked the connection: (?P<reason>.*)",
         "openstack/oslo.messaging oslo_messaging/_drivers/impl_rabbit.py "
         "(_on_connection_blocked): RabbitMQ's resource alarm seen from the client"),
    _sig("amqp-unblocked", "blocked the connection",
         r"The broker has unblocked the connection",
         "openstack/oslo.messaging oslo_messaging/_drivers/impl_rabbit.py"),

    # --- agents reporting to neutron-server --------------------------------------------
    _sig("agent-report-failed", "Failed reporting state",
         r"Failed reporting state!(?::\s*(?P<reason>[^\n]*))?",
         "openstack/neutron neutron/agent/dhcp/agent.py (DhcpAgentWithStateReport."
         "_report_state); real: neutron-dhcp-agent.log.1 2022-02-04 10:59:16"),
    _sig("agent-revived", "has just been revived",
         r"(?:^|agent )Agent has just been revived",
         "openstack/neutron neutron/agent/dhcp/agent.py, l3/agent.py, ovs_neutron_agent.py "
         "(newer: '%s Agent has just been revived' with the agent type); real: "
         "neutron-dhcp-agent.log.1 2022-02-09 22:48:24. Anchored: the DEBUG `resync (*): [...]` "
         "line quotes it as a reason"),
    _sig("clock-skew", "This differs from the current server timestamp",
         r"Message received from the host: (?P<host>\S+) during the registration of "
         r"(?P<agent_name>.+?) has a timestamp: (?P<agent_time>\S+)\. This differs from the "
         r"current server timestamp: (?P<server_time>\S+) by (?P<diff>-?[\d.]+) seconds, which "
         r"is more than the threshold agent down ?time: (?P<threshold>\d+)",
         "openstack/neutron neutron/db/agents_db.py (AgentExtRpcCallback._check_clock_sync"
         "_on_agent_start)"),

    # --- the DHCP agent ----------------------------------------------------------------
    _sig("dhcp-sync-complete", "Synchronizing state complete",
         r"Synchronizing state complete",
         "openstack/neutron neutron/agent/dhcp/agent.py (sync_state); real: "
         "neutron-dhcp-agent.log.1 2022-02-09 22:48:24"),
    _sig("dhcp-sync-start", "Synchronizing state",
         r"\bSynchronizing state\b",
         "openstack/neutron neutron/agent/dhcp/agent.py (sync_state); real: "
         "neutron-dhcp-agent.log.1 2022-02-09 22:38:46"),
    _sig("dhcp-sync-failed", "Unable to sync network state",
         rf"Unable to sync network state(?: on deleted network (?P<network>{UUID}))?\.?"
         r"(?::\s*(?P<reason>[^\n]*))?",
         "openstack/neutron neutron/agent/dhcp/agent.py (sync_state)"),
    _sig("dhcp-action-failed", ("dhcp for", "Unable to enable dhcp", "Unable to disable dhcp"),
         rf"Unable to (?P<action>\w+) dhcp(?: for (?P<network>{UUID}))?",
         "openstack/neutron neutron/agent/dhcp/agent.py (call_driver); real (Havana): "
         "github.com/rcbops/chef-cookbooks/issues/761 'ERROR neutron.agent.dhcp_agent [-] "
         "Unable to enable dhcp.'"),
    _sig("dhcp-reload", "Trigger reload_allocations for port",
         r"Trigger reload_allocations for port (?P<detail>.*?)(?: on network (?P<network>"
         + UUID + r"))?$",
         "openstack/neutron neutron/agent/dhcp/agent.py (reload_allocations): the port is a "
         "dict dump in older releases, `<id> on network <net>` in newer ones", re.S),
    _sig("dnsmasq-not-found", "should not have died",
         rf"(?P<service>dnsmasq) for (?P<resource>[\w-]+) with uuid (?P<network>{UUID}) not "
         r"found\. The process should not have died",
         "openstack/neutron neutron/agent/linux/external_process.py (ProcessMonitor."
         "_check_child_processes)"),
    _sig("child-process-died", "should not have died",
         r"(?P<service>[\w.-]+) for (?P<resource>[\w-]+) with uuid (?P<uuid>\S+) not found\. "
         r"The process should not have died",
         "openstack/neutron neutron/agent/linux/external_process.py (haproxy, keepalived ...)"),
    _sig("dnsmasq-respawn", ("espawning dnsmasq",),
         rf"[Rr]espawning (?P<service>dnsmasq) for uuid (?P<network>{UUID})",
         "openstack/neutron neutron/agent/linux/external_process.py (_respawn_action)"),
    _sig("child-process-respawn", ("espawning",),
         r"[Rr]espawning (?P<service>[\w.-]+) for uuid (?P<uuid>\S+)",
         "openstack/neutron neutron/agent/linux/external_process.py (_respawn_action)"),
    _sig("dnsmasq-bind-failed", ("failed to bind DHCP server socket",),
         r"failed to bind DHCP server socket: (?P<reason>[^\n]+)",
         "dnsmasq src/dhcp.c (dhcp_init: 'failed to bind DHCP server socket: %s'); Neutron logs "
         "dnsmasq's stderr in the ProcessExecutionError when it cannot start it"),
    _sig("dnsmasq-too-many-leases", ("too many stored leases",),
         r"too many stored leases",
         "dnsmasq src/lease.c (lease_init: 'too many stored leases'): the lease file holds more "
         "leases than --dhcp-lease-max and dnsmasq refuses to start"),
    _sig("dnsmasq-binary-missing", ("Executable not found", "No such file or directory: '",
                                     "FileNotFoundError"),
         r"(?:Executable not found: (?P<path>\S*dnsmasq)\b|(?:FileNotFoundError[^\n]*?)?No such "
         r"file or directory: '(?P<file>[^']*dnsmasq)'|FileNotFoundError[^\n]*dnsmasq)",
         "openstack/oslo.rootwrap oslo_rootwrap/cmd.py ('Executable not found: %s (filter "
         "match = %s)'); Python's FileNotFoundError when no root helper is used"),
    _sig("interface-driver-wrong", ("Error importing interface driver",
                                    "An interface driver must be specified"),
         r"(?:Error importing interface driver:? '?(?P<driver>[^'\s:]+)'?(?::\s*(?P<reason>"
         r"[^\n]*))?|An interface driver must be specified)",
         "openstack/neutron neutron/agent/common/utils.py (load_interface_driver), "
         "neutron/agent/linux/dhcp.py (DeviceManager)"),
    _sig("rootwrap-failed", "Unauthorized command",
         r"Unauthorized command: (?P<cmd>.*?) \(no filter matched\)",
         "openstack/oslo.rootwrap oslo_rootwrap/cmd.py"),
    _sig("rootwrap-failed", "Executable not found",
         r"Executable not found: (?P<path>\S+) \(filter match = (?P<filter>[^)]*)\)",
         "openstack/oslo.rootwrap oslo_rootwrap/cmd.py; real (Havana): github.com/"
         "blueboxgroup/ursula/pull/104 'Stderr: .../neutron-rootwrap: Executable not found: "
         "dhcp_release (filter match = dhcp_release)'"),
    _sig("rootwrap-failed", "; Stdin:",
         r"Exit code: (?P<exit_code>\d+);(?=[^\n]*(?:rootwrap|sudo:|Operation not permitted|"
         r"Permission denied))(?: Cmd: (?P<cmd>[^\n]*?);)? Stdin: [^\n]*?; Stdout: [^\n]*?; "
         r"Stderr: (?P<stderr>[^\n]*)",
         "openstack/neutron neutron/agent/linux/utils.py (execute): a command run through the "
         "root helper that failed for lack of privilege"),
    _sig("command-failed", "; Stdin:",
         r"Exit code: (?P<exit_code>\d+);(?: Cmd: (?P<cmd>[^\n]*?);)? Stdin: [^\n]*?; "
         r"Stdout: [^\n]*?; Stderr: (?P<stderr>[^\n]*)",
         "openstack/neutron neutron/agent/linux/utils.py (execute)"),
    _sig("command-failed", "Unable to execute",
         r"Unable to execute (?P<cmd>\[.*?\])\.?(?: Exception: (?P<reason>[^\n]*))?",
         "openstack/neutron (older) neutron/agent/linux/ovs_lib.py, nova network/linux_net.py "
         "('Unable to execute %(cmd)s. Exception: %(exception)s')"),

    # --- L2 agent and port binding (neutron-server, OVS agent, nova) -------------------
    _sig("dead-vlan", "dead VLAN",
         r"VIF port: (?P<port>\S+) admin state up disabled, putting on the dead VLAN",
         "openstack/neutron neutron/plugins/ml2/drivers/openvswitch/agent/ovs_neutron_agent.py "
         "(treat_vif_port)"),
    _sig("device-not-bound", "not defined on plugin or binding failed",
         r"Device (?P<port>\S+) not defined on plugin or binding failed",
         "openstack/neutron ovs_neutron_agent.py (treat_devices_added_or_updated)"),
    _sig("bind-dead-agent", "Refusing to bind port",
         r"Refusing to bind port (?P<port>\S+?) (?:to dead agent|due to dead (?P<agent_type>\S+))"
         r"(?:[^\n]*?'host': '(?P<host>[^']+)')?",
         "openstack/neutron neutron/plugins/ml2/drivers/mech_agent.py (AgentMechanismDriverBase."
         "bind_port)"),
    _sig("port-binding-failed", "Failed to bind port",
         rf"Failed to bind port (?P<port>{UUID}|\S+) on host (?P<host>\S*?)(?: for vnic_type "
         r"(?P<vnic_type>\S+))?(?: using segments (?P<segments>[^\n]*))?(?:$|\n)",
         "openstack/neutron neutron/plugins/ml2/managers.py (MechanismManager._bind_port_level)",
         re.M),
    _sig("port-binding-failed", ("PortBindingFailed", "Binding failed for port"),
         rf"(?:Binding failed for port (?P<port>{UUID})|PortBindingFailed)",
         "openstack/nova nova/exception.py (PortBindingFailed: 'Binding failed for port "
         "%(port_id)s, please check neutron logs for more information.')"),
    _sig("port-binding-failed", "binding_failed",
         rf"binding_failed(?:[^\n]*?\bid[=:] ?'?(?P<port>{UUID}))?",
         "openstack/neutron-lib portbindings.VIF_TYPE_BINDING_FAILED, as printed in port dumps"),
    _sig("vif-plug-timeout", "network-vif-plugged",
         rf"Timeout waiting for \[\('network-vif-plugged', '(?P<port>{UUID})'\)[^\]]*\] for "
         r"instance with vm_state (?P<vm_state>\w+) and task_state (?P<task_state>\w+)",
         "openstack/nova nova/virt/libvirt/driver.py (_create_guest_with_network); real: "
         "'Timeout waiting for [('network-vif-plugged', '0f0de1cd-...')] for instance with "
         "vm_state building and task_state spawning' (public thread)"),
    _sig("vif-plug-timeout", "Timeout waiting for vif plugging callback",
         rf"Timeout waiting for vif plugging callback(?: for instance)?(?: (?P<instance>{UUID}))?",
         "openstack/nova nova/virt/libvirt/driver.py (older releases)"),

    # --- scheduling and liveness (neutron-server, nova) --------------------------------
    _sig("agent-down", "dead agents out of",
         r"Agent healthcheck: found (?P<count>\d+) dead agents out of (?P<total>\d+)",
         "openstack/neutron neutron/db/agents_db.py (agent_health_check): the table of dead "
         "agents (type, last heartbeat, host) follows on continuation lines",
         each=r"^\s*(?P<agent_type>\S.*?)\s+(?P<heartbeat>\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d"
              r"(?:\.\d+)?)\s+(?P<agent_host>\S+)\s*$"),
    _sig("agent-down", "because the agent did not report",
         rf"(?:Removing network (?P<network>{UUID})|Rescheduling (?P<resource_type>\w+) "
         rf"(?P<resource>{UUID})) from agent (?P<agent>{UUID}) because the agent did not report "
         r"to the server in the last (?P<dead_time>\d+) seconds",
         "openstack/neutron neutron/db/agentschedulers_db.py (remove_networks_from_down_agents)"
         ", neutron/db/l3_agentschedulers_db.py"),
    _sig("network-not-scheduled", "Unable to schedule network",
         rf"Unable to schedule network (?P<network>{UUID}): no agents available",
         "openstack/neutron neutron/api/rpc/agentnotifiers/dhcp_rpc_agent_api.py "
         "(_schedule_network)"),
    _sig("network-not-scheduled", "No more DHCP agents",
         r"No more DHCP agents",
         "openstack/neutron neutron/scheduler/dhcp_agent_scheduler.py"),
    _sig("nova-compute-down", "Seems service",
         r"Seems service (?P<binary>nova-compute) on host (?P<host>\S+) is down\. Last heartbeat "
         r"was (?P<heartbeat>.+?)\. Elapsed time is (?P<elapsed>[\d.]+)",
         "openstack/nova nova/servicegroup/drivers/db.py (is_up, DEBUG)"),
    _sig("service-down", "Seems service",
         r"Seems service (?:(?P<binary>[\w-]+) on host (?P<host>\S+) )?is down\. Last heartbeat "
         r"was (?P<heartbeat>.+?)\. Elapsed time is (?P<elapsed>[\d.]+)",
         "openstack/nova nova/servicegroup/drivers/db.py (is_up; older releases without "
         "binary and host)"),

    # --- RPC timeouts (after the more specific wordings that carry one as reason) -------
    _sig("messaging-timeout", "Timeout in RPC method",
         r"Timeout in RPC method (?P<method>\w+)\. Waiting for (?P<wait>\d+) seconds",
         "openstack/neutron-lib neutron_lib/rpc.py (_BackingOffContextWrapper.call); real: "
         "neutron-dhcp-agent.log.1 2022-02-09 22:42:24"),
    _sig("messaging-timeout", "Increasing timeout for",
         r"Increasing timeout for (?P<method>\w+) calls to (?P<timeout>\d+) seconds",
         "openstack/neutron-lib neutron_lib/rpc.py; real: neutron-dhcp-agent.log.1 2022-02-09 "
         "22:42:24"),
    _sig("messaging-timeout", "MessagingTimeout",
         r"MessagingTimeout(?!\()(?::\s*(?P<reason>Timed out waiting for a reply to message "
         r"ID (?P<message_id>\w+)|[^\n]*))?",
         "openstack/oslo.messaging oslo_messaging/_drivers/amqpdriver.py (ReplyWaiters.get); "
         "real: neutron-dhcp-agent.log.1. `MessagingTimeout(` is a repr quoted in a list of "
         "past reasons, not a new timeout"),

    # --- libvirt --------------------------------------------------------------------------
    _sig("libvirt-socket-missing", "Failed to connect socket to",
         r"Failed to connect socket to '(?P<socket>[^']*)': (?P<reason>[^'\"\n]+)",
         "libvirt src/rpc/virnetsocket.c (virNetSocketNewConnectUNIX); seen in nova-compute and "
         "virsh output, e.g. github issues quoting '/var/run/libvirt/libvirt-sock': No such "
         "file or directory"),
    _sig("libvirt-connection-lost", "Connection to libvirt lost",
         r"Connection to libvirt lost(?::\s*(?P<reason>[^'\n]*))?",
         "openstack/nova nova/virt/libvirt/host.py (_handle_conn_event)"),

    # --- RabbitMQ, the broker itself -----------------------------------------------------
    _sig("disk-alarm-set", "resource limit alarm",
         rf"disk resource limit alarm set on node {_NODE}",
         "rabbitmq/rabbitmq-server src/rabbit_alarm.erl (handle_set_resource_alarm); real: "
         "tests/fixtures/capture/rabbitmq_log.sh"),
    _sig("disk-alarm-cleared", "resource limit alarm",
         rf"disk resource limit alarm cleared (?:on node {_NODE}|across the cluster)",
         "rabbitmq/rabbitmq-server src/rabbit_alarm.erl (handle_clear_resource_alarm); real: "
         "tests/fixtures/capture/rabbitmq_log.sh"),
    _sig("memory-alarm-set", "resource limit alarm",
         rf"memory resource limit alarm set on node {_NODE}",
         "rabbitmq/rabbitmq-server src/rabbit_alarm.erl"),
    _sig("memory-alarm-cleared", "resource limit alarm",
         rf"memory resource limit alarm cleared (?:on node {_NODE}|across the cluster)",
         "rabbitmq/rabbitmq-server src/rabbit_alarm.erl"),
    _sig("disk-free-insufficient", ("Disk free space insufficient",
                                    "Free disk space is insufficient"),
         r"(?:Disk free space insufficient|Free disk space is insufficient)\. Free bytes: ?"
         r"(?P<free_bytes>\d+)\.? Limit: ?(?P<limit_bytes>\d+)",
         "rabbitmq/rabbitmq-server src/rabbit_disk_monitor.erl (3.x: 'Disk free space "
         "insufficient. Free bytes:~p Limit:~p'; 3.7+: 'Free disk space is insufficient. Free "
         "bytes: ~b. Limit: ~b'); real: tests/fixtures/capture/rabbitmq_log.sh"),
    _sig("disk-monitor-disabled", "Disabling disk free space monitoring",
         r"Disabling disk free space monitoring",
         "rabbitmq/rabbitmq-server src/rabbit_disk_monitor.erl: the broker will raise no disk "
         "alarm at all; real: RabbitMQ's disk alarms guide (tests/fixtures/parsers/"
         "rabbitmq_log/public/SOURCES.md)"),
    _sig("inconsistent-cluster", "inconsistent_cluster",
         r"inconsistent_cluster(?:,\s*\"Node '?(?P<node>[\w.-]+@[\w.-]+)'? thinks it's clustered "
         r"with node '?(?P<peer>[\w.-]+@[\w.-]+)'?)?",
         "rabbitmq/rabbitmq-server src/rabbit_mnesia.erl (check_cluster_consistency)"),
    _sig("network-partition", "running_partitioned_network",
         r"running_partitioned_network,\s*'?(?P<peer>[\w.-]+@[\w-]+(?:\.[\w-]+)*)'?",
         "rabbitmq/rabbitmq-server src/rabbit_node_monitor.erl; real line in the RabbitMQ "
         "partitions guide (rabbitmq/rabbitmq-website site/partitions.md)"),

    # --- full disks, anywhere --------------------------------------------------------------
    _sig("no-space", ("No space left on device", "no space left on device", "Errno 28",
                      "enospc", "ENOSPC"),
         r"(?:No space left on device(?::\s*'(?P<path>[^']+)')?|\[Errno 28\](?![^\n]*No space)|"
         r"\benospc\b)",
         "POSIX ENOSPC as Python ('[Errno 28] No space left on device: ...'), dnsmasq "
         "('failed to write ...: No space left on device') and Erlang ({error,enospc}) print it",
         re.I),

    # --- the kernel ---------------------------------------------------------------------
    _sig("apparmor-denied", 'apparmor="DENIED"',
         r'apparmor="DENIED" operation="(?P<operation>[^"]*)"(?:[^\n]*? profile="(?P<profile>'
         r'[^"]*)")?(?:[^\n]*? name="(?P<name>[^"]*)")?(?:[^\n]*? comm="(?P<comm>[^"]*)")?',
         "the kernel's AppArmor audit record (type=1400); real: real-samples var/log/syslog "
         "Feb 10 02:02:30. A denied dnsmasq or libvirtd profile stops DHCP"),

    # --- clocks (syslog) -------------------------------------------------------------------
    _sig("clock-step", "System clock wrong by",
         r"System clock wrong by (?P<offset>-?[\d.]+) seconds",
         "chrony (chronyd: 'System clock wrong by -140.497787 seconds, adjustment started', "
         "quoted in public system logs)"),
    _sig("clock-step", "adjusting local clock by",
         r"adjusting local clock by (?P<offset>-?[\d.]+)s",
         "OpenNTPD (ntpd: 'adjusting local clock by -57.442957s', quoted in public logs)"),
)

_NEEDLES = tuple(dict.fromkeys(n for s in SIGNATURES for n in s.needles))

# The fast prefilter for the bulk of an OpenStack service log: records below WARNING.
# Python's regex engine tries every alternative at every position whose character can
# start one, so keys that all start with a capital letter (rare in DEBUG noise) make the
# scan several times faster than an alternation of every needle. Sound for the signatures
# OpenStack services log at DEBUG or INFO (each of those has one of these keys in its
# wording; tests/parsers/test_signatures.py checks it on real lines); the others are logged
# at WARNING or above, where records are kept and matched without a prefilter.
QUIET_KEYS = (
    "AMQP", "Connection failed", "Connection to libvirt", "The broker", "Failed reporting",
    "Agent has just", "Synchronizing", "Unable to", "Trigger reload", "The process should",
    "Respawning", "Executable not found", "No such file", "FileNotFoundError",
    "Error importing", "An interface driver", "Unauthorized", "Stdin:", "VIF port", "VLAN",
    "Device ", "Refusing", "Failed to bind", "PortBindingFailed", "Binding failed",
    "Timeout waiting", "Agent healthcheck", "Removing network", "Rescheduling",
    "No more DHCP", "Seems service", "Timeout in RPC", "Increasing timeout",
    "MessagingTimeout", "Failed to connect socket", "Message received from the host",
    "This differs", "No space left", "Errno", "ECONNREFUSED", "ENOSPC", "Free disk space",
    "Disk free space", "Disabling disk", "System clock",
)
QUIET_RE = re.compile("|".join(re.escape(k) for k in QUIET_KEYS))

# The needles no key above covers, reduced to those that contain no other one: with
# QUIET_RE they make `has_needle` sound for any text (every needle holds a key or is, or
# holds, one of these), at the cost of a few plain substring tests.
_UNCOVERED = [n for n in _NEEDLES if not QUIET_RE.search(n)]
_RESIDUAL = tuple(n for n in _UNCOVERED if not any(m != n and m in n for m in _UNCOVERED))
# needle -> indexes of the signatures that list it, to try only those that can match
_BY_NEEDLE: dict[str, tuple[int, ...]] = {
    n: tuple(i for i, s in enumerate(SIGNATURES) if n in s.needles) for n in _NEEDLES}


# anchor (a key or a residual needle) -> the needles that hold it: a needle is present only
# where one of its anchors is, so a text's needles are found by testing the needles of the
# anchors it holds, not all of them
_NEEDLES_OF: dict[str, tuple[str, ...]] = {
    a: tuple(n for n in _NEEDLES if a in n) for a in QUIET_KEYS + _RESIDUAL}


def _overlap(a: str, b: str) -> bool:
    return a != b and (a in b or b in a or any(a.endswith(b[:i]) or b.endswith(a[:i])
                                              for i in range(1, min(len(a), len(b)))))


# QUIET_RE.findall reports matches that do not overlap: a key whose occurrence overlaps a
# key found is tested apart
_OVERLAPPING_KEYS: dict[str, tuple[str, ...]] = {
    k: tuple(o for o in QUIET_KEYS if _overlap(k, o)) for k in QUIET_KEYS}


def needles_in(text: str) -> set[str]:
    """The needles `text` holds (never one missed)."""
    found: set[str] = set()
    keys = QUIET_RE.findall(text)
    if keys:
        anchors = set(keys)
        for k in keys:
            anchors.update(o for o in _OVERLAPPING_KEYS[k] if o in text)
        for a in anchors:
            found.update(n for n in _NEEDLES_OF[a] if n in text)
    for r in _RESIDUAL:
        if r in text:
            found.update(n for n in _NEEDLES_OF[r] if n in text)
    return found


def has_needle(text: str) -> bool:
    """True when `text` may hold a known signature (substring tests only; never a false
    negative: a signature cannot match a text without one of its needles)."""
    return QUIET_RE.search(text) is not None or any(map(text.__contains__, _RESIDUAL))


def may_match_quiet(text: str) -> bool:
    """The cheapest test, for a DEBUG/INFO record of an OpenStack service (see QUIET_KEYS)."""
    return QUIET_RE.search(text) is not None


def _params(m: re.Match) -> dict[str, str]:
    return {k: v.strip() for k, v in m.groupdict().items() if v is not None and v.strip()}


def match(text: str) -> tuple[str, dict[str, str]] | None:
    """The first signature matching `text`: (signal, params), or None."""
    found = match_all(text)
    return found[0] if found else None


def match_all(text: str) -> list[tuple[str, dict[str, str]]]:
    """The first signature matching `text`, as one (signal, params) per occurrence: one,
    except for signatures that list several things (each dead agent of a health check)."""
    found = needles_in(text)
    if not found:
        return []
    candidates = sorted({i for n in found for i in _BY_NEEDLE[n]})
    for i in candidates:
        sig = SIGNATURES[i]
        m = sig.pattern.search(text)
        if m is None:
            continue
        params = _params(m)
        if sig.signal == "dhcp-reload":
            params = _reload_params(params)
        if sig.each is not None:
            rows = [dict(params, **_params(r)) for r in sig.each.finditer(text, m.end())]
            if rows:
                return [(sig.signal, r) for r in rows]
        return [(sig.signal, params)]
    return []


_PORT_ID_RE = re.compile(rf"(?:\bid=|'id': ')(?P<id>{UUID})")
_VIF_TYPE_RE = re.compile(r"binding:vif_type[=:] ?'?(?P<v>[\w-]+)")
_NET_ID_RE = re.compile(rf"network_id[=:] ?'?(?P<id>{UUID})")


def _reload_params(params: dict[str, str]) -> dict[str, str]:
    """`Trigger reload_allocations for port X`: X is a port id (newer) or a dump of the
    port (older); pull out the port id, its network and its binding state."""
    detail = params.pop("detail", "")
    out = {k: v for k, v in params.items()}
    m = re.fullmatch(UUID, detail.strip())
    if m:
        out["port"] = m.group(0)
    else:
        if (p := _PORT_ID_RE.search(detail)):
            out["port"] = p["id"]
        if "network" not in out and (n := _NET_ID_RE.search(detail)):
            out["network"] = n["id"]
        if (v := _VIF_TYPE_RE.search(detail)):
            out["vif_type"] = v["v"]
    return out
