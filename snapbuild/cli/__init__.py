"""The ``snapbuild`` command line: parse, call one core function, render.

Each module of this package holds a few commands; :func:`main` runs them and
is the one place where errors become exit codes.
"""

from __future__ import annotations

import sys

import click

from ..errors import NotifyError, SnapbuildError, UsageError
from . import consumer, export, history, sample  # noqa: F401  (they register their commands)
from .base import EXIT_ABORTED, EXIT_FAILURE, EXIT_NOTIFY_FAILED, EXIT_USAGE, cli, render_error

__all__ = ["cli", "main", "render_error"]


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn snapbuild's errors into one stderr line and an exit code."""
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        # No subcommand at all: the user is asking what there is.
        cli.main(args=args or ["--help"], prog_name="snapbuild", standalone_mode=False)
    except SnapbuildError as error:
        click.echo(f"snapbuild: error: {render_error(error)}", err=True)
        if isinstance(error, NotifyError):
            return EXIT_NOTIFY_FAILED
        return EXIT_USAGE if isinstance(error, UsageError) else EXIT_FAILURE
    except click.exceptions.Abort:
        click.echo("snapbuild: aborted", err=True)
        return EXIT_ABORTED
    except click.ClickException as error:
        # Usage errors (bad flag, missing option) keep click's own wording but on one line.
        click.echo(f"snapbuild: error: {error.format_message()}", err=True)
        return EXIT_USAGE if isinstance(error, click.UsageError) else EXIT_FAILURE
    except click.exceptions.Exit as done:
        return done.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
