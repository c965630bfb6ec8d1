"""`whynoip lab ...`: build, break, inspect and export the lab."""

from __future__ import annotations

import click


@click.group()
def lab() -> None:
    """A working miniature of Neutron's DHCP system, from real parts, with faults on demand."""
