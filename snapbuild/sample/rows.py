"""The sample's rows: songs with their files, playlists, pools and storage backends, from ``(seed, id)``.

Each generator returns the rows of one entity as tuples in the column order
of the sample's tables (:mod:`snapbuild.sample.tables`); its content is a
pure function of the seed and the id (:mod:`snapbuild.sample.hashing`).

Locators are relative paths that are valid file names on Windows and POSIX:
no ``:``, ``\\``, ``< > " | *``, no segment ending in a dot or a space, no
reserved device name (``CON``, ``NUL``, ``COM1`` ...). They do contain
spaces, ``#``, ``%``, ``&``, ``'`` and Chinese characters; ``?`` (invalid in a
Windows file name) appears only in object-storage-only locators, which are
object keys, never files on a NAS.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence

from .hashing import coprime_stride, mix, row_hash, stream_base

NAS_BACKEND_ID = 1
NAS_BACKEND_NAME = "nas-main"
S3_BACKEND_ID = 2
PUBLIC_BASE_URL = "https://cdn.example/music/"

# The storage_backends rows: a NAS served by the private origin, and a public object storage.
STORAGE_BACKENDS: tuple[tuple[object, ...], ...] = (
    (NAS_BACKEND_ID, NAS_BACKEND_NAME, "nas", "/volume1/music", '{"host": "nas.local", "share": "music"}', 1),
    (
        S3_BACKEND_ID, "main-s3", "object_storage", None,
        f'{{"bucket": "music", "region": "auto", "public_base_url": "{PUBLIC_BASE_URL}"}}', 1,
    ),
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
QUALITIES = {"flac": ("lossless", "hires", "super"), "mp3": ("standard", "exhigh")}
_TOPLIST_NAMES = (
    "酷我飙升榜", "热歌榜", "新歌榜", "原创榜", "Billboard Hot 100", "UK Top 40 #", "抖音热歌榜", "说唱榜",
)
_OTHER_POOL_KINDS = ("featured", "radar", "editorial")
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL"} | {f"COM{n}" for n in range(1, 10)} | {f"LPT{n}" for n in range(1, 10)}
)
# Average playlist length: ~50 rows, so 100,000 playlists give ~5,000,000 playlist rows.
MAX_PLAYLIST_LENGTH = 99


@functools.lru_cache(maxsize=1 << 14)
def segment(text: str, allow_question_mark: bool = False) -> str:
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
    """One of ``options``, chosen by the bits of ``h`` from ``shift`` up."""
    return options[(h >> shift) % len(options)]


def _song_name(h: int) -> str:
    """A song name: Chinese, Latin or mixed words, some with URL- and path-breaking suffixes."""
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
    """One singer, or (about one song in six) two joined by ``" / "`` as real catalogs write them."""
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


def song_rows(
    seed: int, song_id: int
) -> tuple[tuple[object, ...], tuple[object, ...] | None, list[tuple[object, ...]]]:
    """The songs row, the file_assets row (or None) and the file_locations rows of one song."""
    h = mix(stream_base(seed, 1) ^ song_id)
    h2 = mix(stream_base(seed, 2) ^ song_id)
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
    h3 = mix(stream_base(seed, 3) ^ song_id)
    if h3 % 50 == 0:  # 2% of songs have no downloaded file yet
        return song, None, []
    asset_id = song_id
    qualities = QUALITIES[ext]
    asset = (asset_id, song_id, qualities[(h3 >> 8) % len(qualities)], ext, size, "%016x%016x" % (h3, h2))
    checked = _timestamp(h3 >> 5, 2025)
    first_id, second_id = 2 * asset_id - 1, 2 * asset_id
    category = (h3 >> 20) % 100
    singer_segment, name_segment = segment(singers), segment(name)
    nas_locator = f"{platform}/{singer_segment}/{segment(album)}/{name_segment} - {song_id}.{ext}"
    if category < 58:  # object storage only: an object key, so it may hold a '?'
        s3_locator = f"music/{platform}/{singer_segment}/{segment(name, True)} #{song_id}.{ext}"
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


def playlist_sequence(seed: int, playlist_id: int, tracks: int) -> tuple[int, int, int, str]:
    """How one playlist's playlist_songs rows are generated, without listing them.

    Returns:
        ``(length, start, stride, added_at)``: the song at position ``k``
        (1..length) is ``(start + k*stride) % tracks + 1``, every row added at
        ``added_at``. The stride is coprime with ``tracks``, so no song repeats.
    """
    h = row_hash(seed, 4, playlist_id)
    length = min(1 + h % MAX_PLAYLIST_LENGTH, tracks)
    added_at = _timestamp(row_hash(seed, 7, playlist_id), 2025)
    return length, (h >> 8) % tracks, coprime_stride(h >> 32, tracks), added_at


def playlist_row(seed: int, playlist_id: int, length: int) -> tuple[object, ...]:
    """The playlists row of one playlist holding ``length`` songs."""
    h = row_hash(seed, 5, playlist_id)
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


def pool_rows(seed: int, playlists: int) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    """The playlist_pools rows and pool_playlists rows (a few hundred at most per 100k playlists)."""
    pools: list[tuple[object, ...]] = []
    members: list[tuple[object, ...]] = []
    if playlists == 0:
        return pools, members
    toplist_count = max(2, playlists // 400)
    other_count = max(1, playlists // 1000)
    for pool_id in range(1, toplist_count + other_count + 1):
        h = row_hash(seed, 6, pool_id)
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
        start, stride = (h >> 16) % playlists, coprime_stride(h >> 40, playlists)
        for rank in range(size):
            members.append((pool_id, (start + rank * stride) % playlists + 1, rank + 1))
    return pools, members

