"""SQLite helpers every layer shares: read-only opens and attaches, table shapes, identifier quoting.

A read-only open goes through a ``file:`` URI with ``mode=ro`` (and
``immutable=1`` for a finished snapshot, which nothing writes while it is
read: no lock, no journal, no ``-wal``/``-shm`` files), so no caller can write
to a database it only means to read.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from .errors import DatabaseError

class Executor(Protocol):
    """Anything that runs SQL: a ``sqlite3.Connection`` or a sqlite-utils ``Database``."""

    def execute(self, sql: str, parameters: Any = ..., /) -> sqlite3.Cursor:
        """Run one statement and return its cursor."""


#: Rows decoded per chunk by :func:`find_invalid_utf8`.
_UTF8_CHUNK_ROWS = 10_000


def readonly_uri(path: str | os.PathLike[str], *, immutable: bool = False) -> str:
    """The ``file:`` URI that opens ``path`` read-only (and immutable: no locks, for a finished file)."""
    return Path(path).resolve().as_uri() + ("?mode=ro&immutable=1" if immutable else "?mode=ro")


def quote_identifier(name: str) -> str:
    """``name`` as an SQL identifier, safe whatever it contains."""
    return '"' + name.replace('"', '""') + '"'


def decode_text(raw: bytes) -> str:
    """A text factory that shows invalid UTF-8 (never in a valid snapshot) instead of failing."""
    return raw.decode("utf-8", "backslashreplace")


def attach_readonly(conn: sqlite3.Connection, path: str | os.PathLike[str], alias: str, *, immutable: bool = False) -> None:
    """Attach ``path`` read-only as schema ``alias`` (the path is a bound parameter: any name is safe).

    The connection must have been opened with ``uri=True`` for SQLite to honour the URI.
    """
    conn.execute(f"ATTACH DATABASE ? AS {quote_identifier(alias)}", [readonly_uri(path, immutable=immutable)])


def attach_snapshot(conn: sqlite3.Connection, path: Path, alias: str) -> None:
    """Attach a finished snapshot database read-only and immutable, and check that it is one.

    Raises:
        DatabaseError: the file is missing or is not a SQLite database.
    """
    if not path.is_file():
        raise DatabaseError(f"{path}: no such file", path=path)
    try:
        attach_readonly(conn, path, alias, immutable=True)
        conn.execute(f"select count(*) from {quote_identifier(alias)}.sqlite_schema").fetchone()
    except sqlite3.DatabaseError as error:
        raise DatabaseError(f"{path}: not a SQLite database ({error})", path=path) from error


@contextmanager
def open_snapshot(db_path: str | os.PathLike[str]) -> Iterator[sqlite3.Connection]:
    """Open a finished snapshot database read-only and immutable, in autocommit mode.

    Raises:
        DatabaseError: the file is missing or is not a SQLite database.
    """
    path = Path(db_path)
    if not path.is_file():
        raise DatabaseError(f"{path}: no such file", path=path)
    conn = sqlite3.connect(readonly_uri(path, immutable=True), uri=True, isolation_level=None)
    conn.text_factory = decode_text
    try:
        try:
            conn.execute("select count(*) from sqlite_schema").fetchone()
        except sqlite3.DatabaseError as error:
            raise DatabaseError(f"{path}: not a SQLite database ({error})", path=path) from error
        yield conn
    finally:
        conn.close()


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


def find_invalid_utf8(
    conn: Executor, relation: str, key: str, columns: Sequence[str], flag: str = "0"
) -> tuple[tuple[object, str] | None, bool]:
    """Find the first value in ``relation`` that is not valid UTF-8, and whether SQL ``flag`` held for any row read.

    SQLite copies invalid bytes silently, so the text is read back in large
    chunks in key order, each column concatenated in SQL and decoded in one
    call, which keeps the pass cheap; a chunk that fails is rescanned row by
    row to name the value. ``key`` must be unique and indexed (a rowid). The
    condition ``flag`` rides along in the same pass (a type check, say), so it
    costs no second scan. The scan stops at the first invalid value.

    Returns:
        ``((key, column) or None, flagged)``.
    """
    # One aggregate per column, separated by an ASCII byte so that two broken
    # halves can never join into a valid character.
    blobs = ", ".join(f"CAST(group_concat([{c}], char(30)) AS BLOB)" for c in columns)
    selected = ", ".join(f"[{c}]" for c in columns)
    chunk = (
        f"SELECT min(k), max(k), max(f), {blobs} FROM (SELECT {key} AS k, ({flag}) AS f, {selected} "
        f"FROM {relation} WHERE {key} {{op}} ? ORDER BY {key} LIMIT {_UTF8_CHUNK_ROWS})"
    )
    flagged = False
    op, last = ">=", conn.execute(f"SELECT min({key}) FROM {relation}").fetchone()[0]
    while last is not None:
        low, high, hit, *values = conn.execute(chunk.format(op=op), [last]).fetchone()
        if high is None:
            return None, flagged
        flagged = flagged or bool(hit)
        if not all(is_utf8(blob) for blob in values):
            as_blobs = ", ".join(f"CAST([{c}] AS BLOB)" for c in columns)
            rows = conn.execute(
                f"SELECT {key}, {as_blobs} FROM {relation} WHERE {key} BETWEEN ? AND ? ORDER BY {key}", [low, high]
            )
            for ident, *row in rows:
                for column, value in zip(columns, row):
                    if not is_utf8(value):
                        return (ident, column), flagged
            return None, flagged  # pragma: no cover - the chunk held the bad value
        op, last = ">", high
    return None, flagged


def is_utf8(value: bytes | None) -> bool:
    """True for None or bytes that decode as UTF-8."""
    try:
        if value is not None:
            value.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True
