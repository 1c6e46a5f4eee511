"""Commands that build and check snapshots: export (and commit, push), verify."""

from __future__ import annotations

import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..defaults import DEFAULT_AUTHOR, DEFAULT_LOCK_TIMEOUT, DEFAULT_REPO
from ..errors import UsageError
from .base import cli, human_bytes, render_error
from .notify import announcement_lines, notifier_from_options, notify_options
from .progress import quiet_option, terminal_progress
from .signing import allowed_signers_option, load_signer, load_signers, sign_key_option

if TYPE_CHECKING:
    from ..export import ExportResult
    from ..pipeline import RunResult
    from ..signing.keys import SigningKey


def _commit_summary(run: RunResult, repo: Path, elapsed: float, signer: SigningKey | None = None) -> list[str]:
    """The lines ``export --commit`` prints about the repository (before the push, if any)."""
    committed, manifest = run.committed, run.exported.manifest
    head = committed.commit[:12]
    created = [f"created the snapshot repository {Path(repo).resolve()}"] if run.created_repo else []
    if not committed.changed:
        line = f"unchanged {committed.snapshot_id}: main in {repo} already holds this content ({head}); no commit"
        lines = [line + (f"; restored tag {committed.snapshot_id}" if committed.tag_created else "")]
        if signer is not None and not committed.signed:
            lines.append(f"note: {head} is not signed; the next changed snapshot will be signed")
    else:
        tag = "tagged" if committed.tag_created else "tag already names the first commit with this content"
        if signer is not None:
            tag += f"; signed with {signer.label}"
        lines = [
            f"committed {committed.snapshot_id} to {repo} as {head} on main ({tag}): "
            f"{manifest.playlist_count} playlists, {manifest.track_count} tracks, {manifest.file_count} files; "
            f"{elapsed:.2f} s"
        ]
        if committed.pieces:
            from ..parts import format_size

            lines[0] += f"; stored as {committed.pieces} pieces of at most {format_size(committed.part_size)}"
    return created + lines


def _clone_hint(run: RunResult, repo: Path) -> str | None:
    """How consumers get the new snapshot: clone the pushed remote, else the repository; None without a commit."""
    if not run.committed.changed:
        return None
    where = _remote_for_people(run.pushed.remote) if run.pushed is not None else Path(repo).resolve()
    return f"consumers: git clone {where} catalog   (then git pull --ff-only)"


def _remote_for_people(remote: str) -> str:
    """A pushed remote as a consumer would clone it: a local path made absolute, a URL without its password."""
    from ..git.remote import display_remote

    return str(Path(remote).resolve()) if "://" not in remote and Path(remote).exists() else display_remote(remote)


class _PartSize(click.ParamType):
    """``--part-size``: bytes, or a number with KiB, MiB or GiB; a positive multiple of the page size."""

    name = "SIZE"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        from ..parts import parse_part_size

        if isinstance(value, int):
            return value
        try:
            return parse_part_size(value)
        except UsageError as error:
            self.fail(render_error(error), param, ctx)


def _forge_warning(largest_blob: int) -> str | None:
    """The one warning an export gets when its commit put a blob above the forges' limits into the repository."""
    from ..parts import DEFAULT_PART_SIZE, FORGE_REFUSE_SIZE, FORGE_WARN_SIZE, format_size

    if largest_blob <= FORGE_WARN_SIZE:
        return None
    return (
        f"snapbuild: warning: this snapshot put a {human_bytes(largest_blob)} blob into the repository: GitHub "
        f"warns about files over {format_size(FORGE_WARN_SIZE)} and refuses them over {format_size(FORGE_REFUSE_SIZE)}; "
        f"GitLab (Gitaly) and Gerrit (JGit) never delta blobs over {format_size(FORGE_WARN_SIZE)}, so every pull "
        f"costs all of it; a --part-size of at most {format_size(FORGE_WARN_SIZE)} (the default is "
        f"{format_size(DEFAULT_PART_SIZE)}) avoids both"
    )


def _generated_at(option: str | None, source_date_epoch: str | None) -> datetime:
    """--generated-at wins, then SOURCE_DATE_EPOCH (reproducible builds), then the clock."""
    from ..manifest import format_timestamp, parse_timestamp

    if option is not None:
        return parse_timestamp(format_timestamp(option))
    if source_date_epoch not in (None, ""):
        try:
            return datetime.fromtimestamp(int(source_date_epoch), tz=timezone.utc)
        except (ValueError, OverflowError, OSError):
            raise UsageError(f"SOURCE_DATE_EPOCH must be Unix seconds, not {source_date_epoch!r}") from None
    return datetime.now(timezone.utc)


def _export_summary(result: ExportResult, target_dir: Path, elapsed: float) -> str:
    manifest = result.manifest
    counts = manifest.table_counts
    repairs = ", ".join(f"{name}={count}" for name, count in sorted(result.repairs.items())) or "none"
    body = (
        f"{manifest.playlist_count} playlists, {manifest.track_count} tracks, "
        f"{counts.get('catalog_playlist_tracks', 0)} playlist rows, {manifest.file_count} files, "
        f"{counts.get('catalog_toplists', 0)} toplist rows, {manifest.cover_count} covers; "
        f"repairs: {repairs}; {elapsed:.2f} s"
    )
    if not result.changed:
        return f"unchanged {manifest.snapshot_id} in {target_dir} (same content): {body}"
    return f"exported {manifest.snapshot_id} to {target_dir}: {body}"


@cli.command("export")
@click.option("--db", "source_db", required=True, type=click.Path(path_type=Path),
              help="The authoritative catalog (opened read-only).")
@click.option("--target-dir", type=click.Path(path_type=Path), default=None,
              help="Where catalog_read.db and manifest.json go (created if missing).")
@click.option("--generated-at", default=None, metavar="ISO",
              help="The manifest's timestamp, e.g. 2026-04-19T08:00:00Z. Default: SOURCE_DATE_EPOCH, else now.")
@click.option("--busy-timeout", type=click.FloatRange(min=0), default=5.0, show_default=True,
              help="Seconds to wait for a writer that locks the source.")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON instead of the summary.")
@click.option("--commit", is_flag=True, help="Also commit the snapshot to the snapshot repository (git).")
@click.option("--repo", "repo_path", type=click.Path(path_type=Path), default=None,
              help=f"Snapshot repository for --commit (bare; created on first use). Default: {DEFAULT_REPO}")
@click.option("--author", default=None, metavar="'NAME <EMAIL>'",
              help=f"Author and committer of the commit. Default: '{DEFAULT_AUTHOR}'.")
@click.option("--push", "push_remote", default=None, metavar="REMOTE",
              help="After --commit, push main and the tags to REMOTE (path, file://, ssh or https URL).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=DEFAULT_LOCK_TIMEOUT, show_default=True,
              help="Seconds to wait for another writer of the repository.")
@click.option("--part-size", type=_PartSize(), default=None,
              help="With --commit: store a database larger than SIZE as pieces of SIZE (e.g. 32MiB; a multiple of "
                   "the 4 KiB page size). Default: the repository's part size, else 32 MiB.")
@notify_options
@sign_key_option()
@quiet_option(json=True)
@click.pass_context
def export_command(
    ctx: click.Context, source_db: Path, target_dir: Path | None, generated_at: str | None, busy_timeout: float,
    as_json: bool, commit: bool, repo_path: Path | None, author: str | None, push_remote: str | None,
    lock_timeout: float, part_size: int | None, notify_urls: tuple[str, ...], notify_secret_file: Path | None,
    notify_timeout: float, sign_key: Path | None, quiet: bool,
) -> None:
    """Export the catalog's read model to DIR/catalog_read.db and DIR/manifest.json.

    The same catalog gives the same bytes; with --generated-at or
    SOURCE_DATE_EPOCH the manifest is byte-identical too. When DIR already
    holds the same content it is left untouched and the summary says
    "unchanged". A failed or killed export never damages the last snapshot.

    With --commit the snapshot is committed to a git repository of snapshots
    (see docs/consumers.md): no commit when the content equals HEAD's; the
    commit's date is the manifest's generated_at, so it is reproducible.
    A database larger than the part size is committed as pieces under
    catalog_read.db.parts/ (git forges accept them and send small deltas),
    and so is every later snapshot of that repository.
    With --sign-key each new commit is signed so that plain git verifies it
    (git verify-commit, git pull --verify-signatures); an Ed25519 or RSA key
    keeps the commit id reproducible.

    With --notify URL and --notify-secret-file, each receiver gets a signed
    JSON notice of a new snapshot once it is committed and pushed; a
    receiver not reached is told on the next run (see docs/consumers.md).

    On a terminal, a step that takes more than a few seconds shows its
    progress on stderr (the export, the commit, git's own for the push).

    Exit status: 0 done; 1 the export, the commit or the push failed; 2 a
    usage error; 3 the snapshot is committed (and pushed) but a receiver was
    not told.

    Example: snapbuild export --db catalogsync.db --target-dir snapshot

    Example: snapbuild export --db catalogsync.db --commit --repo snapshots.git --push ssh://git@host/catalog.git

    Example: snapbuild export --db catalogsync.db --commit --sign-key ~/.ssh/snapbuild_ed25519

    Example: snapbuild export --db catalogsync.db --commit --notify https://consumer.example/hook --notify-secret-file notify-secret.txt
    """
    from ..export import run_export

    if target_dir is None and not commit:
        raise UsageError("--target-dir is required unless --commit is given")
    from_command_line = ctx.get_parameter_source("sign_key") == click.core.ParameterSource.COMMANDLINE
    if not commit and (repo_path is not None or author is not None or push_remote is not None or from_command_line):
        raise UsageError("--repo, --author, --push and --sign-key need --commit")
    for given, flag in ((notify_urls, "--notify"), (part_size is not None, "--part-size")):
        if given and not commit:
            raise UsageError(f"{flag} needs --commit")
    signer = None
    if commit:
        from ..snapshots import parse_author

        parse_author(author or DEFAULT_AUTHOR)  # a bad --author fails before the export runs
        signer = load_signer(sign_key) if sign_key is not None else None  # and so does a key that cannot sign
    notifier = notifier_from_options(notify_urls, notify_secret_file, notify_timeout)
    stamp = _generated_at(generated_at, os.environ.get("SOURCE_DATE_EPOCH"))
    progress = terminal_progress(quiet)
    started = time.monotonic()
    run = None
    repo = repo_path or DEFAULT_REPO
    try:
        if commit:
            from ..pipeline import export_and_commit

            run = export_and_commit(
                source_db, repo, generated_at=stamp, author=author or DEFAULT_AUTHOR, lock_timeout=lock_timeout,
                target_dir=target_dir, busy_timeout=busy_timeout, progress=progress,
                push_to=push_remote, git=shutil.which("git"), env=dict(os.environ), part_size=part_size,
                notifier=notifier, signer=signer, push_progress=progress.git_text if progress is not None else None,
            )
            result = run.exported
        else:
            result = run_export(
                source_db, target_dir, generated_at=stamp, busy_timeout=busy_timeout, progress=progress
            )
    finally:
        if progress is not None:
            progress.close()
    if as_json:
        click.echo(result.manifest.to_json(), nl=False)
    elif target_dir is not None and not quiet:
        click.echo(_export_summary(result, target_dir, time.monotonic() - started))
    if run is not None:
        lines = _commit_summary(run, repo, time.monotonic() - started, signer)
        if run.push_error is None:
            if run.pushed is not None:
                lines.append(f"pushed main and tags to {_remote_for_people(run.pushed.remote)} (with {run.pushed.tool})")
            hint = _clone_hint(run, repo)
            lines += [hint] if hint is not None else []
        for line in [] if quiet else lines:
            click.echo(line, err=as_json)
        if warning := _forge_warning(run.committed.largest_blob):
            click.echo(warning, err=True)
        if run.push_error is not None:
            raise run.push_error
        if run.notified is not None:
            for line in [] if quiet else announcement_lines(run.notified):
                click.echo(line, err=as_json)
            if (failed := run.notified.error()) is not None:
                raise failed


@cli.command("verify")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--repo", "repo_path", type=click.Path(path_type=Path), default=None,
              help="Verify the snapshot at --rev in this repository (bare or a clone) instead of DIR.")
@click.option("--rev", default=None, help="Revision to verify with --repo: HEAD (default), HEAD~1, a snap- tag, a commit.")
@allowed_signers_option("With --repo, first require the commit's SSH signature to be good and by a key this file "
                        "admits (git's allowed-signers format, as gpg.ssh.allowedSignersFile).")
def verify_command(directory: Path | None, repo_path: Path | None, rev: str | None, allowed_signers: Path | None) -> None:
    """Check a snapshot: DIR/catalog_read.db matches DIR/manifest.json and passes quick_check.

    Compares the sha256, the content digest and every row count with the
    manifest; exits 0 with one OK line, or 1 with the reason. With
    --allowed-signers the commit must also carry a good signature by a key
    the file admits: unsigned, an unknown key or a signature that does not
    match fail with that reason. A good signature on a commit vouches for
    every snapshot before it too (each commit names its parent's id).

    Example: snapbuild verify snapshot

    Example: snapbuild verify --repo snapshots.git --rev HEAD~1

    Example: snapbuild verify --repo catalog --allowed-signers allowed_signers
    """
    from ..verify import verify_directory

    if repo_path is not None:
        if directory is not None:
            raise UsageError("give DIR or --repo, not both")
        from ..pipeline import verify_revision

        signature = ""
        if allowed_signers is not None:
            from ..signing.commits import verify_signature

            check = verify_signature(repo_path, rev or "HEAD", load_signers(allowed_signers))
            signature = f"; good signature by {', '.join(check.principals)} with {check.key.label if check.key else ''}"
        manifest = verify_revision(repo_path, rev or "HEAD")
        click.echo(
            f"OK {manifest.snapshot_id}: {repo_path} at {rev or 'HEAD'} matches its manifest "
            f"({sum(manifest.table_counts.values())} rows in {len(manifest.table_counts)} tables, quick_check ok)"
            f"{signature}"
        )
        return
    if rev is not None or allowed_signers is not None:
        raise UsageError("--rev and --allowed-signers need --repo")
    if directory is None:
        raise UsageError("give the snapshot directory to verify: snapbuild verify DIR")
    manifest = verify_directory(directory)
    click.echo(
        f"OK {manifest.snapshot_id}: {directory} matches its manifest "
        f"({sum(manifest.table_counts.values())} rows in {len(manifest.table_counts)} tables, quick_check ok)"
    )
