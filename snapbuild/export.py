"""Export: build the read model aside, digest it, and publish it atomically beside its manifest.

Publishing order (docs/export.md): the new database and manifest are first
written completely under temporary names in the target directory and
fsynced; then ``catalog_read.db`` is replaced, then ``manifest.json``. The
manifest is the commit point. A run killed between the two replaces leaves
``.manifest.json.pending``; the next run (or :func:`recover_target`) rolls it
forward when it matches the database, and deletes leftover temporary files.

Every file the export creates in the target is created exclusively, and the
ones it reuses (the lock, a pending manifest) are opened without following a
symbolic link (see :mod:`snapbuild.fsutil`): a link planted in the target
is refused or removed, never followed.
"""

from __future__ import annotations

import os
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import filelock
from sqlite_utils import Database

from .errors import SnapbuildError, TargetError, VerifyError
from .fsutil import (
    create_exclusive,
    fsync_dir,
    fsync_file,
    is_link,
    lock_problem,
    read_nofollow,
    remove_quietly,
    take_lock,
)
from .manifest import (
    DB_NAME,
    MANIFEST_NAME,
    PENDING_MANIFEST_NAME,
    SnapshotManifest,
    content_digest_of,
    file_sha256,
    format_timestamp,
    snapshot_id_for,
)
from .readmodel import BuildStats, Progress, build_tables, check_text_file
from .schema import PAGE_SIZE, SCHEMA_VERSION, TABLES
from .sidereader import SideReader
from .source import (
    attach_source,
    check_backends,
    check_schema,
    check_small_tables_utf8,
    check_source_file,
    translate_error,
)

LOCK_NAME = ".snapbuild-export.lock"
_TEMP_PREFIX = f".{DB_NAME}."
_TEMP_SUFFIX = ".tmp"
# The build's own stages (see readmodel.build_tables) plus validate, digest and publish.
_TOTAL_STEPS = 10


@dataclass(frozen=True)
class ExportResult:
    """What :func:`run_export` did.

    ``changed`` is False when the target already held the same
    ``content_digest``: the target was left untouched and ``manifest`` is the
    one already there.
    """

    manifest: SnapshotManifest
    changed: bool
    repairs: dict[str, int] = field(default_factory=dict)


def _system_clock() -> datetime:
    return datetime.now(timezone.utc)


def export_snapshot(
    source_db: Path | str,
    target_dir: Path | str,
    *,
    generated_at: str | datetime | None = None,
    busy_timeout: float = 5.0,
    progress: Progress | None = None,
    clock: Callable[[], datetime] = _system_clock,
) -> SnapshotManifest:
    """Export ``source_db`` into ``target_dir/catalog_read.db`` + ``manifest.json`` and return the manifest.

    Args:
        source_db: the authoritative catalog (read only, never written).
        target_dir: created if missing; holds the snapshot pair.
        generated_at: the manifest's timestamp; ``None`` means ``clock()``.
        busy_timeout: seconds to wait for a writer that locks the source.
        progress: optional ``progress(stage, done, total)`` callback.
        clock: where "now" comes from when ``generated_at`` is None.

    Returns:
        The manifest now in ``target_dir`` (the existing one if the content was unchanged).

    Raises:
        SourceError: the source is missing, not a catalog, locked or invalid.
        TargetError: the target cannot be written.
    """
    when = clock() if generated_at is None else generated_at
    return run_export(source_db, target_dir, generated_at=when, busy_timeout=busy_timeout, progress=progress).manifest


def run_export(
    source_db: Path | str,
    target_dir: Path | str,
    *,
    generated_at: str | datetime,
    busy_timeout: float = 5.0,
    progress: Progress | None = None,
    side_reader: bool = True,
) -> ExportResult:
    """Build the snapshot aside, compare it with the target's, and publish it if it changed.

    Args:
        source_db: the authoritative catalog (read only, never written).
        target_dir: created if missing; holds the snapshot pair.
        generated_at: the manifest's timestamp.
        busy_timeout: seconds to wait for a writer that locks the source.
        progress: optional ``progress(stage, done, total)`` callback.
        side_reader: let a second connection do part of the work on another core.

    Raises:
        SourceError: see :func:`export_snapshot`.
        TargetError: the target path is a file, or cannot be written.
        UsageError: ``generated_at`` is not a valid timestamp.
    """
    stamp = format_timestamp(generated_at)
    source = Path(source_db)
    target = Path(target_dir)
    report = progress or (lambda stage, done, total: None)
    report("validate", 0, _TOTAL_STEPS)
    check_source_file(source)
    _prepare_target(target)
    lock = _target_lock(target, busy_timeout)
    try:
        recover_target(target)
        temp = target / f"{_TEMP_PREFIX}{uuid.uuid4().hex}{_TEMP_SUFFIX}"
        try:
            built = build_snapshot_db(
                source,
                temp,
                busy_timeout=busy_timeout,
                progress=lambda stage, done, total: report(stage, 1 + done, _TOTAL_STEPS),
                side_reader=side_reader,
            )
            report("digest", 8, _TOTAL_STEPS)
            db_sha256, content_digest = _seal(temp, built.text_checked)
            stats = built.stats
            counts = stats.table_counts
            manifest = SnapshotManifest(
                snapshot_id=snapshot_id_for(content_digest),
                generated_at=stamp,
                schema_version=SCHEMA_VERSION,
                playlist_count=counts["catalog_playlists"],
                track_count=counts["catalog_tracks"],
                file_count=counts["catalog_track_files"],
                cover_count=stats.cover_count,
                db_sha256=db_sha256,
                content_digest=content_digest,
                table_counts=dict(sorted(counts.items())),
                sqlite_version=sqlite3.sqlite_version,
                repairs=dict(sorted(stats.repairs.items())),
            )
            repairs = dict(manifest.repairs)
            existing = _current_manifest(target, content_digest)
            if existing is not None:
                report("unchanged", _TOTAL_STEPS, _TOTAL_STEPS)
                return ExportResult(existing, False, repairs)
            report("publish", 9, _TOTAL_STEPS)
            _publish(target, temp, manifest)
            report("done", _TOTAL_STEPS, _TOTAL_STEPS)
            return ExportResult(manifest, True, repairs)
        finally:
            remove_quietly(temp)
    finally:
        lock.release()


@dataclass(frozen=True)
class BuiltDatabase:
    """What :func:`build_snapshot_db` wrote, and which tables' text the side reader already checked."""

    stats: BuildStats
    text_checked: tuple[str, ...] = ()


def build_snapshot_db(
    source: Path,
    path: Path,
    *,
    busy_timeout: float = 5.0,
    progress: Progress | None = None,
    side_reader: bool = True,
) -> BuiltDatabase:
    """Write the read model of ``source`` into the fresh file ``path`` in one write transaction.

    The source is attached read-only and every statement runs in the same
    transaction, so the whole build sees one point in time of the source.

    Args:
        source: the source catalog.
        path: the new database file (it must not exist; nor may ``path-side``).
        busy_timeout: seconds to wait for a writer that locks the source.
        progress: optional ``progress(stage, done, total)`` callback.
        side_reader: let a second connection do part of the work on another
            core (see :mod:`snapbuild.sidereader`); False does it all here.

    Raises:
        SourceError: the source is unreadable, locked beyond ``busy_timeout`` or invalid.
        TargetError: ``path`` exists or cannot be written (e.g. the disk is full).
    """
    # Scratch space of the side reader; a leftover is removed like the temporary database itself.
    scratch = path.with_name(path.name + "-side")
    # Both new and empty, created here so that SQLite opens files that are ours (never through a link).
    for new_file in (path, scratch):
        try:
            create_exclusive(new_file)
        except OSError as error:
            if new_file == scratch:
                remove_quietly(path)
            raise TargetError(f"cannot create {new_file}: {error.strerror or error}", path=new_file) from None
    conn = sqlite3.connect(str(path), uri=True, isolation_level=None, timeout=busy_timeout)
    try:
        db = Database(conn, recursive_triggers=False, execute_plugins=False)
        # Pin everything that shapes the file's bytes (secure_delete's default
        # differs between builds; OFF because ON with an in-memory journal makes
        # the sort-and-insert of the big link table about twice as slow). The
        # journal only serves statement rollbacks: a crash discards the file.
        for pragma in (
            f"page_size = {PAGE_SIZE}",
            "auto_vacuum = NONE",
            "encoding = 'UTF-8'",
            "secure_delete = OFF",
            "journal_mode = MEMORY",
            "synchronous = OFF",
            f"threads = {min(os.cpu_count() or 1, 4)}",
        ):
            db.execute(f"PRAGMA {pragma}")
        side: SideReader | None = None
        try:
            if side_reader:
                side = SideReader(source, scratch, busy_timeout)
            attach_source(conn, source)
            db.execute("ATTACH DATABASE ? AS side", [str(scratch)])
            db.execute("BEGIN")
            check_schema(db)  # the first read of src: the build's point in time starts here
            if side is not None:
                side.start()
            check_small_tables_utf8(db)
            check_backends(db)
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            stats = build_tables(
                db,
                progress,
                encoded_paths=side.paths_ready if side is not None else None,
                types_checked=(lambda: side.result().types_checked) if side is not None else None,
            )
            db.execute("COMMIT")
            text_checked = side.result().text_checked if side is not None else ()
            side = None
        except SnapbuildError:
            raise
        except sqlite3.Error as error:
            name = getattr(error, "sqlite_errorname", "")
            if name.startswith(("SQLITE_FULL", "SQLITE_IOERR_WRITE", "SQLITE_READONLY")):
                raise TargetError(f"cannot write {path}: {error}", path=path) from None
            raise translate_error(error, source, busy_timeout) from None
        finally:
            if side is not None:
                side.abort()
        return BuiltDatabase(stats, text_checked)
    finally:
        conn.close()
        for leftover in (scratch, scratch.with_name(scratch.name + "-journal")):
            remove_quietly(leftover)


def _seal(temp: Path, checked: tuple[str, ...]) -> tuple[str, str]:
    """Check the built file's text (what the side reader did not check), fsync it and hash it, side by side.

    Each task spends its time in C with the GIL released, so they share the cores.

    Returns:
        ``(db_sha256, content_digest)``.

    Raises:
        SourceError: a text value is not valid UTF-8.
    """
    with ThreadPoolExecutor(max_workers=5) as pool:
        remaining = [t.name for t in TABLES if t.text_columns and t.name not in checked]
        groups = [remaining[:1], remaining[1:]] if len(remaining) > 2 else [remaining]
        checks = [pool.submit(check_text_file, temp, group) for group in groups if group]
        synced = pool.submit(fsync_file, temp)
        plain = pool.submit(file_sha256, temp)
        content = pool.submit(content_digest_of, temp)
        for check in checks:
            check.result()
        synced.result()
        return plain.result(), content.result()


def _target_lock(target: Path, busy_timeout: float) -> filelock.FileLock:
    """Take the target's export lock (see :func:`snapbuild.fsutil.take_lock`); return the held lock.

    Raises:
        TargetError: the lock file is a link, the directory cannot be written,
            or another export held the lock for ``busy_timeout`` seconds.
    """
    path = target / LOCK_NAME
    try:
        return take_lock(path, busy_timeout)
    except filelock.Timeout:
        raise TargetError(f"another export is writing to {target}", path=target) from None
    except OSError as error:
        raise TargetError(lock_problem(error, path, "the target directory"), path=path) from None


def _prepare_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise TargetError(f"target path is a file, not a directory: {target}", path=target)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TargetError(f"cannot create target directory {target}: {error.strerror}", path=target) from None


def _current_manifest(target: Path, content_digest: str) -> SnapshotManifest | None:
    """The target's manifest if it has ``content_digest`` and its database matches it, else None."""
    db_path = target / DB_NAME
    manifest_path = target / MANIFEST_NAME
    # A link in place of either is not the target's own pair: publishing replaces it.
    if is_link(db_path) or is_link(manifest_path) or not db_path.is_file():
        return None
    try:
        manifest = SnapshotManifest.from_bytes(read_nofollow(manifest_path), path=manifest_path)
    except (VerifyError, OSError):
        return None
    if manifest.content_digest != content_digest or file_sha256(db_path) != manifest.db_sha256:
        return None
    return manifest


def recover_target(target: Path) -> None:
    """Finish or discard what a killed export left in ``target`` (call with the export lock held).

    A pending manifest whose ``db_sha256`` matches ``catalog_read.db`` was
    killed between the two replaces: it is moved into place. Anything else
    left over (temporary databases, stale pending manifests, a link where a
    pending manifest belongs) is removed.
    """
    for leftover in target.glob(f"{_TEMP_PREFIX}*"):
        if leftover.name.endswith(_TEMP_SUFFIX) or _TEMP_SUFFIX + "-" in leftover.name:
            remove_quietly(leftover)
    pending = target / PENDING_MANIFEST_NAME
    if not (pending.exists() or is_link(pending)):
        return
    try:
        manifest = SnapshotManifest.from_bytes(read_nofollow(pending), path=pending)
        db_path = target / DB_NAME
        if not is_link(db_path) and db_path.is_file() and file_sha256(db_path) == manifest.db_sha256:
            os.replace(pending, target / MANIFEST_NAME)
            fsync_dir(target)
            return
    except (VerifyError, OSError):
        pass
    remove_quietly(pending)


def _publish(target: Path, temp_db: Path, manifest: SnapshotManifest) -> None:
    """Replace the database, then the manifest (the commit point), each atomically, then make both durable."""
    pending = target / PENDING_MANIFEST_NAME
    try:
        remove_quietly(pending)  # recover_target removed it already; this is the lock holder's name
        try:
            create_exclusive(pending, manifest.to_json().encode("utf-8"), sync=True)
        except FileExistsError:
            raise TargetError(
                f"{pending} appeared while the export held the lock; refusing to write through it", path=pending
            ) from None
        # Back to back, nothing between them: the only moment a kill leaves the
        # new database beside the old manifest is between these two syscalls
        # (and recover_target finishes such a pair). One fsync of the directory
        # then makes both renames durable.
        os.replace(temp_db, target / DB_NAME)
        os.replace(pending, target / MANIFEST_NAME)
        fsync_dir(target)
    except OSError as error:
        raise TargetError(
            f"cannot replace the snapshot in {target}: {error.strerror or error}", path=target
        ) from None
