"""Helpers for the evidence tests: a registry of stand-in parsers whose behaviour is known
exactly (every line becomes one fact that cites it), so that what is tested is the cutting
and the context, not a parser's reading of a format."""

from __future__ import annotations

import os
import re
import types
from pathlib import Path

import pytest

from whynoip import parsers
from whynoip.facts import ConfigValue, DhcpPacket, LogEvent

SAMPLE = Path(__file__).resolve().parent.parent / "fixtures" / "real-samples" / "hotsos-openstack-node"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "evidence"
TRANSCRIPTS = FIXTURES / "transcript"


def _module(name: str, commands=(), paths=(), sniff=None, parse=None, binary=False) -> types.ModuleType:
    mod = types.ModuleType(f"fake_{name}")
    mod.NAME = name
    mod.COMMANDS = tuple(commands)
    mod.PATHS = tuple(paths)
    mod._command_res = [re.compile(c) for c in commands]
    if sniff is not None:
        mod.sniff = sniff
    mod.parse = parse
    if binary:
        mod.BINARY = True
    return mod


def echo_parse(section):
    """One LogEvent per line: message = the line, origin = where it was."""
    for i, line in enumerate(section.lines()):
        yield LogEvent(origin=section.origin_at(i, text=line), message=line, service=section.format,
                       params={"ref_time": str(section.ref_time)})


def ini_parse(section):
    """key = value lines as ConfigValue (how a config parser reports options)."""
    for i, line in enumerate(section.lines()):
        m = re.match(r"^\s*([\w.-]+)\s*=\s*(.*)$", line)
        if m:
            yield ConfigValue(origin=section.origin_at(i, text=line), file=section.origin.path, section="DEFAULT",
                              key=m.group(1), value=m.group(2))


def pcap_parse(section):
    f = section.open_binary()
    data = f.read()
    yield DhcpPacket(origin=section.origin_at(0), message_type=f"{len(data)} bytes")


def broken_parse(section):
    for i, line in enumerate(section.lines()):
        if i == 1:
            raise RuntimeError("boom")
        yield LogEvent(origin=section.origin_at(i, text=line), message=line)


FAKES = (
    _module("ipaddr", commands=[r"^ip\s+(?:-\S+\s+)*a(?:ddr|ddress)?(?:\s+show)?\b", r"^ip\s+(?:-\S+\s+)*link\b"],
            paths=["*/sos_commands/networking/ip_*address*"], parse=echo_parse),
    _module("netns", commands=[r"^ip\s+netns\s*$"], parse=echo_parse),
    _module("ovs", commands=[r"\bovs-vsctl\b.*\bshow\b", r"\bovs-ofctl\s+dump-flows\b"], parse=echo_parse),
    _module("hosts", paths=["*/var/lib/neutron/dhcp/*/host", "*/var/lib/neutron/dhcp/*/opts",
                            "*/var/lib/neutron/dhcp/*/leases"], parse=echo_parse),
    _module("dnsmasqlog", paths=["*/dhcp_dns_log", "*/var/log/syslog*"],
            sniff=lambda head: "dnsmasq-dhcp[" in head, parse=echo_parse),
    _module("neutronlog", paths=["*/var/log/neutron/*.log", "*/var/log/neutron/*.log.[0-9]*"], parse=echo_parse),
    _module("udhcpc", commands=[r"\budhcpc\b"], sniff=lambda head: "udhcpc: started" in head, parse=echo_parse),
    _module("tcpdump", commands=[r"^tcpdump\b"], parse=echo_parse),
    _module("ini", paths=["*.ini", "*.conf"], parse=ini_parse),
    _module("broken", commands=[r"^broken\b"], parse=broken_parse),
    _module("pcapfake", paths=["*.pcap", "*.pcapng"], parse=pcap_parse, binary=True),
)


@pytest.fixture
def fake_parsers(monkeypatch):
    """The registry holds only the stand-ins above."""
    monkeypatch.setattr(parsers, "registry", lambda: FAKES)
    return FAKES


def lines_by_origin(facts):
    return {(f.origin.path, f.origin.line): f for f in facts}


def have_parser(name: str) -> bool:
    return any(m.NAME == name for m in parsers.registry())


def is_root() -> bool:
    return os.geteuid() == 0
