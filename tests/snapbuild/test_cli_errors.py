"""How the command line renders snapbuild's errors: the flag the user can change is named there, not in the core."""

from __future__ import annotations

from pathlib import Path

from snapbuild.cli import render_error
from snapbuild.errors import RepoError, RepoLockedError, SourceBusyError, UsageError


def test_a_lock_timeout_names_lock_timeout_inside_the_closing_parenthesis() -> None:
    error = RepoLockedError(
        "repository r.git is locked by another snapbuild writer (waited 2 s)", path=Path("r.git"), timeout=2.0
    )
    assert render_error(error) == (
        "repository r.git is locked by another snapbuild writer (waited 2 s; raise --lock-timeout to wait longer)"
    )


def test_a_busy_source_names_busy_timeout() -> None:
    error = SourceBusyError("source catalog stayed locked by a writer for more than 5 s: c.db", timeout=5.0)
    assert render_error(error) == (
        "source catalog stayed locked by a writer for more than 5 s: c.db (raise --busy-timeout to wait longer)"
    )


def test_a_usage_error_names_the_flag_of_its_argument() -> None:
    error = UsageError("invalid author 'x': expected 'Name <email>'", argument="author")
    assert render_error(error) == "invalid --author 'x': expected 'Name <email>'"


def test_other_errors_are_shown_as_they_are() -> None:
    for error in (
        RepoError("r.git is not a git repository (really)", path=Path("r.git")),
        UsageError("generated_at is not an ISO 8601 timestamp: 'noon'", argument="generated_at"),
        UsageError("diff takes at most two revisions, got 3"),
    ):
        assert render_error(error) == str(error)


def test_no_subcommand_prints_the_help_not_an_error(capsys) -> None:
    import subprocess
    import sys

    from snapbuild.cli import main

    assert main([]) == 0
    out, err = capsys.readouterr()
    assert out.startswith("Usage: snapbuild [OPTIONS] COMMAND [ARGS]...")
    assert "export" in out and err == ""
    result = subprocess.run([sys.executable, "-m", "snapbuild"], capture_output=True, text=True, encoding="utf-8")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("Usage: ")
