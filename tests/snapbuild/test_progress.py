"""Progress of long steps: shown on a terminal (after a delay), never when stderr is not one, never with --quiet."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from snapbuild.cli import main
from snapbuild.cli.progress import TerminalProgress, terminal_progress
from snapbuild.sample import mutate_sample_catalog

from .repo_support import git

T1 = "2026-01-01T00:00:00Z"
T2 = "2026-01-02T00:00:00Z"


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_step_shorter_than_the_delay_shows_nothing_a_longer_one_a_bar() -> None:
    screen, clock = FakeTerminal(), FakeClock()
    progress = TerminalProgress(screen, delay=2.0, clock=clock)
    progress("validate", 0, 10)
    clock.now += 1.0
    progress("catalog_tracks", 2, 10)
    assert screen.getvalue() == ""
    clock.now += 1.5
    progress("catalog_playlist_tracks", 3, 10)
    assert "export" in screen.getvalue() and "catalog_playlist_tracks" in screen.getvalue()
    assert "30%" in screen.getvalue()

    progress("commit", 0, 1 << 20)  # a new step: its own delay, its own bar
    before = screen.getvalue()
    clock.now += 2.5
    progress("commit", 1 << 19, 1 << 20)
    assert "commit" in screen.getvalue()[len(before):] and "50%" in screen.getvalue()
    progress.close()
    assert screen.getvalue().endswith("\n")


def test_git_text_passes_through_and_status_lines_overwrite() -> None:
    screen, clock = FakeTerminal(), FakeClock()
    progress = TerminalProgress(screen, delay=0.0, clock=clock)
    progress.git_text("Writing objects:  50% (1/2)\r")
    assert screen.getvalue() == "Writing objects:  50% (1/2)\r"
    progress.status("Checking object 0123")
    clock.now += 1
    progress.status("Packing references")
    progress.close()
    # The shorter line is padded over the longer one it replaces.
    assert screen.getvalue().endswith("\rPacking references  \n")


def test_no_progress_when_quiet_or_not_on_a_terminal() -> None:
    assert terminal_progress(quiet=True) is None
    assert not sys.stderr.isatty() or terminal_progress(quiet=False) is not None
    if not sys.stderr.isatty():
        assert terminal_progress(quiet=False) is None



def test_quiet_prints_nothing_but_errors(tmp_path: Path, catalog: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = tmp_path / "snapshots.git"
    args = ["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--target-dir", str(tmp_path / "t")]
    assert main([*args, "--generated-at", T1, "--quiet"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main(["gc", "--repo", str(repo), "-q"]) == 0
    assert capsys.readouterr() == ("", "")
    assert main([*args, "--generated-at", T1, "--json", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("{") and err == ""


def run_on_a_terminal(args: list[str], cwd: Path) -> tuple[int, str, str]:
    """Run ``python -m snapbuild ARGS`` with stderr on a pseudo-terminal; return (exit code, stdout, terminal)."""
    pty = pytest.importorskip("pty")
    import select

    master, slave = pty.openpty()
    env = {**os.environ, "SNAPBUILD_PROGRESS_DELAY": "0", "GIT_PROGRESS_DELAY": "0", "COLUMNS": "100"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "snapbuild", *args], cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=slave, env=env,
    )
    os.close(slave)
    screen = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            proc.kill()
            pytest.fail("no output and no exit for 60 s")
        try:
            data = os.read(master, 65536)
        except OSError:  # Linux: EIO once the child closed the terminal
            break
        if not data:
            break
        screen += data
    os.close(master)
    out = proc.stdout.read().decode("utf-8") if proc.stdout else ""
    return proc.wait(), out, screen.decode("utf-8", "replace")


@pytest.mark.skipif(os.name == "nt", reason="pseudo-terminals are POSIX")
def test_on_a_terminal_export_commit_push_and_gc_show_progress(tmp_path: Path, catalog: Path) -> None:
    repo, remote = tmp_path / "snapshots.git", tmp_path / "server.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", remote)
    export = ["export", "--db", str(catalog), "--commit", "--repo", str(repo), "--push", str(remote)]
    code, out, screen = run_on_a_terminal([*export, "--generated-at", T1], tmp_path)
    assert code == 0, screen
    assert "export" in screen and "commit" in screen
    assert "Writing objects" in screen  # git's own progress of the push
    assert out.startswith("created the snapshot repository") and "Writing" not in out

    mutate_sample_catalog(catalog, fraction=0.1, seed=4)
    code, out, screen = run_on_a_terminal([*export, "--generated-at", T2, "--quiet"], tmp_path)
    assert (code, out, screen) == (0, "", "")

    code, out, screen = run_on_a_terminal(["gc", "--repo", str(repo)], tmp_path)
    assert code == 0, screen
    assert "objects" in screen  # git gc's own progress: counting, compressing, writing objects
    assert out.startswith(f"repacked {repo} with git: ")
    code, out, screen = run_on_a_terminal(["gc", "--repo", str(repo), "--quiet"], tmp_path)
    assert (code, out, screen) == (0, "", "")
