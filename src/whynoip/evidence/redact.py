"""Secrets never leave whynoip: every text field of every fact is redacted before it is
printed (JSON or text), the origin's cited line and command included.

Evidence is full of them: `transport_url = rabbit://nova:s3cret@10.0.0.5:5672/`,
`connection = mysql+pymysql://neutron:pw@db/neutron`, `OS_PASSWORD=...` in a pasted shell,
`--os-password x` in a process list, `X-Auth-Token: gAAAA...` in a debug log, private keys
in a config dump. The value is replaced by `***`; the key, user and host stay, because they
may matter to a diagnosis. Private key blocks are also blanked while reading (see
`whynoip.evidence.stream`), so a key's body never reaches a parser.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from whynoip.facts import Fact, Origin

MASK = "***"

_SECRET_WORDS = (r"pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|auth[_-]?key|"
                 r"private[_-]?key|access[_-]?key|credentials?|signing[_-]?key|encryption[_-]?key|"
                 r"fernet[_-]?key|rabbit[_-]?password|transport[_-]?url|connection")
# A quick test that most strings fail: only those that pass are searched for secrets.
_HINT = re.compile(r"(?i)pass|pwd|secret|token|key|://|credential|authorization|-----BEGIN")

_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)", re.S)
# scheme://user:password@host, and the further user:password@host of a multi-host URL
_URL_CRED = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{1,30}://)([^\s:/@,'\"]*):([^\s@/'\"]+)@")
_MORE_CRED = re.compile(r"(?<=[,;])([^\s:/@,'\"]+):([^\s@/,'\"]+)@")
# --os-password x, --password=x
_FLAG = re.compile(r"(?i)(--[\w-]*(?:password|passwd|secret|token|api-key|apikey)[\w-]*)(=|\s+)(['\"]?)([^\s'\"]+)")
# key = value, key: value, "key": "value", KEY=value (ini, env, JSON, headers, query strings)
_KEY_VALUE = re.compile(
    r"(?i)((?:^|(?<=[\s,;{(\[&?\"']))[\w.-]*(?:pass(?:word|wd|phrase)?|pwd|secret|token|api[_-]?key|auth[_-]?key|"
    r"private[_-]?key|access[_-]?key|credentials?)[\w.-]*['\"]?\s*[=:]\s*)(['\"]?)"
    r"(?!\*{3})([^\s'\",;}&]+)")
_AUTH_HEADER = re.compile(r"(?i)(authorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer|token|negotiate)?\s*)"
                          r"([^\s'\",]+)")
_SECRET_KEY_NAME = re.compile(rf"(?i)(?:^|[_.-])(?:{_SECRET_WORDS})(?:$|[_.-])|password|secret|token")


def redact(text: str) -> str:
    """`text` with every secret it holds replaced by `***`."""
    if not text or _HINT.search(text) is None:
        return text
    text = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY----- {MASK}", text)
    if "://" in text:
        text = _URL_CRED.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
        text = _MORE_CRED.sub(lambda m: f"{m.group(1)}:{MASK}@", text)
    text = _FLAG.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{MASK}", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _KEY_VALUE.sub(_mask_value, text)
    return text


_PLAIN_VALUE = re.compile(r"-?\d+(?:\.\d+)?|true|false|yes|no|none|null", re.I)


def _mask_value(m: re.Match) -> str:
    if _PLAIN_VALUE.fullmatch(m.group(3)):  # token_cache_time = 300: no secret
        return m.group(0)
    return f"{m.group(1)}{m.group(2)}{MASK}"


def secret_name(name: str) -> bool:
    """A config key or parameter name whose value is a secret (`admin_password`,
    `metadata_proxy_shared_secret`, `transport_url`, `connection`)."""
    return _SECRET_KEY_NAME.search(name) is not None


def _value(v: Any) -> Any:
    if isinstance(v, str):
        return redact(v)
    if isinstance(v, list):
        return [_value(x) for x in v]
    if isinstance(v, dict):
        return {k: (MASK if isinstance(k, str) and secret_name(k) and isinstance(x, str) and x else _value(x))
                for k, x in v.items()}
    if isinstance(v, Origin):
        return redact_origin(v)
    return v


def redact_origin(o: Origin) -> Origin:
    changes = {}
    for name in ("text", "command", "path"):
        v = getattr(o, name)
        if v:
            r = redact(v)
            if r != v:
                changes[name] = r
    return msgspec.structs.replace(o, **changes) if changes else o


def redact_fact(fact: Fact) -> Fact:
    """A copy of `fact` (or the fact itself, when it holds nothing secret) with every text
    field redacted. A `key`/`value` pair (a config option) whose key names a secret has its
    value masked whole."""
    changes = {}
    for name in fact.__struct_fields__:
        v = getattr(fact, name)
        if v is None or isinstance(v, (int, float, bool)):
            continue
        r = _value(v)
        if r is not v and r != v:
            changes[name] = r
    key = getattr(fact, "key", None)
    value = getattr(fact, "value", None)
    if isinstance(key, str) and isinstance(value, str) and value and "value" not in changes \
            and secret_name(key) and not _harmless(key, value):
        changes["value"] = MASK  # (a URL's password was masked above; the rest of it stays)
    return msgspec.structs.replace(fact, **changes) if changes else fact


def _harmless(key: str, value: str) -> bool:
    """Options named like secrets that hold none: `connection = sqlite://` without
    credentials, numbers and booleans (`token_cache_time = 300`)."""
    if re.fullmatch(r"-?\d+(\.\d+)?|true|false|yes|no|none|\*+", value, re.I):
        return True
    if key.lower().endswith(("connection", "transport_url", "_url")):
        return "@" not in value  # a URL without credentials
    return False
