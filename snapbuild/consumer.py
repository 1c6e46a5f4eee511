"""Configure a consumer's clone: row changes in ``git diff``, and a ``catalog_read.db`` assembled after every pull.

The snapshot repository's ``.gitattributes`` routes ``catalog_read.db`` to a
diff driver named :data:`DRIVER_NAME`; git never transfers a driver's
command, so each clone sets it once, here or by hand. A clone with a work
tree also gets the hooks of ``hooks.py``, which assemble the database from
its pieces in the split layout, and an assembly at once. The settings that
make ``git pull`` refuse a snapshot without a good signature are set here too.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .assemble import MANIFEST_NAME, Assembled, LayoutError, assemble
from .errors import RepoError, VerifyError
from .hooks import install_hooks

#: The diff driver's name, as ``.gitattributes`` in the snapshot repository spells it.
DRIVER_NAME = "snapbuild"


def manual_setup_command(textconv_command: str = f"{DRIVER_NAME} textconv") -> str:
    """The one-line shell equivalent of :func:`consumer_setup`."""
    quoted = textconv_command.replace('"', '\\"')
    return (
        f'git config diff.{DRIVER_NAME}.textconv "{quoted}" && '
        f"git config diff.{DRIVER_NAME}.cachetextconv true"
    )


def signature_settings(allowed_signers: Path) -> list[tuple[str, str]]:
    """The git config that makes ``git pull`` and ``git merge`` refuse a tip without a good SSH signature."""
    return [
        ("gpg.format", "ssh"),
        ("gpg.ssh.allowedSignersFile", str(allowed_signers)),
        ("merge.verifySignatures", "true"),
    ]


@dataclass(frozen=True)
class SetupResult:
    """What :func:`consumer_setup` did.

    Attributes:
        git_dir: the repository's git directory.
        hooks: the hooks installed (none in a bare repository).
        assembled: the database assembled from its pieces, or None (a bare
            repository, or a snapshot committed whole).
    """

    git_dir: Path
    hooks: list[Path]
    assembled: Assembled | None


def consumer_setup(
    clone: str | os.PathLike[str],
    textconv_command: str,
    *,
    git: str,
    interpreter: str | None = None,
    allowed_signers: Path | None = None,
) -> SetupResult:
    """Configure the ``snapbuild`` diff driver in a clone's local git config; in a work tree, install the hooks and assemble.

    Sets ``diff.snapbuild.textconv`` to ``textconv_command`` and
    ``diff.snapbuild.cachetextconv`` to true (git caches converted blobs in
    ``refs/notes/textconv/snapbuild``, so repeated diffs are fast). Only the
    clone's own config and hooks are touched; git never transfers them, which
    is why each consumer runs this once. In a clone with a work tree, the
    hooks go where git looks for them (``core.hooksPath`` included) and the
    database is assembled at once when the checked-out snapshot is split.

    Args:
        clone: a work tree or a bare repository.
        textconv_command: the command git runs with a file path appended.
        git: the git executable.
        interpreter: the Python the hooks try first (see ``hooks.hook_script``).
        allowed_signers: also set :func:`signature_settings` for this allowed-signers file (an absolute path).

    Returns:
        the git directory, the hooks, and what was assembled.

    Raises:
        RepoError: ``clone`` is not a git repository, git fails, or a hook
            snapbuild did not write is in the way.
        VerifyError: the checked-out pieces do not give the database (the
            hooks are installed; the old ``catalog_read.db`` is kept).
    """
    where = Path(clone)

    def run(*args: str) -> str:
        try:
            done = subprocess.run(
                [git, "-C", str(where), *args], capture_output=True, check=False, text=True, encoding="utf-8"
            )
        except OSError as error:
            raise RepoError(f"cannot run git: {error}", path=where) from error
        if done.returncode != 0:
            message = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
            raise RepoError(f"{where}: {re.sub(r'^fatal: ', '', message)}", path=where)
        return done.stdout

    if not where.is_dir():
        raise RepoError(f"{where}: no such directory", path=where)
    git_dir = Path(run("rev-parse", "--absolute-git-dir").strip())
    run("config", "--local", f"diff.{DRIVER_NAME}.textconv", textconv_command)
    run("config", "--local", f"diff.{DRIVER_NAME}.cachetextconv", "true")
    for name, value in signature_settings(allowed_signers) if allowed_signers is not None else []:
        run("config", "--local", name, value)
    if run("rev-parse", "--is-bare-repository").strip() == "true":
        return SetupResult(git_dir, [], None)
    work_tree = Path(run("rev-parse", "--show-toplevel").strip())
    hooks = install_hooks(where / run("rev-parse", "--git-path", "hooks").strip(), interpreter)
    if not (work_tree / MANIFEST_NAME).exists():
        return SetupResult(git_dir, hooks, None)  # nothing checked out yet: the hooks assemble after the first pull
    try:
        assembled = assemble(work_tree)
    except LayoutError as error:
        raise VerifyError(f"hooks installed, but {error}; the old catalog_read.db was kept", path=work_tree) from None
    return SetupResult(git_dir, hooks, assembled)
