"""A catalog-aware origin through the real CLIs: ``snapbuild export`` publishes, ``origin-server serve --catalog`` follows.

The operator exports into a directory (or commits, and a consumer clone
``git pull``s); a real waitress server started with ``--catalog DIR`` serves
a file only while the newest trusted snapshot there lists it, picks up each
new snapshot without a restart, and keeps the last good one when a broken
one appears.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from tests.conftest import require_tool
from tests.e2e.conftest import (
    TEST_SECRET,
    OriginProcess,
    git,
    mint_token_stdlib,
    origin_server,
    run_ok,
    write_key_file,
)

NAS = "nas-main"
# Generous: the origin looks every second; a loaded CI machine may be slow to export and read.
PATIENCE = 60


def nas_locators(directory: Path) -> list[str]:
    db = directory / "catalog_read.db"
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT locator FROM catalog_track_files WHERE backend_name = ? ORDER BY location_id", (NAS,)
        ).fetchall()
    finally:
        conn.close()
    return [row[0] for row in rows]


def set_status(catalog: Path, locator: str, status: str) -> None:
    with sqlite3.connect(catalog) as conn:
        assert conn.execute("UPDATE file_locations SET status = ? WHERE locator = ?", (status, locator)).rowcount == 1
    conn.close()


def status_of(origin: OriginProcess, locator: str) -> int:
    token = mint_token_stdlib(TEST_SECRET, locator, time.time() + 600, backend=NAS)
    return requests.get(origin.stream_url(token), headers={"Range": "bytes=0-99"}, timeout=10).status_code


def wait_for(condition: Callable[[], bool], what: str, origin: OriginProcess) -> None:
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen:\n{origin.log_text()}"
        time.sleep(0.2)
    assert origin.process.poll() is None  # the same server, never restarted


def snapshot_in_force(origin: OriginProcess) -> str:
    return requests.get(origin.base_url + "/healthz", timeout=10).json()["catalog"]


def manifest_id(directory: Path) -> str:
    return json.loads((directory / "manifest.json").read_text(encoding="utf-8"))["snapshot_id"]


def test_new_snapshots_exported_into_the_directory_take_effect_without_a_restart(tmp_path: Path) -> None:
    catalog, media, snap = tmp_path / "catalogsync.db", tmp_path / "media", tmp_path / "snapshot"
    run_ok("snapbuild", "sample-catalog", catalog, "--tracks", "80", "--playlists", "5", "--media-dir", media)
    run_ok("snapbuild", "export", "--db", catalog, "--target-dir", snap)
    removed, kept, later = nas_locators(snap)[:3]
    keys = write_key_file(tmp_path / "origin.keys")
    with origin_server(tmp_path, [f"{NAS}={media}"], secret_file=keys, extra_args=["--catalog", str(snap), "--healthz-details"]) as origin:
        assert f"catalog {manifest_id(snap)}" in origin.log_text()  # the start line names the snapshot
        assert status_of(origin, removed) == status_of(origin, kept) == 206

        set_status(catalog, removed, "inactive")
        run_ok("snapbuild", "export", "--db", catalog, "--target-dir", snap)
        wait_for(lambda: status_of(origin, removed) == 410, "the removed file answering 410", origin)
        assert status_of(origin, kept) == 206
        assert (media / removed).is_file()  # gone from the catalog, not from the disk
        good = manifest_id(snap)
        assert snapshot_in_force(origin) == good

        # A broken publication: a manifest vouching for a database that is not there.
        manifest = json.loads((snap / "manifest.json").read_text(encoding="utf-8"))
        manifest.update(db_sha256="0" * 64, snapshot_id="snap-broken")
        (snap / "manifest.tmp").write_text(json.dumps(manifest), encoding="utf-8")
        os.replace(snap / "manifest.tmp", snap / "manifest.json")
        wait_for(lambda: "stays in force" in origin.log_text(), "a warning about the broken snapshot", origin)
        warning = next(line for line in origin.log_text().splitlines() if "stays in force" in line)
        assert "WARNING" in warning and "db_sha256" in warning and good in warning
        assert snapshot_in_force(origin) == good
        assert status_of(origin, removed) == 410 and status_of(origin, kept) == 206

        # The next export repairs the directory and brings its snapshot into force.
        set_status(catalog, later, "inactive")
        set_status(catalog, removed, "active")
        run_ok("snapbuild", "export", "--db", catalog, "--target-dir", snap)
        wait_for(lambda: status_of(origin, later) == 410, "the next snapshot coming into force", origin)
        assert status_of(origin, removed) == 206 and status_of(origin, kept) == 206
        assert snapshot_in_force(origin) == manifest_id(snap)
    assert "Traceback" not in origin.log_text()


@pytest.mark.parametrize("layout", ["whole", "split"])
def test_a_consumer_clone_updated_by_git_pull_is_a_catalog(tmp_path: Path, layout: str) -> None:
    require_tool("git")
    catalog, media, repo = tmp_path / "catalogsync.db", tmp_path / "media", tmp_path / "snapshots.git"
    clone = tmp_path / "clone"
    split = ["--part-size", "4KiB"] if layout == "split" else []
    run_ok("snapbuild", "sample-catalog", catalog, "--tracks", "80", "--playlists", "5", "--media-dir", media)
    run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo, *split)
    git("clone", "--quiet", repo, clone)
    if split:  # the pieces are assembled by consumer-setup now and by its hooks after every pull
        assert not (clone / "catalog_read.db").exists()
        run_ok("snapbuild", "consumer-setup", clone)
    removed, kept = nas_locators(clone)[:2]
    keys = write_key_file(tmp_path / "origin.keys")
    with origin_server(tmp_path, [f"{NAS}={media}"], secret_file=keys, extra_args=["--catalog", str(clone), "--healthz-details"]) as origin:
        assert status_of(origin, removed) == 206
        set_status(catalog, removed, "inactive")
        run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo, *split)
        git("-C", clone, "pull", "--quiet", "--ff-only")
        wait_for(lambda: status_of(origin, removed) == 410, "the pulled snapshot coming into force", origin)
        assert status_of(origin, kept) == 206
        assert snapshot_in_force(origin) == manifest_id(clone)
        assert "stays in force" not in origin.log_text()
    assert "Traceback" not in origin.log_text()
