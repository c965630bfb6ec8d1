"""dhcpdump blocks: one fact per packet, the same as the capture taken at the same time.
The fixtures are real dhcpdump 1.8 (Debian 12) output from tests/fixtures/capture/dhcp_wire.sh,
running live beside the tcpdump that wrote the pcap they are checked against."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from whynoip import facts as F
from whynoip import parsers
from whynoip.evidence.section import Section
from whynoip.parsers import dhcpdump as D
from whynoip.parsers import pcap
from whynoip.parsers import tcpdump_text

FIXTURES = Path(__file__).parent.parent / "fixtures" / "parsers" / "dhcpdump"
PCAPS = FIXTURES.parent / "pcap"
COMMAND = "ip netns exec wnp-wire-qdhcp-6f1c2a3b-0000-4000-8000-000000000001 dhcpdump -i tapdd000001-aa"
CASES = {"dora.txt": "dora.pcap", "dhclient_nak.txt": "dhclient_nak.pcap"}
SHOWN = ("xid", "op", "message_type", "client_mac", "ciaddr", "yiaddr", "siaddr", "giaddr",
         "flags_broadcast", "secs", "hops", "src_ip", "dst_ip", "src_mac", "dst_mac", "server_id",
         "requested_ip", "subnet_mask", "routers", "dns_servers", "hostname", "domain", "mtu",
         "broadcast_address", "lease_time", "renewal_time", "rebinding_time", "parameter_list",
         "message", "vendor_class", "client_id", "client_fqdn", "classless_routes", "ms_classless_routes")


def run_text(text: str, command: str | None = COMMAND, ref_time: float | None = None, name: str = "x.txt") -> list[F.Fact]:
    section = Section.from_text(text, F.Origin(path=name, line=1, command=command))
    section.ref_time = ref_time
    return list(D.parse(section))


def run(name: str) -> list[F.Fact]:
    return run_text((FIXTURES / name).read_text(), name=name)


def dhcp(facts: list[F.Fact]) -> list[F.DhcpPacket]:
    assert not [f for f in facts if isinstance(f, F.Unparsed)]
    return facts  # type: ignore[return-value]


def from_capture(name: str) -> list[F.DhcpPacket]:
    data = (PCAPS / name).read_bytes()
    return [f for f in pcap.parse(Section(origin=F.Origin(path=name, line=1), open_binary=lambda: io.BytesIO(data)))  # type: ignore[arg-type]
            if not isinstance(f, F.Capture)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_fixture_gives_the_expected_facts(name: str):
    expected = F.from_json((FIXTURES / f"{name}.expected.json").read_bytes())
    assert run(name) == expected


@pytest.mark.parametrize("name", sorted(CASES))
def test_dhcpdump_says_what_the_capture_says(name: str):
    dumped, cap = dhcp(run(name)), from_capture(CASES[name])
    assert len(dumped) == len(cap)
    for d, c in zip(dumped, cap):
        for field in SHOWN:
            assert getattr(d, field) == getattr(c, field), (name, d.origin.line, field)
        assert set(d.options) == set(c.options)
        # TIME is when dhcpdump printed the packet (milliseconds), live: close to the capture's
        assert d.time == pytest.approx(c.time, abs=0.2)


def test_dora_blocks():
    got = dhcp(run("dora.txt"))
    assert [p.message_type for p in got] == ["DISCOVER", "OFFER", "REQUEST", "ACK", "REQUEST", "ACK",
                                             "REQUEST", "ACK", "INFORM", "ACK", "RELEASE"]
    discover, offer = got[:2]
    assert discover.xid == 0x5B89FD4D and discover.origin.line == 1 and discover.origin.text.startswith("TIME: 2026-11-21 06:16:31")
    # dhcpdump 1.8 prints MACs without leading zeros: "fa:16:3e:dd:0:1"
    assert offer.src_mac == "fa:16:3e:dd:00:01" and offer.dst_mac == "fa:16:3e:11:22:33"
    assert offer.classless_routes == ["169.254.169.254/32 via 10.0.0.2", "0.0.0.0/0 via 10.0.0.1"]  # from its hex dump
    assert offer.lease_time == 86400 and offer.options[51] == "86400 (24h)"
    assert discover.client_id == "01:fa:16:3e:11:22:33" and discover.client_fqdn == "vm1"
    assert discover.parameter_list == [1, 3, 6, 12, 15, 26, 28, 42, 121, 249]
    assert discover.time_inferred is False and discover.origin.namespace is None


def test_nak_block():
    request, nak = dhcp(run("dhclient_nak.txt"))[:2]
    assert (request.requested_ip, request.client_fqdn) == ("10.0.0.77", "vm1.openstacklocal.")
    assert (nak.message_type, nak.message, nak.server_id, nak.flags_broadcast) == ("NAK", "wrong address", "10.0.0.2", True)


# --- other versions -------------------------------------------------------------------------
# Our lab's packets as other dhcpdump versions print them. Layouts from the sources, cited.

# The maintained dhcpdump (github.com/bbonev/dhcpdump, dhcpdump.c and dhcp_options.h): a VLAN
# line, MACs with leading zeros, 80 dashes, option names of its own table, the vendor class
# and client id as a hex dump beside their text (8 bytes a line, continued at column 44),
# routes as "dest/len via gw", and the *source* IP printed as the destination too.
NEWER = """\
  VLAN: S:0200 C:0100
  TIME: 2026-11-21 06:16:31.357
    IP: 10.0.0.5 (fa:16:3e:11:22:33) > 10.0.0.5 (fa:16:3e:dd:00:01)
    OP: 1 (BOOTPREQUEST)
 HTYPE: 1 (Ethernet)
  HLEN: 6
  HOPS: 0
   XID: 5b89fd4d
  SECS: 0
 FLAGS: 0
CIADDR: 10.0.0.5
YIADDR: 0.0.0.0
SIADDR: 0.0.0.0
GIADDR: 0.0.0.0
CHADDR: fa:16:3e:11:22:33:00:00:00:00:00:00:00:00:00:00
 SNAME: .
 FNAME: .
OPTION:  53 (  1) DHCP message type         3 (DHCPREQUEST)
OPTION:  57 (  2) Maximum DHCP message size 576
OPTION:  60 ( 12) Vendor class identifier   756468637020312e udhcp 1.
                                            33352e30         35.0
OPTION:  61 (  7) Client-identifier         01fa163e112233   ...>."3
--------------------------------------------------------------------------------

  VLAN: S:0200 C:0100
  TIME: 2026-11-21 06:16:31.357
    IP: 10.0.0.2 (fa:16:3e:dd:00:01) > 10.0.0.2 (fa:16:3e:11:22:33)
    OP: 2 (BOOTPREPLY)
 HTYPE: 1 (Ethernet)
  HLEN: 6
  HOPS: 0
   XID: 5b89fd4d
  SECS: 0
 FLAGS: 0
CIADDR: 10.0.0.5
YIADDR: 10.0.0.5
SIADDR: 10.0.0.2
GIADDR: 0.0.0.0
CHADDR: fa:16:3e:11:22:33:00:00:00:00:00:00:00:00:00:00
 SNAME: .
 FNAME: .
OPTION:  53 (  1) DHCP message type         5 (DHCPACK)
OPTION:  54 (  4) DHCP Server identifier    10.0.0.2
OPTION:  51 (  4) IP address leasetime      86400 (24h)
OPTION:   3 (  4) Router                    10.0.0.1
OPTION: 121 ( 14) Classless Static Route    169.254.169.254/32 via 10.0.0.2
                                            0.0.0.0/0 via 10.0.0.1
OPTION:  26 (  2) Interface MTU size        1450
--------------------------------------------------------------------------------

"""

# The original release (dhcpdump(8) of 2002-2004, as in its man page's example): the time
# without a date, the ports on the IP line.
ORIGINAL = """\
  TIME: 06:16:31.303265
    IP: 0.0.0.0.68 (fa:16:3e:11:22:33) > 255.255.255.255.67 (ff:ff:ff:ff:ff:ff)
    OP: 1 (BOOTPREQUEST)
 HTYPE: 1 (Ethernet)
  HLEN: 6
  HOPS: 0
   XID: 5b89fd4d
  SECS: 1
 FLAGS: 0
CIADDR: 0.0.0.0
YIADDR: 0.0.0.0
SIADDR: 0.0.0.0
GIADDR: 0.0.0.0
CHADDR: fa:16:3e:11:22:33:00:00:00:00:00:00:00:00:00:00
 SNAME: .
 FNAME: .
OPTION:  53 (  1) DHCP message type         3 (DHCPREQUEST)
OPTION:  54 (  4) Server identifier         10.0.0.2
OPTION:  50 (  4) Request IP address        10.0.0.5
OPTION:  55 (  4) Parameter Request List      1 (Subnet mask)
                                              3 (Routers)
                                             58 (T1)
                                             59 (T2)
---------------------------------------------------------------------------
"""


def test_the_maintained_version():
    request, ack = dhcp(run_text(NEWER))
    real = {p.origin.line: p for p in from_capture("dora.pcap")}
    assert (request.vlan, ack.vlan) == (100, 100)
    assert request.dst_ip is None and request.src_ip == "10.0.0.5"  # the source, printed twice
    assert request.dst_mac == "fa:16:3e:dd:00:01"
    assert request.vendor_class == "udhcp 1.35.0" == real[9].vendor_class
    assert request.client_id == "01:fa:16:3e:11:22:33" == real[9].client_id
    assert ack.classless_routes == real[10].classless_routes and ack.routers == ["10.0.0.1"]
    assert (ack.server_id, ack.lease_time, ack.mtu) == ("10.0.0.2", 86400, 1450)


def test_the_original_version():
    (request,) = dhcp(run_text(ORIGINAL, ref_time=1795241800.0))
    assert (request.src_port, request.dst_port, request.secs) == (68, 67, 1)
    assert request.time == pytest.approx(1795241791.303265) and request.time_inferred is True
    assert request.parameter_list == [1, 3, 58, 59] and request.requested_ip == "10.0.0.5"
    assert dhcp(run_text(ORIGINAL))[0].time is None  # no date and no reference: no time


def test_relay_agent_sub_options():
    # bbonev/dhcpdump prints option 82 as one line per sub-option (name, then a 16-byte hex dump)
    lines = ["Circuit-ID 7461703737383839393030           tap77889900",
             "Remote-ID  fa163e778899                     ..>w.."]
    f: dict = {}
    D._typed(f, 82, "", lines)
    assert f["relay_agent"] == "circuit-id=tap77889900 remote-id=fa:16:3e:77:88:99"


def test_blocks_without_their_closing_line_and_stray_text():
    text = (FIXTURES / "dhclient_nak.txt").read_text()
    blocks = [b for b in text.split("-" * 75 + "\n") if b.strip()]
    glued = "some shell prompt$ dhcpdump -i tap0\n" + "".join(blocks)  # dashes lost
    facts = run_text(glued)
    assert isinstance(facts[0], F.Unparsed) and facts[0].origin.line == 1
    assert [f.message_type for f in facts[1:]] == ["REQUEST", "NAK", "DISCOVER", "OFFER", "REQUEST", "ACK"]


def test_registry_and_sniff():
    assert parsers.for_command("dhcpdump -i tap5c1d0e77-a2") is D
    assert parsers.for_command("ip netns exec qdhcp-x dhcpdump -i ns-1 -h ^fa:16:3e") is D
    for name in CASES:
        head = (FIXTURES / name).read_text()[:8192]
        assert D.sniff(head) and not tcpdump_text.sniff(head)
    assert D.sniff(NEWER) and D.sniff(ORIGINAL)
    for path in (FIXTURES.parent / "tcpdump_text").glob("*.txt"):
        assert not D.sniff(path.read_text()[:8192])


LINES = [ln for name in CASES for ln in (FIXTURES / name).read_text().splitlines()] + NEWER.splitlines()


@given(st.lists(st.one_of(st.sampled_from(LINES), st.text(max_size=60)), max_size=40))
@settings(max_examples=300, deadline=None)
def test_shuffled_real_lines_and_noise_never_raise(lines):
    for fact in run_text("\n".join(lines), ref_time=1795241800.0):
        assert isinstance(fact, (F.DhcpPacket, F.Unparsed))


@given(st.binary(max_size=2000))
@settings(max_examples=200, deadline=None)
def test_any_bytes_never_raise(data: bytes):
    run_text(data.decode("utf-8", errors="replace"))
