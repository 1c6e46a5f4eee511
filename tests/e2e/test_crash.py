"""SIGKILL ``snapbuild export --commit`` at 10 moments spread over its run; nothing good is ever lost.

A mid-size sample catalog is changed before each run, so every run has a
new snapshot to build and commit. The duration of one export + commit is
measured first: six kills are spread evenly over the part up to the publish
to the target (interpreter start-up, validation, build, atomic replace), and
four over the short commit phase that follows it (blob, tree, commit, ref and
tag writes). After each kill: ``git fsck --full --strict`` passes, ``main`` is on
the old snapshot or on a child of it, ``snapbuild verify --repo`` and
``snapbuild verify`` of the target pass, and the next export (run to the end)
works without anyone deleting a lock file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import require_tool
from tests.e2e.conftest import cli_env, git, run_ok

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.name == "nt", reason="SIGKILL and process groups are POSIX-only"),
]

TRACKS, PLAYLISTS = 20_000, 2_000
KILLS = 10
TIMED_KILLS = 6


def export_command(catalog: Path, repo: Path, target: Path) -> list[str]:
    return [sys.executable, "-m", "snapbuild", "export", "--db", str(catalog), "--commit", "--repo", str(repo),
            "--target-dir", str(target)]


def mtime(path: Path) -> int | None:
    """``path``'s modification time in ns, or None while it is missing."""
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def head(repo: Path) -> str:
    return git("rev-parse", "main", cwd=repo).stdout.strip()


def check_after_kill(repo: Path, target: Path, before: str) -> str:
    """Everything a consumer or the next export relies on is intact; return where main is."""
    git("fsck", "--full", "--strict", "--no-dangling", cwd=repo)
    now = head(repo)
    if now != before:
        # The ref moved only after the whole new commit was written, and only from the old one.
        assert git("rev-parse", "main^", cwd=repo).stdout.strip() == before
    run_ok("snapbuild", "verify", "--repo", repo)
    run_ok("snapbuild", "verify", target)
    return now


def test_sigkill_at_ten_moments_never_loses_the_last_good_snapshot(tmp_path: Path) -> None:
    require_tool("git")
    from snapbuild.sample import mutate_sample_catalog

    catalog, repo, target = tmp_path / "catalogsync.db", tmp_path / "snapshots.git", tmp_path / "snapshot"
    run_ok("snapbuild", "sample-catalog", catalog, "--tracks", str(TRACKS), "--playlists", str(PLAYLISTS), "--seed", "3")
    run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo, "--target-dir", target)

    # Calibrate: one full export + commit of a changed catalog; when does it publish to T, when does it end?
    mutate_sample_catalog(catalog, fraction=0.01, seed=100)
    published = mtime(target / "manifest.json")
    began = time.monotonic()
    process = subprocess.Popen(export_command(catalog, repo, target), stdout=subprocess.DEVNULL, env=cli_env())
    while process.poll() is None and mtime(target / "manifest.json") == published:
        time.sleep(0.002)
    publish_at = time.monotonic() - began
    assert process.wait(timeout=300) == 0
    commit_phase = max(time.monotonic() - began - publish_at, 0.05)

    outcomes = []
    for k in range(KILLS):
        mutate_sample_catalog(catalog, fraction=0.01, seed=200 + k)
        before = head(repo)
        published = mtime(target / "manifest.json")
        began = time.monotonic()
        process = subprocess.Popen(
            export_command(catalog, repo, target),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(), start_new_session=True,
        )
        if k < TIMED_KILLS:
            # Evenly over the run up to the publish: start-up, validation, build, atomic replace in T.
            time.sleep(publish_at * (k + 0.5) / TIMED_KILLS)
        else:
            # Evenly over the short commit phase that follows the publish to T (blob, tree, commit,
            # ref and tag writes), timed from the publish itself, which the test watches for.
            while process.poll() is None and mtime(target / "manifest.json") == published:
                time.sleep(0.002)
            time.sleep(commit_phase * (k - TIMED_KILLS + 0.5) / (KILLS - TIMED_KILLS))
        delay = time.monotonic() - began
        finished = process.poll() is not None
        if not finished:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)
        stderr = process.stderr.read().decode("utf-8", "replace") if process.stderr else ""
        if process.stderr:
            process.stderr.close()
        assert "Traceback" not in stderr, stderr
        after = check_after_kill(repo, target, before)
        outcomes.append((round(delay, 2), "finished" if finished else "killed", "moved" if after != before else "kept"))

        # The next export works, without anyone removing a lock file, and lands the change in R and T.
        # (Its result is verified by the next round's checks, and by the final ones.)
        run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", repo, "--target-dir", target)
        landed = head(repo)
        assert landed == after or git("rev-parse", "main^", cwd=repo).stdout.strip() == after
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
        assert json.loads(git("show", "main:manifest.json", cwd=repo).stdout)["snapshot_id"] == manifest["snapshot_id"]
        # A kill between the ref and the tag leaves the tag missing; the next export creates it.
        assert manifest["snapshot_id"] in git("tag", "--points-at", "main", cwd=repo).stdout.split()

    check_after_kill(repo, target, head(repo))
    # The kills really hit running exports (not only finished ones).
    assert sum(1 for _, state, _ in outcomes if state == "killed") >= KILLS // 2, outcomes
    # A consumer can still clone and read the history.
    clone = tmp_path / "clone"
    git("clone", "-q", repo, clone)
    git("fsck", "--full", "--strict", cwd=clone)
