"""verify_snapshot: the pair matches (sha256, content digest, counts) and SQLite's quick_check passes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from snapbuild import verify_snapshot
from snapbuild.errors import VerifyError
from snapbuild.manifest import PENDING_MANIFEST_NAME as PENDING_MANIFEST
from snapbuild.manifest import SnapshotManifest, file_digests, snapshot_id_for
from snapbuild.verify import verify_directory


def pair(directory: Path) -> tuple[Path, Path]:
    return directory / "catalog_read.db", directory / "manifest.json"


def rewrite_manifest(directory: Path, **changes: object) -> None:
    manifest = SnapshotManifest.read(directory / "manifest.json")
    payload = {**manifest.to_dict(), **changes}
    (directory / "manifest.json").write_text(SnapshotManifest.from_dict(payload).to_json(), encoding="utf-8")


def reseal(directory: Path) -> None:
    """Make the manifest's digests match the database again (to reach the later checks)."""
    sha, digest = file_digests(directory / "catalog_read.db")
    rewrite_manifest(directory, db_sha256=sha, content_digest=digest, snapshot_id=snapshot_id_for(digest))


def test_a_fresh_snapshot_verifies(good_snapshot) -> None:
    assert verify_snapshot(*pair(good_snapshot.dir)) == good_snapshot.manifest
    assert verify_directory(good_snapshot.dir) == good_snapshot.manifest


def test_a_changed_byte_is_a_sha256_mismatch(good_snapshot) -> None:
    db, manifest = pair(good_snapshot.dir)
    data = bytearray(db.read_bytes())
    data[len(data) // 2] ^= 0x40
    db.write_bytes(bytes(data))
    with pytest.raises(VerifyError, match="sha256 mismatch"):
        verify_snapshot(db, manifest)


def test_a_wrong_content_digest_is_reported(good_snapshot) -> None:
    rewrite_manifest(good_snapshot.dir, content_digest="ab" * 32)
    with pytest.raises(VerifyError, match="content digest mismatch"):
        verify_directory(good_snapshot.dir)


def test_a_snapshot_id_not_derived_from_the_digest_is_reported(good_snapshot) -> None:
    rewrite_manifest(good_snapshot.dir, snapshot_id="snap-0000000000000000")
    with pytest.raises(VerifyError, match="does not derive"):
        verify_directory(good_snapshot.dir)


@pytest.mark.parametrize(
    "changes, reason",
    [
        ({"table_counts": {"catalog_tracks": 2}}, "row count mismatch in catalog_tracks: the database has 1"),
        ({"track_count": 5}, "track_count 5 disagrees"),
        ({"cover_count": 0}, "cover_count mismatch"),
        ({"table_counts": {"catalog_nothing": 0}}, "catalog_nothing"),
    ],
)
def test_counts_must_match_the_rows(good_snapshot, changes: dict, reason: str) -> None:
    rewrite_manifest(good_snapshot.dir, **changes)
    with pytest.raises(VerifyError, match=reason):
        verify_directory(good_snapshot.dir)


def test_quick_check_failures_are_reported(good_snapshot) -> None:
    db = good_snapshot.dir / "catalog_read.db"
    conn = sqlite3.connect(db)
    page_size = conn.execute("pragma page_size").fetchone()[0]
    root = conn.execute("select rootpage from sqlite_master where name = 'catalog_playlist_tracks'").fetchone()[0]
    conn.close()
    data = bytearray(db.read_bytes())
    offset = (root - 1) * page_size
    data[offset] = 0x00  # not a valid b-tree page type
    db.write_bytes(bytes(data))
    reseal(good_snapshot.dir)
    with pytest.raises(VerifyError, match="quick_check failed|not a readable SQLite database"):
        verify_directory(good_snapshot.dir)


def test_missing_files_and_bad_manifests(good_snapshot, tmp_path: Path) -> None:
    db, manifest = pair(good_snapshot.dir)
    with pytest.raises(VerifyError, match="manifest not found"):
        verify_snapshot(db, tmp_path / "none.json")
    with pytest.raises(VerifyError, match="database not found"):
        verify_snapshot(tmp_path / "none.db", manifest)
    with pytest.raises(VerifyError, match="not a snapshot directory"):
        verify_directory(tmp_path / "nowhere")
    manifest.write_text('{"snapshot_id": 1}', encoding="utf-8")
    with pytest.raises(VerifyError, match="manifest"):
        verify_snapshot(db, manifest)
    manifest.write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(VerifyError, match="not UTF-8"):
        verify_snapshot(db, manifest)


def test_an_interrupted_export_is_named_in_the_reason(good_snapshot) -> None:
    db, _ = pair(good_snapshot.dir)
    db.write_bytes(db.read_bytes() + b"\x00" * 4096)
    (good_snapshot.dir / PENDING_MANIFEST).write_text("{}", encoding="utf-8")
    with pytest.raises(VerifyError, match="an export was interrupted"):
        verify_directory(good_snapshot.dir)
