"""The whole pipeline as the operator and a public service run it, through the real CLIs.

``snapbuild sample-catalog --media-dir`` -> ``snapbuild export --commit`` ->
a consumer ``git clone``s the snapshots -> reads ``catalog_track_files``
from its ``catalog_read.db`` -> object-storage rows carry the right
``public_url``; NAS-only rows stream, byte for byte, from a real
``origin-server serve`` through tokens minted with the documented recipe ->
the catalog changes -> ``export --commit`` -> ``git pull --ff-only`` ->
``snapbuild diff --json`` names exactly what changed -> the new files stream
too. The same flow runs through ``examples/public_service.py``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import requests

from tests.conftest import require_tool
from tests.e2e.conftest import (
    REPO_ROOT,
    TEST_SECRET,
    cli_env,
    git,
    mint_token_stdlib,
    origin_server,
    run_ok,
    write_key_file,
)

# The read model's tables and their keys (the interface the diff and consumers rely on).
KEYS = {
    "catalog_playlists": ("playlist_id",),
    "catalog_tracks": ("song_id",),
    "catalog_playlist_tracks": ("playlist_id", "position", "song_id"),
    "catalog_track_files": ("location_id",),
    "catalog_toplists": ("toplist_id", "playlist_id"),
}


def open_snapshot(path: Path) -> sqlite3.Connection:
    """Open a snapshot database read-only, taking no locks (it is a private copy that never changes)."""
    return sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)


def read_rows(db: Path, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """``{key: whole row}`` of one read-model table."""
    conn = open_snapshot(db)
    try:
        cursor = conn.execute(f"select * from {table}")
        names = [d[0] for d in cursor.description]
        positions = [names.index(k) for k in KEYS[table]]
        return {tuple(row[i] for i in positions): tuple(row) for row in cursor}
    finally:
        conn.close()


def row_diff(old: Path, new: Path) -> dict[str, dict[str, set[tuple[Any, ...]]]]:
    """An independent, naive row diff by table key (to check ``snapbuild diff`` against)."""
    result = {}
    for table in KEYS:
        a, b = read_rows(old, table), read_rows(new, table)
        result[table] = {
            "added": set(b) - set(a),
            "removed": set(a) - set(b),
            "changed": {k for k in set(a) & set(b) if a[k] != b[k]},
        }
    return result


def track_files(db: Path) -> list[dict[str, Any]]:
    """``catalog_track_files`` as a public service reads it."""
    conn = open_snapshot(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("select * from catalog_track_files order by location_id")]
    finally:
        conn.close()


def public_base_url(catalog: Path) -> str:
    conn = sqlite3.connect(f"file:{catalog.as_posix()}?mode=ro", uri=True)
    try:
        (config,) = conn.execute("select config_json from storage_backends where name = 'main-s3'").fetchone()
    finally:
        conn.close()
    return json.loads(config)["public_base_url"]


def expected_public_url(base: str, locator: str) -> str:
    """The base joined to the locator with exactly one ``/``, every segment percent-encoded."""
    return base.rstrip("/") + "/" + "/".join(urllib.parse.quote(segment, safe="") for segment in locator.split("/"))


def stream(url: str, expected: bytes, *, ranged: bool = False) -> None:
    """GET ``url`` (whole, or a range in the middle) and compare with ``expected`` byte for byte."""
    if ranged and len(expected) > 10:
        start, end = len(expected) // 3, len(expected) // 2
        response = requests.get(url, headers={"Range": f"bytes={start}-{end}"}, timeout=30)
        assert response.status_code == 206, (response.status_code, response.text[:200])
        assert response.content == expected[start : end + 1]
    else:
        response = requests.get(url, timeout=30)
        assert response.status_code == 200, (response.status_code, response.text[:200])
        assert response.content == expected


@pytest.fixture
def published(tmp_path: Path) -> dict[str, Path]:
    """The operator's side: a sample catalog with media files, exported and committed."""
    require_tool("git")
    catalog, media, repo = tmp_path / "catalogsync.db", tmp_path / "media", tmp_path / "snapshots.git"
    run_ok("snapbuild", "sample-catalog", catalog, "--tracks", "150", "--playlists", "12", "--seed", "8",
           "--media-dir", media)
    run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo)
    return {"catalog": catalog, "media": media, "repo": repo, "keys": write_key_file(tmp_path / "origin-keys.txt")}


@pytest.mark.slow
def test_whole_pipeline(published: dict[str, Path], tmp_path: Path) -> None:
    from origin_server.tokens import create_origin_token
    from snapbuild.sample import mutate_sample_catalog

    catalog, media, repo = published["catalog"], published["media"], published["repo"]
    clone = tmp_path / "consumer"
    git("clone", "-q", repo, clone)
    base = public_base_url(catalog)

    with origin_server(tmp_path, [f"nas-main={media}"], secret_file=published["keys"]) as origin:
        rows = track_files(clone / "catalog_read.db")
        nas = [r for r in rows if r["backend_type"] == "nas"]
        s3 = [r for r in rows if r["backend_type"] == "object_storage"]
        assert nas and s3
        for row in s3:
            assert row["public_url"] == expected_public_url(base, row["locator"])
        exp = time.time() + 600
        for i, row in enumerate(nas):
            assert row["public_url"] is None
            # Alternately the library and the stdlib recipe of docs/tokens.md: both are what a service may use.
            if i % 2:
                token = mint_token_stdlib(TEST_SECRET, row["locator"], exp, backend=row["backend_name"])
            else:
                token = create_origin_token(TEST_SECRET, row["locator"], exp, backend=row["backend_name"])
            stream(origin.stream_url(token), (media / row["locator"]).read_bytes(), ranged=i % 3 == 0)

        # The catalog changes; the operator exports again; the consumer pulls.
        old_db = tmp_path / "old_catalog_read.db"
        shutil.copyfile(clone / "catalog_read.db", old_db)
        change = mutate_sample_catalog(catalog, fraction=0.05, seed=9, media_dir=media)
        run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo)
        git("pull", "-q", "--ff-only", cwd=clone)
        new_db = clone / "catalog_read.db"

        # snapbuild diff names exactly what changed: it agrees with a naive row diff and with mutate's report.
        reported = json.loads(run_ok("snapbuild", "diff", "--repo", clone, "--json").stdout)
        naive = row_diff(old_db, new_db)
        for table, sets in naive.items():
            counts = reported["tables"].get(table, {"added": 0, "removed": 0, "changed": 0})
            assert {kind: counts[kind] for kind in ("added", "removed", "changed")} == {
                kind: len(keys) for kind, keys in sets.items()
            }, table
        assert naive["catalog_tracks"]["added"] == {(s,) for s in change.added_song_ids}
        assert naive["catalog_tracks"]["changed"] == {(s,) for s in change.renamed_song_ids}
        assert not naive["catalog_tracks"]["removed"]
        assert naive["catalog_track_files"]["added"] == {(loc,) for loc in change.added_location_ids}
        assert naive["catalog_track_files"]["removed"] == {(loc,) for loc in change.deactivated_location_ids}
        assert naive["catalog_track_files"]["changed"] == {(loc,) for loc in change.moved_location_ids}
        assert {(p,) for p in change.renamed_playlist_ids} <= naive["catalog_playlists"]["changed"]
        assert {(p,) for p, _ in change.removed_playlist_rows} <= naive["catalog_playlists"]["changed"]
        assert {(p, pos, s) for p, pos, s in change.appended_playlist_rows} <= naive["catalog_playlist_tracks"]["added"]
        assert len(naive["catalog_toplists"]["added"]) == len(change.toplist_added)
        assert len(naive["catalog_toplists"]["removed"]) == len(change.toplist_removed)
        # Its examples are real keys of the changed rows.
        for table, counts in reported["tables"].items():
            assert_examples_are_keys(counts, naive[table], table)

        # The new files (and the moved ones) stream too.
        rows = {r["location_id"]: r for r in track_files(new_db)}
        fresh = [rows[loc] for loc in (*change.added_location_ids, *change.moved_location_ids) if loc in rows]
        fresh_nas = [r for r in fresh if r["backend_type"] == "nas"]
        assert fresh_nas, "the change added or moved at least one NAS file"
        for row in fresh:
            if row["backend_type"] == "nas":
                token = create_origin_token(TEST_SECRET, row["locator"], time.time() + 600, backend=row["backend_name"])
                stream(origin.stream_url(token), (media / row["locator"]).read_bytes(), ranged=True)
            else:
                assert row["public_url"] == expected_public_url(base, row["locator"])
        # A deactivated location is gone from the snapshot, so a service cannot mint a URL for it.
        assert not set(change.deactivated_location_ids) & set(rows)


def assert_examples_are_keys(report: dict[str, Any], sets: dict[str, set[tuple[Any, ...]]], table: str) -> None:
    """``snapbuild diff`` shows example keys for each non-empty category, each one the naive diff found."""
    examples = report["examples"]
    for kind, keys in sets.items():
        shown = [tuple(example[column] for column in KEYS[table]) for example in examples.get(kind, [])]
        assert bool(shown) == bool(keys), (table, kind, shown)
        assert set(shown) <= keys, (table, kind, shown)


# --- examples/public_service.py ----------------------------------------------------------


def load_example() -> ModuleType:
    """Import examples/public_service.py as a module (it is a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location("public_service", REPO_ROOT / "examples" / "public_service.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["public_service"] = module
    spec.loader.exec_module(module)
    return module


def run_example(*args: str | Path) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "public_service.py"), *map(str, args), "--json"],
        capture_output=True, text=True, encoding="utf-8", timeout=120, env=cli_env(),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_public_service_example_runs_end_to_end(published: dict[str, Path], tmp_path: Path) -> None:
    from snapbuild.sample import mutate_sample_catalog

    catalog, media, repo = published["catalog"], published["media"], published["repo"]
    workdir = tmp_path / "service"
    base = public_base_url(catalog)
    with origin_server(tmp_path, [f"nas-main={media}"], secret_file=published["keys"]) as origin:
        common = ("--remote", repo, "--workdir", workdir, "--origin-url", origin.base_url,
                  "--secret-file", published["keys"])
        first = run_example(*common, "--limit", "40")
        assert first["snapshot_id"] == json.loads(git("show", "main:manifest.json", cwd=repo).stdout)["snapshot_id"]
        checked = check_example_urls(first["tracks"], media, base, origin.base_url)
        assert checked["nas"] and checked["object_storage"]

        change = mutate_sample_catalog(catalog, fraction=0.05, seed=10, media_dir=media)
        run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo)
        second = run_example(*common, *[arg for s in change.added_song_ids for arg in ("--song-id", str(s))])
        assert second["snapshot_id"] != first["snapshot_id"]
        assert second["snapshot_id"] == json.loads(git("show", "main:manifest.json", cwd=repo).stdout)["snapshot_id"]
        assert sorted(t["song_id"] for t in second["tracks"]) == sorted(change.added_song_ids)
        checked = check_example_urls(second["tracks"], media, base, origin.base_url)
        assert checked["nas"] == len(change.added_song_ids)
    # Only the current snapshot's private copy is left.
    assert [p.name for p in (workdir / "live").iterdir()] == [f"catalog_read.{second['snapshot_id']}.db"]


def check_example_urls(tracks: list[dict[str, Any]], media: Path, base: str, origin_url: str) -> dict[str, int]:
    """Fetch every NAS URL the example printed and compare bytes; check every public URL's form."""
    seen = {"nas": 0, "object_storage": 0}
    for track in tracks:
        for file in track["files"]:
            if file["type"] == "nas":
                assert file["url"].startswith(origin_url + "/api/private-origin/stream/")
                stream(file["url"], (media / file["locator"]).read_bytes())
            else:
                assert file["url"] == expected_public_url(base, file["locator"])
            seen[file["type"]] += 1
    return seen


def test_copy_aside_and_switch_keeps_open_readers_on_their_snapshot(published: dict[str, Path], tmp_path: Path) -> None:
    """A reader that is open across a pull and a switch keeps its snapshot; the old copy goes when it closes."""
    from snapbuild.sample import mutate_sample_catalog

    example = load_example()
    catalog, repo = published["catalog"], published["repo"]
    clone = tmp_path / "clone"
    example.sync_clone(str(repo), clone)
    store = example.SnapshotStore(tmp_path / "live")
    assert store.switch_to(clone) is True
    assert store.switch_to(clone) is False  # same snapshot: nothing to do
    first_id = store.manifest["snapshot_id"]

    with store.reader() as old_conn:
        old_count = old_conn.execute("select count(*) from catalog_tracks").fetchone()[0]
        change = mutate_sample_catalog(catalog, fraction=0.05, seed=11)
        run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo)
        example.sync_clone(str(repo), clone)  # git pull rewrites the clone's catalog_read.db; our copy is untouched
        assert store.switch_to(clone) is True
        second_id = store.manifest["snapshot_id"]
        assert second_id != first_id
        # The open reader still sees its own snapshot, whole.
        assert old_conn.execute("select count(*) from catalog_tracks").fetchone()[0] == old_count
        assert old_conn.execute("pragma quick_check").fetchone()[0] == "ok"
        # New readers see the new one.
        with store.reader() as new_conn:
            new_count = new_conn.execute("select count(*) from catalog_tracks").fetchone()[0]
        assert new_count == old_count + len(change.added_song_ids)
        assert (tmp_path / "live" / f"catalog_read.{first_id}.db").exists()
    # The last reader of the old copy closed: it is deleted.
    assert sorted(p.name for p in (tmp_path / "live").iterdir()) == [f"catalog_read.{second_id}.db"]


def test_service_keeps_its_snapshot_when_the_schema_is_unsupported(published: dict[str, Path], tmp_path: Path) -> None:
    example = load_example()
    clone = tmp_path / "clone"
    example.sync_clone(str(published["repo"]), clone)
    store = example.SnapshotStore(tmp_path / "live")
    store.switch_to(clone)
    current = store.manifest["snapshot_id"]
    manifest = json.loads((clone / "manifest.json").read_text(encoding="utf-8"))
    manifest["snapshot_id"], manifest["schema_version"] = "snap-future", example.SUPPORTED_SCHEMA_MAJOR + 1
    (clone / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(example.ConsumerError, match="schema_version"):
        store.switch_to(clone)
    assert store.manifest["snapshot_id"] == current
    with store.reader() as conn:
        assert conn.execute("select count(*) from catalog_tracks").fetchone()[0] > 0
