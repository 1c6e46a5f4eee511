"""Whole runs: export the catalog, commit the snapshot, push it; verify or diff a snapshot in git.

The one module that uses both the build (``export``, ``verify``, ``diff``)
and the history (``snapshots``, ``git``): neither knows about the other.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from .diff import SnapshotDiff, diff_databases
from .errors import PushError
from .export import ExportResult, run_export
from .git import remote
from .git.remote import PushResult
from .defaults import DEFAULT_AUTHOR, DEFAULT_LOCK_TIMEOUT
from .git.store import STAGING_NAME, ensure_repo, repo_lock
from .manifest import DB_NAME, MANIFEST_NAME, SnapshotManifest
from .layout import check_checkout, work_tree_at
from .readmodel import Progress
from .snapshots import (
    CommitResult,
    commit_locked,
    extract_snapshot,
    parse_author,
    require_snapshot_repo,
)
from .verify import verify_snapshot


@dataclass(frozen=True)
class RunResult:
    """What :func:`export_and_commit` did.

    Attributes:
        exported: the export (its ``manifest`` is the one committed).
        committed: the commit, or the note that ``main`` already held this content.
        pushed: the push, when a remote was given and the push succeeded.
        push_error: why the push failed; the commit stands and the next run pushes again.
    """

    exported: ExportResult
    committed: CommitResult
    pushed: PushResult | None = None
    push_error: PushError | None = None


def export_and_commit(
    source_db: str | os.PathLike[str],
    repo_path: str | os.PathLike[str],
    *,
    generated_at: str | datetime,
    author: str = DEFAULT_AUTHOR,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    target_dir: str | os.PathLike[str] | None = None,
    busy_timeout: float = 5.0,
    progress: Progress | None = None,
    push_to: str | None = None,
    git: str | None = None,
    env: Mapping[str, str] | None = None,
    part_size: int | None = None,
) -> RunResult:
    """Export the catalog and commit it, holding the writer lock throughout; then push if asked.

    Without ``target_dir`` the export is built in a staging directory inside
    the repository (removed afterwards, or by the next writer after a crash);
    with it, that directory is updated too and committed from. The commit
    takes the export's manifest as it is: nothing is read back from disk.
    With ``push_to``, ``main`` and the tags go there afterwards (also when
    nothing changed, so a failed push is retried by the next run); a failed
    push is reported in the result, not raised, because the commit stands.

    Args:
        git: the git CLI for the push (deltas), or None for dulwich's client.
        env: the push transport's environment (see ``git.remote.push``).
        part_size: the split layout's part size (see ``snapshots.commit_locked``).

    Raises:
        UsageError: ``author`` is not ``Name <email>``, or ``generated_at`` is not a timestamp.
        RepoError: not a snapshot repository, or the commit failed.
        RepoLockedError: another writer held the lock past ``lock_timeout``.
        SourceError, TargetError: as :func:`snapbuild.export.run_export`.
    """
    author_bytes = parse_author(author)
    git_dir = ensure_repo(repo_path)
    require_snapshot_repo(git_dir)
    with repo_lock(git_dir, lock_timeout):
        snapshot_dir = Path(target_dir) if target_dir is not None else git_dir / STAGING_NAME
        try:
            exported = run_export(
                source_db, snapshot_dir, generated_at=generated_at, busy_timeout=busy_timeout, progress=progress
            )
            committed = commit_locked(
                git_dir, snapshot_dir / DB_NAME, exported.manifest, author_bytes, part_size=part_size
            )
        finally:
            if target_dir is None:
                shutil.rmtree(snapshot_dir, ignore_errors=True)
    if push_to is None:
        return RunResult(exported, committed)
    try:
        pushed = remote.push(git_dir, push_to, git=git, env=env)
    except PushError as error:
        return RunResult(exported, committed, push_error=error)
    return RunResult(exported, committed, pushed=pushed)


@contextmanager
def _snapshots_from_git(
    repo_path: str | os.PathLike[str], revs: list[str], *, purpose: str, work_dir: str | os.PathLike[str] | None
) -> Iterator[list[tuple[Path, SnapshotManifest]]]:
    """Extract the snapshot at each revision into its own temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=f"snapbuild-{purpose}-", dir=work_dir) as tmp:
        extracted = []
        for number, rev in enumerate(revs):
            directory = Path(tmp) / str(number)
            extracted.append((directory, extract_snapshot(repo_path, rev, directory)))
        yield extracted


def verify_revision(
    repo_path: str | os.PathLike[str], rev: str = "HEAD", *, work_dir: str | os.PathLike[str] | None = None
) -> SnapshotManifest:
    """Extract the snapshot at ``rev`` to a temporary directory and verify it like ``verify DIR``.

    In a clone whose HEAD is ``rev``, the checked-out files are checked too
    (``layout.check_checkout``): the pieces, and the database when present.

    Raises:
        RepoError: not a repository, a bad revision, a commit without a snapshot,
            or a piece in git that does not match the manifest.
        VerifyError: the snapshot, or the clone's checkout of it, does not match its
            manifest, or fails SQLite's checks.
    """
    with _snapshots_from_git(repo_path, [rev], purpose="verify", work_dir=work_dir) as sides:
        directory, _ = sides[0]
        manifest = verify_snapshot(directory / DB_NAME, directory / MANIFEST_NAME)
        work_tree = work_tree_at(repo_path, rev)
        if work_tree is not None:
            check_checkout(work_tree, manifest, (directory / MANIFEST_NAME).read_bytes())
        return manifest


def diff_revisions(
    repo_path: str | os.PathLike[str],
    rev_a: str = "HEAD~1",
    rev_b: str = "HEAD",
    *,
    examples: int = 5,
    work_dir: str | os.PathLike[str] | None = None,
) -> SnapshotDiff:
    """Compare the snapshots at two revisions of a snapshot repository (bare or a clone), without a checkout.

    Each side's database is streamed from its git object into a temporary
    directory (under ``work_dir``, default the system's temporary directory)
    that is removed afterwards; the ids come from the two manifests.

    Raises:
        RepoError: not a repository, a bad revision, or a commit without a snapshot.
        VerifyError: a database cannot be read.
    """
    with _snapshots_from_git(repo_path, [rev_a, rev_b], purpose="diff", work_dir=work_dir) as sides:
        (old_dir, old_manifest), (new_dir, new_manifest) = sides
        return diff_databases(
            old_dir / DB_NAME,
            new_dir / DB_NAME,
            examples=examples,
            from_id=old_manifest.snapshot_id,
            to_id=new_manifest.snapshot_id,
        )
