"""`git.remote.push`: main and tags reach a bare remote with git or dulwich; consumers clone and pull."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

from snapbuild.errors import PushError
from snapbuild.git.remote import display_remote, push
from snapbuild.git.store import ensure_repo
from snapbuild.snapshots import commit_snapshot

from .repo_support import fsck, git, make_snapshot


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("tool", ["git", "dulwich"])
@pytest.mark.parametrize("url_form", ["path", "file-url"])
def test_push_then_consumer_clones_and_pulls_fast_forward(tmp_path: Path, tool: str, url_form: str) -> None:
    repo = tmp_path / "snapshots.git"
    remote = tmp_path / "server" / "catalog.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    url = str(remote) if url_form == "path" else remote.as_uri()
    git_exe = shutil.which("git") if tool == "git" else None
    first = commit_snapshot(repo, make_snapshot(tmp_path / "a", tracks=40), lock_timeout=5)

    pushed = push(repo, url, git=git_exe)

    assert pushed.tool == tool
    clone = tmp_path / "consumer"
    git("clone", "--quiet", url, clone)
    assert git("-C", clone, "rev-parse", "HEAD").stdout.strip() == first.commit
    assert git("-C", clone, "rev-parse", first.snapshot_id).stdout.strip() == first.commit

    second = commit_snapshot(
        repo, make_snapshot(tmp_path / "b", tracks=45, generated_at="2026-01-02T00:00:00Z"), lock_timeout=5
    )
    push(repo, url, git=git_exe)
    git("-C", clone, "pull", "--quiet", "--ff-only")
    assert git("-C", clone, "rev-parse", "HEAD").stdout.strip() == second.commit
    assert git("-C", clone, "rev-parse", second.snapshot_id).stdout.strip() == second.commit
    assert (clone / "catalog_read.db").read_bytes() == (tmp_path / "b" / "catalog_read.db").read_bytes()
    fsck(remote)
    fsck(clone / ".git")


@pytest.mark.parametrize("tool", ["git", "dulwich"])
def test_push_to_a_missing_remote_is_a_push_error(tmp_path: Path, tool: str) -> None:
    repo = tmp_path / "snapshots.git"
    commit_snapshot(repo, make_snapshot(tmp_path / "a", tracks=4), lock_timeout=5)
    nowhere = str(tmp_path / "nowhere.git")
    with pytest.raises(PushError, match="push to") as caught:
        push(repo, nowhere, git=shutil.which("git") if tool == "git" else None)
    assert caught.value.remote == nowhere
    assert caught.value.path == repo


@pytest.mark.parametrize("tool", ["git", "dulwich"])
def test_a_push_error_never_shows_the_remote_s_password(tmp_path: Path, tool: str) -> None:
    repo = tmp_path / "snapshots.git"
    commit_snapshot(repo, make_snapshot(tmp_path / "a", tracks=4), lock_timeout=5)
    port = free_port()  # nothing listens there
    remote = f"http://publisher:s3cret-pass@127.0.0.1:{port}/snapshots.git?token=s3cret-query"
    with pytest.raises(PushError) as caught:
        push(repo, remote, git=shutil.which("git") if tool == "git" else None)
    assert f"push to http://publisher@127.0.0.1:{port}/snapshots.git failed" in str(caught.value)
    assert "s3cret" not in str(caught.value)
    assert caught.value.remote == remote  # the data keeps what was given


@pytest.mark.parametrize(
    ("remote", "shown"),
    [
        ("https://user:secret@git.example.org/catalog.git", "https://user@git.example.org/catalog.git"),
        ("https://:token@git.example.org/catalog.git", "https://git.example.org/catalog.git"),
        ("https://git.example.org/catalog.git?private_token=x#y", "https://git.example.org/catalog.git"),
        ("ssh://git@git.example.org:2222/catalog.git", "ssh://git@git.example.org:2222/catalog.git"),
        ("git@git.example.org:catalog.git", "git@git.example.org:catalog.git"),
        ("../server.git", "../server.git"),
    ],
)
def test_remotes_are_shown_without_credentials(remote: str, shown: str) -> None:
    assert display_remote(remote) == shown


@pytest.mark.parametrize("tool", ["git", "dulwich"])
def test_push_never_overwrites_a_diverged_remote(tmp_path: Path, tool: str) -> None:
    repo = tmp_path / "snapshots.git"
    other = tmp_path / "other.git"
    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    commit_snapshot(other, make_snapshot(tmp_path / "o", tracks=9), lock_timeout=5)
    push(other, str(remote), git=shutil.which("git"))
    before = git("--git-dir", remote, "rev-parse", "main").stdout
    commit_snapshot(repo, make_snapshot(tmp_path / "a", tracks=4), lock_timeout=5)

    with pytest.raises(PushError) as caught:
        push(repo, str(remote), git=shutil.which("git") if tool == "git" else None)
    assert caught.value.remote == str(remote)
    assert git("--git-dir", remote, "rev-parse", "main").stdout == before


def test_push_with_nothing_committed_is_a_push_error(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    ensure_repo(repo)
    with pytest.raises(PushError, match="no snapshots yet") as caught:
        push(repo, str(tmp_path / "remote.git"), git=None)
    assert caught.value.path == repo
