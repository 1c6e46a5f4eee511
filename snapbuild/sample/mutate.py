"""The sample mutator: a realistic, deterministic change to an existing sample catalog.

It renames, adds, removes and moves a small share of rows in one
transaction, and reports every id it touched, so tests and benchmarks can
check that an export, a commit or a diff sees exactly that change.
"""

from __future__ import annotations

import os
import random
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError, UsageError
from .media import media_file, write_sample_media
from .rows import NAS_BACKEND_ID, QUALITIES, S3_BACKEND_ID, segment, song_rows


@dataclass(frozen=True)
class MutationStats:
    """What :func:`mutate_sample_catalog` changed, with the ids concerned.

    The id tuples are complete (not samples), so a test can assert that a
    diff names exactly these rows.
    """

    renamed_song_ids: tuple[int, ...] = ()
    renamed_playlist_ids: tuple[int, ...] = ()
    added_song_ids: tuple[int, ...] = ()
    added_location_ids: tuple[int, ...] = ()
    # (playlist_id, deleted position); later positions of that playlist moved up by one.
    removed_playlist_rows: tuple[tuple[int, int], ...] = ()
    # (playlist_id, position, song_id) rows appended for the added songs.
    appended_playlist_rows: tuple[tuple[int, int, int], ...] = ()
    moved_location_ids: tuple[int, ...] = ()
    deactivated_location_ids: tuple[int, ...] = ()
    # (pool_id, playlist_id) toplist memberships added / removed.
    toplist_added: tuple[tuple[int, int], ...] = ()
    toplist_removed: tuple[tuple[int, int], ...] = ()
    media_files: int = 0

    @property
    def changed_rows(self) -> int:
        """How many source rows were touched (a rough size of the change)."""
        return (
            len(self.renamed_song_ids)
            + len(self.renamed_playlist_ids)
            + 3 * len(self.added_song_ids)
            + len(self.removed_playlist_rows)
            + len(self.appended_playlist_rows)
            + len(self.moved_location_ids)
            + len(self.deactivated_location_ids)
            + len(self.toplist_added)
            + len(self.toplist_removed)
        )

    def summary(self) -> str:
        """One line for humans."""
        return (
            f"renamed {len(self.renamed_song_ids)} songs and {len(self.renamed_playlist_ids)} playlists, "
            f"added {len(self.added_song_ids)} songs, removed {len(self.removed_playlist_rows)} playlist rows, "
            f"moved {len(self.moved_location_ids)} and deactivated {len(self.deactivated_location_ids)} "
            f"file locations, toplists +{len(self.toplist_added)}/-{len(self.toplist_removed)}"
        )


def _pick_existing(conn: sqlite3.Connection, rng: random.Random, table: str, want: int, where: str = "1") -> list[int]:
    """Up to ``want`` distinct random ids of ``table`` matching ``where``, without reading the table."""
    low, high = conn.execute(f"select min(id), max(id) from {table}").fetchone()
    if low is None or want <= 0:
        return []
    chosen: set[int] = set()
    attempts = 0
    while len(chosen) < want and attempts < want * 50 + 100:
        attempts += 1
        candidate = rng.randint(low, high)
        if candidate in chosen:
            continue
        if conn.execute(f"select 1 from {table} where id = ? and ({where})", (candidate,)).fetchone():
            chosen.add(candidate)
    return sorted(chosen)


def mutate_sample_catalog(
    path: str | os.PathLike[str],
    *,
    fraction: float = 0.01,
    seed: int = 1,
    media_dir: str | os.PathLike[str] | None = None,
) -> MutationStats:
    """Apply a realistic change to about ``fraction`` of a sample catalog, in one transaction.

    With ``n = fraction * songs``: renames n/2 songs, moves n/2 active file
    locations to a new locator (``moved 2026/...``), marks n/4 others
    ``missing``, adds n/4 songs (each with an asset, a location on both
    backends and a row appended to a random playlist); deletes one row from
    ``fraction * playlists`` playlists (renumbering the later positions, as
    a real catalog does) and renames half as many playlists; removes one
    toplist membership and adds another. The same catalog and seed give the
    same change.

    Args:
        path: a catalog written by :func:`write_sample_catalog`.
        fraction: the share of songs (and of playlists, locations) to touch.
        seed: which rows are chosen.
        media_dir: when given, move the media files of moved NAS locations and
            write files for added ones, so the origin keeps serving the sample.

    Returns:
        what was changed, with every id concerned.

    Raises:
        UsageError: ``fraction`` outside (0, 1].
        SourceError: ``path`` is not a sample catalog.
    """
    if not 0 < fraction <= 1:
        raise UsageError("fraction must be in (0, 1]", argument="fraction")
    rng = random.Random(seed)
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        try:
            conn.execute("begin immediate")
            song_total = conn.execute("select count(*) from songs").fetchone()[0]
            playlist_total = conn.execute("select count(*) from playlists").fetchone()[0]
        except sqlite3.DatabaseError as error:
            raise SourceError(f"{path} is not a sample catalog: {error}") from error
        units = max(1, round(fraction * song_total))
        playlist_units = max(1, round(fraction * playlist_total))
        renamed_songs = _pick_existing(conn, rng, "songs", units // 2 or 1)
        for song_id in renamed_songs:
            conn.execute("update songs set name = name || ' (Remastered 2026)' where id = ?", (song_id,))
        renamed_playlists = _pick_existing(conn, rng, "playlists", max(1, playlist_units // 2))
        for playlist_id in renamed_playlists:
            conn.execute("update playlists set name = '新版 ' || name where id = ?", (playlist_id,))

        removed_rows: list[tuple[int, int]] = []
        for playlist_id in _pick_existing(conn, rng, "playlists", playlist_units, "collected_song_count > 1"):
            length = conn.execute(
                "select max(position) from playlist_songs where playlist_id = ?", (playlist_id,)
            ).fetchone()[0]
            if not length:
                continue
            position = rng.randint(1, length)
            conn.execute("delete from playlist_songs where playlist_id = ? and position = ?", (playlist_id, position))
            conn.execute(
                "update playlist_songs set position = position - 1 where playlist_id = ? and position > ?",
                (playlist_id, position),
            )
            conn.execute(
                "update playlists set collected_song_count = collected_song_count - 1 where id = ?", (playlist_id,)
            )
            removed_rows.append((playlist_id, position))

        moved = _pick_existing(conn, rng, "file_locations", max(1, units // 2), "status = 'active'")
        moved_files: list[tuple[str, str]] = []
        for location_id in moved:
            backend_id, locator = conn.execute(
                "select backend_id, locator from file_locations where id = ?", (location_id,)
            ).fetchone()
            new_locator = f"moved 2026/{locator}"
            conn.execute("update file_locations set locator = ? where id = ?", (new_locator, location_id))
            if backend_id == NAS_BACKEND_ID:
                moved_files.append((locator, new_locator))
        deactivated = _pick_existing(
            conn, rng, "file_locations", max(1, units // 4), "status = 'active'"
        )
        deactivated = [location_id for location_id in deactivated if location_id not in moved]
        for location_id in deactivated:
            conn.execute("update file_locations set status = 'missing' where id = ?", (location_id,))

        added_songs, added_locations, appended = _add_songs(conn, rng, seed, max(1, units // 4))

        toplist_added: list[tuple[int, int]] = []
        toplist_removed: list[tuple[int, int]] = []
        toplists = [row[0] for row in conn.execute("select id from playlist_pools where pool_kind = 'toplist' order by id")]
        if toplists and playlist_total:
            pool_id = rng.choice(toplists)
            member = conn.execute(
                "select playlist_id from pool_playlists where pool_id = ? order by playlist_id limit 1", (pool_id,)
            ).fetchone()
            if member:
                conn.execute(
                    "delete from pool_playlists where pool_id = ? and playlist_id = ?", (pool_id, member[0])
                )
                toplist_removed.append((pool_id, member[0]))
            for playlist_id in _pick_existing(conn, rng, "playlists", 5):
                exists = conn.execute(
                    "select 1 from pool_playlists where pool_id = ? and playlist_id = ?", (pool_id, playlist_id)
                ).fetchone()
                if not exists and (pool_id, playlist_id) not in toplist_removed:
                    conn.execute(
                        "insert into pool_playlists values (?, ?, (select coalesce(max(rank), 0) + 1 "
                        "from pool_playlists where pool_id = ?))",
                        (pool_id, playlist_id, pool_id),
                    )
                    toplist_added.append((pool_id, playlist_id))
                    break
        conn.execute("commit")
    except BaseException:
        if conn.in_transaction:
            conn.execute("rollback")
        raise
    finally:
        conn.close()

    media_files = 0
    if media_dir is not None:
        root = Path(media_dir)
        for old, new in moved_files:
            source, dest = media_file(root, old), media_file(root, new)
            if source.exists() and not dest.exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                os.replace(source, dest)
        media_files = write_sample_media(path, root)
    return MutationStats(
        renamed_song_ids=tuple(renamed_songs),
        renamed_playlist_ids=tuple(renamed_playlists),
        added_song_ids=tuple(added_songs),
        added_location_ids=tuple(added_locations),
        removed_playlist_rows=tuple(removed_rows),
        appended_playlist_rows=tuple(appended),
        moved_location_ids=tuple(moved),
        deactivated_location_ids=tuple(deactivated),
        toplist_added=tuple(toplist_added),
        toplist_removed=tuple(toplist_removed),
        media_files=media_files,
    )


def _add_songs(
    conn: sqlite3.Connection, rng: random.Random, seed: int, count: int
) -> tuple[list[int], list[int], list[tuple[int, int, int]]]:
    """Add ``count`` songs, each with an asset, a location on both backends and a playlist row."""
    first = (conn.execute("select coalesce(max(id), 0) from songs").fetchone()[0] or 0) + 1
    next_asset = (conn.execute("select coalesce(max(id), 0) from file_assets").fetchone()[0] or 0) + 1
    next_location = (conn.execute("select coalesce(max(id), 0) from file_locations").fetchone()[0] or 0) + 1
    playlist_high = conn.execute("select max(id) from playlists").fetchone()[0]
    added: list[int] = []
    locations: list[int] = []
    appended: list[tuple[int, int, int]] = []
    for song_id in range(first, first + count):
        song, _asset, _rows = song_rows(seed + 7919, song_id)
        song = (*song[:3], f"新歌 {song[3]}", *song[4:])
        conn.execute("insert into songs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", song)
        platform, name, ext = song[1], song[3], song[6]
        conn.execute(
            "insert into file_assets values (?, ?, ?, ?, ?, ?)",
            (next_asset, song_id, QUALITIES[str(ext)][0], ext, song[7], None),
        )
        locator = f"new/{platform}/{segment(str(name))} - {song_id}.{ext}"
        for backend_id, primary in ((S3_BACKEND_ID, 1), (NAS_BACKEND_ID, 0)):
            conn.execute(
                "insert into file_locations values (?, ?, ?, ?, 'active', ?, null)",
                (next_location, next_asset, backend_id, locator, primary),
            )
            locations.append(next_location)
            next_location += 1
        next_asset += 1
        added.append(song_id)
        if playlist_high:
            playlist_id = rng.randint(1, playlist_high)
            if conn.execute("select 1 from playlists where id = ?", (playlist_id,)).fetchone():
                position = conn.execute(
                    "select coalesce(max(position), 0) + 1 from playlist_songs where playlist_id = ?", (playlist_id,)
                ).fetchone()[0]
                conn.execute("insert into playlist_songs values (?, ?, ?, null)", (playlist_id, song_id, position))
                conn.execute(
                    "update playlists set collected_song_count = collected_song_count + 1 where id = ?",
                    (playlist_id,),
                )
                appended.append((playlist_id, position, song_id))
    return added, locations, appended
