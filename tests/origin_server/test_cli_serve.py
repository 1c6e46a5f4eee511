"""``origin-server serve``: refuses bad configuration in one line; serves when it is good."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from origin_server.cli import main
from origin_server.config import MAX_CONNECTION_LIMIT

from .conftest import SECRET, STREAM, Media, cli_server, token_for, write_private


def run_serve(
    *args: str, env: dict[str, str] | None = None, preexec_fn: Callable[[], None] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "origin_server", "serve", *args, "--port", "0"],
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=60,
        env={**os.environ, **(env or {})},
        preexec_fn=preexec_fn,  # noqa: PLW1509 - only sets a resource limit
    )


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "origin.keys"
    return write_private(path, f"# the signing key first\nk1:{SECRET}\n")


def assert_one_line_refusal(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("origin-server: error: ")
    for needle in needles:
        assert needle in lines[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert SECRET not in result.stderr


def test_startup_refusals(tmp_path: Path, media: Media, key_file: Path) -> None:
    root = str(media.root)
    assert_one_line_refusal(run_serve("--media-root", str(tmp_path / "nope"), "--secret-file", str(key_file)), "nope")
    assert_one_line_refusal(run_serve("--media-root", root, "--secret-file", str(tmp_path / "none.keys")), "none.keys")
    empty = tmp_path / "empty.keys"
    empty.write_text("\n# nothing\n", encoding="utf-8")
    assert_one_line_refusal(run_serve("--media-root", root, "--secret-file", str(empty)), "empty.keys")
    malformed = tmp_path / "bad.keys"
    malformed.write_text(f"k1:{SECRET}\nbad kid!:{SECRET}\n", encoding="utf-8")
    assert_one_line_refusal(run_serve("--media-root", root, "--secret-file", str(malformed)), "line 2")
    short = tmp_path / "short.keys"
    short.write_text("k1:too-short\n", encoding="utf-8")
    assert_one_line_refusal(run_serve("--media-root", root, "--secret-file", str(short)), "short")
    assert_one_line_refusal(
        run_serve("--media-root", root, "--media-root", f"={media.other_root}", "--secret-file", str(key_file)),
        "twice",
    )
    too_many = str(MAX_CONNECTION_LIMIT + 1)
    usage = run_serve("--media-root", root, "--secret-file", str(key_file), "--connection-limit", too_many)
    assert usage.returncode == 2 and "connection-limit" in usage.stderr
    missing = run_serve("--media-root", root)
    assert missing.returncode == 2 and "--secret-file" in missing.stderr


def test_serves_through_the_cli_with_the_env_key_file(media: Media, key_file: Path) -> None:
    args = ["--media-root", str(media.root), "--media-root", f"other={media.other_root}", "--threads", "2", "--healthz-details"]
    with cli_server(args, env={"ORIGIN_SECRET_FILE": str(key_file)}) as (origin, process):
        token = token_for("马也 - Crabbit/海屿你.flac", expires_at=time.time() + 300)
        response = requests.get(origin.url + STREAM + token, headers={"Range": "bytes=0-1"}, timeout=10)
        assert response.status_code == 206
        assert response.content == media.files["马也 - Crabbit/海屿你.flac"][:2]
        other = requests.get(
            origin.url + STREAM + token_for("b.ogg", backend="other", expires_at=time.time() + 300), timeout=10
        )
        assert other.content == b"other-root-bytes"
        health = requests.get(origin.url + "/healthz", timeout=10).json()
        assert health == {"status": "ok", "roots": {"_default": True, "other": True}, "keys_loaded": 1}
        process.terminate()
        out, err = process.communicate(timeout=10)
    assert token not in err and SECRET not in err and SECRET not in out
    assert "/api/private-origin/stream/{token} 206 2 " in err  # the access line
    assert str(media.root) not in out


@pytest.mark.parametrize(
    ("specs", "line"),
    [
        (["="], "origin-server: error: --media-root '=': no path given"),
        (["{root}", "={root}"], "origin-server: error: --media-root '={root}': root (default) given twice"),
    ],
)
def test_media_root_refusals_name_the_flag(
    media: Media, key_file: Path, capsys: pytest.CaptureFixture[str], specs: list[str], line: str
) -> None:
    args = ["serve", "--secret-file", str(key_file)]
    for spec in specs:
        args += ["--media-root", spec.format(root=media.root)]
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.err == line.format(root=media.root) + "\n" and captured.out == ""


def test_catalog_startup_refusals(tmp_path: Path, key_file: Path) -> None:
    """A missing or untrustworthy catalog, or a root without a name beside one: one line, exit 1."""
    from .catalog_support import NAS, publish_sample

    published = publish_sample(tmp_path / "pub")
    root = f"{NAS}={published.media}"
    keys = ("--secret-file", str(key_file))
    missing = tmp_path / "no-catalog"
    assert_one_line_refusal(run_serve("--media-root", root, *keys, "--catalog", str(missing)), "no such directory")
    assert_one_line_refusal(
        run_serve("--media-root", root, *keys, "--catalog", str(tmp_path)), "no manifest.json", str(tmp_path)
    )
    assert_one_line_refusal(
        run_serve("--media-root", str(published.media), *keys, "--catalog", str(published.directory)),
        "--media-root needs a name",
    )
    with open(published.directory / "catalog_read.db", "r+b") as db:
        db.seek(5000)
        db.write(b"corrupt")
    assert_one_line_refusal(
        run_serve("--media-root", root, *keys, "--catalog", str(published.directory)), "does not match", "db_sha256"
    )


def test_a_busy_port_is_one_line(media: Media, key_file: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "origin_server", "serve", "--media-root", str(media.root),
             "--secret-file", str(key_file), "--host", "127.0.0.1", "--port", str(port)],
            capture_output=True, text=True, encoding="utf-8", timeout=60,
        )
    assert result.returncode == 1
    assert result.stderr.startswith(f"origin-server: error: cannot listen on 127.0.0.1:{port}: ")
    assert len(result.stderr.splitlines()) == 1, result.stderr


@pytest.mark.skipif(os.name == "nt", reason="POSIX permissions")
def test_a_key_file_others_can_read_is_one_warning_line(media: Media, key_file: Path) -> None:
    key_file.chmod(0o644)
    with cli_server(["--media-root", str(media.root), "--secret-file", str(key_file)]) as (origin, process):
        process.terminate()
        _out, err = process.communicate(timeout=10)
    warnings = [line for line in err.splitlines() if "warning" in line]
    assert warnings == [f"origin-server: warning: {key_file}: key file is readable by others (mode 644); chmod 600 it"]


@pytest.mark.skipif(os.name == "nt", reason="POSIX open-file limits")
def test_the_default_connection_limit_fits_a_low_open_file_limit(media: Media, key_file: Path) -> None:
    """A system whose hard limit is 1024 open files still starts with the defaults, saying what it allows."""
    import resource

    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    with cli_server(["--media-root", str(media.root), "--secret-file", str(key_file)], preexec_fn=low_limit) as (
        origin,
        process,
    ):
        token = token_for("test.flac", expires_at=time.time() + 300)
        assert requests.get(origin.url + STREAM + token, timeout=10).status_code == 200
    err = process.stderr.read()  # type: ignore[union-attr]
    assert "origin-server: warning: the open-file limit allows 480 connections, not 1000" in err
    explicit = run_serve("--media-root", str(media.root), "--secret-file", str(key_file), "--connection-limit", "1000",
                         preexec_fn=low_limit)
    assert explicit.returncode == 1 and "needs 2064 open files, and the system allows 1024" in explicit.stderr
