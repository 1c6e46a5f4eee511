"""Object-storage locators are validated like the origin's NAS locators; ``public_url`` stays under its base."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urljoin

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snapbuild.errors import SourceError
from snapbuild.export import run_export
from snapbuild.urls import locator_problem, public_url

from .conftest import CATALOG_ROWS, GENERATED_AT, write_catalog

BASE = "https://cdn.example/music"

BAD_LOCATORS = [
    ("../../other-bucket/secret.mp3", "'..' segment"),
    ("music/../../secret.mp3", "'..' segment"),
    ("music/./a.mp3", "'.' segment"),
    ("music/..", "'..' segment"),
    ("", "empty"),
    ("/", "empty"),
    ("music//a.mp3", "empty segment"),
    ("music/", "empty segment"),
    ("music\\..\\a.mp3", "backslash"),
    ("music/a\x00.mp3", "control character"),
    ("music/a\nb.mp3", "control character"),
    ("music/a\x7f.mp3", "control character"),
    ("music/a\u0085.mp3", "control character"),
]


@pytest.mark.parametrize("locator, problem", BAD_LOCATORS)
def test_a_bad_object_storage_locator_is_a_source_error_naming_the_row(
    good_snapshot, tmp_path: Path, locator: str, problem: str
) -> None:
    source = write_catalog(tmp_path / "c.db", CATALOG_ROWS)
    import sqlite3

    with sqlite3.connect(source) as conn:
        conn.execute("insert into file_locations values (30, 7, 2, ?, 'active', 0)", [locator])
        # A later row with the same problem: the error names the first one.
        conn.execute("insert into file_locations values (31, 7, 2, ?, 'active', 0)", [locator])
    with pytest.raises(SourceError) as caught:
        run_export(source, good_snapshot.dir, generated_at=GENERATED_AT)
    error = caught.value
    assert "\n" not in str(error)
    assert "file_locations.locator (id 30)" in str(error)
    assert problem in str(error)
    assert (error.table, error.column, error.row) == ("file_locations", "locator", 30)
    good_snapshot.assert_intact()


def test_the_side_reader_and_the_build_refuse_the_same_locator(good_snapshot, tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS,
        "insert into file_locations values (30, 7, 2, 'a/../../b.mp3', 'active', 0);",
    )
    for side_reader in (True, False):
        with pytest.raises(SourceError, match=r"file_locations.locator \(id 30\)"):
            run_export(source, good_snapshot.dir, generated_at=GENERATED_AT, side_reader=side_reader)
    good_snapshot.assert_intact()


def test_nas_and_inactive_locators_are_not_urls_and_pass(tmp_path: Path) -> None:
    source = write_catalog(
        tmp_path / "c.db", CATALOG_ROWS,
        """
        insert into storage_backends values (1, 'nas-main', 'nas', '/srv', null);
        insert into file_locations values (30, 7, 1, 'odd/../name.flac', 'active', 0);  -- the origin refuses it
        insert into file_locations values (31, 7, 2, '../gone.mp3', 'deleted', 0);
        insert into file_locations values (32, 7, 2, '/leading/slash.mp3', 'active', 0);
        """,
    )
    result = run_export(source, tmp_path / "s", generated_at=GENERATED_AT)
    assert result.manifest.file_count == 3


def test_public_url_refuses_what_the_export_refuses() -> None:
    for locator, problem in BAD_LOCATORS:
        with pytest.raises(SourceError, match=problem):
            public_url(BASE, locator)
    assert public_url(BASE + "/", "/a b/#1?.mp3") == BASE + "/a%20b/%231%3F.mp3"
    assert public_url(BASE, "..a/b..c/...") == BASE + "/..a/b..c/..."


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["", ".", "..", "...", "a", "é", "%2e", "\\", "\x00", "\u0085", "b c"]), max_size=6)
       .map("/".join) | st.text(max_size=40))
def test_public_url_always_stays_under_its_base(locator: str) -> None:
    try:
        url = public_url(BASE, locator)
    except SourceError:
        assert locator_problem(locator.lstrip("/")) is not None
        return
    assert locator_problem(locator.lstrip("/")) is None
    assert url.startswith(BASE + "/")
    # A client that resolves the URL (removing dot segments) lands on the same path.
    assert urljoin(BASE + "/", url) == url
    assert urljoin(url, ".").startswith(BASE + "/")
