"""The tables a sample catalog has: the source schema plus the extras a real catalog carries.

The source schema is the authoritative catalog's tables (playlists, songs,
playlist_songs, playlist_pools, pool_playlists, storage_backends,
file_assets, file_locations) with the columns an export reads. A real
catalog has more, and so does the sample: extra columns, some in the middle
of a table (an export must select by name), an extra table (``sync_runs``),
indexes on the join columns, and the marker table that says "sample".
"""

from __future__ import annotations

# The marker table: its presence says "this file is a sample catalog", so replacing
# it loses nothing (a real catalog never has it).
SAMPLE_MARKER_TABLE = "snapbuild_sample"

# Each table's create statement, in the order of a plain (unshuffled) layout.
TABLES = {
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
INDEXES = (
    "create index idx_playlist_songs_playlist on playlist_songs (playlist_id, position)",
    "create index idx_playlist_songs_song on playlist_songs (song_id)",
    "create index idx_pool_playlists_pool on pool_playlists (pool_id)",
    "create index idx_file_assets_song on file_assets (song_id)",
    "create index idx_file_locations_asset on file_locations (file_asset_id)",
)
