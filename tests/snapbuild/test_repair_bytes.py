"""Byte identity depends on content alone: rows the export drops or repairs leave no trace in the output.

A source that holds the same exported rows plus rows the export drops
(dangling links, exact duplicates, locations of a missing asset, backend or
song, inactive locations) must give the same ``catalog_read.db`` bytes, the
same ``content_digest``, and so no new snapshot commit.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snapbuild.export import run_export
from snapbuild.pipeline import export_and_commit

from .conftest import CATALOG_ROWS, GENERATED_AT, write_catalog

AUTHOR = "Snapshot Bot <bot@example.invalid>"


def exported_bytes(source: Path, target: Path) -> tuple[bytes, dict[str, int]]:
    """Export ``source`` into a fresh ``target``; the database's bytes and the repairs."""
    result = run_export(source, target, generated_at=GENERATED_AT)
    return (target / "catalog_read.db").read_bytes(), result.repairs


SONGS = "\n".join(f"insert into songs values ({i}, 'p', '{i}', 's{i}', null, null, null, null);" for i in (11, 12))
PLAYLIST_ROWS = "insert into playlist_songs values (1, 11, 2); insert into playlist_songs values (1, 12, 3);"


@pytest.mark.parametrize(
    "dropped, repair",
    [
        ("insert into playlist_songs values (99999, 11, 1);", "playlist_tracks_missing_playlist"),
        ("insert into playlist_songs values (1, 404, 7);", "playlist_tracks_missing_song"),
        ("insert into playlist_songs values (1, 11, 2);", "playlist_tracks_duplicate_rows"),
        (
            "insert into file_assets values (8, 555, 'hq', 'mp3', 1); "
            "insert into file_locations values (22, 8, 2, 'no-song.mp3', 'active', 1);",
            "track_files_missing_song",
        ),
        ("insert into file_locations values (20, 404, 2, 'no-asset.mp3', 'active', 1);", "track_files_missing_asset"),
        ("insert into file_locations values (21, 7, 99, 'no-backend.mp3', 'active', 0);", "track_files_missing_backend"),
        ("insert into pool_playlists values (5, 404);", "toplists_missing_playlist"),
        ("insert into pool_playlists values (5, 1);", "toplists_duplicate_rows"),
    ],
)
def test_a_dropped_row_leaves_the_bytes_as_they_were(tmp_path: Path, dropped: str, repair: str) -> None:
    clean = write_catalog(tmp_path / "clean.db", CATALOG_ROWS, SONGS, PLAYLIST_ROWS)
    dirty = write_catalog(tmp_path / "dirty.db", CATALOG_ROWS, SONGS, PLAYLIST_ROWS, dropped)
    clean_bytes, clean_repairs = exported_bytes(clean, tmp_path / "a")
    dirty_bytes, dirty_repairs = exported_bytes(dirty, tmp_path / "b")
    assert clean_repairs == {}
    assert dirty_repairs == {repair: 1}
    assert dirty_bytes == clean_bytes


# --- the property: random catalogs, random droppable rows ------------------------------------------

_BACKENDS = (
    "insert into storage_backends values (1, 'nas-main', 'nas', '/srv', null);"
    "insert into storage_backends values (2, 'main-s3', 'object_storage', null, "
    "'{\"public_base_url\": \"https://cdn.example/m\"}');"
)


@st.composite
def catalogs(draw: st.DrawFn) -> tuple[list[str], list[str]]:
    """A random small catalog and a list of rows the export must drop, both as SQL statements."""
    playlists = sorted(draw(st.sets(st.integers(1, 40), max_size=6)))
    songs = sorted(draw(st.sets(st.integers(1, 60), max_size=8)))
    rows = [
        f"insert into playlists values ({p}, 'p', '{p}', 'list {p}', null, null, {p}, 0);" for p in playlists
    ] + [f"insert into songs values ({s}, 'p', '{s}', 'song {s}', null, 'mp3', {s}, null);" for s in songs]
    rows.append(_BACKENDS)
    links: list[tuple[int, int, int]] = []
    if playlists and songs:
        links = draw(
            st.lists(
                st.tuples(st.sampled_from(playlists), st.integers(0, 5), st.sampled_from(songs)),
                max_size=15, unique=True,
            )
        )
    rows += [f"insert into playlist_songs values ({p}, {s}, {pos});" for p, pos, s in links]
    rows.append("insert into playlist_pools values (1, 'p', 'toplist', 'top', 'Top', null, null);")
    toplist = draw(st.sets(st.sampled_from(playlists), max_size=3)) if playlists else set()
    rows += [f"insert into pool_playlists values (1, {p});" for p in sorted(toplist)]
    for asset, song in enumerate(songs, start=1):
        rows.append(f"insert into file_assets values ({asset}, {song}, 'hq', 'mp3', 1);")
        rows.append(f"insert into file_locations values ({asset}, {asset}, {1 + asset % 2}, 'a/{song}.mp3', 'active', 1);")

    absent_playlist = draw(st.integers(-2, 50).filter(lambda i: i not in playlists))
    absent_song = draw(st.integers(-2, 70).filter(lambda i: i not in songs))
    droppable = {
        "missing playlist": [f"insert into playlist_songs values ({absent_playlist}, {songs[0] if songs else 1}, 1);"],
        "missing song": [f"insert into playlist_songs values ({playlists[0] if playlists else 1}, {absent_song}, 2);"],
        "duplicate link": [f"insert into playlist_songs values ({p}, {s}, {pos});" for p, pos, s in links[:2]],
        "toplist of a missing playlist": [f"insert into pool_playlists values (1, {absent_playlist});"],
        "duplicate toplist row": [f"insert into pool_playlists values (1, {p});" for p in sorted(toplist)[:1]],
        "location of a missing asset": ["insert into file_locations values (900, 9999, 2, 'gone.mp3', 'active', 1);"],
        "location on a missing backend": (
            ["insert into file_locations values (901, 1, 77, 'x.mp3', 'active', 0);"] if songs else []
        ),
        "asset of a missing song": [
            f"insert into file_assets values (902, {absent_song}, 'hq', 'mp3', 1);",
            "insert into file_locations values (902, 902, 2, 'no-song.mp3', 'active', 1);",
        ],
        "inactive location": ["insert into file_locations values (903, 9999, 77, 'old.mp3', 'deleted', 0);"],
    }
    available = sorted(kind for kind, statements in droppable.items() if statements)
    kinds = draw(st.lists(st.sampled_from(available), min_size=1, max_size=5, unique=True))
    extra = [statement for kind in kinds for statement in droppable[kind]]
    # Where the dropped rows sit among the others (their rowids) must not matter either.
    mixed = draw(st.permutations(rows + extra))
    return rows, list(mixed)


def _write(path: Path, statements: list[str]) -> Path:
    path.unlink(missing_ok=True)
    return write_catalog(path, "\n".join(statements))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(catalogs())
def test_droppable_rows_give_identical_bytes_and_no_new_commit(tmp_path: Path, catalog: tuple[list[str], list[str]]) -> None:
    clean_rows, dirty_rows = catalog
    work = tmp_path / "work"
    if work.exists():
        import shutil

        shutil.rmtree(work)
    work.mkdir()
    clean = _write(work / "clean.db", clean_rows)
    dirty = _write(work / "dirty.db", dirty_rows)
    repo = work / "snapshots.git"

    first = export_and_commit(clean, repo, generated_at=GENERATED_AT, author=AUTHOR, target_dir=work / "a")
    second = export_and_commit(dirty, repo, generated_at=GENERATED_AT, author=AUTHOR, target_dir=work / "b")

    assert len(dirty_rows) > len(clean_rows)
    assert (work / "b" / "catalog_read.db").read_bytes() == (work / "a" / "catalog_read.db").read_bytes()
    assert second.exported.manifest.content_digest == first.exported.manifest.content_digest
    assert first.committed.changed and not second.committed.changed
    with sqlite3.connect(work / "a" / "catalog_read.db") as conn:
        assert conn.execute("pragma quick_check").fetchone() == ("ok",)
