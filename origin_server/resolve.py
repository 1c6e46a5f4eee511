"""Turn a token's locator into an open regular file under a media root, or refuse.

The locator comes from a signed token, but it is still treated as hostile: a
minting service with a bug (or a catalog row with a strange name) must never
make the origin serve a byte from outside its media roots. Every refusal
raises the same :class:`~origin_server.errors.FileRefused`, whatever the
reason, so a response never tells a prober which rule fired.

Layers, each sufficient on its own for the forms it covers:

1. Lexical checks on the locator (:func:`locator_segments`): no NUL or
   control characters, no backslash or ``:``, no absolute, drive or UNC form,
   no ``.``/``..``/empty segment, no trailing dot or space, no Windows device
   name in any segment, bounded length. These stop the Windows-only tricks
   (``C:x``, ``::$DATA``, ``NUL.flac``) on every platform, so a catalog that
   works on Linux keeps working when the NAS is a Windows box.
2. Containment: the real path (symlinks and junctions resolved) must lie
   inside the root's real path, compared by whole path components after
   ``normcase`` (case-insensitive on Windows).
3. The open handle (:func:`open_regular_file`), opened never blocking (a
   FIFO would hang a worker); ``fstat`` must say "regular file". On Linux the
   containment check is made on the file actually opened (the kernel's
   ``/proc/self/fd/N`` link), so there is no window between check and open.
   Elsewhere (Windows, macOS) the real path is checked, then opened without
   following a final symlink, and the handle's (device, inode) must equal the
   checked path's: a swap of the last component is refused; a directory
   swapped for a junction in that instant is the remaining, narrow window.

What it cannot see: a hard link inside the root to a file elsewhere is, as far
as any path check can tell, inside the root. Only people who can write into
the media root can make one.
"""

from __future__ import annotations

import io
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .errors import FileRefused

#: Longest locator accepted, in characters (well under Windows' 32k and Linux's 4k PATH_MAX).
MAX_LOCATOR_CHARS = 1024
#: Longest single segment, in UTF-8 bytes (NAME_MAX on Linux; NTFS allows 255 UTF-16 units).
MAX_SEGMENT_BYTES = 255

_RESERVED_STEMS = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"{prefix}{digit}" for prefix in ("COM", "LPT") for digit in "0123456789\u00b9\u00b2\u00b3"]
)
# C0 and C1 controls, DEL, backslash and colon: refused everywhere. On Windows
# also the characters it refuses in names (legal on POSIX, where catalogs use them).
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f-\x9f\\:]")
_WINDOWS_BAD_CHARS = re.compile(r'[\x00-\x1f\x7f-\x9f\\:<>"|?*]')

_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_BINARY", 0)
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)


@dataclass
class OpenedFile:
    """A regular file opened for streaming, with the facts its validators come from.

    The caller owns ``file`` and must close it (or hand it to the server, which does).
    """

    file: BinaryIO
    size: int
    mtime_ns: int
    inode: int
    name: str

    def close(self) -> None:
        """Close the handle; safe to call twice."""
        self.file.close()


def is_reserved_name(segment: str) -> bool:
    """Return True when Windows would treat ``segment`` as a device (``CON``, ``nul.flac``, ``COM1 .x``).

    Mirrors Python 3.13's ``ntpath.isreserved`` rule for the stem, which older
    Pythons lack: the part before the first dot, trailing spaces removed.
    """
    stem = segment.partition(".")[0].rstrip(" ").upper()
    return stem in _RESERVED_STEMS


def locator_segments(locator: object, *, windows: bool | None = None) -> tuple[str, ...]:
    """Split a locator into path segments, refusing every form that could leave a root.

    Args:
        locator: the token's ``locator`` claim: a relative path with ``/`` separators.
        windows: also refuse the characters Windows forbids in names
            (``<>"|?*``); defaults to "running on Windows".

    Returns:
        The segments, in order, each a plain file or directory name.

    Raises:
        FileRefused: for any locator that is not a plain relative path.
    """
    if windows is None:
        windows = os.name == "nt"
    if not isinstance(locator, str) or not locator or len(locator) > MAX_LOCATOR_CHARS:
        raise FileRefused()
    if (_WINDOWS_BAD_CHARS if windows else _BAD_CHARS).search(locator):
        raise FileRefused()
    if locator.startswith("/"):
        raise FileRefused()
    segments = tuple(locator.split("/"))
    for segment in segments:
        if (
            segment in ("", ".", "..")
            or segment.endswith((".", " "))
            or is_reserved_name(segment)
        ):
            raise FileRefused()
        try:
            encoded = segment.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: no file on disk has that name
            raise FileRefused() from None
        if len(encoded) > MAX_SEGMENT_BYTES:
            raise FileRefused()
    return segments


def _inside(root_real: str, candidate_real: str) -> bool:
    """True when ``candidate_real`` is strictly below ``root_real`` (both real, absolute)."""
    # Both are absolute, normalised real paths, so a prefix test on whole
    # components is commonpath's answer at a fraction of its cost.
    root_cmp = os.path.normcase(root_real)
    prefix = root_cmp if root_cmp.endswith(os.sep) else root_cmp + os.sep
    return os.path.normcase(candidate_real).startswith(prefix)


def _proc_fd_works() -> bool:
    """True where ``/proc/self/fd/N`` names what descriptor N has open (Linux)."""
    try:
        fd = os.open(os.path.abspath(__file__), os.O_RDONLY)
    except OSError:
        return False
    try:
        return os.path.samefile(os.readlink(f"/proc/self/fd/{fd}"), __file__)
    except (OSError, ValueError):
        return False
    finally:
        os.close(fd)


#: Linux: check the path of the file actually opened, which leaves no window
#: between check and open. Elsewhere: realpath, then open, then compare inodes.
USE_PROC_FD = _proc_fd_works()


def real_root(root: Path) -> str:
    """Return a root's real path (resolve it once, at start, rather than per request)."""
    return os.path.realpath(root)


def open_regular_file(root: Path, locator: object, *, root_real: str | None = None) -> OpenedFile:
    """Open the regular file a locator names under ``root``, for streaming.

    Args:
        root: the media root.
        locator: the token's ``locator`` claim.
        root_real: the root's real path, if already known (:func:`real_root`).

    Returns:
        The open file (unbuffered, position 0) with its size, mtime and inode.

    Raises:
        FileRefused: for every reason a file cannot be served, all alike.
    """
    segments = locator_segments(locator)
    if root_real is None:
        try:
            root_real = os.path.realpath(root, strict=True)
        except (OSError, ValueError):
            raise FileRefused() from None
    if USE_PROC_FD:
        # Open first (following links), then ask the kernel what was opened.
        try:
            fd = os.open(os.path.join(root_real, *segments), _OPEN_FLAGS & ~getattr(os, "O_NOFOLLOW", 0))
        except (OSError, ValueError):
            raise FileRefused() from None
        try:
            if not _inside(root_real, os.readlink(f"/proc/self/fd/{fd}")):
                raise FileRefused()
            return _finish_open(fd, None, str(locator))
        except BaseException:
            os.close(fd)
            raise
    try:
        path = os.path.realpath(os.path.join(root_real, *segments), strict=True)
    except (OSError, ValueError):
        raise FileRefused() from None
    if not _inside(root_real, path):
        raise FileRefused()
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError):
        raise FileRefused() from None
    try:
        return _finish_open(fd, path, str(locator))
    except BaseException:
        os.close(fd)
        raise


def _finish_open(fd: int, checked_path: str | None, locator: str) -> OpenedFile:
    """fstat the descriptor (regular file, and the checked path's inode if given); wrap it."""
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            raise FileRefused()
        if checked_path is not None:
            named = os.stat(checked_path, follow_symlinks=False)
            if (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
                raise FileRefused()
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        handle = io.FileIO(fd, "rb", closefd=True)
    except (OSError, ValueError):
        raise FileRefused() from None
    return OpenedFile(
        file=handle,  # type: ignore[arg-type]
        size=opened.st_size,
        mtime_ns=opened.st_mtime_ns,
        inode=opened.st_ino,
        name=locator.rpartition("/")[2],  # the name the catalog uses, not a symlink target's
    )
