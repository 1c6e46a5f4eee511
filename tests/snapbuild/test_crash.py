"""A writer killed with SIGKILL at any moment leaves a sound repository and the next run works."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snapbuild.git.objects import TMP_OBJECT_PREFIX
from snapbuild.git.store import STAGING_NAME
from snapbuild.sample import mutate_sample_catalog, write_sample_catalog
from snapbuild.snapshots import commit_snapshot

from .repo_support import fsck, git, make_snapshot

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX-only"),
    pytest.mark.slow,
]

_COMMIT = """
import sys
from snapbuild.snapshots import commit_snapshot
commit_snapshot(sys.argv[1], sys.argv[2], lock_timeout=30, part_size=int(sys.argv[3]) if sys.argv[3:] else None)
"""


def _main(repo: Path) -> str:
    return git("--git-dir", repo, "rev-parse", "main").stdout.strip()


def _temp_objects(repo: Path) -> list[Path]:
    return list((repo / "objects").glob(f"{TMP_OBJECT_PREFIX}*"))


def _wait_for(condition: object, give_up: float = 60.0) -> None:
    deadline = time.monotonic() + give_up
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.0002)


def _kill_at(cmd: list[str], moment: tuple[str, float], repo: Path) -> bool:
    """Start ``cmd`` and SIGKILL it at ``moment``; return True if it died by the signal.

    Moments: ``("start", s)`` s seconds after starting; ``("staging", s)`` s
    seconds into the export (its staging directory exists); ``("tmp", s)``
    s seconds after the database began streaming into its temporary object;
    ``("renamed", 0)`` as soon as that object was renamed into place (small
    objects, the branch update and the tag are next).
    """
    event, delay = moment
    child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if event == "staging":
            _wait_for(lambda: (repo / STAGING_NAME).exists() or child.poll() is not None)
        elif event in ("tmp", "renamed"):
            _wait_for(lambda: _temp_objects(repo) or child.poll() is not None)
            if event == "renamed":
                _wait_for(lambda: not _temp_objects(repo) or child.poll() is not None)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
    finally:
        code = child.wait()
    return code == -signal.SIGKILL


def _check_recovery(repo: Path, old: str, cmd: list[str], snapshot_id: str | None = None) -> None:
    """After a kill: fsck passes, main is old or new, and the next run completes the snapshot.

    Without ``snapshot_id`` it is read from the next run's output (``export --commit``).
    """
    fsck(repo)
    after_kill = _main(repo)
    finished = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert finished.returncode == 0, finished.stderr
    if snapshot_id is None:
        found = re.search(r"^(?:committed|unchanged) (snap-[0-9a-f]{16})", finished.stdout, re.MULTILINE)
        assert found, finished.stdout
        snapshot_id = found[1]
    new = _main(repo)
    assert after_kill in (old, new)
    assert new != old
    assert git("--git-dir", repo, "rev-parse", f"{new}~1").stdout.strip() == old
    assert git("--git-dir", repo, "rev-parse", snapshot_id).stdout.strip() == new
    fsck(repo)
    assert not _temp_objects(repo)
    assert not (repo / STAGING_NAME).exists()
    assert os.listdir(repo / "refs" / "heads") == ["main"]


def test_sigkill_of_a_committer_at_any_moment_leaves_main_on_old_or_new(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    commit_snapshot(repo, make_snapshot(tmp_path / "s0", tracks=1000), lock_timeout=5)
    schedule = [("start", 0.0), ("start", 0.3), ("tmp", 0.0), ("tmp", 0.01), ("renamed", 0.0), ("renamed", 0.002)]
    killed = 0
    for step, moment in enumerate(schedule, start=1):
        old = _main(repo)
        snap = make_snapshot(tmp_path / f"s{step}", tracks=40_000 + step, generated_at=f"2026-01-{step:02d}T00:00:00Z")
        cmd = [sys.executable, "-c", _COMMIT, str(repo), str(snap)]
        killed += _kill_at(cmd, moment, repo)
        snapshot_id = json.loads((snap / "manifest.json").read_text(encoding="utf-8"))["snapshot_id"]
        _check_recovery(repo, old, cmd, snapshot_id)
    assert killed >= len(schedule) // 2, "the writer finished too fast for the kills to land"


def test_sigkill_of_a_split_commit_between_or_inside_pieces_leaves_main_on_old_or_new(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    part = "65536"
    commit_snapshot(repo, make_snapshot(tmp_path / "s0", tracks=30_000), lock_timeout=5, part_size=int(part))
    schedule = [("start", 0.3), ("tmp", 0.0), ("tmp", 0.003), ("renamed", 0.0), ("renamed", 0.001)]
    killed = 0
    for step, moment in enumerate(schedule, start=1):
        old = _main(repo)
        snap = make_snapshot(tmp_path / f"s{step}", tracks=30_000 + step, generated_at=f"2026-01-{step:02d}T00:00:00Z")
        cmd = [sys.executable, "-c", _COMMIT, str(repo), str(snap), part]
        killed += _kill_at(cmd, moment, repo)
        snapshot_id = json.loads((snap / "manifest.json").read_text(encoding="utf-8"))["snapshot_id"]
        _check_recovery(repo, old, cmd, snapshot_id)
        assert git("--git-dir", repo, "ls-tree", "main", "catalog_read.db.parts").stdout
    assert killed >= len(schedule) // 2, "the writer finished too fast for the kills to land"


def test_sigkill_of_export_commit_at_any_moment_leaves_main_on_old_or_new(tmp_path: Path) -> None:
    repo = tmp_path / "snapshots.git"
    source = tmp_path / "catalogsync.db"
    write_sample_catalog(source, tracks=5000, playlists=300, seed=11)
    base = [sys.executable, "-m", "snapbuild", "export", "--db", str(source), "--commit", "--repo", str(repo)]
    subprocess.run([*base, "--generated-at", "2026-01-01T00:00:00Z"], check=True, capture_output=True)
    schedule = [("staging", 0.0), ("staging", 0.2), ("tmp", 0.0), ("renamed", 0.0)]
    killed = 0
    for step, moment in enumerate(schedule, start=2):
        old = _main(repo)
        mutate_sample_catalog(source, fraction=0.02, seed=step)
        cmd = [*base, "--generated-at", f"2026-01-{step:02d}T00:00:00Z"]
        killed += _kill_at(cmd, moment, repo)
        _check_recovery(repo, old, cmd)
    assert killed >= len(schedule) // 2, "the export finished too fast for the kills to land"
