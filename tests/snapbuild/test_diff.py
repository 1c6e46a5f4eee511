"""Row-level snapshot diffs: counts and keys on a known change, JSON shape, the CLI on a real repository."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.diff import diff_databases
from snapbuild.errors import DatabaseError
from snapbuild.snapshots import commit_snapshot

from .diff_support import READ_MODEL_DDL, base_rows, changed_rows, write_snapshot_db, write_snapshot_dir


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    rows = base_rows()
    old = write_snapshot_db(tmp_path / "old.db", rows)
    new = write_snapshot_db(tmp_path / "new.db", changed_rows(rows))
    return old, new


def test_known_change_counts_and_keys(pair: tuple[Path, Path]) -> None:
    result = diff_databases(*pair, examples=20, from_id="snap-a", to_id="snap-b")
    tracks = result.tables["catalog_tracks"]
    assert (tracks.added, tracks.removed, tracks.changed) == (2, 1, 2)
    assert tracks.added_examples == ({"song_id": 41}, {"song_id": 42})
    assert tracks.removed_examples == ({"song_id": 40},)
    assert tracks.changed_examples == ({"song_id": 10}, {"song_id": 11})

    files = result.tables["catalog_track_files"]
    assert (files.added, files.removed, files.changed) == (2, 1, 1)
    assert files.changed_examples == ({"location_id": 1005},)  # the moved file
    assert files.removed_examples == ({"location_id": 1040},)

    # Playlist 2 lost its first row: every later row has a new position, so a new key.
    rows = result.tables["catalog_playlist_tracks"]
    assert (rows.added, rows.removed, rows.changed) == (12, 13, 0)
    assert rows.removed_examples[0] == {"playlist_id": 2, "position": 1, "song_id": 1}
    assert rows.added_examples[0] == {"playlist_id": 2, "position": 1, "song_id": 4}
    assert rows.key == ("playlist_id", "position", "song_id")

    playlists = result.tables["catalog_playlists"]
    assert (playlists.added, playlists.removed, playlists.changed) == (0, 0, 2)
    assert playlists.changed_examples == ({"playlist_id": 2}, {"playlist_id": 3})

    toplists = result.tables["catalog_toplists"]
    assert (toplists.added, toplists.removed, toplists.changed) == (1, 0, 2)
    assert toplists.added_examples == ({"toplist_id": "kuwo_top_16", "playlist_id": 4},)
    assert not result.is_empty


def test_examples_are_the_first_keys_in_key_order(pair: tuple[Path, Path]) -> None:
    rows = diff_databases(*pair, examples=3).tables["catalog_playlist_tracks"]
    assert [example["position"] for example in rows.removed_examples] == [1, 2, 3]
    assert rows.removed == 13
    assert diff_databases(*pair, examples=0).tables["catalog_tracks"].added_examples == ()


def test_json_shape(pair: tuple[Path, Path]) -> None:
    data = json.loads(json.dumps(diff_databases(*pair, from_id="snap-a", to_id="snap-b").to_dict()))
    assert data["from"] == "snap-a" and data["to"] == "snap-b"
    assert sorted(data["tables"]) == sorted(READ_MODEL_DDL)
    for table in data["tables"].values():
        assert {"added", "removed", "changed", "examples"} <= set(table)
        assert set(table["examples"]) == {"added", "removed", "changed"}
        assert all(isinstance(table[kind], int) for kind in ("added", "removed", "changed"))
    assert data["tables"]["catalog_tracks"]["examples"]["removed"] == [{"song_id": 40}]


def test_same_rows_in_another_physical_order_is_no_change(tmp_path: Path) -> None:
    rows = base_rows()
    result = diff_databases(
        write_snapshot_db(tmp_path / "a.db", rows), write_snapshot_db(tmp_path / "b.db", rows, layout_seed=7)
    )
    assert result.is_empty
    assert all((t.added, t.removed, t.changed) == (0, 0, 0) for t in result.tables.values())


def test_null_aware_comparison(tmp_path: Path) -> None:
    rows = base_rows()
    new = {name: list(table_rows) for name, table_rows in rows.items()}
    first = new["catalog_playlists"][0]
    new["catalog_playlists"][0] = (*first[:5], None, *first[6:])  # a cover_url becomes NULL
    result = diff_databases(write_snapshot_db(tmp_path / "a.db", rows), write_snapshot_db(tmp_path / "b.db", new))
    assert result.tables["catalog_playlists"].changed_examples == ({"playlist_id": 1},)
    back = diff_databases(tmp_path / "b.db", tmp_path / "a.db")
    assert back.tables["catalog_playlists"].changed == 1


def test_tables_and_columns_present_on_one_side(tmp_path: Path) -> None:
    rows = base_rows()
    ddl = dict(READ_MODEL_DDL)
    del ddl["catalog_toplists"]
    ddl["catalog_tracks"] = ddl["catalog_tracks"].replace("metadata_json TEXT)", "metadata_json TEXT, lyrics TEXT)")
    new_rows = {name: list(r) for name, r in rows.items() if name != "catalog_toplists"}
    new_rows["catalog_tracks"] = [(*row, None) for row in rows["catalog_tracks"]]
    old = write_snapshot_db(tmp_path / "a.db", rows)
    new = write_snapshot_db(tmp_path / "b.db", new_rows, ddl=ddl)
    result = diff_databases(old, new)
    toplists = result.tables["catalog_toplists"]
    assert (toplists.added, toplists.removed) == (0, 3)
    assert toplists.removed_examples[0] == {"toplist_id": "kuwo_top_16", "playlist_id": 1}
    tracks = result.tables["catalog_tracks"]
    assert tracks.columns_added == ("lyrics",) and tracks.changed == 0
    assert result.to_dict()["tables"]["catalog_tracks"]["columns"] == {"added": ["lyrics"], "removed": []}
    reverse = diff_databases(new, old).tables["catalog_toplists"]
    assert (reverse.added, reverse.removed) == (3, 0)


def test_bad_files_are_clear_errors(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(DatabaseError, match="not a SQLite database") as caught:
        diff_databases(pair[0], junk)
    assert caught.value.path == junk
    with pytest.raises(DatabaseError, match="no such file"):
        diff_databases(tmp_path / "missing.db", pair[1])


def test_large_tables_are_compared_in_sql(tmp_path: Path) -> None:
    """A few hundred thousand rows: counts stay exact (nothing is sampled) and quick enough for a unit test."""
    def build(path: Path, skip: int, bump: int) -> Path:
        conn = sqlite3.connect(path)
        conn.execute(READ_MODEL_DDL["catalog_playlist_tracks"])
        conn.execute(
            """INSERT INTO catalog_playlist_tracks
               WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 199999)
               SELECT i / 50, i % 50 + 1, (i * 7919) % 100000 + ? FROM n WHERE i != ?""",
            (bump, skip),
        )
        conn.commit()
        conn.close()
        return path

    result = diff_databases(build(tmp_path / "a.db", -1, 0), build(tmp_path / "b.db", 1234, 0))
    rows = result.tables["catalog_playlist_tracks"]
    assert (rows.added, rows.removed, rows.changed) == (0, 1, 0)
    assert rows.removed_examples == ({"playlist_id": 24, "position": 35, "song_id": (1234 * 7919) % 100000},)


# --- the CLI on a real snapshot repository --------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> tuple[Path, list[str]]:
    """A bare snapshot repository (real dulwich commits) with three snapshots: base, changed, base again."""
    rows = base_rows()
    ids = []
    for n, version in enumerate((rows, changed_rows(rows), rows)):
        snapshot = tmp_path / f"snap{n}"
        ids.append(write_snapshot_dir(snapshot, version, generated_at=f"2026-01-0{n + 1}T00:00:00Z"))
        commit_snapshot(tmp_path / "snapshots.git", snapshot)
    return tmp_path / "snapshots.git", ids


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main(["diff", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_cli_diff_defaults_to_the_last_two_snapshots(repo: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    repo_path, ids = repo
    data = run_json(capsys, "--repo", str(repo_path))
    assert (data["from"], data["to"]) == (ids[1], ids[2])
    # Going back to the base undoes the known change: what was added is now removed.
    assert data["tables"]["catalog_tracks"]["removed"] == 2
    assert data["tables"]["catalog_tracks"]["examples"]["removed"] == [{"song_id": 41}, {"song_id": 42}]

    data = run_json(capsys, "--repo", str(repo_path), "HEAD~2", "HEAD~1")
    assert (data["from"], data["to"]) == (ids[0], ids[1])
    assert data["tables"]["catalog_track_files"]["examples"]["changed"] == [{"location_id": 1005}]

    data = run_json(capsys, "--repo", str(repo_path), "HEAD~2")  # one revision: against HEAD
    assert (data["from"], data["to"]) == (ids[0], ids[2])
    assert all(t["added"] == t["removed"] == t["changed"] == 0 for t in data["tables"].values())

    data = run_json(capsys, "--repo", str(repo_path), ids[0], ids[1])  # tags
    assert data["tables"]["catalog_tracks"]["added"] == 2


def test_cli_diff_text_output(repo: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    repo_path, ids = repo
    assert main(["diff", "--repo", str(repo_path), "HEAD~2", "HEAD~1", "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"{ids[0]} -> {ids[1]}"
    assert "catalog_tracks: 2 added, 1 removed, 2 changed" in out
    assert "changed: song_id=10 (name); song_id=11 (name)" in out
    assert "... 11 more" in out  # 13 removed playlist rows, 2 shown
    assert main(["diff", "--repo", str(repo_path), "HEAD~2", "HEAD"]) == 0
    assert "no row changes" in capsys.readouterr().out


def test_cli_diff_works_on_a_consumer_clone(repo: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo_path, ids = repo
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(repo_path), str(clone)], check=True)
    head = (clone / "catalog_read.db").read_bytes()
    data = run_json(capsys, "--repo", str(clone), "HEAD~2", "HEAD~1")
    assert data["tables"]["catalog_tracks"]["changed"] == 2
    # Nothing was checked out or left behind in the work tree.
    assert (clone / "catalog_read.db").read_bytes() == head
    status = subprocess.run(["git", "-C", str(clone), "status", "--porcelain"], capture_output=True, text=True, check=True)
    assert status.stdout == ""


def test_cli_diff_errors(repo: tuple[Path, list[str]], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo_path, _ = repo
    assert main(["diff", "--repo", str(repo_path), "no-such-rev"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("snapbuild: error:") and err.count("\n") == 1
    assert main(["diff", "--repo", str(repo_path), "HEAD~1", "HEAD", "HEAD~2"]) == 2
    assert main(["diff", "--repo", str(tmp_path / "nowhere")]) == 1
    assert main(["diff", "--repo", str(repo_path), "HEAD~5"]) == 1
    assert "Traceback" not in capsys.readouterr().err


# --- the real pipeline: sample catalog -> export -> mutate -> export -> diff ----------------


def test_diff_of_exports_names_exactly_what_the_mutation_changed(tmp_path: Path) -> None:
    from snapbuild import export_snapshot
    from snapbuild.sample import mutate_sample_catalog, write_sample_catalog

    catalog = tmp_path / "catalogsync.db"
    write_sample_catalog(catalog, tracks=300, playlists=30, seed=11)
    before = export_snapshot(catalog, tmp_path / "a", generated_at="2026-01-01T00:00:00Z")
    conn = sqlite3.connect(catalog)
    lengths = dict(conn.execute("select playlist_id, count(*) from playlist_songs group by playlist_id"))
    conn.close()
    change = mutate_sample_catalog(catalog, fraction=0.05, seed=12)
    after = export_snapshot(catalog, tmp_path / "b", generated_at="2026-01-02T00:00:00Z")
    conn = sqlite3.connect(catalog)
    external = dict(conn.execute("select id, external_id from playlist_pools"))
    conn.close()

    result = diff_databases(
        tmp_path / "a" / "catalog_read.db", tmp_path / "b" / "catalog_read.db", examples=10_000,
        from_id=before.snapshot_id, to_id=after.snapshot_id,
    )
    assert (result.from_id, result.to_id) == (before.snapshot_id, after.snapshot_id)

    def keys(examples: tuple[dict, ...], column: str) -> set:
        return {example[column] for example in examples}

    tracks = result.tables["catalog_tracks"]
    assert keys(tracks.added_examples, "song_id") == set(change.added_song_ids)
    assert keys(tracks.changed_examples, "song_id") == set(change.renamed_song_ids)
    assert tracks.removed == 0

    files = result.tables["catalog_track_files"]
    assert keys(files.added_examples, "location_id") == set(change.added_location_ids)
    assert keys(files.removed_examples, "location_id") == set(change.deactivated_location_ids)
    assert keys(files.changed_examples, "location_id") == set(change.moved_location_ids)

    net = {playlist_id: 0 for playlist_id in lengths}
    for playlist_id, _ in change.removed_playlist_rows:
        net[playlist_id] -= 1
    for playlist_id, _, _ in change.appended_playlist_rows:
        net[playlist_id] += 1
    playlists = result.tables["catalog_playlists"]
    assert keys(playlists.changed_examples, "playlist_id") == set(change.renamed_playlist_ids) | {
        p for p, delta in net.items() if delta
    }
    assert playlists.added == playlists.removed == 0

    # Deleting position P of a playlist of length L removes rows P..L and re-adds P..L-1 under new positions.
    rows = result.tables["catalog_playlist_tracks"]
    assert rows.removed == sum(lengths[p] - position + 1 for p, position in change.removed_playlist_rows)
    assert rows.added == rows.removed - len(change.removed_playlist_rows) + len(change.appended_playlist_rows)

    toplists = result.tables["catalog_toplists"]
    assert {(e["toplist_id"], e["playlist_id"]) for e in toplists.added_examples} == {
        (external[pool], playlist) for pool, playlist in change.toplist_added
    }
    assert {(e["toplist_id"], e["playlist_id"]) for e in toplists.removed_examples} == {
        (external[pool], playlist) for pool, playlist in change.toplist_removed
    }


def test_changed_examples_name_their_columns_with_old_and_new_values(pair: tuple[Path, Path]) -> None:
    result = diff_databases(*pair, examples=20)
    tracks = result.tables["catalog_tracks"]
    assert tracks.changed_columns == (
        {"name": ("海屿你", "海屿你 (Live)")},
        {"name": ("Song #11 星河", "Song #11 银河")},
    )
    files = result.tables["catalog_track_files"]
    assert files.changed_columns == (
        {
            "locator": ("music/a b/5 #?.flac", "moved/5.flac"),
            "public_url": ("https://cdn.example/music/music/a%20b/5%20%23%3F.flac", "https://cdn.example/music/moved/5.flac"),
        },
    )
    data = json.loads(json.dumps(result.to_dict()))
    assert data["tables"]["catalog_tracks"]["examples"]["changed"] == [{"song_id": 10}, {"song_id": 11}]
    assert data["tables"]["catalog_tracks"]["changes"][0] == {
        "key": {"song_id": 10}, "columns": {"name": {"old": "海屿你", "new": "海屿你 (Live)"}},
    }
    assert data["tables"]["catalog_playlist_tracks"]["changes"] == []


def test_a_column_that_became_null_is_named(tmp_path: Path) -> None:
    rows = base_rows()
    new = {name: list(table_rows) for name, table_rows in rows.items()}
    first = new["catalog_playlists"][0]
    new["catalog_playlists"][0] = (*first[:5], None, *first[6:])
    result = diff_databases(write_snapshot_db(tmp_path / "a.db", rows), write_snapshot_db(tmp_path / "b.db", new))
    assert result.tables["catalog_playlists"].changed_columns == ({"cover_url": (first[5], None)},)


def test_cli_diff_names_the_changed_columns(repo: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]) -> None:
    repo_path, _ = repo
    assert main(["diff", "--repo", str(repo_path), "HEAD~2", "HEAD~1"]) == 0
    out = capsys.readouterr().out
    assert "changed: song_id=10 (name); song_id=11 (name)" in out
    assert "changed: location_id=1005 (locator, public_url)" in out
    data = run_json(capsys, "--repo", str(repo_path), "HEAD~2", "HEAD~1")
    change = data["tables"]["catalog_track_files"]["changes"][0]
    assert change["key"] == {"location_id": 1005}
    assert change["columns"]["locator"] == {"old": "music/a b/5 #?.flac", "new": "moved/5.flac"}
