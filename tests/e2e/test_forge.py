"""Publishing through a forge-like remote with the real CLIs: a catalog over the forge's file limit pushes, clones and pulls.

The remote refuses blobs over its limit and never deltifies blobs over its
``core.bigFileThreshold``, as GitHub and GitLab do at 100 MiB and 50 MB.
Every size is scaled down by 512 so that a 3,000-track catalog (a 1.2 MiB
database) plays the part of a database over 100 MiB: part size 64 KiB for
the default 32 MiB, limit 200 KiB for 100 MiB, threshold 100 KiB for 50 MB.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from snapbuild.sample import mutate_sample_catalog, write_sample_catalog
from tests.conftest import require_tool
from tests.e2e.conftest import REPO_ROOT, cli_env, db_matches_manifest, git, run_cli, run_ok, write_key_file
from tests.e2e.forge_support import FORGE_BIG_FILE_THRESHOLD, GITHUB_REFUSE_ABOVE, make_forge_remote

SCALE = 512
PART = (32 << 20) // SCALE
LIMIT = GITHUB_REFUSE_ABOVE // SCALE
THRESHOLD = FORGE_BIG_FILE_THRESHOLD // SCALE


@pytest.fixture
def forge(tmp_path: Path) -> Path:
    require_tool("git")
    return make_forge_remote(tmp_path / "forge" / "catalog.git", refuse_above=LIMIT, big_file_threshold=THRESHOLD)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalogsync.db"
    write_sample_catalog(path, tracks=3000, playlists=300, seed=7)
    return path


def export_push(catalog: Path, repo: Path, forge: Path, stamp: str, *extra: str):
    return run_cli("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo, "--generated-at", stamp,
                   "--push", forge, *extra)


def test_a_database_over_the_forge_limit_publishes_clones_and_pulls_verified(
    tmp_path: Path, forge: Path, catalog: Path
) -> None:
    repo = tmp_path / "snapshots.git"
    first = export_push(catalog, repo, forge, "2026-01-01T00:00:00Z", "--part-size", f"{PART // 1024}KiB")
    assert first.returncode == 0, first.stderr
    assert "stored as 20 pieces of at most 64 KiB" in first.stdout and "warning" not in first.stderr

    template = tmp_path / "hooks-template"
    run_ok("snapbuild", "consumer-setup", "--template", template)
    clone = tmp_path / "consumer"
    git("clone", "--quiet", "--template", template, forge.as_uri(), clone)
    assert db_matches_manifest(clone)
    assert (clone / "catalog_read.db").stat().st_size > LIMIT  # the database is over the forge's file limit
    run_ok("snapbuild", "verify", "--repo", clone)

    mutate_sample_catalog(catalog, fraction=0.01, seed=1)
    # Without --part-size the repository keeps its own.
    second = export_push(catalog, repo, forge, "2026-01-02T00:00:00Z")
    assert second.returncode == 0, second.stderr
    trace = tmp_path / "pull.pack"
    pulled = subprocess.run(["git", "-C", str(clone), "pull", "--ff-only"], capture_output=True, text=True,
                            env=cli_env({"GIT_TRACE_PACKFILE": str(trace)}), check=True)
    assert "assembled catalog_read.db from 20 pieces" in pulled.stdout + pulled.stderr
    assert db_matches_manifest(clone)
    assert json.loads((clone / "manifest.json").read_text(encoding="utf-8"))["generated_at"] == "2026-01-02T00:00:00Z"
    run_ok("snapbuild", "verify", "--repo", clone)
    # Deltas worked under the threshold: far less than the whole compressed database.
    assert trace.stat().st_size < 0.10 * (clone / "catalog_read.db").stat().st_size
    for git_dir in (forge, clone / ".git"):
        git("--git-dir", git_dir, "fsck", "--full", "--strict", "--no-dangling")
    assert max(int(line.split()[3]) for line in git("--git-dir", forge, "ls-tree", "-r", "-l", "main").stdout.splitlines()) <= PART


def test_the_whole_layout_over_the_limit_is_refused_by_the_forge(tmp_path: Path, forge: Path, catalog: Path) -> None:
    refused = export_push(catalog, tmp_path / "snapshots.git", forge, "2026-01-01T00:00:00Z", "--part-size", "4MiB")
    assert refused.returncode == 1
    assert refused.stderr.count("\n") == 1 and "pre-receive hook declined" in refused.stderr
    assert "committed" in refused.stdout  # the commit stands; the next run pushes again
    assert git("--git-dir", forge, "for-each-ref").stdout == ""


def test_the_public_service_example_serves_a_split_snapshot(tmp_path: Path, forge: Path, catalog: Path) -> None:
    repo = tmp_path / "snapshots.git"
    assert export_push(catalog, repo, forge, "2026-01-01T00:00:00Z", "--part-size", "64KiB").returncode == 0
    keys = write_key_file(tmp_path / "origin-keys.txt")
    workdir = tmp_path / "service"

    def serve() -> dict:
        result = subprocess.run(
            [sys.executable, str(REPO_ROOT / "examples" / "public_service.py"), "--remote", forge.as_uri(),
             "--workdir", str(workdir), "--origin-url", "http://127.0.0.1:9", "--secret-file", str(keys), "--json"],
            capture_output=True, text=True, encoding="utf-8", timeout=120, env=cli_env(),
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return json.loads(result.stdout)

    first = serve()
    mutate_sample_catalog(catalog, fraction=0.01, seed=1)
    assert export_push(catalog, repo, forge, "2026-01-02T00:00:00Z").returncode == 0
    second = serve()
    assert first["snapshot_id"] != second["snapshot_id"] and second["tracks"]
    live = workdir / "live" / f"catalog_read.{second['snapshot_id']}.db"
    manifest = json.loads((workdir / "clone" / "manifest.json").read_text(encoding="utf-8"))
    assert "parts" in manifest and hashlib.sha256(live.read_bytes()).hexdigest() == manifest["db_sha256"]
