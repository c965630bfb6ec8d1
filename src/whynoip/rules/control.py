"""Control-plane findings: agents, the message bus, disks, clusters, compute services.

These are the causes far from DHCP that leave a guest without an IP: a full disk stops
RabbitMQ, the agents lose the bus and are declared dead, new ports never reach dnsmasq."""

from __future__ import annotations

from whynoip import facts as F
from whynoip.findings import Finding
from whynoip.model.picture import Picture
from whynoip.rules._util import cite, first_time


def _signals(pic: Picture, *names: str) -> list[F.LogEvent]:
    return [e for e in pic.of(F.LogEvent) if e.signal in names]


def _by_host(events: list) -> dict[str | None, list]:
    out: dict[str | None, list] = {}
    for e in events:
        out.setdefault(e.origin.host, []).append(e)
    return out


def _agent_down(pic: Picture, agent_type_word: str, fid: str, title: str, fix: list[str]):
    for a in pic.of(F.ApiAgent):
        if agent_type_word.lower() in a.agent_type.lower() and a.alive is False:
            hb = f", last heartbeat {a.heartbeat:.0f}" if a.heartbeat else ""
            yield Finding(id=fid, severity="critical", subject=a.host,
                          title=title.format(host=a.host),
                          evidence=[cite(a, f"{a.agent_type} on {a.host} alive: False{hb}")],
                          time=a.heartbeat, fix=[x.format(host=a.host) for x in fix])


def dhcp_agent_down(pic: Picture):
    yield from _agent_down(pic, "dhcp", "dhcp-agent-down", "The DHCP agent on {host} is down (not reporting)",
                           ["on {host}: systemctl status neutron-dhcp-agent; systemctl restart neutron-dhcp-agent",
                            "if it runs but is reported dead: check its log for AMQP errors and the clocks (NTP)"])


def l2_agent_down(pic: Picture):
    yield from _agent_down(pic, "open vswitch", "l2-agent-down", "The Open vSwitch agent on {host} is down",
                           ["on {host}: systemctl restart neutron-openvswitch-agent"])


def network_not_hosted(pic: Picture):
    signals = _signals(pic, "network-not-scheduled")
    for net in pic.networks.values():
        if not any(s.enable_dhcp for s in pic.subnets_of(net.id)):
            continue
        if net.dhcp_agents is None or net.dhcp_agents:
            continue
        asked = next((n for n in pic.of(F.ApiNetwork) if n.id == net.id and n.dhcp_agents is not None), net)
        ev = [cite(asked, f"no DHCP agent hosts network {net.id}, which has DHCP-enabled subnets")]
        ev += [cite(e) for e in signals[:2]]
        yield Finding(id="network-not-hosted", severity="critical", subject=f"network {net.id}",
                      title=f"No DHCP agent hosts network {net.name or net.id}", evidence=ev,
                      fix=[f"openstack network agent add network --dhcp <dhcp-agent-id> {net.id}",
                           "check network_auto_schedule and that DHCP agents are alive"])


def port_binding_failed(pic: Picture):
    for p in pic.of(F.ApiPort):
        if p.binding_vif_type == "binding_failed":
            yield Finding(id="port-binding-failed", severity="critical", subject=f"port {p.id}",
                          title=f"Port {p.id} failed to bind to {p.binding_host or 'its host'}",
                          evidence=[cite(p, f"binding:vif_type binding_failed on {p.binding_host}")],
                          fix=["check the L2 agent on that host is alive and its bridge mappings / tunnel config match",
                               "then rebind: openstack port set --host <host> <port> or rebuild the instance"])
    for host, evs in _by_host(_signals(pic, "port-binding-failed", "bind-dead-agent")).items():
        yield Finding(id="port-binding-failed", severity="critical", subject=f"{host}",
                      title="Ports fail to bind" + (" (the agent is dead)" if any(e.signal == "bind-dead-agent" for e in evs) else ""),
                      evidence=[cite(e) for e in evs[:3]], time=first_time(evs),
                      fix=["make the L2 agent on the target host alive, then rebuild or rebind the ports"])


def rabbitmq_unreachable(pic: Picture):
    evs = _signals(pic, "amqp-unreachable", "amqp-connection-refused", "amqp-blocked")
    if not evs:
        return
    hosts = sorted({e.origin.host or "?" for e in evs})
    target = next((f"{e.params.get('host')}:{e.params.get('port')}" for e in evs if e.params.get("host")), "the broker")
    yield Finding(id="rabbitmq-unreachable", severity="critical", subject=target,
                  title=f"Services on {', '.join(hosts)} cannot reach the message bus ({target})",
                  evidence=[cite(e) for e in evs[:4]], time=first_time(evs),
                  fix=["check the broker: rabbitmqctl status; rabbitmqctl cluster_status; its disk and memory alarms",
                       "once it is back, restart the agents that did not reconnect"])


def rabbitmq_disk_alarm(pic: Picture):
    evs = _signals(pic, "disk-alarm-set", "disk-free-insufficient")
    if evs:
        yield Finding(id="rabbitmq-disk-alarm", severity="critical", subject=evs[0].origin.host or "rabbitmq",
                      title="RabbitMQ raised its disk alarm and blocks publishers",
                      evidence=[cite(e) for e in evs[:3]], time=first_time(evs),
                      fix=["free disk space on the broker's data directory filesystem",
                           "rabbitmqctl status shows when the alarm clears; then restart the agents"])


def rabbitmq_cluster_inconsistent(pic: Picture):
    evs = _signals(pic, "inconsistent-cluster", "network-partition")
    if evs:
        yield Finding(id="rabbitmq-cluster-inconsistent", severity="critical", subject=evs[0].origin.host or "rabbitmq",
                      title="A RabbitMQ node disagrees about the cluster's membership",
                      evidence=[cite(e) for e in evs[:3]], time=first_time(evs),
                      fix=["on the node that left: rabbitmqctl stop_app; rabbitmqctl reset; "
                           "rabbitmqctl join_cluster rabbit@<peer>; rabbitmqctl start_app"])


def disk_full(pic: Picture):
    for d in pic.of(F.DiskUsage):
        full = (d.use_percent is not None and d.use_percent >= 100) or (d.avail_kb == 0 and (d.size_kb or 0) > 0)
        if full or (d.inodes_use_percent or 0) >= 100:
            yield Finding(id="disk-full", severity="critical", subject=f"{d.mount} on {d.origin.host}",
                          title=f"{d.mount} on {d.origin.host} is full",
                          evidence=[cite(d, f"{d.filesystem} {d.mount} {d.use_percent}% used, {d.avail_kb} KB free")],
                          fix=[f"on {d.origin.host}: du -xsh {d.mount}/* | sort -h | tail  # what filled it",
                               "free it, then restart the services that failed to write (DHCP agent, RabbitMQ, ...)"])
    for host, evs in _by_host(_signals(pic, "no-space")).items():
        if any(d.origin.host == host and ((d.use_percent or 0) >= 100) for d in pic.of(F.DiskUsage)):
            continue
        yield Finding(id="disk-full", severity="critical", subject=f"{host}",
                      title=f"A filesystem on {host} is full: writes fail with 'No space left on device'",
                      evidence=[cite(e) for e in evs[:3]], time=first_time(evs),
                      fix=[f"on {host}: df -h; du -xsh /var/* | sort -h  # find and free it"])


def pacemaker_resource_stopped(pic: Picture):
    for s in pic.of(F.ServiceState):
        if s.manager == "pacemaker" and s.state in ("stopped", "failed"):
            yield Finding(id="pacemaker-resource-stopped", severity="critical", subject=s.name,
                          title=f"Cluster resource {s.name} is {s.state}" + (f" on {s.node}" if s.node else ""),
                          evidence=[cite(s)],
                          fix=[f"pcs resource cleanup {s.name}; pcs resource enable {s.name}; then pcs status"])


def libvirt_unavailable(pic: Picture):
    for host, evs in _by_host(_signals(pic, "libvirt-socket-missing", "libvirt-connection-lost")).items():
        yield Finding(id="libvirt-unavailable", severity="critical", subject=f"{host}",
                      title=f"nova-compute on {host} cannot reach libvirtd",
                      evidence=[cite(e) for e in evs[:3]], time=first_time(evs),
                      fix=[f"on {host}: systemctl restart libvirtd, then systemctl restart nova-compute"])


def nova_compute_down(pic: Picture):
    for s in pic.of(F.ComputeService):
        if s.binary == "nova-compute" and s.state == "down":
            yield Finding(id="nova-compute-down", severity="critical", subject=s.host,
                          title=f"nova-compute on {s.host} is down", evidence=[cite(s)], time=s.updated_at,
                          fix=[f"on {s.host}: systemctl status nova-compute; check libvirtd and the message bus"])
    for host, evs in _by_host(_signals(pic, "nova-compute-down")).items():
        yield Finding(id="nova-compute-down", severity="critical", subject=f"{host}",
                      title="nova-compute is reported down", evidence=[cite(e) for e in evs[:3]],
                      time=first_time(evs), fix=["systemctl restart nova-compute on that host"])


def clock_skew(pic: Picture):
    evs = _signals(pic, "clock-skew", "clock-step")
    if evs:
        yield Finding(id="clock-skew", severity="warning", subject=evs[0].origin.host or "?",
                      title="Clocks disagree: agents can look dead while they report",
                      evidence=[cite(e) for e in evs[:3]], time=first_time(evs),
                      fix=["chronyc tracking / ntpq -p on every node; fix NTP, then restart the agents"])


def dhcp_agent_misconfigured(pic: Picture):
    evs = _signals(pic, "rootwrap-failed", "interface-driver-wrong", "dnsmasq-binary-missing")
    for host, hevs in _by_host(evs).items():
        yield Finding(id="dhcp-agent-misconfigured", severity="critical", subject=f"{host}",
                      title=f"The DHCP agent on {host} cannot manage dnsmasq",
                      evidence=[cite(e) for e in hevs[:3]], time=first_time(hevs),
                      fix=["check interface_driver in dhcp_agent.ini, root_helper/rootwrap filters, "
                           "and that the dnsmasq binary is installed"])


RULES = (dhcp_agent_down, l2_agent_down, network_not_hosted, port_binding_failed, rabbitmq_unreachable,
         rabbitmq_disk_alarm, rabbitmq_cluster_inconsistent, disk_full, pacemaker_resource_stopped,
         libvirt_unavailable, nova_compute_down, clock_skew, dhcp_agent_misconfigured)
