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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from .errors import VerifyError

__all__ = [
    "TableShape",
    "dump_database",
    "open_snapshot_readonly",
    "quote_identifier",
    "table_shapes",
]

_FETCH_ROWS = 4096


@dataclass(frozen=True)
class TableShape:
    """A table's name, its columns in declared order and its key columns in key order."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    sql: str

    @property
    def value_columns(self) -> tuple[str, ...]:
        """The columns that are not part of the key."""
        return tuple(column for column in self.columns if column not in self.key)


def quote_identifier(name: str) -> str:
    """``name`` as an SQL identifier, safe whatever it contains."""
    return '"' + name.replace('"', '""') + '"'


def _decode(raw: bytes) -> str:
    # Invalid UTF-8 (which a valid snapshot never holds) is shown, not fatal.
    return raw.decode("utf-8", "backslashreplace")


@contextmanager
def open_snapshot_readonly(db_path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """Open a snapshot database read-only and immutable: no lock, no journal, no -wal/-shm files.

    Raises:
        VerifyError: the file is missing or is not a SQLite database.
    """
    path = Path(db_path)
    if not path.is_file():
        raise VerifyError(f"{path}: no such file", path=path)
    uri = path.absolute().as_uri() + "?mode=ro&immutable=1"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None)
    conn.text_factory = _decode
    try:
        try:
            conn.execute("select count(*) from sqlite_schema").fetchone()
        except sqlite3.DatabaseError as error:
            raise VerifyError(f"{path}: not a SQLite database ({error})", path=path) from error
        yield conn
    finally:
        conn.close()


def table_shapes(conn: sqlite3.Connection, schema: str = "main") -> dict[str, TableShape]:
    """Every user table of ``schema``, by name, with its key from ``pragma table_info``.

    The key is the primary key in key order; a table without one is keyed
    by all its columns.
    """
    shapes: dict[str, TableShape] = {}
    rows = conn.execute(
        f"select name, sql from {quote_identifier(schema)}.sqlite_schema "
        "where type = 'table' and name not like 'sqlite\\_%' escape '\\' order by name"
    ).fetchall()
    for name, sql in rows:
        info = conn.execute("select name, pk from pragma_table_info(?, ?) order by cid", (name, schema)).fetchall()
        columns = tuple(column for column, _ in info)
        key = tuple(column for column, pk in sorted((row for row in info if row[1]), key=lambda row: row[1]))
        shapes[name] = TableShape(name, columns, key or columns, sql or "")
    return shapes


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
        VerifyError: the file is missing or is not a SQLite database.
    """
    written = 0
    with open_snapshot_readonly(db_path) as conn:
        try:
            shapes = table_shapes(conn)
            conn.text_factory = bytes
            for shape in shapes.values():
                out.write(f"## {shape.name} key({', '.join(shape.key)})\n")
                out.write(f"-- {' '.join(shape.sql.split())}\n")
                cursor = conn.execute(row_line_sql(shape))
                while rows := cursor.fetchmany(_FETCH_ROWS):
                    out.write(_decode(b"\n".join([row[0] for row in rows]) + b"\n"))
                    written += len(rows)
        except sqlite3.DatabaseError as error:
            raise VerifyError(f"{db_path}: cannot read the database ({error})", path=Path(db_path)) from error
    return written
