"""A DHCP client on raw sockets, for probing servers: builds BOOTP messages with the
layout the pcap parser reads (`parsers/_dhcp.py`: one header struct, the same option
decoding) and sends them the way a guest does — broadcast frames on an AF_PACKET socket
before the client has an address, unicast UDP from its address afterwards — and reads
every reply on the AF_PACKET socket, so that broadcast and unicast answers arrive in one
place, already filtered in the kernel (a BPF program keeps IPv4 UDP to port 68 only).

Sockets belong to the network namespace they were created in, whatever thread uses them
later: `in_namespace` switches the calling thread into a namespace (setns(2) changes only
the calling thread's namespace on Linux) just long enough to open them.

Why not scapy: measured on the reference machine, a scapy exchange took 15-36 ms and
its import 0.9 s; these sockets take about 0.5 ms per exchange, and the packets are
simple enough to build with one struct.

    >>> msg = build(DISCOVER, xid=0x1234, mac="fa:16:3e:00:00:01")
    >>> len(msg) >= 300, msg[236:240] == MAGIC_COOKIE
    (True, True)
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import random
import socket
import struct
from dataclasses import dataclass, field

from whynoip.errors import WhynoipError
from whynoip.parsers._dhcp import BOOTP_HEADER, MAGIC_COOKIE, bootp_fields

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = 1, 2, 3, 4, 5, 6, 7, 8
CLIENT_PORT, SERVER_PORT = 68, 67
ETH_P_IP, ETH_P_ALL = 0x0800, 0x0003
BROADCAST_MAC = b"\xff" * 6
# What a guest asks for: subnet mask, router, DNS, host and domain name, broadcast, MTU,
# lease times, classless routes (and Microsoft's copy), as cloud-init's clients do.
PARAMETERS = bytes((1, 3, 6, 12, 15, 26, 28, 51, 54, 58, 59, 119, 121, 249))
MIN_MESSAGE = 300  # RFC 1542: pad BOOTP messages to 300 bytes; some relays drop shorter ones

SO_ATTACH_FILTER = 26
SOL_PACKET, PACKET_AUXDATA = 263, 8
TP_STATUS_CSUMNOTREADY = 1 << 3  # checksum to be filled by the device: not yet there, not wrong
_AUXDATA_SPACE = socket.CMSG_SPACE(20)  # struct tpacket_auxdata
SIOCGIFFLAGS, SIOCGIFADDR, SIOCGIFNETMASK, SIOCGIFHWADDR = 0x8913, 0x8915, 0x891B, 0x8927
IFF_UP = 0x1
CLONE_NEWNET = 0x40000000
NETNS_DIR = "/run/netns"

# `tcpdump -dd 'ip and udp dst port 68'` without the IPv6 branch: IPv4, UDP, not a later
# fragment, destination port 68.
_BPF_UDP_DST_68 = (
    (0x28, 0, 0, 12), (0x15, 0, 8, 0x0800),          # ethertype IPv4
    (0x30, 0, 0, 23), (0x15, 0, 6, 17),              # protocol UDP
    (0x28, 0, 0, 20), (0x45, 4, 0, 0x1FFF),          # first fragment only
    (0xB1, 0, 0, 14), (0x48, 0, 0, 16), (0x15, 0, 1, CLIENT_PORT),  # dst port 68
    (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0),
)
# the same with port 67 or 68 on either side: every DHCP message, both ways
_BPF_UDP_DHCP = (
    (0x28, 0, 0, 12), (0x15, 0, 12, 0x0800),         # ethertype IPv4
    (0x30, 0, 0, 23), (0x15, 0, 10, 17),             # protocol UDP
    (0x28, 0, 0, 20), (0x45, 8, 0, 0x1FFF),          # first fragment only
    (0xB1, 0, 0, 14), (0x48, 0, 0, 14),              # source port
    (0x15, 4, 0, SERVER_PORT), (0x15, 3, 0, CLIENT_PORT),
    (0x48, 0, 0, 16),                                # destination port
    (0x15, 1, 0, SERVER_PORT), (0x15, 0, 1, CLIENT_PORT),
    (0x06, 0, 0, 0x40000), (0x06, 0, 0, 0),
)


class ProbeError(WhynoipError):
    """The probe could not be set up (no such namespace or interface, not root)."""


# --- messages -------------------------------------------------------------------------------

def mac_bytes(mac: str) -> bytes:
    try:
        b = bytes.fromhex(mac.replace(":", "").replace("-", ""))
    except ValueError:
        b = b""
    if len(b) != 6:
        raise ProbeError(f"{mac!r} is no MAC address (expected six hex bytes like fa:16:3e:00:00:01)")
    return b


def new_xid() -> int:
    return random.getrandbits(32)


def build(message_type: int, *, xid: int, mac: str, ciaddr: str = "0.0.0.0", broadcast: bool = True,
          requested_ip: str | None = None, server_id: str | None = None, parameters: bytes = PARAMETERS,
          hostname: str | None = None, message: str | None = None) -> bytes:
    """One BOOTP request (op 1) carrying DHCP message type `message_type` and the options a
    client sends in that state (RFC 2131 table 5)."""
    chaddr = mac_bytes(mac) + bytes(10)
    header = BOOTP_HEADER.pack(1, 1, 6, 0, xid, 0, 0x8000 if broadcast else 0, socket.inet_aton(ciaddr),
                               bytes(4), bytes(4), bytes(4), chaddr, bytes(64), bytes(128))
    opts = bytearray(MAGIC_COOKIE)
    opts += bytes((53, 1, message_type))
    opts += bytes((61, 7, 1)) + chaddr[:6]  # client identifier: hardware type 1 + MAC, as dhclient sends
    if requested_ip:
        opts += bytes((50, 4)) + socket.inet_aton(requested_ip)
    if server_id:
        opts += bytes((54, 4)) + socket.inet_aton(server_id)
    if hostname:
        name = hostname.encode()[:63]
        opts += bytes((12, len(name))) + name
    if message:
        text = message.encode()[:200]
        opts += bytes((56, len(text))) + text
    if parameters and message_type not in (RELEASE, DECLINE):
        opts += bytes((55, len(parameters))) + parameters
        opts += bytes((57, 2)) + struct.pack("!H", 1500)  # maximum message size
    opts.append(255)
    msg = header + bytes(opts)
    if len(msg) < MIN_MESSAGE:
        msg += bytes(MIN_MESSAGE - len(msg))
    return msg


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def frame(src_mac: str, payload: bytes, *, src_ip: str = "0.0.0.0", dst_ip: str = "255.255.255.255",
          dst_mac: bytes = BROADCAST_MAC, sport: int = CLIENT_PORT, dport: int = SERVER_PORT) -> bytes:
    """An Ethernet frame carrying `payload` in IPv4/UDP, both checksums filled in (dnsmasq
    drops UDP with a wrong checksum; 0, "none", would do too, but a real client fills it)."""
    src, dst = socket.inet_aton(src_ip), socket.inet_aton(dst_ip)
    udp_len = 8 + len(payload)
    pseudo = src + dst + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    csum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0x10, 20 + udp_len, 0, 0, 64, 17, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", _checksum(ip)) + ip[12:]
    return dst_mac + mac_bytes(src_mac) + struct.pack("!H", ETH_P_IP) + ip + udp


@dataclass(slots=True)
class Reply:
    """One DHCP reply as it arrived: who sent it, to whom, and its decoded fields (the
    keyword arguments of a `DhcpPacket`: message_type, xid, yiaddr, server_id, options...)."""

    at: float  # time.monotonic() when read
    src_mac: str
    src_ip: str
    dst_ip: str
    fields: dict = field(default_factory=dict)
    checksum_ok: bool | None = None  # the UDP checksum; None: none sent, or not yet filled in

    @property
    def message_type(self) -> str | None:
        return self.fields.get("message_type")

    @property
    def xid(self) -> int | None:
        return self.fields.get("xid")

    @property
    def server_id(self) -> str:
        """Option 54, or the sender's address when a server leaves it out (BOOTP)."""
        return self.fields.get("server_id") or self.src_ip


def udp_checksum_ok(data: bytes) -> bool | None:
    """Whether the UDP checksum of the IPv4 frame is right (None: the sender sent none)."""
    q = 14
    u = q + (data[q] & 0x0F) * 4
    udp_len = struct.unpack_from("!H", data, u + 4)[0]
    if struct.unpack_from("!H", data, u + 6)[0] == 0 or u + udp_len > len(data):
        return None
    pseudo = data[q + 12:q + 20] + struct.pack("!BBH", 0, 17, udp_len)
    return _checksum(pseudo + data[u:u + udp_len]) == 0


def parse_frame(data: bytes, at: float, op: int | None = 2, csum_ready: bool = True) -> Reply | None:
    """The DHCP reply (op 2; `op` None: any BOOTP message) in an Ethernet frame, or None
    when it is none (or not well formed). `csum_ready` False: the kernel says the
    checksum is still to be filled in by the sending device (not checked)."""
    if len(data) < 14 + 20 + 8 + 236 or data[12:14] != b"\x08\x00":
        return None
    q = 14
    ihl = (data[q] & 0x0F) * 4
    u = q + ihl
    if data[q + 9] != 17 or len(data) < u + 8:
        return None
    udp_len = struct.unpack_from("!H", data, u + 4)[0]
    payload = data[u + 8:u + max(udp_len, 8)]
    try:
        fields, _problem = bootp_fields(payload)
    except ValueError:
        return None
    if op is not None and fields.get("op") != op:
        return None
    return Reply(at, data[6:12].hex(":"), socket.inet_ntoa(data[q + 12:q + 16]),
                 socket.inet_ntoa(data[q + 16:q + 20]), fields, udp_checksum_ok(data) if csum_ready else None)


# --- namespaces and interfaces --------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def namespace_path(ns: str) -> str:
    return ns if ns.startswith("/") else os.path.join(NETNS_DIR, ns)


@contextlib.contextmanager
def in_namespace(ns: str | None):
    """Run the block with the calling thread in network namespace `ns` (a name under
    /run/netns or a path); None stays where it is. Sockets opened inside stay in `ns`."""
    if ns is None:
        yield
        return
    try:
        target = os.open(namespace_path(ns), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ProbeError(f"no network namespace {ns!r}") from None
    except PermissionError:
        raise ProbeError(f"entering namespace {ns!r} needs root") from None
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise ProbeError(f"cannot enter namespace {ns!r}: {os.strerror(err)}")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:  # never leave the thread elsewhere
                raise OSError(ctypes.get_errno(), "setns back to the original namespace failed")
    finally:
        os.close(target)
        os.close(home)


@dataclass(slots=True)
class InterfaceInfo:
    name: str
    mac: str
    ip: str | None
    prefixlen: int | None
    up: bool


def _ifreq(sock: socket.socket, request: int, name: str) -> bytes:
    return fcntl.ioctl(sock.fileno(), request, struct.pack("16s24x", name.encode()[:15]))


def interfaces() -> list[InterfaceInfo]:
    """The interfaces of the current namespace (but lo) with their MAC and first IPv4
    address: ioctls, no subprocess, so that thousands of namespaces are read in moments."""
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            if name == "lo":
                continue
            try:
                flags = struct.unpack_from("H", _ifreq(s, SIOCGIFFLAGS, name), 16)[0]
                hw = _ifreq(s, SIOCGIFHWADDR, name)[18:24].hex(":")
            except OSError:
                continue
            ip = prefix = None
            try:
                ip = socket.inet_ntoa(_ifreq(s, SIOCGIFADDR, name)[20:24])
                mask = int.from_bytes(_ifreq(s, SIOCGIFNETMASK, name)[20:24], "big")
                prefix = bin(mask).count("1")
            except OSError:  # no IPv4 address
                pass
            out.append(InterfaceInfo(name, hw, ip, prefix, bool(flags & IFF_UP)))
    return out


# --- sockets ------------------------------------------------------------------------------

class PacketSocket:
    """AF_PACKET socket on one interface: sends whole frames, receives IPv4 UDP to port 68
    (every DHCP reply, broadcast or unicast, that reaches the interface)."""

    program = _BPF_UDP_DST_68
    protocol = ETH_P_IP

    def __init__(self, interface: str):
        self.interface = interface
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)  # protocol 0: nothing queued yet
        try:
            prog = b"".join(struct.pack("HBBI", *insn) for insn in self.program)
            buf = ctypes.create_string_buffer(prog)
            fprog = struct.pack("HL", len(self.program), ctypes.addressof(buf))
            sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            sock.bind((interface, self.protocol))
        except OSError as e:
            sock.close()
            if e.errno == 19:  # ENODEV
                raise ProbeError(f"no interface {interface!r} in this namespace") from None
            raise ProbeError(f"cannot open a packet socket on {interface}: {e.strerror}") from None
        sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
        sock.setblocking(False)
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def send(self, data: bytes) -> None:
        self.sock.send(data)

    def _frames(self):
        """(frame, outgoing, checksum ready) for every frame waiting (non-blocking). The
        kernel's auxiliary data tells a checksum a device is still to fill in (transmit
        offload on this host) from one that arrived wrong."""
        while True:
            try:
                data, anc, _flags, addr = self.sock.recvmsg(4096, _AUXDATA_SPACE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # the interface went down or away: nothing more comes from it
                return
            ready = True
            for level, kind, value in anc:
                if level == SOL_PACKET and kind == PACKET_AUXDATA and len(value) >= 4:
                    ready = not struct.unpack_from("I", value)[0] & TP_STATUS_CSUMNOTREADY
            yield data, addr[2] == socket.PACKET_OUTGOING, ready

    def read(self, at: float) -> list[Reply]:
        """Every reply waiting on the socket (non-blocking)."""
        out = []
        for data, outgoing, ready in self._frames():
            if outgoing:
                continue
            r = parse_frame(data, at, csum_ready=ready)
            if r is not None:
                out.append(r)
        return out

    def close(self) -> None:
        self.sock.close()


class WitnessSocket(PacketSocket):
    """A packet socket on a server's own interface, in its namespace, that only watches:
    which requests reach the server and which replies leave it (a capture, as tcpdump on
    the qdhcp tap would be). It tells a dnsmasq that reads and never answers from
    replies lost on the way back and from requests that never arrive."""

    program = _BPF_UDP_DHCP
    protocol = ETH_P_ALL  # frames the host sends reach only ETH_P_ALL sockets

    def read_messages(self, at: float) -> list[tuple[bool, Reply]]:
        """(sent by this side, message) for every DHCP message waiting (non-blocking)."""
        out = []
        for data, outgoing, ready in self._frames():
            m = parse_frame(data, at, op=None, csum_ready=ready)
            if m is not None:
                out.append((outgoing, m))
        return out


class UnicastSocket:
    """UDP socket bound to the probe's address, port 68, on its interface: sends renewals
    and INFORMs the way a client with a lease does. Replies are read on the PacketSocket
    (several probes may share an address: SO_REUSEPORT lets them all bind)."""

    def __init__(self, ip: str, interface: str):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
            sock.bind((ip, CLIENT_PORT))
        except OSError as e:
            sock.close()
            raise ProbeError(f"cannot bind UDP {ip}:{CLIENT_PORT} on {interface}: {e.strerror}") from None
        sock.setblocking(False)
        self.sock = sock

    def send(self, payload: bytes, server_ip: str) -> None:
        self.sock.sendto(payload, (server_ip, SERVER_PORT))

    def drain(self) -> None:
        while True:
            try:
                self.sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                return

    def close(self) -> None:
        self.sock.close()
