"""Control-plane findings: agents, the message bus, disks, clusters, compute services.

These are the causes far from DHCP that leave a guest without an IP: a full disk stops
RabbitMQ, the agents lose the bus and are declared dead, new ports never reach dnsmasq."""

from __future__ import annotations

import re
import time

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


def _hhmmss(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)) + "Z"


def _agent_down(pic: Picture, agent_type_word: str, fid: str, title: str, fix: list[str]):
    word = agent_type_word.lower()
    # the server's own word: "Agent healthcheck: found N dead agents" with a row per agent
    checks = [e for e in _signals(pic, "agent-down")
              if word in e.params.get("agent_type", "").lower() and e.params.get("agent_host")]
    by_host: dict[str, list[F.ApiAgent]] = {}
    for a in pic.of(F.ApiAgent):
        if word in a.agent_type.lower():
            by_host.setdefault(a.host, []).append(a)
    for host, rows in by_host.items():
        dead = [a for a in rows if a.alive is False]
        if not dead:
            continue
        beats = [a.heartbeat for a in rows if a.heartbeat]
        last = max(beats) if beats else None
        ev = [cite(a, f"{a.agent_type} on {a.host} alive: False"
                      + (f", last heartbeat {_hhmmss(a.heartbeat)}" if a.heartbeat else "")) for a in dead]
        # when the server found it dead: its first health check that names it after its last report
        found = [e for e in checks if e.params["agent_host"] == host and e.time and (last is None or e.time > last)]
        ev += [cite(e) for e in found[:1]]
        yield Finding(id=fid, severity="critical", subject=host,
                      title=title.format(host=host, since=f" since {_hhmmss(last)}" if last else ""), evidence=ev,
                      time=found[0].time if found else last, fix=[x.format(host=host) for x in fix])


def dhcp_agent_down(pic: Picture):
    yield from _agent_down(pic, "dhcp", "dhcp-agent-down", "The DHCP agent on {host} is down (not reporting{since})",
                           ["on {host}: systemctl status neutron-dhcp-agent; systemctl restart neutron-dhcp-agent",
                            "if it runs but is reported dead: check its log for AMQP errors and the clocks (NTP)"])


def l2_agent_down(pic: Picture):
    yield from _agent_down(pic, "open vswitch", "l2-agent-down", "The Open vSwitch agent on {host} is down (not reporting{since})",
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
    if all(e.signal == "amqp-blocked" for e in evs):  # reachable, but it reads nothing they publish
        title = f"The message bus blocks what services on {', '.join(hosts)} publish"
    else:
        title = f"Services on {', '.join(hosts)} cannot reach the message bus ({target})"
    back = _reconnected(pic, evs)
    severity, evidence = "critical", [cite(e) for e in evs[:4]]
    if back:  # every service that lost the bus has it again: a past outage, not the state now
        severity = "warning"
        last = max(e.time for e in back)
        title = title.replace("cannot reach", "could not reach").replace("blocks", "blocked") + \
            f" (reconnected by {_hhmmss(last)})"
        evidence += [cite(e) for e in back[-2:]]
    yield Finding(id="rabbitmq-unreachable", severity=severity, subject=target,
                  title=title,
                  evidence=evidence, time=first_time(evs),
                  fix=["check the broker: rabbitmqctl status; rabbitmqctl cluster_status; its disk and memory alarms",
                       "if it is not running: systemctl start rabbitmq-server (or its pacemaker resource); its log "
                       "(/var/log/rabbitmq/rabbit@<host>.log) says why it stopped",
                       "once it is back, restart the agents that did not reconnect"])


def _reconnected(pic: Picture, evs: list[F.LogEvent]) -> list[F.LogEvent]:
    """The reconnections that ended the outage `evs` tell of, when each service (host and
    process) that lost the bus logged one after its last failure; else []."""
    back = _signals(pic, "amqp-reconnected", "amqp-unblocked")
    last_bad: dict[tuple, float] = {}
    for e in evs:
        if e.time is None:
            return []  # without times, nothing says which came last
        key = (e.origin.host, e.service, e.pid)
        last_bad[key] = max(last_bad.get(key, e.time), e.time)
    ended = []
    for key, t in last_bad.items():
        later = [b for b in back if (b.origin.host, b.service, b.pid) == key and b.time is not None and b.time > t]
        if not later:
            return []
        ended.append(later[-1])
    return sorted(ended, key=lambda b: b.time)


def rabbitmq_disk_alarm(pic: Picture):
    evs = _signals(pic, "disk-alarm-set", "disk-free-insufficient")
    if evs:
        host = evs[0].origin.host or "rabbitmq"
        free = [(int(e.params["free_bytes"]), int(e.params["limit_bytes"])) for e in evs
                if e.signal == "disk-free-insufficient" and e.params.get("free_bytes", "").isdigit()
                and e.params.get("limit_bytes", "").isdigit()]
        if free and free[-1][0] >= 1_000_000 and free[-1][1] >= 10 * free[-1][0]:  # the limit is what is wrong
            fix = [f"the free-disk limit ({free[-1][1]} bytes) is above what the disk has free ({free[-1][0]} bytes): "
                   f"on {host}: rabbitmqctl set_disk_free_limit 50MB (and disk_free_limit.absolute in rabbitmq.conf)"]
        else:
            fix = [f"on {host}: df -h /var/lib/rabbitmq; free space on the filesystem of the broker's data directory"]
        fix += ["the alarm clears by itself once free space is above the limit (rabbitmqctl status: Alarms); "
                "blocked publishers then resume"]
        yield Finding(id="rabbitmq-disk-alarm", severity="critical", subject=host,
                      title="RabbitMQ raised its disk alarm and blocks publishers",
                      evidence=[cite(e) for e in evs[:3]], time=first_time(evs), fix=fix)


def rabbitmq_cluster_inconsistent(pic: Picture):
    evs = _signals(pic, "inconsistent-cluster", "network-partition")
    if evs:
        named = next((e for e in evs if e.params.get("node") and e.params.get("peer")), None)
        if named:
            node, peer = named.params["node"], named.params["peer"]
            title = f"RabbitMQ node {node} thinks it is clustered with {peer}, which disagrees: it does not start"
            fix = [f"make the nodes agree: stop {peer} (rabbitmqctl -n {peer} stop_app), start {node} and "
                   f"rabbitmqctl forget_cluster_node {peer} on it; or reset {node} (rabbitmqctl -n {node} reset) "
                   "and start it alone",
                   f"then re-join {peer}: rabbitmqctl -n {peer} stop_app; rabbitmqctl -n {peer} reset; "
                   f"rabbitmqctl -n {peer} join_cluster {node}; rabbitmqctl -n {peer} start_app"]
        else:
            title = "A RabbitMQ node disagrees about the cluster's membership"
            fix = ["on the node that left: rabbitmqctl stop_app; rabbitmqctl reset; "
                   "rabbitmqctl join_cluster rabbit@<peer>; rabbitmqctl start_app"]
        yield Finding(id="rabbitmq-cluster-inconsistent", severity="critical", subject=evs[0].origin.host or "rabbitmq",
                      title=title, evidence=[cite(e) for e in ([named] if named else []) + evs[:3]],
                      time=first_time(evs), fix=fix)


# Filesystems that are always 100% used by design: read-only images (snap packages are
# squashfs images mounted from /dev/loopN under /snap; ISO and other read-only formats). A
# node with snaps shows several in `df`; none of them is a disk that filled.
READ_ONLY_IMAGES = frozenset(("squashfs", "iso9660", "udf", "cramfs", "erofs", "romfs"))
_IMAGE_MOUNT_RE = re.compile(r"^(?:/snap/|/var/lib/snapd/snap/)")


def read_only_image(d: F.DiskUsage) -> bool:
    return (d.fstype in READ_ONLY_IMAGES or bool(_IMAGE_MOUNT_RE.match(d.mount))
            or d.filesystem.startswith("/dev/sr"))


def _full(d: F.DiskUsage) -> bool:
    if read_only_image(d):
        return False
    return ((d.use_percent is not None and d.use_percent >= 100) or (d.avail_kb == 0 and (d.size_kb or 0) > 0)
            or (d.inodes_use_percent or 0) >= 100)


def disk_full(pic: Picture):
    for d in pic.of(F.DiskUsage):
        if _full(d):
            # what failed to write on that host (or the broker finding too little space) tells when it filled
            writes = [e for e in _signals(pic, "no-space", "disk-free-insufficient")
                      if e.origin.host == d.origin.host]
            yield Finding(id="disk-full", severity="critical", subject=f"{d.mount} on {d.origin.host}",
                          title=f"{d.mount} on {d.origin.host} is full",
                          evidence=[cite(d, f"{d.filesystem} {d.mount} {d.use_percent}% used, {d.avail_kb} KB free")]
                          + [cite(e) for e in writes[:2]], time=first_time(writes),
                          fix=[f"on {d.origin.host}: du -xsh {d.mount}/* | sort -h | tail  # what filled it",
                               "free it, then restart the services that failed to write (DHCP agent, RabbitMQ, ...)"])
    for host, evs in _by_host(_signals(pic, "no-space")).items():
        if any(d.origin.host == host and _full(d) for d in pic.of(F.DiskUsage)):
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
        hosts = sorted({e.params.get("host") or e.origin.host or "?" for e in evs})
        dead = sorted({a.host for a in pic.of(F.ApiAgent) if a.alive is False and a.host in hosts})
        diffs = [abs(float(e.params["diff"])) for e in evs if e.params.get("diff")]
        by = f" by {max(diffs):.0f} s" if diffs else ""
        title = (f"The clock of {', '.join(hosts)} is off{by}: its agents look dead while they report"
                 if dead else "Clocks disagree: agents can look dead while they report")
        yield Finding(id="clock-skew", severity="critical" if dead else "warning", subject=", ".join(hosts),
                      title=title, evidence=[cite(e) for e in evs[:3]], time=first_time(evs),
                      fix=[f"on {h}: chronyc tracking (or ntpq -p); set the clock right (chronyc makestep)" for h in hosts]
                      + ["then restart the agents there: their reports carry the wrong time until then"])


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
