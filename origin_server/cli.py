"""The ``origin-server`` command line: parse, call one core function, render.

Every :class:`~origin_server.errors.OriginError` becomes one line on stderr
and exit code 1 here, in :func:`main`; click's usage errors exit 2.
"""

from __future__ import annotations

import sys

import click

from .errors import OriginError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snapbuild")
def cli() -> None:
    """Serve NAS-only audio through signed, expiring tokens, and mint those tokens."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn origin_server's errors into one stderr line and an exit code."""
    try:
        cli.main(args=argv, prog_name="origin-server", standalone_mode=False)
    except OriginError as error:
        click.echo(f"origin-server: error: {error}", err=True)
        return 1
    except click.exceptions.Abort:
        click.echo("origin-server: aborted", err=True)
        return 130
    except click.ClickException as error:
        click.echo(f"origin-server: error: {error.format_message()}", err=True)
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
