"""Content types come from a fixed table; Content-Disposition is inline with a safe fallback."""

from __future__ import annotations

import urllib.parse

import pytest

from origin_server.media import DEFAULT_CONTENT_TYPE, ascii_fallback, content_disposition, content_type_for


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.flac", "audio/flac"),
        ("A.FLAC", "audio/flac"),
        ("a.mp3", "audio/mpeg"),
        ("a.m4a", "audio/mp4"),
        ("a.mp4", "audio/mp4"),
        ("a.aac", "audio/aac"),
        ("a.ogg", "audio/ogg"),
        ("a.opus", "audio/ogg"),
        ("a.wav", "audio/wav"),
        ("cover.jpg", "image/jpeg"),
        ("noext", DEFAULT_CONTENT_TYPE),
        ("a.exe", DEFAULT_CONTENT_TYPE),
        ("a.html", DEFAULT_CONTENT_TYPE),
        ("a.flac.svg", DEFAULT_CONTENT_TYPE),
    ],
)
def test_content_types(name: str, expected: str) -> None:
    assert content_type_for(name) == expected


def test_disposition_for_a_chinese_name() -> None:
    value = content_disposition("海屿你.flac")
    assert value.startswith('inline; filename="___.flac"; ')
    encoded = value.split("filename*=UTF-8''", 1)[1]
    assert urllib.parse.unquote(encoded, encoding="utf-8") == "海屿你.flac"
    assert encoded.isascii() and " " not in encoded


def test_fallback_escapes_quotes_and_backslashes() -> None:
    assert ascii_fallback('a "b" \\ c.m4a') == 'a \\"b\\" \\\\ c.m4a'
    value = content_disposition('x"; filename="evil.exe')
    fallback = value.split("; filename*=", 1)[0]
    # The quote is escaped, so the parameter cannot be closed early.
    assert fallback == 'inline; filename="x\\"; filename=\\"evil.exe"'
    assert "\r" not in content_disposition("a\r\nb.flac") and "\n" not in content_disposition("a\r\nb.flac")


def test_filename_star_uses_only_attr_chars() -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$&+-.^_`|~%")
    encoded = content_disposition("a b;c,d'e(f).flac").split("filename*=UTF-8''", 1)[1]
    assert set(encoded) <= allowed
