"""The snapshot manifest: what a consumer needs to identify and trust a ``catalog_read.db``.

``manifest.json`` sits beside ``catalog_read.db``. Its first seven fields
are the contract every consumer relies on; the rest lets a consumer check
the database (``db_sha256``, ``table_counts``, ``sqlite_version``) and lets
the exporter and the git history tell whether the content changed
(``content_digest``). A committed manifest of the split layout also lists the
pieces (``part_size``, ``parts``). This module is the one place that names the
snapshot's files (with ``assemble.py``, which consumers run without
snapbuild), formats its timestamps and parses a manifest.
"""

from __future__ import annotations

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

# The file names and the pieces' format are stated once, in the standard-library assembler
# (it must run without snapbuild); the manifest re-exports the names for the modules above it.
from .assemble import DB_NAME, MANIFEST_NAME, LayoutError, Piece, layout_of  # noqa: F401
from .errors import ManifestError, UsageError

#: The manifest an export wrote but has not yet renamed into place (see export.py).
PENDING_MANIFEST_NAME = ".manifest.json.pending"

#: ``generated_at``: ISO 8601, UTC, whole seconds, ``Z``.
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

#: The manifest's count fields and the read-model table each one counts (``cover_count`` counts
#: playlists with a cover, not a table).
COUNTED_TABLES = {
    "playlist_count": "catalog_playlists",
    "track_count": "catalog_tracks",
    "file_count": "catalog_track_files",
}
#: The count fields in the order summaries name them.
COUNT_FIELDS = ("track_count", "playlist_count", "file_count", "cover_count")

# Header bytes 96..99 hold SQLITE_VERSION_NUMBER of the library that last wrote
# the file: the content digest skips them so that a SQLite patch upgrade that
# writes the same pages does not give the same rows a new snapshot id.
_VERSION_NUMBER_SPAN = (96, 100)
_CONTENT_DOMAIN = b"snapbuild read model\x00"
_CHUNK = 1 << 20

_INT_FIELDS = ("schema_version", "playlist_count", "track_count", "file_count", "cover_count")
_STR_FIELDS = ("snapshot_id", "generated_at")
_OPTIONAL_STR_FIELDS = ("db_sha256", "content_digest", "sqlite_version")
_COUNT_MAP_FIELDS = ("table_counts", "repairs")
# The split layout's fields: in a committed manifest only, and only when the database is stored as pieces.
_LAYOUT_FIELDS = ("part_size", "parts")
# A snapshot id is also a git tag name: keep it to characters every ref store accepts.
_SNAPSHOT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def format_timestamp(value: str | datetime) -> str:
    """Normalize a timestamp to the manifest's form, ``2026-04-19T08:00:00Z``.

    Raises:
        UsageError: the value is not an ISO 8601 timestamp with a time zone.
    """
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(
                f"generated_at is not an ISO 8601 timestamp: {value!r}", argument="generated_at"
            ) from None
    elif isinstance(value, datetime):
        moment = value
    else:
        raise UsageError(
            f"generated_at must be a string or datetime, not {type(value).__name__}", argument="generated_at"
        )
    if moment.tzinfo is None:
        raise UsageError(
            f"generated_at needs a time zone (e.g. 2026-04-19T08:00:00Z): {value!r}", argument="generated_at"
        )
    return moment.astimezone(timezone.utc).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    """The UTC moment a manifest's ``generated_at`` names.

    Raises:
        ManifestError: the text is not ``YYYY-MM-DDTHH:MM:SSZ``.
    """
    try:
        return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=timezone.utc)
    except (TypeError, ValueError):
        raise ManifestError(
            f"manifest generated_at {text!r} is not YYYY-MM-DDTHH:MM:SSZ", field="generated_at"
        ) from None


@dataclass(frozen=True)
class SnapshotManifest:
    """The fields of ``manifest.json``; the first seven are the contract every consumer relies on.

    ``part_size`` and ``parts`` describe the split layout of a committed
    snapshot (0 and empty otherwise, and then absent from the JSON).
    """

    snapshot_id: str
    generated_at: str
    schema_version: int
    playlist_count: int
    track_count: int
    file_count: int
    cover_count: int
    db_sha256: str = ""
    content_digest: str = ""
    table_counts: dict[str, int] = field(default_factory=dict)
    sqlite_version: str = ""
    repairs: dict[str, int] = field(default_factory=dict)
    part_size: int = 0
    parts: tuple[Piece, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Return the manifest as plain JSON-ready values (dicts are copies; unused layout fields left out)."""
        payload = asdict(self)
        payload["parts"] = list(payload["parts"])
        for name in _LAYOUT_FIELDS:
            if not payload[name]:
                del payload[name]
        return payload

    @classmethod
    def from_dict(cls, payload: Mapping[str, Any]) -> SnapshotManifest:
        """Build a manifest from a parsed ``manifest.json``, ignoring unknown keys.

        Raises:
            ManifestError: a required field is missing or has the wrong type.
        """
        if not isinstance(payload, Mapping):
            raise ManifestError(f"manifest is not a JSON object (got {type(payload).__name__})")
        values: dict[str, Any] = {}
        for name in _STR_FIELDS:
            values[name] = _required(payload, name, str)
        for name in _INT_FIELDS:
            values[name] = _required(payload, name, int)
        for name in _OPTIONAL_STR_FIELDS:
            value = payload.get(name, "")
            if not isinstance(value, str):
                raise ManifestError(f"manifest field {name!r} must be a string", field=name)
            values[name] = value
        for name in _COUNT_MAP_FIELDS:
            value = payload.get(name, {})
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and _is_int(v) for k, v in value.items()
            ):
                raise ManifestError(f"manifest field {name!r} must map names to integers", field=name)
            values[name] = dict(value)
        try:
            layout = layout_of(payload if isinstance(payload, dict) else dict(payload))
        except LayoutError as error:
            raise ManifestError(str(error), field="parts") from None
        if layout is not None:
            values["part_size"], values["parts"] = layout.part_size, layout.pieces
        if not _SNAPSHOT_ID.fullmatch(values["snapshot_id"]):
            raise ManifestError(f"invalid snapshot_id {values['snapshot_id']!r}", field="snapshot_id")
        return cls(**values)

    def to_json(self) -> str:
        """Return canonical JSON: same manifest, same bytes (sorted keys, trailing newline)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> SnapshotManifest:
        """Parse ``manifest.json`` text.

        Raises:
            ManifestError: the text is not JSON or not a valid manifest.
        """
        try:
            payload = json.loads(text)
        except ValueError as error:
            raise ManifestError(f"manifest is not valid JSON: {error}") from None
        return cls.from_dict(payload)

    @classmethod
    def from_bytes(cls, raw: bytes, *, path: Path | str | None = None) -> SnapshotManifest:
        """Parse ``manifest.json`` bytes (UTF-8), naming ``path`` in errors when given.

        Raises:
            ManifestError: the bytes are not UTF-8 JSON or not a valid manifest.
        """
        where = f": {path}" if path is not None else ""
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise ManifestError(f"manifest is not UTF-8{where}", path=path) from None
        try:
            return cls.from_json(text)
        except ManifestError as error:
            error.path = path
            raise

    @property
    def counts(self) -> dict[str, int]:
        """The four count fields, in the order summaries name them."""
        return {name: getattr(self, name) for name in COUNT_FIELDS}

    @property
    def generated(self) -> datetime:
        """``generated_at`` as a UTC datetime.

        Raises:
            ManifestError: ``generated_at`` is not in the manifest's timestamp form.
        """
        return parse_timestamp(self.generated_at)

    @classmethod
    def read(cls, path: Path | str) -> SnapshotManifest:
        """Read and parse a ``manifest.json`` file.

        Raises:
            ManifestError: the file is missing, unreadable or not a valid manifest.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ManifestError(f"manifest not found: {path}", path=path) from None
        except OSError as error:
            raise ManifestError(f"cannot read manifest {path}: {error.strerror}", path=path) from None
        return cls.from_bytes(data, path=path)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _required(payload: Mapping[str, Any], name: str, kind: type) -> Any:
    if name not in payload:
        raise ManifestError(f"manifest is missing field {name!r}", field=name)
    value = payload[name]
    if kind is int:
        if not _is_int(value):
            raise ManifestError(f"manifest field {name!r} must be an integer", field=name)
    elif not isinstance(value, kind):
        raise ManifestError(f"manifest field {name!r} must be a {kind.__name__}", field=name)
    return value


def snapshot_id_for(content_digest: str) -> str:
    """Return the snapshot id a content digest gives: ``snap-`` + its first 16 hex digits."""
    return "snap-" + content_digest[:16]


def _hash_file(path: Path | str, digest: Any, *, zero_version: bool) -> str:
    start, end = _VERSION_NUMBER_SPAN
    with open(path, "rb") as handle:
        first = handle.read(_CHUNK)
        if zero_version and len(first) >= end:
            first = first[:start] + bytes(end - start) + first[end:]
        digest.update(first)
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def file_sha256(path: Path | str) -> str:
    """The sha256 of a file's bytes (what ``sha256sum`` prints), read in flat memory."""
    return _hash_file(path, hashlib.sha256(), zero_version=False)


def content_digest_of(path: Path | str) -> str:
    """The content digest of a read-model file (see docs/export.md).

    The sha256 of a domain tag plus the file's bytes with the header's
    writer-version field (offsets 96..99) zeroed.
    """
    return _hash_file(path, hashlib.sha256(_CONTENT_DOMAIN), zero_version=True)


def file_digests(path: Path | str) -> tuple[str, str]:
    """Return ``(file_sha256(path), content_digest_of(path))``, hashed side by side.

    hashlib releases the GIL on large buffers, so two threads use two cores.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        content = pool.submit(content_digest_of, path)
        return file_sha256(path), content.result()
