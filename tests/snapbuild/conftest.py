"""Fixtures for snapbuild's tests: small source catalogs in the source schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from .signing_support import ssh_agent, ssh_keys  # noqa: F401  (fixtures of the signing tests)

# The authoritative catalog's schema: the tables and columns the export reads (a real catalog has more).
SOURCE_SCHEMA = """
create table playlists (
    id integer primary key,
    platform text not null,
    remote_playlist_id text not null,
    name text not null,
    description text,
    cover_url text,
    play_count integer default 0,
    collected_song_count integer default 0
);
create table songs (
    id integer primary key,
    platform text not null,
    remote_song_id text not null,
    name text not null,
    singers text,
    ext text,
    file_size_bytes integer,
    metadata_json text
);
create table playlist_songs (playlist_id integer not null, song_id integer not null, position integer not null);
create table playlist_pools (
    id integer primary key,
    platform text not null,
    pool_kind text not null,
    external_id text not null,
    name text not null,
    url text,
    metadata_json text
);
create table pool_playlists (pool_id integer not null, playlist_id integer not null);
create table storage_backends (
    id integer primary key,
    name text not null,
    backend_type text not null,
    base_path text,
    config_json text
);
create table file_assets (
    id integer primary key,
    song_id integer not null,
    quality_label text,
    ext text,
    file_size_bytes integer
);
create table file_locations (
    id integer primary key,
    file_asset_id integer not null,
    backend_id integer not null,
    locator text not null,
    status text not null,
    is_primary integer not null
);
"""

# One of everything: a playlist in a toplist pool, a track, an object-storage file; Chinese text.
CATALOG_ROWS = """
insert into playlists values (1, 'kuwo', '16', '酷我飙升榜', 'desc', 'https://img/top.jpg', 1000, 1);
insert into songs values (10, 'netease', '65800', '海屿你', '马也 / Crabbit', 'flac', 123456, '{"duration_ms": 0}');
insert into playlist_songs values (1, 10, 1);
insert into playlist_pools values (5, 'kuwo', 'toplist', 'kuwo_top_16', '酷我榜单', null, '{}');
insert into pool_playlists values (5, 1);
insert into storage_backends values (2, 'main-s3', 'object_storage', null, '{"public_base_url": "https://cdn.example"}');
insert into file_assets values (7, 10, 'super', 'flac', 123456);
insert into file_locations values (9, 7, 2, 'music/netease/test.flac', 'active', 1);
"""


# Files on a NAS and on object storage: locators that need percent-encoding, an inactive one.
FILES_ROWS = """
insert into songs values (10, 'netease', '1', 'a', null, 'flac', 1, null);
insert into songs values (11, 'netease', '2', 'b', null, 'mp3', 1, null);
insert into storage_backends values (1, 'nas-main', 'nas', '/srv/music', null);
insert into storage_backends values (2, 'main-s3', 'object_storage', null, '{"public_base_url": "https://cdn.example/music/"}');
insert into file_assets values (7, 10, 'super', 'flac', 1);
insert into file_assets values (8, 11, 'hq', 'mp3', 1);
insert into file_locations values (20, 7, 2, 'a b/#1?.mp3', 'active', 1);
insert into file_locations values (21, 7, 1, 'a b/#1?.mp3', 'active', 0);
insert into file_locations values (22, 8, 2, '/海屿你/100%.mp3', 'active', 1);
insert into file_locations values (23, 8, 2, 'old/gone.mp3', 'inactive', 0);
insert into file_locations values (24, 8, 2, 'plain/ok-file_1.2~x.mp3', 'active', 0);
"""


# The source schema without NOT NULL and PRIMARY KEY constraints: what a careless
# real catalog may look like (NULLs and duplicate ids get in).
LOOSE_SCHEMA = SOURCE_SCHEMA.replace(" not null", "").replace(" primary key", "")


def write_catalog(path: Path, *scripts: str, schema: str = SOURCE_SCHEMA) -> Path:
    """Create a source catalog at ``path`` from the source schema (or ``schema``) plus ``scripts``."""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(schema)
        for script in scripts:
            conn.executescript(script)
        conn.commit()
    finally:
        conn.close()
    return path


@pytest.fixture
def sample_catalog(tmp_path: Path) -> Path:
    """A synthetic catalog of 150 tracks in 8 playlists (``snapbuild.sample``), for whole runs."""
    from snapbuild.sample import write_sample_catalog

    path = tmp_path / "catalogsync.db"
    write_sample_catalog(path, tracks=150, playlists=8, seed=11)
    return path


@pytest.fixture
def small_catalog(tmp_path: Path) -> Path:
    """A small catalog: one playlist in a toplist pool, one track, one object-storage file."""
    return write_catalog(tmp_path / "catalogsync.db", CATALOG_ROWS)


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    """A synthetic catalog from the sample writer: 300 tracks, 20 playlists, files on both backends."""
    from snapbuild.sample import write_sample_catalog

    path = tmp_path / "catalogsync.db"
    write_sample_catalog(path, tracks=300, playlists=20, seed=3)
    return path


GENERATED_AT = "2026-04-19T08:00:00Z"


class GoodSnapshot:
    """A snapshot exported from the small catalog, to check that a failed export left it intact."""

    def __init__(self, directory: Path) -> None:
        from snapbuild.export import run_export

        self.dir = directory
        self.source = write_catalog(directory.parent / "good-source.db", CATALOG_ROWS)
        self.manifest = run_export(self.source, directory, generated_at=GENERATED_AT).manifest
        self.db_bytes = (directory / "catalog_read.db").read_bytes()
        self.manifest_bytes = (directory / "manifest.json").read_bytes()

    def assert_intact(self) -> None:
        """The pair is byte-for-byte what the good export wrote, verifies, and no temporary file is left."""
        from snapbuild.verify import verify_directory

        assert (self.dir / "catalog_read.db").read_bytes() == self.db_bytes
        assert (self.dir / "manifest.json").read_bytes() == self.manifest_bytes
        verify_directory(self.dir)
        expected = {"catalog_read.db", "manifest.json", ".snapbuild-export.lock"}
        leftovers = sorted(p.name for p in self.dir.iterdir() if p.name not in expected)
        assert leftovers == []


@pytest.fixture
def good_snapshot(tmp_path: Path) -> GoodSnapshot:
    """A target directory that already holds a good snapshot (of the small catalog)."""
    return GoodSnapshot(tmp_path / "snapshot")
