"""A snapshot commit's tree in its two layouts: write one, find the database in one, read it back, check a checkout.

Whole layout (a database no larger than the part size, in a repository whose
snapshots were never split): ``catalog_read.db``, ``manifest.json``,
``.gitattributes`` and ``README.md``, byte for byte the tree snapbuild has
always written. Split layout: the database as pieces under
``catalog_read.db.parts/`` (see ``parts.py``), ``manifest.json`` listing
them, ``assemble.py`` (the standard-library assembler), a ``.gitignore``
that keeps the assembled ``catalog_read.db`` out of git, and its own
``.gitattributes`` and ``README.md``.
"""

from __future__ import annotations

import dataclasses
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from dulwich.objects import Tree
from dulwich.repo import Repo

from .assemble import PARTS_DIR, LayoutError, PieceCheck, copy_pieces, own_source
from .consumer import DRIVER_NAME
from .errors import RepoError, VerifyError
from .git.objects import add_blob, stream_blob, write_loose_blob
from .manifest import DB_NAME, MANIFEST_NAME, SnapshotManifest, file_sha256
from .parts import format_size, store_pieces

#: The standard-library assembler's name in a split snapshot's tree.
ASSEMBLER_NAME = "assemble.py"

WHOLE_GITATTRIBUTES = (
    "# Written by snapbuild. The database is binary: never merge or convert it, but\n"
    f"# show row changes through the '{DRIVER_NAME}' diff driver (see README.md).\n"
    f"{DB_NAME} -text -merge diff={DRIVER_NAME}\n"
    f"{MANIFEST_NAME} text eol=lf\n"
).encode("utf-8")

SPLIT_GITATTRIBUTES = (
    f"# Written by snapbuild. The database is stored as pieces in {PARTS_DIR}/: binary, never\n"
    "# merged or converted; git diff names a changed piece without printing its bytes\n"
    f"# (row changes: snapbuild diff). {DB_NAME}, as older snapshots hold it, keeps its diff driver.\n"
    f"{PARTS_DIR}/* -text -merge -diff\n"
    f"{DB_NAME} -text -merge diff={DRIVER_NAME}\n"
    f"{MANIFEST_NAME} text eol=lf\n"
    f"{ASSEMBLER_NAME} text eol=lf\n"
).encode("utf-8")

SPLIT_GITIGNORE = (
    f"# Written by snapbuild: {DB_NAME} is assembled in each clone from {PARTS_DIR}/\n"
    f"# (snapbuild consumer-setup's hooks, or python3 {ASSEMBLER_NAME}); it is never committed.\n"
    f"/{DB_NAME}\n"
    f"/{DB_NAME}-*\n"
    f"/.{DB_NAME}.*\n"
).encode("utf-8")

WHOLE_README = b"""# Catalog snapshots

Each commit on `main` is one snapshot of the music catalog's read model,
written by snapbuild; every snapshot id (`snap-...`) is also a tag.

- `catalog_read.db`: the read model (SQLite). Open it read-only.
- `manifest.json`: snapshot id, generation time, row counts and the
  sha256 of `catalog_read.db`, so you can check what you received.

Stay current with `git pull --ff-only` (history is linear; nothing is ever
rewritten). A shallow `git clone --depth 1` is enough if you only need the
latest snapshot.

To see row changes in `git diff` and `git log -p`, install snapbuild and run
`snapbuild consumer-setup` in this clone, or set the driver by hand:

    git config diff.snapbuild.textconv "snapbuild textconv"

`snapbuild diff HEAD~1 HEAD` prints per-table added, removed and changed rows.
"""

SPLIT_README = b"""# Catalog snapshots

Each commit on `main` is one snapshot of the music catalog's read model,
written by snapbuild; every snapshot id (`snap-...`) is also a tag.

- `catalog_read.db.parts/`: the read model (SQLite), cut into pieces that
  every git forge accepts and sends as small deltas when a snapshot
  changes. Put them together into `catalog_read.db` (git ignores that file),
  then open it read-only.
- `manifest.json`: snapshot id, generation time, row counts, the sha256 of
  `catalog_read.db`, and the name, size and sha256 of every piece.
- `assemble.py`: puts the pieces together and checks them (Python 3.8 or
  later, standard library only).

Assemble after every clone, pull or checkout, either way:

- with snapbuild installed, once per clone: `snapbuild consumer-setup`
  installs git hooks that assemble `catalog_read.db` after every checkout,
  pull or switch of snapshot, and assembles it at once;
- or by hand: `python3 assemble.py` (PowerShell: `py -3 assemble.py`);
  `python3 assemble.py --check` only verifies the pieces.

The new file is written aside, checked against the manifest and renamed over
the old one; if a piece is missing or damaged, the old `catalog_read.db`
stays and one line names the piece.

Stay current with `git pull --ff-only` (history is linear; nothing is ever
rewritten). A shallow `git clone --depth 1` is enough if you only need the
latest snapshot. `git diff` names the pieces that changed and shows
`manifest.json`'s changes; `snapbuild diff HEAD~1 HEAD` prints per-table
added, removed and changed rows.
"""

_FILE = 0o100644


@dataclass(frozen=True)
class SnapshotTree:
    """A snapshot's tree as written: its id and the manifest as committed (its pieces, in the split layout)."""

    tree: bytes
    manifest: SnapshotManifest


@dataclass(frozen=True)
class DatabaseBlobs:
    """Where a snapshot's tree keeps the database: one blob (whole layout) or a tree of pieces (split)."""

    whole: bytes | None
    parts_tree: bytes | None


def write_tree(
    repo: Repo,
    db_path: Path,
    manifest: SnapshotManifest,
    part_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> SnapshotTree:
    """Write a snapshot's tree (whole layout when ``part_size`` is 0), streaming the database into the store.

    ``progress(bytes_stored, database_size)`` follows the database on its way in.

    Raises:
        UsageError: the part size does not suit the database (see ``parts.store_pieces``).
        RepoError: the database changed while it was read.
    """
    objects_dir = Path(repo.object_store.path)
    tree = Tree()
    if not part_size:
        manifest = dataclasses.replace(manifest, part_size=0, parts=())
        tree.add(DB_NAME.encode(), _FILE, write_loose_blob(objects_dir, db_path, progress))
        files = {".gitattributes": WHOLE_GITATTRIBUTES, "README.md": WHOLE_README}
    else:
        stored = store_pieces(objects_dir, db_path, part_size, progress)
        parts_tree = Tree()
        for item in stored:
            parts_tree.add(item.piece.name.encode(), _FILE, item.blob)
        repo.object_store.add_object(parts_tree)
        tree.add(PARTS_DIR.encode(), stat.S_IFDIR, parts_tree.id)
        manifest = dataclasses.replace(manifest, part_size=part_size, parts=tuple(item.piece for item in stored))
        files = {
            ".gitattributes": SPLIT_GITATTRIBUTES,
            ".gitignore": SPLIT_GITIGNORE,
            "README.md": SPLIT_README,
            ASSEMBLER_NAME: own_source(),
        }
    files[MANIFEST_NAME] = manifest.to_json().encode("utf-8")
    for name, data in files.items():
        tree.add(name.encode(), _FILE, add_blob(repo, data))
    repo.object_store.add_object(tree)
    return SnapshotTree(tree.id, manifest)


def snapshot_entries(repo: Repo, sha: bytes) -> tuple[bytes, DatabaseBlobs]:
    """The manifest's blob id and the database's place in the tree of snapshot commit ``sha``.

    Raises:
        RepoError: the commit holds no snapshot (no manifest, or no database in either layout).
    """
    tree = repo.object_store[repo.object_store[sha].tree]
    entries = {name: (mode, blob) for name, mode, blob in tree.iteritems()}
    manifest = entries.get(MANIFEST_NAME.encode())
    whole = entries.get(DB_NAME.encode())
    parts = entries.get(PARTS_DIR.encode())
    if manifest is None or (whole is None and parts is None):
        raise RepoError(f"commit {sha.decode()} holds no snapshot")
    return manifest[1], DatabaseBlobs(
        whole[1] if whole is not None else None,
        parts[1] if parts is not None and stat.S_ISDIR(parts[0]) else None,
    )


def stream_database(repo: Repo, sha: bytes, blobs: DatabaseBlobs, manifest: SnapshotManifest, out: BinaryIO) -> None:
    """Write the database of snapshot commit ``sha`` to ``out``: its blob, or its pieces in order, each checked.

    Raises:
        RepoError: the tree and the manifest disagree on the layout, a piece
            is absent or does not match its manifest entry (named), or an
            object is corrupt.
    """
    where = sha.decode()[:12]
    if not manifest.parts:
        if blobs.whole is None:
            raise RepoError(f"the manifest at {where} lists no pieces but the tree holds no {DB_NAME}")
        stream_blob(repo, blobs.whole, out)
        return
    if blobs.parts_tree is None:
        raise RepoError(f"the manifest at {where} lists pieces but the tree has no {PARTS_DIR}/")
    pieces = {name.decode(): blob for name, _, blob in repo.object_store[blobs.parts_tree].iteritems()}
    for piece in manifest.parts:
        if piece.name not in pieces:
            raise RepoError(f"piece {piece.path} is missing from the tree at {where}")
        check = PieceCheck(piece, out)
        try:
            stream_blob(repo, pieces[piece.name], check)  # type: ignore[arg-type]
            check.finish()
        except LayoutError as error:
            raise RepoError(f"{error} (at {where})") from None
        except RepoError as error:
            raise RepoError(f"piece {piece.path} at {where}: {error}") from error


def layout_lines(new: SnapshotManifest, parent: SnapshotManifest | None) -> list[str]:
    """The commit message's paragraph on the split layout (none for the whole layout)."""
    if not new.parts:
        return []
    size = sum(piece.size for piece in new.parts)
    lines = [
        f"Stored as {len(new.parts)} pieces of at most {format_size(new.part_size)} in {PARTS_DIR}/",
        f"({DB_NAME}: {size} bytes); {ASSEMBLER_NAME} puts them together.",
    ]
    if parent is None:
        lines.append("Every snapshot of this repository is stored as pieces (the database is larger than the part size).")
    elif not parent.parts:
        lines += [
            "From this snapshot on, every snapshot of this repository is stored as pieces",
            f"(the database outgrew the part size); earlier snapshots keep {DB_NAME} whole.",
        ]
    elif parent is not None and parent.part_size != new.part_size:
        lines.append(f"The part size changed from {format_size(parent.part_size)} to {format_size(new.part_size)}.")
    return lines


def check_checkout(work_tree: Path, manifest: SnapshotManifest, manifest_raw: bytes) -> None:
    """Check a clone's checked-out snapshot against its committed manifest: the manifest file, the pieces, the database.

    The assembled ``catalog_read.db`` of a split clone may be absent (not
    assembled yet); when present it must be this snapshot's database.

    Raises:
        VerifyError: one line naming the first file that does not match.
    """
    try:
        on_disk = (work_tree / MANIFEST_NAME).read_bytes()
    except OSError:
        on_disk = None
    if on_disk != manifest_raw:
        raise VerifyError(f"{MANIFEST_NAME} in the work tree {work_tree} is not the committed one", path=work_tree)
    if manifest.parts:
        try:
            copy_pieces(work_tree / PARTS_DIR, manifest.parts, None)
        except LayoutError as error:
            raise VerifyError(f"work tree {work_tree}: {error}", path=work_tree / PARTS_DIR) from None
    db = work_tree / DB_NAME
    if not db.exists():
        if manifest.parts:
            return
        raise VerifyError(f"{DB_NAME} is missing from the work tree {work_tree}", path=db)
    if file_sha256(db) != manifest.db_sha256:
        hint = f": assemble it ({ASSEMBLER_NAME}, or snapbuild consumer-setup)" if manifest.parts else ""
        raise VerifyError(f"{DB_NAME} in the work tree {work_tree} is not this snapshot's database{hint}", path=db)
