"""Fill the read model: create its tables and insert every row in key order, with the documented repairs.

The tables and statements come from :mod:`snapbuild.schema`; the statements
read the source through the schema name ``src`` and the whole build runs in
the caller's one write transaction, so every table sees the same point in
time. A value the read model refuses is traced back to its source row by
:mod:`snapbuild.source`. After the build, :func:`check_types` and
:func:`check_text` check what the side reader could not vouch for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from .errors import SourceError
from .schema import (
    INDEXES,
    INSERT_PLAYLIST_TRACKS,
    INSERT_PLAYLISTS,
    INSERT_TOPLISTS,
    INSERT_TRACKS,
    TABLES,
    TYPE_SCANNED,
    TYPED_COLUMNS,
    column_origin,
    insert_track_files_sql,
    row_label,
)
from .source import (
    bad_type,
    check_no_null,
    check_source_type,
    raise_bad_locator,
    raise_id_problem,
    raise_null,
    raise_type,
)
from .sqlite import find_invalid_utf8, readonly_uri
from .urls import register_quote_function

Progress = Callable[[str, int, int], None]


@dataclass
class BuildStats:
    """What a build wrote: rows per table, repairs applied, and the playlists with a cover."""

    table_counts: dict[str, int] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)
    cover_count: int = 0

    def repair(self, name: str, count: int) -> None:
        """Record ``count`` applications of the documented repair ``name`` (zero is not recorded)."""
        if count:
            self.repairs[name] = self.repairs.get(name, 0) + count


def _constraint(error: sqlite3.IntegrityError) -> tuple[str, str]:
    """Split 'NOT NULL constraint failed: t.c' into ('NOT NULL', 't.c')."""
    text = str(error)
    kind, _, where = text.partition(" constraint failed: ")
    return kind.strip(), where.split(",")[0].strip()


def _insert_entities(db: Database, sql: str, source: str) -> int:
    """Insert an entity table (playlists or tracks); NULLs and duplicate ids are errors."""
    try:
        return db.execute(sql).rowcount
    except sqlite3.IntegrityError as error:
        kind, where = _constraint(error)
        if kind == "NOT NULL":
            raise_null(db, where)
        raise_id_problem(db, source, kind, error)
    raise AssertionError("unreachable")  # pragma: no cover


class _IdSet:
    """An SQL membership test for the ids of a read-model table, as cheap as the ids allow.

    Contiguous ids (a catalog that never deleted a row) need only a range test.
    Dense ids with gaps become a byte map bound as one blob:
    ``substr(map, id - low + 1, 1)`` is an O(1) test in C, several times
    cheaper per row than probing a b-tree. Sparse ids fall back to
    ``NOT IN (SELECT +key ...)``, an in-memory set SQLite builds.
    """

    _MAX_SPAN = 64 << 20  # bytes of map at most

    def __init__(self, db: Database, table: str, key: str) -> None:
        low, high, count = db.execute(f"SELECT min({key}), max({key}), count(*) FROM {table}").fetchone()
        span = high - low + 1 if count else 0
        self.table, self.key = table, key
        self.params: dict[str, object] = {}
        self._mode = "set"
        if count and span == count:
            self._mode = "range"
            self.params = {f"{table}_low": low, f"{table}_high": high}
        elif count and span <= min(self._MAX_SPAN, 16 * count + 4096):
            self._mode = "map"
            present = bytearray(span)
            for (ident,) in db.execute(f"SELECT {key} FROM {table}"):
                present[ident - low] = 1
            self.params = {f"{table}_map": bytes(present), f"{table}_low": low}

    def missing(self, column: str) -> str:
        """An SQL condition: 1 when ``column`` names no row of the table, NULL when it is NULL, else 0.

        ``column`` may be a source column of any declared type: a value is
        taken as the read model's INTEGER column would take it (``'42'`` is
        42, ``'abc'`` and 1.5 name no row).
        """
        name = self.table
        # The CAST has INTEGER affinity, so the comparison applies it to the
        # value: only what the read model would not store as an integer differs.
        # Cheaper than typeof() per row.
        not_an_id = f"{column} <> CAST({column} AS INTEGER)"
        ident = f"CAST({column} AS INTEGER)"
        if self._mode == "range":
            return f"({not_an_id} OR {ident} NOT BETWEEN :{name}_low AND :{name}_high)"
        if self._mode == "map":
            # The low test first: substr() counts a negative start from the end
            # (past the end it gives '', which is "missing" as it should be).
            return (
                f"({not_an_id} OR {ident} < :{name}_low OR "
                f"substr(:{name}_map, {ident} - :{name}_low + 1, 1) IS NOT x'01')"
            )
        return f"({not_an_id} OR {ident} NOT IN (SELECT +{self.key} FROM {name}))"


def _position_pairs(db: Database) -> int:
    """Distinct (playlist_id, position) pairs: a streaming pass, the key's prefix gives the order."""
    return db.execute(
        "SELECT count(*) FROM (SELECT DISTINCT playlist_id, position FROM catalog_playlist_tracks)"
    ).fetchone()[0]


def _insert_playlist_tracks(db: Database, stats: BuildStats) -> int:
    """Insert the playlist rows whose playlist and song exist, each once; count what is dropped and the ties.

    Rows are dropped by the INSERT itself, never inserted and deleted: a
    deleted row leaves its bytes in the page, and the same rows must always
    give the same file.
    """
    playlists = _IdSet(db, "catalog_playlists", "playlist_id")
    songs = _IdSet(db, "catalog_tracks", "song_id")
    no_playlist, no_song = playlists.missing("playlist_id"), songs.missing("song_id")
    params = {**playlists.params, **songs.params}
    # NULLs pass ("IS NOT 1"), so that the table's NOT NULL refuses them.
    keep = f"{no_playlist} IS NOT 1 AND {no_song} IS NOT 1"
    try:
        inserted = db.execute(INSERT_PLAYLIST_TRACKS.format(conflict="", keep=keep), params).rowcount
    except sqlite3.IntegrityError as error:
        kind, where = _constraint(error)
        if kind == "NOT NULL":
            raise_null(db, where)
        # Duplicate rows (the statement was rolled back). Rule out NULLs first,
        # since OR IGNORE would skip them silently.
        for column in ("playlist_id", "position", "song_id"):
            check_no_null(db, f"catalog_playlist_tracks.{column}")
        inserted = db.execute(INSERT_PLAYLIST_TRACKS.format(conflict="OR IGNORE ", keep=keep), params).rowcount
    total = db.execute("SELECT count(*) FROM src.playlist_songs").fetchone()[0]
    if total != inserted:
        # Rare: a pass over the source counts the distinct dropped rows of each
        # kind (a repeated dangling row is one drop and one duplicate).
        dropped_playlist, dropped_song = db.execute(
            f"SELECT coalesce(sum({no_playlist}), 0), coalesce(sum(NOT {no_playlist} AND {no_song}), 0) FROM "
            f"(SELECT DISTINCT playlist_id, position, song_id FROM src.playlist_songs "
            f"WHERE {no_playlist} OR {no_song})",
            params,
        ).fetchone()
        stats.repair("playlist_tracks_missing_playlist", dropped_playlist)
        stats.repair("playlist_tracks_missing_song", dropped_song)
        stats.repair("playlist_tracks_duplicate_rows", total - inserted - dropped_playlist - dropped_song)
    # Two songs at one position stay, ordered by song_id (the key's last column); count them.
    stats.repair("playlist_position_ties", inserted - _position_pairs(db))
    return inserted


def _insert_files(db: Database, sql: str, params: dict[str, object]) -> int:
    """Run an INSERT of catalog_track_files; a locator the public path function refused is named by its row."""
    try:
        return db.execute(sql, params).rowcount
    except sqlite3.OperationalError as error:
        if "user-defined function raised exception" in str(error):
            raise_bad_locator(db)
        raise


def _insert_track_files(db: Database, stats: BuildStats, side_paths: bool) -> int:
    """Insert the active file locations; ones whose asset, backend or track is missing are dropped and counted.

    As for the playlist rows, a location of a missing track is left out by
    the INSERT itself, never inserted and deleted.
    """
    songs = _IdSet(db, "catalog_tracks", "song_id")
    keep = f"{songs.missing('fa.song_id')} IS NOT 1"
    no_asset = no_backend = 0
    try:
        # LEFT JOINs: a dangling reference shows up as a NULL the table refuses,
        # so the common, clean case needs no extra pass over the source.
        inserted = _insert_files(db, insert_track_files_sql(side_paths=side_paths, keep=keep), songs.params)
    except sqlite3.IntegrityError as error:
        kind, where = _constraint(error)
        if kind != "NOT NULL":
            raise_id_problem(db, "file_locations", kind, error)
        active = "fl.status = 'active'"
        no_asset = db.execute(
            f"SELECT count(*) FROM src.file_locations AS fl WHERE {active} "
            "AND NOT EXISTS (SELECT 1 FROM src.file_assets AS fa WHERE fa.id = fl.file_asset_id)"
        ).fetchone()[0]
        no_backend = db.execute(
            f"SELECT count(*) FROM src.file_locations AS fl WHERE {active} "
            "AND EXISTS (SELECT 1 FROM src.file_assets AS fa WHERE fa.id = fl.file_asset_id) "
            "AND NOT EXISTS (SELECT 1 FROM src.storage_backends AS sb WHERE sb.id = fl.backend_id)"
        ).fetchone()[0]
        if not (no_asset or no_backend):
            raise_null(db, where)
        for column in ("location_id", "locator", "is_primary", "song_id", "backend_type", "backend_name"):
            check_no_null(db, f"catalog_track_files.{column}")
        inserted = _insert_files(db, insert_track_files_sql(join="", side_paths=side_paths, keep=keep), songs.params)
        stats.repair("track_files_missing_asset", no_asset)
        stats.repair("track_files_missing_backend", no_backend)
    active_count = db.execute("SELECT count(*) FROM src.file_locations WHERE status = 'active'").fetchone()[0]
    stats.repair("track_files_missing_song", active_count - no_asset - no_backend - inserted)
    return inserted


def _insert_toplists(db: Database, stats: BuildStats) -> int:
    """Insert the toplist rows; pool rows naming a missing playlist, or repeated, are dropped and counted."""
    for column in ("toplist_id", "group_name"):
        check_no_null(db, f"catalog_toplists.{column}")
        check_source_type(db, f"catalog_toplists.{column}")
    in_toplists, with_playlist = db.execute(
        "SELECT count(*), count(p.playlist_id) FROM src.pool_playlists AS rel "
        "JOIN src.playlist_pools AS pp ON pp.id = rel.pool_id "
        "LEFT JOIN main.catalog_playlists AS p ON p.playlist_id = rel.playlist_id "
        "WHERE pp.pool_kind = 'toplist'"
    ).fetchone()
    inserted = db.execute(INSERT_TOPLISTS).rowcount
    stats.repair("toplists_missing_playlist", in_toplists - with_playlist)
    stats.repair("toplists_duplicate_rows", with_playlist - inserted)
    return inserted


def build_tables(
    db: Database,
    progress: Progress | None = None,
    *,
    encoded_paths: Callable[[], bool] | None = None,
    types_checked: Callable[[], Collection[str]] | None = None,
) -> BuildStats:
    """Create and fill the read model in ``db`` (main schema) from ``src``; the caller owns the transaction.

    Args:
        db: the new read-model database, with the source attached as ``src``.
        progress: optional ``progress(stage, done, total)`` callback.
        encoded_paths: called right before the files are inserted; True means
            ``side.public_paths`` holds the encoded paths of this point in time
            (computed beside the build), False that they are encoded here.
        types_checked: called once the tables are filled; names the tables
            whose types were checked at the source (beside the build). The
            others of TYPE_SCANNED are checked here, in the read model.

    Raises:
        SourceError: the source holds something the read model cannot take
            and no documented repair applies (NULLs, wrong types, duplicate ids).
    """
    report = progress or (lambda stage, done, total: None)
    steps = len(TABLES) + 2
    stats = BuildStats()
    register_quote_function(db.conn)
    for table in TABLES:
        db.execute(table.ddl)
    counts = stats.table_counts
    report("catalog_playlists", 0, steps)
    counts["catalog_playlists"] = _insert_entities(db, INSERT_PLAYLISTS, "playlists")
    report("catalog_tracks", 1, steps)
    counts["catalog_tracks"] = _insert_entities(db, INSERT_TRACKS, "songs")
    report("catalog_playlist_tracks", 2, steps)
    counts["catalog_playlist_tracks"] = _insert_playlist_tracks(db, stats)
    report("catalog_track_files", 3, steps)
    counts["catalog_track_files"] = _insert_track_files(db, stats, encoded_paths() if encoded_paths else False)
    report("catalog_toplists", 4, steps)
    counts["catalog_toplists"] = _insert_toplists(db, stats)
    report("indexes", 5, steps)
    for table_name, index_name, columns in INDEXES:
        db.table(table_name).create_index(list(columns), index_name=index_name)
    stats.cover_count = db.execute(
        "SELECT count(*) FROM catalog_playlists WHERE cover_url IS NOT NULL AND cover_url <> ''"
    ).fetchone()[0]
    checked = set(types_checked()) if types_checked else set()
    check_types(db, [table for table in TYPE_SCANNED if table not in checked])
    report("checks", 6, steps)
    return stats


def check_types(db: Database, tables: Sequence[str]) -> None:
    """Check the declared types of the given read-model tables (``db``'s main schema, ``src`` attached).

    One scan per table; a hit is traced back to its source row.

    Raises:
        SourceError: naming the source table, column and row of a wrong-typed value.
    """
    for table in tables:
        typed = TYPED_COLUMNS.get(table)
        if not typed:
            continue
        columns = list(typed)
        flags = ", ".join(bad_type(c, typed[c]) for c in columns)
        row = db.execute(
            f"SELECT {flags} FROM [{table}] WHERE {' OR '.join(bad_type(c, typed[c]) for c in columns)} LIMIT 1"
        ).fetchone()
        if row is not None:
            raise_type(db, f"{table}.{columns[list(row).index(1)]}")


def check_text(db: Database | sqlite3.Connection, tables: Collection[str]) -> None:
    """Check that every text value of the given read-model tables (``db``'s main schema) is valid UTF-8.

    SQLite copies invalid bytes silently; this is where they are caught.

    Raises:
        SourceError: naming the source table, column and row.
    """
    for table in TABLES:
        if not table.text_columns or table.name not in tables:
            continue
        found, _ = find_invalid_utf8(db, f"[{table.name}]", table.key[0], table.text_columns)
        if found is not None:
            ident, column = found
            source_table, source_column = column_origin(table.name, column)
            raise SourceError(
                f"invalid UTF-8 in {source_table}.{source_column} ({row_label(table.name)} {ident})",
                table=source_table,
                column=source_column,
                row=ident,
            )


def check_text_file(path: Path, tables: Collection[str]) -> None:
    """Run :func:`check_text` on a finished read-model file through its own read-only connection.

    Its own connection lets checks of different tables run side by side, and
    beside the hashing of the same file.
    """
    conn = sqlite3.connect(readonly_uri(path), uri=True, check_same_thread=False)
    try:
        check_text(conn, tables)
    finally:
        conn.close()
