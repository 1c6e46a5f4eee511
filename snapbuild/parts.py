"""The split layout's write side: the part size, its rules, and a database streamed into the object store as pieces.

A database larger than the part size is committed as ordered pieces of
exactly the part size (the last one shorter) under ``catalog_read.db.parts/``.
The part size is a multiple of the database's page size, so a page a change
rewrites lies in one piece and the other pieces keep their bytes: git then
sends each changed piece as a small delta against the consumer's copy. At
16-48 MiB a piece stays under every forge's limits (GitHub refuses files
over 100 MiB; GitLab's Gitaly and Gerrit's JGit never delta blobs over
50 MB) while git's delta search still pairs each piece with its previous
version, which it stops doing for much smaller pieces.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .assemble import MAX_PIECES, Piece, piece_name
from .errors import UsageError
from .schema import PAGE_SIZE  # a part size is a multiple of it
from .git.objects import write_loose_blob

MiB = 1 << 20
#: The part size when neither the caller nor the repository names one.
DEFAULT_PART_SIZE = 32 * MiB
#: Blobs above this size draw warnings from GitHub and are never deltified by GitLab or Gerrit (50 MB there).
FORGE_WARN_SIZE = 50 * MiB
#: GitHub refuses a push holding a blob above this size.
FORGE_REFUSE_SIZE = 100 * MiB

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kib": 1 << 10, "m": MiB, "mib": MiB, "g": 1 << 30, "gib": 1 << 30}
_SIZE = re.compile(r"\s*([0-9]+)\s*([A-Za-z]*)\s*")


@dataclass(frozen=True)
class StoredPiece:
    """A piece written to the object store: its manifest entry and its blob id."""

    piece: Piece
    blob: bytes


def parse_part_size(text: str) -> int:
    """A part size in bytes from ``33554432``, ``32MiB``, ``32 MiB``, ``32m``, ``64KiB`` (binary units).

    Raises:
        UsageError: not a size, or not a positive multiple of the page size (``argument="part_size"``).
    """
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise UsageError(
            f"part_size {text!r} is not a size: give bytes or a number with KiB, MiB or GiB", argument="part_size"
        )
    return check_part_size(int(match.group(1)) * _UNITS[unit])


def check_part_size(part_size: int, page_size: int = PAGE_SIZE) -> int:
    """Return ``part_size`` if it is a positive multiple of ``page_size``.

    Raises:
        UsageError: it is not (``argument="part_size"``).
    """
    if part_size <= 0 or part_size % page_size:
        raise UsageError(
            f"part_size must be a positive multiple of the database's page size ({page_size} bytes), "
            f"not {part_size} bytes",
            argument="part_size",
        )
    return part_size


def format_size(size: int) -> str:
    """A byte count exactly, in the largest binary unit that divides it: ``32 MiB``, ``64 KiB``, ``1000 bytes``."""
    for unit, factor in (("GiB", 1 << 30), ("MiB", MiB), ("KiB", 1 << 10)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} bytes"


def page_size_of(db_path: Path) -> int:
    """The page size a SQLite file's header names (bytes 16-17; 1 means 65536), or PAGE_SIZE if unreadable."""
    with open(db_path, "rb") as handle:
        header = handle.read(18)
    if len(header) < 18:
        return PAGE_SIZE
    (value,) = struct.unpack(">H", header[16:18])
    return 65536 if value == 1 else value or PAGE_SIZE


def choose_part_size(db_size: int, requested: int | None, previous: int) -> int:
    """The part size a new snapshot is committed with, or 0 for the whole layout.

    A repository whose last snapshot was split stays split (``previous`` > 0),
    at its part size unless another is requested, so the layout never flips
    back and forth between snapshots; otherwise the database is split once it
    is larger than the part size.

    Args:
        db_size: the new database's size in bytes.
        requested: the caller's part size, or None for the repository's (else the default).
        previous: the part size of the snapshot on ``main`` (0: whole layout, or no snapshot yet).

    Raises:
        UsageError: ``requested`` is not a positive multiple of the page size, whatever the database's size.
    """
    part_size = check_part_size(requested) if requested is not None else previous or DEFAULT_PART_SIZE
    return part_size if previous or db_size > part_size else 0


def store_pieces(
    objects_dir: Path, db_path: Path, part_size: int, progress: Callable[[int, int], None] | None = None
) -> list[StoredPiece]:
    """Stream ``db_path`` into the object store as pieces of ``part_size`` bytes (the last one shorter).

    Each piece is one loose blob, hashed with sha256 for the manifest while
    it is compressed, so the database is read once and memory stays flat.
    ``progress(bytes_stored, database_size)`` follows the whole database.

    Raises:
        UsageError: the part size is not a multiple of the file's page size,
            or the database needs more pieces than fit their fixed-width names.
        RepoError: the file changed while it was read.
    """
    check_part_size(part_size, page_size_of(db_path))
    size = db_path.stat().st_size
    count = max(1, -(-size // part_size))
    if count > MAX_PIECES:
        raise UsageError(
            f"a {size}-byte database needs {count} pieces of {format_size(part_size)}, more than {MAX_PIECES}: "
            "choose a larger part size",
            argument="part_size",
        )
    stored = []
    for index in range(count):
        offset = index * part_size
        length = min(part_size, size - offset)
        digest = hashlib.sha256()
        step = None if progress is None else (lambda done, _length, start=offset: progress(start + done, size))
        blob = write_loose_blob(objects_dir, db_path, step, offset=offset, length=length, observe=digest.update)
        stored.append(StoredPiece(Piece(piece_name(index), length, digest.hexdigest()), blob))
    return stored
