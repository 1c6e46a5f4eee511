"""The read model ``catalog_read.db``: its tables, their keys, and how each is filled.

Every table is keyed by its natural key and filled in full key order inside
one write transaction on a fresh file, so the same logical catalog gives the
same bytes whatever the source's physical layout (see docs/export.md). Key
columns come first, in key order: SQLite 3.40's ``quick_check`` misreports
WITHOUT ROWID tables declared otherwise.

The statements read the source through the schema name ``src`` (attached
read-only by :mod:`snapbuild.source`), and the whole build runs in one
transaction, so every table sees the same point in time.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlite_utils import Database

from .errors import SourceError

SCHEMA_VERSION = 1

#: Name of the SQL function that percent-encodes a locator's path segments.
QUOTE_FUNCTION = "snapbuild_quote_path"

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class ReadTable:
    """One read-model table: its DDL, key and the source table its rows come from."""

    name: str
    key: tuple[str, ...]
    ddl: str
    source: str
    #: Text columns checked for valid UTF-8 after the build (source.check_utf8).
    text_columns: tuple[str, ...]


TABLES: tuple[ReadTable, ...] = (
    ReadTable(
        "catalog_playlists",
        ("playlist_id",),
        """CREATE TABLE catalog_playlists (
    playlist_id INTEGER PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL,
    remote_playlist_id TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    cover_url TEXT,
    play_count INTEGER NOT NULL,
    song_count INTEGER NOT NULL
)""",
        "playlists",
        ("platform", "remote_playlist_id", "name", "description", "cover_url"),
    ),
    ReadTable(
        "catalog_tracks",
        ("song_id",),
        """CREATE TABLE catalog_tracks (
    song_id INTEGER PRIMARY KEY NOT NULL,
    platform TEXT NOT NULL,
    remote_song_id TEXT NOT NULL,
    name TEXT NOT NULL,
    singers TEXT,
    ext TEXT,
    file_size_bytes INTEGER,
    metadata_json TEXT
)""",
        "songs",
        ("platform", "remote_song_id", "name", "singers", "ext", "metadata_json"),
    ),
    ReadTable(
        "catalog_playlist_tracks",
        ("playlist_id", "position", "song_id"),
        """CREATE TABLE catalog_playlist_tracks (
    playlist_id INTEGER NOT NULL,
    position INTEGER NOT NULL,
    song_id INTEGER NOT NULL,
    PRIMARY KEY (playlist_id, position, song_id)
) WITHOUT ROWID""",
        "playlist_songs",
        (),
    ),
    ReadTable(
        "catalog_track_files",
        ("location_id",),
        """CREATE TABLE catalog_track_files (
    location_id INTEGER PRIMARY KEY NOT NULL,
    song_id INTEGER NOT NULL,
    quality_label TEXT,
    ext TEXT,
    file_size_bytes INTEGER,
    backend_type TEXT NOT NULL,
    backend_name TEXT NOT NULL,
    locator TEXT NOT NULL,
    public_url TEXT,
    status TEXT NOT NULL,
    is_primary INTEGER NOT NULL
)""",
        "file_locations",
        # backend_type / backend_name come from the few storage_backends rows and
        # are checked there; public_url is ASCII by construction; status is 'active'.
        ("quality_label", "ext", "locator"),
    ),
    ReadTable(
        "catalog_toplists",
        ("toplist_id", "playlist_id"),
        """CREATE TABLE catalog_toplists (
    toplist_id TEXT NOT NULL,
    playlist_id INTEGER NOT NULL,
    platform TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    cover_url TEXT,
    play_count INTEGER NOT NULL,
    song_count INTEGER NOT NULL,
    group_name TEXT NOT NULL,
    PRIMARY KEY (toplist_id, playlist_id)
) WITHOUT ROWID""",
        "pool_playlists",
        # Copies of catalog_playlists' text and of the few playlist_pools rows,
        # which are checked there.
        (),
    ),
)

TABLE_NAMES: tuple[str, ...] = tuple(table.name for table in TABLES)

#: The declared type of every read-model column that takes values as they are
#: (ids are keys or references: a non-integer reference counts as missing).
#: Checked once per build, not per inserted row (a CHECK per column cost 0.1x to
#: 0.25x of the C floor): at the source by the side reader, else in the read model.
TYPED_COLUMNS: dict[str, dict[str, str]] = {
    table.name: {
        column: declared
        for column, declared in re.findall(r"^\s+(\w+) (INTEGER|TEXT)\b", table.ddl, re.MULTILINE)
        if column not in ("playlist_id", "song_id", "location_id")
    }
    for table in TABLES
}

#: The tables whose types check_types scans. catalog_toplists copies
#: catalog_playlists' values, and its own two come from the few
#: playlist_pools rows, checked at the source when it is filled.
TYPE_SCANNED: tuple[str, ...] = ("catalog_playlists", "catalog_tracks", "catalog_playlist_tracks", "catalog_track_files")

#: (table, index name, columns): the lookups consumers need beyond the keys.
#: Tracks of a playlist in order is the key of catalog_playlist_tracks itself.
INDEXES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("catalog_track_files", "idx_catalog_track_files_song_id", ("song_id",)),
)

# Rowid tables whose key is the source's INTEGER PRIMARY KEY come out in key
# order from a plain rowid scan; the link tables are scattered in the source,
# so ``+col`` stops SQLite from walking an index and makes it sort instead.
INSERT_PLAYLISTS = """INSERT INTO catalog_playlists
    (playlist_id, platform, remote_playlist_id, name, description, cover_url, play_count, song_count)
SELECT id, platform, remote_playlist_id, name, description, cover_url,
       coalesce(play_count, 0), coalesce(collected_song_count, 0)
FROM src.playlists
ORDER BY id"""

INSERT_TRACKS = """INSERT INTO catalog_tracks
    (song_id, platform, remote_song_id, name, singers, ext, file_size_bytes, metadata_json)
SELECT id, platform, remote_song_id, name, singers, ext, file_size_bytes, metadata_json
FROM src.songs
ORDER BY id"""

INSERT_PLAYLIST_TRACKS = """INSERT {conflict}INTO catalog_playlist_tracks (playlist_id, position, song_id)
SELECT playlist_id, position, song_id
FROM src.playlist_songs
ORDER BY +playlist_id, +position, +song_id"""

#: The percent-encoded path of a locator, computed in SQL through quote_path (as
#: bytes, so invalid UTF-8 cannot break it: the UTF-8 check reports it). Deciding
#: in SQL which locators need no encoding costs more than the call it saves.
QUOTED_PATH = f"{QUOTE_FUNCTION}(CAST(ltrim(fl.locator, '/') AS BLOB))"

# The backends are few: materialize them once so the JSON is parsed per backend, not per file.
_BACKENDS_CTE = """WITH sb AS MATERIALIZED (
    SELECT id, name, backend_type,
           CASE WHEN backend_type = 'object_storage'
                THEN rtrim(json_extract(config_json, '$.public_base_url'), '/') || '/' END AS url_prefix
    FROM src.storage_backends
)"""



def insert_track_files_sql(*, conflict: str = "", join: str = "LEFT", path: str = QUOTED_PATH,
                           side_paths: bool = False) -> str:
    """The INSERT ... SELECT of catalog_track_files.

    Args:
        conflict: "" or "OR IGNORE ".
        join: "LEFT" (a dangling reference surfaces as a NULL the table
            refuses) or "" (inner joins: dangling rows are left out).
        path: the SQL expression for a locator's encoded path.
        side_paths: take the encoded paths from ``side.public_paths``, computed
            beside the build (see source.SideReader), ``path`` only where missing.
    """
    if side_paths:
        path = f"coalesce(pp.path, {path})"
    paths_join = "LEFT JOIN side.public_paths AS pp ON pp.location_id = fl.id" if side_paths else ""
    return f"""INSERT {conflict}INTO catalog_track_files
    (location_id, song_id, quality_label, ext, file_size_bytes, backend_type, backend_name,
     locator, public_url, status, is_primary)
{_BACKENDS_CTE}
SELECT fl.id, fa.song_id, fa.quality_label, fa.ext, fa.file_size_bytes, sb.backend_type, sb.name,
       fl.locator,
       CASE WHEN sb.url_prefix IS NULL OR fl.locator IS NULL THEN NULL ELSE sb.url_prefix || {path} END,
       fl.status, fl.is_primary
FROM src.file_locations AS fl
{join} JOIN src.file_assets AS fa ON fa.id = fl.file_asset_id
{join} JOIN sb ON sb.id = fl.backend_id
{paths_join}
WHERE fl.status = 'active'
ORDER BY fl.id"""


INSERT_TOPLISTS = """INSERT OR IGNORE INTO catalog_toplists
    (toplist_id, playlist_id, platform, name, description, cover_url, play_count, song_count, group_name)
SELECT pp.external_id, p.playlist_id, p.platform, p.name, p.description, p.cover_url,
       p.play_count, p.song_count, pp.name
FROM src.pool_playlists AS rel
JOIN src.playlist_pools AS pp ON pp.id = rel.pool_id
JOIN main.catalog_playlists AS p ON p.playlist_id = rel.playlist_id
WHERE pp.pool_kind = 'toplist'
ORDER BY +pp.external_id, +p.playlist_id, +pp.id"""

_ACTIVE_ASSET = "id IN (SELECT file_asset_id FROM src.file_locations WHERE status = 'active')"

#: Where a value that a read-model column refuses (a NULL, a wrong type) comes
#: from: the source table, its column, and the condition that makes the row
#: part of the read model.
COLUMN_SOURCES: dict[str, tuple[str, str, str]] = {
    "catalog_playlists.description": ("playlists", "description", "1"),
    "catalog_playlists.cover_url": ("playlists", "cover_url", "1"),
    "catalog_playlists.play_count": ("playlists", "play_count", "1"),
    "catalog_playlists.song_count": ("playlists", "collected_song_count", "1"),
    "catalog_tracks.singers": ("songs", "singers", "1"),
    "catalog_tracks.ext": ("songs", "ext", "1"),
    "catalog_tracks.file_size_bytes": ("songs", "file_size_bytes", "1"),
    "catalog_tracks.metadata_json": ("songs", "metadata_json", "1"),
    "catalog_track_files.quality_label": ("file_assets", "quality_label", _ACTIVE_ASSET),
    "catalog_track_files.ext": ("file_assets", "ext", _ACTIVE_ASSET),
    "catalog_track_files.file_size_bytes": ("file_assets", "file_size_bytes", _ACTIVE_ASSET),
    "catalog_track_files.status": ("file_locations", "status", "status = 'active'"),
    "catalog_playlists.playlist_id": ("playlists", "id", "1"),
    "catalog_playlists.platform": ("playlists", "platform", "1"),
    "catalog_playlists.remote_playlist_id": ("playlists", "remote_playlist_id", "1"),
    "catalog_playlists.name": ("playlists", "name", "1"),
    "catalog_tracks.song_id": ("songs", "id", "1"),
    "catalog_tracks.platform": ("songs", "platform", "1"),
    "catalog_tracks.remote_song_id": ("songs", "remote_song_id", "1"),
    "catalog_tracks.name": ("songs", "name", "1"),
    "catalog_playlist_tracks.playlist_id": ("playlist_songs", "playlist_id", "1"),
    "catalog_playlist_tracks.position": ("playlist_songs", "position", "1"),
    "catalog_playlist_tracks.song_id": ("playlist_songs", "song_id", "1"),
    "catalog_track_files.location_id": ("file_locations", "id", "status = 'active'"),
    "catalog_track_files.locator": ("file_locations", "locator", "status = 'active'"),
    "catalog_track_files.is_primary": ("file_locations", "is_primary", "status = 'active'"),
    "catalog_track_files.song_id": ("file_assets", "song_id", _ACTIVE_ASSET),
    "catalog_track_files.backend_type": (
        "storage_backends",
        "backend_type",
        "id IN (SELECT backend_id FROM src.file_locations WHERE status = 'active')",
    ),
    "catalog_track_files.backend_name": (
        "storage_backends",
        "name",
        "id IN (SELECT backend_id FROM src.file_locations WHERE status = 'active')",
    ),
    "catalog_toplists.toplist_id": ("playlist_pools", "external_id", "pool_kind = 'toplist'"),
    "catalog_toplists.group_name": ("playlist_pools", "name", "pool_kind = 'toplist'"),
}


_LINK_TABLES = frozenset({"playlist_songs", "pool_playlists"})


# Unreserved characters (RFC 3986) and the segment separator stay; every other
# byte of the UTF-8 becomes %XX: what quote(segment, safe='') gives per segment.
_KEPT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/"
_ENCODED = [bytes([byte]) if byte in _KEPT else b"%%%02X" % byte for byte in range(256)]
# Directories repeat across files (platform/artist/album): encode each once.
_DIRECTORY_CACHE: dict[bytes, bytes] = {}
_DIRECTORY_CACHE_SIZE = 1 << 16


def quote_path(locator: bytes | str) -> str:
    """Percent-encode every path segment of a locator, keeping the ``/`` between them.

    Equal to ``urllib.parse.quote(locator, safe='/')`` (which is ``quote(seg,
    safe='')`` per segment, joined by ``/``), about three times as fast: a
    table lookup per byte inside one ``join`` in C, and each directory part
    encoded once. It runs once per object-storage file in the export.
    """
    raw = locator.encode("utf-8") if isinstance(locator, str) else locator
    head, slash, tail = raw.rpartition(b"/")
    encoded_head = _DIRECTORY_CACHE.get(head)
    if encoded_head is None:
        if len(_DIRECTORY_CACHE) >= _DIRECTORY_CACHE_SIZE:
            _DIRECTORY_CACHE.clear()
        encoded_head = _DIRECTORY_CACHE[head] = b"".join(map(_ENCODED.__getitem__, head))
    return (encoded_head + slash + b"".join(map(_ENCODED.__getitem__, tail))).decode("ascii")


def public_url(base_url: str, locator: str) -> str:
    """Join a public base URL and a locator with exactly one ``/``, segments percent-encoded.

    The Python twin of the SQL expression, for consumers and tests:
    ``public_url("https://cdn.example/music/", "a b/#1?.mp3")`` is
    ``"https://cdn.example/music/a%20b/%231%3F.mp3"``.
    """
    return base_url.rstrip("/") + "/" + quote_path(locator.lstrip("/"))


@dataclass
class BuildStats:
    """What a build wrote: rows per table, repairs applied, and the plan's counts."""

    table_counts: dict[str, int] = field(default_factory=dict)
    repairs: dict[str, int] = field(default_factory=dict)
    cover_count: int = 0
    #: Read-model tables whose text was already checked for UTF-8 (at the source).
    utf8_checked: tuple[str, ...] = ()

    def repair(self, name: str, count: int) -> None:
        """Record ``count`` applications of the documented repair ``name`` (zero is not recorded)."""
        if count:
            self.repairs[name] = self.repairs.get(name, 0) + count


def _constraint(error: sqlite3.IntegrityError) -> tuple[str, str]:
    """Split 'NOT NULL constraint failed: t.c' into ('NOT NULL', 't.c')."""
    text = str(error)
    kind, _, where = text.partition(" constraint failed: ")
    return kind.strip(), where.split(",")[0].strip()


def _first_bad_source_row(db: Database, where: str, bad: str) -> tuple[str, str, str, tuple] | None:
    """The first source row feeding read-model column ``where`` that matches ``bad``.

    ``bad`` is an SQL condition with ``{col}`` standing for the source column.
    Returns ``(table, column, ident, row)`` where ``row`` is ``(id, typeof(col))``
    and ``ident`` names how the row is identified, or None.
    """
    table, column, condition = COLUMN_SOURCES.get(where, ("", "", ""))
    if not table:
        return None
    # Entity tables name a row by its id; the link tables have none, so by rowid.
    ident = "rowid" if table in _LINK_TABLES else "id"
    col = f"[{column}]"
    row = db.execute(
        f"SELECT {ident}, typeof({col}) FROM src.[{table}] WHERE {bad.format(col=col)} AND ({condition}) "
        f"ORDER BY {ident} LIMIT 1"
    ).fetchone()
    return None if row is None else (table, column, ident, row)


def _raise_null(db: Database, where: str) -> None:
    """Name the first source row whose NULL broke the read-model column ``where``."""
    found = _first_bad_source_row(db, where, "{col} IS NULL")
    if found is not None:
        table, column, ident, row = found
        raise SourceError(
            f"NULL in {table}.{column} ({ident} {row[0]}): {where} needs a value",
            table=table,
            column=column,
            row=row[0],
        )
    raise SourceError(f"the source holds a NULL where {where} needs a value")


def _raise_type(db: Database, where: str) -> None:
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
    found = _first_bad_source_row(db, where, bad)
    if found is not None:
        table, column, ident, row = found
        raise SourceError(
            f"wrong type in {table}.{column} ({ident} {row[0]}): a {row[1]} value where {where} needs {wants}",
            table=table,
            column=column,
            row=row[0],
        )
    raise SourceError(f"the source holds a value of the wrong type where {where} needs {wants}")


def _check_type(db: Database, where: str) -> None:
    """Raise if a source value would reach ``where`` with the wrong type (checked at the source)."""
    try:
        _raise_type(db, where)
    except SourceError as error:
        if error.table is not None:
            raise


def _bad_type(column: str, declared: str) -> str:
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
        parts.setdefault(source, []).append(_bad_type(source_column, declared))
        conditions[source] = "1" if "SELECT" in condition else condition
    return {
        source: f"({conditions[source]}) AND ({' OR '.join(bad)})"
        for source, bad in parts.items()
    }


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
        flags = ", ".join(_bad_type(c, typed[c]) for c in columns)
        row = db.execute(
            f"SELECT {flags} FROM [{table}] WHERE {' OR '.join(_bad_type(c, typed[c]) for c in columns)} LIMIT 1"
        ).fetchone()
        if row is not None:
            _raise_type(db, f"{table}.{columns[list(row).index(1)]}")


def _raise_duplicate_id(db: Database, table: str) -> None:
    """Name a source id that appears twice in an entity table (a source without a primary key)."""
    row = db.execute(
        f"SELECT id FROM src.[{table}] GROUP BY id HAVING count(*) > 1 ORDER BY id LIMIT 1"
    ).fetchone()
    ident = row[0] if row else "?"
    raise SourceError(
        f"duplicate id in {table}.id (id {ident}): ids must be unique",
        table=table,
        column="id",
        row=ident,
    )


def _raise_id_problem(db: Database, source: str, kind: str, error: sqlite3.Error) -> None:
    """Explain a key failure in an entity table: a repeated id, or an id that is not an integer."""
    if kind in ("UNIQUE", "PRIMARY KEY"):
        _raise_duplicate_id(db, source)
    row = db.execute(
        f"SELECT id FROM src.[{source}] WHERE typeof(id) <> 'integer' ORDER BY rowid LIMIT 1"
    ).fetchone()
    raise SourceError(
        f"{source}.id must be an integer" + (f" (found {row[0]!r})" if row else f": {error}"),
        table=source,
        column="id",
        row=row[0] if row else None,
    )


def _insert_entities(db: Database, sql: str, source: str) -> int:
    """Insert an entity table (playlists or tracks); NULLs and duplicate ids are errors."""
    try:
        return db.execute(sql).rowcount
    except sqlite3.IntegrityError as error:
        kind, where = _constraint(error)
        if kind == "NOT NULL":
            _raise_null(db, where)
        _raise_id_problem(db, source, kind, error)
    raise AssertionError("unreachable")  # pragma: no cover


def _insert_playlist_tracks(db: Database, stats: BuildStats) -> int:
    """Insert the playlist rows; exact duplicate rows are dropped and counted."""
    try:
        return db.execute(INSERT_PLAYLIST_TRACKS.format(conflict="")).rowcount
    except sqlite3.IntegrityError as error:
        kind, where = _constraint(error)
        if kind == "NOT NULL":
            _raise_null(db, where)
    # Duplicate rows (the statement was rolled back). Rule out NULLs first,
    # since OR IGNORE would skip them silently, then count what it drops.
    for column in ("playlist_id", "position", "song_id"):
        _check_no_null(db, f"catalog_playlist_tracks.{column}")
    inserted = db.execute(INSERT_PLAYLIST_TRACKS.format(conflict="OR IGNORE ")).rowcount
    total = db.execute("SELECT count(*) FROM src.playlist_songs").fetchone()[0]
    stats.repair("playlist_tracks_duplicate_rows", total - inserted)
    return inserted


def _check_no_null(db: Database, where: str) -> None:
    table, column, condition = COLUMN_SOURCES[where]
    row = db.execute(
        f"SELECT 1 FROM src.[{table}] WHERE [{column}] IS NULL AND ({condition}) LIMIT 1"
    ).fetchone()
    if row is not None:
        _raise_null(db, where)


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
        """An SQL condition, true when ``column`` (never NULL) names no row of the table."""
        name = self.table
        # A value that is not an integer (text, a fraction, a blob) names no row.
        not_an_id = f"{column} <> CAST({column} AS INTEGER)"  # cheaper than typeof() per row
        if self._mode == "range":
            return f"({not_an_id} OR {column} NOT BETWEEN :{name}_low AND :{name}_high)"
        if self._mode == "map":
            # The low test first: substr() counts a negative start from the end
            # (past the end it gives '', which is "missing" as it should be).
            return (
                f"({not_an_id} OR {column} < :{name}_low OR "
                f"substr(:{name}_map, {column} - :{name}_low + 1, 1) IS NOT x'01')"
            )
        return f"({not_an_id} OR {column} NOT IN (SELECT +{self.key} FROM {name}))"


def _position_pairs(db: Database) -> int:
    """Distinct (playlist_id, position) pairs: a streaming pass, the key's prefix gives the order."""
    return db.execute(
        "SELECT count(*) FROM (SELECT DISTINCT playlist_id, position FROM catalog_playlist_tracks)"
    ).fetchone()[0]


def _check_playlist_tracks(db: Database, stats: BuildStats, inserted: int) -> int:
    """Drop playlist rows whose playlist or track is missing, count position ties; return the rows kept."""
    playlists = _IdSet(db, "catalog_playlists", "playlist_id")
    songs = _IdSet(db, "catalog_tracks", "song_id")
    no_playlist, no_song = playlists.missing("playlist_id"), songs.missing("song_id")
    dangling = db.execute(
        f"SELECT count(*) FROM catalog_playlist_tracks WHERE {no_playlist} OR {no_song}",
        {**playlists.params, **songs.params},
    ).fetchone()[0]
    if dangling:
        dropped_playlist = db.execute(
            f"DELETE FROM catalog_playlist_tracks WHERE {no_playlist}", playlists.params
        ).rowcount
        dropped_song = db.execute(f"DELETE FROM catalog_playlist_tracks WHERE {no_song}", songs.params).rowcount
        stats.repair("playlist_tracks_missing_playlist", dropped_playlist)
        stats.repair("playlist_tracks_missing_song", dropped_song)
        inserted -= dropped_playlist + dropped_song
    # Two songs at one position stay, ordered by song_id (the key's last column); count them.
    stats.repair("playlist_position_ties", inserted - _position_pairs(db))
    return inserted


def _insert_track_files(db: Database, stats: BuildStats, side_paths: bool) -> int:
    """Insert the active file locations; ones whose asset, backend or track is missing are dropped and counted."""
    try:
        # LEFT JOINs: a dangling reference shows up as a NULL the table refuses,
        # so the common, clean case needs no extra pass over the source.
        inserted = db.execute(insert_track_files_sql(side_paths=side_paths)).rowcount
    except sqlite3.IntegrityError as error:
        kind, where = _constraint(error)
        if kind != "NOT NULL":
            _raise_id_problem(db, "file_locations", kind, error)
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
            _raise_null(db, where)
        for column in ("location_id", "locator", "is_primary", "song_id", "backend_type", "backend_name"):
            _check_no_null(db, f"catalog_track_files.{column}")
        inserted = db.execute(insert_track_files_sql(join="", side_paths=side_paths)).rowcount
        stats.repair("track_files_missing_asset", no_asset)
        stats.repair("track_files_missing_backend", no_backend)
    songs = _IdSet(db, "catalog_tracks", "song_id")
    missing_song = songs.missing("song_id")
    if db.execute(f"SELECT 1 FROM catalog_track_files WHERE {missing_song} LIMIT 1", songs.params).fetchone():
        dropped = db.execute(f"DELETE FROM catalog_track_files WHERE {missing_song}", songs.params).rowcount
        stats.repair("track_files_missing_song", dropped)
        inserted -= dropped
    return inserted


def _insert_toplists(db: Database, stats: BuildStats) -> int:
    """Insert the toplist rows; pool rows naming a missing playlist, or repeated, are dropped and counted."""
    for column in ("toplist_id", "group_name"):
        _check_no_null(db, f"catalog_toplists.{column}")
        _check_type(db, f"catalog_toplists.{column}")
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
    side_paths: Callable[[], bool] | None = None,
    side_types: Callable[[], Sequence[str]] | None = None,
) -> BuildStats:
    """Create and fill the read model in ``db`` (main schema) from ``src``; the caller owns the transaction.

    ``side_paths``, when given, is called right before the files are inserted;
    True means ``side.public_paths`` holds the encoded paths of this point in
    time (computed beside the build), False that quote_path must do them here.
    ``side_types``, when given, is called once the tables are filled and
    names the tables whose types were checked at the source (beside the
    build); the others of TYPE_SCANNED are checked here, in the read model.

    Raises:
        SourceError: the source holds something the read model cannot take
            and no documented repair applies (NULLs, wrong types, duplicate ids).
    """
    report = progress or (lambda stage, done, total: None)
    steps = len(TABLES) + 2
    stats = BuildStats()
    # Registered on the connection directly: sqlite-utils would wrap it in one more Python frame per row.
    db.conn.create_function(QUOTE_FUNCTION, 1, quote_path, deterministic=True)
    for table in TABLES:
        db.execute(table.ddl)
    counts = stats.table_counts
    report("catalog_playlists", 0, steps)
    counts["catalog_playlists"] = _insert_entities(db, INSERT_PLAYLISTS, "playlists")
    report("catalog_tracks", 1, steps)
    counts["catalog_tracks"] = _insert_entities(db, INSERT_TRACKS, "songs")
    report("catalog_playlist_tracks", 2, steps)
    counts["catalog_playlist_tracks"] = _check_playlist_tracks(db, stats, _insert_playlist_tracks(db, stats))
    report("catalog_track_files", 3, steps)
    counts["catalog_track_files"] = _insert_track_files(db, stats, side_paths() if side_paths else False)
    report("catalog_toplists", 4, steps)
    counts["catalog_toplists"] = _insert_toplists(db, stats)
    report("indexes", 5, steps)
    for table_name, index_name, columns in INDEXES:
        db.table(table_name).create_index(list(columns), index_name=index_name)
    stats.cover_count = db.execute(
        "SELECT count(*) FROM catalog_playlists WHERE cover_url IS NOT NULL AND cover_url <> ''"
    ).fetchone()[0]
    checked = set(side_types()) if side_types else set()
    check_types(db, [table for table in TYPE_SCANNED if table not in checked])
    report("checks", 6, steps)
    return stats
