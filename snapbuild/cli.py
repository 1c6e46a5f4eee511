"""The ``snapbuild`` command line: parse, call one core function, render.

Every :class:`~snapbuild.errors.SnapbuildError` becomes one line on stderr and
an exit code here, in :func:`main`, and nowhere else: 2 for usage errors,
1 for operational ones. Core messages name no flags: :func:`render_error`
names the flag the user can change.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .defaults import DEFAULT_AUTHOR, DEFAULT_LOCK_TIMEOUT, DEFAULT_REPO
from .errors import RepoLockedError, SnapbuildError, SourceBusyError, UsageError

if TYPE_CHECKING:
    # Commands import what they run when they run it: `snapbuild textconv`, which git
    # starts once per file it compares, must not pay for SQLite-utils or dulwich.
    from .export import ExportResult
    from .manifest import SnapshotManifest
    from .snapshots import CommitResult, HistoryEntry

#: Exit codes: an operational error (the catalog, the target, the repository), a usage error, Ctrl-C.
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_ABORTED = 130

#: The flag that sets each library argument a usage error can name.
_ARGUMENT_FLAGS = {"author": "--author"}
#: What the user can do about an error that ran out of time, by the error's class.
_HINTS: tuple[tuple[type[SnapbuildError], str], ...] = (
    (RepoLockedError, "raise --lock-timeout to wait longer"),
    (SourceBusyError, "raise --busy-timeout to wait longer"),
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="snapbuild")
def cli() -> None:
    """Build deterministic read-model snapshots of a music catalog and version them with git."""


# --- snapshot repository: log, gc (see snapbuild/snapshots.py, snapbuild/git/) ----------


def _human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _change_summary(entry: HistoryEntry) -> str:
    if entry.parent_snapshot_id is None:
        return "first snapshot"
    parts = []
    for table, delta in entry.changes.items():
        if delta is None:
            parts.append(f"{table} new")
        elif delta:
            parts.append(f"{table} {delta:+d}")
    return ", ".join(parts) if parts else "same row counts"


@cli.command("log")
@click.option("--repo", "repo_path", type=click.Path(path_type=Path), default=DEFAULT_REPO,
              show_default=True, help="Snapshot repository: the bare repository or any clone.")
@click.option("--rev", default="HEAD", show_default=True, help="Start from this revision.")
@click.option("-n", "--max-count", type=click.IntRange(min=1), default=None, help="Show at most N snapshots.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of text.")
def log_command(repo_path: Path, rev: str, max_count: int | None, as_json: bool) -> None:
    """List the snapshots on main, newest first: id, date, counts and row-count changes.

    Example: snapbuild log --repo snapshots.git -n 5
    """
    from .snapshots import snapshot_history

    entries = snapshot_history(repo_path, rev, limit=max_count)
    if as_json:
        click.echo(json.dumps([e.to_dict() for e in entries], indent=2, ensure_ascii=False))
        return
    if not entries:
        click.echo(f"no snapshots in {repo_path}")
        return
    for e in entries:
        counts = " ".join(f"{k.removesuffix('_count')}s={v}" for k, v in e.counts.items())
        click.echo(f"{e.snapshot_id}  {e.generated_at}  {e.commit[:12]}  {counts}  {_change_summary(e)}")


@cli.command("gc")
@click.option("--repo", "repo_path", type=click.Path(path_type=Path), default=DEFAULT_REPO,
              show_default=True, help="The snapshot repository to repack.")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=DEFAULT_LOCK_TIMEOUT, show_default=True,
              help="Seconds to wait for a running export --commit.")
def gc_command(repo_path: Path, lock_timeout: float) -> None:
    """Repack the snapshot repository (git CLI with deltas if installed, else dulwich).

    dulwich writes every snapshot as a whole loose object; run this now and then
    (e.g. weekly) so the repository and what consumers fetch stay small.

    Example: snapbuild gc --repo snapshots.git
    """
    from .git.remote import gc

    result = gc(repo_path, git=shutil.which("git"), lock_timeout=lock_timeout)
    click.echo(
        f"repacked {repo_path} with {result.tool}: "
        f"{_human_bytes(result.size_before)} -> {_human_bytes(result.size_after)}"
    )


# --- sample catalog (see snapbuild/sample/) --------------------------------------------


@cli.command("sample-catalog")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tracks", type=click.IntRange(min=0), default=200, show_default=True, help="Number of songs.")
@click.option("--playlists", type=click.IntRange(min=0), default=20, show_default=True,
              help="Number of playlists (~50 rows each).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same catalog.")
@click.option("--media-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Also write a 3-second WAV tone (48 KB) at DIR/LOCATOR for every active nas-main "
                   "file: about one per three tracks. Existing files are kept.")
@click.option("--force", is_flag=True, help="Replace OUT even if it is not a sample catalog.")
def sample_catalog_command(
    out: Path, tracks: int, playlists: int, seed: int, media_dir: Path | None, force: bool
) -> None:
    """Write a synthetic catalog in the source schema for trying, testing and benchmarking.

    Mixed Chinese and Latin names, locators with spaces, '#', '%' and '?',
    files on the NAS, on object storage or both, inactive locations, toplists.
    The same seed always gives the same catalog. An existing sample catalog at
    OUT is replaced; any other existing file is refused unless --force.

    \b
    Example: snapbuild sample-catalog sample/catalogsync.db --media-dir sample/media
    """
    from .sample import is_sample_catalog, write_sample_catalog

    if out.exists() and not force and not is_sample_catalog(out):
        raise UsageError(f"{out} exists and is not a sample catalog; pass --force to replace it")
    stats = write_sample_catalog(
        out, tracks=tracks, playlists=playlists, seed=seed, media_dir=media_dir, overwrite=True
    )
    click.echo(f"wrote {out}: {stats.summary()}")


# --- row-level diffs: textconv, consumer-setup, diff (see textconv.py, consumer.py, diff.py)


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

    from .textconv import dump_database

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
def consumer_setup_command(clone: Path, portable: bool) -> None:
    """Configure a clone of the snapshot repository so 'git diff' and 'git log -p' show row changes.

    Sets diff.snapbuild.textconv and diff.snapbuild.cachetextconv in the
    clone's own .git/config (git never transfers config, so each clone needs
    this once). By default the command names this Python interpreter by its
    absolute path, so it works without snapbuild on PATH (virtualenvs,
    Windows); --portable writes 'snapbuild textconv' instead. Prints the
    one-line manual equivalent.

    Example: snapbuild consumer-setup path/to/snapshots-clone
    """
    import shlex

    from .errors import RepoError
    from .consumer import consumer_setup, manual_setup_command

    # git runs the command through sh (Git for Windows bundles one): quote the path for sh.
    interpreter = shlex.quote(Path(sys.executable).as_posix())
    command = "snapbuild textconv" if portable else f"{interpreter} -m snapbuild textconv"
    git = shutil.which("git")
    if git is None:
        raise RepoError(f"git not found on PATH; configure by hand: {manual_setup_command()}")
    git_dir = consumer_setup(clone, command, git=git)
    click.echo(f"configured the snapbuild diff driver in {git_dir}: textconv = {command}")
    click.echo(f"by hand: {manual_setup_command()}")


def _render_key(example: dict[str, object]) -> str:
    return " ".join(f"{column}={json.dumps(value, ensure_ascii=False)}" for column, value in example.items())


@cli.command("diff")
@click.option("--repo", "repo_path", type=click.Path(path_type=Path), default=DEFAULT_REPO,
              show_default=True, help="Snapshot repository: the bare repository or any clone.")
@click.argument("revs", nargs=-1, metavar="[REV_A [REV_B]]")
@click.option("--examples", type=click.IntRange(min=0), default=5, show_default=True,
              help="Keys shown per table and kind of change.")
@click.option("--json", "as_json", is_flag=True, help="Print the differences as JSON.")
def diff_command(repo_path: Path, revs: tuple[str, ...], examples: int, as_json: bool) -> None:
    """Show row-level differences between two snapshots: per table, rows added, removed and changed.

    REV_A and REV_B default to HEAD~1 and HEAD (one revision: REV_A against
    HEAD). Rows are matched by each table's key. Nothing is checked out: the
    two databases are read from git objects into temporary files.

    Example: snapbuild diff --repo snapshots.git HEAD~3 HEAD --json
    """
    from .pipeline import diff_revisions

    if len(revs) > 2:
        raise UsageError(f"diff takes at most two revisions, got {len(revs)}")
    rev_a = revs[0] if revs else "HEAD~1"
    rev_b = revs[1] if len(revs) > 1 else "HEAD"
    result = diff_revisions(repo_path, rev_a, rev_b, examples=examples)
    if as_json:
        click.echo(json.dumps(result.to_dict(), ensure_ascii=False, indent=2))
        return
    click.echo(f"{result.from_id} -> {result.to_id}")
    if result.is_empty:
        click.echo("  no row changes")
        return
    for name, table in result.tables.items():
        if table.is_empty:
            click.echo(f"  {name}: unchanged")
            continue
        click.echo(f"  {name}: {table.added} added, {table.removed} removed, {table.changed} changed")
        if table.columns_added or table.columns_removed:
            click.echo(f"    columns: +{list(table.columns_added)} -{list(table.columns_removed)}")
        for kind, keys, total in (
            ("added", table.added_examples, table.added),
            ("removed", table.removed_examples, table.removed),
            ("changed", table.changed_examples, table.changed),
        ):
            if keys:
                more = f"; ... {total - len(keys)} more" if total > len(keys) else ""
                click.echo(f"    {kind + ':':8} " + "; ".join(_render_key(key) for key in keys) + more)


# --- export and verify (see export.py, verify.py, pipeline.py) ---------------------------


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
    lines.append(f"consumers: git clone {Path(repo).resolve()} catalog   (then git pull --ff-only)")
    return lines


def _generated_at(option: str | None, source_date_epoch: str | None) -> datetime:
    """--generated-at wins, then SOURCE_DATE_EPOCH (reproducible builds), then the clock."""
    from .manifest import format_timestamp, parse_timestamp

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
def export_command(
    source_db: Path, target_dir: Path | None, generated_at: str | None, busy_timeout: float, as_json: bool,
    commit: bool, repo_path: Path | None, author: str | None, push_remote: str | None, lock_timeout: float,
) -> None:
    """Export the catalog's read model to DIR/catalog_read.db and DIR/manifest.json.

    The same catalog gives the same bytes; with --generated-at or
    SOURCE_DATE_EPOCH the manifest is byte-identical too. When DIR already
    holds the same content it is left untouched and the summary says
    "unchanged". A failed or killed export never damages the last snapshot.

    With --commit the snapshot is committed to a git repository of snapshots
    (see docs/consumers.md): no commit when the content equals HEAD's; the
    commit's date is the manifest's generated_at, so it is reproducible.

    Example: snapbuild export --db catalogsync.db --target-dir snapshot

    Example: snapbuild export --db catalogsync.db --commit --repo snapshots.git --push ssh://git@host/catalog.git
    """
    from .export import run_export

    if target_dir is None and not commit:
        raise UsageError("--target-dir is required unless --commit is given")
    if not commit and (repo_path is not None or author is not None or push_remote is not None):
        raise UsageError("--repo, --author and --push need --commit")
    if commit:
        from .snapshots import parse_author

        parse_author(author or DEFAULT_AUTHOR)  # a bad --author fails before the export runs
    stamp = _generated_at(generated_at, os.environ.get("SOURCE_DATE_EPOCH"))
    progress = _StageProgress() if sys.stderr.isatty() else None
    started = time.monotonic()
    run = None
    repo = repo_path or DEFAULT_REPO
    try:
        if commit:
            from .pipeline import export_and_commit

            run = export_and_commit(
                source_db, repo, generated_at=stamp, author=author or DEFAULT_AUTHOR, lock_timeout=lock_timeout,
                target_dir=target_dir, busy_timeout=busy_timeout, progress=progress,
                push_to=push_remote, git=shutil.which("git"), env=dict(os.environ),
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
    from .verify import verify_directory

    if repo_path is not None:
        if directory is not None:
            raise UsageError("give DIR or --repo, not both")
        from .pipeline import verify_revision

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


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; turn snapbuild's errors into one stderr line and an exit code."""
    try:
        cli.main(args=argv, prog_name="snapbuild", standalone_mode=False)
    except SnapbuildError as error:
        click.echo(f"snapbuild: error: {render_error(error)}", err=True)
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
