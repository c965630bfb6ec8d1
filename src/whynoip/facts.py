"""The one vocabulary of facts: small typed records that parsers produce and the model joins.

Every fact carries an `Origin` (the file or transcript it was read from, the line, and
whatever the evidence says about the host, network namespace, interface and command it
came from), so that a finding can cite its evidence line by line. Facts say what the
evidence shows in the operator's words (a DHCP packet, a dnsmasq log event, a host-file
entry, an OVS port and its tag); they never decide what is wrong -- that is the rules' job.

Times are seconds since the epoch, UTC (`float`), or None when the evidence has none.
`time_inferred` is set when part of the time was guessed (syslog lines carry no year).
Facts are msgspec Structs: cheap to build by the million, and tagged so that a list of
mixed facts encodes to JSON with a `type` key and decodes back.
"""

from __future__ import annotations

import msgspec


class Origin(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True, gc=False):
    """Where a fact was read: the path (or `-` for stdin), the 1-based line (for a pcap,
    the packet number), and what the evidence tells of its context."""

    path: str
    line: int = 0
    host: str | None = None
    namespace: str | None = None
    interface: str | None = None
    command: str | None = None
    text: str | None = None  # the raw line, kept short, for citing


# Facts and origins are not tracked by the cyclic garbage collector (gc=False): they hold
# strings, numbers and plain containers of them, never a cycle, and a node's evidence makes
# hundreds of thousands of them that every collection would otherwise walk again.
class Fact(msgspec.Struct, kw_only=True, omit_defaults=True, tag_field="type", tag=True, gc=False):
    origin: Origin


# --- DHCP on the wire ---------------------------------------------------------------------

class DhcpPacket(Fact, tag="dhcp_packet", kw_only=True):
    """One BOOTP/DHCP packet, from a pcap, tcpdump or dhcpdump text.

    `message_type` is the option-53 name (DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK,
    RELEASE, INFORM) or BOOTREQUEST/BOOTREPLY without option 53. `options` keeps every
    option the source showed, keyed by option number, rendered as text."""

    time: float | None = None
    time_inferred: bool = False  # the date was not printed (tcpdump without -tttt)
    xid: int | None = None
    op: int | None = None  # 1 request, 2 reply
    message_type: str | None = None
    client_mac: str | None = None  # chaddr
    ciaddr: str | None = None
    yiaddr: str | None = None
    siaddr: str | None = None
    giaddr: str | None = None
    flags_broadcast: bool | None = None
    secs: int | None = None
    hops: int | None = None
    server_name: str | None = None  # BOOTP sname
    boot_file: str | None = None  # BOOTP file
    src_mac: str | None = None
    dst_mac: str | None = None
    src_ip: str | None = None
    dst_ip: str | None = None
    src_port: int | None = None
    dst_port: int | None = None
    vlan: int | None = None
    vxlan_vni: int | None = None  # set when the packet was found inside VXLAN
    outer_src_ip: str | None = None
    outer_dst_ip: str | None = None
    udp_checksum_ok: bool | None = None  # None: not checked or not present
    server_id: str | None = None  # option 54
    requested_ip: str | None = None  # option 50
    subnet_mask: str | None = None  # option 1
    routers: list[str] = []  # option 3
    dns_servers: list[str] = []  # option 6
    hostname: str | None = None  # option 12
    domain: str | None = None  # option 15
    mtu: int | None = None  # option 26
    broadcast_address: str | None = None  # option 28
    lease_time: int | None = None  # option 51
    renewal_time: int | None = None  # option 58
    rebinding_time: int | None = None  # option 59
    parameter_list: list[int] = []  # option 55
    message: str | None = None  # option 56
    vendor_class: str | None = None  # option 60
    client_id: str | None = None  # option 61
    client_fqdn: str | None = None  # option 81
    relay_agent: str | None = None  # option 82
    classless_routes: list[str] = []  # option 121 as "dest/len via gw"
    ms_classless_routes: list[str] = []  # option 249
    options: dict[int, str] = {}


# --- dnsmasq ------------------------------------------------------------------------------

class DnsmasqLogEvent(Fact, tag="dnsmasq_log", kw_only=True):
    """One line of dnsmasq's log (syslog or --log-facility).

    `event` is the DHCP verb as dnsmasq prints it (DHCPDISCOVER, DHCPOFFER, DHCPREQUEST,
    DHCPACK, DHCPNAK, DHCPINFORM, DHCPRELEASE, DHCPDECLINE) or one of: started,
    dhcp-range, read-file, exiting, no-address-available, address-in-use,
    duplicate-host-ip, bind-failed, no-address-on-interface, write-failed,
    no-leases-left, wrong-server-id, ignored, option-detail, other."""

    time: float | None = None
    time_inferred: bool = False
    pid: int | None = None
    event: str
    interface: str | None = None
    mac: str | None = None
    ip: str | None = None
    hostname: str | None = None
    xid: int | None = None  # the --log-dhcp transaction number
    detail: str | None = None  # e.g. "no address available", "lease not found", a file path
    version: str | None = None  # for "started, version X"


class DnsmasqProcess(Fact, tag="dnsmasq_process", kw_only=True):
    """A dnsmasq command line (from ps, a pid's cmdline, a sosreport)."""

    pid: int | None = None
    ppid: int | None = None
    user: str | None = None
    state: str | None = None  # ps STAT, e.g. S, T (stopped), Z
    network_id: str | None = None
    interface: str | None = None
    pid_file: str | None = None
    hosts_file: str | None = None
    addn_hosts_file: str | None = None
    opts_file: str | None = None
    leases_file: str | None = None
    conf_file: str | None = None
    log_facility: str | None = None
    log_dhcp: bool = False
    lease_max: int | None = None
    dhcp_ranges: list[str] = []  # raw --dhcp-range values
    bind_mode: str | None = None  # bind-interfaces | bind-dynamic | None (wildcard)
    flags: list[str] = []  # every argument, in order


class HostEntry(Fact, tag="host_entry", kw_only=True):
    """A line of dnsmasq's dhcp-hostsfile (Neutron's `host`)."""

    network_id: str | None = None
    mac: str | None = None
    client_id: str | None = None
    ip: str | None = None
    hostname: str | None = None
    tags: list[str] = []


class OptsEntry(Fact, tag="opts_entry", kw_only=True):
    """A line of dnsmasq's dhcp-optsfile (Neutron's `opts`)."""

    network_id: str | None = None
    tags: list[str] = []
    option: str  # name (router, dns-server, mtu, classless-static-route) or number
    value: str = ""


class LeaseEntry(Fact, tag="lease_entry", kw_only=True):
    """A line of dnsmasq's lease file."""

    network_id: str | None = None
    expiry: float | None = None  # 0 = infinite
    mac: str
    ip: str
    hostname: str | None = None
    client_id: str | None = None


class AddnHostEntry(Fact, tag="addn_host", kw_only=True):
    network_id: str | None = None
    ip: str
    names: list[str] = []


# --- host state ---------------------------------------------------------------------------

class Process(Fact, tag="process", kw_only=True):
    pid: int
    ppid: int | None = None
    user: str | None = None
    state: str | None = None
    command: str  # the full command line
    name: str  # basename of argv[0]


class Namespace(Fact, tag="netns", kw_only=True):
    name: str
    id: int | None = None  # `(id: N)`: what `link-netnsid N` in `ip addr` refers to


class Interface(Fact, tag="interface", kw_only=True):
    """A link from `ip addr`/`ip link` (text or -j); `namespace` is in the origin."""

    name: str
    index: int | None = None
    peer: str | None = None  # "tapX@if12" -> if12, or the peer's name when known
    state: str | None = None  # operstate: UP, DOWN, UNKNOWN, LOWERLAYERDOWN
    admin_up: bool | None = None  # the UP flag
    flags: list[str] = []
    mtu: int | None = None
    mac: str | None = None
    master: str | None = None
    kind: str | None = None  # veth, bridge, vxlan, openvswitch, tun ...
    link_netnsid: int | None = None  # the peer lives in the namespace with this id
    link_netns: str | None = None  # ... or in this named namespace (`link-netns X`)
    addresses: list[str] = []  # "10.0.0.2/24"


class BridgeMember(Fact, tag="bridge_member", kw_only=True):
    """`brctl show`: an interface enslaved to a Linux bridge."""

    bridge: str
    interface: str


class OvsBridge(Fact, tag="ovs_bridge", kw_only=True):
    name: str
    fail_mode: str | None = None
    datapath_type: str | None = None
    controllers: list[str] = []


class OvsPort(Fact, tag="ovs_port", kw_only=True):
    bridge: str | None = None  # None when the source does not say (`list interface`)
    name: str
    tag: int | None = None
    interface_type: str | None = None  # internal, patch, vxlan, gre, geneve, ...
    options: dict[str, str] = {}  # peer, remote_ip, local_ip, key, ...
    external_ids: dict[str, str] = {}  # iface-id, attached-mac, iface-status, vm-uuid
    ofport: int | None = None
    error: str | None = None  # "could not open network device ..."


class OvsFlow(Fact, tag="ovs_flow", kw_only=True):
    bridge: str | None = None
    table: int = 0
    priority: int = 32768
    match: dict[str, str] = {}
    actions: str = ""
    n_packets: int | None = None
    n_bytes: int | None = None
    cookie: str | None = None
    duration: float | None = None  # seconds since the flow was added
    idle_age: int | None = None  # seconds since it last matched a packet


class OvsTrace(Fact, tag="ovs_trace", kw_only=True):
    """`ovs-appctl ofproto/trace`: the way one packet takes through the flow tables."""

    bridge: str | None = None  # where the trace started
    flow: str  # the packet, as the `Flow:` line gives it
    steps: list[str] = []  # "br-int table 0: in_port=11, priority 2, cookie 0x.. -> drop"
    datapath_actions: str | None = None
    dropped: bool = False  # the datapath actions are `drop`


class IptablesChain(Fact, tag="iptables_chain", kw_only=True):
    table: str
    chain: str
    policy: str | None = None  # ACCEPT/DROP for built-ins, None ("-") for user chains
    ip_version: int | None = None  # 4 (iptables) or 6 (ip6tables), when the source tells
    packets: int | None = None
    bytes: int | None = None


class IptablesRule(Fact, tag="iptables_rule", kw_only=True):
    """One rule of `iptables-save [-c]`; `spec` is the rule as saved, without counters."""

    table: str
    chain: str
    spec: str
    number: int | None = None  # 1-based position in its chain
    ip_version: int | None = None  # 4 (iptables) or 6 (ip6tables), when the source tells
    target: str | None = None
    packets: int | None = None
    bytes: int | None = None
    protocol: str | None = None
    source: str | None = None
    destination: str | None = None
    sport: str | None = None
    dport: str | None = None
    physdev_in: str | None = None
    physdev_out: str | None = None
    physdev_is_bridged: bool = False
    mac_source: str | None = None
    in_interface: str | None = None
    out_interface: str | None = None
    comment: str | None = None
    negated: list[str] = []  # names of matches with "!"


class DiskUsage(Fact, tag="disk_usage", kw_only=True):
    filesystem: str
    mount: str
    fstype: str | None = None  # when df printed it (`df -T`)
    size_kb: int | None = None
    used_kb: int | None = None
    avail_kb: int | None = None
    use_percent: int | None = None
    inodes_use_percent: int | None = None


class ConfigValue(Fact, tag="config", kw_only=True):
    """An option of an ini-style config file (neutron.conf, dhcp_agent.ini). Secrets are
    replaced by `***` before they become facts."""

    file: str
    section: str
    key: str
    value: str


class PackageVersion(Fact, tag="package", kw_only=True):
    name: str
    version: str


class HostInfo(Fact, tag="host_info", kw_only=True):
    hostname: str | None = None
    time: float | None = None  # when the evidence was taken (sos `date`)


# --- OpenStack API view -------------------------------------------------------------------

class ApiNetwork(Fact, tag="api_network", kw_only=True):
    id: str
    name: str | None = None
    status: str | None = None
    admin_state_up: bool | None = None
    network_type: str | None = None
    segmentation_id: int | None = None
    mtu: int | None = None
    subnets: list[str] = []
    # the hosts of the DHCP agents hosting it (`network agent list --network X`); None when
    # not asked, [] when asked and none does
    dhcp_agents: list[str] | None = None


class ApiSubnet(Fact, tag="api_subnet", kw_only=True):
    id: str
    name: str | None = None
    network_id: str | None = None
    cidr: str | None = None
    gateway_ip: str | None = None
    enable_dhcp: bool | None = None
    allocation_pools: list[str] = []  # "start-end"
    dns_nameservers: list[str] = []
    host_routes: list[str] = []  # "dest via nexthop"


class ApiPort(Fact, tag="api_port", kw_only=True):
    id: str
    name: str | None = None
    network_id: str | None = None
    mac: str | None = None
    fixed_ips: list[str] = []  # IP addresses
    subnet_ids: list[str] = []
    device_owner: str | None = None
    device_id: str | None = None
    status: str | None = None  # ACTIVE, DOWN, BUILD
    admin_state_up: bool | None = None
    binding_host: str | None = None
    binding_vif_type: str | None = None  # ovs, binding_failed, unbound
    security_groups: list[str] = []
    allowed_address_pairs: list[str] = []


class ApiAgent(Fact, tag="api_agent", kw_only=True):
    id: str | None = None
    agent_type: str  # "DHCP agent", "Open vSwitch agent", ...
    host: str
    alive: bool | None = None
    admin_state_up: bool | None = None
    binary: str | None = None
    heartbeat: float | None = None
    availability_zone: str | None = None
    networks: list[str] = []  # networks it hosts, when the listing says


class ApiServer(Fact, tag="api_server", kw_only=True):
    id: str
    name: str | None = None
    status: str | None = None
    host: str | None = None
    addresses: dict[str, list[str]] = {}  # network name -> IPs


class ComputeService(Fact, tag="compute_service", kw_only=True):
    binary: str
    host: str
    state: str | None = None  # up / down
    status: str | None = None  # enabled / disabled
    updated_at: float | None = None


# --- logs and services --------------------------------------------------------------------

class LogEvent(Fact, tag="log_event", kw_only=True):
    """A line (with its continuation, e.g. a traceback) of a service log.

    `signal` names a known signature the parser recognised (see
    `whynoip.parsers.signatures`), with the values it extracted in `params`; lines without
    a known signature are still kept when they are warnings or errors."""

    time: float | None = None
    time_inferred: bool = False
    service: str | None = None  # neutron-dhcp-agent, rabbitmq, nova-compute, libvirtd ...
    level: str | None = None  # DEBUG INFO WARNING ERROR CRITICAL
    logger: str | None = None
    request_id: str | None = None
    pid: int | None = None
    message: str
    signal: str | None = None
    params: dict[str, str] = {}


class Capture(Fact, tag="capture", kw_only=True):
    """One packet capture (a pcap, a pcapng): how many packets it holds and how many were
    DHCP. A capture that saw no DHCP at all still tells that nothing passed its point on
    the path (its origin: host, namespace, interface)."""

    packets: int = 0
    dhcp_packets: int = 0


class LogSummary(Fact, tag="log_summary", kw_only=True):
    """What a log parser read from one log (section), including what it left out: records
    below WARNING without a known signature are counted in `dropped` (by level) instead of
    becoming facts, so a 100 MB debug log stays cheap and nothing disappears unseen. The
    time span says which window the log covers (an event missing inside it is evidence)."""

    service: str | None = None
    lines: int = 0
    records: int = 0  # log records (a record may span lines: a traceback)
    kept: int = 0  # records that became LogEvent facts (or dnsmasq facts, from syslog)
    dropped: dict[str, int] = {}  # level -> records counted but not kept
    first_time: float | None = None
    last_time: float | None = None
    time_inferred: bool = False


class ServiceState(Fact, tag="service_state", kw_only=True):
    """A service or cluster resource and its state, from pcs/crm_mon, systemctl, service."""

    name: str
    state: str  # running, started, stopped, failed, inactive, unknown
    node: str | None = None
    manager: str | None = None  # pacemaker, systemd, sysv
    detail: str | None = None


class ConsoleEvent(Fact, tag="console_event", kw_only=True):
    """A guest console line about DHCP (udhcpc, dhclient, cloud-init)."""

    time: float | None = None
    guest: str | None = None
    client: str | None = None  # udhcpc, dhclient, cloud-init, systemd-networkd, cirros
    event: str  # client-started, discover-sent, request-sent, offer-received, ack-received, lease-obtained, no-lease, nak, interface-up, interface-down, metadata-unreachable, datasource-failed, other
    ip: str | None = None
    server_ip: str | None = None
    interface: str | None = None
    detail: str | None = None  # e.g. "lease time 86400", "renew", the URL that failed


# --- what could not be read -----------------------------------------------------------------

class Unparsed(Fact, tag="unparsed", kw_only=True):
    """A stretch of input that no parser understood, or a parser rejected, and why.
    Bad input is never dropped silently: it surfaces here."""

    end_line: int | None = None
    reason: str


ALL_FACT_TYPES = (
    DhcpPacket, DnsmasqLogEvent, DnsmasqProcess, HostEntry, OptsEntry, LeaseEntry,
    AddnHostEntry, Process, Namespace, Interface, BridgeMember, OvsBridge, OvsPort, OvsFlow, OvsTrace,
    IptablesChain, IptablesRule, DiskUsage, ConfigValue, PackageVersion, HostInfo,
    ApiNetwork, ApiSubnet, ApiPort, ApiAgent, ApiServer, ComputeService, LogEvent, LogSummary,
    ServiceState, ConsoleEvent, Capture, Unparsed,
)

AnyFact = (
    DhcpPacket | DnsmasqLogEvent | DnsmasqProcess | HostEntry | OptsEntry | LeaseEntry
    | AddnHostEntry | Process | Namespace | Interface | BridgeMember | OvsBridge | OvsPort
    | OvsFlow | OvsTrace | IptablesChain | IptablesRule | DiskUsage | ConfigValue | PackageVersion
    | HostInfo | ApiNetwork | ApiSubnet | ApiPort | ApiAgent | ApiServer | ComputeService
    | LogEvent | LogSummary | ServiceState | ConsoleEvent | Capture | Unparsed
)


def to_json(facts: list[Fact]) -> bytes:
    return msgspec.json.encode(facts)


def from_json(data: bytes) -> list[AnyFact]:
    return msgspec.json.decode(data, type=list[AnyFact])
