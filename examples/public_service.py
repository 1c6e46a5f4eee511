"""A minimal public service that consumes snapbuild snapshots: the pattern to copy.

It needs nothing but Python's standard library and the ``git`` CLI (a service
in Node or Go does the same in a few lines):

1. ``git clone`` the snapshot repository once, then ``git pull --ff-only`` to
   get each new snapshot.
2. Serve reads from a *private copy* of ``catalog_read.db``, never from the
   clone's own file: ``git pull`` rewrites that file in place (and on Windows
   fails while any process has it open). Each snapshot is copied aside to
   ``live/catalog_read.<snapshot_id>.db`` (assembled there from its pieces
   when a large catalog's snapshot is split), checked against its manifest,
   opened read-only, and the service switches to it atomically; a copy is
   deleted once no reader has it open any more.
3. Give every track a playable URL: object-storage files have a
   ``public_url`` in the snapshot; NAS-only files get a signed, expiring token
   URL for the private origin, minted with the recipe of ``docs/tokens.md``.

Run it (after ``snapbuild export --commit`` and with ``origin-server serve``
running)::

    python examples/public_service.py --remote snapshots.git --workdir consumer \\
        --origin-url http://127.0.0.1:8080 --secret-file origin-keys.txt

Run it again later: it pulls, switches to the new snapshot if there is one,
and prints a few tracks with their URLs (``--json`` for machine-readable
output, ``--song-id N`` for given tracks).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

#: The read-model schema this service was written against (``manifest.json``'s
#: ``schema_version``, also the database's ``PRAGMA user_version``). A snapshot of
#: another version is not switched to: the service keeps serving the last one it
#: understands (see docs/consumers.md for what the number promises).
SUPPORTED_SCHEMA_MAJOR = 1

STREAM_PATH = "/api/private-origin/stream/"
_SNAPSHOT_ID = re.compile(r"[A-Za-z0-9._-]{1,128}\Z")


class ConsumerError(Exception):
    """Something the operator must fix (no repository, a broken snapshot, ...)."""


# --- 1. Getting snapshots: plain git --------------------------------------------------


def sync_clone(remote: str, clone_dir: Path) -> None:
    """Clone ``remote`` into ``clone_dir`` the first time, fast-forward it afterwards."""
    if (clone_dir / ".git").exists():
        command = ["git", "-C", str(clone_dir), "pull", "--ff-only", "--quiet"]
    else:
        clone_dir.parent.mkdir(parents=True, exist_ok=True)
        command = ["git", "clone", "--quiet", remote, str(clone_dir)]
    result = subprocess.run(command, capture_output=True, text=True, encoding="utf-8", errors="replace")
    if result.returncode != 0:
        raise ConsumerError(f"{' '.join(command[:4])} failed: {result.stderr.strip().splitlines()[-1:]}")


# --- 2. Serving from a private copy, switched atomically ------------------------------


def schema_major(manifest: dict[str, Any]) -> int:
    """The snapshot's ``schema_version`` (an integer; a dotted form is read by its major part)."""
    return int(str(manifest["schema_version"]).split(".", 1)[0])


class SnapshotStore:
    """The snapshot a service reads from: a private, read-only copy, swapped atomically.

    Readers call :meth:`reader` for a connection to the current copy; a
    refresh (:meth:`switch_to`) copies a newer snapshot aside and makes it
    current; requests in flight finish on the copy they started with, which
    is deleted when its last reader closes. Thread-safe.
    """

    def __init__(self, live_dir: Path) -> None:
        self.live_dir = live_dir
        self.live_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._current: Path | None = None
        self._manifest: dict[str, Any] | None = None
        self._readers: dict[Path, int] = {}
        self._sweep()  # copies left behind by an earlier run

    @property
    def manifest(self) -> dict[str, Any] | None:
        """The manifest of the snapshot being served, or None before the first switch."""
        return self._manifest

    def switch_to(self, clone_dir: Path) -> bool:
        """Copy the clone's snapshot aside and serve it, if it is new; return whether it switched.

        Raises:
            ConsumerError: the snapshot is incomplete, corrupt, or of an unsupported schema.
        """
        manifest = json.loads((clone_dir / "manifest.json").read_text(encoding="utf-8"))
        snapshot_id = str(manifest.get("snapshot_id", ""))
        if not _SNAPSHOT_ID.match(snapshot_id):
            raise ConsumerError(f"manifest.json has no usable snapshot_id: {snapshot_id!r}")
        if self._manifest is not None and self._manifest.get("snapshot_id") == snapshot_id:
            return False
        if schema_major(manifest) != SUPPORTED_SCHEMA_MAJOR:
            raise ConsumerError(
                f"snapshot {snapshot_id} has schema_version {manifest['schema_version']}; this service reads "
                f"{SUPPORTED_SCHEMA_MAJOR}.x: keeping the current snapshot"
            )
        final = self.live_dir / f"catalog_read.{snapshot_id}.db"
        if not final.exists():
            partial = self.live_dir / f".catalog_read.{snapshot_id}.db.partial-{os.getpid()}"
            if "parts" in manifest:
                _assemble(clone_dir, partial)  # checks each piece and the whole against the manifest
            else:
                shutil.copyfile(clone_dir / "catalog_read.db", partial)
                if _sha256(partial) != manifest.get("db_sha256"):
                    partial.unlink()
                    raise ConsumerError(f"catalog_read.db does not match the manifest of {snapshot_id}")
            os.replace(partial, final)
        with self._lock:
            self._current, self._manifest = final, manifest
        self._sweep()
        return True

    @contextlib.contextmanager
    def reader(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection to the current snapshot, valid for the ``with`` block."""
        with self._lock:
            path = self._current
            if path is None:
                raise ConsumerError("no snapshot loaded yet")
            self._readers[path] = self._readers.get(path, 0) + 1
        try:
            # immutable=1: the copy never changes, so SQLite takes no locks and never
            # writes beside it (no -wal/-shm/-journal files), on every platform.
            conn = sqlite3.connect(path.resolve().as_uri() + "?mode=ro&immutable=1", uri=True)
            try:
                yield conn
            finally:
                conn.close()
        finally:
            with self._lock:
                self._readers[path] -= 1
                retired = path != self._current and self._readers[path] == 0
            if retired:  # the last reader of an old copy: delete it now
                self._sweep()

    def _sweep(self) -> None:
        """Delete every copy that is neither current nor open (and any half-made copy)."""
        with self._lock:
            keep = {self._current} | {path for path, count in self._readers.items() if count > 0}
            self._readers = {path: count for path, count in self._readers.items() if count > 0}
        for path in self.live_dir.glob("*catalog_read.*"):
            if path not in keep:
                with contextlib.suppress(OSError):  # still open elsewhere (Windows): next sweep
                    path.unlink()


def _assemble(clone_dir: Path, output: Path) -> None:
    """Put a split snapshot's pieces together into ``output``, each checked, with the clone's own ``assemble.py``.

    A large catalog's database is committed as pieces under
    ``catalog_read.db.parts/`` (see docs/consumers.md); ``assemble.py`` beside
    them needs only the standard library. (A service that would rather not
    run a script from the repository can keep its own copy of it.)
    """
    result = subprocess.run(
        [sys.executable, str(clone_dir / "assemble.py"), "--output", str(output), str(clone_dir)],
        capture_output=True, text=True, encoding="utf-8", errors="replace",
    )
    if result.returncode != 0:
        raise ConsumerError(result.stderr.strip() or "assemble.py failed")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- 3. Playable URLs: public_url or a token for the private origin -------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def read_signing_key(path: Path) -> tuple[str | None, str]:
    """The signing key (first key) of an origin key file: ``KID:SECRET`` lines, or one bare secret."""
    lines = [
        line.strip() for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not lines:
        raise ConsumerError(f"{path} holds no key")
    kid, sep, secret = lines[0].partition(":")
    return (kid, secret) if sep else (None, lines[0])


def mint_token(secret: str, locator: str, expires_at: int, *, backend: str | None, kid: str | None) -> str:
    """An origin token (JWS compact, HS256) for ``locator``: the stdlib recipe of docs/tokens.md."""
    header: dict[str, str] = {"alg": "HS256", "typ": "JWT"}
    if kid:
        header["kid"] = kid
    claims: dict[str, object] = {"locator": locator, "exp": expires_at}
    if backend:
        claims["backend"] = backend
    signing_input = (
        _b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
        + "."
        + _b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    )
    mac = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + _b64url(mac)


def expiry(now: float, ttl: float, round_to: int = 3600) -> int:
    """``exp`` at least ``ttl`` seconds away, rounded up so URLs minted in one window repeat (cacheable)."""
    return math.ceil((now + ttl) / round_to) * round_to


def playable_tracks(
    conn: sqlite3.Connection,
    *,
    origin_url: str,
    key: tuple[str | None, str],
    now: float,
    ttl: float,
    song_ids: list[int] | None = None,
    limit: int = 5,
) -> list[dict[str, Any]]:
    """Tracks with every active file and a URL a player can fetch for each."""
    if song_ids:
        marks = ",".join("?" * len(song_ids))
        tracks = conn.execute(
            f"select song_id, name, singers from catalog_tracks where song_id in ({marks}) order by song_id",
            song_ids,
        ).fetchall()
    else:
        tracks = conn.execute(
            "select song_id, name, singers from catalog_tracks t"
            " where exists (select 1 from catalog_track_files f where f.song_id = t.song_id)"
            " order by song_id limit ?",
            (limit,),
        ).fetchall()
    kid, secret = key
    exp = expiry(now, ttl)
    result = []
    for song_id, name, singers in tracks:
        files = []
        for location_id, backend_type, backend_name, locator, public_url in conn.execute(
            "select location_id, backend_type, backend_name, locator, public_url from catalog_track_files"
            " where song_id = ? order by is_primary desc, location_id",
            (song_id,),
        ):
            if public_url:
                url = public_url
            else:
                token = mint_token(secret, locator, exp, backend=backend_name, kid=kid)
                url = origin_url.rstrip("/") + STREAM_PATH + token
            files.append({"location_id": location_id, "backend": backend_name, "type": backend_type,
                          "locator": locator, "url": url})
        result.append({"song_id": song_id, "name": name, "singers": singers, "files": files})
    return result


def main(argv: list[str] | None = None) -> int:
    """Pull the snapshots, switch to the newest, print a few tracks with playable URLs."""
    parser = argparse.ArgumentParser(description="A minimal consumer of snapbuild snapshots.")
    parser.add_argument("--remote", required=True, help="the snapshot repository to clone (path or URL)")
    parser.add_argument("--workdir", required=True, type=Path, help="holds clone/ and live/ (the private copies)")
    parser.add_argument("--origin-url", required=True, help="the private origin's base URL")
    parser.add_argument("--secret-file", required=True, type=Path, help="the origin's key file (first key signs)")
    parser.add_argument("--ttl", type=float, default=6 * 3600, help="token lifetime in seconds (default 6 h)")
    parser.add_argument("--limit", type=int, default=5, help="how many tracks to print")
    parser.add_argument("--song-id", type=int, action="append", help="print these tracks instead")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        clone = args.workdir / "clone"
        sync_clone(args.remote, clone)
        store = SnapshotStore(args.workdir / "live")
        store.switch_to(clone)
        key = read_signing_key(args.secret_file)
        with store.reader() as conn:
            tracks = playable_tracks(conn, origin_url=args.origin_url, key=key, now=time.time(),
                                     ttl=args.ttl, song_ids=args.song_id, limit=args.limit)
    except (ConsumerError, OSError, sqlite3.Error, ValueError, KeyError) as error:
        print(f"public_service: error: {error}", file=sys.stderr)
        return 1
    manifest = store.manifest or {}
    if args.json:
        print(json.dumps({"snapshot_id": manifest.get("snapshot_id"), "tracks": tracks}, ensure_ascii=False))
    else:
        print(f"snapshot {manifest.get('snapshot_id')} (schema {manifest.get('schema_version')}, "
              f"{manifest.get('track_count')} tracks)")
        for track in tracks:
            print(f"{track['song_id']}  {track['name']} - {track['singers']}")
            for file in track["files"]:
                print(f"    {file['backend']:<10} {file['url']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
