"""Small snapshot databases in the read model's shape, written directly, for the textconv and diff tests.

The tables and keys are the read model's interface: the diff and
the text form must work on any such file, not only on what the exporter of
the day writes.
"""

from __future__ import annotations

import hashlib
import json
import random
import sqlite3
from pathlib import Path
from typing import Any

READ_MODEL_DDL = {
    "catalog_playlists": """CREATE TABLE catalog_playlists (
    playlist_id INTEGER PRIMARY KEY NOT NULL, platform TEXT NOT NULL, remote_playlist_id TEXT NOT NULL,
    name TEXT NOT NULL, description TEXT, cover_url TEXT, play_count INTEGER NOT NULL, song_count INTEGER NOT NULL)""",
    "catalog_tracks": """CREATE TABLE catalog_tracks (
    song_id INTEGER PRIMARY KEY NOT NULL, platform TEXT NOT NULL, remote_song_id TEXT NOT NULL, name TEXT NOT NULL,
    singers TEXT, ext TEXT, file_size_bytes INTEGER, metadata_json TEXT)""",
    "catalog_playlist_tracks": """CREATE TABLE catalog_playlist_tracks (
    playlist_id INTEGER NOT NULL, position INTEGER NOT NULL, song_id INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, position, song_id)) WITHOUT ROWID""",
    "catalog_track_files": """CREATE TABLE catalog_track_files (
    location_id INTEGER PRIMARY KEY NOT NULL, song_id INTEGER NOT NULL, quality_label TEXT, ext TEXT,
    file_size_bytes INTEGER, backend_type TEXT NOT NULL, backend_name TEXT NOT NULL, locator TEXT NOT NULL,
    public_url TEXT, status TEXT NOT NULL, is_primary INTEGER NOT NULL)""",
    "catalog_toplists": """CREATE TABLE catalog_toplists (
    toplist_id TEXT NOT NULL, playlist_id INTEGER NOT NULL, platform TEXT NOT NULL, name TEXT NOT NULL,
    description TEXT, cover_url TEXT, play_count INTEGER NOT NULL, song_count INTEGER NOT NULL,
    group_name TEXT NOT NULL, PRIMARY KEY (toplist_id, playlist_id)) WITHOUT ROWID""",
}

Rows = dict[str, list[tuple[Any, ...]]]


def base_rows(tracks: int = 40, playlists: int = 4) -> Rows:
    """A small catalog's read-model rows: Chinese and Latin text, NULLs, a multi-line description."""
    rows: Rows = {name: [] for name in READ_MODEL_DDL}
    for song_id in range(1, tracks + 1):
        name = "海屿你" if song_id == 10 else f"Song #{song_id} 星河"
        rows["catalog_tracks"].append(
            (song_id, "netease", str(65800 + song_id), name, "马也 / Crabbit", "flac", 123456 + song_id,
             '{"duration_ms": 0}' if song_id % 3 else None)
        )
        backend = ("object_storage", "main-s3") if song_id % 2 else ("nas", "nas-main")
        locator = f"music/a b/{song_id} #?.flac"
        url = f"https://cdn.example/music/music/a%20b/{song_id}%20%23%3F.flac" if song_id % 2 else None
        rows["catalog_track_files"].append(
            (1000 + song_id, song_id, "super", "flac", 123456 + song_id, *backend, locator, url, "active", 1)
        )
    for playlist_id in range(1, playlists + 1):
        # The last track is in no playlist, so removing it touches no playlist.
        members = [s for s in range(1, tracks) if (s + playlist_id) % 3 == 0]
        description = "第一行\n第二行 \"quoted\" \\ back" if playlist_id == 1 else None
        rows["catalog_playlists"].append(
            (playlist_id, "kuwo", str(16 + playlist_id), f"酷我飙升榜 {playlist_id}", description,
             None if playlist_id == 2 else f"https://img/{playlist_id}.jpg", 1000 * playlist_id, len(members))
        )
        for position, song_id in enumerate(members, start=1):
            rows["catalog_playlist_tracks"].append((playlist_id, position, song_id))
    for playlist_id in (1, 2, 3):
        p = rows["catalog_playlists"][playlist_id - 1]
        rows["catalog_toplists"].append(("kuwo_top_16", playlist_id, p[1], p[3], p[4], p[5], p[6], p[7], "酷我榜单"))
    return rows


def write_snapshot_db(path: Path, rows: Rows, *, layout_seed: int | None = None, ddl: dict[str, str] | None = None) -> Path:
    """Write ``rows`` into a fresh database; ``layout_seed`` shuffles the insertion order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    try:
        for name, statement in (ddl or READ_MODEL_DDL).items():
            conn.execute(statement)
        for name, table_rows in rows.items():
            ordered = list(table_rows)
            if layout_seed is not None:
                random.Random(layout_seed).shuffle(ordered)
            if ordered:
                marks = ", ".join("?" * len(ordered[0]))
                conn.executemany(f"INSERT INTO {name} VALUES ({marks})", ordered)
        conn.commit()
    finally:
        conn.close()
    return path


def write_snapshot_dir(directory: Path, rows: Rows, *, generated_at: str = "2026-01-01T00:00:00Z") -> str:
    """A snapshot directory (database + manifest) as the exporter writes it; returns the snapshot id."""
    db = write_snapshot_db(directory / "catalog_read.db", rows)
    digest = hashlib.sha256(json.dumps(rows, sort_keys=True, ensure_ascii=False).encode("utf-8")).hexdigest()
    manifest = {
        "snapshot_id": f"snap-{digest[:16]}",
        "generated_at": generated_at,
        "schema_version": 1,
        "playlist_count": len(rows["catalog_playlists"]),
        "track_count": len(rows["catalog_tracks"]),
        "file_count": len(rows["catalog_track_files"]),
        "cover_count": sum(1 for row in rows["catalog_playlists"] if row[5]),
        "db_sha256": hashlib.sha256(db.read_bytes()).hexdigest(),
        "content_digest": digest,
        "table_counts": {name: len(table_rows) for name, table_rows in rows.items()},
        "sqlite_version": sqlite3.sqlite_version,
    }
    (directory / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    return manifest["snapshot_id"]


def changed_rows(rows: Rows) -> Rows:
    """The known change the diff tests assert on.

    - catalog_tracks: songs 10 and 11 renamed; song 41 and 42 added; song 40 removed.
    - catalog_track_files: location 1005 moved (locator and public_url); 1040 removed; 1041, 1042 added.
    - catalog_playlist_tracks: playlist 2 loses its position 1 (the later positions move up by one).
    - catalog_playlists: playlist 3 renamed; playlist 2's song_count drops by one.
    - catalog_toplists: playlist 3's entry changes with it (name); playlist 4 joins.
    """
    new = {name: list(table_rows) for name, table_rows in rows.items()}
    tracks = {row[0]: row for row in new["catalog_tracks"]}
    tracks[10] = (*tracks[10][:3], "海屿你 (Live)", *tracks[10][4:])
    tracks[11] = (*tracks[11][:3], "Song #11 银河", *tracks[11][4:])
    del tracks[40]
    for song_id in (41, 42):
        tracks[song_id] = (song_id, "kuwo", str(90000 + song_id), f"新歌 {song_id}", "周深", "mp3", 4000, None)
    new["catalog_tracks"] = sorted(tracks.values())
    files = {row[0]: row for row in new["catalog_track_files"]}
    moved = files[1005]
    files[1005] = (*moved[:7], "moved/5.flac", "https://cdn.example/music/moved/5.flac", *moved[9:])
    del files[1040]
    for song_id in (41, 42):
        files[1000 + song_id] = (1000 + song_id, song_id, "standard", "mp3", 4000, "nas", "nas-main", f"new/{song_id}.mp3", None, "active", 1)
    new["catalog_track_files"] = sorted(files.values())
    members = [row for row in new["catalog_playlist_tracks"] if row[0] == 2]
    others = [row for row in new["catalog_playlist_tracks"] if row[0] != 2]
    renumbered = [(2, position, song_id) for position, (_, _, song_id) in enumerate(members[1:], start=1)]
    new["catalog_playlist_tracks"] = sorted(others + renumbered)
    playlists = {row[0]: row for row in new["catalog_playlists"]}
    counts = {p: sum(1 for row in new["catalog_playlist_tracks"] if row[0] == p) for p in playlists}
    playlists[3] = (*playlists[3][:3], "新版 酷我飙升榜 3", *playlists[3][4:])
    playlists = {p: (*row[:7], counts[p]) for p, row in playlists.items()}
    new["catalog_playlists"] = sorted(playlists.values())
    new["catalog_toplists"] = [
        ("kuwo_top_16", p, row[1], row[3], row[4], row[5], row[6], row[7], "酷我榜单")
        for p, row in sorted(playlists.items()) if p in (1, 2, 3, 4)
    ]
    return new
