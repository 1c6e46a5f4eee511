"""A second read-only connection to the source that does part of the export's work on another core.

It percent-encodes the path of every active object-storage file into
``side.public_paths`` in a scratch database that the build attaches; then it
checks the text of ``songs`` and ``playlists`` (they reach the read model
whole, so checking them at the source is checking ``catalog_tracks`` and
``catalog_playlists``) and, in the same pass, looks for values of the wrong
type, and scans the other source tables of the type-checked read-model tables
for wrong types. What it vouches for, the build and the export need not do.

It only counts if it reads the same point in time as the build: it records
``PRAGMA data_version`` before the build's read transaction starts and again
inside each of its own, later ones; any commit in between makes them differ.
Then (or on any SQLite error of its own) it vouches for nothing, and the build
encodes the paths and checks the tables itself. A source row that may hold a
wrong type (text in an integer column may be a number written as text) also
leaves its table to the build's exact check.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from .errors import SourceError
from .schema import QUOTED_PATH, TABLES, TYPE_SCANNED, public_locations_sql, row_label
from .source import source_type_filters
from .sqlite import find_invalid_utf8, readonly_uri
from .urls import register_quote_function

#: The read-model tables whose text the side reader checks, and their source tables.
TEXT_COVERED = {"catalog_tracks": "songs", "catalog_playlists": "playlists"}


@dataclass(frozen=True)
class SideResult:
    """What the side reader vouches for, at the build's point in time.

    Attributes:
        paths: ``side.public_paths`` holds the encoded path of every active object-storage file.
        text_checked: read-model tables whose text it found valid UTF-8.
        types_checked: read-model tables whose source holds no value of a wrong type.
    """

    paths: bool = False
    text_checked: tuple[str, ...] = ()
    types_checked: tuple[str, ...] = ()


class SideReader:
    """Run the side work on its own thread and connection; the build asks for the results when it needs them.

    Args:
        source: the source catalog (opened read-only).
        scratch: a new scratch database file for the encoded paths.
        busy_timeout: seconds to wait for a writer that locks the source.

    Call :meth:`start` once the build's transaction has read the source.
    """

    def __init__(self, source: Path, scratch: Path, busy_timeout: float) -> None:
        self._conn = sqlite3.connect(
            readonly_uri(source), uri=True, timeout=busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            self._before = self._conn.execute("PRAGMA data_version").fetchone()[0]
            self._conn.execute("ATTACH DATABASE ? AS side", [str(scratch)])
            self._conn.execute("PRAGMA side.journal_mode = OFF")
            self._conn.execute("PRAGMA side.synchronous = OFF")
        except sqlite3.Error:
            self._conn.close()
            raise
        register_quote_function(self._conn)
        self._thread: threading.Thread | None = None
        self._paths_done = threading.Event()
        self._result = SideResult()
        self._error: SourceError | None = None

    def start(self) -> None:
        """Start the work on its own thread."""
        self._thread = threading.Thread(target=self._run, name="snapbuild-side-reader", daemon=True)
        self._thread.start()

    def paths_ready(self) -> bool:
        """Wait for the encoded paths; True if ``side.public_paths`` holds them for the build's point in time.

        Raises:
            SourceError: the text check already found a value that is not UTF-8.
        """
        self._paths_done.wait()
        if self._error is not None:
            raise self._error
        return self._result.paths

    def result(self) -> SideResult:
        """Wait for the end of the work and return what it vouches for.

        Raises:
            SourceError: a checked table holds a value that is not UTF-8.
        """
        self._finish()
        if self._error is not None:
            raise self._error
        return self._result

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

    def _run(self) -> None:
        conn = self._conn
        try:
            if not self._begin_same_time():
                return
            # The paths first: the build waits for them before its files, and
            # the checks then overlap the build's single-threaded stages
            # rather than its sort, which uses both cores.
            self._encode_paths(conn)
            self._result = SideResult(paths=True)
            self._paths_done.set()
            if self._begin_same_time():
                text_checked, types_checked = self._check_text(conn)
                if self._error is None:
                    types_checked += self._check_types(conn)
                self._result = SideResult(True, text_checked, types_checked)
        except sqlite3.Error:
            pass  # locked, interrupted, odd ids, ...: the build does the work itself
        finally:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            self._paths_done.set()

    def _begin_same_time(self) -> bool:
        """Open a read transaction; True if it sees the build's point in time (no commit since)."""
        self._conn.execute("BEGIN")
        self._conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return self._conn.execute("PRAGMA data_version").fetchone()[0] == self._before

    @staticmethod
    def _encode_paths(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE side.public_paths (location_id INTEGER PRIMARY KEY, path TEXT NOT NULL)")
        conn.execute(
            f"INSERT INTO side.public_paths SELECT fl.id, {QUOTED_PATH} {public_locations_sql('')} ORDER BY fl.id"
        )
        conn.execute("COMMIT")

    def _check_text(self, conn: sqlite3.Connection) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Check the text (and types) of TEXT_COVERED; return (text_checked, types_checked).

        A value that is not UTF-8 is kept in ``self._error`` for the build to raise.
        """
        typed: list[str] = []
        for table_name, source in TEXT_COVERED.items():
            columns = next(t.text_columns for t in TABLES if t.name == table_name)
            ((_, may_be_mistyped),) = source_type_filters(table_name).items()
            found, flagged = find_invalid_utf8(conn, f"[{source}]", "rowid", columns, may_be_mistyped)
            if found is None and not flagged:
                typed.append(table_name)
            if found is not None and flagged:
                # A wrong type (a blob of bad bytes, say) is reported before
                # the bad text: the build finds both, in that order.
                return (), tuple(typed)
            if found is not None:
                rowid, column = found
                ident = conn.execute(f"SELECT id FROM [{source}] WHERE rowid = ?", [rowid]).fetchone()[0]
                self._error = SourceError(
                    f"invalid UTF-8 in {source}.{column} ({row_label(table_name)} {ident})",
                    table=source,
                    column=column,
                    row=ident,
                )
                break
        return tuple(TEXT_COVERED), tuple(typed)

    @staticmethod
    def _check_types(conn: sqlite3.Connection) -> tuple[str, ...]:
        """The other TYPE_SCANNED tables whose source rows hold no value that may have a wrong type."""
        typed: list[str] = []
        for table in TYPE_SCANNED:
            if table in TEXT_COVERED:
                continue  # done in the pass over their text
            filters = source_type_filters(table)
            if all(
                conn.execute(f"SELECT 1 FROM [{source}] WHERE {where} LIMIT 1").fetchone() is None
                for source, where in filters.items()
            ):
                typed.append(table)
        return tuple(typed)
