"""The signature table turns the wording of real log lines into signals the rules can use.
Every line below is a real one (a fixture, a public thread) or the exact format string of
the source file cited in the table, filled with plausible values."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip.parsers import signatures as S

PORT = "0f0de1cd-2172-4885-b017-446186ab3b06"
NET = "e134ba9d-0187-4cfe-b42e-29368826cef5"

CASES = [
    # oslo.messaging (impl_rabbit.py format strings; DOMAIN.md's example line)
    ("AMQP server on 10.20.0.11:5672 is unreachable: [Errno 32] Broken pipe. Trying again in 5 "
     "seconds.", "amqp-unreachable",
     {"host": "10.20.0.11", "port": "5672", "reason": "[Errno 32] Broken pipe", "retry": "5"}),
    ("[f2b0e7a4-0c48-4a53-9b0d-56c2cd8fbe2f] AMQP server on rabbit-1.internal:5671 is unreachable: "
     "timed out. Trying again in 1 seconds.: socket.timeout: timed out", "amqp-unreachable",
     {"host": "rabbit-1.internal", "port": "5671", "reason": "timed out", "retry": "1"}),
    ("[f2b0e7a4-0c48-4a53-9b0d-56c2cd8fbe2f] Reconnected to AMQP server on 10.20.0.11:5672 via "
     "[amqp] client with port 51424.", "amqp-reconnected", {"host": "10.20.0.11", "port": "5672"}),
    # real: hotsos neutron-dhcp-agent.log.1 2022-02-09 22:38:46
    ("Connection failed: [Errno 111] ECONNREFUSED (retrying in 2.0 seconds): ConnectionRefusedError:"
     " [Errno 111] ECONNREFUSED", "amqp-connection-refused",
     {"reason": "[Errno 111] ECONNREFUSED", "retry": "2.0"}),
    ("Connection failed: [Errno 113] EHOSTUNREACH (retrying in 4.0 seconds): OSError: [Errno 113] "
     "EHOSTUNREACH", "amqp-unreachable", {"reason": "[Errno 113] EHOSTUNREACH", "retry": "4.0"}),
    ("The broker has blocked the connection: low on disk", "amqp-blocked", {"reason": "low on disk"}),
    # real: hotsos neutron-dhcp-agent.log.1
    ("Failed reporting state!: oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a "
     "reply to message ID 5c4d5e139a5a481ba8d5687f1525a0fe", "agent-report-failed",
     {"reason": "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to "
                "message ID 5c4d5e139a5a481ba8d5687f1525a0fe"}),
    ("Agent has just been revived. Scheduling full sync", "agent-revived", {}),
    ("Open vSwitch agent Agent has just been revived. Doing a full sync.", "agent-revived", {}),
    ("Timeout in RPC method get_active_networks_info. Waiting for 21 seconds before next attempt. "
     "If the server is not down, consider increasing the rpc_response_timeout option as Neutron "
     "server(s) may be overloaded and unable to respond quickly enough.", "messaging-timeout",
     {"method": "get_active_networks_info", "wait": "21"}),
    ("Synchronizing state", "dhcp-sync-start", {}),
    ("Synchronizing state complete", "dhcp-sync-complete", {}),
    ("Unable to sync network state.: oslo_messaging.exceptions.MessagingTimeout: Timed out waiting "
     "for a reply to message ID f5bc088db46646fd8ca8a41f5f93a6b7", "dhcp-sync-failed",
     {"reason": "oslo_messaging.exceptions.MessagingTimeout: Timed out waiting for a reply to "
                "message ID f5bc088db46646fd8ca8a41f5f93a6b7"}),
    (f"Unable to sync network state on deleted network {NET}", "dhcp-sync-failed", {"network": NET}),
    (f"Unable to reload_allocations dhcp for {NET}.", "dhcp-action-failed",
     {"action": "reload_allocations", "network": NET}),
    (f"Trigger reload_allocations for port {PORT} on network {NET}", "dhcp-reload",
     {"port": PORT, "network": NET}),
    # real (2016, quoted in a public write-up): the port as a dict dump
    ("Trigger reload_allocations for port admin_state_up=True, allowed_address_pairs=[], "
     "binding:host_id=, binding:profile=, binding:vif_details=, binding:vif_type=unbound, "
     f"binding:vnic_type=normal, created_at=2016-11-04T02:11:43, id={PORT}, network_id={NET}",
     "dhcp-reload", {"port": PORT, "network": NET, "vif_type": "unbound"}),
    (f"dnsmasq for dhcp with uuid {NET} not found. The process should not have died",
     "dnsmasq-not-found", {"service": "dnsmasq", "resource": "dhcp", "network": NET}),
    (f"haproxy for metadata with uuid {NET} not found. The process should not have died",
     "child-process-died", {"service": "haproxy", "resource": "metadata", "uuid": NET}),
    (f"Respawning dnsmasq for uuid {NET}", "dnsmasq-respawn", {"service": "dnsmasq", "network": NET}),
    (f"VIF port: {PORT} admin state up disabled, putting on the dead VLAN", "dead-vlan",
     {"port": PORT}),
    (f"Failed to bind port {PORT} on host compute-1 for vnic_type normal using segments "
     "[{'id': 'b9e3', 'network_type': 'vxlan', 'physical_network': None, 'segmentation_id': 1043}]",
     "port-binding-failed", {"port": PORT, "host": "compute-1", "vnic_type": "normal",
                             "segments": "[{'id': 'b9e3', 'network_type': 'vxlan', "
                                         "'physical_network': None, 'segmentation_id': 1043}]"}),
    (f"Refusing to bind port {PORT} to dead agent: {{'id': 'a1', 'host': 'compute-1', "
     "'alive': False}", "bind-dead-agent", {"port": PORT, "host": "compute-1"}),
    (f"Unable to schedule network {NET}: no agents available; will retry on subsequent port and "
     "subnet creation events.", "network-not-scheduled", {"network": NET}),
    # real (2022, quoted in a public write-up of a nova-compute log)
    (f"[instance: d892d127-6381-4f17-a019-7581c3bf10ad] Timeout waiting for [('network-vif-plugged',"
     f" '{PORT}')] for instance with vm_state building and task_state spawning: "
     "eventlet.timeout.Timeout: 300 seconds", "vif-plug-timeout",
     {"port": PORT, "vm_state": "building", "task_state": "spawning"}),
    ("Seems service nova-compute on host compute-1 is down. Last heartbeat was 2022-02-10 "
     "16:00:01. Elapsed time is 93.1", "nova-compute-down",
     {"binary": "nova-compute", "host": "compute-1", "heartbeat": "2022-02-10 16:00:01",
      "elapsed": "93.1"}),
    ("Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory",
     "libvirt-socket-missing",
     {"socket": "/var/run/libvirt/libvirt-sock", "reason": "No such file or directory"}),
    ("Error importing interface driver 'openvswitch': No module named openvswitch",
     "interface-driver-wrong", {"driver": "openvswitch", "reason": "No module named openvswitch"}),
    ("Stderr: /usr/bin/neutron-rootwrap: Unauthorized command: ip netns exec qdhcp-x ip link "
     "(no filter matched)", "rootwrap-failed", {"cmd": "ip netns exec qdhcp-x ip link"}),
    ("Exit code: 1; Cmd: ['ip', 'netns', 'exec', 'qdhcp-x', 'ip', 'link']; Stdin: ; Stdout: ; "
     "Stderr: Cannot open network namespace \"qdhcp-x\": No such file or directory",
     "command-failed", {"exit_code": "1", "cmd": "['ip', 'netns', 'exec', 'qdhcp-x', 'ip', 'link']",
                        "stderr": "Cannot open network namespace \"qdhcp-x\": No such file or "
                                  "directory"}),
    ("Stderr: '/usr/bin/neutron-rootwrap: Executable not found: dnsmasq (filter match = dnsmasq)\\n'",
     "dnsmasq-binary-missing", {"path": "dnsmasq"}),
    ("FileNotFoundError: [Errno 2] No such file or directory: 'dnsmasq'", "dnsmasq-binary-missing",
     {"file": "dnsmasq"}),
    # RabbitMQ (captured 3.10 log; public 3.x/3.7/3.9 lines, see rabbitmq_log/public/SOURCES.md)
    ("disk resource limit alarm set on node 'wnp-log@localhost'.", "disk-alarm-set",
     {"node": "wnp-log@localhost"}),
    ("disk resource limit alarm set on node rabbit@machine.", "disk-alarm-set",
     {"node": "rabbit@machine"}),
    ("disk resource limit alarm cleared across the cluster", "disk-alarm-cleared", {}),
    ("Disk free space insufficient. Free bytes:730202112 Limit:1000000000", "disk-free-insufficient",
     {"free_bytes": "730202112", "limit_bytes": "1000000000"}),
    ("Free disk space is insufficient. Free bytes: 85321617408. Limit: 1000000000000000",
     "disk-free-insufficient", {"free_bytes": "85321617408", "limit_bytes": "1000000000000000"}),
    ("{error,{inconsistent_cluster,\"Node 'rabbit@VM-73-21-centos' thinks it's clustered with node "
     "'rabbit@VM-74-6-centos', but 'rabbit@VM-74-6-centos' disagrees\"}}", "inconsistent-cluster",
     {"node": "rabbit@VM-73-21-centos", "peer": "rabbit@VM-74-6-centos"}),
    ("IOError: [Errno 28] No space left on device: '/var/lib/nova/instances/_base/9f3d'",
     "no-space", {"path": "/var/lib/nova/instances/_base/9f3d"}),
    ("{error,enospc}", "no-space", {}),
    ("System clock wrong by -140.497787 seconds, adjustment started", "clock-step",
     {"offset": "-140.497787"}),
]


@pytest.mark.parametrize("text, signal, params", CASES, ids=[c[1] for c in CASES])
def test_a_known_wording_gives_its_signal_and_values(text, signal, params):
    assert S.has_needle(text)
    assert S.match(text) == (signal, params)


def test_the_health_check_gives_one_signal_per_dead_agent():
    # neutron/db/agents_db.py prints the dead agents as a table under the headline
    text = ("Agent healthcheck: found 2 dead agents out of 5:\n"
            "                Type       Last heartbeat host\n"
            "          DHCP agent  2016-11-10 09:58:36 net-02\n"
            "  Open vSwitch agent  2016-11-10 09:58:31 compute-1")
    found = S.match_all(text)
    assert [p["agent_host"] for _, p in found] == ["net-02", "compute-1"]
    assert {s for s, _ in found} == {"agent-down"}
    assert found[0][1] == {"count": "2", "total": "5", "agent_type": "DHCP agent",
                           "heartbeat": "2016-11-10 09:58:36", "agent_host": "net-02"}


@pytest.mark.parametrize("text", [
    # a DEBUG line that only quotes past reasons (real: hotsos neutron-dhcp-agent.log.1)
    "resync (*): [MessagingTimeout('Timed out waiting for a reply to message ID "
    "f5bc088db46646fd8ca8a41f5f93a6b7'), 'Agent has just been revived']",
    "Lock \"_check_child_processes\" acquired by \"neutron.agent.linux.external_process."
    "ProcessMonitor._check_child_processes\" :: waited 0.000s",
    "Exit code: 0",
    "Synchronizing",
])
def test_quotes_and_noise_are_not_signals(text):
    assert S.match(text) is None


def test_every_signal_name_is_kebab_case_and_cited():
    for sig in S.SIGNATURES:
        assert sig.signal == sig.signal.lower() and " " not in sig.signal and "_" not in sig.signal
        assert sig.source.strip()
        assert sig.needles and all(sig.needles)


@pytest.mark.parametrize("text, signal, params", CASES, ids=[c[1] for c in CASES])
def test_a_signature_cannot_match_without_one_of_its_needles(text, signal, params):
    sig = next(s for s in S.SIGNATURES if s.signal == signal and s.pattern.search(text))
    assert any(n in text for n in sig.needles)


# What OpenStack services log below WARNING, so what the oslo_log prefilter must let through.
QUIET_LINES = [
    "Synchronizing state", "Synchronizing state complete",
    "Agent has just been revived. Scheduling full sync",
    f"Trigger reload_allocations for port {PORT} on network {NET}",
    "[f2b0e7a4] Reconnected to AMQP server on 10.20.0.11:5672 via [amqp] client with port 51424.",
    "The broker has unblocked the connection",
    f"VIF port: {PORT} admin state up disabled, putting on the dead VLAN",
    "Seems service nova-compute on host compute-1 is down. Last heartbeat was 2022-02-10 "
    "16:00:01. Elapsed time is 93.1",
    f"Unable to reload_allocations dhcp for {NET}: there is a conflict with its current state; "
    "please check that the network and/or its subnet(s) still exist.",
    "Connection event '0' reason 'Connection to libvirt lost: 0'",
]


@pytest.mark.parametrize("text", QUIET_LINES)
def test_the_fast_prefilter_lets_quiet_signatures_through(text):
    assert S.may_match_quiet(text)
    assert S.match(text) is not None


@given(st.text())
@settings(max_examples=300, deadline=None)
def test_any_text_never_raises(text):
    S.match_all(text)
    S.has_needle(text)
    S.may_match_quiet(text)


def test_the_prefilter_never_misses_a_needle():
    # has_needle is sound by construction: every needle holds a capital-letter key or is
    # (or holds) one of the few residual substrings
    for needle in S._NEEDLES:
        assert S.has_needle(needle), needle
        assert S.has_needle(f"noise before {needle} and after"), needle


_PIECES = list(S._NEEDLES) + list(S.QUIET_KEYS)


@settings(max_examples=3000, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(_PIECES), st.integers(0, 60), st.integers(0, 60), st.booleans()),
                min_size=1, max_size=5), st.text(max_size=8))
def test_needles_found_through_anchors_are_all_the_needles(parts, glue):
    # pieces of needles and keys glued so that they overlap: no needle may be missed
    text = glue.join(w if whole else w[a:b] for w, a, b, whole in parts)
    assert S.needles_in(text) == {n for n in S._NEEDLES if n in text}
