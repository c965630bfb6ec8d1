"""whynoip's command line. Subcommands live beside the code they drive; this module only
assembles them and turns whynoip's own errors into one clear line (never a traceback)."""

from __future__ import annotations

import sys

import click

from whynoip import __version__
from whynoip.errors import WhynoipError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="whynoip")
def cli() -> None:
    """Why has my instance no IP? Diagnose DHCP in OpenStack and dnsmasq clouds."""


def _register() -> None:
    from whynoip.lab.cli import lab

    cli.add_command(lab)
    from whynoip.doctor_cli import demo, diagnose

    cli.add_command(diagnose)
    cli.add_command(demo)
    from whynoip.live.cli import probe, watch

    cli.add_command(probe)
    cli.add_command(watch)
    try:
        from whynoip.evidence.cli import facts
    except ImportError:
        pass
    else:
        cli.add_command(facts)
    from whynoip.live.collect_cli import register as register_collect

    register_collect(cli)


_register()


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except WhynoipError as e:
        click.echo(f"whynoip: {e}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
