"""Content types from a fixed table and ``Content-Disposition`` values (RFC 6266 / 5987).

A fixed table rather than :mod:`mimetypes`: on Windows the stdlib module reads
the registry, where installed software has been seen mapping audio
extensions to wrong types, and a player given the wrong type may refuse to
play.
"""

from __future__ import annotations

import functools
import urllib.parse

DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: Extension (lower case, no dot) -> Content-Type. Audio first, then covers and lyrics.
CONTENT_TYPES: dict[str, str] = {
    "flac": "audio/flac",
    "mp3": "audio/mpeg",
    "m4a": "audio/mp4",
    "m4b": "audio/mp4",
    "mp4": "audio/mp4",
    "aac": "audio/aac",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "opus": "audio/ogg",
    "spx": "audio/ogg",
    "wav": "audio/wav",
    "weba": "audio/webm",
    "webm": "audio/webm",
    "aif": "audio/aiff",
    "aiff": "audio/aiff",
    "mka": "audio/x-matroska",
    "wma": "audio/x-ms-wma",
    "ape": "audio/x-ape",
    "wv": "audio/wavpack",
    "dsf": "audio/x-dsf",
    "dff": "audio/x-dff",
    "mid": "audio/midi",
    "midi": "audio/midi",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "lrc": "text/plain; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}

# RFC 5987 attr-char: ALPHA / DIGIT / "!#$&+-.^_`|~"; everything else is percent-encoded.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"


@functools.lru_cache(maxsize=4096)
def content_type_for(name: str) -> str:
    """Return the Content-Type for a file name by its extension, from the fixed table."""
    _stem, dot, extension = name.rpartition(".")
    if not dot:
        return DEFAULT_CONTENT_TYPE
    return CONTENT_TYPES.get(extension.lower(), DEFAULT_CONTENT_TYPE)


def ascii_fallback(name: str) -> str:
    """Return ``name`` as a quoted-string body: printable ASCII kept, ``"`` and ``\\`` escaped, others ``_``."""
    out = []
    for char in name:
        if char in '"\\':
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            out.append("_")
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def content_disposition(name: str, disposition: str = "inline") -> str:
    """Return a ``Content-Disposition`` value with an ASCII ``filename`` and a UTF-8 ``filename*``.

    Example: ``inline; filename="__.flac"; filename*=UTF-8''%E6%B5%B7.flac``.
    """
    encoded = urllib.parse.quote(name, safe=_ATTR_CHAR_SAFE, encoding="utf-8", errors="strict")
    return f"{disposition}; filename=\"{ascii_fallback(name)}\"; filename*=UTF-8''{encoded}"
