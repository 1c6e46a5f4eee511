"""`snapbuild export --commit` end to end: real export, real dulwich repo, real git CLI, racing processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.sample import mutate_sample_catalog, write_sample_catalog

from .repo_support import fsck, git, lock_held_by_another_process

T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-02T00:00:00Z"


def _cli(*args: str | Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "SOURCE_DATE_EPOCH"}
    return subprocess.Popen(
        [sys.executable, "-m", "snapbuild", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8", env=env,
    )



def test_export_commit_creates_the_repo_commits_and_a_consumer_clones_and_pulls(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"

    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T1]) == 0
    out = capsys.readouterr().out
    manifest = json.loads(git("--git-dir", repo, "show", "main:manifest.json").stdout)
    assert f"committed {manifest['snapshot_id']}" in out
    assert "git clone" in out
    fsck(repo)
    consumer = tmp_path / "consumer"
    git("clone", "--quiet", repo, consumer)
    assert json.loads((consumer / "manifest.json").read_text(encoding="utf-8")) == manifest
    assert main(["verify", str(consumer)]) == 0
    capsys.readouterr()

    # The same catalog later: nothing changed, no commit, exit 0, says so.
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T2]) == 0
    assert "unchanged" in capsys.readouterr().out
    assert git("--git-dir", repo, "rev-list", "--count", "main").stdout.strip() == "1"

    mutate_sample_catalog(catalog, fraction=0.05, seed=4)
    target = tmp_path / "current"
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--target-dir", str(target),
                 "--generated-at", T2, "--author", "Catalog Bot <bot@example.org>"]) == 0
    capsys.readouterr()
    assert (target / "catalog_read.db").read_bytes() == git_show_bytes(repo, "main:catalog_read.db")
    assert git("--git-dir", repo, "log", "-1", "--format=%an <%ae> %cI", "main").stdout.strip() == (
        "Catalog Bot <bot@example.org> 2026-01-02T00:00:00+00:00"
    )
    git("-C", consumer, "pull", "--quiet", "--ff-only")
    assert (consumer / "catalog_read.db").read_bytes() == (target / "catalog_read.db").read_bytes()
    fsck(repo)

    assert main(["verify", "--repo", str(repo)]) == 0
    assert main(["verify", "--repo", str(consumer), "--rev", "HEAD~1"]) == 0
    capsys.readouterr()
    assert main(["log", "--repo", str(consumer)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def git_show_bytes(repo: Path, spec: str) -> bytes:
    return subprocess.run(["git", "--git-dir", str(repo), "show", spec], capture_output=True, check=True).stdout


def test_same_catalog_and_time_give_the_same_commit_id_in_fresh_repositories(tmp_path: Path, catalog: Path) -> None:
    ids = []
    for name in ("a.git", "b.git"):
        assert main(["export", "--db", str(catalog), "--commit", "--repo", str(tmp_path / name),
                     "--generated-at", T1]) == 0
        ids.append(git("--git-dir", tmp_path / name, "rev-parse", "main").stdout.strip())
    assert ids[0] == ids[1]


def test_push_sends_main_and_tags_to_a_bare_remote(tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "snapshots.git"
    remote = tmp_path / "server.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)

    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T1,
                 "--push", remote.as_uri()]) == 0
    assert "pushed" in capsys.readouterr().out
    snapshot_id = json.loads(git("--git-dir", remote, "show", "main:manifest.json").stdout)["snapshot_id"]
    assert git("--git-dir", remote, "rev-parse", snapshot_id).stdout == git("--git-dir", repo, "rev-parse", "main").stdout
    clone = tmp_path / "consumer"
    git("clone", "--quiet", "--depth", "1", remote.as_uri(), clone)
    assert (clone / "catalog_read.db").exists()

    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T2,
                 "--push", str(tmp_path / "missing.git")]) == 1
    out, err = capsys.readouterr()
    assert "push to" in err and err.count("\n") == 1
    assert out.startswith(f"unchanged {snapshot_id}")  # what was committed is said before the push fails


def test_a_locked_repository_names_the_flag_that_waits_longer(
    tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "snapshots.git"
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--generated-at", T1]) == 0
    capsys.readouterr()
    with lock_held_by_another_process(repo):
        assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--lock-timeout", "0.2"]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"snapbuild: error: repository {repo} is locked by another snapbuild writer "
        "(waited 0.2 s; raise --lock-timeout to wait longer)\n"
    )


def test_bad_author_and_lock_timeout_are_usage_errors(tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "snapshots.git"
    assert main(["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--author", "nobody"]) == 2
    assert capsys.readouterr().err == "snapbuild: error: invalid --author 'nobody': expected 'Name <email>'\n"
    assert main(["export", "--db", str(catalog), "--commit", "--lock-timeout", "-1"]) == 2
    assert main(["export", "--db", str(catalog), "--repo", str(repo)]) == 2
    capsys.readouterr()
    assert not repo.exists()


@pytest.mark.slow
def test_racing_committers_keep_history_linear_and_lose_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    base = tmp_path / "base.db"
    write_sample_catalog(base, tracks=300, playlists=20, seed=5)
    assert main(["export", "--db", str(base), "--commit", "--repo", str(repo), "--generated-at", T1]) == 0
    first = git("--git-dir", repo, "rev-parse", "main").stdout.strip()
    sources = []
    for seed in (6, 7):
        path = tmp_path / f"source-{seed}.db"
        path.write_bytes(base.read_bytes())
        mutate_sample_catalog(path, fraction=0.05, seed=seed)
        sources.append(path)

    racers = [_cli("export", "--db", src, "--commit", "--repo", repo, "--generated-at", T2, "--lock-timeout", "120")
              for src in sources]
    results = [(p.wait(timeout=180), *p.communicate()) for p in racers]

    for code, out, err in results:
        assert code == 0, err
        assert "committed snap-" in out
    commits = git("--git-dir", repo, "rev-list", "--first-parent", "main").stdout.split()
    assert len(commits) == 3 and commits[-1] == first
    assert git("--git-dir", repo, "rev-list", "--count", "--merges", "main").stdout.strip() == "0"
    ids = {json.loads(git("--git-dir", repo, "show", f"{c}:manifest.json").stdout)["snapshot_id"] for c in commits[:2]}
    assert len(ids) == 2  # both racers' snapshots are in the history: no update lost
    for snapshot_id in ids:
        assert git("--git-dir", repo, "rev-parse", snapshot_id).stdout.strip() in commits
    fsck(repo)

    # Two racers with the same catalog: one commits, the other finds it unchanged.
    racers = [_cli("export", "--db", base, "--commit", "--repo", repo, "--generated-at", "2026-01-03T00:00:00Z",
                   "--lock-timeout", "120") for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in racers]
    assert all(p.returncode == 0 for p in racers)
    assert sorted("unchanged" in out for out in outs) == [False, True]
    assert git("--git-dir", repo, "rev-list", "--count", "main").stdout.strip() == "4"
    fsck(repo)
