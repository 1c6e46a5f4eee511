"""The authoritative catalog: open it read-only, read it as one point in time, and validate it.

The source is attached to the build connection as ``src`` through a
``file:...?mode=ro`` URI, so nothing here can write to it. Everything that
can be checked before the read model is written is checked here, and every
failure is a :class:`~snapbuild.errors.SourceError` naming the table, column
and row.
"""

from __future__ import annotations

import sqlite3
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

from sqlite_utils import Database

from .errors import SourceBusyError, SourceError
from .readmodel import QUOTE_FUNCTION, QUOTED_PATH, TABLES, TYPE_SCANNED, quote_path, source_type_filters

_MAGIC = b"SQLite format 3\x00"
_HEADER_SIZE = 100

#: The source tables and columns the read model reads (the plan's schema, Tasks 2 and 5).
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

#: For each read-model text column, the source ``table.column`` it is copied from.
TEXT_ORIGINS: dict[str, dict[str, str]] = {
    "catalog_playlists": {c: f"playlists.{c}" for c in TABLES[0].text_columns},
    "catalog_tracks": {c: f"songs.{c}" for c in TABLES[1].text_columns},
    "catalog_track_files": {
        "quality_label": "file_assets.quality_label",
        "ext": "file_assets.ext",
        "locator": "file_locations.locator",
    },
}

#: Small source tables whose text reaches the read model through many rows
#: (every file of a backend, every playlist of a pool): checked once, at the source.
SMALL_TEXT_SOURCES: dict[str, tuple[str, ...]] = {
    "storage_backends": ("name", "backend_type", "config_json"),
    "playlist_pools": ("external_id", "name", "pool_kind"),
}

#: How a read-model key names its source row in messages.
_ROW_LABEL = {
    "catalog_playlists": "playlists id",
    "catalog_tracks": "songs id",
    "catalog_track_files": "file_locations id",
}

_UTF8_CHUNK_ROWS = 10_000


def check_source_file(path: Path) -> None:
    """Check that ``path`` looks like a complete SQLite database before opening it.

    Raises:
        SourceError: missing, a directory, empty, not a SQLite file, or shorter
            than its header says (truncated).
    """
    if not path.exists():
        raise SourceError(f"source catalog not found: {path}")
    if path.is_dir():
        raise SourceError(f"source catalog is a directory, not a database file: {path}")
    try:
        size = path.stat().st_size
        with open(path, "rb") as handle:
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


def source_uri(path: Path) -> str:
    """Return the read-only ``file:`` URI SQLite attaches the source through."""
    return path.resolve().as_uri() + "?mode=ro"


def attach_source(db: Database, path: Path) -> None:
    """Attach the source read-only as ``src`` (a bound parameter: any path is safe)."""
    db.execute("ATTACH DATABASE ? AS src", [source_uri(path)])


def translate_error(error: sqlite3.Error, path: Path, busy_timeout: float) -> SourceError:
    """Turn a SQLite error met while reading the source into a one-line SourceError."""
    name = getattr(error, "sqlite_errorname", "")
    text = str(error)
    if name.startswith("SQLITE_BUSY") or "database is locked" in text:
        return SourceBusyError(
            f"source catalog stayed locked by a writer for more than {busy_timeout:g} s: {path} "
            "(retry, raise --busy-timeout, or put the catalog in WAL mode)"
        )
    if name == "SQLITE_NOTADB" or "file is not a database" in text:
        return SourceError(f"source catalog is not a SQLite database: {path}")
    if name.startswith("SQLITE_CORRUPT") or "malformed" in text:
        return SourceError(f"source catalog is damaged or truncated ({text}): {path}")
    if name.startswith("SQLITE_CANTOPEN") or "unable to open" in text:
        return SourceError(f"cannot open source catalog read-only: {path}")
    return SourceError(f"cannot read source catalog {path}: {text}")


def check_schema(db: Database) -> None:
    """Check that every table and column the read model reads exists, listing all that are missing.

    Raises:
        SourceError: the source has no tables, or lacks required tables or columns.
    """
    present = {
        name
        for (name,) in db.execute(
            "SELECT name FROM src.sqlite_master WHERE type IN ('table', 'view')"
        ).fetchall()
    }
    if not present:
        raise SourceError("source catalog is empty: it has no tables")
    missing_tables = [name for name in REQUIRED_COLUMNS if name not in present]
    missing_columns: list[str] = []
    for table, columns in REQUIRED_COLUMNS.items():
        if table in missing_tables:
            continue
        have = {row[1] for row in db.execute(f"PRAGMA src.table_info([{table}])").fetchall()}
        missing_columns.extend(f"{table}.{column}" for column in columns if column not in have)
    parts = []
    if missing_tables:
        parts.append("missing tables: " + ", ".join(missing_tables))
    if missing_columns:
        parts.append("missing columns: " + ", ".join(missing_columns))
    if parts:
        raise SourceError("source catalog does not have the plan's schema; " + "; ".join(parts))


def check_backends(db: Database) -> None:
    """Check ``storage_backends.config_json``: valid JSON, and a ``public_base_url`` for object storage.

    Raises:
        SourceError: naming the backend row and what is wrong with it.
    """
    row = db.execute(
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
    row = db.execute(
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


def check_small_tables_utf8(db: Database) -> None:
    """Check the text of the few storage_backends and playlist_pools rows (see SMALL_TEXT_SOURCES).

    Raises:
        SourceError: naming the table, column and id of a value that is not UTF-8.
    """
    for table, columns in SMALL_TEXT_SOURCES.items():
        selected = ", ".join(f"CAST([{c}] AS BLOB)" for c in columns)
        for ident, *values in db.execute(f"SELECT id, {selected} FROM src.[{table}] ORDER BY id"):
            for column, value in zip(columns, values):
                try:
                    if value is not None:
                        value.decode("utf-8")
                except UnicodeDecodeError:
                    raise SourceError(
                        f"invalid UTF-8 in {table}.{column} (id {ident})", table=table, column=column, row=ident
                    ) from None


def find_invalid_utf8(
    db: Database, relation: str, key: str, columns: Sequence[str]
) -> tuple[object, str] | None:
    """Return (key, column) of the first value in ``relation`` that is not valid UTF-8, or None.

    SQLite copies invalid bytes silently, so the text is read back in large
    chunks in key order, each column concatenated in SQL and decoded in one
    call, which keeps the pass cheap; a chunk that fails is rescanned row by
    row to name the value. ``key`` must be unique and indexed (a rowid).
    """
    return scan_text(db, relation, key, columns)[0]


def scan_text(
    db: Database, relation: str, key: str, columns: Sequence[str], flag: str = "0"
) -> tuple[tuple[object, str] | None, bool]:
    """:func:`find_invalid_utf8`, plus whether the SQL condition ``flag`` held for any row it read.

    The condition rides along in the same pass (a type check, say), so it
    costs no second scan. The scan stops at the first invalid value.
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
    op, last = ">=", db.execute(f"SELECT min({key}) FROM {relation}").fetchone()[0]
    while last is not None:
        low, high, hit, *values = db.execute(chunk.format(op=op), [last]).fetchone()
        if high is None:
            return None, flagged
        flagged = flagged or bool(hit)
        try:
            for blob in values:
                if blob is not None:
                    blob.decode("utf-8")
        except UnicodeDecodeError:
            as_blobs = ", ".join(f"CAST([{c}] AS BLOB)" for c in columns)
            rows = db.execute(
                f"SELECT {key}, {as_blobs} FROM {relation} WHERE {key} BETWEEN ? AND ? ORDER BY {key}", [low, high]
            )
            for ident, *row in rows:
                for column, value in zip(columns, row):
                    try:
                        if value is not None:
                            value.decode("utf-8")
                    except UnicodeDecodeError:
                        return (ident, column), flagged
            return None, flagged  # pragma: no cover - the chunk held the bad value
        op, last = ">", high
    return None, flagged


def check_utf8_file(path: Path, tables: Sequence[str]) -> None:
    """Run :func:`check_utf8` on a finished read-model file through its own read-only connection.

    Its own connection lets checks of different tables run side by side, and
    beside the hashing of the same file.
    """
    conn = sqlite3.connect(source_uri(path), uri=True, check_same_thread=False)
    try:
        check_utf8(Database(conn, recursive_triggers=False, execute_plugins=False), tables)
    finally:
        conn.close()


def check_utf8(db: Database, tables: Sequence[str]) -> None:
    """Check that every text value of the given read-model tables (``db``'s main schema) is valid UTF-8.

    Raises:
        SourceError: naming the source table, column and row.
    """
    for table in TABLES:
        if not table.text_columns or table.name not in tables:
            continue
        found = find_invalid_utf8(db, f"[{table.name}]", table.key[0], table.text_columns)
        if found is not None:
            ident, column = found
            origin = TEXT_ORIGINS[table.name][column]
            source_table, source_column = origin.split(".")
            raise SourceError(
                f"invalid UTF-8 in {origin} ({_ROW_LABEL[table.name]} {ident})",
                table=source_table,
                column=source_column,
                row=ident,
            )


class SideReader:
    """A second read-only connection to the source that does work beside the build, on another core.

    It checks the text of ``songs`` and ``playlists`` (they reach the read
    model whole, so checking them at the source is checking ``catalog_tracks``
    and ``catalog_playlists``), then percent-encodes the path of every active
    object-storage file into ``side.public_paths`` in a scratch database that
    the build attaches, so that the build's own thread does neither.

    Last, it looks for values of the wrong type in the source rows of the
    read-model tables (TYPE_SCANNED), the two text tables' in the same pass as
    their text, so that the build inserts without a per-row type check.

    It only counts if it reads the same point in time as the build: it records
    ``PRAGMA data_version`` before the build's read transaction starts and
    again inside each of its own, later ones; any commit in between makes them
    differ. Then (or on any error of its own) it stands in for nothing, and the
    build encodes the paths and the export checks those tables itself. A
    source row that may hold a wrong type (text in an integer column may be a
    number written as text) also leaves its table to the build's exact check.
    """

    #: The read-model tables the text check stands for, and their source tables.
    COVERS = {"catalog_tracks": "songs", "catalog_playlists": "playlists"}

    def __init__(self, path: Path, scratch: Path, busy_timeout: float) -> None:
        self._conn = sqlite3.connect(
            source_uri(path), uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._before = self._conn.execute("PRAGMA data_version").fetchone()[0]
            self._conn.execute("ATTACH DATABASE ? AS side", [str(scratch)])
            self._conn.execute("PRAGMA side.journal_mode = OFF")
            self._conn.execute("PRAGMA side.synchronous = OFF")
        except sqlite3.Error:
            self._conn.close()
            raise
        self._conn.create_function(QUOTE_FUNCTION, 1, quote_path, deterministic=True)
        self._thread: threading.Thread | None = None
        self._paths_ready = threading.Event()
        self._same_time = False
        self._covered = False
        self._paths = False
        self._typed: list[str] = []
        self._error: SourceError | None = None

    def start(self) -> None:
        """Start; call once the build's transaction has read the source."""
        self._thread = threading.Thread(target=self._run, name="snapbuild-side-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        conn = self._conn
        try:
            if not self._begin_same_time():
                return
            # The paths first: the build waits for them before its files, and
            # the checks then overlap the build's single-threaded stages
            # rather than its sort, which uses both cores.
            conn.execute("CREATE TABLE side.public_paths (location_id INTEGER PRIMARY KEY, path TEXT NOT NULL)")
            conn.execute(
                f"INSERT INTO side.public_paths SELECT fl.id, {QUOTED_PATH} FROM file_locations AS fl "
                "JOIN storage_backends AS sb ON sb.id = fl.backend_id "
                "WHERE fl.status = 'active' AND sb.backend_type = 'object_storage' AND fl.locator IS NOT NULL "
                "ORDER BY fl.id"
            )
            conn.execute("COMMIT")
            self._paths = True
            self._paths_ready.set()
            if self._begin_same_time():
                self._covered = self._check_text(Database(conn, recursive_triggers=False, execute_plugins=False))
                if self._error is None:
                    self._check_types(conn)
        except sqlite3.Error:
            pass  # locked, interrupted, odd ids, ...: the build does the work itself
        finally:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._paths_ready.set()

    def _begin_same_time(self) -> bool:
        """Open a read transaction; True if it sees the build's point in time (no commit since)."""
        self._conn.execute("BEGIN")
        self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return self._conn.execute("PRAGMA data_version").fetchone()[0] == self._before

    def _check_types(self, conn: sqlite3.Connection) -> None:
        for table in TYPE_SCANNED:
            if table in self.COVERS:
                continue  # done in the pass over their text
            filters = source_type_filters(table)
            if all(
                conn.execute(f"SELECT 1 FROM [{source}] WHERE {where} LIMIT 1").fetchone() is None
                for source, where in filters.items()
            ):
                self._typed.append(table)

    def _check_text(self, db: Database) -> bool:
        """Check the text (and types) of COVERS; False if it leaves the text to the build."""
        for table_name, source in self.COVERS.items():
            columns = next(t.text_columns for t in TABLES if t.name == table_name)
            ((_, may_be_mistyped),) = source_type_filters(table_name).items()
            found, flagged = scan_text(db, f"[{source}]", "rowid", columns, may_be_mistyped)
            if found is None and not flagged:
                self._typed.append(table_name)
            if found is not None and flagged:
                # A wrong type (a blob of bad bytes, say) is reported before
                # the bad text: the build finds both, in that order.
                return False
            if found is not None:
                rowid, column = found
                ident = db.execute(f"SELECT id FROM [{source}] WHERE rowid = ?", [rowid]).fetchone()[0]
                self._error = SourceError(
                    f"invalid UTF-8 in {source}.{column} ({_ROW_LABEL[table_name]} {ident})",
                    table=source,
                    column=column,
                    row=ident,
                )
                return True
        return True

    def paths_ready(self) -> bool:
        """Wait for the encoded paths; True if ``side.public_paths`` holds them for the build's point in time.

        Raises:
            SourceError: the text check already found a value that is not UTF-8.
        """
        self._paths_ready.wait()
        if self._error is not None:
            raise self._error
        return self._paths

    def types_checked(self) -> tuple[str, ...]:
        """Wait for the end; return the read-model tables whose source holds no value of a wrong type.

        Raises:
            SourceError: a checked table holds a value that is not UTF-8.
        """
        self._finish()
        if self._error is not None:
            raise self._error
        return tuple(self._typed)

    def result(self) -> tuple[str, ...]:
        """Wait for the end; return the read-model tables whose text it checked.

        Raises:
            SourceError: a checked table holds a value that is not UTF-8.
        """
        self._finish()
        if self._error is not None:
            raise self._error
        return tuple(self.COVERS) if self._covered else ()

    def abort(self) -> None:
        """Stop early (the build failed) and release the connection."""
        if self._thread is not None:
            self._conn.interrupt()
        self._finish()

    def _finish(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._conn.close()  # closing twice is harmless
