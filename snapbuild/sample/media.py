"""The sample's media: an audio file for every active NAS location of a catalog, in the format its name says.

The files let the origin server stream the sample and a player play and seek
in it: each is a tone (one of twelve notes) of :data:`TONE_SECONDS`. With
soundfile (libsndfile, the ``audio`` extra) installed, a ``.flac`` locator
gets real FLAC and a ``.mp3`` one real MP3, at ``media_dir/LOCATOR``.
Without it, the tone is written as WAV (the standard library writes that)
and named for what it is: ``LOCATOR`` with its suffix replaced by ``.wav``,
so that no file claims a format it is not; the origin then finds nothing at
the catalog's locators, which the caller reports.
"""

from __future__ import annotations

import array
import io
import math
import os
import sqlite3
import sys
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path, PurePosixPath

from ..errors import SourceError, TargetError
from ..sqlite import readonly_uri
from .rows import NAS_BACKEND_NAME

#: Length of every tone: long enough that seeking in a player is a real seek.
TONE_SECONDS = 24
# Rates per format: a tone needs little, and small files keep the sample small
# (FLAC at 8 kHz is ~60 KB, MP3 at 16 kHz, MPEG-2 which every player decodes, ~26 KB).
_RATES = {"flac": 8000, "mp3": 16000, "wav": 8000}
# Periods in samples at 8 kHz (doubled at 16 kHz): 222, 235, 250, ... 444 Hz.
_PERIODS = (36, 34, 32, 30, 29, 27, 25, 24, 22, 21, 20, 18)
_NOTES = len(_PERIODS)


def _samples(note: int, rate: int) -> array.array[int]:
    """16-bit mono PCM of a sine tone (one of 12 notes, 222 to 444 Hz), faded in and out to avoid clicks.

    Each note's period is a whole number of samples, so one period is
    computed and repeated: the 24 files of a sample take milliseconds, not
    seconds, in pure Python.
    """
    period = _PERIODS[note % _NOTES] * rate // 8000
    one = array.array("h", (int(11000 * math.sin(2 * math.pi * n / period)) for n in range(period)))
    total = rate * TONE_SECONDS // period * period
    samples = one * (total // period)
    fade = rate // 20
    for n in range(fade):
        samples[n] = int(samples[n] * n / fade)
        samples[total - 1 - n] = int(samples[total - 1 - n] * n / fade)
    return samples


def _wav_bytes(note: int) -> bytes:
    """The tone as an 8-bit WAV file: half the size of 16 bits, plenty for a test tone."""
    samples = _samples(note, _RATES["wav"])
    unsigned = bytes((value >> 8) + 128 for value in samples)
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(1)
        audio.setframerate(_RATES["wav"])
        audio.writeframes(unsigned)
    return out.getvalue()


def _soundfile_encoder(fmt: str) -> Callable[[int], bytes] | None:
    """An encoder of the tone as FLAC or MP3 through soundfile, or None when soundfile or the format is missing."""
    try:
        import soundfile
    except (ImportError, OSError):  # OSError: soundfile without its libsndfile
        return None
    if fmt.upper() not in soundfile.available_formats():
        return None

    def encode(note: int) -> bytes:
        samples = _samples(note, _RATES[fmt])
        if sys.byteorder == "big":
            samples.byteswap()
        out = io.BytesIO()
        options = {"compression_level": 1.0} if fmt == "flac" else {}
        with soundfile.SoundFile(out, "w", _RATES[fmt], 1, subtype="PCM_16" if fmt == "flac" else None,
                                 format=fmt.upper(), **options) as audio:
            audio.buffer_write(samples.tobytes(), dtype="int16")
        return out.getvalue()

    return encode


@cache
def _encoder(fmt: str) -> Callable[[int], bytes] | None:
    """How to write a tone in ``fmt`` (``flac``, ``mp3``), or None if it cannot be written here."""
    return _soundfile_encoder(fmt) if fmt in ("flac", "mp3") else None


@cache
def _tone(fmt: str, note: int) -> bytes:
    """The bytes of one note's file in ``fmt`` (``wav`` always works)."""
    encoder = _encoder(fmt)
    return encoder(note) if encoder is not None else _wav_bytes(note)


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


def media_format(locator: str) -> str:
    """The format the file for ``locator`` is written in here: its suffix's, if it can be written, else ``wav``."""
    fmt = PurePosixPath(locator).suffix.lower().lstrip(".")
    return fmt if _encoder(fmt) is not None else "wav"


def media_file(media_root: Path, locator: str) -> Path:
    """Where the file for ``locator`` is written: at the locator, or renamed ``.wav`` when written as WAV.

    Raises:
        SourceError: as :func:`media_path`.
    """
    path = media_path(media_root, locator)
    return path if media_format(locator) != "wav" or path.suffix.lower() == ".wav" else path.with_suffix(".wav")


def _write(path: Path, data: bytes) -> None:
    """Write one file through a temporary name, so a killed run leaves no truncated file at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_sample_media(catalog: str | os.PathLike[str], media_dir: str | os.PathLike[str]) -> int:
    """Write a :data:`TONE_SECONDS` tone for every active ``nas-main`` location of ``catalog`` (see the module).

    Files that already exist are left as they are, so re-running after a
    mutation only writes the new ones. Each of the 24 distinct files (12
    notes, 2 formats) is encoded once and then copied. Writes one file per
    active NAS location: at a million tracks that is ~350,000 files, the
    caller's choice.

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
    conn = sqlite3.connect(readonly_uri(catalog), uri=True)
    try:
        locations = conn.execute(
            """
            select fl.id, fl.locator from file_locations fl
            join storage_backends sb on sb.id = fl.backend_id
            where sb.name = ? and fl.status = 'active'
            order by fl.id
            """,
            (NAS_BACKEND_NAME,),
        ).fetchall()
    finally:
        conn.close()
    missing = []
    for location_id, locator in locations:
        path = media_file(root, locator)
        if not path.exists():
            missing.append((path, media_format(locator), location_id % _NOTES))
    # Encode the distinct tones side by side first (libsndfile runs without the GIL).
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(lambda tone: _tone(*tone), sorted({(fmt, note) for _, fmt, note in missing})))
    for path, fmt, note in missing:
        try:
            _write(path, _tone(fmt, note))
        except OSError as error:
            raise TargetError(f"cannot write {path}: {error.strerror or error}", path=path) from error
    return len(missing)


def media_as_wav() -> bool:
    """True when the sample's FLAC and MP3 files are written as WAV here (soundfile or a format is missing)."""
    return _encoder("flac") is None or _encoder("mp3") is None
