"""``origin-server token``, run as a real process (``python -m origin_server token ...``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from origin_server.cli import main
from origin_server.keys import read_key_file
from origin_server.tokens import verify_origin_token

from .conftest import TOKEN_LOCATOR as LOCATOR
from .conftest import write_private

SECRET_NEW = "n" * 40
SECRET_OLD = "o" * 40


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "origin_server", "token", *args],
        capture_output=True,
        text=True,
        encoding="utf-8",
        env={**os.environ, "PYTHONIOENCODING": "utf-8", **(env or {})},
        timeout=60,
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "origin.keys"
    return write_private(path, f"# signing key first\n2026-02:{SECRET_NEW}\n2026-01:{SECRET_OLD}\n")


def test_prints_a_token_signed_with_the_first_key(key_file: Path) -> None:
    before = time.time()
    done = run("--secret-file", str(key_file), "--locator", LOCATOR, "--backend", "nas", "--ttl", "600")
    after = time.time()
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    token = done.stdout.strip()
    assert done.stdout == token + "\n"
    claims = verify_origin_token(read_key_file(key_file), token, time.time(), leeway=0)
    assert claims["locator"] == LOCATOR and claims["backend"] == "nas"
    assert before + 600 <= claims["exp"] <= after + 601 and isinstance(claims["exp"], int)
    # Signed by 2026-02 only: a ring without it refuses the token.
    with pytest.raises(ValueError):
        verify_origin_token([("2026-01", SECRET_OLD)], token, time.time())


def test_base_url_rounding_and_env_secret_file(key_file: Path) -> None:
    done = run(
        "--locator", "a b/c.mp3", "--ttl", "3600", "--round", "900", "--base-url", "http://127.0.0.1:8080/",
        env={"ORIGIN_SECRET_FILE": str(key_file)},
    )
    assert done.returncode == 0, done.stderr
    url = done.stdout.strip()
    prefix = "http://127.0.0.1:8080/api/private-origin/stream/"
    assert url.startswith(prefix)
    claims = verify_origin_token(read_key_file(key_file), url[len(prefix):], time.time())
    assert claims["locator"] == "a b/c.mp3" and claims["exp"] % 900 == 0
    assert claims["exp"] >= time.time() + 3600 - 5


def test_missing_key_file_is_one_line_exit_1(tmp_path: Path) -> None:
    done = run("--secret-file", str(tmp_path / "nope.keys"), "--locator", "a.flac")
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and "nope.keys" in done.stderr and "Traceback" not in done.stderr


def test_short_secret_is_named_by_line_never_shown(tmp_path: Path) -> None:
    path = tmp_path / "origin.keys"
    path.write_text(f"k2:{SECRET_NEW}\nk1:hunter2\n", encoding="utf-8")
    done = run("--secret-file", str(path), "--locator", "a.flac")
    assert done.returncode == 1
    assert "line 2" in done.stderr and "hunter2" not in done.stderr and SECRET_NEW not in done.stderr
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "args",
    [
        ["--locator", "a.flac"],  # no --secret-file, no ORIGIN_SECRET_FILE
        ["--secret-file", "{keys}"],  # no --locator
        ["--secret-file", "{keys}", "--locator", "/srv/music/a.flac"],  # absolute
        ["--secret-file", "{keys}", "--locator", "a.flac", "--ttl", "0"],
    ],
)
def test_usage_errors_exit_2(key_file: Path, args: list[str]) -> None:
    done = run(*[a.format(keys=key_file) for a in args])
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and "Traceback" not in done.stderr and done.stderr.startswith("origin-server: error:")


def test_a_locator_the_core_refuses_is_a_usage_error_naming_the_flags(
    key_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["token", "--secret-file", str(key_file), "--locator", "/srv/music/a.flac"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        "origin-server: error: Invalid value for --locator/--backend: "
        "locator must be relative to a media root, not an absolute path\n"
    )


def test_help_says_which_backend_a_token_gets_by_default() -> None:
    done = run("--help")
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert "Without --backend the token names no backend: the server serves it from its unnamed media root." in text
    assert "a server whose roots all have names answers it 404" in text


def test_a_lifetime_longer_than_servers_accept_is_warned_about(key_file: Path) -> None:
    done = run("--secret-file", str(key_file), "--locator", LOCATOR, "--ttl", str(8 * 24 * 3600))
    assert done.returncode == 0 and done.stdout.count(".") == 2
    assert done.stderr == (
        "origin-server: warning: this token lives longer than 7 days; "
        "servers refuse it unless started with a larger --max-token-lifetime\n"
    )
