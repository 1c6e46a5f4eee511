"""The authoritative catalog: open it read-only, check it, and name the source row behind a refused value.

The source is attached to the build connection as ``src`` through a
read-only ``file:`` URI (:func:`snapbuild.sqlite.attach_readonly`), so
nothing here can write to it. Everything that can be checked before the read
model is written is checked here; when the read model refuses a value later
(a NULL, a wrong type, a repeated id), the functions here trace it back
through :data:`~snapbuild.schema.COLUMN_SOURCES` to the source row. Every
failure is a :class:`~snapbuild.errors.SourceError` naming the table, column
and row.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import struct
from pathlib import Path
from typing import NoReturn

from .errors import SourceBusyError, SourceError
from .schema import (
    COLUMN_SOURCES, LINK_TABLES, REQUIRED_COLUMNS, SMALL_TEXT_SOURCES, TYPED_COLUMNS, public_locations_sql,
)
from .sqlite import Executor, attach_readonly, is_utf8
from .urls import locator_problem

_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100


def _file_kind(mode: int) -> str:
    """What a file that is not a regular file is, for a message."""
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return kind
    return "not a file"


def check_source_file(path: Path) -> None:
    """Check that ``path`` is a regular file that looks like a complete SQLite database, before SQLite opens it.

    The file is opened without blocking (a FIFO would wait for a writer
    forever) and checked through the open handle, so what is checked is what
    was opened. A symbolic link to a catalog is fine.

    Raises:
        SourceError: missing, a directory, not a regular file (a FIFO, a
            device), empty, not a SQLite file, or shorter than its header
            says (truncated).
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise SourceError(f"source catalog not found: {path}") from None
    except OSError as error:
        raise SourceError(f"cannot read source catalog {path}: {error.strerror}") from None
    if stat.S_ISDIR(mode):
        raise SourceError(f"source catalog is a directory, not a database file: {path}")
    if not stat.S_ISREG(mode):
        raise SourceError(f"source catalog is not a regular file ({_file_kind(mode)}): {path}")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
        with open(fd, "rb") as handle:
            opened = os.fstat(handle.fileno())
            if not stat.S_ISREG(opened.st_mode):  # replaced since the check above
                raise SourceError(f"source catalog is not a regular file ({_file_kind(opened.st_mode)}): {path}")
            size = opened.st_size
            header = handle.read(_HEADER_SIZE)
    except OSError as error:
        raise SourceError(f"cannot read source catalog {path}: {error.strerror}") from None
    if size == 0:
        raise SourceError(f"source catalog is empty (0 bytes): {path}")
    if len(header) < _HEADER_SIZE or not header.startswith(_MAGIC):
        raise SourceError(f"source catalog is not a SQLite database: {path}")
    (page_size,) = struct.unpack(">H", header[16:18])
    page_size = 65536 if page_size == 1 else page_size
    change_counter, page_count = struct.unpack(">II", header[24:32])
    (valid_for,) = struct.unpack(">I", header[92:96])
    # The in-header page count is trustworthy only when valid-for matches the change counter.
    if valid_for == change_counter and page_count and size < page_count * page_size:
        raise SourceError(
            f"source catalog is truncated: {path} has {size} bytes, its header says {page_count * page_size}"
        )


def attach_source(conn: sqlite3.Connection, path: Path) -> None:
    """Attach the source read-only as ``src``."""
    attach_readonly(conn, path, "src")


def translate_error(error: sqlite3.Error, path: Path, busy_timeout: float) -> SourceError:
    """Turn a SQLite error met while reading the source into a one-line SourceError."""
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    if name.startswith("SQLITE_BUSY") or "database is locked" in text:
        return SourceBusyError(
            f"source catalog stayed locked by a writer for more than {busy_timeout:g} s: {path} "
            "(retry, or put the catalog in WAL mode)",
            timeout=busy_timeout,
        )
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return SourceError(f"source catalog is not a SQLite database: {path}")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return SourceError(f"source catalog is damaged or truncated ({text}): {path}")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return SourceError(f"cannot open source catalog read-only: {path}")
    return SourceError(f"cannot read source catalog {path}: {text}")


def check_schema(conn: Executor) -> None:
    """Check that every table and column the read model reads exists and is a table, listing all that are missing.

    Raises:
        SourceError: the source has no tables, a required table is a view or
            a virtual table, or required tables or columns are missing.
    """
    kinds = {
        name: "a virtual table" if kind == "table" and (sql or "").lstrip()[:14].upper() == "CREATE VIRTUAL" else kind
        for name, kind, sql in conn.execute(
            "SELECT name, type, sql FROM src.sqlite_master WHERE type IN ('table', 'view')"
        ).fetchall()
    }
    if not kinds:
        raise SourceError("source catalog is empty: it has no tables")
    for name in REQUIRED_COLUMNS:
        # A view can run forever (a recursive one) or read other schemas; a
        # virtual table may need a module this SQLite lacks.
        if kinds.get(name, "table") != "table":
            kind = "a view" if kinds[name] == "view" else kinds[name]
            raise SourceError(
                f"source catalog's {name} is {kind}, not a table: the export reads tables only", table=name
            )
    present = set(kinds)
    missing_tables = [name for name in REQUIRED_COLUMNS if name not in present]
    missing_columns: list[str] = []
    for table, columns in REQUIRED_COLUMNS.items():
        if table in missing_tables:
            continue
        have = {row[1] for row in conn.execute(f"PRAGMA src.table_info([{table}])").fetchall()}
        missing_columns.extend(f"{table}.{column}" for column in columns if column not in have)
    parts = []
    if missing_tables:
        parts.append("missing tables: " + ", ".join(missing_tables))
    if missing_columns:
        parts.append("missing columns: " + ", ".join(missing_columns))
    if parts:
        raise SourceError("source catalog does not have the tables and columns the export reads; " + "; ".join(parts))


def check_backends(conn: Executor) -> None:
    """Check ``storage_backends.config_json``: valid JSON, and a ``public_base_url`` for object storage.

    Raises:
        SourceError: naming the backend row and what is wrong with it.
    """
    row = conn.execute(
        "SELECT id FROM src.storage_backends WHERE config_json IS NOT NULL AND NOT json_valid(config_json) "
        "ORDER BY id LIMIT 1"
    ).fetchone()
    if row is not None:
        raise SourceError(
            f"invalid JSON in storage_backends.config_json (id {row[0]})",
            table="storage_backends",
            column="config_json",
            row=row[0],
        )
    row = conn.execute(
        "SELECT id FROM src.storage_backends WHERE backend_type = 'object_storage' "
        "AND (config_json IS NULL OR json_type(config_json, '$.public_base_url') IS NOT 'text' "
        "OR json_extract(config_json, '$.public_base_url') = '') ORDER BY id LIMIT 1"
    ).fetchone()
    if row is not None:
        raise SourceError(
            f"storage_backends.config_json (id {row[0]}) has no public_base_url string "
            "for an object_storage backend",
            table="storage_backends",
            column="config_json",
            row=row[0],
        )


def check_small_tables_utf8(conn: Executor) -> None:
    """Check the text of the few storage_backends and playlist_pools rows (see SMALL_TEXT_SOURCES).

    Raises:
        SourceError: naming the table, column and id of a value that is not UTF-8.
    """
    for table, columns in SMALL_TEXT_SOURCES.items():
        selected = ", ".join(f"CAST([{c}] AS BLOB)" for c in columns)
        for ident, *values in conn.execute(f"SELECT id, {selected} FROM src.[{table}] ORDER BY id"):
            for column, value in zip(columns, values):
                if not is_utf8(value):
                    raise SourceError(
                        f"invalid UTF-8 in {table}.{column} (id {ident})", table=table, column=column, row=ident
                    )


def _raise_source_row(conn: Executor, where: str, bad: str, problem: str, detail: str, fallback: str) -> NoReturn:
    """Raise a SourceError naming the first source row feeding read-model column ``where`` that matches ``bad``.

    ``bad`` is an SQL condition with ``{col}`` standing for the source column;
    the message is ``problem in table.column (id N): detail``, where
    ``detail`` may use ``{kind}``, the value's SQLite type. Without such a
    row (a column without a known source) the message is ``fallback``.
    """
    table, column, condition = COLUMN_SOURCES.get(where, ("", "", ""))
    if table:
        # Entity tables name a row by its id; the link tables have none, so by rowid.
        ident = "rowid" if table in LINK_TABLES else "id"
        col = f"[{column}]"
        row = conn.execute(
            f"SELECT {ident}, typeof({col}) FROM src.[{table}] WHERE {bad.format(col=col)} AND ({condition}) "
            f"ORDER BY {ident} LIMIT 1"
        ).fetchone()
        if row is not None:
            raise SourceError(
                f"{problem} in {table}.{column} ({ident} {row[0]}): {detail.format(kind=row[1])}",
                table=table,
                column=column,
                row=row[0],
            )
    raise SourceError(fallback)


def raise_null(conn: Executor, where: str) -> NoReturn:
    """Name the first source row whose NULL broke the read-model column ``where``."""
    _raise_source_row(
        conn, where, "{col} IS NULL", "NULL", f"{where} needs a value",
        f"the source holds a NULL where {where} needs a value",
    )


def raise_type(conn: Executor, where: str) -> NoReturn:
    """Name the first source row whose value has a type the read-model column ``where`` refuses.

    The types are the read model's declared ones after SQLite's type affinity,
    so '12' into an INTEGER column is fine; 'big', 1.5 or a blob is not.
    """
    table_name, column_name = where.split(".")
    wants = "text" if TYPED_COLUMNS.get(table_name, {}).get(column_name) == "TEXT" else "an integer"
    if wants == "text":
        bad = "typeof({col}) = 'blob'"
    else:
        bad = "(typeof({col}) IN ('text', 'blob') OR (typeof({col}) = 'real' AND {col} <> CAST({col} AS INTEGER)))"
    _raise_source_row(
        conn, where, bad, "wrong type", f"a {{kind}} value where {where} needs {wants}",
        f"the source holds a value of the wrong type where {where} needs {wants}",
    )


def check_source_type(conn: Executor, where: str) -> None:
    """Raise if a source value would reach ``where`` with the wrong type (checked at the source)."""
    try:
        raise_type(conn, where)
    except SourceError as error:
        if error.table is not None:
            raise


def bad_type(column: str, declared: str) -> str:
    """An SQL condition, true when a read-model value (affinity applied) is not of its declared type."""
    # Comparisons, not typeof(): an opcode instead of a function call per row.
    # Across types NULL < numbers < text < blob, and affinity never converts a blob.
    if declared == "TEXT":
        return f"[{column}] >= x''"  # a blob (numbers became text through the affinity)
    return f"([{column}] >= '' OR [{column}] <> CAST([{column}] AS INTEGER))"  # text, blob, fraction


def source_type_filters(table: str) -> dict[str, str]:
    """For each source table feeding ``table``: an SQL condition true for a row that may carry a wrong type.

    Exact for TEXT columns (only a blob stays a blob); for INTEGER columns it
    is a superset (text such as '42' becomes an integer through the affinity),
    so a row it finds means "check the read model", not "error". A row's
    export condition is kept when it is a plain filter; a subquery is
    dropped (a superset again), since it costs more than the scan it narrows;
    so the conditions name no schema.
    """
    parts: dict[str, list[str]] = {}
    conditions: dict[str, str] = {}
    for column, declared in TYPED_COLUMNS[table].items():
        origin = COLUMN_SOURCES.get(f"{table}.{column}")
        if origin is None:
            continue  # computed in SQL (public_url): text by construction
        source, source_column, condition = origin
        parts.setdefault(source, []).append(bad_type(source_column, declared))
        conditions[source] = "1" if "SELECT" in condition else condition
    return {
        source: f"({conditions[source]}) AND ({' OR '.join(bad)})"
        for source, bad in parts.items()
    }


def _raise_duplicate_id(conn: Executor, table: str) -> None:
    """Name a source id that appears twice in an entity table (a source without a primary key)."""
    row = conn.execute(
        f"SELECT id FROM src.[{table}] GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 1"
    ).fetchone()
    ident = row[0] if row else "?"
    raise SourceError(
        f"duplicate id in {table}.id (id {ident}): ids must be unique",
        table=table,
        column="id",
        row=ident,
    )


def raise_id_problem(conn: Executor, source: str, kind: str, error: sqlite3.Error) -> None:
    """Explain a key failure in an entity table: a repeated id, or an id that is not an integer."""
    if kind in ("UNIQUE", "PRIMARY KEY"):
        _raise_duplicate_id(conn, source)
    row = conn.execute(
        f"SELECT id FROM src.[{source}] WHERE typeof(id) <> 'integer' ORDER BY rowid LIMIT 1"
    ).fetchone()
    raise SourceError(
        f"{source}.id must be an integer" + (f" (found {row[0]!r})" if row else f": {error}"),
        table=source,
        column="id",
        row=row[0] if row else None,
    )


def check_no_null(conn: Executor, where: str) -> None:
    """Raise, naming the row, if a source row that reaches read-model column ``where`` holds a NULL there."""
    table, column, condition = COLUMN_SOURCES[where]
    row = conn.execute(
        f"SELECT 1 FROM src.[{table}] WHERE [{column}] IS NULL AND ({condition}) LIMIT 1"
    ).fetchone()
    if row is not None:
        raise_null(conn, where)


def raise_bad_locator(conn: Executor) -> NoReturn:
    """Name the first active object-storage location whose locator cannot be a URL path.

    Called when the public path function refused a locator inside a
    statement, which does not say which row it was.
    """
    rows = conn.execute(f"SELECT fl.id, CAST(ltrim(fl.locator, '/') AS BLOB) {public_locations_sql()} ORDER BY fl.id")
    for ident, locator in rows:
        problem = locator_problem(locator)
        if problem is not None:
            raise SourceError(
                f"file_locations.locator (id {ident}) is not a plain object path for a public URL: {problem}",
                table="file_locations",
                column="locator",
                row=ident,
            )
    raise SourceError("a locator of an object-storage file is not a plain object path", table="file_locations",
                      column="locator")
