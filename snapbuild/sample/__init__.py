"""A synthetic, realistic source catalog for the quick start, the tests and the benchmarks.

The catalog has the source schema (the authoritative catalog's tables:
playlists, songs, playlist_songs, playlist_pools, pool_playlists,
storage_backends, file_assets, file_locations) plus the extra columns and
tables a real catalog carries (an export must ignore them). The same seed
always gives the same catalog, byte for byte.

Modules, each importing only those above it:

- :mod:`~snapbuild.sample.hashing`: deterministic hash and permutation primitives;
- :mod:`~snapbuild.sample.rows`: the rows of songs, playlists, pools and backends;
- :mod:`~snapbuild.sample.tables`: the tables and indexes a sample catalog has;
- :mod:`~snapbuild.sample.media`: an audio file for every active NAS location;
- :mod:`~snapbuild.sample.catalog`: the writer, and :func:`is_sample_catalog`;
- :mod:`~snapbuild.sample.mutate`: a realistic change to a written catalog.
"""

from __future__ import annotations

from .catalog import SampleStats, is_sample_catalog, write_sample_catalog
from .media import write_sample_media
from .mutate import MutationStats, mutate_sample_catalog
from .rows import NAS_BACKEND_ID, PUBLIC_BASE_URL, S3_BACKEND_ID
from .tables import SAMPLE_MARKER_TABLE

__all__ = [
    "NAS_BACKEND_ID",
    "PUBLIC_BASE_URL",
    "S3_BACKEND_ID",
    "SAMPLE_MARKER_TABLE",
    "MutationStats",
    "SampleStats",
    "is_sample_catalog",
    "mutate_sample_catalog",
    "write_sample_catalog",
    "write_sample_media",
]
