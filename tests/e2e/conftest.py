"""Helpers for the end-to-end tests: the real CLIs as subprocesses and a real origin server."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.conftest import stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]

# 32+ bytes, as `origin-server serve` requires; test-only, never a real secret.
TEST_SECRET = "e2e-test-secret-0123456789abcdef-0123456789"

STREAM_PATH = "/api/private-origin/stream/"


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess: the (already isolated) test env, UTF-8 I/O."""
    env = dict(os.environ)
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUTF8"] = "1"
    env.pop("SOURCE_DATE_EPOCH", None)
    if extra:
        env.update(extra)
    return env


def run_cli(
    program: str,
    *args: str | os.PathLike[str],
    cwd: Path | None = None,
    timeout: float = 300,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``snapbuild`` or ``origin-server`` (as ``python -m``) and capture its output."""
    module = {"snapbuild": "snapbuild", "origin-server": "origin_server"}[program]
    return subprocess.run(
        [sys.executable, "-m", module, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=timeout,
        env=cli_env(env),
    )


def run_ok(program: str, *args: str | os.PathLike[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    """Run a CLI and fail the test with its output when it does not exit 0."""
    result = run_cli(program, *args, **kwargs)  # type: ignore[arg-type]
    assert result.returncode == 0, f"{program} {' '.join(map(str, args))} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def git(*args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the real git CLI and fail the test when it does not exit 0."""
    result = subprocess.run(
        ["git", *map(str, args)], cwd=cwd, capture_output=True, text=True, encoding="utf-8",
        errors="replace", timeout=timeout,
    )
    assert result.returncode == 0, f"git {' '.join(map(str, args))} -> {result.returncode}\n{result.stdout}\n{result.stderr}"
    return result


def db_matches_manifest(clone: Path) -> bool:
    """The clone's ``catalog_read.db`` exists and is the database its checked-out ``manifest.json`` names."""
    manifest = json.loads((clone / "manifest.json").read_text(encoding="utf-8"))
    db = clone / "catalog_read.db"
    return db.exists() and hashlib.sha256(db.read_bytes()).hexdigest() == manifest["db_sha256"]


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWS compact serialization writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_token_stdlib(
    secret: str, locator: str, expires_at: float, *, backend: str | None = None, kid: str | None = None
) -> str:
    """Mint an origin token with the standard library only (the recipe of docs/tokens.md).

    A public service written without snapbuild installed does exactly this.
    """
    header: dict[str, str] = {"alg": "HS256", "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    claims: dict[str, object] = {"locator": locator, "exp": int(expires_at)}
    if backend is not None:
        claims["backend"] = backend
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
        + "."
        + b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    )
    mac = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def write_key_file(path: Path, secret: str = TEST_SECRET, kid: str | None = None) -> Path:
    """Write an origin key file (one ``KID:SECRET`` line, or a bare secret)."""
    path.write_text((f"{kid}:{secret}" if kid else secret) + "\n", encoding="utf-8")
    path.chmod(0o600)  # as docs/tokens.md tells operators (the origin warns otherwise)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OriginProcess:
    """A running ``origin-server serve`` subprocess."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def stream_url(self, token: str) -> str:
        """The full stream URL for ``token``."""
        return self.base_url + STREAM_PATH + token

    def log_text(self) -> str:
        """Everything the server wrote to stdout/stderr so far (its access log included)."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextlib.contextmanager
def origin_server(
    workdir: Path,
    media_roots: Sequence[str | Path],
    *,
    secret_file: Path,
    extra_args: Sequence[str] = (),
    startup_timeout: float = 60,
) -> Iterator[OriginProcess]:
    """Start a real ``origin-server serve`` (waitress) on a free port; stop it afterwards.

    ``media_roots`` are passed as repeated ``--media-root`` values
    (``PATH`` or ``NAME=PATH``).
    """
    port = free_port()
    log_path = workdir / f"origin-{port}.log"
    args = [sys.executable, "-m", "origin_server", "serve", "--host", "127.0.0.1", "--port", str(port),
            "--secret-file", str(secret_file)]
    for root in media_roots:
        args += ["--media-root", str(root)]
    args += list(extra_args)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=cli_env())
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"origin-server exited with {process.returncode}:\n"
                    + log_path.read_text(encoding="utf-8", errors="replace")
                )
            try:
                if requests.get(base_url + "/healthz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("origin-server did not answer /healthz in time:\n"
                                     + log_path.read_text(encoding="utf-8", errors="replace"))
            time.sleep(0.1)
        yield OriginProcess(process, base_url, log_path)
    finally:
        stop_process(process, timeout=15)

