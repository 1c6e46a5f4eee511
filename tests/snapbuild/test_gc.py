"""`git.remote.gc`: repack with the git CLI (deltas) or dulwich, sizes before and after, nothing lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from snapbuild.errors import RepoError
from snapbuild.git.objects import write_loose_blob
from snapbuild.git.remote import gc
from snapbuild.git.store import repo_size
from snapbuild.snapshots import commit_snapshot

from .repo_support import commit_history, fsck, git, make_snapshot


@pytest.mark.parametrize("tool", ["git", "dulwich"])
def test_gc_packs_everything_keeps_every_snapshot_and_reports_sizes(tmp_path: Path, tool: str) -> None:
    repo = tmp_path / "snapshots.git"
    results = commit_history(tmp_path, repo, tracks=(20_000, 20_050, 20_100))
    # An unreachable object a killed writer left behind is pruned.
    orphan_data = tmp_path / "orphan.bin"
    orphan_data.write_bytes(b"orphan" * 1000)
    orphan = write_loose_blob(repo / "objects", orphan_data).decode()
    size_before = repo_size(repo)

    result = gc(repo, git=shutil.which("git") if tool == "git" else None, lock_timeout=5)

    assert result.tool == tool
    assert result.size_before == size_before
    assert result.size_after == repo_size(repo)
    assert list((repo / "objects" / "pack").glob("*.pack"))
    # No bitmap: with one, git's upload-pack would send a packed database whole.
    assert not list((repo / "objects" / "pack").glob("*.bitmap"))
    assert not (repo / "objects" / orphan[:2] / orphan[2:]).exists()
    if tool == "git":
        # git stores the three similar databases as deltas: far smaller than three copies.
        assert result.size_after < result.size_before
    fsck(repo)
    for r in results:
        assert git("--git-dir", repo, "rev-parse", r.snapshot_id).stdout.strip() == r.commit
    clone = tmp_path / "clone"
    git("clone", "--quiet", repo, clone)
    assert (clone / "catalog_read.db").read_bytes() == (tmp_path / "s3" / "catalog_read.db").read_bytes()
    # Committing on top of a packed repository works (refs may now be packed).
    snap = make_snapshot(tmp_path / "s4", tracks=30, generated_at="2026-01-04T00:00:00Z")
    assert commit_snapshot(repo, snap, lock_timeout=5).parent == results[-1].commit
    fsck(repo)


def test_gc_refuses_a_path_that_is_not_a_repository(tmp_path: Path) -> None:
    with pytest.raises(RepoError, match="not a git repository"):
        gc(tmp_path, git=None)


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "after-gc"])
def test_a_consumer_fetch_after_a_small_change_gets_a_delta_not_the_database(
    tmp_path: Path, packed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "snapshots.git"
    commit_snapshot(repo, make_snapshot(tmp_path / "a", tracks=60_000), lock_timeout=5)
    consumer = tmp_path / "consumer"
    git("clone", "--quiet", repo.as_uri(), consumer)
    snap = make_snapshot(tmp_path / "b", tracks=60_100, generated_at="2026-01-02T00:00:00Z")
    commit_snapshot(repo, snap, lock_timeout=5)
    if packed:
        gc(repo, git=shutil.which("git"), lock_timeout=5)

    trace = tmp_path / "received.pack"
    monkeypatch.setenv("GIT_TRACE_PACKFILE", str(trace))
    git("-C", consumer, "fetch", "--quiet", "origin")

    db_size = (snap / "catalog_read.db").stat().st_size
    assert trace.stat().st_size < db_size * 0.05, (trace.stat().st_size, db_size)
    monkeypatch.delenv("GIT_TRACE_PACKFILE")
    git("-C", consumer, "merge", "--quiet", "--ff-only", "origin/main")
    assert (consumer / "catalog_read.db").read_bytes() == (snap / "catalog_read.db").read_bytes()
