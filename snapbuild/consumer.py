"""Configure a consumer's clone so ``git diff`` and ``git log -p`` show row changes of the snapshot database.

The snapshot repository's ``.gitattributes`` routes ``catalog_read.db`` to a
diff driver named :data:`DRIVER_NAME`; git never transfers a driver's
command, so each clone sets it once, here or by hand. The same goes for the
settings that make ``git pull`` refuse a snapshot without a good signature.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from .errors import RepoError

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


def consumer_setup(
    clone: str | os.PathLike[str], textconv_command: str, *, git: str, allowed_signers: Path | None = None
) -> Path:
    """Configure the ``snapbuild`` diff driver in a clone's local git config, through the git CLI.

    Sets ``diff.snapbuild.textconv`` to ``textconv_command`` and
    ``diff.snapbuild.cachetextconv`` to true (git caches converted blobs in
    ``refs/notes/textconv/snapbuild``, so repeated diffs are fast). Only the
    clone's own config is touched; git never transfers it, which is why each
    consumer runs this once.

    Args:
        clone: a work tree or a bare repository.
        textconv_command: the command git runs with a file path appended.
        git: the git executable.
        allowed_signers: also set :func:`signature_settings` for this allowed-signers file (an absolute path).

    Returns:
        the repository's git directory.

    Raises:
        RepoError: ``clone`` is not a git repository or git fails.
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
    return git_dir
