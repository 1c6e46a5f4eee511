"""Whole runs through `snapbuild.pipeline`: export and commit with the manifest in hand, push, and reading back."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from snapbuild.errors import PushError, UsageError
from snapbuild.git.store import STAGING_NAME
from snapbuild.manifest import MANIFEST_NAME
from snapbuild.pipeline import diff_revisions, export_and_commit, verify_revision
from snapbuild.sample import mutate_sample_catalog, write_sample_catalog

from .repo_support import fsck, git


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    path = tmp_path / "catalogsync.db"
    write_sample_catalog(path, tracks=200, playlists=10, seed=5)
    return path


def test_the_commit_holds_the_manifest_the_export_returned(tmp_path: Path, catalog: Path) -> None:
    repo = tmp_path / "snapshots.git"

    run = export_and_commit(catalog, repo, generated_at="2026-01-01T00:00:00Z", lock_timeout=5)

    assert run.committed.changed and run.committed.snapshot_id == run.exported.manifest.snapshot_id
    assert run.pushed is None and run.push_error is None
    shown = git("--git-dir", repo, "show", f"main:{MANIFEST_NAME}").stdout
    assert shown == run.exported.manifest.to_json()
    assert git("--git-dir", repo, "log", "-1", "--format=%cI", "main").stdout.strip() == "2026-01-01T00:00:00+00:00"
    assert not (repo / STAGING_NAME).exists()
    fsck(repo)
    assert verify_revision(repo) == run.exported.manifest


def test_a_failed_push_is_reported_and_the_commit_stands(tmp_path: Path, catalog: Path) -> None:
    repo = tmp_path / "snapshots.git"
    missing = str(tmp_path / "missing.git")

    run = export_and_commit(catalog, repo, generated_at="2026-01-01T00:00:00Z", push_to=missing, git=shutil.which("git"))

    assert isinstance(run.push_error, PushError) and run.push_error.remote == missing
    assert run.pushed is None
    assert git("--git-dir", repo, "rev-parse", "main").stdout.strip() == run.committed.commit

    remote = tmp_path / "remote.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    again = export_and_commit(catalog, repo, generated_at="2026-01-02T00:00:00Z", push_to=str(remote), git=None)
    assert not again.committed.changed and again.push_error is None
    assert again.pushed is not None and again.pushed.tool == "dulwich"
    assert git("--git-dir", remote, "rev-parse", "main").stdout.strip() == run.committed.commit


def test_a_bad_author_stops_before_anything_is_created(tmp_path: Path, catalog: Path) -> None:
    repo = tmp_path / "snapshots.git"
    with pytest.raises(UsageError) as caught:
        export_and_commit(catalog, repo, generated_at="2026-01-01T00:00:00Z", author="nobody")
    assert caught.value.argument == "author"
    assert not repo.exists()


def test_verify_and_diff_read_revisions_back_from_git(tmp_path: Path, catalog: Path) -> None:
    repo = tmp_path / "snapshots.git"
    first = export_and_commit(catalog, repo, generated_at="2026-01-01T00:00:00Z")
    mutate_sample_catalog(catalog, fraction=0.05, seed=6)
    second = export_and_commit(catalog, repo, generated_at="2026-01-02T00:00:00Z")
    work = tmp_path / "work"
    work.mkdir()

    assert verify_revision(repo, "HEAD~1", work_dir=work) == first.exported.manifest
    result = diff_revisions(repo, "HEAD~1", "HEAD", work_dir=work)

    assert (result.from_id, result.to_id) == (first.committed.snapshot_id, second.committed.snapshot_id)
    assert not result.is_empty
    assert list(work.iterdir()) == []  # the extracted snapshots are gone
