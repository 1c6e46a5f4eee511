"""Git plumbing: streamed loose blobs, the rev-parse, opening and creating repositories."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapbuild.errors import RepoError
from snapbuild.git.objects import TMP_OBJECT_PREFIX, write_loose_blob
from snapbuild.git.revisions import resolve_rev
from snapbuild.git.store import ensure_repo, open_repo, reading
from snapbuild.snapshots import CommitResult, snapshot_history

from .repo_support import commit_history, fsck, git


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "snapshots.git"


@pytest.fixture
def history(tmp_path: Path, repo_path: Path) -> list[CommitResult]:
    """Three snapshots on main: 5, 6 and 8 tracks."""
    return commit_history(tmp_path, repo_path)


def resolve(where: Path, rev: str) -> bytes:
    with reading(where) as repo:
        return resolve_rev(repo, rev)


def test_resolve_rev_understands_the_usual_revision_forms(
    tmp_path: Path, repo_path: Path, history: list[CommitResult]
) -> None:
    first, second, third = (r.commit.encode() for r in history)
    clone = tmp_path / "clone"
    git("clone", "--quiet", repo_path, clone)
    for where in (repo_path, clone, clone / ".git"):
        assert resolve(where, "HEAD") == third
        assert resolve(where, "main") == third
        assert resolve(where, "HEAD~1") == second
        assert resolve(where, "HEAD^") == second
        assert resolve(where, "HEAD~2") == first
        assert resolve(where, "main^^") == first
        assert resolve(where, history[0].snapshot_id) == first
        assert resolve(where, f"{history[1].snapshot_id}~1") == first
        assert resolve(where, second.decode()) == second
        assert resolve(where, second.decode()[:8]) == second


@pytest.mark.parametrize("rev", ["HEAD~3", "HEAD^2", "nosuchref", "deadbeef", "snap-0000"])
def test_resolve_rev_refuses_what_names_no_commit(repo_path: Path, history: list[CommitResult], rev: str) -> None:
    with pytest.raises(RepoError):
        resolve(repo_path, rev)


def test_resolve_rev_on_an_empty_repository_says_there_are_no_snapshots(repo_path: Path) -> None:
    ensure_repo(repo_path)
    with pytest.raises(RepoError, match="no snapshots yet"):
        resolve(repo_path, "HEAD")
    assert snapshot_history(repo_path) == []


def test_a_shallow_clone_resolves_head_and_refuses_what_it_lacks(
    tmp_path: Path, repo_path: Path, history: list[CommitResult]
) -> None:
    clone = tmp_path / "shallow"
    git("clone", "--quiet", "--depth", "1", f"file://{repo_path.as_posix()}", clone)
    assert resolve(clone, "HEAD") == history[2].commit.encode()
    with pytest.raises(RepoError, match="history"):
        resolve(clone, "HEAD~1")
    entries = snapshot_history(clone)
    assert [e.snapshot_id for e in entries] == [history[2].snapshot_id]


def test_a_directory_that_is_not_a_repository_is_refused(tmp_path: Path) -> None:
    somewhere = tmp_path / "photos"
    somewhere.mkdir()
    (somewhere / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(RepoError, match="not a git repository") as caught:
        open_repo(somewhere)
    assert caught.value.path == somewhere
    with pytest.raises(RepoError, match="not a git repository"):
        ensure_repo(somewhere)
    assert sorted(p.name for p in somewhere.iterdir()) == ["cat.jpg"]


def test_ensure_repo_creates_a_bare_repository_on_main_once(repo_path: Path) -> None:
    assert ensure_repo(repo_path) == repo_path
    assert (repo_path / "HEAD").read_text(encoding="utf-8") == "ref: refs/heads/main\n"
    assert git("--git-dir", repo_path, "config", "core.bigFileThreshold").stdout.strip() == "4294967295"
    assert git("--git-dir", repo_path, "config", "repack.writeBitmaps").stdout.strip() == "false"
    assert ensure_repo(repo_path) == repo_path
    assert [p.name for p in repo_path.parent.iterdir()] == [repo_path.name]  # no staging left beside it


def test_write_loose_blob_matches_git_and_keeps_an_existing_object(tmp_path: Path, repo_path: Path) -> None:
    ensure_repo(repo_path)
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 20000)

    sha = write_loose_blob(repo_path / "objects", data)

    assert sha.decode() == git("hash-object", data).stdout.strip()
    assert git("--git-dir", repo_path, "cat-file", "-s", sha.decode()).stdout.strip() == str(data.stat().st_size)
    # Writing it again keeps the existing object and leaves no temporary file.
    assert write_loose_blob(repo_path / "objects", data) == sha
    assert not list((repo_path / "objects").glob(f"{TMP_OBJECT_PREFIX}*"))
    fsck(repo_path)
