#!/usr/bin/env python3
"""How fast whynoip finds the DHCP packets in a large capture, next to tshark and tcpdump.

Builds a capture of N packets (default one million) in a temporary directory from the real
packets of `tests/fixtures/parsers/pcap/` (captured by `tests/fixtures/capture/dhcp_wire.sh`):
one packet in ten is a DHCP packet of a real DORA, with its xid and client MAC varied (in
the header and the client id; its UDP checksum recomputed, so that it stays valid), the others are the real HTTP, DNS,
ping, ARP and IPv6 packets of the same lab. Then, in the same run, it times:

  whynoip   the pcap parser over the file, in a child process (peak RSS measured too,
            also on a tenth of the file, to show that memory does not grow with it)
  tshark    tshark -r FILE -Y dhcp -T fields -e frame.number -e dhcp.id -e dhcp.option.dhcp -e dhcp.hw.mac_addr
  tcpdump   tcpdump -r FILE -nn port 67 or port 68   (counting lines; a BPF filter, no decoding)

and prints packets per second and the ratio to tshark. Exits non-zero when the capture
cannot be built or whynoip finds another number of DHCP packets than tshark.

    .venv/bin/python bench/pcap_bench.py [--packets 1000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "parsers" / "pcap"


def read_frames(path: Path) -> list[tuple[int, bytes]]:
    """(linktype, frame) of each packet of a little-endian microsecond pcap."""
    data = path.read_bytes()
    if data[:4] != b"\xd4\xc3\xb2\xa1":
        raise SystemExit(f"{path}: not a little-endian microsecond pcap")
    linktype = struct.unpack_from("<I", data, 20)[0]
    frames, pos = [], 24
    while pos + 16 <= len(data):
        incl = struct.unpack_from("<I", data, pos + 8)[0]
        frames.append((linktype, data[pos + 16:pos + 16 + incl]))
        pos += 16 + incl
    return frames


def is_dhcp(frame: bytes) -> bool:
    if len(frame) < 42 or frame[12:14] != b"\x08\x00" or frame[23] != 17:
        return False
    u = 14 + (frame[14] & 15) * 4
    ports = {struct.unpack_from("!H", frame, u)[0], struct.unpack_from("!H", frame, u + 2)[0]}
    return bool(ports & {67, 68})


def udp_checksum(frame: bytearray, ip: int, udp: int) -> int:
    length = struct.unpack_from("!H", frame, udp + 4)[0]
    data = bytes(frame[udp:udp + 6]) + b"\0\0" + bytes(frame[udp + 8:udp + length])
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total += sum(struct.unpack("!4H", bytes(frame[ip + 12:ip + 20]))) + 17 + length
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return (~total & 0xFFFF) or 0xFFFF


def varied(frame: bytes, n: int) -> bytes:
    """A DHCP frame with another xid and client MAC, in chaddr, the Ethernet source and
    the client id option (and the UDP checksum made right again)."""
    f = bytearray(frame)
    ip = 14
    udp = ip + (f[ip] & 15) * 4
    bootp = udp + 8
    struct.pack_into("!I", f, bootp + 4, (0x10000000 + n) & 0xFFFFFFFF)
    old_mac = bytes(f[bootp + 28:bootp + 34])
    new_mac = old_mac[:3] + struct.pack("!I", n)[1:]
    f[bootp + 28:bootp + 34] = new_mac  # chaddr
    options = bytes(f[bootp + 240:]).replace(old_mac, new_mac)  # the client id holds it too
    f[bootp + 240:] = options
    if f[bootp] == 1:  # requests come from the client's MAC
        f[6:12] = new_mac
    if struct.unpack_from("!H", f, udp + 6)[0]:
        struct.pack_into("!H", f, udp + 6, udp_checksum(f, ip, udp))
    return bytes(f)


def build(path: Path, packets: int, dhcp_every: int) -> int:
    dhcp = [fr for lt, fr in read_frames(FIXTURES / "dora.pcap") if lt == 1 and is_dhcp(fr)]
    dhcp += [fr for lt, fr in read_frames(FIXTURES / "dhclient_nak.pcap") if lt == 1 and is_dhcp(fr)]
    other = [fr for lt, fr in read_frames(FIXTURES / "noise.pcap") if lt == 1 and not is_dhcp(fr)]
    if not dhcp or not other:
        raise SystemExit("the real captures hold no DHCP or no other packets: run tests/fixtures/capture/dhcp_wire.sh")
    n_dhcp = 0
    t0 = 1_795_000_000
    rec = struct.Struct("<IIII")
    with open(path, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        batch = []
        for i in range(packets):
            if i % dhcp_every == 0:
                frame = varied(dhcp[n_dhcp % len(dhcp)], n_dhcp // len(dhcp))
                n_dhcp += 1
            else:
                frame = other[i % len(other)]
            batch.append(rec.pack(t0 + i // 10000, (i % 10000) * 100, len(frame), len(frame)))
            batch.append(frame)
            if len(batch) >= 20000:
                out.write(b"".join(batch))
                batch.clear()
        out.write(b"".join(batch))
    return n_dhcp


WHYNOIP_CHILD = """
import sys
from whynoip.evidence.section import Section
from whynoip.facts import DhcpPacket, Origin
from whynoip.parsers import pcap
path = sys.argv[1]
section = Section(origin=Origin(path=path, line=1), open_binary=lambda: open(path, "rb"))
dhcp = other = 0
for fact in pcap.parse(section):
    if isinstance(fact, DhcpPacket):
        dhcp += 1
    else:
        other += 1
print(dhcp, other)
"""


def run_child(argv: list[str], stdout_lines: bool) -> tuple[float, float, int, int]:
    """(wall seconds, CPU seconds, output lines or the first number printed, peak RSS in KiB)
    of a command. CPU time is shown too: on a busy machine it is the steadier measure."""
    t = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    lines = 0
    first = b""
    assert proc.stdout is not None
    for chunk in iter(lambda: proc.stdout.read(1 << 20), b""):
        lines += chunk.count(b"\n")
        if not first:
            first = chunk
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(f"{argv[0]} failed with exit code {proc.returncode}")
    count = lines if stdout_lines else int(first.split()[0])
    return seconds, usage.ru_utime + usage.ru_stime, count, usage.ru_maxrss


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--packets", type=int, default=1_000_000)
    ap.add_argument("--dhcp-every", type=int, default=10, help="one DHCP packet in this many")
    ap.add_argument("--keep", metavar="DIR", help="write the capture here and keep it")
    args = ap.parse_args()

    tmp = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="whynoip-bench-"))
    tmp.mkdir(parents=True, exist_ok=True)
    big, small = tmp / "big.pcap", tmp / "tenth.pcap"
    try:
        t = time.perf_counter()
        try:
            n_dhcp = build(big, args.packets, args.dhcp_every)
            build(small, args.packets // 10, args.dhcp_every)
        except OSError as e:
            print(f"cannot write the capture: {e}", file=sys.stderr)
            return 2
        print(f"capture: {args.packets} packets ({n_dhcp} DHCP), {big.stat().st_size / 1e6:.0f} MB, "
              f"built in {time.perf_counter() - t:.1f} s")

        env_python = [sys.executable, "-c", WHYNOIP_CHILD]
        rows = []
        rows.append(("whynoip", *run_child(env_python + [str(big)], stdout_lines=False)))
        _, _, _, rss_small = run_child(env_python + [str(small)], stdout_lines=False)
        tshark = shutil.which("tshark")
        if tshark:
            rows.append(("tshark -Y dhcp -T fields", *run_child(
                [tshark, "-n", "-r", str(big), "-Y", "dhcp", "-T", "fields", "-e", "frame.number",
                 "-e", "dhcp.id", "-e", "dhcp.option.dhcp", "-e", "dhcp.hw.mac_addr"], stdout_lines=True)))
        tcpdump = shutil.which("tcpdump")
        if tcpdump:
            rows.append(("tcpdump -nn port 67 or 68", *run_child(
                [tcpdump, "-r", str(big), "-nn", "port", "67", "or", "port", "68"], stdout_lines=True)))

        tshark_row = next((r for r in rows if r[0].startswith("tshark")), None)
        print(f"\n{'tool':<28}{'wall s':>8}{'CPU s':>8}{'packets/s':>12}{'DHCP':>9}{'peak RSS':>10}"
              f"{'vs tshark':>11}{'(CPU)':>8}")
        for name, secs, cpu, found, rss in rows:
            ratio = f"{tshark_row[1] / secs:.1f}x" if tshark_row else "-"
            cpu_ratio = f"{tshark_row[2] / cpu:.1f}x" if tshark_row and cpu else "-"
            print(f"{name:<28}{secs:>8.2f}{cpu:>8.2f}{args.packets / secs:>12,.0f}{found:>9}"
                  f"{rss / 1024:>7.0f} MB{ratio:>11}{cpu_ratio:>8}")
        print(f"\nwhynoip peak RSS: {rss_small / 1024:.0f} MB on {args.packets // 10} packets, "
              f"{rows[0][4] / 1024:.0f} MB on {args.packets} (memory does not grow with the file)")
        if rows[0][3] != n_dhcp:
            print(f"whynoip found {rows[0][3]} DHCP packets, the capture holds {n_dhcp}", file=sys.stderr)
            return 1
        if tshark_row is not None and tshark_row[3] != n_dhcp:
            print(f"tshark found {tshark_row[3]} DHCP packets, the capture holds {n_dhcp}", file=sys.stderr)
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
