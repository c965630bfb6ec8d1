"""Pasted terminal scrollback, as it arrives in tickets, cut into the outputs of its commands.

A transcript is split at shell prompts (`root@net-02:~# `, `[root@ctl ~]# `,
`(overcloud) [stack@undercloud ~]$ `, a bare `# `/`$ ` before a known command). Each
command's output becomes one piece, with the host the prompt names and the namespace,
interface and files the command line names (see `whynoip.evidence.command`). Between
outputs, tickets hold prose ("then I restarted the agent:"), login banners and blank
lines: prose and banners are left out (and counted), blank lines only separate blocks. A
block after a blank line that the command's parser would not read but another would (a
log pasted without its prompt) starts a piece of its own; text without any prompt is cut
block by block and each block is recognised by its content.

Two kinds of damage are undone: `grep` output prefixes (`/var/log/neutron/dhcp-agent.log:`,
`file.log-12-`, `file.log:12:`) are stripped, the file name kept as a note on the path
(`ticket.txt#/var/log/neutron/dhcp-agent.log`); and log lines that a terminal or a ticket
system wrapped at a fixed width (80, 120, 132 ... columns) are joined again. Line numbers
always point into the transcript.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable

from whynoip.evidence import command as cmdline

# --- prompts ----------------------------------------------------------------------------------

_PROMPT_RE = re.compile(r"""^
    (?:\((?P<tag>[^()\s]{1,40})\)\s*)?                                 # (overcloud), (venv)
    (?:
        \[(?P<u1>[\w.-]{1,32})@(?P<h1>[\w.-]{1,64})(?:\s[^\]]{0,80})?\]\s?[#$%]   # [root@ctl ~]#
      | (?P<u2>[\w.-]{1,32})@(?P<h2>[\w.-]{1,64}):[^\s#$]{0,200}\s?[#$%]      # root@net-02:~#
      | (?P<u3>[\w.-]{1,32})@(?P<h3>[\w.-]{1,64})\s?[#$%>]                    # root@host#
      | (?P<bash>(?:-?bash|sh)(?:-\d+(?:\.\d+)*)?[#$])                         # bash-4.2#
      | (?P<bare>[#$])                                                         # $ , #
    )
    (?:[ \t](?P<cmd>.*))?$""", re.X)

# First words that make a bare `# `/`$ ` line a prompt (and not a comment or a shell
# variable in a config file).
KNOWN_PROGRAMS = frozenset("""
    ip ifconfig route arp ovs-vsctl ovs-ofctl ovs-appctl ovs-dpctl ovsdb-client ovn-nbctl
    ovn-sbctl ovn-trace ovn-appctl tcpdump tshark dumpcap dhcpdump dhclient udhcpc dnsmasq ps
    pgrep pidof top cat tac tail head less more grep egrep fgrep zgrep zcat xzcat journalctl
    systemctl service pcs crm_mon crm openstack neutron nova glance cinder keystone brctl
    bridge iptables iptables-save ip6tables ip6tables-save ebtables ebtables-save nft conntrack
    df du free uptime date hostname uname ls ll ss netstat lsof ping arping traceroute virsh
    docker podman crictl kubectl oc sudo watch ethtool rabbitmqctl mysql sos sosreport find
    awk sed curl ssh nsenter strace timeout dmesg cloud-init nmcli networkctl resolvectl
    lsns ovs-tcpdump tc sysctl dig nslookup host kill pkill killall stat file wc sort
""".split())

# Lines a login or a pager prints, never evidence.
_BANNER_RE = re.compile(
    r"^\s*(?:Last login: |Last failed login: |Welcome to |\* Documentation: |\* Management: |"
    r"\* Support: |System information as of |Connection to \S+ closed|logout$|"
    r"The programs included with |permitted by applicable law|Warning: Permanently added |"
    r"\[sudo\] password for |Password:\s*$|Activate the web console|Web console: |"
    r"There (?:were|was) \d+ failed login|Press 'q' to|\(END\)$|~$|Every \d+(?:\.\d+)?s: )")

_TIME_START_RE = re.compile(
    r"^\s*(?:\d{4}-\d\d-\d\d[ T]\d\d:\d\d|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d|\d\d:\d\d:\d\d[.,]\d|"
    r"\[\s*\d+\.\d+\]|=[A-Z]+ REPORT==== |\d{1,2}-[A-Z][a-z]{2}-\d{4}::)")

Recognise = Callable[[str, "str | None", "cmdline.CommandLine | None"], "object | None"]

WRAP_WIDTHS = frozenset((80, 100, 120, 132, 140, 150, 160, 180, 200, 240, 255, 256))

_WORD_RE = re.compile(r"""^[("'\u201c]?[A-Za-z][A-Za-z'\u2019-]*[)"'\u201d,.;:!?]*$""")
_NOTE_RE = re.compile(r"^\s*(?:-{3,}|={3,}|\*{3,}|#{2,} |>+ |\[?(?:Update|Comment|Note|Edit|EDIT|UPDATE)\b)")


@dataclass(slots=True)
class Prompt:
    host: str | None
    user: str | None
    command: str  # may be empty: a prompt with nothing typed


def parse_prompt(line: str, known: Callable[[str], bool] | None = None, bare_hash: bool = True) -> Prompt | None:
    """The prompt at the start of `line`, or None. A bare `# `/`$ ` counts only before a
    known program (`known(command)` may widen that); `bare_hash=False` refuses `# ` (in
    text full of `#` comments, `# ip netns ...` is a comment)."""
    if len(line) > 4096 or not line or line[0] not in "([#$-bsABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.":
        return None
    m = _PROMPT_RE.match(line)
    if not m:
        return None
    cmd = (m["cmd"] or "").strip()
    host = m["h1"] or m["h2"] or m["h3"]
    user = m["u1"] or m["u2"] or m["u3"]
    if m["bare"] or m["bash"]:
        if m["tag"] is not None and m["bare"]:
            return None
        if m["bare"] == "#" and not bare_hash:
            return None
        words = cmd.split()
        if not words:
            return None  # a lone `#` or `$` is not enough to call it a prompt
        first = words[0]
        if first in ("sudo", "watch", "timeout", "time") and len(words) > 1:
            first = next((w for w in words[1:] if not w.startswith("-") and not w.isdigit()), first)
        first = first.rsplit("/", 1)[-1]
        if first not in KNOWN_PROGRAMS and not (known and known(cmd)):
            return None
    return Prompt(host=host, user=user, command=cmd)


# Output without a final newline (a file `cat`, `printf`) leaves the next prompt on its last
# line: `...option:router,10.0.0.1root@net-02:~# ip netns exec ...`.
_EMBEDDED_RE = re.compile(r"(?:\[[\w.-]{1,32}@[\w.-]{1,64}(?:\s[^\]]{0,80})?\]|"
                          r"(?P<user>[\w.-]{1,64})@[\w.-]{1,64}:[^\s#$]{0,200})\s?[#$%][ \t]\S")
COMMON_USERS = ("root", "stack", "ubuntu", "centos", "cloud-user", "heat-admin", "tripleo-admin",
                "vagrant", "admin", "debian", "fedora", "ec2-user", "core", "zuul", "cirros", "opc",
                "rocky", "almalinux", "openstack", "operator")


def split_embedded_prompt(line: str, known: Callable[[str], bool] | None = None) -> tuple[str, str] | None:
    """(output, prompt line) when a full prompt (`user@host:path# cmd`, `[user@host dir]# cmd`)
    follows output on the same line; None otherwise."""
    if "@" not in line:
        return None
    for m in _EMBEDDED_RE.finditer(line, 1):
        start = m.start()
        user = m["user"]
        if user is not None:
            # the user name glued to the output: only a well-known one can be told apart
            cut = next((len(user) - len(u) for u in COMMON_USERS if user.endswith(u)), None)
            if cut is None:
                continue
            start += cut
        if start == 0:
            continue
        p = parse_prompt(line[start:], known)
        if p is not None and p.command:
            return line[:start], line[start:]
    return None


# --- pieces -----------------------------------------------------------------------------------

@dataclass(slots=True)
class Piece:
    """A run of a transcript's lines with one origin: a command's output or a block
    recognised by content. `kind`: output (a prompt's command), block (no prompt),
    unrecognised (no prompt, nothing recognised it)."""

    kind: str
    lines: list[str]
    line_map: list[int]
    command: cmdline.CommandLine | None = None
    host: str | None = None
    namespace: str | None = None
    source: str | None = None  # the file the lines came from (grep prefix, cat FILE)
    parser: object | None = None  # the parser recognised for a block
    prompt_line: int | None = None  # the line of the prompt that ran `command`


@dataclass(slots=True)
class Split:
    pieces: list[Piece] = field(default_factory=list)
    prose_lines: int = 0
    banner_lines: int = 0
    joined_lines: int = 0
    commands: int = 0


def looks_like_transcript(head: str, known: Callable[[str], bool] | None = None) -> bool:
    """True when the text holds at least one shell prompt with a command at a line start."""
    lines = head.splitlines()[:2000]
    bare_hash = _bare_hash_ok(lines)
    for line in lines:
        p = parse_prompt(line, known, bare_hash)
        if p is not None and p.command:
            return True
    return False


def _bare_hash_ok(lines: list[str]) -> bool:
    """A bare `# ` may be a root prompt only in text that is not full of `#` comments."""
    body = [ln for ln in lines if ln.strip()]
    return not body or sum(1 for ln in body if ln.startswith("#")) * 5 < len(body)


def _is_prose(line: str) -> bool:
    s = line.strip()
    if not s:
        return False
    if _NOTE_RE.match(s):
        return True
    if _TIME_START_RE.match(s) or s[0].isdigit():
        return False
    toks = s.split()
    words = sum(1 for t in toks if _WORD_RE.match(t))
    if len(toks) < 3:
        return words == len(toks) and s[-1] in ".,:!?" and len(s) > 2
    return words / len(toks) >= 0.75


def _prose_block(lines: list[str]) -> bool:
    body = [ln for ln in lines if ln.strip()]
    if not body:
        return False
    return sum(1 for ln in body if _is_prose(ln)) * 10 >= len(body) * 6


# --- grep output ------------------------------------------------------------------------------

_GREP_SEP_RE = re.compile(r"([:-])(\d+)\1|:")
_PATHLIKE_RE = re.compile(r"(?:^|/)[\w.@+~-]+\.(?:log|txt|out|err|json|conf|ini|cfg|yaml|yml|gz|xz|\d+)"
                          r"(?:[.-]\d+)*(?:\.gz)?$|/")


def grep_prefix(line: str) -> tuple[str, str] | None:
    """(file, rest) when `line` starts like grep's output over several files
    (`FILE:text`, `FILE:12:text`, `FILE-12-text`); None otherwise."""
    for m in _GREP_SEP_RE.finditer(line, 0, 300):
        name = line[:m.start()]
        if not name or any(c.isspace() for c in name) or name.startswith(("-", "[")):
            return None
        if name[-1] in ":-" or name.isdigit():
            continue
        if _PATHLIKE_RE.search(name) and not re.match(r"^\w+://", line):
            # a URL or time after a word (`http://`, `12:30`) is not a file
            if "/" not in name and not re.search(r"\.[A-Za-z]{2,}|\.\d+$", name):
                continue
            return name, line[m.end():]
    return None


def _split_grep(lines: list[str], line_map: list[int]) -> list[tuple[str | None, list[str], list[int]]] | None:
    """Split grep output over several files into per-file runs, prefixes stripped; None if
    most lines do not carry a prefix."""
    found = []
    body = 0
    for ln in lines:
        if not ln.strip() or ln == "--":
            found.append(None)
            continue
        body += 1
        found.append(grep_prefix(ln))
    hits = sum(1 for f in found if f is not None)
    if body == 0 or hits * 10 < body * 6:
        return None
    runs: list[tuple[str | None, list[str], list[int]]] = []
    for ln, n, f in zip(lines, line_map, found):
        if ln == "--":
            continue
        name, text = f if f is not None else (None, ln)
        if f is None and runs:
            name = runs[-1][0]  # an unprefixed line continues the file before it
        if not runs or runs[-1][0] != name:
            runs.append((name, [], []))
        runs[-1][1].append(text)
        runs[-1][2].append(n)
    return runs


_LINE_NO_RE = re.compile(r"^(\d+)[:-]")
_GREPS = ("grep", "egrep", "fgrep", "zgrep", "zegrep", "xzgrep", "bzgrep", "rg", "ag")


def _strip_line_numbers(lines: list[str]) -> list[str] | None:
    """`grep -n PATTERN FILE` on one file prefixes `12:` (and `12-` for context)."""
    body = [ln for ln in lines if ln.strip() and ln != "--"]
    if not body or sum(1 for ln in body if _LINE_NO_RE.match(ln)) * 10 < len(body) * 9:
        return None
    return [_LINE_NO_RE.sub("", ln, count=1) for ln in lines]


# --- wrapped lines ----------------------------------------------------------------------------

def _join_wrapped(lines: list[str], numbers: list[int], split: Split) -> tuple[list[str], list[int]]:
    """Join log lines a terminal or ticket cut at a fixed width, back into one line."""
    out: list[str] = []
    nums: list[int] = []
    i = 0
    n = len(lines)
    while i < n:
        line = lines[i]
        num = numbers[i]
        if len(line) in WRAP_WIDTHS and _TIME_START_RE.match(line):
            width = len(line)
            parts = [line]
            j = i + 1
            while j < n:
                nxt = lines[j]
                if not nxt or _TIME_START_RE.match(nxt) or parse_prompt(nxt) is not None:
                    break
                parts.append(nxt)
                j += 1
                if len(nxt) != width:
                    break
            if j > i + 1:
                split.joined_lines += j - i - 1
                line = "".join(parts)
                i = j
            else:
                i += 1
        else:
            i += 1
        out.append(line)
        nums.append(num)
    return out, nums


# --- splitting --------------------------------------------------------------------------------

def _blocks(lines: list[str], nums: list[int]) -> list[tuple[list[str], list[int]]]:
    """Runs of non-blank lines, each with the blank lines before it dropped."""
    blocks: list[tuple[list[str], list[int]]] = []
    cur: tuple[list[str], list[int]] | None = None
    for ln, n in zip(lines, nums):
        if not ln.strip():
            cur = None
            continue
        if cur is None:
            cur = ([], [])
            blocks.append(cur)
        cur[0].append(ln)
        cur[1].append(n)
    return blocks


def _pieces_from(kind: str, lines: list[str], nums: list[int], cmd: cmdline.CommandLine | None,
                 host: str | None, namespace: str | None, recognise: Recognise) -> list[Piece]:
    """One piece, or one per file when the lines are grep output over several files; each
    with the parser that would read it."""
    runs = _split_grep(lines, nums)
    if runs is not None:
        return [Piece(kind=kind, lines=ls, line_map=ns, command=cmd, host=host, namespace=namespace,
                      source=src, parser=recognise("\n".join(ls[:200]), src, None if src else cmd))
                for src, ls, ns in runs]
    if cmd is not None and cmd.program in _GREPS:
        if "--" in lines:  # the separator between context groups (-A/-B/-C)
            kept = [(ln, n) for ln, n in zip(lines, nums) if ln != "--"]
            lines, nums = [ln for ln, _ in kept], [n for _, n in kept]
        if re.search(r"(?:^|\s)-[A-Za-z]*n", cmd.core):
            stripped = _strip_line_numbers(lines)
            if stripped is not None:
                lines = stripped
    src = cmd.files[0] if cmd is not None and cmd.reader and len(cmd.files) == 1 else None
    return [Piece(kind=kind, lines=lines, line_map=nums, command=cmd, host=host, namespace=namespace,
                  source=src, parser=recognise("\n".join(lines[:200]), src, cmd))]


def split(text_lines: list[str], first_line: int = 1, recognise: Recognise | None = None,
          known: Callable[[str], bool] | None = None) -> Split:
    """Cut a transcript into pieces. `recognise(head, path, command)` names the parser that
    would read a run of lines (or None); `known(command)` says whether a parser reads a
    command's output (it lets a bare `# cmd` count as a prompt)."""
    result = Split()
    recognise = recognise or (lambda head, path, command: None)
    numbers = list(range(first_line, first_line + len(text_lines)))

    # banners out first: they sit anywhere (after ssh, su, a pager) and are never evidence
    kept: list[str] = []
    kept_nums: list[int] = []
    for ln, n in zip(text_lines, numbers):
        if _BANNER_RE.match(ln):
            result.banner_lines += 1
            continue
        kept.append(ln)
        kept_nums.append(n)
    lines, nums = _join_wrapped(kept, kept_nums, result)

    # segments: (prompt or None, output lines)
    segments: list[tuple[Prompt | None, int, list[str], list[int]]] = [(None, 0, [], [])]
    bare_hash = _bare_hash_ok(lines)
    i = 0
    while i < len(lines):
        p = parse_prompt(lines[i], known, bare_hash)
        if p is None:
            glued = split_embedded_prompt(lines[i], known)
            if glued is not None:
                # the output's last line, then the prompt on its own (same line number)
                lines[i:i + 1] = list(glued)
                nums[i:i + 1] = [nums[i], nums[i]]
                continue
            segments[-1][2].append(lines[i])
            segments[-1][3].append(nums[i])
            i += 1
            continue
        prompt_line = nums[i]
        command = p.command
        i += 1
        # a command continued with a backslash over several lines (PS2 `> `)
        while command.endswith("\\") and i < len(lines):
            command = command[:-1].rstrip() + " " + re.sub(r"^>\s?", "", lines[i]).strip()
            i += 1
        p.command = command
        segments.append((p, prompt_line, [], []))

    ns_shell: dict[str | None, str] = {}
    for prompt, prompt_line, seg_lines, seg_nums in segments:
        if prompt is None:
            result.pieces.extend(_loose_blocks(seg_lines, seg_nums, recognise, result))
            continue
        if not prompt.command:
            # a prompt with nothing typed: what follows is loose text
            result.pieces.extend(_loose_blocks(seg_lines, seg_nums, recognise, result))
            continue
        result.commands += 1
        cmd = cmdline.parse(prompt.command)
        namespace = cmd.namespace or ns_shell.get(prompt.host)
        if cmd.program in ("bash", "sh", "zsh") and cmd.namespace:
            ns_shell[prompt.host] = cmd.namespace  # `ip netns exec NS bash`: later prompts run in NS
        elif cmd.program == "exit":
            ns_shell.pop(prompt.host, None)
        blocks = _blocks(seg_lines, seg_nums)
        own_lines: list[str] = []
        own_nums: list[int] = []
        own_parser = None
        loose: list[Piece] = []
        for bi, (blines, bnums) in enumerate(blocks):
            if bi == 0:
                own_parser = recognise("\n".join(blines[:200]), cmd.files[0] if cmd.files else None, cmd)
                if own_parser is None and _prose_block(blines):
                    # the command printed nothing; the ticket went on talking
                    result.prose_lines += len(blines)
                    own_lines, own_nums = [], []
                    loose.append(Piece(kind="prose", lines=[], line_map=[]))  # later blocks are loose
                    continue
                own_lines, own_nums = list(blines), list(bnums)
                continue
            if loose:
                loose.extend(_loose_blocks(blines, bnums, recognise, result))
                continue
            other = recognise("\n".join(blines[:200]), None, None)
            if other is not None and other is not own_parser:
                loose.extend(_pieces_from("block", blines, bnums, None, None, None, recognise))
            elif _prose_block(blines):
                # the ticket talks: the command's output is over, what follows is loose text
                result.prose_lines += len(blines)
                loose.append(Piece(kind="prose", lines=[], line_map=[]))
            else:
                # more of the command's output (blank lines inside it, e.g. iptables -L)
                for g in range(own_nums[-1] + 1, bnums[0]):
                    own_lines.append("")
                    own_nums.append(g)
                own_lines.extend(blines)
                own_nums.extend(bnums)
        own = _pieces_from("output", own_lines, own_nums, cmd, prompt.host, namespace, recognise)
        for piece in own:
            piece.prompt_line = prompt_line
        result.pieces.extend(own)
        result.pieces.extend(_merge([p for p in loose if p.kind != "prose"]))
    return result


def _loose_blocks(lines: list[str], nums: list[int], recognise: Recognise, result: Split) -> list[Piece]:
    """Text outside any command's output, block by block: recognised by content, prose left
    out, the rest kept as unrecognised."""
    pieces: list[Piece] = []
    for blines, bnums in _blocks(lines, nums):
        runs = _split_grep(blines, bnums)
        if runs is not None:
            for src, ls, ns in runs:
                parser = recognise("\n".join(ls[:200]), src, None)
                pieces.append(Piece(kind="block" if parser else "unrecognised", lines=ls,
                                    line_map=ns, source=src, parser=parser))
            continue
        parser = recognise("\n".join(blines[:200]), None, None)
        if parser is not None:
            pieces.append(Piece(kind="block", lines=blines, line_map=bnums, parser=parser))
        elif _prose_block(blines):
            result.prose_lines += len(blines)
        else:
            pieces.append(Piece(kind="unrecognised", lines=blines, line_map=bnums))
    return _merge(pieces)


def _merge(pieces: list[Piece]) -> list[Piece]:
    """Adjacent blocks read by the same parser (a log with blank lines in it) become one."""
    out: list[Piece] = []
    for p in pieces:
        prev = out[-1] if out else None
        if prev is not None and prev.kind == p.kind and p.kind in ("block", "unrecognised") \
                and prev.parser is p.parser and prev.source == p.source and prev.command is None:
            gap = range(prev.line_map[-1] + 1, p.line_map[0])
            for g in gap:
                prev.lines.append("")
                prev.line_map.append(g)
            prev.lines.extend(p.lines)
            prev.line_map.extend(p.line_map)
            continue
        out.append(p)
    return out

