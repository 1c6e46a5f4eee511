"""The part size: parsing, its rules, the usage errors of --part-size, and the warning for blobs above the forges' limits."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.errors import UsageError
from snapbuild.export import run_export
from snapbuild.parts import DEFAULT_PART_SIZE, PAGE_SIZE, choose_part_size, parse_part_size
from snapbuild.snapshots import commit_snapshot

from .conftest import write_catalog
from .repo_support import make_snapshot
from .split_support import sample_catalog

MiB = 1 << 20


@pytest.mark.parametrize(
    ("text", "size"),
    [("33554432", 32 * MiB), ("32MiB", 32 * MiB), ("32 MiB", 32 * MiB), ("32m", 32 * MiB), ("64KiB", 65536),
     ("64k", 65536), ("1GiB", 1 << 30), ("4096", 4096), ("48mib", 48 * MiB)],
)
def test_part_sizes_take_bytes_or_binary_units(text: str, size: int) -> None:
    assert parse_part_size(text) == size


@pytest.mark.parametrize(
    ("text", "reason"),
    [("0", "positive multiple"), ("1000", "positive multiple"), ("4097", "positive multiple"),
     ("32MB", "not a size"), ("-4096", "not a size"), ("abc", "not a size"), ("", "not a size"),
     ("1.5MiB", "not a size")],
)
def test_a_part_size_that_is_not_a_positive_multiple_of_the_page_size_is_a_usage_error(
    tmp_path: Path, text: str, reason: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(UsageError, match=reason) as caught:
        parse_part_size(text)
    assert caught.value.argument == "part_size"

    code = main(["export", "--db", str(tmp_path / "none.db"), "--commit", "--repo", str(tmp_path / "r.git"),
                 "--part-size", text])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--part-size" in err and reason in err
    assert not (tmp_path / "r.git").exists()


def test_part_size_needs_commit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "--db", str(tmp_path / "x.db"), "--target-dir", str(tmp_path / "t"),
                 "--part-size", "32MiB"]) == 2
    assert "--part-size needs --commit" in capsys.readouterr().err


def test_the_layout_splits_once_larger_than_the_part_size_and_stays_split() -> None:
    assert choose_part_size(DEFAULT_PART_SIZE, None, 0) == 0
    assert choose_part_size(DEFAULT_PART_SIZE + PAGE_SIZE, None, 0) == DEFAULT_PART_SIZE
    assert choose_part_size(PAGE_SIZE, None, 16 * MiB) == 16 * MiB  # shrank: still split, same part size
    assert choose_part_size(PAGE_SIZE, 48 * MiB, 16 * MiB) == 48 * MiB
    assert choose_part_size(100 * MiB, 128 * MiB, 0) == 0


@pytest.mark.parametrize("part_size", [0, -4096, 1_000_001])
def test_a_bad_part_size_from_the_library_is_refused_even_for_a_small_database(tmp_path: Path, part_size: int) -> None:
    with pytest.raises(UsageError, match="positive multiple") as caught:
        choose_part_size(PAGE_SIZE, part_size, 0)
    assert caught.value.argument == "part_size"
    snapshot = make_snapshot(tmp_path / "s", tracks=50)
    with pytest.raises(UsageError, match="positive multiple"):
        commit_snapshot(tmp_path / "r.git", snapshot, part_size=part_size)
    assert not (tmp_path / "r.git" / "refs" / "heads" / "main").exists()


def test_a_part_size_error_found_after_parsing_names_the_flag() -> None:
    from snapbuild.cli.base import render_error

    with pytest.raises(UsageError) as caught:
        choose_part_size(PAGE_SIZE, 4096 + 1, 0)
    assert render_error(caught.value).startswith("--part-size must be a positive multiple")


def test_a_part_size_must_suit_the_database_s_own_page_size(tmp_path: Path) -> None:
    snapshot = make_snapshot(tmp_path / "s", tracks=3000)
    db = snapshot / "catalog_read.db"
    conn = sqlite3.connect(db)
    conn.execute("pragma page_size = 8192")
    conn.execute("vacuum")
    conn.close()
    with pytest.raises(UsageError, match=r"page size \(8192 bytes\)"):
        commit_snapshot(tmp_path / "r.git", snapshot, part_size=3 * 4096)
    assert commit_snapshot(tmp_path / "r.git", snapshot, part_size=2 * 8192).pieces > 1


@pytest.fixture(scope="module")
def big_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog whose read model is about 60 MiB: 60 tracks with 1 MiB names."""
    path = write_catalog(tmp_path_factory.mktemp("big") / "big.db")
    conn = sqlite3.connect(path)
    conn.executemany(
        "insert into songs values (?, 'netease', ?, ?, null, 'flac', 1, null)",
        ((i + 1, str(i), os.urandom(1 << 19).hex()) for i in range(60)),
    )
    conn.commit()
    conn.close()
    return path


@pytest.mark.slow
@pytest.mark.parametrize("part_size", ["64MiB", "52MiB"])
def test_a_blob_over_50_mib_draws_one_warning_naming_the_forges(
    tmp_path: Path, big_catalog: Path, part_size: str, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"
    args = ["export", "--db", str(big_catalog), "--commit", "--repo", str(repo), "--generated-at",
            "2026-01-01T00:00:00Z"]
    assert main([*args, "--part-size", part_size]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("snapbuild: warning:")]
    assert len(warnings) == 1, err
    assert "GitHub warns about files over 50 MiB and refuses them over 100 MiB" in warnings[0]
    assert "GitLab (Gitaly) and Gerrit (JGit) never delta blobs over 50 MiB" in warnings[0]
    # The default part size puts no blob over 50 MiB into the repository, and warns about nothing.
    fresh = tmp_path / "fresh.git"
    assert main(["export", "--db", str(big_catalog), "--commit", "--repo", str(fresh)]) == 0
    assert "warning" not in capsys.readouterr().err


def test_the_export_writes_databases_with_the_page_size_the_part_size_assumes(tmp_path: Path) -> None:
    run_export(sample_catalog(tmp_path / "c.db", tracks=50), tmp_path / "out", generated_at="2026-01-01T00:00:00Z")
    conn = sqlite3.connect(tmp_path / "out" / "catalog_read.db")
    try:
        assert conn.execute("pragma page_size").fetchone()[0] == PAGE_SIZE
    finally:
        conn.close()
