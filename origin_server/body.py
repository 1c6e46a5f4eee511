"""The body of a file response: exactly the announced bytes, or an error the server closes the connection on.

waitress sends a ``wsgi.file_wrapper`` body from its I/O loop, asking it for
the next bytes whenever the socket can take more. Its own wrapper reads from
the file's current position and, when the file has become shorter than the
response announced (replaced in place while it streams), returns nothing
again and again: nothing is sent, the socket stays writable, and the loop
spins at full speed until the connection times out. :class:`FileBody`
raises :class:`~origin_server.errors.FileEndedEarly` instead, which the
server's channel turns into "log one line, close the connection": the
client sees a short body and knows the transfer failed.

It also reads at an offset it keeps itself (``pread``), where waitress's
wrapper asks the file for its position and seeks back around every read: one
system call per piece instead of four.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from waitress.buffers import ReadOnlyFileBasedBuffer

from .errors import FileEndedEarly


_PREAD = getattr(os, "pread", None)


class FileBody(ReadOnlyFileBasedBuffer):
    """``length`` bytes of an open file from ``start``, for waitress to send; closes the file when done.

    waitress recognises it as its own file wrapper (a subclass), so it is sent
    from the I/O loop and no worker thread waits on a slow client.

    Args:
        file: the open file (owned from now on: closed by :meth:`close`).
        start: offset of the first byte to send.
        length: how many bytes the response announced.
        name: how a log line names the file (its locator).
    """

    def __init__(self, file: BinaryIO, start: int, length: int, name: str) -> None:
        # What ReadOnlyFileBasedBuffer.__init__ sets, without the call (one body per request).
        self.file = file
        self.fd = file.fileno()
        self.block_size = 64 * 1024
        self.offset = start
        self.remain = length
        self.name = name

    def prepare(self, size: int | None = None) -> int:
        """The number of bytes to send: the announced length (the file is not asked again)."""
        return self.remain

    def get(self, numbytes: int = -1, skip: bool = False) -> bytes:
        """The next bytes, at most ``numbytes``; consumed only when ``skip``.

        Raises:
            FileEndedEarly: the file ends before the announced length.
        """
        if numbytes < 0 or numbytes > self.remain:
            numbytes = self.remain
        if numbytes == 0:
            return b""
        if _PREAD is not None:  # at our offset, without using (or moving) the file's position
            data = _PREAD(self.fd, numbytes, self.offset)
        else:  # Windows
            self.file.seek(self.offset)
            data = self.file.read(numbytes)
        if not data:
            raise FileEndedEarly(self.name, self.remain)
        if skip:
            self.skip(len(data))
        return data

    def skip(self, numbytes: int, allow_prune: int = 0) -> None:
        """Mark ``numbytes`` as sent."""
        if numbytes > self.remain:
            raise ValueError(f"cannot skip {numbytes} bytes of {self.remain}")
        self.offset += numbytes
        self.remain -= numbytes

    def __next__(self) -> bytes:
        """The next block (waitress iterates a wrapper it could not hand to its I/O loop)."""
        if self.remain <= 0:
            raise StopIteration
        return self.get(self.block_size, skip=True)

    next = __next__
