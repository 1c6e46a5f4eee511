"""Commands in a consumer's clone, and what ``export --commit`` says about the repository and its consumers.

The clone's README suggests ``snapbuild diff HEAD~1 HEAD``: inside a clone,
of either layout (or any directory below its top) ``--repo`` defaults to that clone; elsewhere
to ``./snapshots.git``, and an error about a missing repository names
``--repo``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.sample import mutate_sample_catalog

from .repo_support import commit_history, git

T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-02T00:00:00Z"


@pytest.fixture(params=["whole", "split"])
def history(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A bare snapshot repository with three snapshots, the database whole or in 4 KiB pieces."""
    repo = tmp_path / "snapshots.git"
    results = commit_history(tmp_path, repo, tracks=(5, 6, 8), part_size=4096 if request.param == "split" else None)
    assert all(bool(result.pieces) == (request.param == "split") for result in results)
    return repo


@pytest.fixture
def clone(history: Path, tmp_path: Path) -> Path:
    path = tmp_path / "consumer"
    git("clone", "--quiet", history, path)
    return path


def _without_layout(line: str) -> str:
    """A ``snapbuild log`` line without the split layout's closing ``  [N pieces ...]``."""
    return line.split("  [", 1)[0]


def test_diff_and_log_inside_a_clone_use_the_clone(
    clone: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (clone / "notes" / "deeper").mkdir(parents=True)
    for where in (clone, clone / "notes" / "deeper"):
        monkeypatch.chdir(where)
        assert main(["diff", "HEAD~1", "HEAD"]) == 0, capsys.readouterr().err
        assert "catalog_tracks: 2 added" in capsys.readouterr().out
        assert main(["log"]) == 0, capsys.readouterr().err
        assert len(capsys.readouterr().out.splitlines()) == 3


def test_an_explicit_repo_still_wins_inside_a_clone(
    clone: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    other = tmp_path / "other.git"
    commit_history(tmp_path / "o", other, tracks=(1,))
    monkeypatch.chdir(clone)
    assert main(["log", "--repo", str(other)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 1


def test_outside_a_clone_the_default_is_snapshots_git_and_the_error_names_repo(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # A git work tree that is not a snapshot clone (a project's own checkout) does not count.
    project = tmp_path / "project"
    git("init", "--quiet", project)
    (project / "README").write_text("a project\n", encoding="utf-8")
    git("-C", project, "add", "README")
    git("-C", project, "commit", "--quiet", "-m", "first")
    for where in (tmp_path, project):
        monkeypatch.chdir(where)
        assert main(["log"]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1
        assert "snapshots.git is not a git repository" in err
        assert "--repo" in err


def test_help_names_the_default(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["log", "--help"]) == 0
    assert "enclosing snapshot clone, else snapshots.git" in " ".join(capsys.readouterr().out.split())


def test_a_shallow_clones_first_commit_is_not_called_the_first_snapshot(
    history: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shallow = tmp_path / "shallow"
    git("clone", "--quiet", "--depth", "1", history.as_uri(), shallow)
    monkeypatch.chdir(shallow)
    assert main(["log"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert "first snapshot" not in lines[0]
    assert _without_layout(lines[0]).endswith("earlier snapshots are not in this shallow clone")
    assert main(["log", "--json"]) == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert entry["shallow"] is True and entry["parent_snapshot_id"] is None and entry["changes"] == {}

    deeper = tmp_path / "deeper"
    git("clone", "--quiet", "--depth", "2", history.as_uri(), deeper)
    assert main(["log", "--repo", str(deeper), "--json"]) == 0
    entries = json.loads(capsys.readouterr().out)
    assert [e["shallow"] for e in entries] == [False, True]
    assert main(["log", "--repo", str(history)]) == 0
    assert _without_layout(capsys.readouterr().out.splitlines()[-1]).endswith("first snapshot")



def test_the_first_commit_says_it_created_the_repository(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "new" / "snapshots.git"
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T1]) == 0
    out = capsys.readouterr().out
    assert f"created the snapshot repository {repo.resolve()}" in out
    mutate_sample_catalog(catalog, fraction=0.2, seed=4)
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T2]) == 0
    assert "created" not in capsys.readouterr().out


def test_the_clone_hint_follows_a_commit_and_names_the_pushed_remote(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = tmp_path / "snapshots.git"
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T1]) == 0
    assert f"consumers: git clone {repo.resolve()} " in capsys.readouterr().out

    # Nothing committed: no hint.
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T2]) == 0
    assert "git clone" not in capsys.readouterr().out

    remote = tmp_path / "server.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    mutate_sample_catalog(catalog, fraction=0.2, seed=4)
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T2,
                 "--push", remote.as_uri()]) == 0
    out = capsys.readouterr().out
    assert f"consumers: git clone {remote.as_uri()} " in out
    assert str(repo.resolve()) not in out.split("consumers:")[1]

    # A remote given as a relative path is shown as one a consumer can use anywhere.
    monkeypatch.chdir(tmp_path)
    mutate_sample_catalog(catalog, fraction=0.2, seed=5)
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T2,
                 "--push", "server.git"]) == 0
    out = capsys.readouterr().out
    assert f"pushed main and tags to {remote.resolve()} " in out and f"consumers: git clone {remote.resolve()} " in out
