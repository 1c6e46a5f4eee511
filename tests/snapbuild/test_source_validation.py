"""Bad input: each case is a one-line error naming table, column and row, or a counted repair.

Every failing case runs against a target that already holds a good snapshot
and checks that the snapshot is still byte-for-byte intact afterwards.
"""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from snapbuild.errors import SourceError, TargetError
from snapbuild.export import run_export

from .conftest import GENERATED_AT, LOOSE_SCHEMA, CATALOG_ROWS, SOURCE_SCHEMA, write_catalog


def export_error(source: Path, good_snapshot, error: type[Exception] = SourceError) -> Exception:
    """Export ``source`` over a good snapshot: it must fail with one line and leave the snapshot intact."""
    with pytest.raises(error) as caught:
        run_export(source, good_snapshot.dir, generated_at=GENERATED_AT)
    assert "\n" not in str(caught.value)
    good_snapshot.assert_intact()
    return caught.value


def export_fails(source: Path, good_snapshot, error: type[Exception] = SourceError) -> str:
    """:func:`export_error`'s one-line message."""
    return str(export_error(source, good_snapshot, error))


def assert_names_the_row(error: SourceError, where: str) -> None:
    """The error's data names what ``where`` says: ``"songs.name (songs id 10)"`` -> songs, name, 10."""
    match = re.match(r"(\w+)\.(\w+) \((?:\w+ )?(?:id|rowid) (\d+)\)", where)
    assert match is not None, where
    table, column, row = match.groups()
    assert (error.table, error.column, error.row) == (table, column, int(row))


def export_rows(source: Path, target: Path, sql: str) -> tuple[dict[str, int], list[tuple]]:
    result = run_export(source, target, generated_at=GENERATED_AT)
    conn = sqlite3.connect(target / "catalog_read.db")
    try:
        return result.manifest.repairs, conn.execute(sql).fetchall()
    finally:
        conn.close()


# --- the file itself --------------------------------------------------------------------------


def test_missing_source_file(good_snapshot, tmp_path: Path) -> None:
    assert "not found" in export_fails(tmp_path / "nope.db", good_snapshot)


def test_source_path_is_a_directory(good_snapshot, tmp_path: Path) -> None:
    (tmp_path / "adir").mkdir()
    assert "is a directory" in export_fails(tmp_path / "adir", good_snapshot)


def test_not_a_database(good_snapshot, tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"PK\x03\x04 this is a zip file, not a catalog" * 100)
    assert "not a SQLite database" in export_fails(bad, good_snapshot)


def test_sqlite_header_then_garbage(good_snapshot, tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 40)
    message = export_fails(bad, good_snapshot)
    assert "bad.db" in message


def test_truncated_database(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS, "create table filler (x); insert into filler values (zeroblob(50000));")
    data = source.read_bytes()
    source.write_bytes(data[: len(data) // 2])
    assert "truncated" in export_fails(source, good_snapshot)


def test_empty_file(good_snapshot, tmp_path: Path) -> None:
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    assert "empty (0 bytes)" in export_fails(empty, good_snapshot)


def test_database_without_tables(good_snapshot, tmp_path: Path) -> None:
    path = tmp_path / "notables.db"
    conn = sqlite3.connect(path)
    conn.execute("pragma user_version = 3")  # writes a valid header, no tables
    conn.close()
    assert "no tables" in export_fails(path, good_snapshot)


def export_in_a_process(source: Path, target: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``snapbuild export`` as its own process, so that a hang fails the test instead of stalling the run."""
    try:
        return subprocess.run(
            [sys.executable, "-m", "snapbuild", "export", "--db", str(source), "--target-dir", str(target),
             "--generated-at", GENERATED_AT],
            capture_output=True, text=True, encoding="utf-8", timeout=timeout, stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"export of {source.name} still ran after {timeout:g} s")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_as_the_source_is_refused_without_waiting_for_a_writer(good_snapshot, tmp_path: Path) -> None:
    fifo = tmp_path / "catalog.db"
    os.mkfifo(fifo)
    result = export_in_a_process(fifo, good_snapshot.dir)
    assert result.returncode == 1
    assert result.stderr.strip() == f"snapbuild: error: source catalog is not a regular file (a FIFO): {fifo}"
    good_snapshot.assert_intact()


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_device_as_the_source_is_refused(good_snapshot) -> None:
    message = export_fails(Path("/dev/zero"), good_snapshot)
    assert message == "source catalog is not a regular file (a character device): /dev/zero"


def test_a_symlink_to_a_catalog_is_a_fine_source(small_catalog: Path, tmp_path: Path) -> None:
    link = tmp_path / "link.db"
    try:
        link.symlink_to(small_catalog)
    except OSError:
        pytest.skip("cannot create symlinks here")
    assert run_export(link, tmp_path / "s", generated_at=GENERATED_AT).manifest.track_count == 1


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_target_the_export_cannot_write_says_so(small_catalog: Path) -> None:
    with pytest.raises(TargetError) as caught:
        run_export(small_catalog, Path("/proc/self"), generated_at=GENERATED_AT, busy_timeout=0.1)
    message = str(caught.value)
    assert "another export" not in message
    assert message.startswith("cannot create files in the target directory /proc/self: "), message


def test_target_path_is_a_file(small_catalog: Path, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("not a directory", encoding="utf-8")
    with pytest.raises(TargetError, match="target path is a file"):
        run_export(small_catalog, target, generated_at=GENERATED_AT)
    assert target.read_text(encoding="utf-8") == "not a directory"


# --- schema -----------------------------------------------------------------------------------


def test_missing_tables_and_columns_are_all_listed(good_snapshot, tmp_path: Path) -> None:
    schema = (
        SOURCE_SCHEMA.replace("create table pool_playlists (pool_id integer not null, playlist_id integer not null);", "")
        .replace("    cover_url text,\n    play_count", "    play_count")
        .replace("    locator text not null,\n", "")
        .replace("create table playlist_pools", "create table playlist_pools_renamed")
    )
    source = write_catalog(tmp_path / "c.db", schema=schema)
    message = export_fails(source, good_snapshot)
    assert "missing tables: playlist_pools, pool_playlists" in message
    assert "missing columns: playlists.cover_url, file_locations.locator" in message


def test_a_required_table_that_is_a_view_is_refused(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS,
        "alter table playlist_songs rename to playlist_songs_real; "
        "create view playlist_songs as select playlist_id, song_id, position from playlist_songs_real;",
    )
    message = export_fails(source, good_snapshot)
    assert message == "source catalog's playlist_songs is a view, not a table: the export reads tables only"


def test_a_recursive_view_is_refused_at_once_and_leaves_no_temporary_file(good_snapshot, tmp_path: Path) -> None:
    """A view that never ends used to run until killed, leaving the temporary databases behind."""
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS,
        "alter table playlist_songs rename to playlist_songs_real; "
        "create view playlist_songs as with recursive r(x) as (select 1 union all select x + 1 from r) "
        "select 1 as playlist_id, 10 as song_id, x as position from r;",
    )
    result = export_in_a_process(source, good_snapshot.dir)
    assert result.returncode == 1
    assert result.stderr.strip().endswith("playlist_songs is a view, not a table: the export reads tables only")
    good_snapshot.assert_intact()


def test_a_virtual_table_is_refused(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS,
        "alter table pool_playlists rename to pool_playlists_real; "
        "create virtual table pool_playlists using fts5(pool_id, playlist_id);",
    )
    message = export_fails(source, good_snapshot)
    assert message == "source catalog's pool_playlists is a virtual table, not a table: the export reads tables only"


def test_extra_tables_and_columns_are_ignored(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db",
        CATALOG_ROWS,
        "alter table songs add column lyrics text; create table audit_log (x); "
        "alter table file_locations add column checked_at text;",
    )
    assert run_export(source, tmp_path / "s", generated_at=GENERATED_AT).manifest.track_count == 1


# --- values -----------------------------------------------------------------------------------


def test_invalid_json_in_config_json(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, "insert into storage_backends values (3, 'x', 'nas', null, '{\"a\": ');"
    )
    error = export_error(source, good_snapshot)
    assert "invalid JSON in storage_backends.config_json (id 3)" in str(error)
    assert_names_the_row(error, "storage_backends.config_json (id 3)")


def test_object_storage_without_public_base_url(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, "insert into storage_backends values (4, 'x', 'object_storage', null, '{}');"
    )
    assert "storage_backends.config_json (id 4) has no public_base_url" in export_fails(source, good_snapshot)


@pytest.mark.parametrize(
    "script, where",
    [
        ("update songs set name = cast(x'48e9' as text) where id = 10", "songs.name (songs id 10)"),
        ("update songs set metadata_json = cast(x'7b22c3' as text) where id = 10", "songs.metadata_json (songs id 10)"),
        ("update playlists set description = cast(x'ff' as text) where id = 1", "playlists.description (playlists id 1)"),
        ("update storage_backends set name = cast(x'6d61696e2dff' as text) where id = 2", "storage_backends.name (id 2)"),
        (
            "update storage_backends set config_json = cast(x'7b2270223a2022e6b5227d' as text) where id = 2",
            "storage_backends.config_json (id 2)",
        ),
        ("update file_assets set quality_label = cast(x'c0' as text) where id = 7", "file_assets.quality_label (file_locations id 9)"),
        (
            "update file_locations set locator = cast(x'6d75736963ffe6b5b7' as text) where id = 9",
            "file_locations.locator (file_locations id 9)",
        ),
        (
            "update playlist_pools set name = cast(x'e6b5' as text) where id = 5",
            "playlist_pools.name (id 5)",
        ),
    ],
)
def test_invalid_utf8_names_table_column_and_row(good_snapshot, tmp_path: Path, script: str, where: str) -> None:
    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS, script)
    error = export_error(source, good_snapshot)
    assert f"invalid UTF-8 in {where}" in str(error)
    assert_names_the_row(error, where)


def test_invalid_utf8_is_found_far_into_a_big_table(good_snapshot, tmp_path: Path) -> None:
    songs = "\n".join(
        f"insert into songs values ({i}, 'p', '{i}', '歌 {i}', null, null, null, null);" for i in range(1, 120_001, 1000)
    )
    source = write_catalog(tmp_path / "c.db", songs, "insert into songs values (200000, 'p', 'x', cast(x'c328' as text), null, null, null, null);")
    assert "invalid UTF-8 in songs.name (songs id 200000)" in export_fails(source, good_snapshot)


@pytest.mark.parametrize(
    "script, where",
    [
        ("insert into songs values (11, 'p', '1', null, null, null, null, null)", "songs.name (id 11)"),
        ("insert into playlists values (2, null, '1', 'x', null, null, 0, 0)", "playlists.platform (id 2)"),
        ("insert into playlist_songs values (1, 10, null)", "playlist_songs.position (rowid 2)"),
        ("insert into file_locations values (12, 7, 2, null, 'active', 1)", "file_locations.locator (id 12)"),
        ("insert into file_locations values (13, 7, 2, 'x', 'active', null)", "file_locations.is_primary (id 13)"),
        ("insert into storage_backends values (3, null, 'nas', null, null); "
         "insert into file_locations values (14, 7, 3, 'x', 'active', 1)", "storage_backends.name (id 3)"),
        ("insert into playlist_pools values (6, 'k', 'toplist', null, 'n', null, null)", "playlist_pools.external_id (id 6)"),
    ],
)
def test_null_where_the_read_model_needs_a_value(good_snapshot, tmp_path: Path, script: str, where: str) -> None:
    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS, script, schema=LOOSE_SCHEMA)
    error = export_error(source, good_snapshot)
    assert f"NULL in {where}" in str(error)
    assert_names_the_row(error, where)


def test_null_in_an_inactive_location_is_not_exported_and_fine(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, "insert into file_locations values (12, 7, 2, null, 'inactive', null)",
        schema=LOOSE_SCHEMA,
    )
    assert run_export(source, tmp_path / "s", generated_at=GENERATED_AT).manifest.file_count == 1


def test_duplicate_ids_in_an_entity_table(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, "insert into songs values (10, 'p', '2', 'again', null, null, null, null)",
        schema=LOOSE_SCHEMA,
    )
    error = export_error(source, good_snapshot)
    assert "duplicate id in songs.id (id 10)" in str(error)
    assert_names_the_row(error, "songs.id (id 10)")


# --- references and positions: documented, counted repairs --------------------------------------


SONGS = "\n".join(f"insert into songs values ({i}, 'p', '{i}', 's{i}', null, null, null, null);" for i in (11, 12, 13))


def test_playlist_rows_naming_missing_songs_or_playlists_are_dropped_and_counted(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db",
        CATALOG_ROWS,
        SONGS,
        """
        insert into playlist_songs values (1, 11, 2);
        insert into playlist_songs values (1, 999, 3);   -- song 999 does not exist
        insert into playlist_songs values (1, 8, 4);     -- nor 8 (below the lowest id: a range check)
        insert into playlist_songs values (1, -1, 5);    -- nor -1
        insert into playlist_songs values (77, 12, 1);   -- playlist 77 does not exist
        insert into playlist_songs values (77, 998, 2);  -- neither exists
        """,
    )
    repairs, got = export_rows(source, tmp_path / "s", "select * from catalog_playlist_tracks")
    assert got == [(1, 1, 10), (1, 2, 11)]
    assert repairs == {"playlist_tracks_missing_playlist": 2, "playlist_tracks_missing_song": 3}


def test_duplicate_playlist_rows_are_dropped_and_counted(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, SONGS,
        "insert into playlist_songs values (1, 10, 1); insert into playlist_songs values (1, 10, 1); "
        "insert into playlist_songs values (1, 11, 2);",
    )
    repairs, got = export_rows(source, tmp_path / "s", "select * from catalog_playlist_tracks")
    assert got == [(1, 1, 10), (1, 2, 11)]
    assert repairs == {"playlist_tracks_duplicate_rows": 2}


def test_two_songs_at_one_position_are_kept_in_song_order_and_counted(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, SONGS,
        "insert into playlist_songs values (1, 13, 2); insert into playlist_songs values (1, 11, 2); "
        "insert into playlist_songs values (1, 12, 2);",
    )
    repairs, got = export_rows(source, tmp_path / "s", "select * from catalog_playlist_tracks")
    assert got == [(1, 1, 10), (1, 2, 11), (1, 2, 12), (1, 2, 13)]
    assert repairs == {"playlist_position_ties": 2}


def test_active_locations_with_missing_asset_backend_or_song_are_dropped_and_counted(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db",
        CATALOG_ROWS,
        """
        insert into file_assets values (8, 555, 'hq', 'mp3', 1);                   -- song 555 is missing
        insert into file_locations values (20, 404, 2, 'no-asset.mp3', 'active', 1);
        insert into file_locations values (21, 7, 99, 'no-backend.mp3', 'active', 0);
        insert into file_locations values (22, 8, 2, 'no-song.mp3', 'active', 1);
        insert into file_locations values (23, 404, 2, 'inactive-no-asset.mp3', 'inactive', 0);
        """,
    )
    repairs, got = export_rows(source, tmp_path / "s", "select location_id from catalog_track_files")
    assert got == [(9,)]
    assert repairs == {
        "track_files_missing_asset": 1,
        "track_files_missing_backend": 1,
        "track_files_missing_song": 1,
    }


def test_toplist_rows_naming_missing_playlists_or_repeated_are_dropped_and_counted(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db",
        CATALOG_ROWS,
        """
        insert into pool_playlists values (5, 1);       -- the same row again
        insert into pool_playlists values (5, 404);     -- playlist 404 does not exist
        insert into pool_playlists values (404, 1);     -- pool 404 does not exist: not a toplist, ignored
        """,
    )
    repairs, got = export_rows(source, tmp_path / "s", "select toplist_id, playlist_id from catalog_toplists")
    assert got == [("kuwo_top_16", 1)]
    assert repairs == {"toplists_duplicate_rows": 1, "toplists_missing_playlist": 1}


def test_repairs_reach_the_manifest_and_are_deterministic(tmp_path: Path) -> None:
    script = "insert into playlist_songs values (1, 999, 3); insert into playlist_songs values (1, 10, 1);"
    first = write_catalog(tmp_path / "a.db", CATALOG_ROWS, script)
    second = write_catalog(tmp_path / "b.db", script, CATALOG_ROWS)
    one = run_export(first, tmp_path / "one", generated_at=GENERATED_AT)
    two = run_export(second, tmp_path / "two", generated_at=GENERATED_AT)
    assert one.manifest.repairs == one.repairs == two.repairs == {
        "playlist_tracks_duplicate_rows": 1, "playlist_tracks_missing_song": 1,
    }
    assert (tmp_path / "one" / "catalog_read.db").read_bytes() == (tmp_path / "two" / "catalog_read.db").read_bytes()


@pytest.mark.parametrize(
    "song_ids",
    [
        (10, 11, 12),  # contiguous: a range test
        (10, 12, 14),  # gaps: the byte map
        (10, 5_000_000, 9_000_000),  # sparse: SQLite's own set
    ],
    ids=["range", "map", "set"],
)
def test_missing_songs_are_found_whatever_the_id_layout(tmp_path: Path, song_ids: tuple[int, ...]) -> None:
    songs = "\n".join(f"insert into songs values ({i}, 'p', '{i}', 's', null, null, null, null);" for i in song_ids[1:])
    missing = (9, 13, 4_999_999, 9_000_001, -3)
    links = "\n".join(
        f"insert into playlist_songs values (1, {song}, {position});"
        for position, song in enumerate((*song_ids, *missing), start=2)
    )
    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS, songs, links)  # CATALOG_ROWS: song 10 at position 1
    repairs, got = export_rows(source, tmp_path / "s", "select song_id from catalog_playlist_tracks")
    assert got == [(10,), *((song,) for song in song_ids)]
    assert repairs == {"playlist_tracks_missing_song": len(missing)}


def test_a_non_integer_id(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, "insert into songs values ('x-11', 'p', '2', 'n', null, null, null, null)",
        schema=LOOSE_SCHEMA,
    )
    assert "songs.id must be an integer (found 'x-11')" in export_fails(source, good_snapshot)


@pytest.mark.parametrize(
    "script, where",
    [
        ("insert into playlist_songs values (1, 10, 'first')", "playlist_songs.position (rowid 2): a text value"),
        ("update songs set file_size_bytes = 'big' where id = 10", "songs.file_size_bytes (id 10): a text value"),
        ("update songs set file_size_bytes = 1.5 where id = 10", "songs.file_size_bytes (id 10): a real value"),
        ("update songs set name = x'00ff' where id = 10", "songs.name (id 10): a blob value"),
        ("update playlists set play_count = 'many' where id = 1", "playlists.play_count (id 1): a text value"),
        ("update file_locations set is_primary = x'00ff' where id = 9", "file_locations.is_primary (id 9): a blob value"),
        ("update file_assets set quality_label = x'01' where id = 7", "file_assets.quality_label (id 7): a blob value"),
        ("update playlist_pools set external_id = x'0102' where id = 5", "playlist_pools.external_id (id 5): a blob value"),
    ],
)
def test_values_of_the_wrong_type(good_snapshot, tmp_path: Path, script: str, where: str) -> None:
    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS, script)
    error = export_error(source, good_snapshot)
    assert f"wrong type in {where}" in str(error)
    assert_names_the_row(error, where)


def test_numbers_written_as_text_are_taken_as_numbers(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, "update songs set file_size_bytes = '42', name = 12 where id = 10", schema=LOOSE_SCHEMA
    )
    repairs, got = export_rows(source, tmp_path / "s", "select name, file_size_bytes from catalog_tracks")
    assert got == [("12", 42)] and repairs == {}


def test_ids_that_are_not_integers_name_no_row(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, SONGS,
        "insert into playlist_songs values (1, 'abc', 2); insert into playlist_songs values (1, 11.5, 3);",
    )
    repairs, got = export_rows(source, tmp_path / "s", "select * from catalog_playlist_tracks")
    assert got == [(1, 1, 10)]
    assert repairs == {"playlist_tracks_missing_song": 2}


def test_a_duplicate_row_does_not_hide_a_wrong_type(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS,
        "insert into playlist_songs values (1, 10, 1); insert into playlist_songs values (1, 10, x'01');",
    )
    assert "wrong type in playlist_songs.position" in export_fails(source, good_snapshot)
