"""File-system primitives every writer shares: durable renames, quiet clean-up, and never following a planted link.

Nothing here knows about snapshots or git; the export and the object store
both build their crash safety on these few calls.

A directory someone else can write to may hold a symbolic link (or, on
Windows, a junction) where a writer expects its own file. Files are
therefore created exclusively (``O_CREAT | O_EXCL``: an existing name,
a dangling link included, is refused on POSIX and on Windows alike) and
existing ones opened with ``O_NOFOLLOW``. Windows has no ``O_NOFOLLOW``:
there the name is checked before the open and the handle after it (the
handle must be the file the name itself names), and creating a symbolic link
there needs a privilege most accounts lack.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import filelock

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_BINARY = getattr(os, "O_BINARY", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)


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


def is_link(path: Path) -> bool:
    """True if ``path`` itself is a symbolic link or a junction (whatever it points to, if anything)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISLNK(info.st_mode) or bool(getattr(info, "st_reparse_tag", 0))


def _link_error(path: Path) -> OSError:
    return OSError(errno.ELOOP, "is a symbolic link; not following it", str(path))


def is_link_error(error: OSError) -> bool:
    """True for the error an open raises when the name is a symbolic link it refused to follow."""
    # Linux and macOS say ELOOP; FreeBSD says EMLINK.
    return error.errno in (errno.ELOOP, errno.EMLINK)


def create_exclusive(path: Path, data: bytes = b"", *, sync: bool = False) -> None:
    """Create ``path`` as a new file holding ``data``; whatever is at that name already, a link included, is refused.

    Raises:
        FileExistsError: the name exists (as a file, a directory or a link, dangling or not).
        OSError: it cannot be created.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _BINARY | _CLOEXEC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


def open_nofollow(path: Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses to go through a symbolic link or junction at ``path`` itself.

    Raises:
        OSError: the name is a link (``errno.ELOOP``; see :func:`is_link_error`), or the open failed.
    """
    if not _NOFOLLOW and is_link(path):
        raise _link_error(path)
    fd = os.open(path, flags | _NOFOLLOW | _BINARY | _CLOEXEC, mode)
    if not _NOFOLLOW:
        # Swapped for a link between the check and the open: the handle is another file.
        try:
            same = os.path.samestat(os.fstat(fd), os.lstat(path)) and not is_link(path)
        except OSError:
            same = False
        if not same:
            os.close(fd)
            raise _link_error(path)
    return fd


def read_nofollow(path: Path) -> bytes:
    """The bytes of a regular file, refusing a link at ``path``.

    Raises:
        OSError: missing, a link (see :func:`is_link_error`), not a regular file, or unreadable.
    """
    fd = open_nofollow(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    with open(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        return handle.read()


def remove_tree(path: Path) -> None:
    """Remove a directory tree, or only the link if ``path`` is a link (never what it points to); quietly."""
    if is_link(path):
        remove_quietly(path)
        try:
            os.rmdir(path)  # a junction on Windows is removed like an empty directory
        except OSError:
            pass
        return
    shutil.rmtree(path, ignore_errors=True)


def take_lock(path: Path, timeout: float) -> filelock.FileLock:
    """Hold the OS lock on the lock file ``path`` (created if missing, never through a link); return it.

    The file is opened here first, without following a link, so that a link
    and a directory no file can be created in are each reported as what they
    are, at once, rather than as a lock that never comes free.

    Raises:
        OSError: the name is a link (see :func:`is_link_error`) or the file cannot be created;
            :func:`lock_problem` words it.
        filelock.Timeout: another process held the lock for ``timeout`` seconds.
    """
    os.close(open_nofollow(path, os.O_RDWR | os.O_CREAT))
    lock = filelock.FileLock(str(path), timeout=max(timeout, 0.0))
    lock.acquire()  # filelock >= 3.20.1 refuses a link that appeared since
    return lock


def lock_problem(error: OSError, path: Path, place: str) -> str:
    """One line for an ``OSError`` of :func:`take_lock`; ``place`` names the lock's directory (``"the repository"``)."""
    if is_link_error(error):
        return f"the lock file {path} is a symbolic link; refusing to follow it"
    return f"cannot create files in {place} {path.parent}: {error.strerror or error}"
