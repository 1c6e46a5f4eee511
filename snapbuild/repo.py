"""The snapshot repository: commit snapshots with dulwich, read them back, push and repack.

A snapshot is one commit on ``main`` whose tree holds ``catalog_read.db``,
``manifest.json``, a ``.gitattributes`` and a short consumer ``README.md``.
Every snapshot id is also a lightweight tag on the commit that introduced it.

Writing order (what makes a kill -9 harmless): the database blob is streamed
into a temporary file inside ``objects/`` and renamed into place, then dulwich
writes the small objects, then ``main`` moves by compare-and-swap from the
parent the commit was built on, then the tag. A crash before the ref update
leaves only unreferenced objects; one after it leaves a complete snapshot.

One writer at a time: every writer holds an OS-level lock (``filelock``) on
``snapbuild.lock`` inside the repository. The OS drops it when its process
dies, so no lock file outlives a crash. Holding it also proves that any
``*.lock`` file left by git's own lock protocol (``refs/heads/main.lock``,
``packed-refs.lock``) belongs to a dead snapbuild writer, so it is removed.
Plain git writers outside snapbuild are not expected on this repository.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dulwich.errors import NotGitRepository
from dulwich.objects import Blob, Commit, Tag, Tree
from dulwich.repo import Repo
from filelock import FileLock, Timeout

from .errors import (
    InsufficientSpaceError,
    PushError,
    RepoError,
    RepoLockedError,
    UsageError,
)
from .fsutil import fsync_dir

if TYPE_CHECKING:
    from .export import ExportResult
    from .manifest import SnapshotManifest

DB_NAME = "catalog_read.db"
MANIFEST_NAME = "manifest.json"
BRANCH_REF = b"refs/heads/main"
TAG_PREFIX = b"refs/tags/"
DEFAULT_AUTHOR = "snapbuild <snapbuild@localhost>"
DEFAULT_LOCK_TIMEOUT = 600.0
DEFAULT_REPO = Path("snapshots.git")
# A plain byte count: dulwich cannot parse unit suffixes ("1g" crashes Repo()) and
# refuses loose objects above it; git makes no deltas above it. 4 GiB - 1 is the
# largest value every git build accepts (Windows' unsigned long is 32 bits).
BIG_FILE_THRESHOLD = 4294967295
LOCK_NAME = "snapbuild.lock"
STAGING_NAME = "snapbuild-staging"
TMP_OBJECT_PREFIX = "tmp_snapbuild_"
CHUNK_SIZE = 1 << 20

GITATTRIBUTES = (
    b"# Written by snapbuild. The database is binary: never merge or convert it, but\n"
    b"# show row changes through the 'snapbuild' diff driver (see README.md).\n"
    b"catalog_read.db -text -merge diff=snapbuild\n"
    b"manifest.json text eol=lf\n"
)

CONSUMER_README = b"""# Catalog snapshots

Each commit on `main` is one snapshot of the music catalog's read model,
written by snapbuild; every snapshot id (`snap-...`) is also a tag.

- `catalog_read.db`: the read model (SQLite). Open it read-only.
- `manifest.json`: snapshot id, generation time, row counts and the
  sha256 of `catalog_read.db`, so you can check what you received.

Stay current with `git pull --ff-only` (history is linear; nothing is ever
rewritten). A shallow `git clone --depth 1` is enough if you only need the
latest snapshot.

To see row changes in `git diff` and `git log -p`, install snapbuild and run
`snapbuild consumer-setup` in this clone, or set the driver by hand:

    git config diff.snapbuild.textconv "snapbuild textconv"

`snapbuild diff HEAD~1 HEAD` prints per-table added, removed and changed rows.
"""

_AUTHOR_RE = re.compile(r"[^<>\n]*[^<>\s][^<>\n]* <[^<>\s]+>")
_REV_RE = re.compile(r"(?P<base>[^~^]+)(?P<ops>(?:[~^][0-9]*)*)")
_HEX_RE = re.compile(r"[0-9a-fA-F]{4,40}")
_STALE_REF_LOCKS = ("HEAD.lock", "packed-refs.lock", "config.lock")


@dataclass(frozen=True)
class CommitResult:
    """What ``commit_snapshot`` did.

    Attributes:
        commit: hex id of ``main`` after the call (the new commit, or HEAD if unchanged).
        snapshot_id: the snapshot's id, also its tag name.
        changed: True if a new commit was written.
        tag_created: True if the snapshot's tag was created by this call.
        parent: hex id of the commit the new one was built on (None for the first).
        repo: the repository's git directory.
    """

    commit: str
    snapshot_id: str
    changed: bool
    tag_created: bool
    parent: str | None
    repo: Path


@dataclass(frozen=True)
class HistoryEntry:
    """One snapshot on ``main``, with its row-count changes against its parent."""

    commit: str
    snapshot_id: str
    generated_at: str
    counts: dict[str, int]
    table_counts: dict[str, int]
    changes: dict[str, int | None]
    parent_snapshot_id: str | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``changes`` maps table -> row delta, None for a new table)."""
        return {
            "commit": self.commit,
            "snapshot_id": self.snapshot_id,
            "generated_at": self.generated_at,
            "counts": dict(self.counts),
            "table_counts": dict(self.table_counts),
            "changes": dict(self.changes),
            "parent_snapshot_id": self.parent_snapshot_id,
        }


@dataclass(frozen=True)
class GcResult:
    """Repository size before and after a repack, and which tool repacked."""

    size_before: int
    size_after: int
    tool: str


@dataclass(frozen=True)
class PushResult:
    """Where the snapshots went and which transport client sent them."""

    remote: str
    tool: str
    output: str = ""


@dataclass(frozen=True)
class _ManifestInfo:
    """The manifest fields the repository needs, read without trusting any other field."""

    raw: bytes
    snapshot_id: str
    content_digest: str
    generated_at: str
    counts: dict[str, int] = field(default_factory=dict)
    table_counts: dict[str, int] = field(default_factory=dict)


_COUNT_FIELDS = ("track_count", "playlist_count", "file_count", "cover_count")


def _parse_manifest(raw: bytes, where: str) -> _ManifestInfo:
    """Read the fields commits and history rely on from manifest bytes."""
    try:
        data = json.loads(raw.decode("utf-8"))
        snapshot_id = data["snapshot_id"]
        digest = data["content_digest"]
        generated_at = data["generated_at"]
        counts = {name: int(data[name]) for name in _COUNT_FIELDS if name in data}
        table_counts = {str(k): int(v) for k, v in (data.get("table_counts") or {}).items()}
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as error:
        raise RepoError(f"{where}: not a snapbuild manifest ({error})") from error
    if not isinstance(snapshot_id, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", snapshot_id):
        raise RepoError(f"{where}: invalid snapshot_id {snapshot_id!r}")
    return _ManifestInfo(raw, snapshot_id, str(digest), str(generated_at), counts, table_counts)


def parse_author(author: str) -> bytes:
    """Validate ``"Name <email>"`` and return it as commit bytes.

    Raises:
        UsageError: the string is not of the form ``Name <email>``.
    """
    text = author.strip()
    if not _AUTHOR_RE.fullmatch(text):
        raise UsageError(f"invalid --author {author!r}: expected 'Name <email>'")
    return text.encode("utf-8")


def _epoch(generated_at: str) -> int:
    """Seconds since the epoch of a manifest's ``YYYY-MM-DDTHH:MM:SSZ`` timestamp."""
    try:
        moment = datetime.strptime(generated_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError as error:
        raise RepoError(f"manifest generated_at {generated_at!r} is not YYYY-MM-DDTHH:MM:SSZ") from error
    return int(moment.timestamp())


# --------------------------------------------------------------------------- opening


def open_repo(repo_path: str | os.PathLike[str]) -> Repo:
    """Open a bare repository or a clone's work tree for reading.

    Raises:
        RepoError: the path is not a git repository.
    """
    path = Path(repo_path)
    try:
        return Repo(str(path))
    except (NotGitRepository, FileNotFoundError, NotADirectoryError) as error:
        raise RepoError(f"{path} is not a git repository", path=path) from error


@contextmanager
def _reading(repo_path: str | os.PathLike[str]) -> Iterator[Repo]:
    repo = open_repo(repo_path)
    try:
        yield repo
    finally:
        repo.close()


def ensure_repo(repo_path: str | os.PathLike[str]) -> Path:
    """Return the git directory at ``repo_path``, creating a bare repository there if absent.

    A new repository is initialised in a sibling temporary directory and renamed into
    place, so a crash never leaves a half-made one and two first writers cannot both
    create it. HEAD names ``refs/heads/main``; the user's git config is never read.

    Raises:
        RepoError: the path exists but is neither a git repository nor an empty directory.
    """
    path = Path(repo_path)
    if path.is_dir() and any(path.iterdir()):
        repo = open_repo(path)
        try:
            return Path(repo.controldir())
        finally:
            repo.close()
    if path.exists() and not path.is_dir():
        raise RepoError(f"{path} is not a git repository", path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.init-", dir=path.parent))
    try:
        repo = Repo.init_bare(str(staging), default_branch=b"main")
        try:
            _configure(repo)
        finally:
            repo.close()
        try:
            if path.is_dir():
                path.rmdir()  # an empty directory: take its place
            os.replace(staging, path)
        except OSError:
            if not (path.is_dir() and any(path.iterdir())):
                raise
            # Another first writer won the race: use its repository.
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return ensure_repo(path)


def require_snapshot_repo(git_dir: str | os.PathLike[str]) -> None:
    """Refuse a repository that is not a snapshot repository, before anything touches it.

    Called before the lock, the config and the export, so pointing ``--repo`` at
    another project's repository changes nothing there (nor in the target).
    Empty repositories are fine: ``git init --bare`` makes a valid first home.

    Raises:
        RepoError: ``main`` holds no snapshot, or there is no ``main`` but other refs.
    """
    with _reading(git_dir) as repo:
        try:
            main = repo.refs[BRANCH_REF]
        except KeyError:
            others = [ref for ref in repo.refs.allkeys() if ref != b"HEAD"]
            if others:
                raise RepoError(
                    f"{git_dir} is not a snapshot repository: it has no {BRANCH_REF.decode()} but other refs "
                    f"({others[0].decode()}); use an empty or snapbuild-made repository",
                    path=git_dir,
                ) from None
            return
        try:
            _snapshot_entries(repo, main)
        except RepoError:
            raise RepoError(
                f"{git_dir} is not a snapshot repository: {BRANCH_REF.decode()} holds no snapshot", path=git_dir
            ) from None


def _configure(repo: Repo) -> bool:
    """Set the repository config snapbuild relies on; return True if it changed."""
    config = repo.get_config()
    wanted = {
        (b"core",): {b"bigFileThreshold": str(BIG_FILE_THRESHOLD).encode("ascii")},
        # Loose objects are removed by `snapbuild gc` under the lock, never by an
        # automatic gc racing a writer.
        (b"gc",): {b"auto": b"0"},
        # With a bitmap, git's upload-pack sends a packed database whole instead of
        # a delta against the consumer's copy (measured: 28% vs 2% of the database).
        (b"repack",): {b"writeBitmaps": b"false"},
        (b"pack",): {b"useBitmaps": b"false"},
    }
    changed = False
    for section, values in wanted.items():
        for name, value in values.items():
            try:
                current = config.get(section, name)
            except KeyError:
                current = None
            if current != value:
                config.set(section, name, value)
                changed = True
    if changed:
        config.write_to_path()
    return changed


# --------------------------------------------------------------------------- lock


@contextmanager
def repo_lock(git_dir: Path, timeout: float) -> Iterator[None]:
    """Hold the repository's writer lock, then clear what a killed writer left behind.

    Raises:
        RepoLockedError: another writer held the lock for ``timeout`` seconds.
    """
    lock = FileLock(str(git_dir / LOCK_NAME), timeout=timeout)
    try:
        lock.acquire()
    except Timeout as error:
        raise RepoLockedError(
            f"repository {git_dir} is locked by another snapbuild writer "
            f"(waited {timeout:g} s; raise --lock-timeout to wait longer)",
            path=git_dir,
        ) from error
    try:
        _clear_leftovers(git_dir)
        yield
    finally:
        lock.release()


def _clear_leftovers(git_dir: Path) -> None:
    """Remove what a killed writer left: git lock files, temporary objects, staging.

    Safe only under the writer lock: every writer takes it, so nobody is using them.
    """
    stale: list[Path] = [git_dir / name for name in _STALE_REF_LOCKS]
    stale += list((git_dir / "refs").rglob("*.lock"))
    objects = git_dir / "objects"
    stale += list(objects.glob(f"{TMP_OBJECT_PREFIX}*"))
    stale += list(objects.glob("[0-9a-f][0-9a-f]/*.lock"))
    for path in stale:
        try:
            path.chmod(stat.S_IWRITE | stat.S_IREAD)
            path.unlink()
        except FileNotFoundError:
            pass
    shutil.rmtree(git_dir / STAGING_NAME, ignore_errors=True)


# --------------------------------------------------------------------------- objects


def write_loose_blob(objects_dir: Path, source: Path) -> bytes:
    """Stream a file into the object store as a loose blob and return its hex id.

    sha1 over ``blob <n>\\0`` + data while zlib (level 1) compresses 1 MiB pieces
    into a temporary file inside ``objects/``; fsync, then rename into
    ``objects/xx/...``. Memory stays at a few MiB whatever the file's size.
    An object already present is kept and the temporary file dropped.

    Raises:
        RepoError: the file changed size while it was read.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_OBJECT_PREFIX, dir=objects_dir)
    tmp = Path(tmp_name)
    try:
        with open(fd, "wb") as out, open(source, "rb") as src:
            size = os.fstat(src.fileno()).st_size
            header = b"blob %d\0" % size
            digest = hashlib.sha1(header)
            compressor = zlib.compressobj(1)
            out.write(compressor.compress(header))
            seen = 0
            while chunk := src.read(CHUNK_SIZE):
                seen += len(chunk)
                digest.update(chunk)
                out.write(compressor.compress(chunk))
            out.write(compressor.flush())
            if seen != size:
                raise RepoError(f"{source} changed while it was committed", path=source)
            out.flush()
            os.fsync(out.fileno())
        hex_id = digest.hexdigest()
        final = objects_dir / hex_id[:2] / hex_id[2:]
        if final.exists():
            tmp.unlink()
        else:
            final.parent.mkdir(exist_ok=True)
            tmp.chmod(stat.S_IREAD | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        return hex_id.encode("ascii")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _read_blob_bytes(repo: Repo, sha: bytes) -> bytes:
    """The contents of a small blob (a manifest)."""
    obj = repo.object_store[sha]
    if not isinstance(obj, Blob):
        raise RepoError(f"object {sha.decode()} is not a file")
    return obj.as_raw_string()


def _stream_blob(repo: Repo, sha: bytes, out: io.BufferedWriter) -> None:
    """Write a blob's contents to ``out``.

    A loose object is decompressed in 1 MiB steps and its id re-checked, so a
    large database never sits whole in memory. A packed object (after ``gc``
    or in a consumer's clone) is materialised by dulwich, which resolves its
    delta chain in memory: acceptable for an occasional read.
    """
    hex_id = sha.decode("ascii")
    loose = Path(repo.object_store.path) / hex_id[:2] / hex_id[2:]
    try:
        src = open(loose, "rb")
    except FileNotFoundError:
        for chunk in repo.object_store[sha].as_raw_chunks():
            out.write(chunk)
        return
    with src:
        decompressor = zlib.decompressobj()
        digest = hashlib.sha1()
        header = b""
        expected: int | None = None
        written = 0
        pending = b""
        while not decompressor.eof:
            if not pending:
                pending = src.read(CHUNK_SIZE)
                if not pending:
                    break  # truncated: caught by the size and id checks below
            data = decompressor.decompress(pending, CHUNK_SIZE)
            pending = decompressor.unconsumed_tail
            digest.update(data)
            if expected is None:
                header += data
                if b"\0" not in header:
                    continue
                head, _, data = header.partition(b"\0")
                kind, _, size = head.partition(b" ")
                if kind != b"blob":
                    raise RepoError(f"object {hex_id} is a {kind.decode(errors='replace')}, not a file")
                expected = int(size)
            out.write(data)
            written += len(data)
        if expected is None or written != expected or digest.hexdigest() != hex_id:
            raise RepoError(f"object {hex_id} is corrupt")


# --------------------------------------------------------------------------- revisions


def _peel(repo: Repo, sha: bytes) -> bytes:
    """Follow annotated tags to the commit; refuse anything that is not one."""
    obj = repo.object_store[sha]
    while isinstance(obj, Tag):
        obj = repo.object_store[obj.object[1]]
    if not isinstance(obj, Commit):
        raise RepoError(f"{sha.decode()} is not a commit")
    return obj.id


def _known_commits(repo: Repo) -> set[bytes]:
    """Every commit reachable from any ref: the candidates for a (short) hex id.

    Walking commits never loads a database blob, which a plain object lookup by
    prefix would do.
    """
    todo: list[bytes] = []
    for name, sha in repo.refs.as_dict().items():
        try:
            todo.append(_peel(repo, sha))
        except (KeyError, RepoError):
            continue
    seen: set[bytes] = set()
    while todo:
        sha = todo.pop()
        if sha in seen:
            continue
        seen.add(sha)
        try:
            commit = repo.object_store[sha]
        except KeyError:
            continue  # the edge of a shallow clone
        todo.extend(commit.parents)
    shallow = repo.get_shallow() if hasattr(repo, "get_shallow") else set()
    return seen | set(shallow)


def _resolve_base(repo: Repo, base: str) -> bytes:
    name = base.encode("utf-8")
    refs = repo.refs
    for candidate in (name, b"refs/" + name, b"refs/tags/" + name, b"refs/heads/" + name,
                      b"refs/remotes/" + name, b"refs/remotes/" + name + b"/HEAD"):
        try:
            sha = refs[candidate]
        except (KeyError, ValueError):
            continue
        return _peel(repo, sha)
    if _HEX_RE.fullmatch(base):
        prefix = name.lower()
        matches = [sha for sha in _known_commits(repo) if sha.startswith(prefix)]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise RepoError(f"revision {base!r} is ambiguous")
    if base == "HEAD":
        raise RepoError("the repository has no snapshots yet")
    raise RepoError(f"unknown revision {base!r}")


def _resolve(repo: Repo, rev: str) -> bytes:
    match = _REV_RE.fullmatch(rev.strip())
    if not match:
        raise RepoError(f"unknown revision {rev!r}")
    sha = _resolve_base(repo, match["base"])
    for op, digits in re.findall(r"([~^])([0-9]*)", match["ops"]):
        count = int(digits) if digits else 1
        if op == "^" and count == 0:
            continue
        steps, index = (count, 0) if op == "~" else (1, count - 1)
        for _ in range(steps):
            try:
                parents = repo.object_store[sha].parents
            except KeyError as error:
                raise RepoError(f"revision {rev!r} reaches past the history this clone has") from error
            if len(parents) <= index:
                raise RepoError(f"revision {rev!r} does not exist: the history is shorter")
            sha = parents[index]
    if sha not in repo.object_store:
        raise RepoError(f"revision {rev!r} reaches past the history this clone has")
    return sha


def _head_exists(repo: Repo) -> bool:
    try:
        repo.refs[b"HEAD"]
    except KeyError:
        return False
    return True


def resolve_rev(repo_path: str | os.PathLike[str], rev: str = "HEAD") -> bytes:
    """Resolve a revision to a commit's hex id.

    Supports ``HEAD``, ``HEAD~N``, ``HEAD^``, branch and tag names (``main``,
    ``snap-...``), and full or abbreviated commit ids, on a bare repository or
    a clone's work tree.

    Raises:
        RepoError: not a repository, or the revision names no commit.
    """
    with _reading(repo_path) as repo:
        return _resolve(repo, rev)


def _snapshot_entries(repo: Repo, sha: bytes) -> tuple[Commit, bytes, bytes]:
    """A snapshot commit and the blob ids of its database and manifest."""
    commit = repo.object_store[sha]
    tree = repo.object_store[commit.tree]
    try:
        db_sha = tree[DB_NAME.encode()][1]
        manifest_sha = tree[MANIFEST_NAME.encode()][1]
    except KeyError as error:
        raise RepoError(f"commit {sha.decode()} holds no snapshot") from error
    return commit, db_sha, manifest_sha


def _manifest_at(repo: Repo, sha: bytes) -> _ManifestInfo:
    _, _, manifest_sha = _snapshot_entries(repo, sha)
    return _parse_manifest(_read_blob_bytes(repo, manifest_sha), f"{MANIFEST_NAME} at {sha.decode()[:12]}")


def extract_snapshot(
    repo_path: str | os.PathLike[str], rev: str, dest_dir: str | os.PathLike[str]
) -> SnapshotManifest:
    """Write the snapshot at ``rev`` to ``dest_dir/catalog_read.db`` and ``dest_dir/manifest.json``.

    Nothing is checked out; the database is streamed from its object (see
    ``_stream_blob`` for packed objects). Each file is written aside and renamed.

    Raises:
        RepoError: not a repository, bad revision, or the commit holds no snapshot.
    """
    from .manifest import SnapshotManifest

    dest = Path(dest_dir)
    dest.mkdir(parents=True, exist_ok=True)
    with _reading(repo_path) as repo:
        sha = _resolve(repo, rev)
        _, db_sha, manifest_sha = _snapshot_entries(repo, sha)
        manifest_raw = _read_blob_bytes(repo, manifest_sha)
        for name, writer in (
            (DB_NAME, lambda out: _stream_blob(repo, db_sha, out)),
            (MANIFEST_NAME, lambda out: out.write(manifest_raw)),
        ):
            fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", dir=dest)
            try:
                with open(fd, "wb") as out:
                    writer(out)
                os.replace(tmp_name, dest / name)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
    return SnapshotManifest.from_json(manifest_raw.decode("utf-8"))


# --------------------------------------------------------------------------- committing


def _table_changes(new: _ManifestInfo, old: _ManifestInfo | None) -> dict[str, int | None]:
    """Row-count change per table against the parent (None: the table is new)."""
    changes: dict[str, int | None] = {}
    old_counts = old.table_counts if old else {}
    for table in sorted(set(new.table_counts) | set(old_counts)):
        if table not in old_counts:
            changes[table] = None if old is not None else new.table_counts[table]
        else:
            changes[table] = new.table_counts.get(table, 0) - old_counts[table]
    return changes


def _counts_phrase(info: _ManifestInfo) -> str:
    labels = {"track_count": "tracks", "playlist_count": "playlists", "file_count": "files", "cover_count": "covers"}
    return ", ".join(f"{info.counts[k]} {labels[k]}" for k in _COUNT_FIELDS if k in info.counts)


def _commit_message(new: _ManifestInfo, parent: _ManifestInfo | None) -> str:
    """The deterministic commit message: id, counts, and each table's row-count change."""
    lines = [f"Snapshot {new.snapshot_id}: {_counts_phrase(new)}", ""]
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
    lines.append(f"Content digest: {new.content_digest}")
    return "\n".join(lines) + "\n"


def _add_small_blob(repo: Repo, data: bytes) -> bytes:
    blob = Blob.from_string(data)
    repo.object_store.add_object(blob)
    return blob.id


def _ensure_tag(repo: Repo, snapshot_id: str, commit: bytes) -> bool:
    """Create ``refs/tags/<snapshot_id>`` if missing; an existing tag is left as it is."""
    return bool(repo.refs.add_if_new(TAG_PREFIX + snapshot_id.encode("utf-8"), commit))


def _commit_locked(git_dir: Path, snapshot_dir: Path, author: bytes) -> CommitResult:
    """Commit a snapshot directory; the caller holds the writer lock."""
    db_path = snapshot_dir / DB_NAME
    manifest_path = snapshot_dir / MANIFEST_NAME
    try:
        manifest_raw = manifest_path.read_bytes()
        db_size = db_path.stat().st_size
    except OSError as error:
        raise RepoError(f"{snapshot_dir} holds no complete snapshot ({error})", path=snapshot_dir) from error
    new = _parse_manifest(manifest_raw, str(manifest_path))
    when = _epoch(new.generated_at)

    repo = open_repo(git_dir)
    try:
        if _configure(repo):
            repo.close()
            repo = open_repo(git_dir)
        if hasattr(repo.object_store, "fsync_object_files"):
            repo.object_store.fsync_object_files = True
        try:
            parent: bytes | None = repo.refs[BRANCH_REF]
        except KeyError:
            parent = None
        old = _manifest_at(repo, parent) if parent else None

        if old is not None and old.content_digest == new.content_digest:
            created = _ensure_tag(repo, old.snapshot_id, parent)
            return CommitResult(parent.decode(), old.snapshot_id, False, created, parent.decode(), git_dir)

        free = shutil.disk_usage(git_dir).free
        if free < 2 * db_size:
            raise InsufficientSpaceError(
                f"not enough free space for the snapshot in {git_dir}: {free / 2**20:.0f} MiB free, "
                f"{2 * db_size / 2**20:.0f} MiB needed (twice the database); nothing was written",
                path=git_dir,
            )

        db_blob = write_loose_blob(Path(repo.object_store.path), db_path)
        tree = Tree()
        tree.add(b".gitattributes", 0o100644, _add_small_blob(repo, GITATTRIBUTES))
        tree.add(b"README.md", 0o100644, _add_small_blob(repo, CONSUMER_README))
        tree.add(DB_NAME.encode(), 0o100644, db_blob)
        tree.add(MANIFEST_NAME.encode(), 0o100644, _add_small_blob(repo, manifest_raw))
        repo.object_store.add_object(tree)

        commit = Commit()
        commit.tree = tree.id
        commit.parents = [parent] if parent else []
        commit.author = commit.committer = author
        commit.author_time = commit.commit_time = when
        commit.author_timezone = commit.commit_timezone = 0
        commit.message = _commit_message(new, old).encode("utf-8")
        repo.object_store.add_object(commit)

        if parent is None:
            moved = repo.refs.add_if_new(BRANCH_REF, commit.id)
        else:
            moved = repo.refs.set_if_equals(BRANCH_REF, parent, commit.id)
        if not moved:
            raise RepoError(f"main moved while {new.snapshot_id} was committed; nothing was lost, run again")
        created = _ensure_tag(repo, new.snapshot_id, commit.id)
        return CommitResult(
            commit.id.decode(), new.snapshot_id, True, created, parent.decode() if parent else None, git_dir
        )
    finally:
        repo.close()


def commit_snapshot(
    repo_path: str | os.PathLike[str],
    snapshot_dir: str | os.PathLike[str],
    *,
    author: str = DEFAULT_AUTHOR,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
) -> CommitResult:
    """Commit a snapshot directory (``catalog_read.db`` + ``manifest.json``) onto ``main``.

    Creates the bare repository if absent. Nothing changed (same
    ``content_digest`` as HEAD's) writes no commit but still creates HEAD's tag
    if it is missing. The commit is deterministic: author and committer are
    ``author``, the time is the manifest's ``generated_at`` (+0000).

    Raises:
        UsageError: ``author`` is not ``Name <email>``.
        RepoError: not a repository, or the snapshot directory is incomplete.
        RepoLockedError: another writer held the lock past ``lock_timeout``.
        InsufficientSpaceError: less free space than twice the database.
    """
    author_bytes = parse_author(author)
    git_dir = ensure_repo(repo_path)
    require_snapshot_repo(git_dir)
    with repo_lock(git_dir, lock_timeout):
        return _commit_locked(git_dir, Path(snapshot_dir), author_bytes)


def export_and_commit(
    source_db: str | os.PathLike[str],
    repo_path: str | os.PathLike[str],
    *,
    generated_at: Any,
    author: str = DEFAULT_AUTHOR,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    target_dir: str | os.PathLike[str] | None = None,
    busy_timeout: float = 5.0,
    progress: Callable[..., Any] | None = None,
) -> tuple[ExportResult, CommitResult]:
    """Export the catalog and commit it, holding the writer lock throughout.

    Without ``target_dir`` the export is built in a staging directory inside
    the repository (removed afterwards, or by the next writer after a crash);
    with it, that directory is updated too and committed from.

    Raises:
        Whatever ``run_export`` and ``commit_snapshot`` raise.
    """
    from .export import run_export

    author_bytes = parse_author(author)
    git_dir = ensure_repo(repo_path)
    require_snapshot_repo(git_dir)
    with repo_lock(git_dir, lock_timeout):
        snapshot_dir = Path(target_dir) if target_dir is not None else git_dir / STAGING_NAME
        try:
            exported = run_export(
                source_db, snapshot_dir, generated_at=generated_at, busy_timeout=busy_timeout, progress=progress
            )
            committed = _commit_locked(git_dir, snapshot_dir, author_bytes)
        finally:
            if target_dir is None:
                shutil.rmtree(snapshot_dir, ignore_errors=True)
    return exported, committed


# --------------------------------------------------------------------------- history


def snapshot_history(
    repo_path: str | os.PathLike[str], rev: str = "HEAD", *, limit: int | None = None
) -> list[HistoryEntry]:
    """The snapshots on the first-parent chain from ``rev``, newest first.

    Raises:
        RepoError: not a repository, bad revision, or a commit without a snapshot.
    """
    entries: list[HistoryEntry] = []
    with _reading(repo_path) as repo:
        if rev == "HEAD" and not _head_exists(repo):
            return []
        sha: bytes | None = _resolve(repo, rev)
        info = _manifest_at(repo, sha) if sha else None
        while sha and info and (limit is None or len(entries) < limit):
            commit = repo.object_store[sha]
            parent_sha = commit.parents[0] if commit.parents else None
            parent_info = None
            if parent_sha is not None:
                try:
                    parent_info = _manifest_at(repo, parent_sha)
                except KeyError:
                    parent_sha = None  # the edge of a shallow clone
            entries.append(
                HistoryEntry(
                    commit=sha.decode(),
                    snapshot_id=info.snapshot_id,
                    generated_at=info.generated_at,
                    counts=dict(info.counts),
                    table_counts=dict(info.table_counts),
                    changes=_table_changes(info, parent_info),
                    parent_snapshot_id=parent_info.snapshot_id if parent_info else None,
                )
            )
            sha, info = parent_sha, parent_info
    return entries


def verify_revision(
    repo_path: str | os.PathLike[str], rev: str = "HEAD", *, work_dir: str | os.PathLike[str] | None = None
) -> SnapshotManifest:
    """Extract the snapshot at ``rev`` to a temporary directory and verify it like ``verify DIR``.

    Raises:
        RepoError: not a repository or bad revision.
        VerifyError: the snapshot does not match its manifest or fails SQLite's checks.
    """
    from .verify import verify_snapshot

    with tempfile.TemporaryDirectory(prefix="snapbuild-verify-", dir=work_dir) as tmp:
        extract_snapshot(repo_path, rev, tmp)
        return verify_snapshot(Path(tmp) / DB_NAME, Path(tmp) / MANIFEST_NAME)


# --------------------------------------------------------------------------- maintenance


def repo_size(git_dir: Path) -> int:
    """Bytes the repository occupies (files only; snapbuild's lock and staging excluded)."""
    total = 0
    for root, dirs, files in os.walk(git_dir):
        if Path(root) == git_dir:
            dirs[:] = [d for d in dirs if d != STAGING_NAME]
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def gc_repo(
    repo_path: str | os.PathLike[str],
    *,
    git: str | None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    progress: Callable[[str], None] | None = None,
) -> GcResult:
    """Repack the repository: with the git CLI (deltas) when ``git`` is given, else dulwich.

    Unreachable objects (left by crashed writers) are pruned at once: the writer
    lock is held, so no snapbuild writer has unreferenced objects in flight.
    dulwich computes no deltas and materialises each object while packing.

    Raises:
        RepoError: not a repository, or the repack failed.
        RepoLockedError: a writer held the lock past ``lock_timeout``.
    """
    with _reading(repo_path) as repo:
        git_dir = Path(repo.controldir())
    with repo_lock(git_dir, lock_timeout):
        with _reading(git_dir) as repo:
            _configure(repo)
        before = repo_size(git_dir)
        if git:
            proc = subprocess.run(
                [git, "--git-dir", str(git_dir), "-c", "repack.writeBitmaps=false", "gc", "--prune=now", "--quiet"],
                capture_output=True,
                text=True,
                encoding="utf-8",
                errors="replace",
                check=False,
            )
            if proc.returncode != 0:
                last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
                raise RepoError(f"git gc failed: {last}", path=git_dir)
            tool = "git"
        else:
            from dulwich import porcelain

            with _reading(git_dir) as repo:
                porcelain.gc(repo, prune=True, grace_period=0, progress=progress)
            tool = "dulwich"
        return GcResult(before, repo_size(git_dir), tool)


def push_snapshots(
    repo_path: str | os.PathLike[str],
    remote: str,
    *,
    git: str | None,
    env: Mapping[str, str] | None = None,
) -> PushResult:
    """Push ``main`` and every tag to ``remote`` (a path, ``file://``, ssh or http(s) URL).

    The git CLI, when ``git`` is given, sends deltas against what the remote
    has; dulwich's client (the fallback) sends whole objects. Never forces:
    a remote whose ``main`` diverged refuses the push.

    Raises:
        RepoError: not a repository.
        PushError: the remote refused or could not be reached.
    """
    with _reading(repo_path) as repo:
        git_dir = Path(repo.controldir())
        if BRANCH_REF not in repo.refs:
            raise PushError("nothing to push: the repository has no snapshots yet", path=git_dir)
    if git:
        proc = subprocess.run(
            [git, "--git-dir", str(git_dir), "push", "--quiet", remote,
             "refs/heads/main:refs/heads/main", "refs/tags/*:refs/tags/*"],
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=dict(env) if env is not None else None,
            check=False,
        )
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            detail = next((line for line in lines if "rejected" in line or "fatal" in line), lines[-1] if lines else "")
            raise PushError(f"push to {remote} failed: {detail.strip()}", path=git_dir)
        return PushResult(remote, "git", proc.stderr)
    from dulwich import porcelain

    err = io.BytesIO()
    try:
        result = porcelain.push(
            str(git_dir),
            remote,
            refspecs=[BRANCH_REF + b":" + BRANCH_REF],
            tags=True,
            outstream=io.BytesIO(),
            errstream=err,
            env=dict(env) if env is not None else {},
        )
    except Exception as error:  # noqa: BLE001 - dulwich raises many unrelated types on network failures
        raise PushError(f"push to {remote} failed: {error}", path=git_dir) from error
    failed = {ref: why for ref, why in (getattr(result, "ref_status", None) or {}).items() if why}
    if failed:
        ref, why = next(iter(failed.items()))
        raise PushError(f"push to {remote} failed: {ref.decode()} {why}", path=git_dir)
    return PushResult(remote, "dulwich", err.getvalue().decode("utf-8", "replace"))
