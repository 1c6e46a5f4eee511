"""Snapshot history: one commit on ``main`` per snapshot; commit one, read one back, list them.

A snapshot commit's tree holds the database (``catalog_read.db``, or its
pieces under ``catalog_read.db.parts/`` once it outgrew the part size: see
``layout.py``), ``manifest.json``, a ``.gitattributes`` and a short consumer
``README.md``. Every snapshot id is also a lightweight tag on the commit
that introduced it.

Writing order (what makes a kill -9 harmless): the database blobs are streamed
into temporary files inside ``objects/`` and renamed into place, then dulwich
writes the small objects, then ``main`` moves by compare-and-swap from the
parent the commit was built on, then the tag. A crash before the ref update
leaves only unreferenced objects; one after it leaves a complete snapshot.
Every writer holds the repository's writer lock (``git.store.repo_lock``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from dulwich.objects import Commit
from dulwich.repo import Repo

from .errors import InsufficientSpaceError, ManifestError, RepoError, UsageError
from .git.objects import read_blob
from .git.revisions import HEAD_REF, TAG_PREFIX, has_head, resolve_rev
from .defaults import DEFAULT_AUTHOR, DEFAULT_LOCK_TIMEOUT
from .git.store import BRANCH_REF, configure, ensure_repo, open_repo, reading, repo_lock
from .layout import layout_lines, snapshot_entries, stream_database, write_tree
from .manifest import COUNT_FIELDS, DB_NAME, MANIFEST_NAME, SnapshotManifest
from .signing.allowed import AllowedSigners
from .signing.commits import SignatureCheck, check_signature, sign_commit
from .signing.keys import SigningKey
from .parts import choose_part_size


_AUTHOR_RE = re.compile(r"[^<>\n]*[^<>\s][^<>\n]* <[^<>\s]+>")
_COUNT_LABELS = {"track_count": "tracks", "playlist_count": "playlists", "file_count": "files", "cover_count": "covers"}


@dataclass(frozen=True)
class CommitResult:
    """What a commit of a snapshot did.

    Attributes:
        commit: hex id of ``main`` after the call (the new commit, or HEAD if unchanged).
        snapshot_id: the snapshot's id, also its tag name.
        changed: True if a new commit was written.
        tag_created: True if the snapshot's tag was created by this call.
        parent: hex id of the commit the new one was built on (None for the first).
        repo: the repository's git directory.
        signed: True if ``commit`` carries a signature (made now, or earlier when unchanged).
        part_size: the split layout's part size, 0 for the whole layout (of HEAD's snapshot).
        pieces: how many pieces hold the database, 0 for the whole layout.
        largest_blob: the size of the largest database blob this call wrote (0 if none).
    """

    commit: str
    snapshot_id: str
    changed: bool
    tag_created: bool
    parent: str | None
    repo: Path
    signed: bool = False
    part_size: int = 0
    pieces: int = 0
    largest_blob: int = 0


@dataclass(frozen=True)
class HistoryEntry:
    """One snapshot on ``main``, with its row-count changes against its parent (and its signature, when checked).

    ``shallow`` marks the oldest commit a shallow clone holds: it has a
    parent, but not in this clone, so its changes are unknown (empty).
    ``part_size`` and ``pieces`` give its layout (0 for the whole layout);
    ``parent_part_size`` the parent's (None without a parent).
    """

    commit: str
    snapshot_id: str
    generated_at: str
    counts: dict[str, int]
    table_counts: dict[str, int]
    changes: dict[str, int | None]
    parent_snapshot_id: str | None
    shallow: bool = False
    signature: SignatureCheck | None = None
    part_size: int = 0
    pieces: int = 0
    parent_part_size: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``changes``: table -> row delta, None for a new table; ``layout``; ``signature`` if checked)."""
        signature = {"signature": self.signature.to_dict()} if self.signature is not None else {}
        layout: dict[str, Any] = {"layout": "split", "pieces": self.pieces, "part_size": self.part_size}
        return {
            "commit": self.commit,
            "snapshot_id": self.snapshot_id,
            "generated_at": self.generated_at,
            "counts": dict(self.counts),
            "table_counts": dict(self.table_counts),
            "changes": dict(self.changes),
            "parent_snapshot_id": self.parent_snapshot_id,
            "shallow": self.shallow,
            **signature,
            **(layout if self.pieces else {"layout": "whole"}),
        }


def parse_author(author: str) -> bytes:
    """Validate ``"Name <email>"`` and return it as commit bytes.

    Raises:
        UsageError: the string is not of the form ``Name <email>`` (``argument="author"``).
    """
    text = author.strip()
    if not _AUTHOR_RE.fullmatch(text):
        raise UsageError(f"invalid author {author!r}: expected 'Name <email>'", argument="author")
    return text.encode("utf-8")


# --------------------------------------------------------------------------- reading


def _parse_manifest(raw: bytes, where: str, path: object) -> SnapshotManifest:
    """A manifest the history can rely on: it parses and names its content digest."""
    try:
        manifest = SnapshotManifest.from_bytes(raw)
    except ManifestError as error:
        raise RepoError(f"{where}: not a snapbuild manifest ({error})", path=path) from error
    if not manifest.content_digest:
        raise RepoError(f"{where}: not a snapbuild manifest (no content_digest)", path=path)
    return manifest


def _committed_manifest(repo: Repo, sha: bytes, raw: bytes) -> SnapshotManifest:
    """Parse the manifest bytes of commit ``sha``; errors name the commit."""
    return _parse_manifest(raw, f"{MANIFEST_NAME} at {sha.decode()[:12]}", Path(repo.controldir()))


def _manifest_at(repo: Repo, sha: bytes) -> SnapshotManifest:
    manifest_sha, _ = snapshot_entries(repo, sha)
    return _committed_manifest(repo, sha, read_blob(repo, manifest_sha))


def require_snapshot_repo(git_dir: str | os.PathLike[str]) -> None:
    """Refuse a repository that is not a snapshot repository, before anything touches it.

    Called before the lock, the config and the export, so a writer pointed at
    another project's repository changes nothing there (nor in its target).
    Empty repositories are fine: ``git init --bare`` makes a valid first home.

    Raises:
        RepoError: ``main`` holds no snapshot, or there is no ``main`` but other refs.
    """
    with reading(git_dir) as repo:
        try:
            main = repo.refs[BRANCH_REF]
        except KeyError:
            others = [ref for ref in repo.refs.allkeys() if ref != HEAD_REF]
            if others:
                raise RepoError(
                    f"{git_dir} is not a snapshot repository: it has no {BRANCH_REF.decode()} but other refs "
                    f"({others[0].decode()}); use an empty or snapbuild-made repository",
                    path=git_dir,
                ) from None
            return
        try:
            snapshot_entries(repo, main)
        except RepoError:
            raise RepoError(
                f"{git_dir} is not a snapshot repository: {BRANCH_REF.decode()} holds no snapshot", path=git_dir
            ) from None


def _write_aside(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write a file under a temporary name beside ``path``, then rename it into place."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with open(fd, "wb") as out:
            write(out)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def extract_snapshot(
    repo_path: str | os.PathLike[str], rev: str, dest_dir: str | os.PathLike[str]
) -> SnapshotManifest:
    """Write the snapshot at ``rev`` to ``dest_dir/catalog_read.db`` and ``dest_dir/manifest.json``.

    Nothing is checked out; the database is streamed from its object, or
    from its pieces in order, each checked against the manifest (see
    ``git.objects.stream_blob`` for packed objects). Each file is written aside and renamed.

    Raises:
        RepoError: not a repository, bad revision, the commit holds no snapshot,
            its manifest is not a snapbuild manifest, or a piece does not match it (named).
    """
    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with reading(repo_path) as repo:
        sha = resolve_rev(repo, rev)
        manifest_sha, blobs = snapshot_entries(repo, sha)
        manifest_raw = read_blob(repo, manifest_sha)
        manifest = _committed_manifest(repo, sha, manifest_raw)
        _write_aside(dest / DB_NAME, lambda out: stream_database(repo, sha, blobs, manifest, out))
        _write_aside(dest / MANIFEST_NAME, lambda out: out.write(manifest_raw))
    return manifest


def _table_changes(new: SnapshotManifest, old: SnapshotManifest | None) -> dict[str, int | None]:
    """Row-count change per table against the parent (None: the table is new)."""
    changes: dict[str, int | None] = {}
    old_counts = old.table_counts if old else {}
    for table in sorted(set(new.table_counts) | set(old_counts)):
        if table not in old_counts:
            changes[table] = None if old is not None else new.table_counts[table]
        else:
            changes[table] = new.table_counts.get(table, 0) - old_counts[table]
    return changes


def snapshot_history(
    repo_path: str | os.PathLike[str],
    rev: str = "HEAD",
    *,
    limit: int | None = None,
    signers: AllowedSigners | None = None,
) -> list[HistoryEntry]:
    """The snapshots on the first-parent chain from ``rev``, newest first; with ``signers``, each one's signature check.

    Raises:
        RepoError: not a repository, bad revision, or a commit without a snapshot.
    """
    entries: list[HistoryEntry] = []
    with reading(repo_path) as repo:
        if rev == "HEAD" and not has_head(repo):
            return []
        sha: bytes | None = resolve_rev(repo, rev)
        info = _manifest_at(repo, sha) if sha else None
        shallow_edges = repo.get_shallow()
        while sha and info and (limit is None or len(entries) < limit):
            commit = repo.object_store[sha]
            parent_sha = commit.parents[0] if commit.parents else None
            parent_info = None
            shallow = False
            if parent_sha is not None:
                try:
                    if sha in shallow_edges:
                        raise KeyError(parent_sha)
                    parent_info = _manifest_at(repo, parent_sha)
                except KeyError:
                    parent_sha, shallow = None, True  # the edge of a shallow clone
            entries.append(
                HistoryEntry(
                    commit=sha.decode(),
                    snapshot_id=info.snapshot_id,
                    generated_at=info.generated_at,
                    counts=info.counts,
                    table_counts=dict(info.table_counts),
                    changes={} if shallow else _table_changes(info, parent_info),
                    parent_snapshot_id=parent_info.snapshot_id if parent_info else None,
                    shallow=shallow,
                    signature=check_signature(repo, sha, signers) if signers is not None else None,
                    part_size=info.part_size,
                    pieces=len(info.parts),
                    parent_part_size=parent_info.part_size if parent_info else None,
                )
            )
            sha, info = parent_sha, parent_info
    return entries


# --------------------------------------------------------------------------- committing


def _commit_message(new: SnapshotManifest, parent: SnapshotManifest | None) -> str:
    """The deterministic commit message: id, counts, and each table's row-count change."""
    counts = ", ".join(f"{getattr(new, name)} {_COUNT_LABELS[name]}" for name in COUNT_FIELDS)
    lines = [f"Snapshot {new.snapshot_id}: {counts}", ""]
    lines.append(f"Generated at {new.generated_at}.")
    lines.append(f"Parent snapshot: {parent.snapshot_id}." if parent else "First snapshot.")
    lines.append("")
    lines.append("Rows per table (change against the parent):" if parent else "Rows per table:")
    changes = _table_changes(new, parent)
    width = max((len(t) for t in changes), default=0)
    for table, delta in changes.items():
        rows = new.table_counts.get(table)
        shown = "removed" if rows is None else str(rows)
        if parent is None:
            lines.append(f"  {table:<{width}}  {shown}")
        else:
            change = "new table" if delta is None else f"{delta:+d}"
            lines.append(f"  {table:<{width}}  {shown} ({change})")
    lines.append("")
    if layout := layout_lines(new, parent):
        lines.extend([*layout, ""])
    lines.append(f"Content digest: {new.content_digest}")
    return "\n".join(lines) + "\n"


def _ensure_tag(repo: Repo, snapshot_id: str, commit: bytes) -> bool:
    """Create ``refs/tags/<snapshot_id>`` if missing; an existing tag is left as it is."""
    return bool(repo.refs.add_if_new(TAG_PREFIX + snapshot_id.encode("utf-8"), commit))


def commit_locked(
    git_dir: Path,
    db_path: Path,
    manifest: SnapshotManifest,
    author: bytes,
    *,
    part_size: int | None = None,
    signer: SigningKey | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> CommitResult:
    """Commit a snapshot database and its manifest onto ``main``; the caller holds the writer lock.

    The manifest blob is ``manifest.to_json()`` (plus the pieces in the split
    layout); the commit's time is its ``generated_at`` (+0000). Nothing
    changed (same ``content_digest`` as HEAD's) writes no commit but still
    creates HEAD's tag if it is missing. The layout follows
    ``parts.choose_part_size``: split once the database is larger than the
    part size, and split for good from then on.

    Args:
        git_dir: the repository's git directory (see ``git.store.ensure_repo``).
        db_path: the snapshot's ``catalog_read.db``.
        manifest: its manifest.
        author: author and committer, as :func:`parse_author` returns it.
        part_size: the split layout's part size; None keeps the repository's (else the default).
        signer: the key that signs the commit in git's SSH form (``gpgsig``), or None.
        progress: optional ``progress("commit", bytes_done, bytes_total)`` while the database is stored.

    Raises:
        UsageError: the part size is not a multiple of the database's page size.
        RepoError: the database is missing, ``generated_at`` is not the manifest's
            timestamp form, or ``main`` moved meanwhile.
        InsufficientSpaceError: less free space than twice the database.
        SigningKeyError: the signer could not sign (nothing moves).
    """
    try:
        db_size = db_path.stat().st_size
    except OSError as error:
        raise RepoError(f"{db_path.parent} holds no complete snapshot ({error})", path=db_path.parent) from error
    try:
        when = int(manifest.generated.timestamp())
    except ManifestError as error:
        raise RepoError(str(error), path=db_path.parent) from error

    repo = open_repo(git_dir)
    try:
        if configure(repo):
            repo.close()
            repo = open_repo(git_dir)
        if hasattr(repo.object_store, "fsync_object_files"):
            repo.object_store.fsync_object_files = True
        try:
            parent: bytes | None = repo.refs[BRANCH_REF]
        except KeyError:
            parent = None
        old = _manifest_at(repo, parent) if parent else None

        if old is not None and old.content_digest == manifest.content_digest:
            created = _ensure_tag(repo, old.snapshot_id, parent)
            signed = repo.object_store[parent].gpgsig is not None
            return CommitResult(
                parent.decode(), old.snapshot_id, False, created, parent.decode(), git_dir, signed,
                old.part_size, len(old.parts),
            )

        free, needed = shutil.disk_usage(git_dir).free, 2 * db_size
        if free < needed:
            raise InsufficientSpaceError(
                f"not enough free space for the snapshot in {git_dir}: {free / 2**20:.0f} MiB free, "
                f"{needed / 2**20:.0f} MiB needed (twice the database); nothing was written",
                path=git_dir,
                free=free,
                needed=needed,
            )

        written = write_tree(
            repo, db_path, manifest, choose_part_size(db_size, part_size, old.part_size if old else 0),
            (lambda done, total: progress("commit", done, total)) if progress is not None else None,
        )
        manifest = written.manifest

        commit = Commit()
        commit.tree = written.tree
        commit.parents = [parent] if parent else []
        commit.author = commit.committer = author
        commit.author_time = commit.commit_time = when
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = _commit_message(manifest, old).encode("utf-8")
        if signer is not None:
            sign_commit(commit, signer)
        repo.object_store.add_object(commit)

        if parent is None:
            moved = repo.refs.add_if_new(BRANCH_REF, commit.id)
        else:
            moved = repo.refs.set_if_equals(BRANCH_REF, parent, commit.id)
        if not moved:
            raise RepoError(f"main moved while {manifest.snapshot_id} was committed; nothing was lost, run again")
        created = _ensure_tag(repo, manifest.snapshot_id, commit.id)
        return CommitResult(
            commit.id.decode(), manifest.snapshot_id, True, created, parent.decode() if parent else None, git_dir,
            signer is not None,
            manifest.part_size, len(manifest.parts), max((piece.size for piece in manifest.parts), default=db_size),
        )
    finally:
        repo.close()


def commit_snapshot(
    repo_path: str | os.PathLike[str],
    snapshot_dir: str | os.PathLike[str],
    *,
    author: str = DEFAULT_AUTHOR,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    signer: SigningKey | None = None,
    part_size: int | None = None,
) -> CommitResult:
    """Commit a snapshot directory (``catalog_read.db`` + ``manifest.json``) onto ``main``, signed by ``signer`` if given.

    Creates the bare repository if absent. Nothing changed (same
    ``content_digest`` as HEAD's) writes no commit but still creates HEAD's tag
    if it is missing. The commit is deterministic: author and committer are
    ``author``, the time is the manifest's ``generated_at`` (+0000).
    ``part_size``: as :func:`commit_locked`.

    Raises:
        UsageError: ``author`` is not ``Name <email>``, or a part size that does not suit the database.
        RepoError: not a repository, or the snapshot directory is incomplete.
        RepoLockedError: another writer held the lock past ``lock_timeout``.
        InsufficientSpaceError: less free space than twice the database.
    """
    author_bytes = parse_author(author)
    git_dir = ensure_repo(repo_path)
    require_snapshot_repo(git_dir)
    directory = Path(snapshot_dir)
    with repo_lock(git_dir, lock_timeout):
        manifest_path = directory / MANIFEST_NAME
        try:
            manifest_raw = manifest_path.read_bytes()
        except OSError as error:
            raise RepoError(f"{directory} holds no complete snapshot ({error})", path=directory) from error
        manifest = _parse_manifest(manifest_raw, str(manifest_path), manifest_path)
        return commit_locked(
            git_dir, directory / DB_NAME, manifest, author_bytes, part_size=part_size, signer=signer
        )
