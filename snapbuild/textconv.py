"""A canonical, sorted, line-per-row text form of a snapshot database: git's ``textconv`` for it.

With the ``snapbuild`` diff driver configured (``.gitattributes`` in the
snapshot repository routes ``catalog_read.db`` to it), ``git diff`` and
``git log -p`` compare these lines instead of binary pages, so they show
which rows changed. The format, one table after another in name order::

    ## catalog_tracks key(song_id)
    -- CREATE TABLE catalog_tracks (song_id INTEGER PRIMARY KEY NOT NULL, ...)
    catalog_tracks[song_id=10] platform="netease" name="海屿你" singers="马也 / Crabbit" ...

Rows come in key order (the table's primary key; all columns for a table
without one), so an unchanged row always gives the same line in the same
place. Values are written in JSON notation by SQLite's ``json_quote``:
strings quoted with ``"``, ``\\`` and control characters escaped (a newline
is ``\\n``, so a row is always one line), non-ASCII text kept as is, numbers
bare, ``null`` for NULL; a BLOB is ``x'HEX'``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from typing import TextIO

from .errors import DatabaseError
from .sqlite import TableShape, decode_text, open_snapshot, quote_identifier, table_shapes

__all__ = [
    "dump_database",
    "row_line_sql",
]

_FETCH_ROWS = 4096


def _value_sql(column: str) -> str:
    quoted = quote_identifier(column)
    return f"CASE WHEN typeof({quoted}) = 'blob' THEN 'x''' || hex({quoted}) || '''' ELSE json_quote({quoted}) END"


def _name_sql(name: str) -> str:
    """An SQL string literal of ``name``."""
    return "'" + name.replace("'", "''") + "'"


def row_line_sql(shape: TableShape, schema: str = "main") -> str:
    """A SELECT that yields each row of ``shape`` as its text line, in key order."""
    key_parts = " || ',' || ".join(f"{_name_sql(column + '=')} || {_value_sql(column)}" for column in shape.key)
    line = f"{_name_sql(shape.name + '[')} || {key_parts} || ']'"
    for column in shape.value_columns:
        line += f" || {_name_sql(' ' + column + '=')} || {_value_sql(column)}"
    order = ", ".join(quote_identifier(column) for column in shape.key)
    return f"SELECT {line} FROM {quote_identifier(schema)}.{quote_identifier(shape.name)} ORDER BY {order}"


def dump_database(db_path: str | os.PathLike[str], out: TextIO) -> int:
    """Write the canonical line-per-row text form of a snapshot database to ``out``.

    Each line is built in SQL and fetched as UTF-8 bytes, a few thousand rows
    at a time, so memory stays flat whatever the table sizes; bytes that are
    not valid UTF-8 (never in a valid snapshot) are shown as ``\\xNN``.

    Returns:
        the number of row lines written.

    Raises:
        DatabaseError: the file is missing or is not a SQLite database.
    """
    written = 0
    with open_snapshot(db_path) as conn:
        try:
            shapes = table_shapes(conn)
            conn.text_factory = bytes
            for shape in shapes.values():
                out.write(f"## {shape.name} key({', '.join(shape.key)})\n")
                out.write(f"-- {' '.join(shape.sql.split())}\n")
                cursor = conn.execute(row_line_sql(shape))
                while rows := cursor.fetchmany(_FETCH_ROWS):
                    out.write(decode_text(b"\n".join([row[0] for row in rows]) + b"\n"))
                    written += len(rows)
        except sqlite3.DatabaseError as error:
            raise DatabaseError(f"{db_path}: cannot read the database ({error})", path=Path(db_path)) from error
    return written
