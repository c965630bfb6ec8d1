"""OpenStack ini configuration files -> ConfigValue facts, with every secret masked.

The DHCP agent's behaviour is in its configuration: `interface_driver`, `dhcp_driver`,
`root_helper`, `dnsmasq_config_file`, `dhcp_lease_duration`, `enable_isolated_metadata`,
`dhcp_agents_per_network`, `transport_url`. This parser reads the oslo.config ini files of
Neutron and Nova (`/etc/neutron/*.ini`, `neutron.conf`, `/etc/nova/nova.conf`, their
TripleO and Kolla copies) into one fact per option: `[section]` headers, `key = value`
(or `key: value`), `#`/`;` comments, and values continued on indented lines.

Secrets never leave this module: before a value becomes a fact it is replaced by `***`
when its key names a secret (password, secret, token, credential, or a key such as
`api_key`), and the credentials inside URLs (`rabbit://user:pass@host`,
`mysql+pymysql://user:pass@host/db`, several hosts in one transport_url) are replaced by
`user:***@`. The fact's cited line is the masked line too. Values sosreport already
masked (`*********`) stay as they are.

Real sample (real-samples etc/neutron/dhcp_agent.ini, hotsos, Apache-2.0):

    [DEFAULT]
    state_path = /var/lib/neutron
    interface_driver = openvswitch
    dhcp_driver = neutron.agent.linux.dhcp.Dnsmasq

gives `ConfigValue(file=".../dhcp_agent.ini", section="DEFAULT", key="interface_driver",
value="openvswitch")`, and so on.
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import ConfigValue, Fact, Unparsed

NAME = "config_ini"
COMMANDS: tuple[str, ...] = ()  # read with cat: the file's path decides
PATHS = (
    "*/etc/neutron/*.ini", "*/etc/neutron/neutron.conf", "*/etc/neutron/neutron_*.conf",
    "*/etc/neutron/rootwrap.conf", "*/etc/neutron/conf.d/*.conf",
    "*/etc/neutron/neutron.conf.d/*", "*/etc/nova/nova.conf", "*/etc/nova/nova-*.conf",
    "*/etc/nova/nova.conf.d/*", "*/etc/nova/*.ini", "*/etc/quantum/*.ini",
    "*/etc/quantum/quantum.conf",
)

MASK = "***"
_SECTION_RE = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_OPTION_RE = re.compile(r"^(?P<key>[^\s=:#;][^=:]*?)\s*[=:]\s?(?P<value>.*?)\s*$")
# A key naming a secret: its value is replaced whole.
_SECRET_KEY_RE = re.compile(
    r"(?:pass(?:word|wd|phrase)?$|password|secret|token|credential|private|"
    r"(?:^|_)key$|_key_)", re.I)
# Keys that look secret but hold a path or a switch, not the secret itself.
_NOT_SECRET_KEY_RE = re.compile(r"(?:_file|_path|_dir|_type|_method|_timeout|_time|_ttl|"
                                r"_length|_expiration|_cache\w*|_format|_provider|_algorithm)$",
                                re.I)
# user:password@ inside a URL (after `//`, or after `,` between hosts of a transport_url).
_URL_CREDENTIALS_RE = re.compile(r"(?P<lead>//|,)(?P<user>[^\s:/@,]*):(?P<pw>[^\s@/,]*)@")
# password=... in a query string or a key=value list inside a value.
_INLINE_SECRET_RE = re.compile(r"(?P<k>\b(?:password|passwd|pass|pw|secret|token)=)"
                               r"(?P<v>[^&\s;,]+)", re.I)


def sniff(head: str) -> bool:
    return bool(re.search(r"^\[(?:DEFAULT|agent|AGENT|ovs|ml2|database|oslo_\w+|"
                          r"keystone_authtoken)\]\s*$", head, re.M))


def is_secret_key(key: str) -> bool:
    k = key.strip()
    return bool(_SECRET_KEY_RE.search(k)) and not _NOT_SECRET_KEY_RE.search(k)


def mask_value(key: str, value: str) -> str:
    """The value as it may be shown: secrets replaced by `***`."""
    if not value:
        return value
    if is_secret_key(key):
        return value if set(value) == {"*"} else MASK
    value = _URL_CREDENTIALS_RE.sub(lambda m: f"{m['lead']}{m['user']}:{MASK}@", value)
    return _INLINE_SECRET_RE.sub(lambda m: f"{m['k']}{MASK}", value)


def _masked_line(line: str, key: str | None, value: str | None) -> str:
    if key is None or value is None or not value:
        return line
    masked = mask_value(key, value)
    if masked == value:
        return line
    i = line.rfind(value)
    return (line[:i] + masked + line[i + len(value):]) if i >= 0 else f"{key} = {masked}"


def parse(section: Section) -> Iterator[Fact]:
    path = section.origin.path
    current: str | None = None
    pending: tuple[int, str, str, str] | None = None  # (offset, section, key, value)
    offset = -1

    def emit(p: tuple[int, str, str, str], line: str) -> ConfigValue:
        off, sec, key, value = p
        return ConfigValue(origin=section.origin_at(off, text=_masked_line(line, key, value)),
                           file=path, section=sec, key=key, value=mask_value(key, value))

    first_line = ""
    try:
        for offset, raw in enumerate(section.lines() if section.lines else iter(())):
            line = raw.rstrip("\r")
            stripped = line.strip()
            if pending is not None and stripped and line[:1] in (" ", "\t") \
                    and not stripped.startswith(("#", ";")):
                off, sec, key, value = pending  # an indented continuation of the value
                pending = (off, sec, key, (value + "\n" + stripped) if value else stripped)
                continue
            if pending is not None:
                yield emit(pending, first_line)
                pending = None
            if not stripped or stripped.startswith(("#", ";")):
                continue
            m = _SECTION_RE.match(line)
            if m:
                current = m["name"].strip()
                continue
            m = _OPTION_RE.match(stripped)
            if m and current is not None:
                pending = (offset, current, m["key"].strip(), m["value"])
                first_line = line
                continue
            # Never cite a line that was not understood: it may hold a secret.
            reason = ("an option before any [section]" if m else "not an ini line")
            yield Unparsed(origin=section.origin_at(offset), reason=reason)
    except Exception as e:  # a broken stream: say where it broke
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading the configuration failed: {type(e).__name__}")
    if pending is not None:
        yield emit(pending, first_line)
