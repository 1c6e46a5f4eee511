"""Helpers for the repository tests: snapshot directories and the real git CLI."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from snapbuild.git.store import LOCK_NAME
from snapbuild.snapshots import CommitResult, commit_snapshot

GIT = "git"


def git(*args: str | Path, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the real git CLI and return its completed process (text, captured)."""
    proc = subprocess.run(
        [GIT, *map(str, args)], cwd=cwd, capture_output=True, text=True, encoding="utf-8", check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(map(str, args))} failed: {proc.stderr}")
    return proc


def fsck(git_dir: Path) -> None:
    """Assert that ``git fsck --full --strict`` finds nothing wrong."""
    proc = git("--git-dir", git_dir, "fsck", "--full", "--strict", "--no-dangling", check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "error" not in proc.stderr.lower(), proc.stderr


def make_snapshot(
    directory: Path, *, tracks: int, generated_at: str = "2026-01-01T00:00:00Z", playlists: int = 3
) -> Path:
    """Write a small snapshot directory (a SQLite database and a manifest in the export's format).

    The content digest covers the rows only, so the same ``tracks`` at another
    ``generated_at`` is the same content, as with the real export.
    """
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "catalog_read.db"
    db.unlink(missing_ok=True)
    conn = sqlite3.connect(db)
    try:
        conn.execute("create table catalog_tracks (song_id integer primary key, name text not null)")
        conn.execute("create table catalog_playlists (playlist_id integer primary key, name text not null)")
        conn.executemany("insert into catalog_tracks values (?, ?)", ((i, f"track {i} 海屿你") for i in range(tracks)))
        conn.executemany("insert into catalog_playlists values (?, ?)", ((i, f"list {i}") for i in range(playlists)))
        conn.commit()
    finally:
        conn.close()
    content = hashlib.sha256(f"tracks={tracks};playlists={playlists}".encode()).hexdigest()
    manifest = {
        "snapshot_id": f"snap-{content[:16]}",
        "generated_at": generated_at,
        "schema_version": 1,
        "playlist_count": playlists,
        "track_count": tracks,
        "file_count": 0,
        "cover_count": 0,
        "db_sha256": hashlib.sha256(db.read_bytes()).hexdigest(),
        "content_digest": content,
        "table_counts": {"catalog_playlists": playlists, "catalog_tracks": tracks},
        "sqlite_version": sqlite3.sqlite_version,
        "repairs": {},
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return directory


def object_files(git_dir: Path) -> set[str]:
    """Relative paths of every file under ``objects/`` (to prove nothing was written)."""
    root = git_dir / "objects"
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def commit_history(
    tmp_path: Path, repo_path: Path, tracks: tuple[int, ...] = (5, 6, 8), *, part_size: int | None = None
) -> list[CommitResult]:
    """Commit one snapshot per entry of ``tracks`` (its track count), a day apart from 2026-01-01; return the results.

    The snapshot directories are ``tmp_path/s1``, ``s2``, ...; ``part_size`` as ``commit_snapshot`` takes it.
    """
    results = []
    for day, count in enumerate(tracks, start=1):
        snap = make_snapshot(tmp_path / f"s{day}", tracks=count, generated_at=f"2026-01-{day:02d}T00:00:00Z")
        results.append(commit_snapshot(repo_path, snap, lock_timeout=5, part_size=part_size))
    return results


_HOLD_LOCK = """
import sys, time
from filelock import FileLock
lock = FileLock(sys.argv[1])
lock.acquire()
print("locked", flush=True)
time.sleep(60)
"""


@contextmanager
def lock_held_by_another_process(git_dir: Path) -> Iterator[None]:
    """Hold the repository's writer lock in a child process for the ``with`` block, then kill it."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(git_dir / LOCK_NAME)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.kill()
        holder.wait()
