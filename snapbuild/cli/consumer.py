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
              help="Name no absolute path of this machine's Python: plain 'snapbuild textconv' (needs snapbuild "
                   "on PATH whenever git runs), and hooks that find Python on PATH.")
@click.option("--template", "template_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the hooks into this git template directory instead, for 'git clone --template DIR URL'.")
@allowed_signers_option("Also make 'git pull' and 'git merge' refuse a snapshot whose tip has no good SSH signature "
                        "by a key this allowed-signers file admits (gpg.format, gpg.ssh.allowedSignersFile, "
                        "merge.verifySignatures).")
@click.pass_context
def consumer_setup_command(
    ctx: click.Context, clone: Path, portable: bool, template_dir: Path | None, allowed_signers: Path | None
) -> None:
    """Configure a clone of the snapshot repository: row changes in 'git diff', catalog_read.db assembled on every pull.

    Sets diff.snapbuild.textconv and diff.snapbuild.cachetextconv in the
    clone's own .git/config (git never transfers config, so each clone needs
    this once). By default the command names this Python interpreter by its
    absolute path, so it works without snapbuild on PATH (virtualenvs,
    Windows); --portable writes 'snapbuild textconv' instead. Prints the
    one-line manual equivalent.

    In a clone with a work tree it also installs git hooks (post-checkout,
    post-merge, post-rewrite) that assemble catalog_read.db from
    catalog_read.db.parts/ and verify it after every checkout, pull or switch
    of snapshot, and assembles it now. With --template DIR it writes only the
    hooks, into a template directory: clones made with
    'git clone --template DIR URL' assemble at their first checkout.

    With --allowed-signers, 'git pull' then verifies each snapshot's SSH
    signature and refuses an unsigned one or one by a key the file does not
    admit. The file is referred to by its absolute path: keep it there.

    Example: snapbuild consumer-setup path/to/snapshots-clone

    Example: snapbuild consumer-setup catalog --allowed-signers ~/.config/catalog/allowed_signers

    Example: snapbuild consumer-setup --template ~/.snapbuild-template && git clone --template ~/.snapbuild-template URL catalog
    """
    import shlex

    from ..errors import RepoError, UsageError

    python = Path(sys.executable).as_posix()
    hook_python = None if portable else python
    if template_dir is not None:
        from ..hooks import install_hooks

        clone_given = ctx.get_parameter_source("clone") != click.core.ParameterSource.DEFAULT
        if clone_given or allowed_signers is not None:
            raise UsageError("give CLONE or --template, not both; --allowed-signers needs a clone")
        hooks = install_hooks(template_dir / "hooks", hook_python)
        click.echo(f"wrote the hooks {', '.join(path.name for path in hooks)} into {template_dir / 'hooks'}")
        click.echo(f"clone with: git clone --template {template_dir} URL DIR")
        return

    from ..consumer import consumer_setup, manual_setup_command, signature_settings

    # git runs the command through sh (Git for Windows bundles one): quote the path for sh.
    command = "snapbuild textconv" if portable else f"{shlex.quote(python)} -m snapbuild textconv"
    signers = load_signers(allowed_signers).path.resolve() if allowed_signers is not None else None
    settings = signature_settings(signers) if signers is not None else []
    by_hand = manual_setup_command() + "".join(f" && git config {name} {shlex.quote(value)}" for name, value in settings)
    git = shutil.which("git")
    if git is None:
        raise RepoError(f"git not found on PATH; configure by hand: {by_hand}")
    done = consumer_setup(clone, command, git=git, interpreter=hook_python, allowed_signers=signers)
    click.echo(f"configured the snapbuild diff driver in {done.git_dir}: textconv = {command}")
    if signers is not None:
        click.echo(f"git pull now refuses snapshots without a good signature by a key in {signers}")
    click.echo(f"by hand: {by_hand}")
    if done.hooks:
        click.echo(f"installed the hooks {', '.join(path.name for path in done.hooks)} in {done.hooks[0].parent}")
    if done.assembled is not None:
        click.echo(
            f"assembled {done.assembled.path} from {done.assembled.pieces} pieces "
            f"({done.assembled.size} bytes, sha256 matches the manifest)"
        )
