"""Shared fixtures for tests that build real labs (tests/lab, tests/live, tests/doctor).

`lab_factory` (one test) and `module_lab_factory` (one test module) bring labs up with
unique names and always take them down, also when a test fails. Lab tests are skipped
only where a lab cannot exist at all: without root, or where `ip netns add` is refused
(an unprivileged container); everything else (a missing tool, a broken build) fails.
`Log` tells what a log file gained meanwhile (a lab's agent log: `agent_log`)."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import pytest

from whynoip.lab.lab import Lab

_counter = itertools.count(1)


def _base36(n: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


@pytest.fixture(scope="session")
def lab_host() -> None:
    """Skip unless this machine can build labs (root, network namespaces)."""
    if os.geteuid() != 0:
        pytest.skip("lab tests need root (network namespaces, Open vSwitch, iptables)")
    probe = f"whynoip-probe-{os.getpid()}"
    try:
        r = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("lab tests need iproute2's `ip` (ip netns add)")
    if r.returncode != 0:
        pytest.skip(f"`ip netns add` is not possible here: {r.stderr.strip() or r.returncode}")
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)


class LabFactory:
    """Builds labs named `<prefix><pid in base 36><n>` and downs every one it built."""

    def __init__(self) -> None:
        self.labs: list[Lab] = []

    def __call__(self, topology: str = "default", prefix: str = "ft", bus: str = "embedded") -> Lab:
        while True:
            name = f"{prefix}{_base36(os.getpid())[-4:]}{next(_counter)}"
            lab = Lab(name)
            if not lab.exists and not lab._leftovers():
                break
        self.labs.append(lab)
        lab.up(topology, bus)
        return lab

    def down_all(self) -> None:
        errors = []
        for lab in reversed(self.labs):
            try:
                lab.down()
            except Exception as e:  # keep downing the others
                errors.append(f"{lab.name}: {e}")
        self.labs.clear()
        if errors:
            raise RuntimeError("lab down failed: " + "; ".join(errors))


@pytest.fixture
def lab_factory(lab_host):
    """Up labs for one test: `lab = lab_factory("ha")`; they are downed after the test."""
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.down_all()


@pytest.fixture(scope="module")
def module_lab_factory(lab_host):
    """Up labs shared by a test module; they are downed after the module."""
    factory = LabFactory()
    try:
        yield factory
    finally:
        factory.down_all()


class Log:
    """What a log file gained since this object was made."""

    def __init__(self, path):
        self.path = Path(path)
        self.start = self.path.stat().st_size if self.path.exists() else 0

    def new(self) -> str:
        if not self.path.exists():
            return ""
        with open(self.path, "rb") as f:
            f.seek(self.start)
            return f.read().decode(errors="replace")


def agent_log(lab: Lab, node: str = "net1") -> Log:
    return Log(lab.paths.neutron_log(node, "neutron-dhcp-agent"))
