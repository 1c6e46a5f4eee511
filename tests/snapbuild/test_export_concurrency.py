"""The source is read as one point in time while a writer works, and a locked source fails cleanly."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from snapbuild.errors import SourceBusyError
from snapbuild.export import run_export

from .conftest import GENERATED_AT, write_catalog


def seed_catalog(path: Path, playlists: int = 40, songs: int = 4000, per_playlist: int = 400) -> Path:
    """A catalog whose invariant is: every playlist's collected_song_count equals its rows."""
    write_catalog(path)
    conn = sqlite3.connect(path)
    conn.execute("pragma journal_mode = wal")
    conn.executemany(
        "insert into songs values (?, 'p', ?, ?, null, null, null, null)",
        [(i, str(i), f"歌 {i}") for i in range(1, songs + 1)],
    )
    conn.executemany(
        "insert into playlists values (?, 'p', ?, ?, null, null, 0, ?)",
        [(p, str(p), f"list {p}", per_playlist) for p in range(1, playlists + 1)],
    )
    conn.executemany(
        "insert into playlist_songs values (?, ?, ?)",
        [(p, 1 + (p * 7919 + k) % songs, k) for p in range(1, playlists + 1) for k in range(per_playlist)],
    )
    conn.commit()
    conn.close()
    return path


def writer(path: Path, stop: threading.Event, commits: list[int]) -> None:
    """Each transaction adds a new song, links it into a playlist and bumps that playlist's count."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    next_song = 100_000
    while not stop.is_set():
        next_song += 1
        playlist = 1 + next_song % 40
        conn.execute("begin immediate")
        conn.execute("insert into songs values (?, 'p', ?, 'new', null, null, null, null)", (next_song, str(next_song)))
        conn.execute(
            "insert into playlist_songs values (?, ?, (select max(position) + 1 from playlist_songs where playlist_id = ?))",
            (playlist, next_song, playlist),
        )
        conn.execute(
            "update playlists set collected_song_count = collected_song_count + 1 where id = ?", (playlist,)
        )
        conn.execute("commit")
        commits.append(next_song)
    conn.close()


def test_export_reads_one_point_in_time_while_a_wal_writer_commits(tmp_path: Path) -> None:
    source = seed_catalog(tmp_path / "live.db")
    stop = threading.Event()
    commits: list[int] = []
    thread = threading.Thread(target=writer, args=(source, stop, commits))
    thread.start()
    try:
        while len(commits) < 5:  # the writer is really running
            threading.Event().wait(0.01)
        results, during = [], []
        for run in range(3):
            before = len(commits)
            results.append(run_export(source, tmp_path / f"s{run}", generated_at=GENERATED_AT))
            during.append(len(commits) - before)
    finally:
        stop.set()
        thread.join()
    assert sum(during) > 0, "the writer never committed while an export ran: the test proves nothing"
    for run, result in enumerate(results):
        assert result.repairs == {}  # no playlist row naming a song the export had not seen
        conn = sqlite3.connect(tmp_path / f"s{run}" / "catalog_read.db")
        mismatched = conn.execute(
            "select count(*) from catalog_playlists p where song_count != "
            "(select count(*) from catalog_playlist_tracks t where t.playlist_id = p.playlist_id)"
        ).fetchone()[0]
        new_songs = conn.execute("select count(*) from catalog_tracks where song_id > 100000").fetchone()[0]
        new_rows = conn.execute("select count(*) from catalog_playlist_tracks where song_id > 100000").fetchone()[0]
        conn.close()
        assert mismatched == 0
        assert new_songs == new_rows


def test_a_rollback_journal_source_locked_by_a_writer_gives_a_clear_error(good_snapshot, tmp_path: Path) -> None:
    source = seed_catalog(tmp_path / "locked.db", playlists=2, songs=10, per_playlist=3)
    with sqlite3.connect(source) as conn:
        conn.execute("pragma journal_mode = delete")
    holder = sqlite3.connect(source, isolation_level=None)
    holder.execute("begin exclusive")  # a writer in the middle of its commit
    try:
        with pytest.raises(SourceBusyError) as caught:
            run_export(source, good_snapshot.dir, generated_at=GENERATED_AT, busy_timeout=0.2)
    finally:
        holder.execute("rollback")
        holder.close()
    message = str(caught.value)
    assert "locked by a writer" in message and "0.2 s" in message and "\n" not in message
    good_snapshot.assert_intact()
    # Once the writer is done, the same export succeeds.
    assert run_export(source, tmp_path / "later", generated_at=GENERATED_AT, busy_timeout=0.2).changed


def test_the_side_reader_stands_in_only_for_the_same_point_in_time(small_catalog: Path) -> None:
    from snapbuild.sidereader import SideReader, SideResult

    quiet = SideReader(small_catalog, small_catalog.with_name("quiet-side"), 1.0)
    quiet.start()
    assert quiet.paths_ready()
    assert quiet.result().text_checked == ("catalog_tracks", "catalog_playlists")
    with sqlite3.connect(small_catalog.with_name("quiet-side")) as scratch:
        assert scratch.execute("select * from public_paths").fetchall() == [(9, "music/netease/test.flac")]

    raced = SideReader(small_catalog, small_catalog.with_name("raced-side"), 1.0)
    with sqlite3.connect(small_catalog) as writer:  # a commit after the build's point in time began
        writer.execute("update songs set name = 'changed' where id = 10")
    raced.start()
    assert not raced.paths_ready()
    assert raced.result() == SideResult()


def test_the_build_does_the_work_when_the_side_reader_cannot_stand_in(good_snapshot, tmp_path: Path) -> None:
    from snapbuild.errors import SourceError

    from .conftest import CATALOG_ROWS

    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS, "update songs set singers = cast(x'ff41' as text) where id = 10")
    with pytest.raises(SourceError, match=r"invalid UTF-8 in songs\.singers \(songs id 10\)") as caught:
        run_export(source, good_snapshot.dir, generated_at=GENERATED_AT, side_reader=False)
    assert (caught.value.table, caught.value.column, caught.value.row) == ("songs", "singers", 10)
    good_snapshot.assert_intact()


def test_public_urls_are_the_same_with_or_without_the_side_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from snapbuild.sidereader import SideReader

    from .conftest import FILES_ROWS

    source = write_catalog(tmp_path / "c.db", FILES_ROWS)
    answers: list[bool] = []
    original = SideReader.paths_ready
    monkeypatch.setattr(SideReader, "paths_ready", lambda self: answers.append(original(self)) or answers[-1])
    with_side = run_export(source, tmp_path / "a", generated_at=GENERATED_AT)
    assert answers == [True]  # the build took the encoded paths from the side reader
    without = run_export(source, tmp_path / "b", generated_at=GENERATED_AT, side_reader=False)
    assert answers == [True]  # not asked again: no side reader ran
    assert with_side.manifest == without.manifest
    assert (tmp_path / "a" / "catalog_read.db").read_bytes() == (tmp_path / "b" / "catalog_read.db").read_bytes()
    assert not [p for p in (tmp_path / "a").iterdir() if "side" in p.name]
