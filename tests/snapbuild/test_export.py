"""export_snapshot / run_export: the read model's contract, ids, repairs and determinism."""

from __future__ import annotations

import json
import os
import random
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from snapbuild import SnapshotManifest, export_snapshot
from snapbuild.errors import UsageError
from snapbuild.export import recover_target, run_export
from snapbuild.manifest import PENDING_MANIFEST_NAME as PENDING_MANIFEST
from snapbuild.urls import locator_problem, public_url
from snapbuild.verify import verify_directory

from .conftest import FILES_ROWS, GENERATED_AT, CATALOG_ROWS, write_catalog

CHINESE_TEXT_ROWS = """
insert into playlists values (1, 'netease', '18165', '测试歌单', 'desc', 'https://img/1.jpg', 99, 1);
insert into songs values (10, 'netease', '65800', '海屿你', '马也 / Crabbit', 'flac', 123456, '{"duration_ms": 0}');
insert into playlist_songs values (1, 10, 1);
"""


def rows(db: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_export_snapshot_writes_read_model_and_manifest(tmp_path: Path) -> None:
    """Counts and a content-derived snapshot id from a small catalog with Chinese text."""
    source_db = write_catalog(tmp_path / "catalogsync.db", CHINESE_TEXT_ROWS)
    target_dir = tmp_path / "snapshot"
    manifest = export_snapshot(source_db=source_db, target_dir=target_dir)
    assert (target_dir / "catalog_read.db").exists()
    assert (target_dir / "manifest.json").exists()
    assert manifest.playlist_count == 1
    assert manifest.track_count == 1
    assert rows(
        target_dir / "catalog_read.db", "select playlist_id, name, play_count, song_count from catalog_playlists"
    ) == [(1, "测试歌单", 99, 1)]
    payload = json.loads((target_dir / "manifest.json").read_text(encoding="utf-8"))
    assert payload["snapshot_id"].startswith("snap-")
    assert payload["snapshot_id"] == manifest.snapshot_id


def test_export_snapshot_writes_track_files_and_toplists(small_catalog: Path, tmp_path: Path) -> None:
    """Each read-model table holds the rows the source implies."""
    target_dir = tmp_path / "snapshot"
    export_snapshot(source_db=small_catalog, target_dir=target_dir)
    db = target_dir / "catalog_read.db"
    assert rows(db, "select song_id, backend_type, backend_name, locator from catalog_track_files") == [
        (10, "object_storage", "main-s3", "music/netease/test.flac")
    ]
    assert rows(db, "select toplist_id, group_name, song_count from catalog_toplists") == [
        ("kuwo_top_16", "酷我榜单", 1)
    ]


def test_snapshot_id_changes_with_the_content(tmp_path: Path) -> None:
    first = write_catalog(tmp_path / "a.db", CHINESE_TEXT_ROWS)
    second = write_catalog(tmp_path / "b.db", CHINESE_TEXT_ROWS.replace("海屿你", "海屿你 (live)"))
    one = export_snapshot(first, tmp_path / "one", generated_at=GENERATED_AT)
    two = export_snapshot(second, tmp_path / "two", generated_at=GENERATED_AT)
    assert one.snapshot_id.startswith("snap-") and two.snapshot_id.startswith("snap-")
    assert len(one.snapshot_id) == len("snap-") + 16
    assert one.snapshot_id != two.snapshot_id
    assert one.snapshot_id == "snap-" + one.content_digest[:16]
    # Same counts, different content: an id built from counts ("snap-playlists-1-tracks-1") could not tell them apart.
    assert (one.playlist_count, one.track_count) == (two.playlist_count, two.track_count)


def test_manifest_carries_what_consumers_need(small_catalog: Path, tmp_path: Path) -> None:
    manifest = export_snapshot(small_catalog, tmp_path / "s", generated_at=GENERATED_AT)
    assert manifest.generated_at == GENERATED_AT
    assert manifest.sqlite_version == sqlite3.sqlite_version
    assert manifest.schema_version == 1
    assert (manifest.file_count, manifest.cover_count) == (1, 1)
    assert manifest.table_counts == {
        "catalog_playlist_tracks": 1,
        "catalog_playlists": 1,
        "catalog_toplists": 1,
        "catalog_track_files": 1,
        "catalog_tracks": 1,
    }
    assert manifest.repairs == {}
    on_disk = SnapshotManifest.read(tmp_path / "s" / "manifest.json")
    assert on_disk == manifest
    assert (tmp_path / "s" / "manifest.json").read_text(encoding="utf-8") == manifest.to_json()
    verify_directory(tmp_path / "s")


# --- the read model's shape: keys, order, indexes ---------------------------------------------

EXPECTED_KEYS = {
    "catalog_playlists": ["playlist_id"],
    "catalog_tracks": ["song_id"],
    "catalog_playlist_tracks": ["playlist_id", "position", "song_id"],
    "catalog_track_files": ["location_id"],
    "catalog_toplists": ["toplist_id", "playlist_id"],
}


def test_tables_are_keyed_by_their_natural_keys_declared_first(small_catalog: Path, tmp_path: Path) -> None:
    export_snapshot(small_catalog, tmp_path / "s", generated_at=GENERATED_AT)
    conn = sqlite3.connect(tmp_path / "s" / "catalog_read.db")
    try:
        for table, key in EXPECTED_KEYS.items():
            info = conn.execute(f"pragma table_info({table})").fetchall()
            pk = [row[1] for row in sorted((r for r in info if r[5]), key=lambda r: r[5])]
            assert pk == key, table
            # Key columns come first, in key order (SQLite 3.40 quick_check bug otherwise).
            assert [row[1] for row in info[: len(key)]] == key, table
        without_rowid = {
            name
            for (name,) in conn.execute("select name from sqlite_master where sql like '%WITHOUT ROWID%'")
        }
        assert without_rowid == {"catalog_playlist_tracks", "catalog_toplists"}
        plan = " ".join(
            str(row) for row in conn.execute("explain query plan select * from catalog_track_files where song_id = 10")
        )
        assert "idx_catalog_track_files_song_id" in plan
        assert conn.execute("pragma quick_check").fetchall() == [("ok",)]
        assert conn.execute("pragma integrity_check").fetchall() == [("ok",)]
        assert conn.execute("pragma user_version").fetchone() == (1,)
        # One write transaction: the header's change counter stays at 1.
        assert conn.execute("pragma data_version").fetchone() is not None
    finally:
        conn.close()
    header = (tmp_path / "s" / "catalog_read.db").read_bytes()[:100]
    assert int.from_bytes(header[24:28], "big") == 1


def test_plan_columns_keep_their_names(small_catalog: Path, tmp_path: Path) -> None:
    export_snapshot(small_catalog, tmp_path / "s", generated_at=GENERATED_AT)
    db = tmp_path / "s" / "catalog_read.db"
    columns = {
        table: [row[1] for row in rows(db, f"pragma table_info({table})")] for table in EXPECTED_KEYS
    }
    assert set(columns["catalog_playlists"]) == {
        "playlist_id", "platform", "remote_playlist_id", "name", "description", "cover_url", "play_count",
        "song_count",
    }
    assert set(columns["catalog_tracks"]) == {
        "song_id", "platform", "remote_song_id", "name", "singers", "ext", "file_size_bytes", "metadata_json",
    }
    assert set(columns["catalog_track_files"]) == {
        "location_id", "song_id", "quality_label", "ext", "file_size_bytes", "backend_type", "backend_name",
        "locator", "public_url", "status", "is_primary",
    }
    assert set(columns["catalog_toplists"]) == {
        "toplist_id", "playlist_id", "platform", "name", "description", "cover_url", "play_count", "song_count",
        "group_name",
    }


def test_public_url_percent_encodes_segments_and_joins_with_one_slash(tmp_path: Path) -> None:
    source = write_catalog(tmp_path / "c.db", FILES_ROWS)
    export_snapshot(source, tmp_path / "s", generated_at=GENERATED_AT)
    got = rows(tmp_path / "s" / "catalog_read.db", "select location_id, public_url from catalog_track_files")
    assert got == [
        (20, "https://cdn.example/music/a%20b/%231%3F.mp3"),
        (21, None),  # NAS files have no public URL
        (22, "https://cdn.example/music/%E6%B5%B7%E5%B1%BF%E4%BD%A0/100%25.mp3"),
        (24, "https://cdn.example/music/plain/ok-file_1.2~x.mp3"),
    ]  # 23 is inactive: not exported


def test_public_url_python_twin() -> None:
    assert public_url("https://cdn.example/music/", "a b/#1?.mp3") == "https://cdn.example/music/a%20b/%231%3F.mp3"
    assert public_url("https://cdn.example", "x.mp3") == "https://cdn.example/x.mp3"


def test_sql_and_python_percent_encoding_agree(tmp_path: Path) -> None:
    """The read model's public_url equals the Python twin, which equals urllib's quote."""
    alphabet = "aZ09-._~/ #?%&'+海屿你é\u00a0:;=@!$(),*[]"
    rng = random.Random(7)
    locators = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(300)})
    # Plain object paths only: the others are refused (see test_locators.py).
    locators = [loc for loc in locators if locator_problem(loc.lstrip("/")) is None]
    script = ["insert into songs values (1, 'p', '1', 'n', null, null, null, null);",
              "insert into storage_backends values (2, 's3', 'object_storage', null, '{\"public_base_url\": \"https://h/m//\"}');",
              "insert into file_assets values (1, 1, null, null, null);"]
    for i, loc in enumerate(locators):
        script.append(f"insert into file_locations values ({i + 1}, 1, 2, '{loc.replace(chr(39), chr(39) * 2)}', 'active', 1);")
    source = write_catalog(tmp_path / "c.db", "\n".join(script))
    export_snapshot(source, tmp_path / "s", generated_at=GENERATED_AT)
    got = dict(rows(tmp_path / "s" / "catalog_read.db", "select locator, public_url from catalog_track_files"))
    assert got == {loc: public_url("https://h/m//", loc) for loc in locators}


def test_toplists_hold_many_playlists_per_pool(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db",
        """
        insert into playlists values (1, 'kuwo', '16', 'A', null, null, 5, 2);
        insert into playlists values (2, 'kuwo', '17', 'B', null, 'https://img/b.jpg', null, null);
        insert into playlists values (3, 'kuwo', '18', 'C', null, null, 1, 1);
        insert into playlist_pools values (5, 'kuwo', 'toplist', 'kuwo_top', '酷我榜单', null, '{}');
        insert into playlist_pools values (6, 'kuwo', 'featured', 'kuwo_feat', 'Featured', null, '{}');
        insert into pool_playlists values (5, 2);
        insert into pool_playlists values (5, 1);
        insert into pool_playlists values (6, 3);
        """,
    )
    manifest = export_snapshot(source, tmp_path / "s", generated_at=GENERATED_AT)
    got = rows(
        tmp_path / "s" / "catalog_read.db",
        "select toplist_id, playlist_id, name, play_count, song_count, group_name from catalog_toplists",
    )
    assert got == [("kuwo_top", 1, "A", 5, 2, "酷我榜单"), ("kuwo_top", 2, "B", 0, 0, "酷我榜单")]
    assert manifest.cover_count == 1


def test_playlist_tracks_come_in_playlist_order(tmp_path: Path) -> None:
    songs = "\n".join(f"insert into songs values ({i}, 'p', '{i}', 's{i}', null, null, null, null);" for i in range(1, 6))
    links = """
        insert into playlists values (1, 'p', '1', 'one', null, null, 0, 3);
        insert into playlist_songs values (1, 5, 3);
        insert into playlist_songs values (1, 3, 1);
        insert into playlist_songs values (1, 4, 2);
    """
    source = write_catalog(tmp_path / "c.db", songs, links)
    export_snapshot(source, tmp_path / "s", generated_at=GENERATED_AT)
    got = rows(tmp_path / "s" / "catalog_read.db", "select song_id from catalog_playlist_tracks where playlist_id = 1")
    assert got == [(3,), (4,), (5,)]


# --- determinism ------------------------------------------------------------------------------


def catalog_statements(seed: int = 1) -> list[tuple[str, tuple]]:
    """A small but varied logical catalog, as (insert sql, values) pairs."""
    rng = random.Random(seed)
    out: list[tuple[str, tuple]] = []
    for pid in range(1, 31):
        out.append(("insert into playlists values (?, ?, ?, ?, ?, ?, ?, ?)",
                    (pid, "netease", str(pid), f"歌单 {pid}", None if pid % 3 else "desc",
                     None if pid % 4 == 0 else f"https://img/{pid}.jpg", pid * 3, 20)))
    for sid in range(1, 301):
        out.append(("insert into songs (id, platform, remote_song_id, name, singers, ext, file_size_bytes, "
                    "metadata_json) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    (sid, "kuwo", str(sid * 7), f"海屿你 {sid}" if sid % 2 else f"Song {sid}", "马也 / Crabbit",
                     "flac", 1000 + sid, '{"duration_ms": %d}' % sid)))
        out.append(("insert into file_assets values (?, ?, ?, ?, ?)", (sid, sid, "super", "flac", 1000 + sid)))
        out.append(("insert into file_locations values (?, ?, ?, ?, ?, ?)",
                    (sid, sid, 2, f"music/{sid % 7}/Song {sid} #{sid}?.flac", "active" if sid % 9 else "inactive", 1)))
        if sid % 3 == 0:
            out.append(("insert into file_locations values (?, ?, ?, ?, ?, ?)",
                        (1000 + sid, sid, 1, f"nas/{sid}.flac", "active", 0)))
    for pid in range(1, 31):
        for position in range(1, 21):
            out.append(("insert into playlist_songs (playlist_id, song_id, position) values (?, ?, ?)",
                        (pid, rng.randint(1, 300), position)))
    out.append(("insert into storage_backends values (?, ?, ?, ?, ?)", (1, "nas-main", "nas", "/srv", None)))
    out.append(("insert into storage_backends values (?, ?, ?, ?, ?)",
                (2, "main-s3", "object_storage", None, '{"public_base_url": "https://cdn.example/music/"}')))
    for pool in (1, 2):
        out.append(("insert into playlist_pools values (?, ?, ?, ?, ?, ?, ?)",
                    (pool, "kuwo", "toplist" if pool == 1 else "other", f"pool{pool}", f"榜单{pool}", None, "{}")))
    for pid in range(1, 31, 4):
        out.append(("insert into pool_playlists values (?, ?)", (1 + (pid // 4) % 2, pid)))
    return out


def write_layout(path: Path, *, shuffle_seed: int | None, page_size: int, wal: bool, free_pages: bool) -> Path:
    from .conftest import SOURCE_SCHEMA

    statements = catalog_statements()
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(statements)
    conn = sqlite3.connect(path)
    conn.execute(f"pragma page_size = {page_size}")
    if wal:
        conn.execute("pragma journal_mode = wal")
    conn.executescript(SOURCE_SCHEMA)
    conn.execute("create table extra_table (x text)")
    conn.execute("alter table songs add column extra_col text")
    if free_pages:
        conn.executemany("insert into extra_table values (?)", [("x" * 500,)] * 500)
        conn.executemany(
            "insert into songs (id, platform, remote_song_id, name) values (?, 'tmp', 'tmp', 'tmp')",
            [(100_000 + i,) for i in range(200)],
        )
    for sql, values in statements:
        conn.execute(sql, values)
    if free_pages:
        conn.execute("delete from extra_table")
        conn.execute("delete from songs where platform = 'tmp'")
    conn.commit()
    conn.close()
    return path


def test_same_content_in_two_physical_layouts_gives_identical_bytes(tmp_path: Path) -> None:
    first = write_layout(tmp_path / "a.db", shuffle_seed=None, page_size=4096, wal=False, free_pages=False)
    second = write_layout(tmp_path / "b.db", shuffle_seed=3, page_size=1024, wal=True, free_pages=True)
    assert first.read_bytes() != second.read_bytes()
    with sqlite3.connect(second) as conn:
        assert conn.execute("pragma freelist_count").fetchone()[0] > 0
        assert conn.execute("pragma journal_mode").fetchone()[0] == "wal"
    one = run_export(first, tmp_path / "one", generated_at=GENERATED_AT)
    two = run_export(second, tmp_path / "two", generated_at=GENERATED_AT)
    assert (tmp_path / "one" / "catalog_read.db").read_bytes() == (tmp_path / "two" / "catalog_read.db").read_bytes()
    assert (tmp_path / "one" / "manifest.json").read_bytes() == (tmp_path / "two" / "manifest.json").read_bytes()
    assert one.manifest == two.manifest
    assert one.manifest.track_count == 300 and one.manifest.table_counts["catalog_playlist_tracks"] == 600
    assert one.manifest.table_counts["catalog_toplists"] > 0


def test_exporting_twice_gives_the_same_bytes(small_catalog: Path, tmp_path: Path) -> None:
    run_export(small_catalog, tmp_path / "one", generated_at=GENERATED_AT)
    run_export(small_catalog, tmp_path / "two", generated_at=GENERATED_AT)
    for name in ("catalog_read.db", "manifest.json"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_unchanged_content_leaves_the_target_untouched(small_catalog: Path, tmp_path: Path) -> None:
    target = tmp_path / "s"
    first = run_export(small_catalog, target, generated_at=GENERATED_AT)
    assert first.changed
    before = {name: (target / name).stat() for name in ("catalog_read.db", "manifest.json")}
    manifest_bytes = (target / "manifest.json").read_bytes()
    again = run_export(small_catalog, target, generated_at="2026-05-01T00:00:00Z")
    assert not again.changed
    assert again.manifest == first.manifest  # the existing manifest, old generated_at included
    assert (target / "manifest.json").read_bytes() == manifest_bytes
    for name, stat in before.items():
        now = (target / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (stat.st_ino, stat.st_mtime_ns)


def test_changed_content_replaces_the_pair(small_catalog: Path, tmp_path: Path) -> None:
    target = tmp_path / "s"
    first = run_export(small_catalog, target, generated_at=GENERATED_AT)
    with sqlite3.connect(small_catalog) as conn:
        conn.execute("update songs set name = '海屿你 (remaster)' where id = 10")
    second = run_export(small_catalog, target, generated_at="2026-05-01T00:00:00Z")
    assert second.changed and second.manifest.snapshot_id != first.manifest.snapshot_id
    assert SnapshotManifest.read(target / "manifest.json") == second.manifest
    assert verify_directory(target) == second.manifest


# --- generated_at -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given, expected",
    [
        ("2026-04-19T08:00:00Z", "2026-04-19T08:00:00Z"),
        ("2026-04-19T10:00:00+02:00", "2026-04-19T08:00:00Z"),
        ("2026-04-19T08:00:00.999Z", "2026-04-19T08:00:00Z"),
        (datetime(2026, 4, 19, 8, tzinfo=timezone.utc), "2026-04-19T08:00:00Z"),
        (datetime(2026, 4, 19, 3, tzinfo=timezone(timedelta(hours=-5))), "2026-04-19T08:00:00Z"),
    ],
)
def test_generated_at_is_normalized_to_utc(small_catalog: Path, tmp_path: Path, given, expected: str) -> None:
    assert export_snapshot(small_catalog, tmp_path / "s", generated_at=given).generated_at == expected


@pytest.mark.parametrize("given", ["yesterday", "2026-04-19T08:00:00", datetime(2026, 4, 19)])
def test_bad_generated_at_is_a_usage_error_before_anything_is_written(
    small_catalog: Path, tmp_path: Path, given
) -> None:
    with pytest.raises(UsageError):
        export_snapshot(small_catalog, tmp_path / "s", generated_at=given)
    assert not (tmp_path / "s").exists()


def test_now_comes_from_the_injected_clock(small_catalog: Path, tmp_path: Path) -> None:
    manifest = export_snapshot(
        small_catalog, tmp_path / "s", clock=lambda: datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    )
    assert manifest.generated_at == "2030-01-02T03:04:05Z"


def test_progress_reports_stages_in_order(small_catalog: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    run_export(small_catalog, tmp_path / "s", generated_at=GENERATED_AT, progress=lambda *a: seen.append(a))
    stages = [stage for stage, _, _ in seen]
    assert stages[0] == "validate" and stages[-1] == "done"
    assert "catalog_playlist_tracks" in stages and "digest" in stages
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)
    assert all(total == seen[0][2] for _, _, total in seen)


# --- interrupted exports ----------------------------------------------------------------------


def test_leftovers_of_a_killed_export_are_cleaned_up(good_snapshot, tmp_path: Path) -> None:
    target = good_snapshot.dir
    (target / ".catalog_read.db.deadbeef.tmp").write_bytes(b"half a database")
    (target / ".catalog_read.db.deadbeef.tmp-journal").write_bytes(b"junk")
    (target / PENDING_MANIFEST).write_text("{ half a manifest", encoding="utf-8")
    run_export(good_snapshot.source, target, generated_at=GENERATED_AT)
    good_snapshot.assert_intact()
    assert sorted(p.name for p in target.iterdir() if not p.name.endswith(".lock")) == [
        "catalog_read.db", "manifest.json",
    ]


def test_a_kill_between_the_two_replaces_is_rolled_forward(good_snapshot, tmp_path: Path) -> None:
    """Simulate the window: new database in place, its manifest still pending."""
    target = good_snapshot.dir
    other = write_catalog(tmp_path / "other.db", CATALOG_ROWS.replace("海屿你", "另一首"))
    staging = tmp_path / "staging"
    new = run_export(other, staging, generated_at=GENERATED_AT).manifest
    os.replace(staging / "catalog_read.db", target / "catalog_read.db")
    (target / PENDING_MANIFEST).write_text(new.to_json(), encoding="utf-8")
    recover_target(target)
    assert SnapshotManifest.read(target / "manifest.json") == new
    assert verify_directory(target) == new
    assert not (target / PENDING_MANIFEST).exists()


def test_a_stale_pending_manifest_is_discarded(good_snapshot) -> None:
    target = good_snapshot.dir
    stale = SnapshotManifest.from_dict({**good_snapshot.manifest.to_dict(), "db_sha256": "00" * 32})
    (target / PENDING_MANIFEST).write_text(stale.to_json(), encoding="utf-8")
    recover_target(target)
    good_snapshot.assert_intact()


def test_quote_path_equals_urllib_quote() -> None:
    from urllib.parse import quote

    from hypothesis import given, settings
    from hypothesis import strategies as st

    from snapbuild.urls import quote_path

    @settings(max_examples=300, deadline=None)
    @given(st.text() | st.binary())
    def check(value):
        assert quote_path(value) == quote(value, safe="/")

    check()


def test_a_second_export_into_the_same_directory_waits_then_fails(good_snapshot) -> None:
    import filelock

    from snapbuild.errors import TargetError
    from snapbuild.export import LOCK_NAME

    with filelock.FileLock(str(good_snapshot.dir / LOCK_NAME)):
        with pytest.raises(TargetError, match="another export is writing"):
            run_export(good_snapshot.source, good_snapshot.dir, generated_at=GENERATED_AT, busy_timeout=0.1)
    good_snapshot.assert_intact()
