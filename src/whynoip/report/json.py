"""The JSON report: a stable schema (documented in the README)."""

from __future__ import annotations

import msgspec

from whynoip.evidence.redact import redact
from whynoip.findings import Diagnosis

SCHEMA_VERSION = 1


def scrub(obj):
    """Every string of the report through the secret filter."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, list):
        return [scrub(x) for x in obj]
    if isinstance(obj, dict):
        return {k: scrub(v) for k, v in obj.items()}
    return obj


def to_builtins(d: Diagnosis) -> dict:
    obj = scrub(msgspec.to_builtins(d))
    obj["summary"] = {"verdict": obj["verdict"], **obj.get("summary", {})}
    return {"schema": SCHEMA_VERSION, **obj}


def render(d: Diagnosis) -> str:
    return msgspec.json.format(msgspec.json.encode(to_builtins(d)).decode(), indent=2)
