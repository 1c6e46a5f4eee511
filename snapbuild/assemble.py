#!/usr/bin/env python3
"""Assemble catalog_read.db from the pieces of a snapbuild snapshot and verify it, with Python's standard library only.

A snapshot repository whose database outgrew its part size stores the
database as ordered pieces, ``catalog_read.db.parts/00000``, ``00001``, ...;
``manifest.json`` lists each piece's name, size and sha256 beside the whole
database's ``db_sha256``. This script is committed beside the pieces as
``assemble.py`` (and ``snapbuild consumer-setup`` installs the same code as
git hooks). It checks every piece while it copies them, in order, into a
temporary file beside the target, checks the whole against ``db_sha256``,
fsyncs, and renames it over ``catalog_read.db``. If anything is wrong (a
piece missing, truncated or altered, no room, the target held open) it
names the problem on one line and leaves the old ``catalog_read.db`` as it
was. Memory stays at a few MiB whatever the database's size.

Run it in a clone (Python 3.8 or later; nothing else is needed)::

    python3 assemble.py                    # POSIX shells; PowerShell: py -3 assemble.py
    python3 assemble.py --check            # verify the pieces only, write nothing
    python3 assemble.py --output /srv/live/catalog_read.db

Exit status: 0 assembled (or nothing to assemble), 1 refused, 2 usage.

Inside snapbuild this module is the one statement of the pieces' format
(names, manifest fields, checks); it imports nothing from snapbuild, so it
also has its own small command line (:func:`main`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Iterable, Sequence

#: The snapshot's files, as every snapshot commit names them.
DB_NAME = "catalog_read.db"
MANIFEST_NAME = "manifest.json"
#: The directory of the pieces, beside the manifest.
PARTS_DIR = DB_NAME + ".parts"
#: A piece's name: its index, zero-padded to a fixed width, so names sort in order.
PIECE_WIDTH = 5
MAX_PIECES = 10**PIECE_WIDTH
_SHA256 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class LayoutError(ValueError):
    """The pieces, or the manifest's list of them, do not hold the database; the message is one line."""


@dataclass(frozen=True)
class Piece:
    """One piece of the database as the manifest lists it: its name in the parts directory, size, sha256."""

    name: str
    size: int
    sha256: str

    @property
    def path(self) -> str:
        """The piece's path in the snapshot tree, as messages name it."""
        return PARTS_DIR + "/" + self.name


@dataclass(frozen=True)
class Layout:
    """The split layout a manifest describes: the part size and the pieces, in order."""

    part_size: int
    pieces: tuple[Piece, ...]

    @property
    def size(self) -> int:
        """The whole database's size: the pieces' sizes added up."""
        return sum(piece.size for piece in self.pieces)


@dataclass(frozen=True)
class Assembled:
    """What :func:`assemble` did: the file written (None for a check only), its size, pieces and sha256."""

    path: Path | None
    size: int
    pieces: int
    db_sha256: str


def piece_name(index: int) -> str:
    """The name of the piece at ``index`` (0-based): ``00000``, ``00001``, ..."""
    return "%0*d" % (PIECE_WIDTH, index)


def own_source() -> bytes:
    """This script's text with LF line ends: what snapbuild commits beside the pieces and installs as a hook."""
    return Path(__file__).read_text(encoding="utf-8").replace("\r\n", "\n").encode("utf-8")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def layout_of(manifest: dict[str, Any]) -> Layout | None:
    """The split layout a parsed ``manifest.json`` describes, or None when the database is committed whole.

    Raises:
        LayoutError: ``parts`` or ``part_size`` is malformed: a name out of
            order (names are checked here, so no piece can point outside the
            parts directory), a size that is not a positive integer within the
            part size, or a sha256 that is not 64 lowercase hex digits.
    """
    if "parts" not in manifest and "part_size" not in manifest:
        return None
    part_size, parts = manifest.get("part_size"), manifest.get("parts")
    if not _is_int(part_size) or part_size <= 0:
        raise LayoutError("manifest part_size must be a positive integer")
    if not isinstance(parts, list) or not parts:
        raise LayoutError("manifest parts must be a non-empty list")
    if len(parts) > MAX_PIECES:
        raise LayoutError("manifest lists %d pieces, more than %d" % (len(parts), MAX_PIECES))
    pieces = []
    for index, entry in enumerate(parts):
        expected = piece_name(index)
        if not isinstance(entry, dict) or entry.get("name") != expected:
            raise LayoutError("manifest parts[%d] must be the piece named %r" % (index, expected))
        size, sha256 = entry.get("size"), entry.get("sha256")
        if not _is_int(size) or not 0 < size <= part_size:
            raise LayoutError("manifest size of piece %s must be an integer from 1 to the part size" % expected)
        if not isinstance(sha256, str) or not _SHA256.fullmatch(sha256):
            raise LayoutError("manifest sha256 of piece %s must be 64 lowercase hex digits" % expected)
        pieces.append(Piece(expected, size, sha256))
    return Layout(part_size, tuple(pieces))


def read_manifest(directory: Path) -> dict[str, Any]:
    """``directory/manifest.json``, parsed.

    Raises:
        LayoutError: it is missing, unreadable, or not a JSON object.
    """
    path = directory / MANIFEST_NAME
    try:
        payload = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise LayoutError("no %s in %s: not a snapshot clone" % (MANIFEST_NAME, directory)) from None
    except (OSError, ValueError) as error:
        raise LayoutError("cannot read %s: %s" % (path, error)) from None
    if not isinstance(payload, dict):
        raise LayoutError("%s is not a JSON object" % path)
    return payload


class PieceCheck:
    """A writer that counts and hashes one piece's bytes as they pass to ``out`` (None: nowhere), against the manifest.

    Raises:
        LayoutError: from :meth:`write` once the bytes run past the listed
            size; from :meth:`finish` when they fell short or do not match.
    """

    def __init__(self, piece: Piece, out: BinaryIO | None = None) -> None:
        self.piece = piece
        self.out = out
        self.seen = 0
        self.digest = hashlib.sha256()

    def write(self, chunk: bytes) -> int:
        self.seen += len(chunk)
        if self.seen > self.piece.size:
            raise LayoutError("piece %s is longer than the %d bytes the manifest lists" % (self.piece.path, self.piece.size))
        self.digest.update(chunk)
        if self.out is not None:
            self.out.write(chunk)
        return len(chunk)

    def finish(self) -> None:
        if self.seen < self.piece.size:
            raise LayoutError("piece %s is truncated: %d of %d bytes" % (self.piece.path, self.seen, self.piece.size))
        if self.digest.hexdigest() != self.piece.sha256:
            raise LayoutError("piece %s does not match its sha256 in the manifest (altered)" % self.piece.path)


def copy_pieces(parts_dir: Path, pieces: Iterable[Piece], out: BinaryIO | None) -> tuple[int, str]:
    """Check each piece against the manifest while copying it to ``out`` (None: check only).

    Returns:
        the bytes copied and their sha256 (the whole database's).

    Raises:
        LayoutError: naming the first piece that is missing, not a file,
            truncated, longer than listed or altered.
    """
    whole = hashlib.sha256()
    total = 0
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    for piece in pieces:
        check = PieceCheck(piece, out)
        try:
            handle = open(parts_dir / piece.name, "rb")
        except FileNotFoundError:
            raise LayoutError("piece %s is missing" % piece.path) from None
        except OSError as error:
            raise LayoutError("cannot read piece %s: %s" % (piece.path, error.strerror)) from None
        with handle:
            while True:
                count = handle.readinto(buffer)
                if not count:
                    break
                chunk = view[:count]
                check.write(chunk)
                whole.update(chunk)
        check.finish()
        total += check.seen
    return total, whole.hexdigest()


def _fsync_dir(path: Path) -> None:
    if os.name == "nt":
        return  # Windows cannot open a directory; NTFS journals renames itself
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def assemble(directory: Path, output: Path | None = None, *, check_only: bool = False) -> Assembled | None:
    """Assemble ``directory/catalog_read.db`` (or ``output``) from the pieces its manifest lists, verified.

    The pieces are copied into a temporary file beside the target while each
    one's sha256 is checked; the whole's sha256 must equal ``db_sha256``;
    then fsync and an atomic rename. On any failure the temporary file is
    removed and the old target is left as it was.

    Returns:
        what was assembled, or None when the manifest lists no pieces (the
        database is committed whole).

    Raises:
        LayoutError: one line naming the problem (a piece, the whole, the target).
    """
    manifest = read_manifest(directory)
    layout = layout_of(manifest)
    if layout is None:
        return None
    db_sha256 = manifest.get("db_sha256")
    if not isinstance(db_sha256, str) or not _SHA256.fullmatch(db_sha256):
        raise LayoutError("manifest db_sha256 must be 64 lowercase hex digits")
    parts_dir = directory / PARTS_DIR
    if check_only:
        size, digest = copy_pieces(parts_dir, layout.pieces, None)
        _check_whole(digest, db_sha256)
        return Assembled(None, size, len(layout.pieces), digest)
    target = output if output is not None else directory / DB_NAME
    parent = target.parent if str(target.parent) else Path(".")
    try:
        free = shutil.disk_usage(str(parent)).free
    except OSError as error:
        raise LayoutError("cannot write beside %s: %s" % (target, error.strerror)) from None
    if free < layout.size:
        raise LayoutError("not enough free space for %s: %d bytes free, %d needed" % (target, free, layout.size))
    fd, tmp_name = tempfile.mkstemp(prefix="." + target.name + ".", suffix=".assembling", dir=str(parent))
    try:
        with open(fd, "wb") as out:
            size, digest = copy_pieces(parts_dir, layout.pieces, out)
            _check_whole(digest, db_sha256)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp_name, 0o644)
        try:
            os.replace(tmp_name, str(target))
        except OSError as error:
            raise LayoutError("cannot replace %s (is it open in another program?): %s" % (target, error.strerror)) from None
        _fsync_dir(parent)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    return Assembled(target, size, len(layout.pieces), digest)


def _check_whole(digest: str, db_sha256: str) -> None:
    if digest != db_sha256:
        raise LayoutError("the pieces put together do not match db_sha256 in the manifest")


def main(argv: Sequence[str] | None = None) -> int:
    """The command line; see the module's docstring."""
    parser = argparse.ArgumentParser(
        description="Assemble catalog_read.db from catalog_read.db.parts/ and verify it (standard library only).",
        epilog="Example: python3 assemble.py --check",
    )
    parser.add_argument("clone", nargs="?", default=".", type=Path, help="the clone's work tree (default: .)")
    parser.add_argument("--output", type=Path, default=None, help="write the database here instead of CLONE/catalog_read.db")
    parser.add_argument("--check", action="store_true", help="verify the pieces against the manifest; write nothing")
    parser.add_argument("--hook", action="store_true", help="run by a git hook: silent when there is nothing to assemble")
    args = parser.parse_args(argv)
    prog = parser.prog
    target = args.output if args.output is not None else args.clone / DB_NAME
    try:
        done = assemble(args.clone, args.output, check_only=args.check)
    except LayoutError as error:
        kept = "" if args.check else "; %s was left as it was" % target
        print("%s: error: %s%s" % (prog, error, kept), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("%s: interrupted; %s was left as it was" % (prog, target), file=sys.stderr)
        return 130
    if done is None:
        if not args.hook:
            print("%s: nothing to assemble: %s is committed whole in this snapshot" % (prog, DB_NAME))
        return 0
    what = "verified %d pieces" % done.pieces if args.check else "assembled %s from %d pieces" % (target, done.pieces)
    print("%s: %s, %d bytes, sha256 %s matches the manifest" % (prog, what, done.size, done.db_sha256[:16]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
