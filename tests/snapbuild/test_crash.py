"""A writer killed with SIGKILL at any moment leaves a sound repository and the next run works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snapbuild import repo as snaprepo

from .repo_support import fsck, git, make_snapshot

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only")

_COMMIT = """
import sys
from snapbuild.repo import commit_snapshot
print("ready", flush=True)
commit_snapshot(sys.argv[1], sys.argv[2], lock_timeout=30)
print("done", flush=True)
"""


def _main(repo: Path) -> str:
    return git("--git-dir", repo, "rev-parse", "main").stdout.strip()


def _kill_after(cmd: list[str], event: str, delay: float, objects: Path) -> bool:
    """Start ``cmd`` and SIGKILL it ``delay`` seconds after ``event``.

    ``event`` is ``"ready"`` (the child is about to commit) or ``"tmp"`` (the
    database's temporary object has appeared in ``objects``: mid-stream).
    Returns True if the process was killed before it finished.
    """
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        if event == "tmp":
            give_up = time.monotonic() + 30
            while not list(objects.glob(f"{snaprepo.TMP_OBJECT_PREFIX}*")) and time.monotonic() < give_up:
                time.sleep(0.0005)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
    finally:
        code = child.wait()
        if child.stdout is not None:
            child.stdout.close()
    return code == -signal.SIGKILL


# Moments to kill at: right away, while the database streams into its temporary
# object, and later (small objects, the branch update, the tag).
SCHEDULE = [("ready", 0.0), ("ready", 0.01), ("tmp", 0.0), ("tmp", 0.02), ("ready", 0.15), ("ready", 0.25), ("ready", 0.35)]


@pytest.mark.slow
def test_sigkill_at_any_moment_leaves_main_on_old_or_new_and_the_next_run_works(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    snaprepo.commit_snapshot(repo, make_snapshot(tmp_path / "s0", tracks=1000), lock_timeout=5)
    killed = 0
    for step, (event, delay) in enumerate(SCHEDULE, start=1):
        old = _main(repo)
        snap = make_snapshot(
            tmp_path / f"s{step}", tracks=150_000 + step, generated_at=f"2026-01-{step:02d}T00:00:00Z"
        )
        cmd = [sys.executable, "-c", _COMMIT, str(repo), str(snap)]
        killed += _kill_after(cmd, event, delay, repo / "objects")

        fsck(repo)
        after_kill = _main(repo)
        # The next writer runs to completion without anyone cleaning up by hand.
        finished = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        assert finished.returncode == 0, finished.stderr
        new = _main(repo)
        assert after_kill in (old, new)
        assert new != old
        assert git("--git-dir", repo, "rev-parse", f"{new}~1").stdout.strip() == old
        tag = snap.joinpath("manifest.json").read_text(encoding="utf-8").split('"snapshot_id": "')[1].split('"')[0]
        assert git("--git-dir", repo, "rev-parse", tag).stdout.strip() == new
        fsck(repo)
    assert killed >= len(SCHEDULE) // 2, "the writer finished too fast for the kills to land"
    assert not list((repo / "objects").glob(f"{snaprepo.TMP_OBJECT_PREFIX}*"))
    assert os.listdir(repo / "refs" / "heads") == ["main"]
