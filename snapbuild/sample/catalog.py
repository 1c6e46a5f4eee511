"""The sample catalog writer: a synthetic source catalog at a path, deterministically, in flat memory.

Every row's content is a pure function of ``(seed, row id)`` (see
:mod:`snapbuild.sample.rows`), so the same seed always gives the same
logical catalog, at any size; a ``layout_seed`` only changes the physical
order in which rows are written (and the page size), which an export must
not notice.
"""

from __future__ import annotations

import contextlib
import glob
import os
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ..errors import TargetError, UsageError
from ..sqlite import readonly_uri
from .hashing import mix, permutation
from .media import write_sample_media
from .rows import (
    MAX_PLAYLIST_LENGTH,
    NAS_BACKEND_ID,
    STORAGE_BACKENDS,
    playlist_row,
    playlist_sequence,
    pool_rows,
    song_rows,
)
from .tables import INDEXES, SAMPLE_MARKER_TABLE, TABLES

# Rows bound per executemany: large enough to be fast, small enough for flat memory.
_BATCH = 5000


@dataclass(frozen=True)
class SampleStats:
    """Row counts of a written sample catalog (and of the media files written beside it)."""

    tracks: int
    playlists: int
    playlist_rows: int
    pools: int
    toplist_pools: int
    pool_memberships: int
    file_assets: int
    file_locations: int
    active_locations: int
    nas_files: int
    media_files: int = 0

    def summary(self) -> str:
        """One line for humans."""
        text = (
            f"{self.tracks} tracks, {self.playlists} playlists, {self.playlist_rows} playlist rows, "
            f"{self.pools} pools ({self.toplist_pools} toplists), {self.file_locations} file locations "
            f"({self.active_locations} active, {self.nas_files} on the NAS)"
        )
        if self.media_files:
            text += f", {self.media_files} media files"
        return text


def is_sample_catalog(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a catalog written by :func:`write_sample_catalog` (so replacing it loses nothing)."""
    target = Path(path)
    if not target.is_file():
        return False
    try:
        conn = sqlite3.connect(readonly_uri(target), uri=True)
    except sqlite3.Error:
        return False
    try:
        row = conn.execute(
            "select 1 from sqlite_schema where type = 'table' and name = ?", (SAMPLE_MARKER_TABLE,)
        ).fetchone()
        return row is not None
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _check_target(path: Path, overwrite: bool) -> None:
    """Refuse a directory, and an existing file unless ``overwrite``."""
    if path.is_dir():
        raise TargetError(f"{path} is a directory, not a database file", path=path)
    if path.exists() and not overwrite:
        raise TargetError(f"{path} already exists", path=path)


def write_sample_catalog(
    path: str | os.PathLike[str],
    *,
    tracks: int = 200,
    playlists: int = 20,
    seed: int = 0,
    media_dir: str | os.PathLike[str] | None = None,
    layout_seed: int | None = None,
    overwrite: bool = False,
) -> SampleStats:
    """Write a synthetic catalog in the source schema (plus a real catalog's extras) at ``path``, deterministically.

    The file is built beside ``path`` and renamed into place, so an
    interrupted run never leaves a half-written catalog at ``path``. About 50
    playlist rows per playlist and 1.1 file locations per track:
    ``tracks=1_000_000, playlists=100_000`` gives ~5,000,000 playlist rows
    and ~1,100,000 locations in flat memory.

    Args:
        path: the catalog file to write.
        tracks: number of songs (ids 1..tracks).
        playlists: number of playlists (ids 1..playlists).
        seed: the logical content; the same seed gives the same rows.
        media_dir: when given, also write an audio file for every active
            ``nas-main`` location (see :func:`write_sample_media`); at large
            sizes that is one file per ~3 tracks, the caller's choice.
        layout_seed: when given, rows are written in a shuffled physical order
            (and another page size); the logical content does not change.
        overwrite: replace an existing file at ``path``.

    Returns:
        the row counts written.

    Raises:
        UsageError: a negative count.
        TargetError: ``path`` exists (without ``overwrite``) or cannot be written.
    """
    if tracks < 0 or playlists < 0:
        raise UsageError(
            "tracks and playlists must not be negative", argument="tracks" if tracks < 0 else "playlists"
        )
    if playlists and not tracks:
        raise UsageError("playlists need at least one track", argument="playlists")
    target = Path(path)
    _check_target(target, overwrite)
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        # What a killed earlier run left behind (it can be hundreds of MB).
        for stale in target.parent.glob(f".{glob.escape(target.name)}.partial-*"):
            with contextlib.suppress(OSError):
                stale.unlink()
        stats = _build(partial, tracks, playlists, seed, layout_seed)
        os.replace(partial, target)
    except (OSError, sqlite3.Error) as error:
        reason = getattr(error, "strerror", None) or error
        raise TargetError(f"cannot write {target}: {reason}", path=target) from error
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
    if media_dir is not None:
        written = write_sample_media(target, media_dir)
        stats = SampleStats(**{**stats.__dict__, "media_files": written})
    return stats


def _build(path: Path, tracks: int, playlists: int, seed: int, layout_seed: int | None) -> SampleStats:
    """Create the tables, rows and indexes in a new file at ``path``; the caller renames it into place."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if layout_seed is not None:
            conn.execute(f"pragma page_size = {(1024, 2048, 8192, 4096)[mix(layout_seed) % 4]}")
        # A throwaway file until the rename: no journal, no fsync; the rename is the commit.
        conn.execute("pragma journal_mode = off")
        conn.execute("pragma synchronous = off")
        conn.execute("begin")
        tables = list(TABLES)
        if layout_seed is not None:
            random.Random(layout_seed).shuffle(tables)
        for table in tables:
            conn.execute(TABLES[table])
        stats = _fill(conn, tracks, playlists, seed, layout_seed)
        for index in INDEXES:
            conn.execute(index)
        conn.execute("commit")
    finally:
        conn.close()
    return stats


def _fill(
    conn: sqlite3.Connection, tracks: int, playlists: int, seed: int, layout_seed: int | None
) -> SampleStats:
    """Insert every row (in a shuffled order when ``layout_seed`` is given) and count what was written."""
    conn.executemany(
        "insert into storage_backends values (?, ?, ?, ?, ?, ?)",
        STORAGE_BACKENDS[:: 1 if layout_seed is None else -1],
    )
    conn.executemany(
        f"insert into {SAMPLE_MARKER_TABLE} values (?, ?)",
        [("seed", str(seed)), ("tracks", str(tracks)), ("playlists", str(playlists))],
    )
    conn.executemany(
        "insert into sync_runs values (?, ?, ?, ?, ?)",
        [
            (1, "2025-01-01T00:00:00Z", "2025-01-01T00:42:00Z", "ok", '{"songs": 1}'),
            (2, "2025-01-02T00:00:00Z", None, "failed", None),
        ],
    )
    counts = {"assets": 0, "locations": 0, "active": 0, "nas": 0}

    def song_batches() -> Iterator[tuple[list, list, list]]:
        songs: list[tuple[object, ...]] = []
        assets: list[tuple[object, ...]] = []
        locations: list[tuple[object, ...]] = []
        for k in permutation(tracks, layout_seed):
            song, asset, rows = song_rows(seed, k + 1)
            songs.append(song)
            if asset is not None:
                assets.append(asset)
            if layout_seed is not None:
                rows.reverse()
            locations.extend(rows)
            if len(songs) >= _BATCH:
                yield songs, assets, locations
                songs, assets, locations = [], [], []
        if songs:
            yield songs, assets, locations

    for songs, assets, locations in song_batches():
        conn.executemany("insert into songs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", songs)
        conn.executemany("insert into file_assets values (?, ?, ?, ?, ?, ?)", assets)
        conn.executemany("insert into file_locations values (?, ?, ?, ?, ?, ?, ?)", locations)
        counts["assets"] += len(assets)
        counts["locations"] += len(locations)
        for row in locations:
            if row[4] == "active":
                counts["active"] += 1
                if row[2] == NAS_BACKEND_ID:
                    counts["nas"] += 1

    # Playlists come from Python; their ~50 rows each are expanded in SQL from
    # (length, start, stride), which is several times faster than binding rows.
    conn.execute(
        "create temp table sample_playlist_gen (seq integer primary key, playlist_id integer not null, "
        "length integer not null, start integer not null, stride integer not null, added_at text)"
    )
    conn.execute("create temp table sample_positions (pos integer primary key)")
    conn.executemany("insert into sample_positions values (?)", ((n,) for n in range(1, MAX_PLAYLIST_LENGTH + 1)))
    playlist_rows = 0
    heads: list[tuple[object, ...]] = []
    sequences: list[tuple[object, ...]] = []
    for k in permutation(playlists, layout_seed):
        playlist_id = k + 1
        length, start, stride, added_at = playlist_sequence(seed, playlist_id, tracks)
        heads.append(playlist_row(seed, playlist_id, length))
        sequences.append((playlist_id, length, start, stride, added_at))
        playlist_rows += length
        if len(heads) >= _BATCH:
            conn.executemany("insert into playlists values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", heads)
            conn.executemany("insert into sample_playlist_gen values (null, ?, ?, ?, ?, ?)", sequences)
            heads, sequences = [], []
    conn.executemany("insert into playlists values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", heads)
    conn.executemany("insert into sample_playlist_gen values (null, ?, ?, ?, ?, ?)", sequences)
    conn.execute(
        f"""insert into playlist_songs (playlist_id, song_id, position, added_at)
            select g.playlist_id, (g.start + n.pos * g.stride) % ? + 1, n.pos, g.added_at
            from sample_playlist_gen g join sample_positions n on n.pos <= g.length
            order by g.seq, n.pos {'desc' if layout_seed is not None else ''}""",
        (max(tracks, 1),),
    )
    conn.execute("drop table temp.sample_playlist_gen")
    conn.execute("drop table temp.sample_positions")

    pools, memberships = pool_rows(seed, playlists)
    if layout_seed is not None:
        random.Random(layout_seed).shuffle(pools)
        random.Random(layout_seed + 1).shuffle(memberships)
    conn.executemany("insert into playlist_pools values (?, ?, ?, ?, ?, ?, ?)", pools)
    conn.executemany("insert into pool_playlists values (?, ?, ?)", memberships)
    return SampleStats(
        tracks=tracks,
        playlists=playlists,
        playlist_rows=playlist_rows,
        pools=len(pools),
        toplist_pools=sum(1 for pool in pools if pool[2] == "toplist"),
        pool_memberships=len(memberships),
        file_assets=counts["assets"],
        file_locations=counts["locations"],
        active_locations=counts["active"],
        nas_files=counts["nas"],
    )
