"""The catalog allow-list over real exported snapshots: what it lists, what it refuses to trust, how it reloads."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from origin_server.catalog import LOGGER, Catalog, read_catalog
from origin_server.errors import CatalogError, SettingError

from .catalog_support import NAS, Published, publish_sample


@pytest.fixture
def published(tmp_path: Path) -> Published:
    return publish_sample(tmp_path / "pub")


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    """The directory the catalog copies the database into; every test checks it is left empty."""
    path = tmp_path / "scratch"
    path.mkdir()
    return path


def open_catalog(published: Published, scratch: Path, backends: tuple[str, ...] = (NAS,)) -> Catalog:
    return Catalog(published.directory, backends, scratch_dir=scratch)


def rewrite_manifest(directory: Path, **changes: object) -> None:
    """Replace manifest.json by a copy with some fields changed (a hand-made, bad publication)."""
    path = directory / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8"))
    manifest.update(changes)
    path.write_text(json.dumps(manifest), encoding="utf-8")


def test_lists_the_active_files_of_the_named_backends(published: Published, scratch: Path) -> None:
    listed = published.listed()
    s3 = published.listed("main-s3")
    assert len(listed) > 10 and s3
    catalog = open_catalog(published, scratch)
    assert catalog.snapshot_id == published.manifest()["snapshot_id"]
    assert catalog.index.counts == {NAS: len(listed)}
    assert all(catalog.allows(NAS, locator) for locator in listed)
    # Another backend's files, a backend not loaded, no backend, a near miss: all refused.
    assert not any(catalog.allows(NAS, locator) for locator in set(s3) - set(listed))
    assert not catalog.allows("main-s3", s3[0])
    assert not catalog.allows(None, listed[0])
    assert not catalog.allows(NAS, listed[0] + " ")
    assert list(scratch.iterdir()) == []


def test_every_named_backend_is_indexed(
    published: Published, scratch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    catalog = open_catalog(published, scratch, (NAS, "main-s3", "elsewhere"))
    s3 = published.listed("main-s3")
    assert catalog.index.counts == {NAS: len(published.listed()), "main-s3": len(s3), "elsewhere": 0}
    assert all(catalog.allows("main-s3", locator) for locator in s3)
    # A root whose backend the snapshot does not list serves nothing: said once, at load.
    assert [r.getMessage() for r in caplog.records] == [
        f"catalog {published.directory}: snapshot {catalog.snapshot_id} lists no active file of backend "
        "'elsewhere': its media root serves nothing"
    ]


def test_inactive_rows_and_leading_slashes(published: Published, scratch: Path) -> None:
    """status must be 'active'; a locator stored with a leading '/' is the same file as without it."""
    first, second = published.listed()[:2]
    db = published.directory / "catalog_read.db"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE catalog_track_files SET status = 'inactive' WHERE locator = ?", (first,))
        conn.execute("UPDATE catalog_track_files SET locator = '/' || locator WHERE locator = ?", (second,))
    conn.close()
    rewrite_manifest(published.directory, db_sha256=hashlib.sha256(db.read_bytes()).hexdigest())
    catalog = open_catalog(published, scratch)
    assert not catalog.allows(NAS, first)
    assert catalog.allows(NAS, second)


def test_the_unnamed_root_is_refused(published: Published) -> None:
    with pytest.raises(SettingError) as caught:
        Catalog(published.directory, [None, NAS])
    assert caught.value.setting == "media_root"


def _no_directory(d: Path) -> None:
    shutil.rmtree(d)


def _no_manifest(d: Path) -> None:
    (d / "manifest.json").unlink()


def _no_database(d: Path) -> None:
    (d / "catalog_read.db").unlink()


def _pieces_not_assembled(d: Path) -> None:
    (d / "catalog_read.db").unlink()
    (d / "catalog_read.db.parts").mkdir()


def _manifest_not_json(d: Path) -> None:
    (d / "manifest.json").write_bytes(b'{"snapshot_id": "snap-1", ')


def _manifest_a_list(d: Path) -> None:
    (d / "manifest.json").write_text("[]", encoding="utf-8")


def _manifest_not_utf8(d: Path) -> None:
    (d / "manifest.json").write_bytes(b'{"snapshot_id": "\xff"}')


def _no_snapshot_id(d: Path) -> None:
    rewrite_manifest(d, snapshot_id=None)


def _bad_db_sha256(d: Path) -> None:
    rewrite_manifest(d, db_sha256="ABC")


def _unknown_schema(d: Path) -> None:
    rewrite_manifest(d, schema_version=2)


def _database_changed(d: Path) -> None:
    with open(d / "catalog_read.db", "ab") as handle:
        handle.write(b"\0")


def _database_truncated(d: Path) -> None:
    db = d / "catalog_read.db"
    db.write_bytes(db.read_bytes()[: 4096 * 3])


def _vouched(d: Path, data: bytes) -> None:
    """A database file that the manifest vouches for (right sha256), whatever it holds."""
    (d / "catalog_read.db").write_bytes(data)
    rewrite_manifest(d, db_sha256=hashlib.sha256(data).hexdigest())


def _not_sqlite(d: Path) -> None:
    _vouched(d, b"not a database at all\n" * 400)


def _vouched_after(d: Path, statement: str, *, database: str = "catalog_read.db") -> None:
    """Run ``statement`` on a database in the snapshot's directory, then make the manifest vouch for that file."""
    db = d / database
    with sqlite3.connect(db) as conn:
        conn.execute(statement)
    conn.close()
    _vouched(d, db.read_bytes())


def _no_files_table(d: Path) -> None:
    _vouched_after(d, "CREATE TABLE catalog_tracks (song_id INTEGER PRIMARY KEY)", database="other.db")


def _no_status_column(d: Path) -> None:
    _vouched_after(d, "ALTER TABLE catalog_track_files DROP COLUMN status")


BROKEN: dict[str, tuple[Callable[[Path], None], str]] = {
    "no directory": (_no_directory, "no such directory"),
    "no manifest": (_no_manifest, "no manifest.json"),
    "no database": (_no_database, "no catalog_read.db"),
    "pieces not assembled": (_pieces_not_assembled, "no catalog_read.db (a clone holding catalog_read.db.parts/: assemble"),
    "manifest not JSON": (_manifest_not_json, "not a manifest"),
    "manifest a list": (_manifest_a_list, "not a manifest"),
    "manifest not UTF-8": (_manifest_not_utf8, "not a manifest"),
    "no snapshot_id": (_no_snapshot_id, "no snapshot_id"),
    "bad db_sha256": (_bad_db_sha256, "no db_sha256"),
    "unknown schema": (_unknown_schema, "schema_version 2"),
    "database changed": (_database_changed, "does not match manifest.json's db_sha256"),
    "database truncated": (_database_truncated, "does not match manifest.json's db_sha256"),
    "not SQLite": (_not_sqlite, "not a readable read model"),
    "no files table": (_no_files_table, "no catalog_track_files (the table)"),
    "no status column": (_no_status_column, "no catalog_track_files (the column(s) status)"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_a_snapshot_that_cannot_be_trusted_is_refused_in_one_line(
    published: Published, scratch: Path, case: str
) -> None:
    breaking, reason = BROKEN[case]
    breaking(published.directory)
    with pytest.raises(CatalogError) as caught:
        open_catalog(published, scratch)
    message = str(caught.value)
    assert message.startswith("catalog ") and reason in message, message
    assert "\n" not in message and str(published.directory) in message
    assert caught.value.path is not None
    assert list(scratch.iterdir()) == []


def test_a_new_snapshot_comes_into_force_on_refresh(published: Published, scratch: Path) -> None:
    catalog = open_catalog(published, scratch)
    old_id = catalog.snapshot_id
    gone, kept = published.listed()[:2]
    assert catalog.refresh() is False  # nothing changed
    published.set_status(gone, "inactive")
    new_id = published.export()
    assert new_id != old_id
    assert catalog.allows(NAS, gone)  # until the catalog looks again
    assert catalog.refresh() is True
    assert catalog.snapshot_id == new_id
    assert not catalog.allows(NAS, gone) and catalog.allows(NAS, kept)
    published.set_status(gone, "active")
    published.export()
    assert catalog.refresh() is True and catalog.snapshot_id == old_id
    assert catalog.allows(NAS, gone)
    assert list(scratch.iterdir()) == []


def test_a_corrupt_new_snapshot_keeps_the_last_good_one_and_is_logged_once(
    published: Published, scratch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = open_catalog(published, scratch)
    good_id = catalog.snapshot_id
    listed = published.listed()
    published.set_status(listed[0], "inactive")
    published.export()
    _database_truncated(published.directory)  # the new manifest, a damaged database
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert catalog.refresh() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "does not match" in warnings[0].getMessage() and f"snapshot {good_id} stays in force" in warnings[0].getMessage()
    assert catalog.snapshot_id == good_id and catalog.allows(NAS, listed[0])
    caplog.clear()
    assert catalog.refresh() is False
    assert caplog.records == []  # the same broken pair is not reported again
    published.export()  # the next export repairs the directory
    assert catalog.refresh() is True
    assert not catalog.allows(NAS, listed[0])
    assert any("in force" in r.getMessage() for r in caplog.records)
    assert list(scratch.iterdir()) == []


def test_a_split_clone_s_manifest_may_lead_its_assembled_database_for_a_while(
    published: Published, scratch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """git checks out a split snapshot's manifest before the hook assembles its database: not a broken snapshot."""
    (published.directory / "catalog_read.db.parts").mkdir()  # a clone of the split layout
    catalog = Catalog(published.directory, (NAS,), scratch_dir=scratch, assembly_grace=0.3)
    good_id = catalog.snapshot_id
    old_db = (published.directory / "catalog_read.db").read_bytes()
    published.set_status(published.listed()[0], "inactive")
    published.export()
    new_db = (published.directory / "catalog_read.db").read_bytes()
    (published.directory / "catalog_read.db").write_bytes(old_db)  # the new manifest, the database not yet assembled
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert catalog.refresh() is False and catalog.snapshot_id == good_id
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]  # the hook is about to assemble it

    (published.directory / "catalog_read.db").write_bytes(new_db)  # assembled
    assert catalog.refresh() is True and catalog.snapshot_id != good_id

    # A database that never gets assembled is reported once the grace has passed.
    newer_id = catalog.snapshot_id
    published.set_status(published.listed()[0], "inactive")
    published.export()
    (published.directory / "catalog_read.db").write_bytes(new_db)
    assert catalog.refresh() is False
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    time.sleep(0.4)
    assert catalog.refresh() is False
    (warning,) = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "not assembled after 0.3 s" in warning and f"snapshot {newer_id} stays in force" in warning
    assert list(scratch.iterdir()) == []


def test_a_half_published_pair_waits_for_its_manifest(published: Published, scratch: Path, tmp_path: Path) -> None:
    """A new database under the old manifest (an export or a git checkout between its two files) changes nothing."""
    catalog = open_catalog(published, scratch)
    good_id = catalog.snapshot_id
    gone = published.listed()[0]
    published.set_status(gone, "inactive")
    elsewhere = tmp_path / "next"
    new_id = published.export(elsewhere)
    os.replace(elsewhere / "catalog_read.db", published.directory / "catalog_read.db")
    assert catalog.refresh() is False
    assert catalog.snapshot_id == good_id and catalog.allows(NAS, gone)
    os.replace(elsewhere / "manifest.json", published.directory / "manifest.json")
    assert catalog.refresh() is True
    assert catalog.snapshot_id == new_id and not catalog.allows(NAS, gone)


def test_a_new_manifest_before_its_database_is_not_trusted(
    published: Published, scratch: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = open_catalog(published, scratch)
    gone = published.listed()[0]
    published.set_status(gone, "inactive")
    elsewhere = tmp_path / "next"
    new_id = published.export(elsewhere)
    os.replace(elsewhere / "manifest.json", published.directory / "manifest.json")
    caplog.set_level(logging.WARNING, logger=LOGGER)
    assert catalog.refresh() is False
    assert catalog.allows(NAS, gone)
    assert "does not match" in caplog.text
    os.replace(elsewhere / "catalog_read.db", published.directory / "catalog_read.db")
    assert catalog.refresh() is True
    assert catalog.snapshot_id == new_id and not catalog.allows(NAS, gone)


def test_a_touched_snapshot_is_not_read_again(
    published: Published, scratch: Path, caplog: pytest.LogCaptureFixture
) -> None:
    catalog = open_catalog(published, scratch)
    index = catalog.index
    later = time.time() + 10
    for name in ("manifest.json", "catalog_read.db"):
        os.utime(published.directory / name, (later, later))
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert catalog.refresh() is False
    assert catalog.index is index and caplog.records == []


def test_the_database_is_not_left_open(published: Published, scratch: Path) -> None:
    """Only the scratch copy is read; neither it nor the published file stays open (Windows could not replace it)."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc/self/fd")
    published.set_status(published.listed()[0], "inactive")
    catalog = open_catalog(published, scratch)
    published.export()
    assert catalog.refresh() is True

    def open_paths() -> set[str]:
        found = set()
        for entry in fd_dir.iterdir():
            try:
                found.add(os.readlink(entry))
            except OSError:
                pass
        return found

    opened = open_paths()
    assert not any(path.endswith("catalog_read.db") or path.startswith(str(scratch)) for path in opened)


def test_the_watcher_brings_a_new_snapshot_into_force(published: Published, scratch: Path) -> None:
    catalog = Catalog(published.directory, [NAS], scratch_dir=scratch, interval=0.05)
    catalog.start()
    try:
        gone = published.listed()[0]
        published.set_status(gone, "inactive")
        new_id = published.export()
        deadline = time.monotonic() + 30
        while catalog.snapshot_id != new_id and time.monotonic() < deadline:
            time.sleep(0.05)
        assert catalog.snapshot_id == new_id
        assert not catalog.allows(NAS, gone)
    finally:
        catalog.close()
    assert catalog._thread is None


def test_read_catalog_needs_no_backend(published: Published, scratch: Path) -> None:
    """With no root named, nothing is indexed, yet the snapshot is still checked whole."""
    index = read_catalog(published.directory, [], scratch_dir=scratch)
    assert index.counts == {} and not index.allows(NAS, published.listed()[0])
    assert index.db_sha256 == published.manifest()["db_sha256"]
