"""The installed console scripts answer, and errors are one line with the right exit code."""

from __future__ import annotations

import subprocess
import sys


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, encoding="utf-8", timeout=60)


def test_snapbuild_help_lists_the_group() -> None:
    result = run(sys.executable, "-m", "snapbuild", "--help")
    assert result.returncode == 0
    assert "snapshots" in result.stdout


def test_origin_server_help_lists_the_group() -> None:
    result = run(sys.executable, "-m", "origin_server", "--help")
    assert result.returncode == 0
    assert "tokens" in result.stdout


def test_unknown_flag_is_one_line_and_exit_2() -> None:
    result = run(sys.executable, "-m", "snapbuild", "--no-such-flag")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "no-such-flag" in result.stderr
    assert "Traceback" not in result.stderr
