"""Row-level differences between two snapshot databases, per table, matched by each table's key.

Both databases are attached to one in-memory connection and compared in SQL:
one LEFT JOIN pass from the new table into the old one's primary key counts
added and changed rows; removed rows follow from the counts
(``removed = old rows - matched rows``, the keys being unique); the examples
are the first few keys in key order, found by queries that stop early. So a
diff of two million-row snapshots costs a few index-driven scans, never a
load into Python.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DatabaseError
from .sqlite import TableShape, attach_snapshot, decode_text, quote_identifier, table_shapes

__all__ = ["SnapshotDiff", "TableDiff", "diff_databases"]

_OLD, _NEW = "old_snapshot", "new_snapshot"


@dataclass(frozen=True)
class TableDiff:
    """One table's differences: counts, and the keys of the first few rows of each kind (in key order).

    Each example is a mapping of key column to value, e.g. ``{"song_id": 10}``.
    ``changed_columns`` goes with ``changed_examples``, one entry per
    example: each column that differs, with its old and new value, e.g.
    ``{"name": ("old name", "new name")}``. ``columns_added`` /
    ``columns_removed`` are non-empty only when the table's columns changed;
    rows are then compared on the common columns.
    """

    key: tuple[str, ...]
    added: int = 0
    removed: int = 0
    changed: int = 0
    added_examples: tuple[dict[str, Any], ...] = ()
    removed_examples: tuple[dict[str, Any], ...] = ()
    changed_examples: tuple[dict[str, Any], ...] = ()
    changed_columns: tuple[dict[str, tuple[Any, Any]], ...] = ()
    columns_added: tuple[str, ...] = ()
    columns_removed: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True when nothing differs in this table."""
        return not (self.added or self.removed or self.changed or self.columns_added or self.columns_removed)

    def to_dict(self) -> dict[str, Any]:
        """The table's entry in :meth:`SnapshotDiff.to_dict`.

        ``changes`` lists the changed examples again, each as ``{"key": {...},
        "columns": {COLUMN: {"old": V, "new": V}}}`` (a blob as ``"x'hex'"``).
        """
        data: dict[str, Any] = {
            "key": list(self.key),
            "added": self.added,
            "removed": self.removed,
            "changed": self.changed,
            "examples": {
                "added": [dict(example) for example in self.added_examples],
                "removed": [dict(example) for example in self.removed_examples],
                "changed": [dict(example) for example in self.changed_examples],
            },
            "changes": [
                {
                    "key": dict(example),
                    "columns": {
                        column: {"old": _json_value(old), "new": _json_value(new)}
                        for column, (old, new) in columns.items()
                    },
                }
                for example, columns in zip(self.changed_examples, self.changed_columns)
            ],
        }
        if self.columns_added or self.columns_removed:
            data["columns"] = {"added": list(self.columns_added), "removed": list(self.columns_removed)}
        return data


@dataclass(frozen=True)
class SnapshotDiff:
    """Differences between two snapshots, table by table (every table of either side, in name order)."""

    from_id: str | None
    to_id: str | None
    tables: dict[str, TableDiff] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        """True when the two snapshots hold the same rows."""
        return all(table.is_empty for table in self.tables.values())

    def to_dict(self) -> dict[str, Any]:
        """``{"from": ID, "to": ID, "tables": {TABLE: {"added": N, "removed": N, "changed": N, "examples": {...}}}}``."""
        return {
            "from": self.from_id,
            "to": self.to_id,
            "tables": {name: table.to_dict() for name, table in self.tables.items()},
        }


def _json_value(value: Any) -> Any:
    """A column value for JSON: a blob as an SQL blob literal, anything else as it is."""
    return f"x'{value.hex()}'" if isinstance(value, bytes) else value


def _keys(rows: list[tuple[Any, ...]], key: tuple[str, ...]) -> tuple[dict[str, Any], ...]:
    return tuple(dict(zip(key, row)) for row in rows)


def _whole_table(conn: sqlite3.Connection, schema: str, shape: TableShape, examples: int) -> tuple[int, tuple[dict[str, Any], ...]]:
    """Row count and first keys of a table present on one side only."""
    table = f"{schema}.{quote_identifier(shape.name)}"
    key_list = ", ".join(quote_identifier(column) for column in shape.key)
    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    first = conn.execute(f"SELECT {key_list} FROM {table} ORDER BY {key_list} LIMIT ?", (examples,)).fetchall()
    return count, _keys(first, shape.key)


def _compare(conn: sqlite3.Connection, old: TableShape, new: TableShape, examples: int) -> TableDiff:
    """Compare one table present on both sides, by the new side's key."""
    old_table = f"{_OLD}.{quote_identifier(old.name)}"
    new_table = f"{_NEW}.{quote_identifier(new.name)}"
    key = new.key
    if not set(key) <= set(old.columns):
        # The key itself changed: no row can be matched, so everything was replaced.
        removed, removed_examples = _whole_table(conn, _OLD, old, examples)
        added, added_examples = _whole_table(conn, _NEW, new, examples)
        return TableDiff(
            key, added=added, removed=removed, added_examples=added_examples, removed_examples=removed_examples,
            columns_added=tuple(c for c in new.columns if c not in old.columns),
            columns_removed=tuple(c for c in old.columns if c not in new.columns),
        )
    join = " AND ".join(f"o.{quote_identifier(c)} IS n.{quote_identifier(c)}" for c in key)
    common = [c for c in new.value_columns if c in old.columns]
    differs = " OR ".join(f"o.{quote_identifier(c)} IS NOT n.{quote_identifier(c)}" for c in common) or "0"
    new_keys = ", ".join(f"n.{quote_identifier(c)}" for c in key)
    old_keys = ", ".join(f"o.{quote_identifier(c)}" for c in key)
    probe = f"o.{quote_identifier(key[0])}"

    # LEFT JOIN drives from the new table in its key order and probes the old one's key index.
    added, changed, new_count = conn.execute(
        f"SELECT coalesce(sum({probe} IS NULL), 0), coalesce(sum({probe} IS NOT NULL AND ({differs})), 0), count(*) "
        f"FROM {new_table} AS n LEFT JOIN {old_table} AS o ON {join}"
    ).fetchone()
    old_count = conn.execute(f"SELECT count(*) FROM {old_table}").fetchone()[0]
    removed = old_count - (new_count - added)

    def first(sql: str, wanted: int) -> tuple[dict[str, Any], ...]:
        if not wanted:
            return ()
        return _keys(conn.execute(sql + " LIMIT ?", (examples,)).fetchall(), key)

    added_examples = first(
        f"SELECT {new_keys} FROM {new_table} AS n WHERE NOT EXISTS (SELECT 1 FROM {old_table} AS o WHERE {join}) "
        f"ORDER BY {new_keys}",
        added,
    )
    removed_examples = first(
        f"SELECT {old_keys} FROM {old_table} AS o WHERE NOT EXISTS (SELECT 1 FROM {new_table} AS n WHERE {join}) "
        f"ORDER BY {old_keys}",
        removed,
    )
    changed_examples, changed_columns = _changed_examples(conn, new_table, old_table, key, common, examples, changed)
    return TableDiff(
        key, added=added, removed=removed, changed=changed,
        added_examples=added_examples, removed_examples=removed_examples, changed_examples=changed_examples,
        changed_columns=changed_columns,
        columns_added=tuple(c for c in new.columns if c not in old.columns),
        columns_removed=tuple(c for c in old.columns if c not in new.columns),
    )


def _changed_examples(
    conn: sqlite3.Connection, new_table: str, old_table: str, key: tuple[str, ...], common: list[str],
    examples: int, changed: int,
) -> tuple[tuple[dict[str, Any], ...], tuple[dict[str, tuple[Any, Any]], ...]]:
    """The first changed rows' keys, and for each the columns that differ with their old and new values.

    Which columns differ is decided in SQL (``IS NOT``, as the count was), so
    Python's idea of equality never disagrees with SQLite's.
    """
    if not (changed and examples and common):
        return (), ()
    q = quote_identifier
    join = " AND ".join(f"o.{q(c)} IS n.{q(c)}" for c in key)
    flags = ", ".join(f"o.{q(c)} IS NOT n.{q(c)}" for c in common)
    values = ", ".join(f"o.{q(c)}, n.{q(c)}" for c in common)
    new_keys = ", ".join(f"n.{q(c)}" for c in key)
    differs = " OR ".join(f"o.{q(c)} IS NOT n.{q(c)}" for c in common)
    rows = conn.execute(
        f"SELECT {new_keys}, {flags}, {values} FROM {new_table} AS n JOIN {old_table} AS o ON {join} "
        f"WHERE {differs} ORDER BY {new_keys} LIMIT ?",
        (examples,),
    ).fetchall()
    keys, columns = [], []
    width = len(key)
    for row in rows:
        keys.append(dict(zip(key, row[:width])))
        flagged = row[width:width + len(common)]
        pairs = row[width + len(common):]
        columns.append(
            {column: (pairs[2 * i], pairs[2 * i + 1]) for i, column in enumerate(common) if flagged[i]}
        )
    return tuple(keys), tuple(columns)


def diff_databases(
    old_db: str | os.PathLike[str],
    new_db: str | os.PathLike[str],
    *,
    examples: int = 5,
    from_id: str | None = None,
    to_id: str | None = None,
) -> SnapshotDiff:
    """Compare two snapshot databases table by table, matching rows by each table's key.

    A row is *added* if its key is only in ``new_db``, *removed* if only in
    ``old_db``, *changed* if the key is in both and any other common column
    differs (NULL-aware). Tables present on one side only count all their
    rows as added or removed. Keys come from ``pragma table_info`` (the
    primary key; all columns for a table without one).

    Args:
        old_db: the earlier snapshot's ``catalog_read.db``.
        new_db: the later one.
        examples: how many keys of each kind to report per table.
        from_id: the earlier snapshot's id (from its manifest), reported as ``from``.
        to_id: the later snapshot's id, reported as ``to``.

    Raises:
        DatabaseError: a file is missing or is not a SQLite database.
    """
    # A URI connection, so that ATTACH honours the file: URIs (read-only, immutable).
    conn = sqlite3.connect("file::memory:", uri=True, isolation_level=None)
    conn.text_factory = decode_text
    try:
        attach_snapshot(conn, Path(old_db), _OLD)
        attach_snapshot(conn, Path(new_db), _NEW)
        # One read transaction: both files are read at one point in time.
        conn.execute("BEGIN")
        try:
            old_shapes = table_shapes(conn, _OLD)
            new_shapes = table_shapes(conn, _NEW)
            tables: dict[str, TableDiff] = {}
            for name in sorted(set(old_shapes) | set(new_shapes)):
                old, new = old_shapes.get(name), new_shapes.get(name)
                if old is not None and new is not None:
                    tables[name] = _compare(conn, old, new, examples)
                elif new is not None:
                    added, added_examples = _whole_table(conn, _NEW, new, examples)
                    tables[name] = TableDiff(new.key, added=added, added_examples=added_examples)
                elif old is not None:
                    removed, removed_examples = _whole_table(conn, _OLD, old, examples)
                    tables[name] = TableDiff(old.key, removed=removed, removed_examples=removed_examples)
        except sqlite3.DatabaseError as error:
            raise DatabaseError(f"cannot compare {old_db} and {new_db}: {error}") from error
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()
    return SnapshotDiff(from_id, to_id, tables)

