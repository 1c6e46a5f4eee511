"""The read model ``catalog_read.db`` stated once: its tables, keys, column sources and SQL.

Every table is keyed by its natural key and filled in full key order inside
one write transaction on a fresh file, so the same logical catalog gives the
same bytes whatever the source's physical layout (see docs/export.md). Key
columns come first, in key order: SQLite 3.40's ``quick_check`` misreports
WITHOUT ROWID tables declared otherwise.

The statements read the source through the schema name ``src``. Besides the
read model, this module says which source tables and columns it reads
(:data:`REQUIRED_COLUMNS`) and where each read-model column's values come
from (:data:`COLUMN_SOURCES`), so that validation can name the source row
behind a value the read model refuses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .urls import QUOTE_FUNCTION

#: The read model's version: ``PRAGMA user_version`` of the file and the manifest's ``schema_version``.
SCHEMA_VERSION = 1
#: The read model's page size: the export writes every database with it, and the split layout cuts on it.
PAGE_SIZE = 4096

#: The source tables and columns the read model reads (the authoritative catalog's schema).
#: Real catalogs have more tables and columns; those are ignored.
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "playlists": (
        "id", "platform", "remote_playlist_id", "name", "description", "cover_url",
        "play_count", "collected_song_count",
    ),
    "songs": ("id", "platform", "remote_song_id", "name", "singers", "ext", "file_size_bytes", "metadata_json"),
    "playlist_songs": ("playlist_id", "song_id", "position"),
    "playlist_pools": ("id", "pool_kind", "external_id", "name"),
    "pool_playlists": ("pool_id", "playlist_id"),
    "storage_backends": ("id", "name", "backend_type", "config_json"),
    "file_assets": ("id", "song_id", "quality_label", "ext", "file_size_bytes"),
    "file_locations": ("id", "file_asset_id", "backend_id", "locator", "status", "is_primary"),
}

#: Source tables without an id: their rows are named by rowid in messages.
LINK_TABLES = frozenset({"playlist_songs", "pool_playlists"})

#: Small source tables whose text reaches the read model through many rows
#: (every file of a backend, every playlist of a pool): checked once, at the source.
SMALL_TEXT_SOURCES: dict[str, tuple[str, ...]] = {
    "storage_backends": ("name", "backend_type", "config_json"),
    "playlist_pools": ("external_id", "name", "pool_kind"),
}


@dataclass(frozen=True)
class ReadTable:
    """One read-model table: its name, key, DDL, and the text columns whose UTF-8 the export checks."""

    name: str
    key: tuple[str, ...]
    ddl: str
    text_columns: tuple[str, ...]


TABLES: tuple[ReadTable, ...] = (
    ReadTable(
        "catalog_playlists",
        ("playlist_id",),
        """CREATE TABLE catalog_playlists (
    playlist_id INTEGER PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL,
    remote_playlist_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    cover_url TEXT,
    play_count INTEGER NOT NULL,
    song_count INTEGER NOT NULL
)""",
        ("platform", "remote_playlist_id", "name", "description", "cover_url"),
    ),
    ReadTable(
        "catalog_tracks",
        ("song_id",),
        """CREATE TABLE catalog_tracks (
    song_id INTEGER PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL,
    remote_song_id TEXT NOT NULL,
    name TEXT NOT NULL,
    singers TEXT,
    ext TEXT,
    file_size_bytes INTEGER,
    metadata_json TEXT
)""",
        ("platform", "remote_song_id", "name", "singers", "ext", "metadata_json"),
    ),
    ReadTable(
        "catalog_playlist_tracks",
        ("playlist_id", "position", "song_id"),
        """CREATE TABLE catalog_playlist_tracks (
    playlist_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    song_id INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, position, song_id)
) WITHOUT ROWID""",
        (),
    ),
    ReadTable(
        "catalog_track_files",
        ("location_id",),
        """CREATE TABLE catalog_track_files (
    location_id INTEGER PRIMARY KEY NOT NULL,
    song_id INTEGER NOT NULL,
    quality_label TEXT,
    ext TEXT,
    file_size_bytes INTEGER,
    backend_type TEXT NOT NULL,
    backend_name TEXT NOT NULL,
    locator TEXT NOT NULL,
    public_url TEXT,
    status TEXT NOT NULL,
    is_primary INTEGER NOT NULL
)""",
        # backend_type / backend_name come from the few storage_backends rows and
        # are checked there; public_url is ASCII by construction; status is 'active'.
        ("quality_label", "ext", "locator"),
    ),
    ReadTable(
        "catalog_toplists",
        ("toplist_id", "playlist_id"),
        """CREATE TABLE catalog_toplists (
    toplist_id TEXT NOT NULL,
    playlist_id INTEGER NOT NULL,
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    cover_url TEXT,
    play_count INTEGER NOT NULL,
    song_count INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    PRIMARY KEY (toplist_id, playlist_id)
) WITHOUT ROWID""",
        # Copies of catalog_playlists' text and of the few playlist_pools rows,
        # which are checked there.
        (),
    ),
)

TABLE_NAMES: tuple[str, ...] = tuple(table.name for table in TABLES)
TABLE_KEYS: dict[str, tuple[str, ...]] = {table.name: table.key for table in TABLES}

#: The declared type of every read-model column that takes values as they are
#: (ids are keys or references: a non-integer reference counts as missing).
#: Checked once per build, not per inserted row (a CHECK per column cost 0.1x to
#: 0.25x of the C floor): at the source by the side reader, else in the read model.
TYPED_COLUMNS: dict[str, dict[str, str]] = {
    table.name: {
        column: declared
        for column, declared in re.findall(r"^\s+(\w+) (INTEGER|TEXT)\b", table.ddl, re.MULTILINE)
        if column not in ("playlist_id", "song_id", "location_id")
    }
    for table in TABLES
}

#: The tables whose types check_types scans. catalog_toplists copies
#: catalog_playlists' values, and its own two come from the few
#: playlist_pools rows, checked at the source when it is filled.
TYPE_SCANNED: tuple[str, ...] = ("catalog_playlists", "catalog_tracks", "catalog_playlist_tracks", "catalog_track_files")

#: (table, index name, columns): the lookups consumers need beyond the keys.
#: Tracks of a playlist in order is the key of catalog_playlist_tracks itself.
INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("catalog_track_files", "idx_catalog_track_files_song_id", ("song_id",)),
)

# Rowid tables whose key is the source's INTEGER PRIMARY KEY come out in key
# order from a plain rowid scan; the link tables are scattered in the source,
# so ``+col`` stops SQLite from walking an index and makes it sort instead.
INSERT_PLAYLISTS = """INSERT INTO catalog_playlists
    (playlist_id, platform, remote_playlist_id, name, description, cover_url, play_count, song_count)
SELECT id, platform, remote_playlist_id, name, description, cover_url,
       coalesce(play_count, 0), coalesce(collected_song_count, 0)
FROM src.playlists
ORDER BY id"""

INSERT_TRACKS = """INSERT INTO catalog_tracks
    (song_id, platform, remote_song_id, name, singers, ext, file_size_bytes, metadata_json)
SELECT id, platform, remote_song_id, name, singers, ext, file_size_bytes, metadata_json
FROM src.songs
ORDER BY id"""

INSERT_PLAYLIST_TRACKS = """INSERT {conflict}INTO catalog_playlist_tracks (playlist_id, position, song_id)
SELECT playlist_id, position, song_id
FROM src.playlist_songs
WHERE {keep}
ORDER BY +playlist_id, +position, +song_id"""

#: The percent-encoded path of a locator, computed in SQL through quote_path (as
#: bytes, so invalid UTF-8 cannot break it: the UTF-8 check reports it). Deciding
#: in SQL which locators need no encoding costs more than the call it saves.
QUOTED_PATH = f"{QUOTE_FUNCTION}(CAST(ltrim(fl.locator, '/') AS BLOB))"

def public_locations_sql(schema: str = "src.") -> str:
    """``FROM ... WHERE`` of the locations that get a public URL: active, on object storage, with a locator.

    ``fl`` is the location, ``sb`` its backend; ``schema`` is where the source's tables are (``src.`` when attached).
    """
    return (
        f"FROM {schema}file_locations AS fl JOIN {schema}storage_backends AS sb ON sb.id = fl.backend_id "
        "WHERE fl.status = 'active' AND sb.backend_type = 'object_storage' AND fl.locator IS NOT NULL"
    )


# The backends are few: materialize them once so the JSON is parsed per backend, not per file.
_BACKENDS_CTE = """WITH sb AS MATERIALIZED (
    SELECT id, name, backend_type,
           CASE WHEN backend_type = 'object_storage'
                THEN rtrim(json_extract(config_json, '$.public_base_url'), '/') || '/' END AS url_prefix
    FROM src.storage_backends
)"""



def insert_track_files_sql(*, conflict: str = "", join: str = "LEFT", path: str = QUOTED_PATH,
                           side_paths: bool = False, keep: str = "1") -> str:
    """The INSERT ... SELECT of catalog_track_files.

    Args:
        conflict: "" or "OR IGNORE ".
        join: "LEFT" (a dangling reference surfaces as a NULL the table
            refuses) or "" (inner joins: dangling rows are left out).
        path: the SQL expression for a locator's encoded path.
        side_paths: take the encoded paths from ``side.public_paths``, computed
            beside the build (see sidereader.SideReader), ``path`` only where missing.
        keep: an SQL condition a row must meet to be inserted (``fa`` is its asset).
    """
    if side_paths:
        path = f"coalesce(pp.path, {path})"
    paths_join = "LEFT JOIN side.public_paths AS pp ON pp.location_id = fl.id" if side_paths else ""
    return f"""INSERT {conflict}INTO catalog_track_files
    (location_id, song_id, quality_label, ext, file_size_bytes, backend_type, backend_name,
     locator, public_url, status, is_primary)
{_BACKENDS_CTE}
SELECT fl.id, fa.song_id, fa.quality_label, fa.ext, fa.file_size_bytes, sb.backend_type, sb.name,
       fl.locator,
       CASE WHEN sb.url_prefix IS NULL OR fl.locator IS NULL THEN NULL ELSE sb.url_prefix || {path} END,
       fl.status, fl.is_primary
FROM src.file_locations AS fl
{join} JOIN src.file_assets AS fa ON fa.id = fl.file_asset_id
{join} JOIN sb ON sb.id = fl.backend_id
{paths_join}
WHERE fl.status = 'active' AND ({keep})
ORDER BY fl.id"""


INSERT_TOPLISTS = """INSERT OR IGNORE INTO catalog_toplists
    (toplist_id, playlist_id, platform, name, description, cover_url, play_count, song_count, group_name)
SELECT pp.external_id, p.playlist_id, p.platform, p.name, p.description, p.cover_url,
       p.play_count, p.song_count, pp.name
FROM src.pool_playlists AS rel
JOIN src.playlist_pools AS pp ON pp.id = rel.pool_id
JOIN main.catalog_playlists AS p ON p.playlist_id = rel.playlist_id
WHERE pp.pool_kind = 'toplist'
ORDER BY +pp.external_id, +p.playlist_id, +pp.id"""

_ACTIVE_ASSET = "id IN (SELECT file_asset_id FROM src.file_locations WHERE status = 'active')"

#: Where a value that a read-model column refuses (a NULL, a wrong type) comes
#: from: the source table, its column, and the condition that makes the row
#: part of the read model.
COLUMN_SOURCES: dict[str, tuple[str, str, str]] = {
    "catalog_playlists.description": ("playlists", "description", "1"),
    "catalog_playlists.cover_url": ("playlists", "cover_url", "1"),
    "catalog_playlists.play_count": ("playlists", "play_count", "1"),
    "catalog_playlists.song_count": ("playlists", "collected_song_count", "1"),
    "catalog_tracks.singers": ("songs", "singers", "1"),
    "catalog_tracks.ext": ("songs", "ext", "1"),
    "catalog_tracks.file_size_bytes": ("songs", "file_size_bytes", "1"),
    "catalog_tracks.metadata_json": ("songs", "metadata_json", "1"),
    "catalog_track_files.quality_label": ("file_assets", "quality_label", _ACTIVE_ASSET),
    "catalog_track_files.ext": ("file_assets", "ext", _ACTIVE_ASSET),
    "catalog_track_files.file_size_bytes": ("file_assets", "file_size_bytes", _ACTIVE_ASSET),
    "catalog_track_files.status": ("file_locations", "status", "status = 'active'"),
    "catalog_playlists.playlist_id": ("playlists", "id", "1"),
    "catalog_playlists.platform": ("playlists", "platform", "1"),
    "catalog_playlists.remote_playlist_id": ("playlists", "remote_playlist_id", "1"),
    "catalog_playlists.name": ("playlists", "name", "1"),
    "catalog_tracks.song_id": ("songs", "id", "1"),
    "catalog_tracks.platform": ("songs", "platform", "1"),
    "catalog_tracks.remote_song_id": ("songs", "remote_song_id", "1"),
    "catalog_tracks.name": ("songs", "name", "1"),
    "catalog_playlist_tracks.playlist_id": ("playlist_songs", "playlist_id", "1"),
    "catalog_playlist_tracks.position": ("playlist_songs", "position", "1"),
    "catalog_playlist_tracks.song_id": ("playlist_songs", "song_id", "1"),
    "catalog_track_files.location_id": ("file_locations", "id", "status = 'active'"),
    "catalog_track_files.locator": ("file_locations", "locator", "status = 'active'"),
    "catalog_track_files.is_primary": ("file_locations", "is_primary", "status = 'active'"),
    "catalog_track_files.song_id": ("file_assets", "song_id", _ACTIVE_ASSET),
    "catalog_track_files.backend_type": (
        "storage_backends",
        "backend_type",
        "id IN (SELECT backend_id FROM src.file_locations WHERE status = 'active')",
    ),
    "catalog_track_files.backend_name": (
        "storage_backends",
        "name",
        "id IN (SELECT backend_id FROM src.file_locations WHERE status = 'active')",
    ),
    "catalog_toplists.toplist_id": ("playlist_pools", "external_id", "pool_kind = 'toplist'"),
    "catalog_toplists.group_name": ("playlist_pools", "name", "pool_kind = 'toplist'"),
}


def column_origin(table: str, column: str) -> tuple[str, str]:
    """The source ``(table, column)`` a read-model column's values come from."""
    source_table, source_column, _ = COLUMN_SOURCES[f"{table}.{column}"]
    return source_table, source_column


def row_label(table: str) -> str:
    """How messages name the source row behind a read-model key: ``"songs id"``, ``"file_locations id"``."""
    source_table, source_column = column_origin(table, TABLE_KEYS[table][0])
    return f"{source_table} {source_column}"

