"""What the doctor concludes: findings, and the diagnosis that orders them.

A finding names one kind of fault from the catalog (its `id` is a stable contract, see
README), what it is about (`subject`), the evidence it stands on (each item cites a
source and line), the fix, and the findings that explain it (`caused_by`). The JSON
schema of a diagnosis is documented in the README and kept stable."""

from __future__ import annotations

import msgspec

SEVERITIES = ("critical", "warning", "info")


class Evidence(msgspec.Struct, frozen=True, omit_defaults=True):
    source: str
    line: int = 0
    text: str = ""
    host: str | None = None
    time: float | None = None


class Finding(msgspec.Struct, kw_only=True):
    id: str
    title: str
    severity: str  # critical | warning | info
    subject: str
    evidence: list[Evidence] = []
    fix: list[str] = []
    caused_by: list[str] = []
    root_cause: bool = True
    hop: str | None = None  # where on the path it breaks, when known
    time: float | None = None  # when it started, when the evidence says
    references: list[str] = []  # known bugs, documentation
    # the subjects of the findings folded into this one: the same id, cause and fix, one
    # finding standing for many (a NAK to each of 5,000 clients reads as one finding)
    also: list[str] = []

    @property
    def key(self) -> tuple[str, str]:
        return (self.id, self.subject)


class HopState(msgspec.Struct, kw_only=True):
    """One capture point on a port's path and which DHCP messages were seen there."""

    name: str  # e.g. "cmp1 qvo2dd47224-ba"
    role: str  # guest, tap, qbr, qvb, qvo, underlay, dhcp-tap, dhcp-ns
    host: str | None = None
    namespace: str | None = None
    interface: str | None = None
    state: str = "unknown"  # ok | broken | unknown
    seen: list[str] = []  # DISCOVER, OFFER, REQUEST, ACK, NAK, INFORM
    source: str | None = None


class PortPath(msgspec.Struct, kw_only=True):
    port: str  # port id, MAC or guest name: how the operator knows it
    mac: str | None = None
    ip: str | None = None
    server: str | None = None  # DHCP server IP at the end of this path
    hops: list[HopState] = []
    break_after: str | None = None  # the last hop the exchange reached


class NextStep(msgspec.Struct, kw_only=True):
    why: str
    command: str
    host: str | None = None


class Diagnosis(msgspec.Struct, kw_only=True):
    verdict: str
    findings: list[Finding] = []
    paths: list[PortPath] = []
    next_steps: list[NextStep] = []
    timeline: list[dict] = []
    summary: dict = {}
    # each root cause with what it explains, step by step with times, and the fixes in
    # recovery order; clocks found to disagree (README, JSON report)
    chains: list[dict] = []
    clock_offsets: list[dict] = []
