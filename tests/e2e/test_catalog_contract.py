"""The origin reads snapbuild's snapshots without importing snapbuild: its copies of their names must match.

``origin_server.catalog`` restates the file names, the schema versions it
understands and the table and columns it reads, so that the origin deploys
on its own; these tests tie each copy to snapbuild's own definition.
"""

from __future__ import annotations

import sqlite3

from origin_server import catalog
from snapbuild import assemble, schema


def test_the_snapshot_s_file_names_are_snapbuild_s() -> None:
    assert (catalog.DB_NAME, catalog.MANIFEST_NAME, catalog.PARTS_DIR) == (
        assemble.DB_NAME,
        assemble.MANIFEST_NAME,
        assemble.PARTS_DIR,
    )


def test_the_origin_understands_the_schema_snapbuild_writes() -> None:
    assert schema.SCHEMA_VERSION in catalog.SCHEMA_VERSIONS
    (files,) = [table for table in schema.TABLES if table.name == catalog.FILES_TABLE]
    conn = sqlite3.connect(":memory:")
    conn.execute(files.ddl)
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({catalog.FILES_TABLE})")}
    conn.close()
    assert set(catalog.FILES_COLUMNS) <= columns
