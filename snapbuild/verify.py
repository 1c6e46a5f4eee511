"""Verify a snapshot: does ``catalog_read.db`` match its ``manifest.json``, and is it sound?"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from .errors import VerifyError
from .manifest import (
    COUNTED_TABLES,
    DB_NAME,
    MANIFEST_NAME,
    PENDING_MANIFEST_NAME,
    SnapshotManifest,
    file_digests,
    snapshot_id_for,
)
from .schema import TABLE_NAMES
from .sqlite import readonly_uri


def verify_snapshot(db_path: Path | str, manifest_path: Path | str) -> SnapshotManifest:
    """Check a snapshot pair and return its manifest.

    Checks, in order: the manifest parses; the database's sha256 and content
    digest match it; the snapshot id derives from the digest; SQLite's
    ``quick_check`` passes; every table count (and the manifest's count fields) match
    the rows in the database.

    Raises:
        VerifyError: one line saying the first thing that does not match.
    """
    db_path = Path(db_path)
    manifest = SnapshotManifest.read(manifest_path)
    if not db_path.is_file():
        raise VerifyError(f"database not found: {db_path}", path=db_path)
    try:
        db_sha256, content_digest = file_digests(db_path)
    except OSError as error:
        raise VerifyError(f"cannot read {db_path}: {error.strerror}", path=db_path) from None
    if manifest.db_sha256 and db_sha256 != manifest.db_sha256:
        raise VerifyError(
            f"sha256 mismatch: {db_path.name} is {db_sha256[:16]}..., the manifest says "
            f"{manifest.db_sha256[:16]}...",
            path=db_path,
        )
    if not manifest.content_digest:
        raise VerifyError("manifest has no content_digest", path=db_path)
    if content_digest != manifest.content_digest:
        raise VerifyError(
            f"content digest mismatch: {db_path.name} gives {content_digest[:16]}..., the manifest says "
            f"{manifest.content_digest[:16]}...",
            path=db_path,
        )
    if manifest.snapshot_id != snapshot_id_for(manifest.content_digest):
        raise VerifyError(
            f"snapshot_id {manifest.snapshot_id!r} does not derive from the content digest", path=db_path
        )
    _check_database(db_path, manifest)
    return manifest


def verify_directory(directory: Path | str) -> SnapshotManifest:
    """Verify ``DIR/catalog_read.db`` against ``DIR/manifest.json``.

    Raises:
        VerifyError: as :func:`verify_snapshot`; the reason mentions an
            interrupted export when one left a pending manifest behind.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise VerifyError(f"not a snapshot directory: {directory}", path=directory)
    try:
        return verify_snapshot(directory / DB_NAME, directory / MANIFEST_NAME)
    except VerifyError as error:
        if (directory / PENDING_MANIFEST_NAME).exists():
            raise VerifyError(
                f"{error} (an export was interrupted here; the next export finishes it)", path=directory
            ) from None
        raise


def _check_database(db_path: Path, manifest: SnapshotManifest) -> None:
    try:
        conn = sqlite3.connect(readonly_uri(db_path), uri=True)
    except sqlite3.Error as error:
        raise VerifyError(f"cannot open {db_path}: {error}", path=db_path) from None
    try:
        result = [row[0] for row in conn.execute("PRAGMA quick_check").fetchall()]
        if result != ["ok"]:
            raise VerifyError(f"quick_check failed: {result[0]}", path=db_path)
        tables = {
            row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        }
        missing = [name for name in TABLE_NAMES if name not in tables]
        if missing:
            raise VerifyError(f"tables missing from the database: {', '.join(missing)}", path=db_path)
        expected = dict(manifest.table_counts)
        for field_name, table in COUNTED_TABLES.items():
            expected.setdefault(table, getattr(manifest, field_name))
        for table, count in sorted(expected.items()):
            if table not in tables:
                raise VerifyError(f"manifest counts table {table!r}, which the database lacks", path=db_path)
            actual = conn.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]
            if actual != count:
                raise VerifyError(
                    f"row count mismatch in {table}: the database has {actual}, the manifest says {count}",
                    path=db_path,
                )
        for field_name, table in COUNTED_TABLES.items():
            if getattr(manifest, field_name) != expected[table]:
                raise VerifyError(
                    f"manifest {field_name} {getattr(manifest, field_name)} disagrees with its table_counts",
                    path=db_path,
                )
        covers = conn.execute(
            "SELECT count(*) FROM catalog_playlists WHERE cover_url IS NOT NULL AND cover_url <> ''"
        ).fetchone()[0]
        if covers != manifest.cover_count:
            raise VerifyError(
                f"cover_count mismatch: the database has {covers}, the manifest says {manifest.cover_count}",
                path=db_path,
            )
    except sqlite3.Error as error:
        raise VerifyError(f"{db_path.name} is not a readable SQLite database: {error}", path=db_path) from None
    finally:
        conn.close()
