"""The ``snapbuild`` command line: parse, call one core function, render.

Every :class:`~snapbuild.errors.SnapbuildError` becomes one line on stderr and
its ``exit_code`` here, in :func:`main`, and nowhere else.
"""

from __future__ import annotations

import sys

import click

from .errors import SnapbuildError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snapbuild")
def cli() -> None:
    """Build deterministic read-model snapshots of a music catalog and version them with git."""


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn snapbuild's errors into one stderr line and an exit code."""
    try:
        cli.main(args=argv, prog_name="snapbuild", standalone_mode=False)
    except SnapbuildError as error:
        click.echo(f"snapbuild: error: {error}", err=True)
        return error.exit_code
    except click.exceptions.Abort:
        click.echo("snapbuild: aborted", err=True)
        return 130
    except click.ClickException as error:
        # Usage errors (bad flag, missing option) keep click's own wording but on one line.
        click.echo(f"snapbuild: error: {error.format_message()}", err=True)
        return error.exit_code
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
