"""`snapbuild log` and `snapbuild gc` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapbuild.cli import main

from .repo_support import commit_history, fsck


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "snapshots.git"
    commit_history(tmp_path, path, tracks=(5, 6, 6, 9))
    return path


def test_log_prints_one_line_per_snapshot_newest_first(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "--repo", str(repo)]) == 0
    lines = capsys.readouterr().out.splitlines()

    assert len(lines) == 3  # the third export had the same content: no commit
    assert lines[0].split()[1] == "2026-01-04T00:00:00Z"
    assert "tracks=9" in lines[0] and "catalog_tracks +3" in lines[0]
    assert "catalog_tracks +1" in lines[1]
    assert lines[2].endswith("first snapshot")
    assert all(line.startswith("snap-") for line in lines)


def test_log_json_lists_entries_with_changes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "--repo", str(repo), "--json", "-n", "2"]) == 0
    entries = json.loads(capsys.readouterr().out)

    assert [e["counts"]["track_count"] for e in entries] == [9, 6]
    assert entries[0]["changes"] == {"catalog_playlists": 0, "catalog_tracks": 3}
    assert entries[0]["parent_snapshot_id"] == entries[1]["snapshot_id"]


def test_log_of_a_missing_repository_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "--repo", str(tmp_path / "nope.git")]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a git repository" in err


def test_gc_prints_sizes_before_and_after(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gc", "--repo", str(repo)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"repacked {repo} with git: ") and " -> " in out
    fsck(repo)
    assert main(["log", "--repo", str(repo)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 3
