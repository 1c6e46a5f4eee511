"""Types of the read model's columns: checked once per build, at the source by the side reader or in the read model."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from snapbuild.errors import SourceError
from snapbuild.export import run_export
from snapbuild.schema import TABLES, TYPE_SCANNED
from snapbuild.sidereader import SideReader

from .conftest import GENERATED_AT, LOOSE_SCHEMA, CATALOG_ROWS, write_catalog

WRONG_TYPES = [
    ("insert into playlist_songs values (1, 10, 'first')", "playlist_songs.position (rowid 2): a text value"),
    ("update songs set file_size_bytes = 'big' where id = 10", "songs.file_size_bytes (id 10): a text value"),
    ("update songs set file_size_bytes = 1.5 where id = 10", "songs.file_size_bytes (id 10): a real value"),
    ("update songs set name = x'00ff' where id = 10", "songs.name (id 10): a blob value"),
    ("update playlists set play_count = 'many' where id = 1", "playlists.play_count (id 1): a text value"),
    ("update file_locations set is_primary = x'00ff' where id = 9", "file_locations.is_primary (id 9): a blob value"),
    ("update file_assets set quality_label = x'01' where id = 7", "file_assets.quality_label (id 7): a blob value"),
]


@pytest.mark.parametrize("script, where", WRONG_TYPES)
def test_the_build_finds_wrong_types_without_the_side_reader(
    good_snapshot, tmp_path: Path, script: str, where: str
) -> None:
    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS, script)
    with pytest.raises(SourceError) as caught:
        run_export(source, good_snapshot.dir, generated_at=GENERATED_AT, side_reader=False)
    assert f"wrong type in {where}" in str(caught.value)
    table_column = where.split(" ")[0]
    assert f"{caught.value.table}.{caught.value.column}" == table_column
    good_snapshot.assert_intact()


def test_the_side_reader_vouches_for_the_types_of_a_clean_source(small_catalog: Path) -> None:
    side = SideReader(small_catalog, small_catalog.with_name("side"), 1.0)
    side.start()
    assert side.paths_ready()
    assert sorted(side.result().types_checked) == sorted(TYPE_SCANNED)


def test_numbers_written_as_text_leave_the_exact_check_to_the_build(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS, "update songs set file_size_bytes = '42' where id = 10",
        schema=LOOSE_SCHEMA.replace("file_size_bytes integer", "file_size_bytes text", 1),  # songs' column
    )
    side = SideReader(source, tmp_path / "side", 1.0)
    side.start()
    side.paths_ready()
    assert "catalog_tracks" not in side.result().types_checked  # '42' may be a number: only the read model can tell
    run_export(source, tmp_path / "s", generated_at=GENERATED_AT)
    with sqlite3.connect(tmp_path / "s" / "catalog_read.db") as conn:
        assert conn.execute("select file_size_bytes, typeof(file_size_bytes) from catalog_tracks").fetchall() == [
            (42, "integer")
        ]


def test_the_read_model_declares_types_without_per_row_checks() -> None:
    # The types are checked once per build; a CHECK per column was evaluated per inserted row.
    assert not [table.name for table in TABLES if "CHECK" in table.ddl]
