"""The HTML report: one self-contained, escaped, redacted page that a browser draws with the
lost hop in red. The story: vm1's DHCPOFFER crosses qvo, qvb and qbr on cmp1 and is dropped
by the hybrid firewall before the tap; the operator opens the report in a browser."""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import zlib
from html.parser import HTMLParser

import pytest

from whynoip.findings import Diagnosis, Evidence, Finding, HopState, NextStep, PortPath
from whynoip.report import html as H

CHROMIUM = "/usr/bin/chromium"
T0 = 1718000000.0  # 2024-06-10 06:13:20Z
PORT = "5ae2fa86-2c"
NET = "qdhcp-03b21127-7ca6-4618-a70e-9adb51c10bc5"
SCRIPT = "<script>alert('pwned')</script>"


def hop(name, role, state, seen, ns=None):
    host, iface = name.split(" ")[0], name.split(" ")[-1]
    return HopState(name=name, role=role, host=host, namespace=ns, interface=iface, state=state, seen=seen,
                    source=f"{host}/captures/{iface}.pcap")


def broken_diagnosis() -> Diagnosis:
    d_o = ["DISCOVER", "OFFER"]
    hops = [hop("vm1 eth0", "guest", "ok", ["DISCOVER"]),
            hop(f"cmp1 tap{PORT}", "tap", "broken", ["DISCOVER"]),
            hop(f"cmp1 qbr{PORT}", "qbr", "ok", d_o),
            hop(f"cmp1 qvb{PORT}", "qvb", "ok", d_o),
            hop(f"cmp1 qvo{PORT}", "qvo", "ok", d_o),
            hop("cmp1 eth1", "underlay-compute", "ok", d_o),
            hop("net1 eth1", "underlay-server", "ok", d_o),
            hop("net1 tapecbc4018-83", "dhcp-tap", "ok", d_o),
            hop(f"net1 {NET} ns-ecbc4018-83", "dhcp-ns", "ok", d_o, ns=NET)]
    where = f"between cmp1 qbr{PORT} and cmp1 tap{PORT}"
    sg = Finding(id="security-group-drops-dhcp", severity="critical", subject="vm1 (fa:16:3e:f5:31:19)",
                 title="the firewall drops the DHCP reply to vm1", hop=where, time=T0 + 2,
                 evidence=[Evidence(source="cmp1/sos_commands/networking/iptables-save_-c", line=42, host="cmp1",
                                    text="[17:1972] -A neutron-openvswi-i5ae2fa86-2 -j DROP"),
                           Evidence(source="cmp1/var/log/neutron/openvswitch-agent.log", line=7, host="cmp1",
                                    time=T0 + 1, text=f"port update {SCRIPT} & <b>bold</b>"),
                           Evidence(source="cmp1/etc/neutron/neutron.conf", line=12, host="cmp1",
                                    text="transport_url = rabbit://u:secret@h")]
                 + [Evidence(source="cmp1/captures/qbr.pcap", line=k, host="cmp1", time=T0 + 2 + k,
                             text=f"DHCPOFFER xid 0x1c2d3e4f #{k}") for k in range(1, 10)],
                 fix=["openstack security group rule create --ingress --ethertype IPv4 --protocol udp "
                      "--dst-port 68 default"],
                 references=["https://bugs.launchpad.net/neutron/+bug/1234567", "DOMAIN.md fault catalog"])
    silent = Finding(id="dhcp-server-silent", severity="critical", subject="vm1 (fa:16:3e:f5:31:19)",
                     title="vm1 never received an answer", caused_by=["security-group-drops-dhcp"],
                     root_cause=False, time=T0 + 3,
                     evidence=[Evidence(source="guests/vm1/console.log", line=3, host="vm1", time=T0 + 3,
                                        text="udhcpc: no lease, failing")])
    timeline = [{"time": T0 + 1, "host": "cmp1", "finding": sg.id, "text": f"port update {SCRIPT}",
                 "source": "cmp1/var/log/neutron/openvswitch-agent.log", "line": 7},
                {"time": T0 + 3, "host": "vm1", "finding": silent.id, "text": "udhcpc: no lease, failing",
                 "source": "guests/vm1/console.log", "line": 3}]
    return Diagnosis(
        verdict=f"security-group-drops-dhcp: the firewall drops the DHCP reply to vm1 (breaks {where})",
        findings=[sg, silent],
        paths=[PortPath(port="vm1 (fa:16:3e:f5:31:19)", mac="fa:16:3e:f5:31:19", ip="10.0.0.5", server="net1",
                        hops=hops, break_after=f"cmp1 qbr{PORT}")],
        next_steps=[NextStep(why="see the firewall counters move", host="cmp1",
                             command="iptables-save -c | grep 5ae2fa86 # password=hunter2")],
        timeline=timeline,
        summary={"critical": 2, "facts": 606, "hosts": ["cmp1", "net1"], "unparsed_sections": 3,
                 "dhcp_servers": [{"network": NET[6:], "host": "net1", "ip": "10.0.0.2"}]})


class Checker(HTMLParser):
    """Tags nest and close; resource attributes point nowhere outside the file."""
    VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.external, self.tags, self.text = [], [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        for k, v in attrs:
            v = (v or "").strip().lower()
            if v.startswith(("http:", "https:", "//")) and not (tag == "a" and k == "href") \
                    and not (tag == "svg" and k == "xmlns"):
                self.external.append((tag, k, v))
            if k in ("src", "srcset", "poster", "data", "background") or (k == "href" and tag in ("link", "use")):
                self.external.append((tag, k, v))
            if k == "style" and "url(" in v:
                self.external.append((tag, k, v))
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in self.VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)
        if self.stack and self.stack[-1] == "style" and ("url(" in data or "@import" in data):
            self.external.append(("style", "css", data[:80]))


def check(page: str) -> Checker:
    c = Checker()
    c.feed(page)
    c.close()
    assert page.startswith("<!DOCTYPE html>")
    assert not c.errors, c.errors[:5]
    assert c.stack == [], c.stack
    assert not c.external, c.external
    assert "script" not in c.tags and "iframe" not in c.tags
    return c


def test_broken_path_report_is_self_contained_escaped_and_redacted():
    page = H.render(broken_diagnosis())
    c = check(page)
    text = "".join(c.text)
    # the verdict is the first thing in the body, in the page's biggest heading
    body = page[page.index("<main>"):]
    assert body.index('<h1 class="verdict bad"') < body.index("<h2")
    assert "security-group-drops-dhcp: the firewall drops the DHCP reply to vm1" in text
    # evidence from logs is shown as text, never as markup
    assert "<script>alert" not in page and "<b>bold</b>" not in page
    assert "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;" in page
    assert f"port update {SCRIPT} & <b>bold</b>" in text
    # secrets are masked (evidence and next steps), the rest of the line stays
    assert "secret@" not in page and "hunter2" not in page
    assert "transport_url = rabbit://u:***@h" in text
    # the path: 9 hops in guest -> server order, exactly one lost, and it is the tap
    states = [(t, a) for t, a in _hop_attrs(page)]
    assert len(states) == 9
    assert [a["data-role"] for _, a in states][:5] == ["guest", "tap", "qbr", "qvb", "qvo"]
    broken = [a for _, a in states if a["data-state"] == "broken"]
    assert [a["data-name"] for a in broken] == [f"cmp1 tap{PORT}"]
    assert broken[0]["id"] == "path-0-hop-1"
    # the finding's hop names qbr and tap: both carry its badge; the guest does not
    flagged = [a["data-name"] for _, a in states if a.get("data-finding") == "security-group-drops-dhcp"]
    assert flagged == [f"cmp1 tap{PORT}", f"cmp1 qbr{PORT}"]
    # chain: the root cause with its time, then what it explains
    chain = page[page.index('id="chain"'):page.index('id="paths"')]
    assert chain.index("security-group-drops-dhcp") < chain.index("dhcp-server-silent")
    assert "2024-06-10 06:13:22Z" in chain
    # timeline in UTC; findings with severity, fix in <code>, references; long evidence folded
    assert "2024-06-10 06:13:21Z" in page[page.index('id="timeline"'):]
    assert '<code>openstack security group rule create --ingress' in page
    assert '<a href="https://bugs.launchpad.net/neutron/+bug/1234567"' in page
    assert "<summary>4 more</summary>" in page  # 12 evidence items, 8 shown
    assert 'href="#finding-1">security-group-drops-dhcp</a>' in page  # caused by links to its cause
    assert len(page.splitlines()) > 10


def _hop_attrs(page: str):
    class P(HTMLParser):
        found = []

        def handle_starttag(self, tag, attrs):
            if tag == "g" and ("class", "hop") in attrs:
                self.found.append((tag, dict(attrs)))
    p = P()
    p.found = []
    p.feed(page)
    return p.found


def test_healthy_report_without_findings_or_paths_is_green():
    d = Diagnosis(verdict="No DHCP fault found in this evidence.",
                  summary={"facts": 606, "hosts": ["cmp1", "cmp2", "net1"]})
    page = H.render(d)
    c = check(page)
    assert '<h1 class="verdict good" id="verdict">No DHCP fault found in this evidence.</h1>' in page
    assert "606 facts read from 3 host(s): cmp1, cmp2, net1" in "".join(c.text)
    assert "<svg" not in page and "Findings" not in page


def test_warning_only_and_unknown_states():
    d = Diagnosis(verdict="No fault that stops DHCP was found; see the warnings below.",
                  findings=[Finding(id="dhcp-logging-off", severity="warning", subject="net1", title="t <x>")],
                  paths=[PortPath(port="vm2", hops=[hop("cmp2 tapf4a42f56-c8", "tap", "unknown", []),
                                                    hop("cmp2 qvof4a42f56-c8", "weird-role", "odd", ["NAK"])])])
    page = H.render(d)
    check(page)
    assert 'class="verdict warn"' in page and "t &lt;x&gt;" in page
    assert [a["data-state"] for _, a in _hop_attrs(page)] == ["unknown", "unknown"]


# --- in a real browser -------------------------------------------------------------------

def _chromium(tmp_path, *args) -> str:
    profile = tmp_path / "profile"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
           f"--user-data-dir={profile}", *args]
    # its own process group, so that a hung browser (a page that opened a dialog) goes with all its children
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                         env={**os.environ, "HOME": str(tmp_path)})
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        p.communicate()
        pytest.fail(f"chromium did not finish within 60s: {' '.join(args)}")
    assert p.returncode == 0, err[-2000:]
    return out


def _png_pixels(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB/RGBA PNG, as Chromium writes them."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8 and color in (2, 6), (depth, color)
            bpp = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, h, rows


PROBE = """<script>
const svg = document.querySelector('svg[id^="path-"]').getBoundingClientRect();
const box = document.querySelector('g.hop[data-state="broken"] rect.box');
document.body.setAttribute('data-probe', JSON.stringify({svg: [svg.left + scrollX, svg.top + scrollY],
  box: (r => [r.left + scrollX, r.top + scrollY, r.width, r.height])(box.getBoundingClientRect()),
  fill: getComputedStyle(box).fill}));
</script>"""


@pytest.mark.skipif(not os.path.exists(CHROMIUM),
                    reason=f"{CHROMIUM} not installed (./install.sh installs it: packaging/debian-packages.txt)")
def test_chromium_draws_the_lost_hop_red(tmp_path):
    page = H.render(broken_diagnosis())
    report = tmp_path / "report.html"
    report.write_text(page)
    # the same page with a probe appended that notes where the browser put things (it changes no layout)
    probe = tmp_path / "probe.html"
    probe.write_text(page.replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp_path, "--dump-dom", "--window-size=1280,2000", probe.as_uri())
    assert "security-group-drops-dhcp: the firewall drops the DHCP reply to vm1" in dom
    assert "<script>alert" not in dom  # the browser, too, saw text, not a script
    g = [a for _, a in _hop_attrs(dom) if a["data-state"] == "broken"]
    assert [a["data-name"] for a in g] == [f"cmp1 tap{PORT}"]
    box = dom[dom.index(f'id="{g[0]["id"]}"'):]
    box = box[box.index('<rect class="box"'):]
    assert f'fill="{H.STATE_FILL["broken"]}"' in box[:box.index(">")]
    start = dom.index('data-probe="') + len('data-probe="')
    where = json.loads(dom[start:dom.index('"', start)].replace("&quot;", '"'))
    assert where["fill"] == "rgb(207, 34, 46)"  # #cf222e
    # the layout constants say where hop 1's box is inside the drawing; the browser agrees
    sx, sy = where["svg"]
    x, y = sx + H.HOP_X0 + 1 * (H.HOP_W + H.HOP_GAP), sy + H.HOP_Y0
    assert [round(v) for v in where["box"]] == [round(x), round(y), H.HOP_W, H.HOP_H]

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report.as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000
    w, h, rows = _png_pixels(shot)
    assert (w, h) == (1280, 2000) and y + H.HOP_H < h
    # sample a grid over the box (its text is white): most of it is red
    grid = [rows[int(y + dy)][int(x + dx)] for dy in range(4, H.HOP_H - 3, 6) for dx in range(4, H.HOP_W - 3, 6)]
    red = [p for p in grid if p[0] > 170 and p[1] < 90 and p[2] < 90]
    assert len(red) > 0.6 * len(grid), grid[:10]
    # and the guest's box, one hop to the left, is green
    gx = sx + H.HOP_X0
    green = rows[int(y + H.HOP_H - 5)][int(gx + H.HOP_W - 5)]
    assert green[1] > 100 and green[0] < 80, green
    if os.environ.get("WHYNOIP_KEEP_SCREENSHOT"):
        shutil.copy(shot, os.environ["WHYNOIP_KEEP_SCREENSHOT"])
