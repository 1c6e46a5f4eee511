"""Snapshot history: commits, tags, no-ops, determinism, safety under the lock, history, extraction."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from snapbuild import snapshots
from snapbuild.consumer import DRIVER_NAME
from snapbuild.errors import InsufficientSpaceError, RepoError, RepoLockedError, UsageError
from snapbuild.git.objects import TMP_OBJECT_PREFIX
from snapbuild.git.remote import gc
from snapbuild.git.store import STAGING_NAME
from snapbuild.manifest import DB_NAME, MANIFEST_NAME
from snapbuild.snapshots import CommitResult, commit_snapshot

from .repo_support import commit_history, fsck, git, lock_held_by_another_process, make_snapshot, object_files


@pytest.fixture
def repo_path(tmp_path: Path) -> Path:
    return tmp_path / "snapshots.git"


def _manifest_id(snapshot: Path) -> str:
    import json

    return json.loads((snapshot / "manifest.json").read_text(encoding="utf-8"))["snapshot_id"]


def test_first_commit_creates_a_bare_repo_on_main_that_git_accepts(tmp_path: Path, repo_path: Path) -> None:
    snap = make_snapshot(tmp_path / "snap", tracks=50)

    result = commit_snapshot(repo_path, snap, lock_timeout=5)

    assert result.changed and result.tag_created and result.parent is None
    assert result.snapshot_id == _manifest_id(snap)
    assert (repo_path / "HEAD").read_text(encoding="utf-8") == "ref: refs/heads/main\n"
    assert git("--git-dir", repo_path, "rev-parse", "main").stdout.strip() == result.commit
    assert git("--git-dir", repo_path, "rev-parse", f"{result.snapshot_id}^{{commit}}").stdout.strip() == result.commit
    assert git("--git-dir", repo_path, "config", "core.bigFileThreshold").stdout.strip() == "4294967295"
    names = git("--git-dir", repo_path, "ls-tree", "--name-only", "main").stdout.split()
    assert names == [".gitattributes", "README.md", "catalog_read.db", "manifest.json"]
    attributes = git("--git-dir", repo_path, "show", "main:.gitattributes").stdout
    assert f"{DB_NAME} -text -merge diff={DRIVER_NAME}" in attributes
    # The tree's bytes are part of every commit id: the same snapshot must keep giving the same commit.
    assert attributes == (
        "# Written by snapbuild. The database is binary: never merge or convert it, but\n"
        "# show row changes through the 'snapbuild' diff driver (see README.md).\n"
        "catalog_read.db -text -merge diff=snapbuild\n"
        "manifest.json text eol=lf\n"
    )
    fsck(repo_path)

    clone = tmp_path / "clone"
    git("clone", "--quiet", repo_path, clone)
    assert (clone / "catalog_read.db").read_bytes() == (snap / "catalog_read.db").read_bytes()
    assert (clone / "manifest.json").read_bytes() == (snap / "manifest.json").read_bytes()


def test_commit_time_author_and_message_come_from_the_manifest_and_caller(tmp_path: Path, repo_path: Path) -> None:
    commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=10), lock_timeout=5)
    snap = make_snapshot(tmp_path / "b", tracks=13, playlists=2, generated_at="2026-02-03T04:05:06Z")

    result = commit_snapshot(repo_path, snap, author="Ops Team <ops@example.org>", lock_timeout=5)

    fmt = "%an|%ae|%cn|%ce|%aI|%cI"
    shown = git("--git-dir", repo_path, "log", "-1", f"--format={fmt}", result.commit).stdout.strip()
    assert shown == "Ops Team|ops@example.org|Ops Team|ops@example.org|2026-02-03T04:05:06+00:00|2026-02-03T04:05:06+00:00"
    message = git("--git-dir", repo_path, "log", "-1", "--format=%B", result.commit).stdout
    assert message.startswith(f"Snapshot {result.snapshot_id}: 13 tracks, 2 playlists")
    assert "catalog_tracks     13 (+3)" in message
    assert "catalog_playlists  2 (-1)" in message


def test_same_catalog_and_time_give_the_same_commit_in_any_fresh_repo(tmp_path: Path) -> None:
    ids = []
    for name in ("one", "two"):
        repo = tmp_path / f"{name}.git"
        commit_snapshot(repo, make_snapshot(tmp_path / name / "a", tracks=20), lock_timeout=5)
        later = make_snapshot(tmp_path / name / "b", tracks=25, generated_at="2026-03-01T00:00:00Z")
        ids.append(commit_snapshot(repo, later, lock_timeout=5).commit)
    assert ids[0] == ids[1]


def test_unchanged_content_writes_nothing_and_restores_a_missing_tag(tmp_path: Path, repo_path: Path) -> None:
    first = commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=30), lock_timeout=5)
    before = object_files(repo_path)
    # Same rows, generated a day later: the content digest is the same.
    again = make_snapshot(tmp_path / "b", tracks=30, generated_at="2026-01-02T00:00:00Z")

    result = commit_snapshot(repo_path, again, lock_timeout=5)

    assert not result.changed and not result.tag_created
    assert result.commit == first.commit
    assert object_files(repo_path) == before

    # A crash between the branch update and the tag: the next run adds the tag.
    (repo_path / "refs" / "tags" / first.snapshot_id).unlink()
    result = commit_snapshot(repo_path, again, lock_timeout=5)
    assert not result.changed and result.tag_created
    assert git("--git-dir", repo_path, "rev-parse", first.snapshot_id).stdout.strip() == first.commit
    assert object_files(repo_path) == before


def test_returning_to_an_earlier_state_makes_a_new_commit_and_keeps_the_old_tag(tmp_path: Path, repo_path: Path) -> None:
    a = commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=5), lock_timeout=5)
    b = commit_snapshot(
        repo_path, make_snapshot(tmp_path / "b", tracks=6, generated_at="2026-01-02T00:00:00Z"), lock_timeout=5
    )
    back = commit_snapshot(
        repo_path, make_snapshot(tmp_path / "c", tracks=5, generated_at="2026-01-03T00:00:00Z"), lock_timeout=5
    )

    assert back.changed and not back.tag_created and back.parent == b.commit
    assert back.snapshot_id == a.snapshot_id
    assert git("--git-dir", repo_path, "rev-parse", a.snapshot_id).stdout.strip() == a.commit
    assert git("--git-dir", repo_path, "rev-list", "--count", "main").stdout.strip() == "3"
    fsck(repo_path)


def test_a_leftover_git_lock_from_a_killed_writer_is_cleared(tmp_path: Path, repo_path: Path) -> None:
    commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=5), lock_timeout=5)
    (repo_path / "refs" / "heads" / "main.lock").write_text("junk", encoding="utf-8")
    (repo_path / "packed-refs.lock").write_text("", encoding="utf-8")
    (repo_path / "objects" / f"{TMP_OBJECT_PREFIX}leftover").write_bytes(b"x" * 100)
    (repo_path / STAGING_NAME).mkdir()
    (repo_path / STAGING_NAME / DB_NAME).write_bytes(b"half an export")

    result = commit_snapshot(repo_path, make_snapshot(tmp_path / "b", tracks=7), lock_timeout=5)

    assert result.changed
    assert not (repo_path / "refs" / "heads" / "main.lock").exists()
    assert not (repo_path / "packed-refs.lock").exists()
    assert not list((repo_path / "objects").glob(f"{TMP_OBJECT_PREFIX}*"))
    assert not (repo_path / STAGING_NAME).exists()
    fsck(repo_path)


def test_a_second_writer_waits_then_fails_with_a_clear_message(tmp_path: Path, repo_path: Path) -> None:
    commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=5), lock_timeout=5)
    with lock_held_by_another_process(repo_path):
        with pytest.raises(RepoLockedError, match="locked by another snapbuild writer") as caught:
            commit_snapshot(repo_path, make_snapshot(tmp_path / "b", tracks=7), lock_timeout=0.3)
    assert caught.value.timeout == 0.3
    assert caught.value.path == repo_path
    assert "--lock-timeout" not in str(caught.value)  # the command line adds its flag
    # The OS released the dead holder's lock: no file needs deleting by hand.
    assert commit_snapshot(repo_path, make_snapshot(tmp_path / "b", tracks=7), lock_timeout=5).changed


def test_too_little_free_space_stops_before_any_object_is_written(
    tmp_path: Path, repo_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=5), lock_timeout=5)
    before = object_files(repo_path)
    head = git("--git-dir", repo_path, "rev-parse", "main").stdout
    snap = make_snapshot(tmp_path / "b", tracks=2000)
    db_size = (snap / "catalog_read.db").stat().st_size
    real = shutil.disk_usage

    def nearly_full(path: object) -> object:
        usage = real(path)
        return type(usage)(usage.total, usage.total - 2 * db_size + 1, 2 * db_size - 1)

    monkeypatch.setattr(shutil, "disk_usage", nearly_full)
    with pytest.raises(InsufficientSpaceError, match="not enough free space") as caught:
        commit_snapshot(repo_path, snap, lock_timeout=5)
    assert (caught.value.free, caught.value.needed) == (2 * db_size - 1, 2 * db_size)
    assert caught.value.path == repo_path
    assert object_files(repo_path) == before
    assert git("--git-dir", repo_path, "rev-parse", "main").stdout == head


def test_bad_author_is_a_usage_error(tmp_path: Path, repo_path: Path) -> None:
    for author in ("no email", "<a@b>", "Name <a@b> trailing", "Name <>"):
        with pytest.raises(UsageError, match="Name <email>") as caught:
            commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=5), author=author)
        assert caught.value.argument == "author"
    assert not repo_path.exists()


def test_a_directory_that_is_not_a_repository_is_refused(tmp_path: Path) -> None:
    somewhere = tmp_path / "photos"
    somewhere.mkdir()
    (somewhere / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(RepoError, match="not a git repository") as caught:
        commit_snapshot(somewhere, make_snapshot(tmp_path / "a", tracks=5), lock_timeout=5)
    assert caught.value.path == somewhere
    assert sorted(p.name for p in somewhere.iterdir()) == ["cat.jpg"]


def test_an_existing_empty_directory_becomes_the_repository(tmp_path: Path) -> None:
    empty = tmp_path / "empty.git"
    empty.mkdir()
    commit_snapshot(empty, make_snapshot(tmp_path / "a", tracks=5), lock_timeout=5)
    fsck(empty)


@pytest.fixture
def history(tmp_path: Path, repo_path: Path) -> list[CommitResult]:
    """Three snapshots on main: 5, 6 and 8 tracks."""
    return commit_history(tmp_path, repo_path)


def test_history_is_newest_first_with_row_count_changes(repo_path: Path, history: list[CommitResult]) -> None:
    entries = snapshots.snapshot_history(repo_path)

    assert [e.commit for e in entries] == [r.commit for r in reversed(history)]
    assert [e.changes["catalog_tracks"] for e in entries] == [2, 1, 5]
    assert entries[0].parent_snapshot_id == history[1].snapshot_id
    assert entries[-1].parent_snapshot_id is None
    assert entries[0].counts["track_count"] == 8
    assert entries[0].generated_at == "2026-01-03T00:00:00Z"
    assert len(snapshots.snapshot_history(repo_path, limit=2)) == 2


def test_dulwich_can_read_what_was_committed_under_its_own_limits(tmp_path: Path, repo_path: Path) -> None:
    from dulwich.repo import Repo

    result = commit_snapshot(repo_path, make_snapshot(tmp_path / "a", tracks=3000), lock_timeout=5)
    repo = Repo(str(repo_path))
    try:
        tree = repo[repo[result.commit.encode()].tree]
        blob = repo[tree[b"catalog_read.db"][1]]
        assert blob.as_raw_string() == (tmp_path / "a" / "catalog_read.db").read_bytes()
    finally:
        repo.close()


@pytest.mark.parametrize("packed", [False, True], ids=["loose", "packed"])
def test_extract_snapshot_writes_the_files_of_any_revision(
    tmp_path: Path, repo_path: Path, history: list[CommitResult], packed: bool
) -> None:
    if packed:
        gc(repo_path, git=shutil.which("git"), lock_timeout=5)
        assert not list((repo_path / "objects").glob("[0-9a-f][0-9a-f]/*"))
    dest = tmp_path / "out"

    manifest = snapshots.extract_snapshot(repo_path, "HEAD~1", dest)

    assert manifest.snapshot_id == history[1].snapshot_id
    assert manifest.track_count == 6
    assert (dest / "catalog_read.db").read_bytes() == (tmp_path / "s2" / "catalog_read.db").read_bytes()
    assert (dest / "manifest.json").read_bytes() == (tmp_path / "s2" / "manifest.json").read_bytes()
    assert sorted(p.name for p in dest.iterdir()) == ["catalog_read.db", "manifest.json"]


def test_extract_snapshot_detects_a_corrupt_loose_object(
    tmp_path: Path, repo_path: Path, history: list[CommitResult]
) -> None:
    import zlib

    blob = git("--git-dir", repo_path, "rev-parse", "HEAD:catalog_read.db").stdout.strip()
    path = repo_path / "objects" / blob[:2] / blob[2:]
    data = bytearray(zlib.decompress(path.read_bytes()))
    data[-1] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(zlib.compress(bytes(data), 1))

    with pytest.raises(RepoError, match="corrupt"):
        snapshots.extract_snapshot(repo_path, "HEAD", tmp_path / "out")
    assert not (tmp_path / "out" / "catalog_read.db").exists()


def test_a_manifest_in_git_that_does_not_parse_is_a_repo_error_naming_the_commit(
    tmp_path: Path, repo_path: Path, history: list[CommitResult]
) -> None:
    # A commit on main whose manifest.json lost a contract field, made with git's plumbing.
    bad = tmp_path / "bad.json"
    bad.write_text('{"snapshot_id": "snap-0000000000000000"}\n', encoding="utf-8")
    blob = git("--git-dir", repo_path, "hash-object", "-w", bad).stdout.strip()
    entries = git("--git-dir", repo_path, "ls-tree", "main").stdout.replace(
        git("--git-dir", repo_path, "rev-parse", f"main:{MANIFEST_NAME}").stdout.strip(), blob
    )
    tree = subprocess.run(
        ["git", "--git-dir", str(repo_path), "mktree"], input=entries, capture_output=True, text=True, check=True
    ).stdout.strip()
    commit = git("--git-dir", repo_path, "commit-tree", tree, "-p", "main", "-m", "broken").stdout.strip()
    git("--git-dir", repo_path, "update-ref", "refs/heads/main", commit)

    for read in (snapshots.snapshot_history, lambda path: snapshots.extract_snapshot(path, "HEAD", tmp_path / "out")):
        with pytest.raises(RepoError, match=f"{MANIFEST_NAME} at {commit[:12]}: not a snapbuild manifest") as caught:
            read(repo_path)
        assert caught.value.path == repo_path
    with pytest.raises(RepoError, match=commit[:12]):
        commit_snapshot(repo_path, make_snapshot(tmp_path / "next", tracks=9), lock_timeout=5)
