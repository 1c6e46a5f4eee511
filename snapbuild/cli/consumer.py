"""Commands for consumers of the snapshots: textconv (git's diff driver) and consumer-setup."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import click

from .base import cli
from .signing import allowed_signers_option, load_signers


@cli.command("textconv")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def textconv_command(file: Path) -> None:
    """Print a snapshot database as sorted text, one line per row (git's textconv for catalog_read.db).

    Git runs this with a temporary file's path when the 'snapbuild' diff
    driver is configured (see consumer-setup). Output is UTF-8 with LF line
    ends on every platform.

    Example: snapbuild textconv catalog_read.db | head
    """
    import io

    from ..textconv import dump_database

    # The console's encoding (cp1252 on Windows) must not decide the bytes git compares.
    out = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="\n", write_through=False)
    try:
        dump_database(file, out)
        out.flush()
    finally:
        out.detach()


@cli.command("consumer-setup")
@click.argument("clone", type=click.Path(file_okay=False, path_type=Path), default=Path("."))
@click.option("--portable", is_flag=True,
              help="Configure plain 'snapbuild textconv' (needs snapbuild on PATH whenever git runs).")
@allowed_signers_option("Also make 'git pull' and 'git merge' refuse a snapshot whose tip has no good SSH signature "
                        "by a key this allowed-signers file admits (gpg.format, gpg.ssh.allowedSignersFile, "
                        "merge.verifySignatures).")
def consumer_setup_command(clone: Path, portable: bool, allowed_signers: Path | None) -> None:
    """Configure a clone of the snapshot repository so 'git diff' and 'git log -p' show row changes.

    Sets diff.snapbuild.textconv and diff.snapbuild.cachetextconv in the
    clone's own .git/config (git never transfers config, so each clone needs
    this once). By default the command names this Python interpreter by its
    absolute path, so it works without snapbuild on PATH (virtualenvs,
    Windows); --portable writes 'snapbuild textconv' instead. Prints the
    one-line manual equivalent.

    With --allowed-signers, 'git pull' then verifies each snapshot's SSH
    signature and refuses an unsigned one or one by a key the file does not
    admit. The file is referred to by its absolute path: keep it there.

    Example: snapbuild consumer-setup path/to/snapshots-clone

    Example: snapbuild consumer-setup catalog --allowed-signers ~/.config/catalog/allowed_signers
    """
    import shlex

    from ..errors import RepoError
    from ..consumer import consumer_setup, manual_setup_command, signature_settings

    # git runs the command through sh (Git for Windows bundles one): quote the path for sh.
    interpreter = shlex.quote(Path(sys.executable).as_posix())
    command = "snapbuild textconv" if portable else f"{interpreter} -m snapbuild textconv"
    signers = load_signers(allowed_signers).path.resolve() if allowed_signers is not None else None
    settings = signature_settings(signers) if signers is not None else []
    by_hand = manual_setup_command() + "".join(f" && git config {name} {shlex.quote(value)}" for name, value in settings)
    git = shutil.which("git")
    if git is None:
        raise RepoError(f"git not found on PATH; configure by hand: {by_hand}")
    git_dir = consumer_setup(clone, command, git=git, allowed_signers=signers)
    click.echo(f"configured the snapbuild diff driver in {git_dir}: textconv = {command}")
    if signers is not None:
        click.echo(f"git pull now refuses snapshots without a good signature by a key in {signers}")
    click.echo(f"by hand: {by_hand}")
