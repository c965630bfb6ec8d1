"""What a command line tells about its output: the command that chooses the parser, the
network namespace and interface it ran in, the files it printed, the filters it went through.

An operator types `sudo ip netns exec qdhcp-6f1c... tcpdump -nnvvi tap5c1d0e77-a2 port 67 |
grep -i offer`; the parser is chosen from `tcpdump -nnvvi tap5c1d0e77-a2 port 67`, the
namespace is `qdhcp-6f1c...`, the interface `tap5c1d0e77-a2`, and `grep -i offer` is noted as
a filter (what it hid is unknown, so the absence of a line proves nothing). For `cat`, `tail`,
`grep PATTERN FILE` and friends the output is the file, so the file's path chooses the parser.
"""

from __future__ import annotations

import os
import re
import shlex
from dataclasses import dataclass, field

# Commands that only run another command.
_WRAPPERS = {"sudo", "watch", "timeout", "time", "env", "nice", "ionice", "stdbuf", "command",
             "exec", "nohup", "unbuffer", "doas"}
# Options of those wrappers that take a value (so the value is not the wrapped command).
_WRAPPER_VALUE_OPTS = {
    "sudo": {"-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T"},
    "watch": {"-n", "--interval"},
    "timeout": {"-s", "--signal", "-k", "--kill-after"},
    "nice": {"-n", "--adjustment"},
    "ionice": {"-c", "-n", "-p"},
    "stdbuf": {"-i", "-o", "-e"},
}
_NUMERIC_FIRST = {"timeout"}  # `timeout 10 tcpdump ...`

# Commands whose output is the content of the files they name.
READERS = {"cat", "tac", "less", "more", "most", "view", "head", "tail", "zcat", "zless", "zmore",
           "bzcat", "xzcat", "zstdcat", "grep", "egrep", "fgrep", "zgrep", "zegrep", "xzgrep",
           "bzgrep", "rg", "ag", "awk", "sed", "cut", "sort", "uniq", "strings", "nl", "vim", "vi"}
_GREPS = {"grep", "egrep", "fgrep", "zgrep", "zegrep", "xzgrep", "bzgrep", "rg", "ag"}
# Options of readers that take a value (`tail -n 100 f`, `grep -e X f`, `grep -A 3 X f`).
_READER_VALUE_OPTS = {"-n", "-c", "-e", "-f", "-A", "-B", "-C", "-m", "--max-count", "-s", "-F",
                      "--lines", "--bytes", "-d", "-k", "-t", "-o", "-v"}
_READER_VALUE_OPTS_BY = {
    "grep": {"-e", "-f", "-A", "-B", "-C", "-m", "--max-count", "--label", "--include",
             "--exclude", "--exclude-dir", "--color", "--colour", "-d", "-D", "--regexp",
             "--file", "--context", "--after-context", "--before-context"},
    "tail": {"-n", "-c", "--lines", "--bytes", "-s", "--sleep-interval", "--pid"},
    "head": {"-n", "-c", "--lines", "--bytes"},
    "cut": {"-d", "-f", "-c", "-b"},
    "sort": {"-k", "-t", "-o", "-S", "-T"},
    "awk": {"-F", "-v", "-f"},
    "sed": {"-e", "-f"},
    "less": {"-x", "-b", "-h", "-y", "-j", "-z", "-p", "-t", "-o"},
}
_CAPTURE_TOOLS = {"tcpdump", "tshark", "dumpcap", "dhcpdump", "udhcpc", "termshark"}


@dataclass(slots=True)
class CommandLine:
    text: str  # the command line as given
    core: str  # the command that produced the output, without wrappers/namespace/pipes
    program: str | None = None  # basename of the core command's program
    namespace: str | None = None
    interface: str | None = None
    filters: list[str] = field(default_factory=list)  # later stages of a pipeline
    files: list[str] = field(default_factory=list)  # files a reader command printed
    reader: bool = False  # the output is the content of `files`


def _tokens(text: str) -> list[str]:
    try:
        lex = shlex.shlex(text, posix=True, punctuation_chars="|;&")
        lex.whitespace_split = True
        lex.commenters = ""
        return list(lex)
    except ValueError:  # unbalanced quotes: a pasted line cut short
        return re.findall(r"\|\||&&|[|;&]|[^\s|;&]+", text)


def _split_pipeline(tokens: list[str]) -> list[list[str]]:
    """Pipeline stages of the first command of a `;`/`&&`/`||` list."""
    stages: list[list[str]] = [[]]
    for t in tokens:
        if t in (";", "&&", "||", "&", ";;"):
            break
        if t in ("|", "|&"):
            stages.append([])
            continue
        stages[-1].append(t)
    return [s for s in stages if s]


def _strip_wrappers(tokens: list[str]) -> list[str]:
    while tokens:
        prog = os.path.basename(tokens[0])
        if prog not in _WRAPPERS:
            # `VAR=value cmd` environment assignments
            if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", tokens[0]) and len(tokens) > 1:
                tokens = tokens[1:]
                continue
            return tokens
        value_opts = _WRAPPER_VALUE_OPTS.get(prog, set())
        i = 1
        while i < len(tokens):
            t = tokens[i]
            if t == "--":
                i += 1
                break
            if prog == "env" and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", t):
                i += 1
                continue
            if t.startswith("-"):
                i += 2 if (t in value_opts and "=" not in t) else 1
                continue
            if prog in _NUMERIC_FIRST and re.match(r"^\d+(\.\d+)?[smhd]?$", t):
                i += 1
                continue
            break
        tokens = tokens[i:]
    return tokens


def _take_namespace(tokens: list[str]) -> tuple[str | None, list[str]]:
    """`ip netns exec NS cmd...`, `ip -n NS ...`, `nsenter --net=/run/netns/NS cmd`."""
    ns = None
    for _ in range(3):  # nested wrappers: sudo ip netns exec NS sudo -u x cmd
        if len(tokens) >= 4 and os.path.basename(tokens[0]) == "ip" and tokens[1] in ("netns", "net", "netn") \
                and tokens[2] in ("exec", "exe", "ex", "e"):
            ns, tokens = tokens[3], _strip_wrappers(tokens[4:])
            continue
        if tokens and os.path.basename(tokens[0]) == "nsenter":
            rest = tokens[1:]
            while rest and rest[0].startswith("-"):
                m = re.match(r"^--net(?:=(.*))?$", rest[0])
                if m and m.group(1):
                    ns = os.path.basename(m.group(1))
                rest = rest[1:]
            tokens = _strip_wrappers(rest)
            continue
        break
    if tokens and os.path.basename(tokens[0]) == "ip":
        for i, t in enumerate(tokens[1:-1], 1):
            if t in ("-n", "-netns", "--netns", "-net"):
                ns = tokens[i + 1]
                tokens = tokens[:i] + tokens[i + 2:]
                break
            if not t.startswith("-"):
                break
    return ns, tokens


def _interface(prog: str, tokens: list[str]) -> str | None:
    if prog not in _CAPTURE_TOOLS:
        return None
    for i, t in enumerate(tokens[1:], 1):
        if t == "--interface" and i + 1 < len(tokens):
            return tokens[i + 1]
        if t.startswith("--interface="):
            return t.split("=", 1)[1]
        m = re.match(r"^-([A-Za-z]*)i(.*)$", t)
        if m and not t.startswith("--"):
            if m.group(2):
                return m.group(2)
            if i + 1 < len(tokens):
                return tokens[i + 1]
    return None


def _reader_files(prog: str, tokens: list[str]) -> list[str]:
    value_opts = _READER_VALUE_OPTS_BY.get(prog.lstrip("z").lstrip("e").lstrip("f") if prog in _GREPS else prog,
                                           _READER_VALUE_OPTS)
    if prog in _GREPS:
        value_opts = _READER_VALUE_OPTS_BY["grep"]
    args: list[str] = []
    pattern_given = False
    i = 1
    while i < len(tokens):
        t = tokens[i]
        if t == "--":
            args.extend(tokens[i + 1:])
            break
        if t.startswith("-") and t != "-":
            if t in value_opts:
                if t in ("-e", "-f", "--regexp", "--file"):
                    pattern_given = True
                i += 2
                continue
            if prog in ("tail", "head") and re.match(r"^-\d+$", t):
                i += 1
                continue
            i += 1
            continue
        if t.startswith(("<", ">", "2>", "&>")):
            i += 1
            continue
        args.append(t)
        i += 1
    if prog in _GREPS and not pattern_given and args:
        args = args[1:]
    if prog in ("awk", "sed") and args:
        args = args[1:]
    return [a for a in args if a != "-"]


def parse(text: str) -> CommandLine:
    """Analyse one command line (never raises)."""
    text = text.strip()
    stages = _split_pipeline(_tokens(text))
    if not stages:
        return CommandLine(text=text, core="")
    main = _strip_wrappers(stages[0])
    ns, main = _take_namespace(main)
    # drop redirections of the main command (`2>&1`, `> out`)
    clean: list[str] = []
    skip = False
    for t in main:
        if skip:
            skip = False
            continue
        if re.match(r"^\d?(>>?|<|&>|>&)", t):
            # `> out` takes the next word; `2>/dev/null`, `2>&1` are whole
            skip = re.fullmatch(r"\d?(>>?|<|&>|>&)", t) is not None
            continue
        clean.append(t)
    main = clean or main
    prog = os.path.basename(main[0]) if main else None
    cl = CommandLine(text=text, core=" ".join(main), program=prog, namespace=ns,
                     filters=[" ".join(s) for s in stages[1:]])
    if prog:
        cl.interface = _interface(prog, main)
        if prog in READERS:
            cl.reader = True
            cl.files = _reader_files(prog, main)
    return cl


# --- sosreport file names -------------------------------------------------------------------
# sosreport names a command's output file by replacing every run of characters other than
# letters, digits, `-`, `.`, `/` with `_` and every `/` with `.`; the reverse is ambiguous, so
# underscores become spaces except inside words known to contain one.
_UNDERSCORE_WORDS = [
    (re.compile(r"\bOpen vSwitch\b"), "Open_vSwitch"),
    (re.compile(r"\b(other config|external ids|fail mode|datapath type|flow tables|"
                r"mcast snooping enable|stp enable|rstp enable|cur mtu|link state|admin state|"
                r"ofport request|mac in use|ifindex|bond mode|lacp status)\b"),
     lambda m: m.group(0).replace(" ", "_")),
    (re.compile(r"\b(vxlan|genev|gre|stt|erspan) sys (\d+)\b"), r"\1_sys_\2"),
    (re.compile(r"\bcrm (mon|report|resource|node|verify|simulate|attribute)\b"), r"crm_\1"),
]


def command_from_filename(name: str) -> str:
    """`ip_netns_exec_qdhcp-X_ip_address_show` -> `ip netns exec qdhcp-X ip address show`."""
    cmd = name.replace("_", " ")
    cmd = re.sub(r" {2,}", " ", cmd).strip()
    for rx, repl in _UNDERSCORE_WORDS:
        cmd = rx.sub(repl, cmd)
    # ovs-appctl's command names hold a slash (`dpctl/dump-flows`), saved as a dot
    cmd = re.sub(r"^(ovs-appctl (?:-t \S+ )?)([a-z][\w-]*)\.([a-z][\w-]*)", r"\1\2/\3", cmd)
    return cmd
