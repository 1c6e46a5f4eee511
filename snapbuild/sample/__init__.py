"""A synthetic, realistic source catalog for the quick start, the tests and the benchmarks.

The catalog follows the plan's source schema (Tasks 2 and 5) plus the extra
columns and tables a real catalog carries (an export must ignore them). Every
row's content is a pure function of ``(seed, row id)``, so the same seed
always gives the same logical catalog, at any size, in flat memory; a
``layout_seed`` only changes the physical order in which rows are written
(and the page size), which an export must not notice.

Locators are relative paths that are valid file names on Windows and POSIX:
no ``:``, ``\\``, ``< > " | *``, no segment ending in a dot or a space, no
reserved device name (``CON``, ``NUL``, ``COM1`` ...). They do contain
spaces, ``#``, ``%``, ``&``, ``'`` and Chinese characters; ``?`` (invalid in a
Windows file name) appears only in object-storage-only locators, which are
object keys, never files on a NAS.
"""

from __future__ import annotations

import array
import contextlib
import functools
import glob
import json
import math
import os
import random
import sqlite3
import sys
import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import SourceError, TargetError, UsageError

__all__ = [
    "MutationStats",
    "SampleStats",
    "is_sample_catalog",
    "mutate_sample_catalog",
    "write_sample_catalog",
    "write_sample_media",
]

NAS_BACKEND_ID = 1
S3_BACKEND_ID = 2
PUBLIC_BASE_URL = "https://cdn.example/music/"

# The marker table: its presence says "this file is a sample catalog", so the CLI
# may replace it without --force (a real catalog never has it).
SAMPLE_MARKER_TABLE = "snapbuild_sample"

_BATCH = 5000
_MASK = (1 << 64) - 1

# The plan's schema (Tasks 2 and 5) with the extras real catalogs have: extra
# columns, some in the middle of a table (an export must select by name), and
# extra tables.
_SCHEMA = {
    "playlists": """
create table playlists (
    id integer primary key,
    platform text not null,
    remote_playlist_id text not null,
    name text not null,
    creator text,
    description text,
    cover_url text,
    play_count integer default 0,
    collected_song_count integer default 0,
    updated_at text
)""",
    "songs": """
create table songs (
    id integer primary key,
    platform text not null,
    remote_song_id text not null,
    name text not null,
    singers text,
    album text,
    ext text,
    file_size_bytes integer,
    metadata_json text,
    created_at text
)""",
    "playlist_songs": """
create table playlist_songs (
    playlist_id integer not null,
    song_id integer not null,
    position integer not null,
    added_at text
)""",
    "playlist_pools": """
create table playlist_pools (
    id integer primary key,
    platform text not null,
    pool_kind text not null,
    external_id text not null,
    name text not null,
    url text,
    metadata_json text
)""",
    "pool_playlists": """
create table pool_playlists (
    pool_id integer not null,
    playlist_id integer not null,
    rank integer
)""",
    "storage_backends": """
create table storage_backends (
    id integer primary key,
    name text not null,
    backend_type text not null,
    base_path text,
    config_json text,
    enabled integer not null default 1
)""",
    "file_assets": """
create table file_assets (
    id integer primary key,
    song_id integer not null,
    quality_label text,
    ext text,
    file_size_bytes integer,
    sha1 text
)""",
    "file_locations": """
create table file_locations (
    id integer primary key,
    file_asset_id integer not null,
    backend_id integer not null,
    locator text not null,
    status text not null,
    is_primary integer not null,
    checked_at text
)""",
    "sync_runs": """
create table sync_runs (
    id integer primary key,
    started_at text not null,
    finished_at text,
    status text not null,
    stats_json text
)""",
    SAMPLE_MARKER_TABLE: f"""
create table {SAMPLE_MARKER_TABLE} (
    key text primary key,
    value text not null
)""",
}

# Real catalogs index their join columns; the export must cope with (or avoid) them.
_INDEXES = (
    "create index idx_playlist_songs_playlist on playlist_songs (playlist_id, position)",
    "create index idx_playlist_songs_song on playlist_songs (song_id)",
    "create index idx_pool_playlists_pool on pool_playlists (pool_id)",
    "create index idx_file_assets_song on file_assets (song_id)",
    "create index idx_file_locations_asset on file_locations (file_asset_id)",
)

_PLATFORMS = ("netease", "kuwo", "qq", "kugou")
_CN_WORDS = (
    "海屿", "你", "星河", "晚风", "银河", "夏天", "故乡", "月光", "雨", "少年", "梦", "远方",
    "山海", "城市", "孤独", "温柔", "时光", "告白", "花火", "白日", "春风", "飞鸟", "青春", "回忆",
)
_LATIN_WORDS = (
    "Blue", "Night", "Drive", "Summer", "Echo", "Neon", "Ocean", "Paper", "Moon", "River",
    "Fire", "Dream", "Café", "Über", "Naïve", "Golden", "Hour", "Wild", "Heart", "Rain",
)
# Suffixes that break naive URL and path handling: '#', '?', '%', '&', quotes, dots.
_SPECIALS = (
    "#1", "Vol. 2", "100%", "Why?", "Live @ Home", "(Remix)", "A & B", "Don't Stop",
    "[Demo]", "Track #7", "50% Off", "Who Are You?", "Part 2 of 3", "…", "feat. 周深",
)
_SINGERS = (
    "马也 / Crabbit", "Crabbit", "周深", "邓紫棋", "林俊杰", "陈奕迅", "Beyoncé", "Sigur Rós",
    "AC/DC", "M.I.A.", "Aux", "Con Funk Shun", "P!nk", "Hikaru Utada", "告五人", "Twice",
)
_ALBUMS = (
    "海屿你", "Greatest Hits Vol.", "未命名专辑", "Live at 100% ", "Night Drive #2",
    "夏日 & Friends", "Singles", "Don't Look Back", "The Best of 2019", "無題",
)
_QUALITIES = {"flac": ("lossless", "hires", "super"), "mp3": ("standard", "exhigh")}
_TOPLIST_NAMES = (
    "酷我飙升榜", "热歌榜", "新歌榜", "原创榜", "Billboard Hot 100", "UK Top 40 #", "抖音热歌榜", "说唱榜",
)
_OTHER_POOL_KINDS = ("featured", "radar", "editorial")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{n}" for n in range(1, 10)} | {f"LPT{n}" for n in range(1, 10)}
)
# Average playlist length: ~50 rows, so 100,000 playlists give ~5,000,000 playlist rows.
_MAX_PLAYLIST_LENGTH = 99


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


def _mix(x: int) -> int:
    """splitmix64: a fast, well-spread 64-bit hash, so each row is a pure function of its id."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=256)
def _stream_base(seed: int, stream: int) -> int:
    return _mix(_mix(seed & _MASK) ^ (stream * 0x632BE59BD9B4E019 & _MASK))


def _h(seed: int, stream: int, i: int) -> int:
    """The hash of row ``i`` in one stream of values: stable for a given seed and stream."""
    return _mix(_stream_base(seed, stream) ^ i)


def _permutation(n: int, layout_seed: int | None) -> Iterator[int]:
    """Yield 0..n-1 in identity order, or in a seed-dependent order (an affine bijection), in O(1) memory."""
    if layout_seed is None or n <= 1:
        yield from range(n)
        return
    h = _mix(layout_seed & _MASK)
    step = (h % n) | 1
    while math.gcd(step, n) != 1:
        step += 2
    offset = (h >> 32) % n
    for k in range(n):
        yield (offset + k * step) % n


def _coprime_stride(h: int, n: int) -> int:
    """A stride in 1..n-1 coprime with n, so ``start + k*stride (mod n)`` never repeats within n steps."""
    if n <= 2:
        return 1
    stride = 1 + h % (n - 1)
    while math.gcd(stride, n) != 1:
        stride = stride % (n - 1) + 1
    return stride


@functools.lru_cache(maxsize=1 << 14)
def _segment(text: str, allow_question_mark: bool = False) -> str:
    """Turn free text into one path segment that is a valid file name on Windows and POSIX."""
    text = text.replace(" / ", ", ").replace("/", "-").replace("\\", "-").replace(":", "-")
    for char in '<>"|*':
        text = text.replace(char, "-")
    if not allow_question_mark:
        text = text.replace("?", "")
    text = text.strip().rstrip(". ") or "_"
    if text.split(".")[0].rstrip(" ").upper() in _WINDOWS_RESERVED:
        text = "_" + text
    return text


def _pick(h: int, shift: int, options: Sequence[str]) -> str:
    return options[(h >> shift) % len(options)]


def _song_name(h: int) -> str:
    kind = h % 5
    if kind == 0:
        name = _pick(h, 8, _CN_WORDS) + _pick(h, 16, _CN_WORDS)
    elif kind == 1:
        name = f"{_pick(h, 8, _LATIN_WORDS)} {_pick(h, 16, _LATIN_WORDS)}"
    elif kind == 2:
        name = f"{_pick(h, 8, _CN_WORDS)} {_pick(h, 16, _LATIN_WORDS)}"
    elif kind == 3:
        name = f"{_pick(h, 8, _CN_WORDS)}{_pick(h, 16, _CN_WORDS)} {_pick(h, 24, _SPECIALS)}"
    else:
        name = f"{_pick(h, 8, _LATIN_WORDS)} {_pick(h, 24, _SPECIALS)}"
    return name


def _singers(h: int) -> str:
    first = _pick(h, 32, _SINGERS)
    if (h >> 40) % 6 == 0:
        second = _pick(h, 44, _SINGERS)
        if second != first:
            return f"{first} / {second}"
    return first


@functools.lru_cache(maxsize=4)
def _timestamps(year: int) -> tuple[str, ...]:
    """4096 deterministic ISO timestamps in ``year`` (a table: formatting one per row is slow)."""
    return tuple(
        f"{year}-{1 + h % 12:02d}-{1 + (h >> 4) % 28:02d}T{(h * 5) % 24:02d}:{(h * 7) % 60:02d}:{(h * 11) % 60:02d}Z"
        for h in range(4096)
    )


def _timestamp(h: int, year: int = 2024) -> str:
    """A deterministic ISO timestamp (never the wall clock) picked by the low 12 bits of ``h``."""
    return _timestamps(year)[h & 0xFFF]


_ALBUM_JSON = {album: json.dumps(album, ensure_ascii=False) for album in _ALBUMS}


def _song_rows(
    seed: int, song_id: int
) -> tuple[tuple[object, ...], tuple[object, ...] | None, list[tuple[object, ...]]]:
    """The songs row, the file_assets row (or None) and the file_locations rows of one song."""
    mix = _mix
    h = mix(_stream_base(seed, 1) ^ song_id)
    h2 = mix(_stream_base(seed, 2) ^ song_id)
    platform = _PLATFORMS[h2 & 3]
    name = _song_name(h)
    singers = _singers(h)
    album = _ALBUMS[(h2 >> 8) % len(_ALBUMS)]
    flac = (h2 >> 12) % 3 != 0
    ext = "flac" if flac else "mp3"
    size = (20_000_000 + (h2 >> 16) % 40_000_000) if flac else (3_000_000 + (h2 >> 16) % 9_000_000)
    if (h2 >> 40) % 50 == 0:
        metadata = None
    else:
        metadata = (
            f'{{"duration_ms": {90_000 + (h2 >> 24) % 300_000}, "album": {_ALBUM_JSON[album]}, '
            f'"bitrate": {999 if flac else 320}, "lyrics": {"true" if (h2 >> 46) & 1 else "false"}}}'
        )
    song = (
        song_id, platform, str(100000 + (h2 >> 20) % 90_000_000), name, singers, album, ext, size,
        metadata, _timestamp(h2 >> 3),
    )
    h3 = mix(_stream_base(seed, 3) ^ song_id)
    if h3 % 50 == 0:  # 2% of songs have no downloaded file yet
        return song, None, []
    asset_id = song_id
    qualities = _QUALITIES[ext]
    asset = (asset_id, song_id, qualities[(h3 >> 8) % len(qualities)], ext, size, "%016x%016x" % (h3, h2))
    checked = _timestamp(h3 >> 5, 2025)
    first_id, second_id = 2 * asset_id - 1, 2 * asset_id
    category = (h3 >> 20) % 100
    singer_segment, name_segment = _segment(singers), _segment(name)
    nas_locator = f"{platform}/{singer_segment}/{_segment(album)}/{name_segment} - {song_id}.{ext}"
    if category < 58:  # object storage only: an object key, so it may hold a '?'
        s3_locator = f"music/{platform}/{singer_segment}/{_segment(name, True)} #{song_id}.{ext}"
        return song, asset, [(first_id, asset_id, S3_BACKEND_ID, s3_locator, "active", 1, checked)]
    if category < 85:  # NAS only: served by the private origin
        return song, asset, [(first_id, asset_id, NAS_BACKEND_ID, nas_locator, "active", 1, checked)]
    if category < 93:  # mirrored on both, same key
        return song, asset, [
            (first_id, asset_id, S3_BACKEND_ID, nas_locator, "active", 1, checked),
            (second_id, asset_id, NAS_BACKEND_ID, nas_locator, "active", 0, checked),
        ]
    old_locator = f"old/{platform}/{name_segment} ({song_id}).{ext}"
    nas_side = (h3 >> 30) & 1
    if category < 96:  # only an inactive location: the song has no playable file
        if nas_side:
            return song, asset, [(first_id, asset_id, NAS_BACKEND_ID, old_locator, "missing", 1, checked)]
        return song, asset, [(first_id, asset_id, S3_BACKEND_ID, old_locator, "deleted", 1, checked)]
    # an active location plus a stale one
    if nas_side:
        return song, asset, [
            (first_id, asset_id, NAS_BACKEND_ID, nas_locator, "active", 1, checked),
            (second_id, asset_id, S3_BACKEND_ID, old_locator, "deleted", 0, checked),
        ]
    return song, asset, [
        (first_id, asset_id, S3_BACKEND_ID, nas_locator, "active", 1, checked),
        (second_id, asset_id, NAS_BACKEND_ID, old_locator, "missing", 0, checked),
    ]


def _playlist_length(seed: int, playlist_id: int, tracks: int) -> tuple[int, int, int]:
    """(length, start, stride) of a playlist: its songs are ``(start + k*stride) % tracks + 1``."""
    h = _h(seed, 4, playlist_id)
    length = min(1 + h % _MAX_PLAYLIST_LENGTH, tracks)
    return length, (h >> 8) % tracks, _coprime_stride(h >> 32, tracks)


def _playlist_row(seed: int, playlist_id: int, length: int) -> tuple[object, ...]:
    h = _h(seed, 5, playlist_id)
    platform = _PLATFORMS[h % len(_PLATFORMS)]
    kind = (h >> 4) % 6
    if kind == 0:
        name = f"{_pick(h, 8, _CN_WORDS)}{_pick(h, 16, _CN_WORDS)}歌单"
    elif kind == 1:
        name = f"私人雷达 · {_pick(h, 8, _CN_WORDS)}"
    elif kind == 2:
        name = f"{_pick(h, 8, _LATIN_WORDS)} {_pick(h, 16, _LATIN_WORDS)} Mix"
    elif kind == 3:
        name = f"华语 {_pick(h, 8, _CN_WORDS)} #{playlist_id % 100}"
    elif kind == 4:
        name = f"100% {_pick(h, 8, _LATIN_WORDS)} & {_pick(h, 16, _CN_WORDS)}"
    else:
        name = "测试歌单"
    desc_kind = (h >> 24) % 5
    if desc_kind == 0:
        description = None
    elif desc_kind == 1:
        description = f"第一行\n第二行: {_pick(h, 28, _LATIN_WORDS)}\t(tab)"
    elif desc_kind == 2:
        description = ""
    else:
        description = f"{_pick(h, 28, _CN_WORDS)} songs, curated by {_pick(h, 32, _SINGERS)}"
    cover = None if (h >> 36) % 10 == 0 else f"https://img.example/playlist/{platform}/{playlist_id}.jpg"
    creator = _pick(h, 40, _SINGERS) if (h >> 44) % 3 else None
    return (
        playlist_id, platform, str(1000 + (h >> 20) % 9_000_000_000), name, creator, description, cover,
        (h >> 48) % 5_000_000, length, _timestamp(h >> 2, 2025),
    )


def _pools(seed: int, playlists: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The playlist_pools rows and pool_playlists rows (a few hundred at most per 100k playlists)."""
    pools: list[tuple[object, ...]] = []
    members: list[tuple[object, ...]] = []
    if playlists == 0:
        return pools, members
    toplist_count = max(2, playlists // 400)
    other_count = max(1, playlists // 1000)
    for pool_id in range(1, toplist_count + other_count + 1):
        h = _h(seed, 6, pool_id)
        platform = _PLATFORMS[h % len(_PLATFORMS)]
        if pool_id <= toplist_count:
            kind = "toplist"
            name = _TOPLIST_NAMES[(pool_id - 1) % len(_TOPLIST_NAMES)]
            if pool_id > len(_TOPLIST_NAMES):
                name = f"{name} {pool_id}"
            external_id = f"{platform}_top_{pool_id}"
            size = 3 + (h >> 8) % 6
            url = None if pool_id % 3 == 0 else f"https://{platform}.example/toplist?id={pool_id}"
        else:
            kind = _OTHER_POOL_KINDS[pool_id % len(_OTHER_POOL_KINDS)]
            name = f"{_pick(h, 12, _CN_WORDS)} {kind.title()} #{pool_id}"
            external_id = f"{platform}_{kind}_{pool_id}"
            size = 5 + (h >> 8) % 16
            url = None
        metadata = "{}" if pool_id % 2 else f'{{"region": "cn", "refresh_minutes": {30 + pool_id % 60}}}'
        pools.append((pool_id, platform, kind, external_id, name, url, metadata))
        size = min(size, playlists)
        start, stride = (h >> 16) % playlists, _coprime_stride(h >> 40, playlists)
        for rank in range(size):
            members.append((pool_id, (start + rank * stride) % playlists + 1, rank + 1))
    return pools, members


def is_sample_catalog(path: str | os.PathLike[str]) -> bool:
    """True if ``path`` is a catalog written by :func:`write_sample_catalog` (so replacing it loses nothing)."""
    target = Path(path)
    if not target.is_file():
        return False
    try:
        conn = sqlite3.connect(target.absolute().as_uri() + "?mode=ro", uri=True)
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
    """Write a synthetic source catalog in the plan's schema at ``path``, deterministically.

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
        media_dir: when given, also write a real WAV file for every active
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
        raise UsageError("tracks and playlists must not be negative")
    if playlists and not tracks:
        raise UsageError("playlists need at least one track")
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
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        if layout_seed is not None:
            conn.execute(f"pragma page_size = {(1024, 2048, 8192, 4096)[_mix(layout_seed) % 4]}")
        # A throwaway file until the rename: no journal, no fsync; the rename is the commit.
        conn.execute("pragma journal_mode = off")
        conn.execute("pragma synchronous = off")
        conn.execute("begin")
        tables = list(_SCHEMA)
        if layout_seed is not None:
            random.Random(layout_seed).shuffle(tables)
        for table in tables:
            conn.execute(_SCHEMA[table])
        stats = _fill(conn, tracks, playlists, seed, layout_seed)
        for index in _INDEXES:
            conn.execute(index)
        conn.execute("commit")
    finally:
        conn.close()
    return stats


def _fill(
    conn: sqlite3.Connection, tracks: int, playlists: int, seed: int, layout_seed: int | None
) -> SampleStats:
    conn.executemany(
        "insert into storage_backends values (?, ?, ?, ?, ?, ?)",
        [
            (NAS_BACKEND_ID, "nas-main", "nas", "/volume1/music", '{"host": "nas.local", "share": "music"}', 1),
            (
                S3_BACKEND_ID, "main-s3", "object_storage", None,
                f'{{"bucket": "music", "region": "auto", "public_base_url": "{PUBLIC_BASE_URL}"}}', 1,
            ),
        ][:: 1 if layout_seed is None else -1],
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
        for k in _permutation(tracks, layout_seed):
            song, asset, rows = _song_rows(seed, k + 1)
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
    conn.executemany("insert into sample_positions values (?)", ((n,) for n in range(1, _MAX_PLAYLIST_LENGTH + 1)))
    playlist_rows = 0
    heads: list[tuple[object, ...]] = []
    plans: list[tuple[object, ...]] = []
    for k in _permutation(playlists, layout_seed):
        playlist_id = k + 1
        length, start, stride = _playlist_length(seed, playlist_id, tracks)
        heads.append(_playlist_row(seed, playlist_id, length))
        plans.append((playlist_id, length, start, stride, _timestamp(_h(seed, 7, playlist_id), 2025)))
        playlist_rows += length
        if len(heads) >= _BATCH:
            conn.executemany("insert into playlists values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", heads)
            conn.executemany("insert into sample_playlist_gen values (null, ?, ?, ?, ?, ?)", plans)
            heads, plans = [], []
    conn.executemany("insert into playlists values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", heads)
    conn.executemany("insert into sample_playlist_gen values (null, ?, ?, ?, ?, ?)", plans)
    conn.execute(
        f"""insert into playlist_songs (playlist_id, song_id, position, added_at)
            select g.playlist_id, (g.start + n.pos * g.stride) % ? + 1, n.pos, g.added_at
            from sample_playlist_gen g join sample_positions n on n.pos <= g.length
            order by g.seq, n.pos {'desc' if layout_seed is not None else ''}""",
        (max(tracks, 1),),
    )
    conn.execute("drop table temp.sample_playlist_gen")
    conn.execute("drop table temp.sample_positions")

    pools, memberships = _pools(seed, playlists)
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


# -- media files -----------------------------------------------------------------------------

_SAMPLE_RATE = 8000
_SECONDS = 3
_tone_cache: dict[int, bytes] = {}


def _tone(note: int) -> bytes:
    """16-bit mono PCM of a sine tone (one of 12 notes from A3), faded in and out to avoid clicks."""
    frames = _tone_cache.get(note)
    if frames is None:
        freq = 220.0 * 2 ** (note / 12)
        total = _SAMPLE_RATE * _SECONDS
        fade = _SAMPLE_RATE // 20
        samples = array.array("h")
        for n in range(total):
            envelope = min(1.0, n / fade, (total - 1 - n) / fade)
            samples.append(int(12000 * envelope * math.sin(2 * math.pi * freq * n / _SAMPLE_RATE)))
        if sys.byteorder == "big":
            samples.byteswap()
        frames = _tone_cache[note] = samples.tobytes()
    return frames


def _media_path(media_root: Path, locator: str) -> Path:
    """``media_root/locator``, refusing anything that is not a plain relative path below the root."""
    parts = PurePosixPath(locator).parts
    if (
        not parts
        or locator.startswith("/")
        or any(part in ("", ".", "..") or ":" in part or "\\" in part for part in parts)
    ):
        raise SourceError(f"locator {locator!r} is not a relative path", table="file_locations", column="locator")
    return media_root.joinpath(*parts)


def _write_wav(path: Path, note: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(_SAMPLE_RATE)
        out.writeframes(_tone(note))
    os.replace(partial, path)


def write_sample_media(catalog: str | os.PathLike[str], media_dir: str | os.PathLike[str]) -> int:
    """Write a 3-second 8 kHz 16-bit mono WAV tone at ``media_dir/LOCATOR`` for every active ``nas-main`` location.

    The bytes are WAV whatever the locator's extension (``.flac`` or ``.mp3``
    in the sample): enough for the origin server to stream and a browser to
    play; real FLAC/MP3 files are the end-to-end tests' business. Files that
    already exist are left as they are, so re-running after a mutation only
    writes the new ones. Writes one file per active NAS location: at a million
    tracks that is ~350,000 files, the caller's choice.

    Returns:
        how many files were written.

    Raises:
        SourceError: a locator is not a plain relative path.
        TargetError: a file cannot be written.
    """
    root = Path(media_dir)
    written = 0
    conn = sqlite3.connect(Path(catalog).absolute().as_uri() + "?mode=ro", uri=True)
    try:
        cursor = conn.execute(
            """
            select fl.id, fl.locator from file_locations fl
            join storage_backends sb on sb.id = fl.backend_id
            where sb.name = 'nas-main' and fl.status = 'active'
            order by fl.id
            """
        )
        for location_id, locator in cursor:
            path = _media_path(root, locator)
            if path.exists():
                continue
            try:
                _write_wav(path, location_id % 12)
            except OSError as error:
                raise TargetError(f"cannot write {path}: {error.strerror or error}", path=path) from error
            written += 1
    finally:
        conn.close()
    return written


# -- mutation --------------------------------------------------------------------------------


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
        raise UsageError("fraction must be in (0, 1]")
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
            source, dest = _media_path(root, old), _media_path(root, new)
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
        song, _asset, _rows = _song_rows(seed + 7919, song_id)
        song = (*song[:3], f"新歌 {song[3]}", *song[4:])
        conn.execute("insert into songs values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", song)
        platform, name, ext = song[1], song[3], song[6]
        conn.execute(
            "insert into file_assets values (?, ?, ?, ?, ?, ?)",
            (next_asset, song_id, _QUALITIES[str(ext)][0], ext, song[7], None),
        )
        locator = f"new/{platform}/{_segment(str(name))} - {song_id}.{ext}"
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
