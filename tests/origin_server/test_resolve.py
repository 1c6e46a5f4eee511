"""The resolver: every locator that could leave a media root is refused, the same way."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from origin_server import resolve
from origin_server.errors import FileRefused
from origin_server.resolve import (
    MAX_LOCATOR_CHARS,
    is_reserved_name,
    locator_segments,
    open_regular_file,
)

from .conftest import OUTSIDE_BYTES, Media

@pytest.fixture(params=["proc-fd", "realpath"])
def open_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a test through both ways of checking containment (Linux's /proc/self/fd, and the portable one)."""
    if request.param == "proc-fd" and not resolve.USE_PROC_FD:
        pytest.skip("/proc/self/fd is not available here")
    monkeypatch.setattr(resolve, "USE_PROC_FD", request.param == "proc-fd")
    return request.param


BAD_LOCATORS = [
    "",
    "/etc/passwd",
    "//srv/share/x.flac",
    "\\\\srv\\share\\x.flac",
    "C:\\Windows\\win.ini",
    "C:x.flac",
    "c:/x.flac",
    "a.flac::$DATA",
    "..",
    "../secret.bin",
    "album/../../secret.bin",
    "album/..",
    "./test.flac",
    "album/./track.mp3",
    "album//track.mp3",
    "album/",
    "/",
    "test.flac.",
    "test.flac ",
    "album./track.mp3",
    "album /track.mp3",
    "...",
    "album\\..\\..\\secret.bin",
    "..\\secret.bin",
    "a\x00b.flac",
    "a\nb.flac",
    "a\tb.flac",
    "a\x7fb.flac",
    "a\x85b.flac",
    "CON",
    "con",
    "NUL.flac",
    "nul.tar.gz",
    "COM1",
    "com9.mp3",
    "LPT1.txt",
    "LPT\u00b9",
    "AUX .flac",
    "album/PRN/x.flac",
    "CONIN$",
    "x" * (MAX_LOCATOR_CHARS + 1),
    "a/" + "b" * 256,
    "\ud800.flac",
]


@pytest.mark.parametrize("locator", BAD_LOCATORS)
def test_lexical_refusals(locator: str) -> None:
    with pytest.raises(FileRefused) as caught:
        locator_segments(locator, windows=False)
    assert str(caught.value) == "not found"


@pytest.mark.parametrize("locator", [None, 5, b"test.flac", ["test.flac"], {"a": 1}])
def test_non_string_locators_are_refused(locator: object) -> None:
    with pytest.raises(FileRefused):
        locator_segments(locator)


@pytest.mark.parametrize("locator", ['a?.flac', 'a*.flac', 'a<b>.flac', 'a|b.flac', 'a"b.flac'])
def test_windows_invalid_characters(locator: str) -> None:
    assert locator_segments(locator, windows=False) == (locator,)
    with pytest.raises(FileRefused):
        locator_segments(locator, windows=True)


@pytest.mark.parametrize(
    "locator",
    [
        "test.flac",
        "马也 - Crabbit/海屿你.flac",
        "a/b/c/d.mp3",
        ".hidden.flac",
        "..flac",
        "a..b.flac",
        "CONSOLE.flac",
        "COM10.flac",
        "NULL.flac",
        "x" * 255,
        "％２ｅ％２ｅ/ｓｅｃｒｅｔ",
        "．．/secret.bin",
        "\u2025/secret.bin",
    ],
)
def test_plain_locators_pass_the_lexical_check(locator: str) -> None:
    assert locator_segments(locator, windows=False) == tuple(locator.split("/"))


def test_reserved_names() -> None:
    assert is_reserved_name("CON") and is_reserved_name("con.flac") and is_reserved_name("Com1 .x")
    assert not is_reserved_name("CONx") and not is_reserved_name("COM") and not is_reserved_name("xCON")


def test_resolves_inside_and_opens_a_regular_file(open_mode: str, media: Media) -> None:
    opened = open_regular_file(media.root, "album/track.mp3")
    try:
        assert opened.size == len(media.files["album/track.mp3"])
        assert opened.name == "track.mp3"
        assert opened.file.read() == media.files["album/track.mp3"]
    finally:
        opened.close()


@pytest.mark.parametrize("locator", ["album", "missing.flac", "album/missing.mp3", "test.flac/x"])
def test_directories_and_missing_files_are_refused(open_mode: str, media: Media, locator: str) -> None:
    with pytest.raises(FileRefused):
        open_regular_file(media.root, locator)


def test_missing_root_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FileRefused):
        open_regular_file(tmp_path / "gone", "test.flac")


needs_symlinks = pytest.mark.skipif(
    not hasattr(os, "symlink") or sys.platform == "win32", reason="symlinks need privileges on Windows"
)


@needs_symlinks
def test_symlinks_out_of_the_root_are_refused(open_mode: str, media: Media) -> None:
    (media.root / "link_file.flac").symlink_to(media.outside)
    (media.root / "link_dir").symlink_to(media.outside.parent)
    (media.root / "album" / "up").symlink_to("../..")
    for locator in ["link_file.flac", "link_dir/secret.bin", "album/up/secret.bin", "link_dir/media/test.flac"]:
        if locator == "link_dir/media/test.flac":
            # Resolves back inside the root: allowed, and the bytes are the root's own.
            opened = open_regular_file(media.root, locator)
            opened.close()
            continue
        with pytest.raises(FileRefused):
            open_regular_file(media.root, locator)


@needs_symlinks
def test_symlink_inside_the_root_is_served_under_the_catalog_name(open_mode: str, media: Media) -> None:
    (media.root / "alias.flac").symlink_to(media.root / "test.flac")
    opened = open_regular_file(media.root, "alias.flac")
    try:
        assert opened.file.read() == b"test-audio"
        assert opened.name == "alias.flac"
    finally:
        opened.close()


@needs_symlinks
def test_root_that_is_a_symlink_works(open_mode: str, media: Media, tmp_path: Path) -> None:
    link = tmp_path / "root-link"
    link.symlink_to(media.root)
    opened = open_regular_file(link, "test.flac")
    opened.close()
    with pytest.raises(FileRefused):
        open_regular_file(link, "../secret.bin")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(open_mode: str, media: Media) -> None:
    os.mkfifo(media.root / "pipe.flac")
    with pytest.raises(FileRefused):
        open_regular_file(media.root, "pipe.flac")  # would hang forever if opened blocking


def test_prefix_sibling_is_not_inside(open_mode: str, tmp_path: Path) -> None:
    root = tmp_path / "media"
    sibling = tmp_path / "media-private"
    root.mkdir()
    sibling.mkdir()
    (sibling / "x.flac").write_bytes(OUTSIDE_BYTES)
    (root / "x.flac").write_bytes(b"inside")
    if hasattr(os, "symlink") and sys.platform != "win32":
        (root / "s.flac").symlink_to(sibling / "x.flac")
        with pytest.raises(FileRefused):
            open_regular_file(root, "s.flac")
    opened = open_regular_file(root, "x.flac")
    opened.close()


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_locator_is_refused_or_stays_inside(locator: str) -> None:
    """Whatever the text, the lexical check either refuses or leaves segments that stay under the root."""
    root = Path(__file__).resolve().parent  # a real directory; nothing is opened
    try:
        segments = locator_segments(locator)
    except FileRefused:
        return
    resolved = os.path.realpath(os.path.join(root, *segments))
    assert os.path.commonpath([str(root), resolved]) == str(root)
