"""The synthetic sample catalog: schema, determinism, layout independence, locators, media, mutation."""

from __future__ import annotations

import re
import sqlite3
import wave
from pathlib import Path, PurePosixPath

import pytest

from snapbuild.cli import main
from snapbuild.errors import SourceError, TargetError, UsageError
from snapbuild.sample import (
    SampleStats,
    is_sample_catalog,
    mutate_sample_catalog,
    write_sample_catalog,
    write_sample_media,
)

from .conftest import SOURCE_SCHEMA

TRACKS = 300
PLAYLISTS = 30
# Restated rather than imported, so the locator test does not trust the code it checks.
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {f"COM{n}" for n in range(1, 10)} | {f"LPT{n}" for n in range(1, 10)}


def columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"pragma table_info({table})")]


def logical_content(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every table's rows, sorted: the logical content, whatever the physical order."""
    conn = sqlite3.connect(path)
    try:
        tables = [row[0] for row in conn.execute("select name from sqlite_schema where type = 'table'")]
        return {
            table: sorted(conn.execute(f"select * from {table}").fetchall(), key=repr) for table in sorted(tables)
        }
    finally:
        conn.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, SampleStats]:
    path = tmp_path_factory.mktemp("sample") / "catalogsync.db"
    return path, write_sample_catalog(path, tracks=TRACKS, playlists=PLAYLISTS, seed=3)


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("select name from sqlite_schema where type = 'table'")}


def test_has_every_source_table_and_column_plus_extras(sample: tuple[Path, SampleStats]) -> None:
    path, _ = sample
    source = sqlite3.connect(":memory:")
    source.executescript(SOURCE_SCHEMA)
    source_tables = table_names(source)
    conn = sqlite3.connect(path)
    extra_columns = 0
    for table in sorted(source_tables):
        have = columns(conn, table)
        want = columns(source, table)
        assert set(want) <= set(have), (table, set(want) - set(have))
        extra_columns += len(set(have) - set(want))
    assert table_names(conn) - source_tables, "a real catalog has extra tables"
    assert extra_columns >= 3
    # An extra column sits in the middle of songs: an export must select columns by name.
    assert columns(conn, "songs").index("album") < columns(conn, "songs").index("ext")
    conn.close()


def test_counts_match_the_stats(sample: tuple[Path, SampleStats]) -> None:
    path, stats = sample
    conn = sqlite3.connect(path)
    count = lambda sql: conn.execute(sql).fetchone()[0]  # noqa: E731
    assert count("select count(*) from songs") == stats.tracks == TRACKS
    assert count("select count(*) from playlists") == stats.playlists == PLAYLISTS
    assert count("select count(*) from playlist_songs") == stats.playlist_rows
    assert count("select count(*) from file_assets") == stats.file_assets
    assert count("select count(*) from file_locations") == stats.file_locations
    assert count("select count(*) from file_locations where status = 'active'") == stats.active_locations
    assert count("select count(*) from file_locations where status = 'active' and backend_id = 1") == stats.nas_files
    assert count("select count(*) from playlist_pools") == stats.pools
    assert count("select count(*) from pool_playlists") == stats.pool_memberships
    # About 50 rows per playlist and 1.1 locations per track, as the benchmark sizes assume.
    assert 30 * PLAYLISTS < stats.playlist_rows < 70 * PLAYLISTS
    assert 1.0 * TRACKS < stats.file_locations < 1.2 * TRACKS
    conn.close()


def test_content_is_realistic(sample: tuple[Path, SampleStats]) -> None:
    path, _ = sample
    conn = sqlite3.connect(path)
    backends = {row[0]: row[1:] for row in conn.execute("select name, backend_type, base_path, config_json from storage_backends")}
    assert backends["main-s3"][0] == "object_storage"
    assert '"public_base_url": "https://cdn.example/music/"' in backends["main-s3"][2]
    assert backends["nas-main"][0] == "nas" and backends["nas-main"][1]
    per_asset = dict(
        conn.execute(
            """select placement, count(*) from (
                 select group_concat(distinct b.name) as placement from file_locations l
                 join storage_backends b on b.id = l.backend_id
                 where l.status = 'active' group by l.file_asset_id)
               group by placement"""
        ).fetchall()
    )
    assert per_asset.get("nas-main") and per_asset.get("main-s3")
    assert per_asset.get("main-s3,nas-main") or per_asset.get("nas-main,main-s3")
    statuses = {row[0] for row in conn.execute("select distinct status from file_locations")}
    assert statuses == {"active", "missing", "deleted"}
    kinds = dict(
        conn.execute(
            """select pool_kind, max(n) from (select p.pool_kind, count(*) as n from playlist_pools p
               join pool_playlists m on m.pool_id = p.id group by p.id) group by pool_kind"""
        ).fetchall()
    )
    assert kinds["toplist"] >= 3 and set(kinds) - {"toplist"}
    names = " ".join(row[0] for row in conn.execute("select name from songs union all select name from playlists"))
    assert re.search("[\u4e00-\u9fff]", names) and re.search("[A-Za-z]", names)
    assert conn.execute("select count(*) from songs where singers = '马也 / Crabbit'").fetchone()[0]
    assert conn.execute("select count(*) from playlists where cover_url is null").fetchone()[0]
    assert conn.execute("select count(*) from playlists where cover_url is not null").fetchone()[0]
    # Positions run 1..n in every playlist, and collected_song_count says n.
    bad = conn.execute(
        """select p.id from playlists p left join playlist_songs s on s.playlist_id = p.id
           group by p.id having count(s.position) != p.collected_song_count
               or min(s.position) != 1 or max(s.position) != count(distinct s.position)"""
    ).fetchall()
    assert bad == []
    # Every reference resolves.
    assert not conn.execute(
        "select 1 from playlist_songs s left join songs g on g.id = s.song_id where g.id is null"
    ).fetchone()
    assert not conn.execute(
        "select 1 from file_locations l left join file_assets a on a.id = l.file_asset_id where a.id is null"
    ).fetchone()
    conn.close()


def test_locators_are_valid_file_names_everywhere_yet_awkward(sample: tuple[Path, SampleStats]) -> None:
    path, _ = sample
    conn = sqlite3.connect(path)
    rows = conn.execute(
        "select b.backend_type, l.locator from file_locations l join storage_backends b on b.id = l.backend_id"
    ).fetchall()
    conn.close()
    for backend_type, locator in rows:
        assert not locator.startswith("/") and ":" not in locator and "\\" not in locator, locator
        assert not set('<>"|*') & set(locator), locator
        for segment in PurePosixPath(locator).parts:
            assert segment and segment not in (".", "..")
            assert not segment.endswith((".", " ")) and not segment.startswith(" "), locator
            assert segment.split(".")[0].rstrip(" ").upper() not in WINDOWS_RESERVED, locator
        if backend_type == "nas":
            assert "?" not in locator, f"'?' cannot be a Windows file name: {locator}"
    everything = "".join(locator for _, locator in rows)
    for char in (" ", "#", "%", "?", "&"):
        assert char in everything, char
    assert re.search("[\u4e00-\u9fff]", everything)
    # The reserved-name and trailing-dot singers ('Aux', 'M.I.A.') really were sanitized.
    assert any("/_Aux/" in locator for _, locator in rows)
    assert any("/M.I.A/" in locator for _, locator in rows)


def test_same_seed_same_content_other_seed_other_content(tmp_path: Path) -> None:
    first = write_sample_catalog(tmp_path / "a.db", tracks=120, playlists=12, seed=5)
    second = write_sample_catalog(tmp_path / "b.db", tracks=120, playlists=12, seed=5)
    write_sample_catalog(tmp_path / "c.db", tracks=120, playlists=12, seed=6)
    assert first == second
    assert logical_content(tmp_path / "a.db") == logical_content(tmp_path / "b.db")
    assert (tmp_path / "a.db").read_bytes() == (tmp_path / "b.db").read_bytes()
    assert logical_content(tmp_path / "a.db") != logical_content(tmp_path / "c.db")


def test_layout_seed_changes_physical_order_not_content(tmp_path: Path) -> None:
    write_sample_catalog(tmp_path / "plain.db", tracks=120, playlists=12, seed=5)
    write_sample_catalog(tmp_path / "shuffled.db", tracks=120, playlists=12, seed=5, layout_seed=1)
    write_sample_catalog(tmp_path / "other.db", tracks=120, playlists=12, seed=5, layout_seed=2)
    plain = logical_content(tmp_path / "plain.db")
    assert logical_content(tmp_path / "shuffled.db") == plain
    assert logical_content(tmp_path / "other.db") == plain
    physical = []
    for name in ("plain.db", "shuffled.db", "other.db"):
        conn = sqlite3.connect(tmp_path / name)
        physical.append(conn.execute("select playlist_id, position from playlist_songs order by rowid").fetchall())
        conn.close()
    assert physical[0] != physical[1] and physical[1] != physical[2]
    assert physical[0] == sorted(physical[0])
    assert (tmp_path / "plain.db").read_bytes() != (tmp_path / "shuffled.db").read_bytes()


def _nas_locators(catalog: Path, active: bool = True) -> list[str]:
    conn = sqlite3.connect(catalog)
    try:
        condition = "= 'active'" if active else "!= 'active'"
        return [locator for (locator,) in conn.execute(
            f"select locator from file_locations where backend_id = 1 and status {condition} order by id"
        )]
    finally:
        conn.close()


def test_media_files_are_real_flac_and_mp3_long_enough_to_seek(tmp_path: Path) -> None:
    soundfile = pytest.importorskip("soundfile")
    media = tmp_path / "media"
    stats = write_sample_catalog(tmp_path / "c.db", tracks=60, playlists=4, seed=2, media_dir=media)
    files = sorted(p for p in media.rglob("*") if p.is_file())
    assert len(files) == stats.media_files == stats.nas_files > 0
    locators = _nas_locators(tmp_path / "c.db")
    assert files == sorted(media.joinpath(*PurePosixPath(locator).parts) for locator in locators)
    assert all(not media.joinpath(*PurePosixPath(loc).parts).exists() for loc in _nas_locators(tmp_path / "c.db", False))
    kinds = {path.suffix for path in files}
    assert kinds == {".flac", ".mp3"}
    for path in files:
        head = path.read_bytes()[:4]
        info = soundfile.info(str(path))
        if path.suffix == ".flac":
            assert head == b"fLaC" and info.format == "FLAC"
        else:
            assert head[:3] == b"ID3" or (head[0] == 0xFF and head[1] & 0xE0 == 0xE0)
            assert info.format == "MP3"
        assert info.duration >= 20, (path, info.duration)
        assert path.stat().st_size < 100_000
    # Re-running leaves existing files alone and writes nothing new.
    assert write_sample_media(tmp_path / "c.db", media) == 0


def test_without_soundfile_the_media_are_wav_files_named_wav(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from snapbuild.cli import main
    from snapbuild.sample import media as media_module

    monkeypatch.setattr(media_module, "_soundfile_encoder", lambda fmt: None)
    media_module._encoder.cache_clear()
    media_module._tone.cache_clear()
    try:
        media = tmp_path / "media"
        assert main(["sample-catalog", str(tmp_path / "c.db"), "--tracks", "60", "--playlists", "4",
                     "--seed", "2", "--media-dir", str(media)]) == 0
        assert "pip install 'snapbuild[audio]'" in capsys.readouterr().err
        files = sorted(p for p in media.rglob("*") if p.is_file())
        locators = _nas_locators(tmp_path / "c.db")
        assert files == sorted(media.joinpath(*PurePosixPath(loc).parts).with_suffix(".wav") for loc in locators)
        with wave.open(str(files[0]), "rb") as audio:
            assert audio.getnchannels() == 1
            assert audio.getnframes() / audio.getframerate() >= 20
            assert any(audio.readframes(audio.getnframes()))
    finally:
        media_module._encoder.cache_clear()
        media_module._tone.cache_clear()


def test_media_refuses_a_locator_that_leaves_the_root(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    write_sample_catalog(path, tracks=20, playlists=2)
    conn = sqlite3.connect(path)
    conn.execute("update file_locations set locator = '../escape.flac' where id = (select min(id) from file_locations where backend_id = 1 and status = 'active')")
    conn.commit()
    conn.close()
    with pytest.raises(SourceError) as refused:
        write_sample_media(path, tmp_path / "media")
    assert (refused.value.table, refused.value.column) == ("file_locations", "locator")
    assert not (tmp_path / "escape.flac").exists()


def test_mutation_changes_exactly_what_it_reports(tmp_path: Path) -> None:
    path = tmp_path / "c.db"
    write_sample_catalog(path, tracks=TRACKS, playlists=PLAYLISTS, seed=1)
    before = logical_content(path)
    conn = sqlite3.connect(path)
    lengths_before = dict(conn.execute("select playlist_id, count(*) from playlist_songs group by playlist_id"))
    conn.close()

    change = mutate_sample_catalog(path, fraction=0.05, seed=4)
    assert change.renamed_song_ids and change.renamed_playlist_ids and change.added_song_ids
    assert change.removed_playlist_rows and change.moved_location_ids and change.deactivated_location_ids
    assert change.toplist_added and change.toplist_removed
    assert 0.03 * TRACKS < change.changed_rows < 0.2 * TRACKS

    conn = sqlite3.connect(path)
    names_before = {row[0]: row[3] for row in before["songs"]}
    names_after = dict(conn.execute("select id, name from songs"))
    assert {i for i in names_before if names_before[i] != names_after[i]} == set(change.renamed_song_ids)
    assert set(names_after) - set(names_before) == set(change.added_song_ids)
    playlist_names_before = {row[0]: row[3] for row in before["playlists"]}
    renamed = {i for i, name in conn.execute("select id, name from playlists") if name != playlist_names_before[i]}
    assert renamed == set(change.renamed_playlist_ids)

    locations_before = {row[0]: row for row in before["file_locations"]}
    locations_after = {row[0]: row for row in conn.execute("select * from file_locations")}
    assert set(locations_after) - set(locations_before) == set(change.added_location_ids)
    moved = {i for i in locations_before if locations_before[i][3] != locations_after[i][3]}
    deactivated = {i for i in locations_before if locations_before[i][4] != locations_after[i][4]}
    assert moved == set(change.moved_location_ids)
    assert deactivated == set(change.deactivated_location_ids)

    lengths_after = dict(conn.execute("select playlist_id, count(*) from playlist_songs group by playlist_id"))
    for playlist_id in {p for p, _ in change.removed_playlist_rows}:
        appended = sum(1 for p, _, _ in change.appended_playlist_rows if p == playlist_id)
        assert lengths_after[playlist_id] == lengths_before[playlist_id] - 1 + appended
    for playlist_id, position, song_id in change.appended_playlist_rows:
        assert conn.execute(
            "select song_id from playlist_songs where playlist_id = ? and position = ?", (playlist_id, position)
        ).fetchone() == (song_id,)
    assert conn.execute(
        """select count(*) from (select playlist_id from playlist_songs group by playlist_id
           having min(position) != 1 or max(position) != count(*))"""
    ).fetchone()[0] == 0
    members = set(conn.execute("select pool_id, playlist_id from pool_playlists"))
    assert set(change.toplist_added) <= members and not set(change.toplist_removed) & members
    conn.close()


def test_mutation_is_deterministic(tmp_path: Path) -> None:
    for name in ("a.db", "b.db"):
        write_sample_catalog(tmp_path / name, tracks=100, playlists=10, seed=1)
    assert mutate_sample_catalog(tmp_path / "a.db", seed=9) == mutate_sample_catalog(tmp_path / "b.db", seed=9)
    assert logical_content(tmp_path / "a.db") == logical_content(tmp_path / "b.db")


def test_mutation_keeps_media_in_step(tmp_path: Path) -> None:
    path, media = tmp_path / "c.db", tmp_path / "media"
    write_sample_catalog(path, tracks=150, playlists=10, seed=2, media_dir=media)
    change = mutate_sample_catalog(path, fraction=0.1, seed=3, media_dir=media)
    assert change.media_files >= 1  # the added songs' NAS copies
    conn = sqlite3.connect(path)
    active = {
        media.joinpath(*PurePosixPath(locator).parts)
        for (locator,) in conn.execute("select locator from file_locations where backend_id = 1 and status = 'active'")
    }
    conn.close()
    assert active <= {p for p in media.rglob("*") if p.is_file()}


def test_bad_arguments_and_existing_targets(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        write_sample_catalog(tmp_path / "a.db", tracks=-1)
    assert refused.value.argument == "tracks"
    with pytest.raises(UsageError) as refused:
        write_sample_catalog(tmp_path / "a.db", tracks=5, playlists=-1)
    assert refused.value.argument == "playlists"
    with pytest.raises(UsageError) as refused:
        write_sample_catalog(tmp_path / "a.db", tracks=0, playlists=3)
    assert refused.value.argument == "playlists"
    existing = tmp_path / "b.db"
    existing.write_text("precious", encoding="utf-8")
    with pytest.raises(TargetError) as refused:
        write_sample_catalog(existing, tracks=5, playlists=1)
    assert refused.value.path == existing
    assert existing.read_text(encoding="utf-8") == "precious"
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(TargetError) as refused:
        write_sample_catalog(blocker / "c.db", tracks=5, playlists=1)
    assert refused.value.path == blocker / "c.db"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.db", "file"]
    with pytest.raises(UsageError) as refused:
        mutate_sample_catalog(existing, fraction=0)
    assert refused.value.argument == "fraction"


def test_a_killed_run_leaves_no_catalog_and_its_leftover_is_cleaned(tmp_path: Path) -> None:
    leftover = tmp_path / ".c.db.partial-999999"  # what a kill -9 mid-build leaves
    leftover.write_bytes(b"half a database")
    write_sample_catalog(tmp_path / "c.db", tracks=5, playlists=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.db"]


def test_awkward_file_names_work(tmp_path: Path) -> None:
    odd = tmp_path / "a #1? 100% 歌单"
    stats = write_sample_catalog(odd / "cat #1?.db", tracks=20, playlists=2, media_dir=odd / "media #?")
    assert stats.media_files == stats.nas_files > 0
    assert is_sample_catalog(odd / "cat #1?.db")


def test_empty_catalog_is_fine(tmp_path: Path) -> None:
    stats = write_sample_catalog(tmp_path / "e.db", tracks=0, playlists=0)
    assert (stats.tracks, stats.playlist_rows, stats.file_locations) == (0, 0, 0)
    assert is_sample_catalog(tmp_path / "e.db")


def test_cli_writes_replaces_samples_and_refuses_other_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sample" / "catalogsync.db"
    assert main(["sample-catalog", str(out), "--tracks", "40", "--playlists", "4", "--media-dir", str(tmp_path / "m")]) == 0
    line = capsys.readouterr().out.strip()
    assert "40 tracks" in line and "media files" in line and "\n" not in line
    assert main(["sample-catalog", str(out), "--tracks", "40", "--playlists", "4"]) == 0  # a sample: replaced

    precious = tmp_path / "catalogsync.db"
    precious.write_bytes(b"not a sample")
    assert main(["sample-catalog", str(precious)]) == 2
    assert "--force" in capsys.readouterr().err
    assert precious.read_bytes() == b"not a sample"
    assert main(["sample-catalog", str(precious), "--force", "--tracks", "3", "--playlists", "1"]) == 0
    assert is_sample_catalog(precious)
    assert main(["sample-catalog", str(tmp_path / "x.db"), "--tracks", "-5"]) == 2
