"""The catalog allow-list: the files the newest published snapshot lists as active, kept current.

With a catalog, a valid token is not enough: its ``(backend, locator)`` must
also be an active file of the snapshot in force. The snapshot is the pair an
export publishes (``catalog_read.db`` + ``manifest.json``, in an export's
target directory or a git clone of the snapshot repository). This module
reads that pair without importing snapbuild (the origin is deployed on its
own), so the part of the read model it relies on is spelled out here:

- ``manifest.json``: a UTF-8 JSON object with ``snapshot_id`` (a string),
  ``schema_version`` (an integer; only :data:`SCHEMA_VERSIONS` are read) and
  ``db_sha256`` (the sha256 of ``catalog_read.db``, 64 hex digits);
  ``generated_at`` is shown when present.
- ``catalog_read.db``: a SQLite database with a table ``catalog_track_files``
  holding at least the columns ``backend_name``, ``locator`` and ``status``
  (``backend_type`` and the rest are not consulted). A row allows a file when
  ``status = 'active'``; ``backend_name`` is the media root's name, and
  ``locator`` (leading ``/`` removed, as the read model's public URLs do) the
  path under it, compared exactly.

The manifest is the export's commit point, so a snapshot is read manifest
first, then the database is copied aside, and what is read from the copy is
trusted only if the copy's sha256 equals the manifest's ``db_sha256``;
anything else (a half-published pair, a ``git pull`` in progress, a corrupt file, an unknown
schema) is refused and the snapshot in force stays. ``catalog_read.db`` is
open only while it is copied (on Windows with delete sharing, so an export's
rename is not refused even then); the copy is read, then deleted.

The index keeps, per backend, a sorted array of the locators' 64-bit keyed
hashes (Python's own hash of their UTF-8 bytes, SipHash under a key drawn per
process): 8 bytes a file, a binary search a lookup. Nobody outside the process knows the
key, so nobody can make two locators collide on purpose; by chance, an
unlisted locator passes with a probability of about n / 2**64 (6e-14 at a
million files). Where Python's hash is narrower than 64 bits (32-bit builds),
keyed BLAKE2b takes its place.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import logging
import os
import re
import shutil
import sqlite3
import sys
import tempfile
import threading
import time
from array import array
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import BinaryIO

from .errors import CatalogError, SettingError

#: The snapshot's two files, as the export and every snapshot commit name them.
DB_NAME = "catalog_read.db"
#: Where a clone of a large catalog's snapshots keeps the database in pieces (its assembler puts them together).
PARTS_DIR = DB_NAME + ".parts"
MANIFEST_NAME = "manifest.json"
#: The read model's schema versions whose ``catalog_track_files`` this module understands.
SCHEMA_VERSIONS = frozenset({1})
#: The table and the columns the allow-list is read from.
FILES_TABLE = "catalog_track_files"
FILES_COLUMNS = ("backend_name", "locator", "status")
#: Seconds between two looks at the directory: a new snapshot is in force at
#: most one interval plus one read after it was published.
POLL_INTERVAL = 0.5
#: Seconds a split clone's new manifest may wait for its database to be assembled (consumer-setup's
#: hooks run right after git checked the pieces out) before the wait is reported.
ASSEMBLY_GRACE = 30.0
LOGGER = "origin_server.catalog"

_SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")
_CHUNK = 1 << 20
_MANIFEST_LIMIT = 1 << 20
# Windows: FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, so an export
# may replace the file while it is being copied.
_SHARE_ALL = 0x1 | 0x2 | 0x4
_FILE_FLAG_SEQUENTIAL_SCAN = 0x08000000

_BLAKE2B_KEY = os.urandom(16)

_log = logging.getLogger(LOGGER)


def _blake2b_digest(data: bytes) -> int:
    """A 64-bit keyed digest, for Pythons whose ``hash`` is narrower."""
    return int.from_bytes(hashlib.blake2b(data, digest_size=8, key=_BLAKE2B_KEY).digest(), "little", signed=True)


#: A locator's (UTF-8 bytes') 64-bit keyed hash, the same for equal bytes within this process.
#: Bytes, not str: SQLite hands them over without decoding (a million rows: 0.1 to 0.25 s less).
_digest = hash if sys.hash_info.width >= 64 else _blake2b_digest


@dataclass(frozen=True)
class CatalogIndex:
    """One snapshot's allow-list: for each backend, the locators of its active files.

    Attributes:
        snapshot_id: the manifest's ``snapshot_id``.
        generated_at: the manifest's ``generated_at`` (None when absent).
        db_sha256: the sha256 of the database the index was read from.
        counts: backend name -> active files listed for it (every backend asked for, 0 included).
    """

    snapshot_id: str
    generated_at: str | None
    db_sha256: str
    counts: Mapping[str, int]
    _digests: Mapping[str, array]  # type: ignore[type-arg]

    def allows(self, backend: str | None, locator: str) -> bool:
        """True when ``locator`` is an active file of ``backend`` in this snapshot (never for no backend)."""
        digests = self._digests.get(backend)  # type: ignore[arg-type]
        if not digests:
            return False
        wanted = _digest(locator.lstrip("/").encode("utf-8", "surrogatepass"))
        at = bisect.bisect_left(digests, wanted)
        return at < len(digests) and digests[at] == wanted

    @property
    def files(self) -> int:
        """Active files listed for the backends asked for."""
        return sum(self.counts.values())


def _read_manifest(directory: Path) -> tuple[str, str, str | None]:
    """Return ``(snapshot_id, db_sha256, generated_at)`` of the manifest, checked.

    Raises:
        CatalogError: no manifest, not JSON, a field missing or of the wrong form, an unknown schema.
    """
    path = directory / MANIFEST_NAME
    if not directory.is_dir():
        raise CatalogError(f"catalog {directory}: no such directory", path=directory)
    try:
        with open(path, "rb") as handle:
            raw = handle.read(_MANIFEST_LIMIT + 1)
    except FileNotFoundError:
        raise CatalogError(f"catalog {directory}: no {MANIFEST_NAME} (not a published snapshot)", path=path) from None
    except OSError as error:
        raise CatalogError(f"catalog {path}: cannot read: {error.strerror or error}", path=path) from None
    try:
        if len(raw) > _MANIFEST_LIMIT:
            raise ValueError("larger than 1 MiB")
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise CatalogError(f"catalog {path}: not a manifest ({str(error).splitlines()[0]})", path=path) from None
    if not isinstance(manifest, dict):
        raise CatalogError(f"catalog {path}: not a manifest (not a JSON object)", path=path)
    snapshot_id, db_sha256 = manifest.get("snapshot_id"), manifest.get("db_sha256")
    version, generated_at = manifest.get("schema_version"), manifest.get("generated_at")
    if not isinstance(snapshot_id, str) or not snapshot_id or not snapshot_id.isprintable():
        raise CatalogError(f"catalog {path}: no snapshot_id", path=path)
    if not isinstance(db_sha256, str) or not _SHA256_HEX.match(db_sha256):
        raise CatalogError(f"catalog {path}: no db_sha256 (64 lowercase hex digits)", path=path)
    if type(version) is not int or version not in SCHEMA_VERSIONS:
        known = ", ".join(map(str, sorted(SCHEMA_VERSIONS)))
        message = f"catalog {path}: schema_version {version!r} is not one this origin reads ({known})"
        raise CatalogError(message, path=path)
    if not isinstance(generated_at, str):
        generated_at = None
    return snapshot_id, db_sha256, generated_at


def _open_shared(path: Path) -> BinaryIO:
    """Windows: open a file for reading with delete sharing, so that it may be renamed over meanwhile."""
    import _winapi  # type: ignore[import-not-found]
    import msvcrt

    handle = _winapi.CreateFile(
        str(path), _winapi.GENERIC_READ, _SHARE_ALL, _winapi.NULL, _winapi.OPEN_EXISTING,
        _FILE_FLAG_SEQUENTIAL_SCAN, _winapi.NULL,
    )
    try:
        fd = msvcrt.open_osfhandle(handle, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    except BaseException:
        _winapi.CloseHandle(handle)
        raise
    return open(fd, "rb")


def _copy(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` (in the kernel where it can; on Windows with delete sharing)."""
    if os.name != "nt":
        shutil.copyfile(source, target)
        return
    with _open_shared(source) as reader, open(target, "wb") as writer:
        shutil.copyfileobj(reader, writer, _CHUNK)


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as reader:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _read_digests(copy: Path, backends: frozenset[str], source: Path) -> dict[str, array]:  # type: ignore[type-arg]
    """Read the active files of ``backends`` from ``copy`` (of ``source``), as sorted arrays of digests."""
    result = {}
    conn = sqlite3.connect(f"{copy.as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        columns = {row[1] for row in conn.execute(f"PRAGMA table_info({FILES_TABLE})")}
        missing = [name for name in FILES_COLUMNS if name not in columns]
        if missing:
            lacks = "the table" if len(missing) == len(FILES_COLUMNS) else "the column(s) " + ", ".join(missing)
            raise CatalogError(f"catalog {source}: no {FILES_TABLE} ({lacks}): not a read model", path=source)
        # One query per backend: the rows need no backend column, which costs
        # more than a scan per backend (a million rows: 0.8 s against 0.95 s).
        query = (
            f"SELECT CAST(iif(locator GLOB '/*', ltrim(locator, '/'), locator) AS BLOB) FROM {FILES_TABLE} "
            "WHERE backend_name = ? AND status = 'active'"
        )
        for name in sorted(backends):
            digests = [_digest(locator) for (locator,) in conn.execute(query, (name,))]
            digests.sort()
            result[name] = array("q", digests)
    finally:
        conn.close()
    return result


def _read_verified(
    copy: Path, backends: frozenset[str], source: Path, db_sha256: str
) -> dict[str, array]:  # type: ignore[type-arg]
    """Read the digests from ``copy`` while another core hashes it; a hash other than ``db_sha256`` wins over all."""
    with ThreadPoolExecutor(1, thread_name_prefix="catalog-sha256") as pool:
        hashed = pool.submit(_sha256_of, copy)
        try:
            return _read_digests(copy, backends, source)
        except sqlite3.Error as error:
            raise CatalogError(f"catalog {source}: not a readable read model ({error})", path=source) from None
        finally:
            # Raised here, it replaces whatever the read returned or raised: an
            # unverified file's contents are never used, nor its errors reported.
            if hashed.result() != db_sha256:
                raise CatalogError(
                    f"catalog {source} does not match {MANIFEST_NAME}'s db_sha256 (half-published or corrupt)",
                    path=source,
                )


def read_catalog(directory: Path, backends: Iterable[str], *, scratch_dir: Path | None = None) -> CatalogIndex:
    """Read the allow-list of the snapshot published in ``directory``, for the named backends.

    Args:
        directory: holds ``manifest.json`` and ``catalog_read.db``.
        backends: the media roots' names; only their files are indexed.
        scratch_dir: where the database is copied while it is read (deleted
            after); None for the system's temporary directory.

    Returns:
        The snapshot's index.

    Raises:
        CatalogError: no snapshot there, or one that cannot be trusted or read.
    """
    wanted = frozenset(backends)
    snapshot_id, db_sha256, generated_at = _read_manifest(directory)
    source = directory / DB_NAME
    try:
        fd, name = tempfile.mkstemp(prefix="origin-catalog-", suffix=".db", dir=scratch_dir)
    except OSError as error:
        reason = error.strerror or error
        raise CatalogError(f"catalog {directory}: cannot make a scratch copy: {reason}", path=directory) from None
    os.close(fd)
    copy = Path(name)
    try:
        try:
            _copy(source, copy)
        except FileNotFoundError:
            hint = f" (a clone holding {PARTS_DIR}/: assemble it with 'python3 assemble.py' or 'snapbuild consumer-setup')"
            raise CatalogError(
                f"catalog {directory}: no {DB_NAME}" + (hint if (directory / PARTS_DIR).is_dir() else ""), path=source
            ) from None
        except OSError as error:
            raise CatalogError(f"catalog {source}: cannot copy: {error.strerror or error}", path=source) from None
        digests = _read_verified(copy, wanted, source, db_sha256)
    finally:
        try:
            copy.unlink()
        except OSError:
            pass
    return CatalogIndex(
        snapshot_id=snapshot_id,
        generated_at=generated_at,
        db_sha256=db_sha256,
        counts=MappingProxyType({name: len(values) for name, values in sorted(digests.items())}),
        _digests=MappingProxyType(digests),
    )


def _signature(directory: Path) -> tuple[object, ...]:
    """What changes when either file of the pair is replaced or rewritten (None for a missing one)."""
    result: list[object] = []
    for name in (MANIFEST_NAME, DB_NAME):
        try:
            st = os.stat(directory / name)
        except OSError:
            result.append(None)
        else:
            result.append((st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino, st.st_dev))
    return tuple(result)


class Catalog:
    """The allow-list in force: the last good snapshot of a directory, replaced when a newer one is published.

    The first snapshot is read when the catalog is created (an error then is
    the caller's to report). :meth:`start` looks at the directory every
    ``interval`` seconds from a daemon thread; :meth:`refresh` is one look.
    A snapshot that cannot be trusted is logged once (until either file
    changes again) and the one in force stays. In a clone of the split
    layout git writes the new manifest before the hooks assemble its
    database: that wait is reported only if it lasts ``assembly_grace``
    seconds.

    Args:
        directory: an export's target directory or a clone of the snapshot repository.
        backends: the media roots' names (the unnamed root, None, is refused:
            the catalog lists every file under a backend).
        interval: seconds between looks.
        scratch_dir: where the database is copied while read; None for the system's temporary directory.
        assembly_grace: how long a split clone's database may lag its manifest before a warning.

    Raises:
        SettingError: (setting ``media_root``) a backend is None.
        CatalogError: the directory holds no snapshot that can be trusted.
    """

    def __init__(
        self,
        directory: Path,
        backends: Iterable[str | None],
        *,
        interval: float = POLL_INTERVAL,
        scratch_dir: Path | None = None,
        assembly_grace: float = ASSEMBLY_GRACE,
    ) -> None:
        names = list(backends)
        if None in names:
            raise SettingError(
                "media_root", None, "needs a name for every root when a catalog is used (the catalog lists "
                "each file under a backend_name; a token without 'backend' has none)"
            )
        self.directory = Path(directory)
        self.backends = frozenset(name for name in names if name is not None)
        self.interval = interval
        self.scratch_dir = scratch_dir
        self.assembly_grace = assembly_grace
        # The refusal of a split clone's snapshot not assembled yet, and since when (monotonic seconds).
        self._unassembled: tuple[str, float] | None = None
        self._seen = _signature(self.directory)
        self._index = read_catalog(self.directory, self.backends, scratch_dir=scratch_dir)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refreshing = threading.Lock()
        self._warn_empty(self._index)

    @property
    def index(self) -> CatalogIndex:
        """The snapshot in force."""
        return self._index

    @property
    def snapshot_id(self) -> str:
        """The ``snapshot_id`` of the snapshot in force."""
        return self._index.snapshot_id

    def allows(self, backend: str | None, locator: str) -> bool:
        """True when the snapshot in force lists ``locator`` as an active file of ``backend``."""
        return self._index.allows(backend, locator)

    def refresh(self) -> bool:
        """Look at the directory once; return True when a new snapshot came into force."""
        with self._refreshing:  # the watcher and a caller never read the same snapshot twice at once
            return self._refresh()

    def _refresh(self) -> bool:
        seen = _signature(self.directory)
        current = self._index
        if seen == self._seen:
            if self._unassembled is not None and time.monotonic() - self._unassembled[1] >= self.assembly_grace:
                _log.warning(
                    "%s (not assembled after %g s: are snapbuild consumer-setup's hooks installed?); "
                    "snapshot %s stays in force", self._unassembled[0], self.assembly_grace, current.snapshot_id,
                )
                self._unassembled = None
            return False
        self._unassembled = None
        started = time.perf_counter()
        try:
            if _read_manifest(self.directory)[1] == current.db_sha256:
                self._seen = seen  # the same snapshot (touched, or its database not yet rewritten)
                return False
            index = read_catalog(self.directory, self.backends, scratch_dir=self.scratch_dir)
        except CatalogError as error:
            if _signature(self.directory) != seen:
                return False  # still being written: look again next time, without a warning
            self._seen = seen
            if (self.directory / PARTS_DIR).is_dir():  # git wrote the manifest; the hook assembles next
                self._unassembled = (str(error), time.monotonic())
                return False
            _log.warning("%s; snapshot %s stays in force", error, current.snapshot_id)
            return False
        self._seen = seen
        self._index = index
        _log.info(
            "catalog %s: snapshot %s in force (was %s): %s; read in %.1f s",
            self.directory, index.snapshot_id, current.snapshot_id,
            ", ".join(f"{name} {count} files" for name, count in index.counts.items()),
            time.perf_counter() - started,
        )
        self._warn_empty(index)
        return True

    def _warn_empty(self, index: CatalogIndex) -> None:
        for name, count in index.counts.items():
            if count == 0:
                _log.warning(
                    "catalog %s: snapshot %s lists no active file of backend %r: its media root serves nothing",
                    self.directory, index.snapshot_id, name,
                )

    def start(self) -> None:
        """Look at the directory every ``interval`` seconds from a daemon thread, until :meth:`close`."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="catalog-watch", daemon=True)
            self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.refresh()
            except Exception:  # a dead watcher would freeze the allow-list without a word
                _log.exception("catalog %s: unexpected error; the snapshot in force stays", self.directory)

    def close(self) -> None:
        """Stop looking (a reload under way finishes first)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
