"""Blobs in and out of the object store, streamed so a large file never sits whole in memory.

A new blob is streamed into a temporary file inside ``objects/`` and renamed
into place, so a killed writer leaves at most an unreferenced temporary file
(``TMP_OBJECT_PREFIX``), which the next writer removes under the lock.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from dulwich.objects import Blob
from dulwich.repo import Repo

from ..errors import RepoError
from ..fsutil import fsync_dir

#: The name prefix of a blob being written inside ``objects/``; a leftover one belongs to a killed writer.
TMP_OBJECT_PREFIX = "tmp_snapbuild_"
CHUNK_SIZE = 1 << 20


def write_loose_blob(
    objects_dir: Path,
    source: Path,
    progress: Callable[[int, int], None] | None = None,
    *,
    offset: int = 0,
    length: int | None = None,
    observe: Callable[[bytes], object] | None = None,
) -> bytes:
    """Stream a file, or ``length`` bytes of it from ``offset``, into the object store as a loose blob.

    sha1 over ``blob <n>\\0`` + data while zlib (level 1) compresses 1 MiB pieces
    into a temporary file inside ``objects/``; fsync, then rename into
    ``objects/xx/...``. Memory stays at a few MiB whatever the file's size.
    An object already present is kept and the temporary file dropped.
    ``progress(bytes_read, size)`` follows each piece.

    Args:
        observe: called with every chunk stored, e.g. another hash's ``update``.

    Returns:
        the blob's hex id.

    Raises:
        RepoError: the file changed size while it was read.
    """
    fd, tmp_name = tempfile.mkstemp(prefix=TMP_OBJECT_PREFIX, dir=objects_dir)
    tmp = Path(tmp_name)
    try:
        with open(fd, "wb") as out, open(source, "rb") as src:
            whole = length is None
            size = os.fstat(src.fileno()).st_size - offset if length is None else length
            src.seek(offset)
            header = b"blob %d\0" % size
            digest = hashlib.sha1(header)
            compressor = zlib.compressobj(1)
            out.write(compressor.compress(header))
            seen = 0
            while chunk := src.read(CHUNK_SIZE if whole else min(CHUNK_SIZE, size - seen)):
                seen += len(chunk)
                digest.update(chunk)
                if observe is not None:
                    observe(chunk)
                out.write(compressor.compress(chunk))
                if progress is not None:
                    progress(seen, size)
            out.write(compressor.flush())
            if seen != size:
                raise RepoError(f"{source} changed while it was committed", path=source)
            out.flush()
            os.fsync(out.fileno())
        hex_id = digest.hexdigest()
        final = objects_dir / hex_id[:2] / hex_id[2:]
        if final.exists():
            tmp.unlink()
        else:
            final.parent.mkdir(exist_ok=True)
            tmp.chmod(stat.S_IREAD | stat.S_IRGRP | stat.S_IROTH)
            os.replace(tmp, final)
            fsync_dir(final.parent)
        return hex_id.encode("ascii")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def add_blob(repo: Repo, data: bytes) -> bytes:
    """Store a small blob (a manifest, a README) through dulwich and return its id."""
    blob = Blob.from_string(data)
    repo.object_store.add_object(blob)
    return blob.id


def read_blob(repo: Repo, sha: bytes) -> bytes:
    """The contents of a small blob (a manifest).

    Raises:
        RepoError: the object is not a blob.
    """
    obj = repo.object_store[sha]
    if not isinstance(obj, Blob):
        raise RepoError(f"object {sha.decode()} is not a file")
    return obj.as_raw_string()


def stream_blob(repo: Repo, sha: bytes, out: BinaryIO) -> None:
    """Write a blob's contents to ``out``.

    A loose object is decompressed in 1 MiB steps and its id re-checked, so a
    large database never sits whole in memory. A packed object (after ``gc``
    or in a consumer's clone) is materialised by dulwich, which resolves its
    delta chain in memory: acceptable for an occasional read.

    Raises:
        RepoError: the object is not a blob, or a loose object is corrupt.
    """
    hex_id = sha.decode("ascii")
    loose = Path(repo.object_store.path) / hex_id[:2] / hex_id[2:]
    try:
        src = open(loose, "rb")
    except FileNotFoundError:
        for chunk in repo.object_store[sha].as_raw_chunks():
            out.write(chunk)
        return
    with src:
        decompressor = zlib.decompressobj()
        digest = hashlib.sha1()
        header = b""
        expected: int | None = None
        written = 0
        pending = b""
        while not decompressor.eof:
            if not pending:
                pending = src.read(CHUNK_SIZE)
                if not pending:
                    break  # truncated: caught by the size and id checks below
            data = decompressor.decompress(pending, CHUNK_SIZE)
            pending = decompressor.unconsumed_tail
            digest.update(data)
            if expected is None:
                header += data
                if b"\0" not in header:
                    continue
                head, _, data = header.partition(b"\0")
                kind, _, size = head.partition(b" ")
                if kind != b"blob":
                    raise RepoError(f"object {hex_id} is a {kind.decode(errors='replace')}, not a file")
                expected = int(size)
            out.write(data)
            written += len(data)
        if expected is None or written != expected or digest.hexdigest() != hex_id:
            raise RepoError(f"object {hex_id} is corrupt")
