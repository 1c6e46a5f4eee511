"""Public URLs of object-storage files: the base URL and the locator's path segments, percent-encoded.

The export computes ``public_url`` in SQL through :data:`QUOTE_FUNCTION`,
which is :func:`quote_path` registered on the connection; :func:`public_url`
is the same rule in Python, for consumers and tests.
"""

from __future__ import annotations

import sqlite3

#: Name of the SQL function that percent-encodes a locator's path segments.
QUOTE_FUNCTION = "snapbuild_quote_path"

# Unreserved characters (RFC 3986) and the segment separator stay; every other
# byte of the UTF-8 becomes %XX: what quote(segment, safe='') gives per segment.
_KEPT = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~/"
_ENCODED = [bytes([byte]) if byte in _KEPT else b"%%%02X" % byte for byte in range(256)]
# Directories repeat across files (platform/artist/album): encode each once.
_DIRECTORY_CACHE: dict[bytes, bytes] = {}
_DIRECTORY_CACHE_SIZE = 1 << 16


def quote_path(locator: bytes | str) -> str:
    """Percent-encode every path segment of a locator, keeping the ``/`` between them.

    Equal to ``urllib.parse.quote(locator, safe='/')`` (which is ``quote(seg,
    safe='')`` per segment, joined by ``/``), about three times as fast: a
    table lookup per byte inside one ``join`` in C, and each directory part
    encoded once. It runs once per object-storage file in the export.
    """
    raw = locator.encode("utf-8") if isinstance(locator, str) else locator
    head, slash, tail = raw.rpartition(b"/")
    encoded_head = _DIRECTORY_CACHE.get(head)
    if encoded_head is None:
        if len(_DIRECTORY_CACHE) >= _DIRECTORY_CACHE_SIZE:
            _DIRECTORY_CACHE.clear()
        encoded_head = _DIRECTORY_CACHE[head] = b"".join(map(_ENCODED.__getitem__, head))
    return (encoded_head + slash + b"".join(map(_ENCODED.__getitem__, tail))).decode("ascii")


def public_url(base_url: str, locator: str) -> str:
    """Join a public base URL and a locator with exactly one ``/``, segments percent-encoded.

    ``public_url("https://cdn.example/music/", "a b/#1?.mp3")`` is
    ``"https://cdn.example/music/a%20b/%231%3F.mp3"``.
    """
    return base_url.rstrip("/") + "/" + quote_path(locator.lstrip("/"))


def register_quote_function(conn: sqlite3.Connection) -> None:
    """Make :data:`QUOTE_FUNCTION` callable in SQL on ``conn``.

    Registered on the connection directly: sqlite-utils would wrap it in one
    more Python frame per row.
    """
    conn.create_function(QUOTE_FUNCTION, 1, quote_path, deterministic=True)
