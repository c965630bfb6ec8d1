"""dnsmasq's own account of each DHCP exchange, from every shape its log takes: the
--log-facility file with --log-dhcp, rsyslog files, journalctl output and stderr. Fixtures
are real dnsmasq 2.90 output from tests/fixtures/capture/dnsmasq_server.sh."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import dnsmasq_log as P

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "dnsmasq_log"
NET = "8d1f6b4e-2c3a-4f5e-9b7d-0c41a2e7d3b9"
CAPTURED = datetime(2026, 11, 22, tzinfo=timezone.utc).timestamp()  # the day after the capture
CASES = sorted(p.name for p in FIXTURES.iterdir() if not p.name.endswith(".json"))


def run(name: str, text: str | None = None, path: str | None = None) -> list[F.Fact]:
    if text is None:
        text = (FIXTURES / name).read_text()
    section = Section.from_text(text, F.Origin(path=path or name, line=1))
    section.ref_time = CAPTURED
    return list(P.parse(section))


def events(name: str) -> list[F.DnsmasqLogEvent]:
    facts = run(name)
    return [f for f in facts if isinstance(f, F.DnsmasqLogEvent)]


def find(name: str, **want) -> list[F.DnsmasqLogEvent]:
    return [e for e in events(name) if all(getattr(e, k) == v for k, v in want.items())]


@pytest.mark.parametrize("name", CASES)
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


@pytest.mark.parametrize("name", [c for c in CASES if c != "bind_failed.stderr"])
def test_every_line_of_a_dnsmasq_file_is_read(name: str):
    assert not [f for f in run(name) if isinstance(f, F.Unparsed)]


def test_a_full_exchange_with_log_dhcp_carries_the_xid():
    (ack,) = find("logfacility_neutron.log", event="DHCPACK", ip="10.8.1.14")
    assert ack.mac == "fa:16:3e:4a:0b:91" and ack.hostname == "host-10-8-1-14"
    assert ack.interface == "tap3f8e2a61-c4" and ack.pid == 19627 and ack.xid == 2427790453
    assert ack.time == datetime(2026, 11, 21, 6, 24, 37, tzinfo=timezone.utc).timestamp()
    assert ack.time_inferred  # the file format has no year
    same = [e.event for e in events("logfacility_neutron.log") if e.xid == 2427790453]
    assert same[:1] == ["option-detail"] and "DHCPDISCOVER" in same and "DHCPOFFER" in same
    (name,) = [e for e in events("logfacility_neutron.log")
               if e.xid == 2427790453 and e.hostname == "web-1" and e.event == "option-detail"][:1]
    assert name.detail == "client provides name: web-1"


def test_the_failure_reasons_dnsmasq_appends():
    (missing, again) = find("logfacility_neutron.log", event="DHCPDISCOVER", mac="fa:16:3e:c2:57:0d")
    assert missing.detail == "no address available" and missing.xid == 1243092802 and missing.ip is None
    (nak,) = find("logfacility_neutron.log", event="DHCPNAK", detail="lease not found")
    assert (nak.ip, nak.mac, nak.xid) == ("10.8.1.50", "fa:16:3e:c2:57:0d", 3296590080)
    (in_use,) = find("logfacility_neutron.log", event="DHCPNAK", detail="address in use")
    assert (in_use.ip, in_use.mac) == ("10.8.1.14", "fa:16:3e:5d:21:8c")
    (limit, _) = find("lease_max.log", event="DHCPNAK")
    assert (limit.detail, limit.mac, limit.xid) == ("no leases left", "fa:16:3e:7b:e1:3f", 136209279)
    (wrong,) = find("authoritative.log", event="DHCPNAK")
    assert (wrong.detail, wrong.ip, wrong.xid) == ("wrong server-ID", "10.8.1.101", 3521047571)
    (decline,) = find("authoritative.log", event="DHCPDECLINE")
    assert (decline.ip, decline.mac, decline.detail) == ("10.8.1.100", "fa:16:3e:4a:0b:91", None)


def test_stale_lease_duplicate_host_and_an_address_less_tap():
    stale = find("logfacility_neutron.log", event="address-in-use")
    assert len(stale) == 2 and {(e.ip, e.mac) for e in stale} == {("10.8.1.14", "fa:16:3e:4a:0b:91")}
    (dup,) = find("logfacility_neutron.log", event="duplicate-host-ip")
    assert dup.ip == "10.8.1.14" and dup.detail == f"at line 6 of /var/lib/neutron/dhcp/{NET}/host"
    deaf = find("logfacility_neutron.log", event="no-address-on-interface")
    assert [e.interface for e in deaf] == ["tap3f8e2a61-c4"] * 2


def test_a_dnsmasq_that_died_on_reload_starts_again_with_a_new_pid():
    started = find("logfacility_neutron.log", event="started")
    assert [(e.pid, e.version) for e in started] == [(19627, "2.90"), (20295, "2.90")]
    assert [e.event for e in events("logfacility_neutron.log")][-1] == "exiting"
    assert find("logfacility_neutron.log", event="exiting")[0].detail == "SIGTERM"


def test_dhcpv6_lines_give_the_mac_inside_the_duid():
    (reply,) = find("logfacility_neutron.log", event="DHCPREPLY")
    assert reply.ip == "fd00:8:1::6" and reply.mac == "fa:16:3e:6e:60:06"
    assert reply.hostname == "host-fd00-8-1--6" and reply.detail.startswith("duid 00:01:00:01:")


def test_startup_lines():
    ranges = find("logfacility_neutron.log", event="dhcp-range", pid=19627)
    assert [e.ip for e in ranges] == ["10.8.1.0", "fd00:8:1::"]
    assert ranges[0].detail == "DHCP, static leases only on 10.8.1.0, lease time 1d"
    reads = [e.detail for e in find("logfacility_neutron.log", event="read-file", pid=19627)][:3]
    assert reads == [f"/var/lib/neutron/dhcp/{NET}/{f}" for f in ("addn_hosts", "host", "opts")]
    (grizzly,) = find("grizzly_flags.log", event="dhcp-range")
    assert grizzly.detail.endswith("lease time 2m")


def test_write_and_bind_failures():
    (first, *_) = find("enospc.log", event="write-failed")
    assert first.detail == "/var/lib/neutron/full/leases: No space left on device"
    facts = run("bind_failed.stderr")
    (bind,) = [f for f in facts if isinstance(f, F.DnsmasqLogEvent)]
    assert bind.event == "bind-failed" and bind.detail == "DHCP server socket: Address already in use"
    assert bind.time is None
    (rc,) = [f for f in facts if isinstance(f, F.Unparsed)]  # the script's own "rc=2" line
    assert rc.origin.line == 3


@pytest.mark.parametrize("name", ["syslog_traditional.log", "syslog_rfc3339.log",
                                  "journalctl_short.txt", "journalctl_short-iso.txt"])
def test_syslog_and_journal_shapes_agree(name: str):
    got = events(name)
    assert not [f for f in run(name) if isinstance(f, F.Unparsed)]
    assert {e.origin.host for e in got} == {"net-02"}  # the host name comes from the line
    assert [e.event for e in got if e.event.startswith("DHCP")] == [
        "DHCPDISCOVER", "DHCPOFFER", "DHCPREQUEST", "DHCPACK",
        "DHCPDISCOVER", "DHCPDISCOVER"]
    assert all(e.xid is None for e in got)  # no --log-dhcp here
    (ack,) = [e for e in got if e.event == "DHCPACK"]
    assert (ack.ip, ack.mac, ack.hostname, ack.pid) == ("10.8.1.14", "fa:16:3e:4a:0b:91", "host-10-8-1-14", 20867)
    # dhclient logs "DHCPDISCOVER on eth0 ..." to the same syslog: never read as dnsmasq's
    assert not [e for e in got if e.mac is None and e.event == "DHCPDISCOVER"]
    assert int(ack.time) == int(datetime(2026, 11, 21, 6, 25, 0, tzinfo=timezone.utc).timestamp())
    assert ack.time_inferred == (name in ("syslog_traditional.log", "journalctl_short.txt"))


def test_other_syslog_shapes_and_unknown_wording():
    # busybox/OpenWrt syslogd put facility.level before the program (public issue
    # FreshTomato-Project/freshtomato-mips#6); dnsmasq 2.59-era wording had no reason text
    text = ("Jan  1 01:00:15 unknown daemon.info dnsmasq-dhcp[959]: DHCPACK(br0) 192.168.1.23 00:11:22:33:44:55 laptop\n"
            "Thu Jan  9 14:05:31 2025 daemon.info dnsmasq[11555]: started, version 2.90 cachesize 150\n"
            "Mar  3 11:02:17 net-02 dnsmasq[2313]: something new in a later version\n"
            "Mar  3 11:02:17 net-02 kernel: [  1.0] unrelated\n"
            "garbage\n")
    facts = run("x", text)
    ack, started, other, garbage = facts
    assert (ack.event, ack.ip, ack.hostname, ack.origin.host) == ("DHCPACK", "192.168.1.23", "laptop", "unknown")
    assert started.version == "2.90" and not started.time_inferred
    assert started.time == datetime(2025, 1, 9, 14, 5, 31, tzinfo=timezone.utc).timestamp()
    assert other.event == "other" and other.detail == "something new in a later version"
    assert isinstance(garbage, F.Unparsed) and garbage.origin.line == 5


def test_a_foreign_line_without_host_is_reported_not_skipped():
    facts = run("x", "Nov 21 06:24:37 udhcpc[1]: started\n")
    assert len(facts) == 1 and isinstance(facts[0], F.Unparsed)


def test_parse_message_is_what_the_syslog_parser_calls():
    o = F.Origin(path="syslog", line=7)
    ev = P.parse_message("3238367304 DHCPDISCOVER(tap3f8e2a61-c4) fa:16:3e:5d:21:8c no address available",
                         origin=o, time=1.0, time_inferred=True, pid=9)
    assert (ev.event, ev.xid, ev.mac, ev.detail, ev.pid, ev.time, ev.origin) == (
        "DHCPDISCOVER", 3238367304, "fa:16:3e:5d:21:8c", "no address available", 9, 1.0, o)
    assert P.parse_message("   ", origin=o) is None
    limit = P.parse_message("Limit of 150 leases exceeded.", origin=o)  # dnsmasq < 2.50 wording
    assert limit.event == "no-leases-left"
    norange = P.parse_message("no address range available for DHCP request via tap0", origin=o)
    assert (norange.event, norange.interface) == ("no-address-available", "tap0")


def test_registry_routes_here():
    assert parsers.for_path(f"/var/log/neutron/dnsmasq/{NET}/dhcp_dns_log") is P
    assert parsers.for_path("/var/log/dnsmasq.log") is P
    assert parsers.for_command(f"cat /var/log/neutron/dnsmasq/{NET}/dhcp_dns_log") is P


@pytest.mark.parametrize("name", ["logfacility_neutron.log", "lease_max.log", "grizzly_flags.log"])
def test_sniff_recognises_a_dnsmasq_log(name: str):
    assert P.sniff((FIXTURES / name).read_text()[:8192])


def test_sniff_leaves_a_mixed_syslog_to_the_syslog_parser():
    assert not P.sniff((FIXTURES / "syslog_traditional.log").read_text()[:8192])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(text: str):
    for fact in run("fuzz", text):
        assert isinstance(fact, (F.DnsmasqLogEvent, F.Unparsed))


@settings(max_examples=200, deadline=None)
@given(st.binary())
def test_arbitrary_bytes_never_raise(data: bytes):
    run("fuzz", data.decode("utf-8", "replace"))
    P.parse_message(data.decode("latin-1"), origin=F.Origin(path="x"))


def test_a_host_file_it_cannot_read():
    # dnsmasq 2.90 on SIGHUP after the host file lost its read permission (the lab, by hand)
    line = ("Nov 21 10:17:34 dnsmasq[15062]: cannot read "
            "/var/lib/neutron/dhcp/5e86e3f7-51c7-463c-bd98-243d67edc625/host: Permission denied")
    [e] = [f for f in P.parse(Section.from_text(line, F.Origin(path="dhcp_dns_log", line=1)))
           if isinstance(f, F.DnsmasqLogEvent)]
    assert e.event == "read-failed"
    assert e.detail == "/var/lib/neutron/dhcp/5e86e3f7-51c7-463c-bd98-243d67edc625/host: Permission denied"
