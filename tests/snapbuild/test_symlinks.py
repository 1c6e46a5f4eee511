"""A symbolic link planted in the target or the repository is refused or removed, never followed.

Every case plants a link to a "victim" file or directory outside the target
and checks that the victim is untouched afterwards (not created, not
truncated, not written, its mode unchanged), and that the snapshot files are
regular files, not links.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from snapbuild.errors import RepoError, TargetError
from snapbuild.export import LOCK_NAME, recover_target, run_export
from snapbuild.fsutil import create_exclusive, open_nofollow, read_nofollow
from snapbuild.git.store import LOCK_NAME as REPO_LOCK_NAME
from snapbuild.git.store import STAGING_NAME
from snapbuild.manifest import DB_NAME, MANIFEST_NAME, PENDING_MANIFEST_NAME
from snapbuild.pipeline import export_and_commit

from .conftest import CATALOG_ROWS, GENERATED_AT, write_catalog

AUTHOR = "Snapshot Bot <bot@example.invalid>"


def plant_link(link: Path, to: Path) -> None:
    """Make ``link`` a symbolic link to ``to``, or skip where this account cannot."""
    try:
        link.symlink_to(to)
    except (OSError, NotImplementedError):
        pytest.skip("cannot create symbolic links here")


def assert_regular_pair(target: Path) -> None:
    for name in (DB_NAME, MANIFEST_NAME):
        assert not (target / name).is_symlink(), name
        assert (target / name).is_file(), name


@pytest.fixture
def source(tmp_path: Path) -> Path:
    return write_catalog(tmp_path / "catalog.db", CATALOG_ROWS)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """An empty target directory."""
    path = tmp_path / "snapshot"
    path.mkdir()
    return path


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    """A file outside the target that a planted link points to."""
    path = tmp_path / "victim.txt"
    path.write_bytes(b"precious")
    return path


def test_a_dangling_link_at_the_pending_manifest_creates_nothing(source: Path, target: Path, tmp_path: Path) -> None:
    victim = tmp_path / "victim.json"
    plant_link(target / PENDING_MANIFEST_NAME, victim)
    run_export(source, target, generated_at=GENERATED_AT)
    assert not victim.exists()
    assert not (target / PENDING_MANIFEST_NAME).is_symlink()
    assert_regular_pair(target)


def test_a_link_to_a_file_at_the_pending_manifest_leaves_the_file_alone(source: Path, target: Path, victim: Path) -> None:
    plant_link(target / PENDING_MANIFEST_NAME, victim)
    run_export(source, target, generated_at=GENERATED_AT)
    assert victim.read_bytes() == b"precious"
    assert_regular_pair(target)


def test_a_link_raced_onto_the_pending_manifest_is_not_written_through(source: Path, target: Path, victim: Path) -> None:
    """The link appears after the clean-up, right before the manifest is written."""

    def plant_at_publish(stage: str, done: int, total: int) -> None:
        if stage == "publish":
            plant_link(target / PENDING_MANIFEST_NAME, victim)

    run_export(source, target, generated_at=GENERATED_AT, progress=plant_at_publish)
    assert victim.read_bytes() == b"precious"
    assert_regular_pair(target)


def test_recovery_removes_a_link_where_a_pending_manifest_belongs(good_snapshot, tmp_path: Path) -> None:
    """A link to a manifest that matches the database must not become manifest.json."""
    copy = tmp_path / "copy.json"
    copy.write_bytes(good_snapshot.manifest_bytes)
    plant_link(good_snapshot.dir / PENDING_MANIFEST_NAME, copy)
    recover_target(good_snapshot.dir)
    assert not (good_snapshot.dir / PENDING_MANIFEST_NAME).is_symlink()
    assert copy.read_bytes() == good_snapshot.manifest_bytes
    good_snapshot.assert_intact()
    assert_regular_pair(good_snapshot.dir)


@pytest.mark.parametrize("name", [DB_NAME, MANIFEST_NAME])
def test_a_snapshot_file_that_is_a_link_is_replaced_not_written(
    source: Path, target: Path, tmp_path: Path, name: str
) -> None:
    first = tmp_path / "first"
    run_export(source, first, generated_at=GENERATED_AT)
    for each in (DB_NAME, MANIFEST_NAME):
        if each == name:
            plant_link(target / each, first / each)  # even a link to the same content
        else:
            (target / each).write_bytes((first / each).read_bytes())
    before = (first / name).read_bytes()
    result = run_export(source, target, generated_at=GENERATED_AT)
    assert result.changed  # the pair in place was not the target's own
    assert (first / name).read_bytes() == before
    assert_regular_pair(target)


def test_a_linked_export_lock_is_one_line_and_truncates_nothing(source: Path, target: Path, victim: Path) -> None:
    plant_link(target / LOCK_NAME, victim)
    with pytest.raises(TargetError, match="is a symbolic link; refusing to follow it"):
        run_export(source, target, generated_at=GENERATED_AT)
    assert victim.read_bytes() == b"precious"
    result = subprocess.run(
        [sys.executable, "-m", "snapbuild", "export", "--db", str(source), "--target-dir", str(target)],
        capture_output=True, text=True, encoding="utf-8", stdin=subprocess.DEVNULL, timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"snapbuild: error: the lock file {target / LOCK_NAME} is a symbolic link")
    assert victim.read_bytes() == b"precious"


def test_a_linked_repository_lock_is_one_line(source: Path, tmp_path: Path, victim: Path) -> None:
    repo = tmp_path / "snapshots.git"
    export_and_commit(source, repo, generated_at=GENERATED_AT, author=AUTHOR)
    (repo / REPO_LOCK_NAME).unlink()
    plant_link(repo / REPO_LOCK_NAME, victim)
    with pytest.raises(RepoError, match="is a symbolic link; refusing to follow it") as caught:
        export_and_commit(source, repo, generated_at=GENERATED_AT, author=AUTHOR)
    assert "\n" not in str(caught.value)
    assert victim.read_bytes() == b"precious"


def test_links_among_a_killed_writers_leftovers_are_removed_not_followed(
    source: Path, tmp_path: Path, victim: Path
) -> None:
    repo = tmp_path / "snapshots.git"
    export_and_commit(source, repo, generated_at=GENERATED_AT, author=AUTHOR)
    victim.chmod(stat.S_IREAD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "keep.txt").write_bytes(b"kept")
    plant_link(repo / "refs" / "heads" / "main.lock", victim)
    plant_link(repo / STAGING_NAME, elsewhere)

    changed = write_catalog(tmp_path / "changed.db", CATALOG_ROWS, "update songs set name = 'renamed'")
    run = export_and_commit(changed, repo, generated_at=GENERATED_AT, author=AUTHOR)
    assert run.committed.changed
    assert stat.S_IMODE(victim.stat().st_mode) == stat.S_IREAD
    assert victim.read_bytes() == b"precious"
    assert (elsewhere / "keep.txt").read_bytes() == b"kept"
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep.txt"]
    assert not (repo / STAGING_NAME).exists() and not (repo / "refs" / "heads" / "main.lock").exists()


def test_create_exclusive_refuses_any_existing_name(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    plant_link(tmp_path / "dangling", victim)
    with pytest.raises(FileExistsError):
        create_exclusive(tmp_path / "dangling", b"x")
    assert not victim.exists()
    create_exclusive(tmp_path / "new", b"data")
    assert (tmp_path / "new").read_bytes() == b"data"
    with pytest.raises(FileExistsError):
        create_exclusive(tmp_path / "new", b"other")


def test_opening_without_following(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(b"content")
    plant_link(tmp_path / "link", real)
    assert read_nofollow(real) == b"content"
    with pytest.raises(OSError):
        read_nofollow(tmp_path / "link")
    with pytest.raises(OSError):
        os.close(open_nofollow(tmp_path / "link", os.O_RDWR | os.O_CREAT))
    assert real.read_bytes() == b"content"
