"""What every snapbuild command shares: the command group, the ``--repo`` option, error rendering.

Every :class:`~snapbuild.errors.SnapbuildError` becomes one line on stderr and
an exit code in :func:`snapbuild.cli.main`, and nowhere else: 2 for usage
errors, 1 for operational ones, 3 when a committed snapshot's notifications
failed. Core messages name no flags:
:func:`render_error` names the flag the user can change.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from ..defaults import DEFAULT_REPO
from ..errors import NoRepositoryError, RepoLockedError, SnapbuildError, SourceBusyError, UsageError

F = TypeVar("F", bound=Callable[..., Any])

#: Exit codes: an operational error (the catalog, the target, the repository), a usage error,
#: a snapshot committed (and pushed) whose notifications did not all arrive, Ctrl-C.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_NOTIFY_FAILED = 3
EXIT_ABORTED = 130

#: The flag that sets each library argument a usage error can name.
_ARGUMENT_FLAGS = {
    "author": "--author",
    "notification URL": "--notify",
    "signing key": "--sign-key",
    "allowed signers file": "--allowed-signers",
    "part_size": "--part-size",
}
#: What the user can do about an error that ran out of time, by the error's class.
_HINTS: tuple[tuple[type[SnapbuildError], str], ...] = (
    (RepoLockedError, "raise --lock-timeout to wait longer"),
    (SourceBusyError, "raise --busy-timeout to wait longer"),
    (NoRepositoryError, "give the snapshot repository with --repo PATH, or run this inside a clone of it"),
)
#: What ``--repo`` means when it is not given, as ``--help`` shows it.
REPO_DEFAULT = f"enclosing snapshot clone, else {DEFAULT_REPO}"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snapbuild")
def cli() -> None:
    """Build deterministic read-model snapshots of a music catalog and version them with git."""


def default_repo() -> Path:
    """The clone of the snapshot repository the current directory is in (its top), else ``./snapshots.git``.

    A clone is a git work tree whose HEAD holds a snapshot (the manifest, and
    the database whole or in pieces); another project's checkout does not count.
    """
    from ..assemble import DB_NAME, MANIFEST_NAME, PARTS_DIR
    from ..git.store import enclosing_work_tree

    return enclosing_work_tree(Path.cwd(), holding=((MANIFEST_NAME,), (DB_NAME, PARTS_DIR))) or DEFAULT_REPO


def repo_option(help: str = "Snapshot repository: the bare repository or any clone.") -> Callable[[F], F]:
    """The ``--repo`` option, the same on every command that reads the snapshot repository (see :func:`default_repo`)."""
    return click.option(
        "--repo", "repo_path", type=click.Path(path_type=Path), default=default_repo, show_default=REPO_DEFAULT,
        help=help,
    )


def human_bytes(size: int) -> str:
    """A byte count as people read it: ``512 B``, ``1.5 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def render_error(error: SnapbuildError) -> str:
    """The error's one line for stderr, naming the flag the user can change.

    A usage error about a library argument names its flag instead; a timeout
    hint joins the message's closing parenthesis, or gets its own.
    """
    message = str(error)
    if isinstance(error, UsageError) and error.argument in _ARGUMENT_FLAGS:
        message = message.replace(error.argument, _ARGUMENT_FLAGS[error.argument], 1)
    for kind, hint in _HINTS:
        if isinstance(error, kind):
            message = f"{message[:-1]}; {hint})" if message.endswith(")") else f"{message} ({hint})"
    return message
