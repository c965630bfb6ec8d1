"""Installed package lists (`dpkg -l`, `rpm -qa`) -> PackageVersion facts.

Versions decide known faults: dnsmasq before 2.61 answers unicast renewals on one
instance only, some Neutron releases carry known DHCP agent bugs. This parser reads

- `dpkg -l` (Debian, Ubuntu): the table under the `||/ Name Version Architecture
  Description` header; only installed rows (status `ii`, `hi`, `iU`, ...: second letter
  `i`, `U`, `F`, `W` or `t`) become facts, a `:amd64` suffix is dropped from the name;
  removed packages (`rc`, `un`, `pn`) are not installed versions and are skipped;
- `rpm -qa` / `rpm -q NAME` and sosreport's `installed-rpms` (RHEL, CentOS): one
  `name-version-release.arch` per line (`dnsmasq-2.79-11.el8.x86_64` -> name `dnsmasq`,
  version `2.79-11.el8`), anything after the first blank ignored (`installed-rpms` adds the
  install date).

Real sample (real-samples sos_commands/dpkg/dpkg_-l, hotsos, Apache-2.0):

    ||/ Name                                 Version                                              Architecture Description
    +++-====================================-====================================================-============-=================
    ii  dnsmasq-base                         2.80-1.1ubuntu1.4                                    amd64        Small caching DNS proxy and DHCP/TFTP server

gives `PackageVersion(name="dnsmasq-base", version="2.80-1.1ubuntu1.4")`.
"""

from __future__ import annotations

import re
from typing import Iterator

from whynoip.evidence.section import Section
from whynoip.facts import Fact, PackageVersion, Unparsed

NAME = "dpkg"
COMMANDS = (r"^dpkg(?:-query)?\s+(?:-l|--list)\b", r"^rpm\s+-q", r"^rpm\s+--query")
PATHS = ("*/sos_commands/dpkg/dpkg_-l*", "*/sos_commands/rpm/rpm_-qa*", "*/installed-rpms",
         "*/sos_commands/rpm/package-data")

_DPKG_ROW_RE = re.compile(r"^(?P<status>[uihrp][nicupUFWt ][ R]?)\s+(?P<name>\S+)\s+"
                          r"(?P<version>\S+)(?:\s+(?P<arch>\S+))?(?:\s+(?P<desc>.*))?$")
_INSTALLED = set("iUFWt")  # dpkg's current-state letters for a package that is on disk
_ARCHES = {"x86_64", "noarch", "i686", "i386", "aarch64", "ppc64le", "s390x", "src", "armv7hl"}
_RPM_RE = re.compile(r"^(?P<name>[A-Za-z0-9_+.][\w+.-]*?)-(?P<version>[^-\s]+)-(?P<release>"
                     r"[^-\s]+?)(?:\.(?P<arch>[\w]+))?$")


def sniff(head: str) -> bool:
    return "||/ Name" in head or bool(re.search(r"^\S+-\d[^-\s]*-\S+\.(?:x86_64|noarch|i686|"
                                                r"aarch64|ppc64le)(?:\s|$)", head, re.M))


def _rpm(token: str) -> tuple[str, str] | None:
    base = token
    if "." in token:
        head, _, tail = token.rpartition(".")
        if tail in _ARCHES:  # the architecture is not part of the version
            base = head
    parts = base.rsplit("-", 2)
    if len(parts) != 3 or not parts[0] or not parts[1] or not parts[2]:
        return None
    name, version, release = parts
    if not version[:1].isdigit() and not re.match(r"^[0-9a-f]{8}$", version):
        return None
    return name, f"{version}-{release}"


def parse(section: Section) -> Iterator[Fact]:
    in_dpkg = False
    offset = -1
    try:
        for offset, line in enumerate(section.lines() if section.lines else iter(())):
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith(("Desired=", "| Status=", "|/ Err?=")):
                in_dpkg = True
                continue
            if stripped.startswith("||/"):
                in_dpkg = True
                continue
            if stripped.startswith("+++-"):
                continue
            m = _DPKG_ROW_RE.match(line) if not in_dpkg and line[2:3] in (" ", "R") else None
            if in_dpkg or m:  # a dpkg -l row, with its header or grepped out of the table
                m = m or _DPKG_ROW_RE.match(line)
                if not m:
                    yield Unparsed(origin=section.origin_at(offset, text=line),
                                   reason="not a dpkg -l row")
                    continue
                status = m["status"]
                if len(status) < 2 or status[1] not in _INSTALLED:
                    continue  # removed, purged or never installed: no version on disk
                name = m["name"].split(":", 1)[0]
                yield PackageVersion(origin=section.origin_at(offset, text=line), name=name,
                                     version=m["version"])
                continue
            token = stripped.split()[0]
            if stripped.startswith("package ") and stripped.endswith("is not installed"):
                continue  # `rpm -q dnsmasq`: the answer is that there is none
            rpm = _rpm(token)
            if rpm is None:
                yield Unparsed(origin=section.origin_at(offset, text=line),
                               reason="not a package name-version-release")
                continue
            yield PackageVersion(origin=section.origin_at(offset, text=line), name=rpm[0],
                                 version=rpm[1])
    except Exception as e:  # a broken stream: say where it broke
        yield Unparsed(origin=section.origin_at(max(offset, 0)),
                       reason=f"reading the package list failed: {type(e).__name__}: {e}")
