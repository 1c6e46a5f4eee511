"""Commands that build and check snapshots: export (and commit, push), verify."""

from __future__ import annotations

import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..defaults import DEFAULT_AUTHOR, DEFAULT_LOCK_TIMEOUT, DEFAULT_REPO
from ..errors import UsageError
from .base import cli

if TYPE_CHECKING:
    from ..export import ExportResult
    from ..manifest import SnapshotManifest
    from ..snapshots import CommitResult


def _commit_summary(committed: CommitResult, manifest: SnapshotManifest, repo: Path, elapsed: float) -> list[str]:
    """The lines ``export --commit`` prints about the repository."""
    head = committed.commit[:12]
    if not committed.changed:
        line = f"unchanged {committed.snapshot_id}: main in {repo} already holds this content ({head}); no commit"
        lines = [line + (f"; restored tag {committed.snapshot_id}" if committed.tag_created else "")]
    else:
        tag = "tagged" if committed.tag_created else "tag already names the first commit with this content"
        lines = [
            f"committed {committed.snapshot_id} to {repo} as {head} on main ({tag}): "
            f"{manifest.playlist_count} playlists, {manifest.track_count} tracks, {manifest.file_count} files; "
            f"{elapsed:.2f} s"
        ]
        if committed.pieces:
            from ..parts import format_size

            lines[0] += f"; stored as {committed.pieces} pieces of at most {format_size(committed.part_size)}"
    lines.append(f"consumers: git clone {Path(repo).resolve()} catalog   (then git pull --ff-only)")
    return lines


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
            self.fail(str(error).replace("part_size", "--part-size", 1), param, ctx)


def _forge_warning(largest_blob: int) -> str | None:
    """The one warning an export gets when its commit put a blob above the forges' limits into the repository."""
    from ..parts import DEFAULT_PART_SIZE, FORGE_REFUSE_SIZE, FORGE_WARN_SIZE, format_size

    if largest_blob <= FORGE_WARN_SIZE:
        return None
    return (
        f"snapbuild: warning: this snapshot put a {largest_blob / 2**20:.1f} MiB blob into the repository: GitHub "
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


class _StageProgress:
    """Render ``progress(stage, done, total)`` as a click progress bar on a terminal's stderr."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._done = 0

    def __call__(self, stage: str, done: int, total: int) -> None:
        if self._bar is None:
            self._bar = click.progressbar(
                length=total, label="export", file=sys.stderr, show_eta=False,
                item_show_func=lambda item: item,
            )
            self._bar.__enter__()
        self._bar.update(max(done - self._done, 0), current_item=stage)
        self._done = max(done, self._done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)


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
def export_command(
    source_db: Path, target_dir: Path | None, generated_at: str | None, busy_timeout: float, as_json: bool,
    commit: bool, repo_path: Path | None, author: str | None, push_remote: str | None, lock_timeout: float,
    part_size: int | None,
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

    Example: snapbuild export --db catalogsync.db --target-dir snapshot

    Example: snapbuild export --db catalogsync.db --commit --repo snapshots.git --push ssh://git@host/catalog.git
    """
    from ..export import run_export

    if target_dir is None and not commit:
        raise UsageError("--target-dir is required unless --commit is given")
    if not commit and (repo_path is not None or author is not None or push_remote is not None):
        raise UsageError("--repo, --author and --push need --commit")
    if not commit and part_size is not None:
        raise UsageError("--part-size needs --commit")
    if commit:
        from ..snapshots import parse_author

        parse_author(author or DEFAULT_AUTHOR)  # a bad --author fails before the export runs
    stamp = _generated_at(generated_at, os.environ.get("SOURCE_DATE_EPOCH"))
    progress = _StageProgress() if sys.stderr.isatty() else None
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
    elif target_dir is not None:
        click.echo(_export_summary(result, target_dir, time.monotonic() - started))
    if run is not None:
        for line in _commit_summary(run.committed, result.manifest, repo, time.monotonic() - started):
            click.echo(line, err=as_json)
        if warning := _forge_warning(run.committed.largest_blob):
            click.echo(warning, err=True)
        if run.push_error is not None:
            raise run.push_error
        if run.pushed is not None:
            click.echo(f"pushed main and tags to {run.pushed.remote} (with {run.pushed.tool})", err=as_json)


@cli.command("verify")
@click.argument("directory", required=False, type=click.Path(path_type=Path))
@click.option("--repo", "repo_path", type=click.Path(path_type=Path), default=None,
              help="Verify the snapshot at --rev in this repository (bare or a clone) instead of DIR.")
@click.option("--rev", default=None, help="Revision to verify with --repo: HEAD (default), HEAD~1, a snap- tag, a commit.")
def verify_command(directory: Path | None, repo_path: Path | None, rev: str | None) -> None:
    """Check a snapshot: DIR/catalog_read.db matches DIR/manifest.json and passes quick_check.

    Compares the sha256, the content digest and every row count with the
    manifest; exits 0 with one OK line, or 1 with the reason.

    Example: snapbuild verify snapshot

    Example: snapbuild verify --repo snapshots.git --rev HEAD~1
    """
    from ..verify import verify_directory

    if repo_path is not None:
        if directory is not None:
            raise UsageError("give DIR or --repo, not both")
        from ..pipeline import verify_revision

        manifest = verify_revision(repo_path, rev or "HEAD")
        click.echo(
            f"OK {manifest.snapshot_id}: {repo_path} at {rev or 'HEAD'} matches its manifest "
            f"({sum(manifest.table_counts.values())} rows in {len(manifest.table_counts)} tables, quick_check ok)"
        )
        return
    if rev is not None:
        raise UsageError("--rev needs --repo")
    if directory is None:
        raise UsageError("give the snapshot directory to verify: snapbuild verify DIR")
    manifest = verify_directory(directory)
    click.echo(
        f"OK {manifest.snapshot_id}: {directory} matches its manifest "
        f"({sum(manifest.table_counts.values())} rows in {len(manifest.table_counts)} tables, quick_check ok)"
    )
