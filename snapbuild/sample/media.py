"""The sample's media: an audio file at ``media_dir/LOCATOR`` for every active NAS location of a catalog.

The files let the origin server stream the sample and a browser play it.
Each is a short WAV tone, whatever the locator's extension.
"""

from __future__ import annotations

import array
import math
import os
import sqlite3
import sys
import wave
from pathlib import Path, PurePosixPath

from ..errors import SourceError, TargetError
from ..sqlite import readonly_uri
from .rows import NAS_BACKEND_NAME

_SAMPLE_RATE = 8000
_SECONDS = 3
_tone_cache: dict[int, bytes] = {}


def _tone(note: int) -> bytes:
    """16-bit mono PCM of a sine tone (one of 12 notes from A3), faded in and out to avoid clicks."""
    frames = _tone_cache.get(note)
    if frames is None:
        freq = 220.0 * 2 ** (note / 12)
        total = _SAMPLE_RATE * _SECONDS
        fade = _SAMPLE_RATE // 20
        samples = array.array("h")
        for n in range(total):
            envelope = min(1.0, n / fade, (total - 1 - n) / fade)
            samples.append(int(12000 * envelope * math.sin(2 * math.pi * freq * n / _SAMPLE_RATE)))
        if sys.byteorder == "big":
            samples.byteswap()
        frames = _tone_cache[note] = samples.tobytes()
    return frames


def media_path(media_root: Path, locator: str) -> Path:
    """``media_root/locator``, refusing anything that is not a plain relative path below the root.

    Raises:
        SourceError: ``locator`` is empty or absolute, or has a ``.`` or ``..`` segment, a ``:`` or a ``\\``.
    """
    parts = PurePosixPath(locator).parts
    if (
        not parts
        or locator.startswith("/")
        or any(part in ("", ".", "..") or ":" in part or "\\" in part for part in parts)
    ):
        raise SourceError(f"locator {locator!r} is not a relative path", table="file_locations", column="locator")
    return media_root.joinpath(*parts)


def _write_wav(path: Path, note: int) -> None:
    """Write one tone at ``path`` through a temporary file, so a killed run leaves no truncated file there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    with wave.open(str(partial), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(_SAMPLE_RATE)
        out.writeframes(_tone(note))
    os.replace(partial, path)


def write_sample_media(catalog: str | os.PathLike[str], media_dir: str | os.PathLike[str]) -> int:
    """Write a 3-second 8 kHz 16-bit mono WAV tone at ``media_dir/LOCATOR`` for every active ``nas-main`` location.

    The bytes are WAV whatever the locator's extension (``.flac`` or ``.mp3``
    in the sample): enough for the origin server to stream and a browser to
    play; real FLAC/MP3 files are the end-to-end tests' business. Files that
    already exist are left as they are, so re-running after a mutation only
    writes the new ones. Writes one file per active NAS location: at a million
    tracks that is ~350,000 files, the caller's choice.

    Args:
        catalog: a catalog in the source schema (opened read-only).
        media_dir: the root the locators are relative to.

    Returns:
        how many files were written.

    Raises:
        SourceError: a locator is not a plain relative path.
        TargetError: a file cannot be written.
    """
    root = Path(media_dir)
    written = 0
    conn = sqlite3.connect(readonly_uri(catalog), uri=True)
    try:
        cursor = conn.execute(
            """
            select fl.id, fl.locator from file_locations fl
            join storage_backends sb on sb.id = fl.backend_id
            where sb.name = ? and fl.status = 'active'
            order by fl.id
            """,
            (NAS_BACKEND_NAME,),
        )
        for location_id, locator in cursor:
            path = media_path(root, locator)
            if path.exists():
                continue
            try:
                _write_wav(path, location_id % 12)
            except OSError as error:
                raise TargetError(f"cannot write {path}: {error.strerror or error}", path=path) from error
            written += 1
    finally:
        conn.close()
    return written

