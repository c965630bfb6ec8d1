"""The HTML report: one self-contained file an operator can attach to a ticket and open
offline. The verdict comes first, then the causal chain, a drawing of each port's path
from the guest to the DHCP server (green: the exchange got there, red: where it was lost,
grey: nothing seen), the timeline, each finding with its evidence and fix, and what to
collect next. It is built from the redacted form of the diagnosis (report.json.to_builtins)
so no secret reaches the page, and every string is escaped: evidence lines come from
untrusted logs. No script, no external resource; <details> folds long evidence."""

from __future__ import annotations

import time
from html import escape

from whynoip import __version__
from whynoip.findings import Diagnosis
from whynoip.report.json import to_builtins

STATE_FILL = {"ok": "#1f883d", "broken": "#cf222e", "unknown": "#d0d7de"}
STATE_WORD = {"ok": "✓ seen", "broken": "✗ lost here", "unknown": "· nothing seen"}
SEVERITY_COLOR = {"critical": "#cf222e", "warning": "#bf8700", "info": "#0969da"}
ROLE_LABEL = {"guest": "guest", "tap": "tap", "qbr": "qbr (bridge)", "qvb": "qvb (veth)", "qvo": "qvo (br-int)",
              "underlay-compute": "underlay", "underlay-server": "underlay", "dhcp-tap": "DHCP tap",
              "dhcp-ns": "qdhcp netns"}
DORA = (("D", "DISCOVER"), ("O", "OFFER"), ("R", "REQUEST"), ("A", "ACK"), ("N", "NAK"))
# Path drawing layout, in SVG user units = CSS pixels (the SVG is drawn at 1:1). Hop i's
# box is at x = HOP_X0 + i * (HOP_W + HOP_GAP), y = HOP_Y0 inside its <svg>.
HOP_W, HOP_H, HOP_GAP, HOP_X0, HOP_Y0 = 110, 76, 18, 12, 30
PILL_W, PILL_GAP = 20, 3

CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#1f2328;
background:#fff}
main{max-width:1240px;margin:0 auto;padding:20px 20px 40px}
h1.verdict{font-size:26px;line-height:1.25;margin:0 0 6px;padding:16px 20px;border-radius:8px;border-left:8px solid}
.bad{background:#ffebe9;border-color:#cf222e;color:#82071e}.warn{background:#fff8c5;border-color:#bf8700;color:#6f4e00}
.good{background:#dafbe1;border-color:#1f883d;color:#0f5323}
.meta{color:#57606a;font-size:13px;margin:0 0 18px}
h2{font-size:18px;margin:26px 0 8px;padding-bottom:4px;border-bottom:1px solid #d0d7de}
a{color:#0969da;text-decoration:none}a:hover{text-decoration:underline}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px}
.time{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;color:#57606a;white-space:nowrap}
ol.chain{padding-left:22px;margin:0}ol.chain>li{margin:4px 0}ol.chain ul{list-style:none;padding-left:18px;margin:2px 0}
ol.chain ul li::before{content:"└─▶ ";color:#8c959f}
.sev{display:inline-block;font-size:11px;font-weight:600;text-transform:uppercase;color:#fff;border-radius:10px;
padding:0 8px;vertical-align:1px}
.path{margin:8px 0 14px}.path h3{font-size:14px;margin:0 0 4px;font-weight:600}
.scroll{overflow-x:auto}.legend{color:#57606a;font-size:12px}
.legend i{display:inline-block;width:11px;height:11px;border-radius:2px;vertical-align:-1px;margin:0 3px 0 10px}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;vertical-align:top;padding:3px 8px;border-bottom:1px solid #eaeef2}
th{background:#f6f8fa;font-weight:600}td.fid{white-space:nowrap}
td.text{font-family:ui-monospace,"DejaVu Sans Mono",monospace;font-size:12px;
overflow-wrap:anywhere}
.finding{border:1px solid #d0d7de;border-left:6px solid;border-radius:6px;padding:10px 14px;margin:12px 0}
.finding h3{font-size:15px;margin:0 0 4px}.finding .sub{color:#57606a;font-size:13px;margin:0 0 6px}
.finding ul.ev{list-style:none;padding:0;margin:4px 0}
.finding ul.ev li{padding:2px 0 2px 8px;border-left:2px solid #eaeef2;margin:2px 0}
.src{color:#57606a;font-size:12px}.ev code{white-space:pre-wrap;overflow-wrap:anywhere;color:#1f2328}
pre.fix{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:6px 10px;margin:4px 0;
white-space:pre-wrap;overflow-wrap:anywhere}
summary{cursor:pointer;color:#57606a;font-size:13px}
.step{margin:8px 0}.step pre{margin:3px 0 0}
footer{margin-top:30px;color:#8c959f;font-size:12px}
"""


def _e(v) -> str:
    return escape("" if v is None else str(v), quote=True)


def _t(ts: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts)) + "Z" if ts else ""


def _clip(s: str | None, n: int) -> str:
    s = s or ""
    return s if len(s) <= n else s[:n - 1] + "…"


def _named(hop_name: str, where: str | None) -> bool:
    """Whether a finding's `hop` ("between A and B", "after A", or a hop's name) names this hop."""
    return bool(where) and (hop_name == where or f" {hop_name} " in f" {where} ")


def render(d: Diagnosis) -> str:
    obj = to_builtins(d)  # redacted: secrets never reach the page
    findings = obj["findings"]
    number = {id(f): i for i, f in enumerate(findings, 1)}
    first_of = {}
    for f in findings:
        first_of.setdefault(f["id"], number[id(f)])
    roots = [f for f in findings if f["root_cause"] and f["severity"] == "critical"]
    mood = "bad" if roots else ("warn" if any(f["severity"] == "warning" for f in findings) else "good")
    s = obj["summary"]
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>whynoip: {_e(obj['verdict'])}</title><style>{CSS}</style></head><body><main>",
           f'<h1 class="verdict {mood}" id="verdict">{_e(obj["verdict"])}</h1>', _meta(s)]
    out += _chain(findings, number, first_of)
    if obj["paths"]:
        out.append('<h2 id="paths">Path of the DHCP exchange</h2>')
        out.append('<p class="legend">From the guest (left) to the DHCP server (right), one box per capture point:'
                   f'<i style="background:{STATE_FILL["ok"]}"></i>messages seen'
                   f'<i style="background:{STATE_FILL["broken"]}"></i>lost before reaching it'
                   f'<i style="background:{STATE_FILL["unknown"]}"></i>nothing seen. '
                   'Under each box: D DISCOVER, O OFFER, R REQUEST, A ACK, N NAK (dark: seen). '
                   'A numbered badge marks the hop a finding names.</p>')
        for pi, p in enumerate(obj["paths"]):
            out.append(_path(pi, p, findings, number))
    out += _timeline(obj["timeline"], first_of)
    if findings:
        out.append(f'<h2 id="findings">Findings ({len(findings)})</h2>')
        out += [_finding(f, number[id(f)], first_of) for f in findings]
    if obj["next_steps"]:
        out.append('<h2 id="next">Collect next</h2>')
        for st in obj["next_steps"]:
            on = f' <span class="src">on {_e(st["host"])}</span>' if st.get("host") else ""
            out.append(f'<div class="step">{_e(st["why"])}{on}<pre class="fix"><code>{_e(st["command"])}'
                       "</code></pre></div>")
    out.append(f"<footer>whynoip {_e(__version__)} · times are UTC · secrets in the evidence are shown as ***"
               "</footer></main></body></html>")
    return "\n".join(out) + "\n"


def _meta(s: dict) -> str:
    parts = []
    if s.get("facts") is not None:
        hosts = s.get("hosts") or []
        parts.append(f"{s['facts']} facts read from {len(hosts)} host(s)" + (f": {', '.join(hosts)}" if hosts else ""))
    servers = [f"{x.get('ip') or '?'} on {x.get('host') or '?'}" for x in s.get("dhcp_servers") or []]
    if servers:
        parts.append("DHCP server(s) " + ", ".join(servers))
    counts = [f"{s[k]} {k}" for k in ("critical", "warning", "info") if s.get(k)]
    if counts:
        parts.append(", ".join(counts))
    if s.get("unparsed_sections"):
        parts.append(f"{s['unparsed_sections']} section(s) of the input not understood "
                     "(whynoip facts PATH shows which)")
    return f'<p class="meta">{_e(" · ".join(parts))}</p>'


def _when(f: dict) -> str:
    return f'<span class="time">{_t(f["time"])}</span> ' if f.get("time") else ""


def _ref(fid: str, first_of: dict) -> str:
    n = first_of.get(fid)
    return f'<a href="#finding-{n}">{_e(fid)}</a>' if n else _e(fid)


def _chain(findings: list[dict], number: dict, first_of: dict) -> list[str]:
    causes = [f for f in findings if f["root_cause"] and f["severity"] != "info"]
    if not causes:
        return []
    out = ['<h2 id="chain">Root causes and what they explain</h2><ol class="chain">']
    for f in causes:
        effects = [g for g in findings if f["id"] in g["caused_by"]]
        out.append(f'<li>{_when(f)}<span class="sev" style="background:{SEVERITY_COLOR.get(f["severity"], "#57606a")}">'
                   f'{_e(f["severity"])}</span> <a href="#finding-{number[id(f)]}"><b>{_e(f["id"])}</b></a> '
                   f'{_e(f["title"])}')
        if effects:
            out.append("<ul>" + "".join(
                f'<li>{_when(g)}<a href="#finding-{number[id(g)]}">{_e(g["id"])}</a> {_e(g["title"])}</li>'
                for g in effects) + "</ul>")
        out.append("</li>")
    return out + ["</ol>"]


def _path(pi: int, p: dict, findings: list[dict], number: dict) -> str:
    hops = p["hops"]
    n = len(hops)
    width = 2 * HOP_X0 + n * HOP_W + max(n - 1, 0) * HOP_GAP
    height = HOP_Y0 + HOP_H + 36
    xs = [HOP_X0 + i * (HOP_W + HOP_GAP) for i in range(n)]
    cy = HOP_Y0 + HOP_H // 2
    title = (p["port"] + (f" · {p['ip']}" if p.get("ip") else "") + f" → DHCP server on {p.get('server') or '?'}"
             + (f" · the exchange got as far as {p['break_after']}" if p.get("break_after") else ""))
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" id="path-{pi}" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui,DejaVu Sans,sans-serif" role="img" '
           f'aria-label="{_e(title)}"><defs><marker id="arrow-{pi}" viewBox="0 0 10 10" refX="9" refY="5" '
           'markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#57606a"/>'
           f'</marker><marker id="arrow-bad-{pi}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#cf222e"/></marker></defs>']
    i = 0
    while i < n:  # a light band per host, around its consecutive hops
        j = i
        while j + 1 < n and hops[j + 1].get("host") == hops[i].get("host"):
            j += 1
        x0, x1 = xs[i] - 6, xs[j] + HOP_W + 6
        svg.append(f'<rect x="{x0}" y="4" width="{x1 - x0}" height="{height - 6}" rx="8" fill="#f6f8fa" '
                   f'stroke="#d0d7de"/><text x="{x0 + 8}" y="20" font-size="12" font-weight="600" fill="#57606a">'
                   f'{_e(_clip(hops[i].get("host") or "host ?", (x1 - x0) // 7))}</text>')
        i = j + 1
    for i in range(n - 1):
        bad = {hops[i]["state"], hops[i + 1]["state"]} & {"broken"} and p.get("break_after") in (
            hops[i]["name"], hops[i + 1]["name"])
        x1, x2 = xs[i] + HOP_W + 2, xs[i + 1] - 2
        # a lost message: the red arrow points from the last hop that saw it to the one that missed it
        look = ('stroke="#cf222e" stroke-dasharray="4 3" marker-{}="url(#arrow-bad-{})"'.format(
            "start" if hops[i]["state"] == "broken" else "end", pi) if bad
            else f'stroke="#57606a" marker-end="url(#arrow-{pi})"')
        svg.append(f'<line x1="{x1}" y1="{cy}" x2="{x2}" y2="{cy}" {look} stroke-width="2"/>')
        if bad:
            svg.append(f'<text x="{(x1 + x2) // 2}" y="{cy - 8}" text-anchor="middle" font-size="16" '
                       f'font-weight="700" fill="#cf222e">✗</text>')
    for i, h in enumerate(hops):
        svg.append(_hop(pi, i, xs[i], h, findings, number))
    svg.append("</svg>")
    return (f'<div class="path"><h3>{_e(title)}</h3><div class="scroll">{"".join(svg)}</div></div>')


def _hop(pi: int, i: int, x: int, h: dict, findings: list[dict], number: dict) -> str:
    state = h["state"] if h["state"] in STATE_FILL else "unknown"
    ink = "#1f2328" if state == "unknown" else "#fff"
    flagged = [f for f in findings if _named(h["name"], f.get("hop"))]
    seen = set(h["seen"])
    tip = f"{h['name']} ({h['role']}): {state}; seen: {' '.join(h['seen']) or 'nothing'}" + (
        f"; capture: {h['source']}" if h.get("source") else "")
    mark = f' data-finding="{_e(flagged[0]["id"])}"' if flagged else ""
    g = [f'<g class="hop" id="path-{pi}-hop-{i}" data-state="{_e(state)}" data-role="{_e(h["role"])}" '
         f'data-name="{_e(h["name"])}"{mark}>'
         f"<title>{_e(tip)}</title>",
         f'<rect class="box" x="{x}" y="{HOP_Y0}" width="{HOP_W}" height="{HOP_H}" rx="6" fill="{STATE_FILL[state]}" '
         f'stroke="{"#1f2328" if flagged else "none"}" stroke-width="{3 if flagged else 0}"/>']
    lines = [(ROLE_LABEL.get(h["role"], h["role"]), 13, "600", ""), (_clip(h.get("interface"), 15), 11, "400", "mono"),
             (_clip(h.get("namespace"), 16), 10, "400", "mono"), (STATE_WORD[state], 11, "600", "")]
    for k, (text, size, weight, mono) in enumerate(lines):
        if text:
            font = ' font-family="DejaVu Sans Mono,monospace"' if mono else ""
            g.append(f'<text x="{x + 8}" y="{HOP_Y0 + 17 + k * 17}" font-size="{size}" font-weight="{weight}" '
                     f'fill="{ink}"{font}>{_e(text)}</text>')
    shown = [(c, m) for c, m in DORA if c != "N" or m in seen]
    px = x + (HOP_W - len(shown) * PILL_W - (len(shown) - 1) * PILL_GAP) // 2
    for c, m in shown:
        on = m in seen
        fill = ("#cf222e" if m == "NAK" else "#24292f") if on else "#fff"
        g.append(f'<rect x="{px}" y="{HOP_Y0 + HOP_H + 8}" width="{PILL_W}" height="18" rx="4" fill="{fill}" '
                 f'stroke="{"none" if on else "#d0d7de"}"><title>{m} {"seen" if on else "not seen"}</title></rect>'
                 f'<text x="{px + PILL_W // 2}" y="{HOP_Y0 + HOP_H + 21}" text-anchor="middle" font-size="11" '
                 f'font-weight="700" fill="{"#fff" if on else "#afb8c1"}">{c}</text>')
        px += PILL_W + PILL_GAP
    for k, f in enumerate(flagged[:3]):
        n = number[id(f)]
        bx = x + HOP_W - 4 - k * 22
        g.append(f'<a href="#finding-{n}"><circle cx="{bx}" cy="{HOP_Y0 - 2}" r="10" fill="#fff" '
                 f'stroke="{SEVERITY_COLOR.get(f["severity"], "#57606a")}" stroke-width="2.5"/>'
                 f'<text x="{bx}" y="{HOP_Y0 + 2}" text-anchor="middle" font-size="11" font-weight="700" '
                 f'fill="#1f2328">{n}</text></a>')
    return "".join(g) + "</g>"


def _timeline(rows: list[dict], first_of: dict) -> list[str]:
    if not rows:
        return []
    out = ['<h2 id="timeline">Timeline (UTC)</h2><table><thead><tr><th>time</th><th>host</th><th>finding</th>'
           "<th>event</th><th>source</th></tr></thead><tbody>"]
    for r in rows:
        src = f"{r.get('source') or ''}:{r['line']}" if r.get("line") else (r.get("source") or "")
        out.append(f'<tr><td class="time">{_t(r.get("time"))}</td><td>{_e(r.get("host"))}</td>'
                   f'<td class="fid">{_ref(r.get("finding") or "", first_of)}</td>'
                   f'<td class="text">{_e(r.get("text"))}</td>'
                   f'<td class="src">{_e(src)}</td></tr>')
    return out + ["</tbody></table>"]


def _evidence(e: dict) -> str:
    src = f"{e['source']}:{e['line']}" if e.get("line") else e.get("source", "")
    where = " ".join(x for x in (e.get("host"), src) if x)
    when = f' <span class="time">{_t(e.get("time"))}</span>' if e.get("time") else ""
    return f'<li><span class="src">{_e(where)}</span>{when}<br><code>{_e(e.get("text"))}</code></li>'


def _finding(f: dict, n: int, first_of: dict, shown: int = 8) -> str:
    color = SEVERITY_COLOR.get(f["severity"], "#57606a")
    why = "root cause" if f["root_cause"] else "caused by " + ", ".join(_ref(c, first_of) for c in f["caused_by"])
    out = [f'<section class="finding" id="finding-{n}" data-id="{_e(f["id"])}" style="border-left-color:{color}">',
           f'<h3>{n}. <span class="sev" style="background:{color}">{_e(f["severity"])}</span> '
           f'<span class="mono">{_e(f["id"])}</span> — {_e(f["title"])}</h3>',
           f'<p class="sub">{why} · about {_e(f["subject"])}'
           + (f" · where: {_e(f['hop'])}" if f.get("hop") else "")
           + (f' · since <span class="time">{_t(f["time"])}</span>' if f.get("time") else "") + "</p>"]
    if f.get("also"):
        out.append(f'<details class="also"><summary>and {len(f["also"])} more like it</summary><p class="mono">'
                   + _e(", ".join(f["also"])) + "</p></details>")
    ev = f["evidence"]
    if ev:
        out.append(f"<details open><summary>Evidence ({len(ev)})</summary><ul class=\"ev\">"
                   + "".join(_evidence(e) for e in ev[:shown]) + "</ul>")
        if len(ev) > shown:
            out.append(f"<details><summary>{len(ev) - shown} more</summary><ul class=\"ev\">"
                       + "".join(_evidence(e) for e in ev[shown:]) + "</ul></details>")
        out.append("</details>")
    if f["fix"]:
        out.append("<div><b>Fix</b>" + "".join(f'<pre class="fix"><code>{_e(x)}</code></pre>' for x in f["fix"])
                   + "</div>")
    if f.get("references"):
        out.append("<div><b>See</b><ul>" + "".join(
            f'<li><a href="{_e(r)}" rel="noreferrer">{_e(r)}</a></li>' if r.startswith(("https://", "http://"))
            else f"<li>{_e(r)}</li>" for r in f["references"]) + "</ul></div>")
    return "".join(out) + "</section>"
