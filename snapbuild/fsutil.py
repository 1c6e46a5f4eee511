"""File-system primitives every writer shares: durable renames and quiet clean-up.

Nothing here knows about snapshots or git; the export and the object store
both build their crash safety on these few calls.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_file(path: Path) -> None:
    """Flush a written file's data to disk."""
    with open(path, "r+b") as handle:
        os.fsync(handle.fileno())


def fsync_dir(path: Path) -> None:
    """Make a rename inside ``path`` durable.

    Windows cannot open a directory for fsync; NTFS journals renames itself.
    """
    if os.name == "nt":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_quietly(path: Path) -> None:
    """Remove a file if it exists; one that cannot be removed now is left for the next run's clean-up."""
    try:
        path.unlink()
    except OSError:
        pass
