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
3. The open handle (:func:`open_regular_file`). Nothing but a regular file
   is ever opened for reading: opening a FIFO or a device can have effects
   (a writer waiting on a FIFO is released, a tape rewinds) even when the
   answer is 404. On Linux the name is first resolved to an ``O_PATH``
   handle, which reads nothing and opens nothing; containment is checked on
   the kernel's ``/proc/self/fd/N`` link of that handle and its type with
   ``fstat``; only then is that very file (not the name again) opened for
   reading through the same link, so there is no window between check and
   open. Elsewhere (Windows, macOS) the real path is checked and ``lstat``-ed
   (a regular file, inside the root), then opened without following a final
   symlink and never blocking, and the handle's (device, inode) must equal
   the checked path's: a swap of the last component is refused; a swap in
   that instant is the remaining, narrow window (it needs write access to
   the media root).

What it cannot see: a hard link inside the root to a file elsewhere is, as far
as any path check can tell, inside the root. Only people who can write into
the media root can make one.
"""

from __future__ import annotations

import functools
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
_O_PATH = getattr(os, "O_PATH", 0)
# Reopening a checked regular file through its /proc link: blocking reads, no tty, not inherited.
_REOPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_CLOEXEC", 0)


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
        raise FileRefused("locator empty or too long")
    if (_WINDOWS_BAD_CHARS if windows else _BAD_CHARS).search(locator):
        raise FileRefused("locator holds a forbidden character")
    if locator.startswith("/"):
        raise FileRefused("locator is absolute")
    segments = tuple(locator.split("/"))
    for segment in segments:
        if (
            segment in ("", ".", "..")
            or segment.endswith((".", " "))
            or is_reserved_name(segment)
        ):
            raise FileRefused("locator has an empty, dot or device-name segment")
        try:
            encoded = segment.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates: no file on disk has that name
            raise FileRefused("locator is not valid Unicode") from None
        if len(encoded) > MAX_SEGMENT_BYTES:
            raise FileRefused("locator has a segment over 255 bytes")
    return segments


@functools.lru_cache(maxsize=64)
def _root_prefix(root_real: str) -> str:
    """``root_real`` as compared, with a trailing separator (a root is resolved once; few exist)."""
    root_cmp = os.path.normcase(root_real)
    return root_cmp if root_cmp.endswith(os.sep) else root_cmp + os.sep


def _inside(root_real: str, candidate_real: str) -> bool:
    """True when ``candidate_real`` is strictly below ``root_real`` (both real, absolute)."""
    # Both are absolute, normalised real paths, so a prefix test on whole
    # components is commonpath's answer at a fraction of its cost.
    return os.path.normcase(candidate_real).startswith(_root_prefix(root_real))


@functools.lru_cache(maxsize=1024)
def _path_under(root_real: str, locator: str) -> str:
    """The path a locator names under a root, once its lexical checks passed.

    Remembered, since a player asks for the same file again and again; only
    locators from tokens whose MAC matched get here, each at most
    ``MAX_LOCATOR_CHARS`` long, so this holds at most 1024 of them.

    Raises:
        FileRefused: from :func:`locator_segments` (never remembered).
    """
    return os.path.join(root_real, *locator_segments(locator))


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


#: Linux: resolve to an O_PATH handle, check its /proc link and type, reopen it
#: through that link: no window between check and open. Elsewhere: realpath,
#: lstat, then open, then compare inodes.
USE_PROC_FD = bool(_O_PATH) and _proc_fd_works()


def real_root(root: Path) -> str:
    """Return a root's real path (resolve it once, at start, rather than per request)."""
    return os.path.realpath(root)


def open_regular_file(root: Path, locator: object, *, root_real: str | None = None) -> OpenedFile:
    """Open the regular file a locator names under ``root``, for streaming; never open anything else.

    Args:
        root: the media root.
        locator: the token's ``locator`` claim.
        root_real: the root's real path, if already known (:func:`real_root`).

    Returns:
        The open file (unbuffered, position 0) with its size, mtime and inode.

    Raises:
        FileRefused: for every reason a file cannot be served, all alike
            (``reason`` says which rule fired, for the log).
    """
    if not isinstance(locator, str):
        raise FileRefused("locator is not text")
    if root_real is None:
        try:
            root_real = os.path.realpath(root, strict=True)
        except (OSError, ValueError):
            raise FileRefused("media root is missing") from None
    name = locator
    if USE_PROC_FD:
        # Resolve the name (following links) to a handle that opens nothing,
        # check what the kernel says it is, then open that very file.
        try:
            handle = os.open(_path_under(root_real, locator), _O_PATH | getattr(os, "O_CLOEXEC", 0))
        except (OSError, ValueError) as error:
            raise _refusal(error) from None
        try:
            link = f"/proc/self/fd/{handle}"
            if not _inside(root_real, os.readlink(link)):
                raise FileRefused("outside the media root")
            facts = os.fstat(handle)
            if not stat.S_ISREG(facts.st_mode):
                raise FileRefused("not a regular file")
            fd = os.open(link, _REOPEN_FLAGS)
        except OSError as error:
            raise _refusal(error) from None
        finally:
            os.close(handle)
        return _wrap(fd, facts, name)
    try:
        path = os.path.realpath(_path_under(root_real, locator), strict=True)
        if not _inside(root_real, path):
            raise FileRefused("outside the media root")
        named = os.lstat(path)
        if not stat.S_ISREG(named.st_mode):
            raise FileRefused("not a regular file")
        fd = os.open(path, _OPEN_FLAGS)
    except (OSError, ValueError) as error:
        raise _refusal(error) from None
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (named.st_dev, named.st_ino):
            raise FileRefused("file changed while it was opened")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException as error:
        os.close(fd)
        if isinstance(error, OSError):
            raise _refusal(error) from None
        raise
    return _wrap(fd, opened, name)


def _refusal(error: Exception) -> FileRefused:
    """The refusal for a failed open or stat: "no such file", or what the system said."""
    if isinstance(error, FileNotFoundError):
        return FileRefused("no such file")
    return FileRefused(f"cannot open: {getattr(error, 'strerror', None) or type(error).__name__}")


def _wrap(fd: int, facts: os.stat_result, locator: str) -> OpenedFile:
    """Wrap an open regular file's descriptor, closing it if that fails."""
    try:
        handle = io.FileIO(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
    return OpenedFile(
        file=handle,  # type: ignore[arg-type]
        size=facts.st_size,
        mtime_ns=facts.st_mtime_ns,
        inode=facts.st_ino,
        name=locator.rpartition("/")[2],  # the name the catalog uses, not a symlink target's
    )
