"""Whole runs: export the catalog, commit the snapshot, push it; verify or diff a snapshot in git.

The one module that uses both the build (``export``, ``verify``, ``diff``)
and the history (``snapshots``, ``git``): neither knows about the other.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from .diff import SnapshotDiff, diff_databases
from .errors import PushError
from .export import ExportResult, run_export
from .git import remote
from .git.remote import PushResult
from .defaults import DEFAULT_AUTHOR, DEFAULT_LOCK_TIMEOUT
from .git.store import open_or_create, repo_lock, staging_dir
from .manifest import DB_NAME, MANIFEST_NAME, SnapshotManifest
from .git.revisions import resolve_rev, work_tree_at
from .git.store import reading
from .layout import check_checkout
from .readmodel import Progress
from .signing.keys import SigningKey
from .snapshots import (
    CommitResult,
    commit_locked,
    extract_snapshot,
    parse_author,
    require_snapshot_repo,
    snapshot_history,
)
from .verify import verify_snapshot

if TYPE_CHECKING:
    from .notify import Announcement, Notifier


@dataclass(frozen=True)
class RunResult:
    """What :func:`export_and_commit` did.

    Attributes:
        exported: the export (its ``manifest`` is the one committed).
        committed: the commit, or the note that ``main`` already held this content.
        pushed: the push, when a remote was given and the push succeeded.
        push_error: why the push failed; the commit stands and the next run pushes again.
        notified: the receivers told about the snapshot, when a notifier was given and
            the push (if any) succeeded.
        created_repo: this run created the repository.
    """

    exported: ExportResult
    committed: CommitResult
    pushed: PushResult | None = None
    push_error: PushError | None = None
    notified: Announcement | None = None
    created_repo: bool = False


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
    notifier: Notifier | None = None,
    signer: SigningKey | None = None,
    push_progress: Callable[[str], None] | None = None,
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
    With ``notifier``, once a new snapshot is committed and pushed, every
    receiver is told, and a receiver that missed an earlier notice is told
    even when nothing changed (see ``notify.announce``); failures are
    reported in the result, not raised.

    Args:
        git: the git CLI for the push (deltas), or None for dulwich's client.
        env: the push transport's environment (see ``git.remote.push``).
        progress: ``progress(stage, done, total)`` through the export's stages, then ``"commit"`` in bytes.
        push_progress: receives the push's progress output (see ``git.remote.push``).
        notifier: the receivers to tell about the snapshot, or None.
        signer: the key that signs the commit (see ``snapshots.commit_locked``), or None.
        part_size: the split layout's part size (see ``snapshots.commit_locked``).

    Raises:
        UsageError: ``author`` is not ``Name <email>``, or ``generated_at`` is not a timestamp.
        RepoError: not a snapshot repository, or the commit failed.
        RepoLockedError: another writer held the lock past ``lock_timeout``.
        SourceError, TargetError: as :func:`snapbuild.export.run_export`.
        SigningKeyError: ``signer`` could not sign; ``main`` did not move.
    """
    author_bytes = parse_author(author)
    git_dir, created = open_or_create(repo_path)
    require_snapshot_repo(git_dir)
    with repo_lock(git_dir, lock_timeout):
        with staging_dir(git_dir) if target_dir is None else nullcontext(Path(target_dir)) as snapshot_dir:
            exported = run_export(
                source_db, snapshot_dir, generated_at=generated_at, busy_timeout=busy_timeout, progress=progress
            )
            committed = commit_locked(
                git_dir, snapshot_dir / DB_NAME, exported.manifest, author_bytes, part_size=part_size, signer=signer,
                progress=progress,
            )
    pushed = None
    if push_to is not None:
        try:
            pushed = remote.push(git_dir, push_to, git=git, env=env, progress=push_progress)
        except PushError as error:
            if notifier is not None and committed.changed:
                from .notify import owe

                try:
                    owe(git_dir, notifier.urls, committed.commit)  # told once a later run has pushed it
                except OSError:
                    pass  # then told with the next new snapshot
            # Consumers could not pull it yet.
            return RunResult(exported, committed, push_error=error, created_repo=created)
    if notifier is None:
        return RunResult(exported, committed, pushed=pushed, created_repo=created)
    from .notify import announce  # HTTP and TLS load only for a run that notifies

    snapshot, *previous = snapshot_history(git_dir, committed.commit, limit=2)
    notified = announce(
        git_dir, snapshot.to_dict(), previous[0].commit if previous else None, notifier, new=committed.changed
    )
    return RunResult(exported, committed, pushed=pushed, notified=notified, created_repo=created)


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
    # One resolution: a pull between two would check the new checkout against the old snapshot.
    with reading(repo_path) as repo:
        commit = resolve_rev(repo, rev)
        work_tree = work_tree_at(repo, commit)
    with _snapshots_from_git(repo_path, [commit.decode()], purpose="verify", work_dir=work_dir) as sides:
        directory, _ = sides[0]
        manifest = verify_snapshot(directory / DB_NAME, directory / MANIFEST_NAME)
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
