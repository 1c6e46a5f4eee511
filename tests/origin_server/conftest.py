"""Fixtures for the origin: a media tree with a secret beside it, keys, tokens, apps and real servers."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import falcon.testing
import pytest
from waitress import wasyncore

from origin_server.app import create_app
from origin_server.config import OriginConfig
from origin_server.server import make_server
from origin_server.keys import KeyRing
from origin_server.tokens import STREAM_PATH, create_origin_token
from tests.conftest import stop_process

SECRET = "s3cret-for-tests-0123456789abcdef-0123456789"
NOW = 1_800_000_000.0
#: The instant the token tests mint and verify at (2026-01-01T00:00:00Z), as tests/vectors/ does.
TOKEN_NOW = 1767225600
#: A locator with non-ASCII segments, the one tests/vectors/ signs.
TOKEN_LOCATOR = "netease/马也/海屿你.flac"
EXPIRES = NOW + 600
#: Bytes that live beside the media root; no response may ever contain them.
OUTSIDE_BYTES = b"OUTSIDE-THE-ROOT-" + bytes(range(256)) * 4
STREAM = STREAM_PATH


@dataclass
class Media:
    """A media root with known files, and a secret file beside it."""

    root: Path
    other_root: Path
    outside: Path
    files: dict[str, bytes]


@pytest.fixture
def media(tmp_path: Path) -> Media:
    """Build ``root/`` (plain, nested, Chinese, awkward names) and ``secret.bin`` beside it."""
    root = tmp_path / "media"
    other = tmp_path / "other"
    root.mkdir()
    other.mkdir()
    outside = tmp_path / "secret.bin"
    outside.write_bytes(OUTSIDE_BYTES)
    rng = __import__("random").Random(5)
    files = {
        "test.flac": b"test-audio",
        "album/track.mp3": rng.randbytes(300_000),
        "马也 - Crabbit/海屿你.flac": rng.randbytes(70_000),
        'odd/a "quoted" name #1 ?.m4a': b"odd-bytes" * 100,
        "empty.wav": b"",
    }
    if os.name == "nt":  # '?' and '"' are not allowed in Windows names
        files['odd/a quoted name #1.m4a'] = files.pop('odd/a "quoted" name #1 ?.m4a')
    for locator, data in files.items():
        path = root.joinpath(*locator.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (other / "b.ogg").write_bytes(b"other-root-bytes")
    return Media(root=root, other_root=other, outside=outside, files=files)


def write_private(path: Path, text: str) -> Path:
    """Write a key file readable by its owner only, as docs/tokens.md tells operators to."""
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


def token_for(locator: str, *, backend: str | None = None, expires_at: float = EXPIRES, **extra: object) -> str:
    """Mint a token with the test secret."""
    return create_origin_token(SECRET, locator, expires_at, backend=backend, **extra)


def b64url(data: bytes) -> str:
    """Unpadded base64url, as a str."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_segments(header: bytes, claims: bytes, secret: str = SECRET) -> str:
    """A token over any header and claims bytes, correctly signed (HS256) with ``secret``."""
    signing_input = b64url(header) + "." + b64url(claims)
    return signing_input + "." + b64url(hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest())


def raw_token(claims: dict[str, object], secret: str = SECRET) -> str:
    """Mint an HS256 JWS by hand, for claims our own minting function refuses (absolute locators...).

    The server must hold even when another language's minting code has no such checks.
    """
    header = json.dumps({"alg": "HS256", "typ": "JWT"}).encode("utf-8")
    return sign_segments(header, json.dumps(claims, ensure_ascii=False).encode("utf-8"), secret)


def evil_token(locator: str) -> str:
    """A correctly signed, unexpired token for any locator at all."""
    return raw_token({"locator": locator, "exp": EXPIRES})


def make_config(media: Media, **overrides: object) -> OriginConfig:
    """A config over the test media (default root plus ``other``), fixed clock."""
    options: dict[str, object] = {
        "roots": {None: media.root, "other": media.other_root},
        "keys": KeyRing.single(SECRET),
        "clock": lambda: NOW,
    }
    options.update(overrides)
    return OriginConfig(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(media: Media) -> falcon.testing.TestClient:
    """falcon's TestClient over the app with the test media."""
    return falcon.testing.TestClient(create_app(make_config(media)))


def open_fds() -> int | None:
    """Count this process's open file descriptors (Linux), or None where unknown."""
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        return None
    return len(os.listdir(fd_dir))


@dataclass
class Running:
    """A real server on 127.0.0.1."""

    url: str
    port: int


@pytest.fixture
def serve_app() -> Iterator[Callable[..., Running]]:
    """Start a real waitress server (in a thread of this process) for an app; stopped at teardown."""
    servers = []

    def start(app: object, *, threads: int = 4, trusted_proxy: str | None = None, **limits: float) -> Running:
        """Start ``app``; ``limits`` (``connection_limit``, ``header_timeout``) default to the server's."""
        server = make_server(app, host="127.0.0.1", port=0, threads=threads, trusted_proxy=trusted_proxy, **limits)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        port = int(server.effective_port)
        return Running(url=f"http://127.0.0.1:{port}", port=port)

    yield start
    for server, thread in servers:
        server.task_dispatcher.shutdown(timeout=2)
        # Closing every channel empties the loop's map, so run() returns within a poll interval.
        wasyncore.close_all(server._map)
        thread.join(timeout=5)


def closed_by_server(sock: socket.socket, *, within: float, trickle: bool, every: float = 0.2) -> bool:
    """Whether the server closes ``sock`` within ``within`` seconds, sending a header line every ``every`` s if ``trickle``."""
    sock.settimeout(every)
    deadline = time.monotonic() + within
    number = 0
    while time.monotonic() < deadline:
        try:
            if sock.recv(1024) == b"":
                return True
        except TimeoutError:
            pass
        except OSError:
            return True
        if trickle:
            number += 1
            try:
                sock.sendall(f"X-Slow-{number}: x\r\n".encode())
            except OSError:
                return True
    return False


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def cli_server(
    args: list[str],
    *,
    env: dict[str, str] | None = None,
    timeout: float = 20,
    preexec_fn: Callable[[], None] | None = None,
) -> Iterator[tuple[Running, subprocess.Popen]]:
    """Run ``python -m origin_server serve ARGS --port 0`` and yield once its start line names the port."""
    command = [sys.executable, "-m", "origin_server", "serve", *args, "--host", "127.0.0.1", "--port", "0"]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
        text=True,
        encoding="utf-8",
        preexec_fn=preexec_fn,  # noqa: PLW1509 - only sets a resource limit
    )
    try:
        deadline = time.monotonic() + timeout
        line = ""
        while time.monotonic() < deadline:
            line = process.stdout.readline()  # type: ignore[union-attr]
            if line or process.poll() is not None:
                break
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not match:
            process.kill()
            _out, err = process.communicate(timeout=5)
            raise AssertionError(f"server did not start: {line!r} {err!r}")
        port = int(match.group(1))
        yield Running(url=f"http://127.0.0.1:{port}", port=port), process
    finally:
        stop_process(process)
