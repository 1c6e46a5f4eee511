"""The origin on a real waitress server on 127.0.0.1, driven by real HTTP clients."""

from __future__ import annotations

import logging
import os
import random
import socket
import time
import urllib.parse

import pytest
import requests

from origin_server.app import create_app
from origin_server.errors import ConfigError, SettingError
from origin_server.server import MAX_CONNECTION_LIMIT, make_server

from .conftest import (
    NOW,
    OUTSIDE_BYTES,
    SECRET,
    STREAM,
    Media,
    Running,
    evil_token,
    make_config,
    open_fds,
    raw_token,
    token_for,
)


@pytest.fixture
def origin(media: Media, serve_app) -> Running:  # noqa: ANN001 - fixture factory
    return serve_app(create_app(make_config(media)))


def raw_request(port: int, request: bytes, *, timeout: float = 10) -> bytes:
    """Send raw bytes, read until the server closes; returns the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks)


def test_full_and_ranged_gets_byte_for_byte(origin: Running, media: Media) -> None:
    rng = random.Random(7)
    with requests.Session() as session:
        for locator, data in media.files.items():
            url = origin.url + STREAM + token_for(locator)
            whole = session.get(url, timeout=10)
            assert whole.status_code == 200 and whole.content == data, (locator, whole.text)
            assert whole.headers["Content-Length"] == str(len(data))
            assert "Transfer-Encoding" not in whole.headers
            if not data:
                continue
            for _ in range(10):
                start = rng.randrange(len(data))
                end = rng.randrange(start, len(data))
                part = session.get(url, headers={"Range": f"bytes={start}-{end}"}, timeout=10)
                assert part.status_code == 206 and part.content == data[start : end + 1]
                assert part.headers["Content-Range"] == f"bytes {start}-{end}/{len(data)}"
            probe = session.get(url, headers={"Range": "bytes=0-1"}, timeout=10)
            assert probe.status_code == 206 and probe.content == data[:2]
            suffix = session.get(url, headers={"Range": "bytes=-7"}, timeout=10)
            assert suffix.content == data[-7:]


def test_utf8_names_head_304_416(origin: Running, media: Media) -> None:
    locator = "马也 - Crabbit/海屿你.flac"
    url = origin.url + STREAM + token_for(locator)
    got = requests.get(url, timeout=10)
    assert got.content == media.files[locator]
    disposition = got.headers["Content-Disposition"]
    assert disposition.isascii()
    assert urllib.parse.unquote(disposition.split("filename*=UTF-8''")[1]) == "海屿你.flac"
    head = requests.head(url, timeout=10)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["Content-Length"] == str(len(media.files[locator]))
    assert head.headers["ETag"] == got.headers["ETag"]
    cached = requests.get(url, headers={"If-None-Match": got.headers["ETag"]}, timeout=10)
    assert cached.status_code == 304 and cached.content == b""
    beyond = requests.get(url, headers={"Range": "bytes=999999-"}, timeout=10)
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(media.files[locator])}"
    assert beyond.json() == {"error": "range_not_satisfiable"}


TRAVERSAL_LOCATORS = [
    "../secret.bin",
    "album/../../secret.bin",
    "..\\secret.bin",
    "album\\..\\..\\secret.bin",
    "%2e%2e/secret.bin",
    "%2e%2e%2fsecret.bin",
    "..%2fsecret.bin",
    "..%5csecret.bin",
    "%c0%ae%c0%ae/secret.bin",
    "．．/secret.bin",
    "\u2025/secret.bin",
    "..\u2215secret.bin",
    "..\uff0fsecret.bin",
    "/secret.bin",
    "//secret.bin",
    "\\\\127.0.0.1\\c$\\secret.bin",
    "C:\\secret.bin",
    "C:secret.bin",
    "secret.bin::$DATA",
    "album/../..",
    "./../secret.bin",
    "album/./../../secret.bin",
    "link_dir/secret.bin",
    "link_file.flac",
    "album/up/secret.bin",
    "NUL",
    "CON.flac",
    "secret.bin\x00.flac",
    "..",
    ".",
    "",
]


def test_traversal_corpus_never_returns_outside_bytes(media: Media, serve_app) -> None:  # noqa: ANN001
    if hasattr(os, "symlink") and os.name != "nt":
        (media.root / "link_file.flac").symlink_to(media.outside)
        (media.root / "link_dir").symlink_to(media.outside.parent)
        (media.root / "album" / "up").symlink_to("../..")
    origin = serve_app(create_app(make_config(media)))
    locators = [*TRAVERSAL_LOCATORS, str(media.outside), media.outside.as_posix(), str(media.outside).upper()]
    with requests.Session() as session:
        for locator in locators:
            for backend in (None, "other", "../media"):
                claims = {"locator": locator, "exp": NOW + 600}
                if backend:
                    claims["backend"] = backend
                response = session.get(origin.url + STREAM + raw_token(claims), timeout=10)
                # 403 when the token layer already refuses the claim (an empty locator).
                assert response.status_code in (403, 404), locator
                assert response.json() in ({"error": "not_found"}, {"error": "invalid_token"})
                assert OUTSIDE_BYTES[:16] not in response.content
    # The URL itself: the route takes one segment, whatever the encoding.
    paths = [
        "/api/private-origin/stream/../../secret.bin",
        "/api/private-origin/stream/..%2f..%2fsecret.bin",
        "/api/private-origin/stream/%2e%2e%2f%2e%2e%2fsecret.bin",
        "/../secret.bin",
        "/%2e%2e/secret.bin",
        "//secret.bin",
        "/api/private-origin/stream/" + evil_token("../secret.bin"),
        "/api/private-origin/stream/" + evil_token("link_dir/secret.bin"),
    ]
    for path in paths:
        response = raw_request(origin.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        status = int(response.split(b" ", 2)[1])
        assert status in (400, 403, 404), path
        assert OUTSIDE_BYTES[:16] not in response


def test_forty_paused_players_leave_the_server_answering(media: Media, serve_app) -> None:  # noqa: ANN001
    """Players that stop reading must not hold worker threads (4 threads, 40 players)."""
    big = media.root / "big.flac"
    # Larger than waitress's 16 MiB output buffer plus socket buffers: a server
    # that pushed the body through a worker thread would block that thread.
    big.write_bytes(os.urandom(40 * 1024 * 1024))
    origin = serve_app(create_app(make_config(media)), threads=4)
    request = f"GET {STREAM}{token_for('big.flac')} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    players = []
    try:
        for _ in range(40):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", origin.port))
            sock.sendall(request)
            assert sock.recv(100).startswith(b"HTTP/1.1 200")
            players.append(sock)  # and never read again
        newcomer = requests.get(
            origin.url + STREAM + token_for("album/track.mp3"), headers={"Range": "bytes=0-1"}, timeout=5
        )
        assert newcomer.status_code == 206
        assert newcomer.content == media.files["album/track.mp3"][:2]
        health = requests.get(origin.url + "/healthz", timeout=5)
        assert health.status_code == 200
    finally:
        for sock in players:
            sock.close()


def test_no_file_handle_leaks(origin: Running) -> None:
    if open_fds() is None:
        pytest.skip("no /proc/self/fd here")
    url = origin.url + STREAM + token_for("album/track.mp3")
    etag = requests.get(url, timeout=10).headers["ETag"]

    def burst() -> None:
        for _ in range(10):
            with requests.Session() as session:
                session.head(url, timeout=10)
                session.get(url, headers={"If-None-Match": etag}, timeout=10)
                session.get(url, headers={"Range": "bytes=99999999-"}, timeout=10)
                session.get(url, headers={"Range": "bytes=0-1"}, timeout=10)
                session.get(url, timeout=10)
                session.get(origin.url + STREAM + token_for("missing.flac"), timeout=10)
                session.get(origin.url + STREAM + "garbage", timeout=10)

    def settled() -> int:
        # Closed client sockets are reaped by waitress's loop shortly after.
        deadline = time.monotonic() + 5
        count = open_fds()
        while time.monotonic() < deadline:
            time.sleep(0.2)
            again = open_fds()
            if again == count:
                break
            count = again
        return count  # type: ignore[return-value]

    burst()
    before = settled()
    burst()
    # 70 more requests, each opening a file: every handle must be closed again.
    deadline = time.monotonic() + 15
    while open_fds() > before and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.2)
    assert open_fds() <= before  # type: ignore[operator]


def test_access_log_has_no_token_and_honours_trusted_proxy(
    media: Media, serve_app, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    direct = serve_app(create_app(make_config(media)))
    proxied = serve_app(create_app(make_config(media)), trusted_proxy="127.0.0.1")
    token = token_for("test.flac")
    with caplog.at_level(logging.INFO):
        requests.get(direct.url + STREAM + token, headers={"X-Forwarded-For": "203.0.113.9"}, timeout=10)
        requests.get(proxied.url + STREAM + token, headers={"X-Forwarded-For": "203.0.113.7"}, timeout=10)
        requests.get(proxied.url + STREAM + token + "x", timeout=10)
    lines = [r.getMessage() for r in caplog.records if r.name == "origin_server.access"]
    assert len(lines) == 3
    assert lines[0].split(" ")[5] == "127.0.0.1"
    assert lines[1].split(" ")[5] == "203.0.113.7"
    assert lines[2].split(" ")[2] == "403"
    assert token not in caplog.text and SECRET not in caplog.text


def test_waitress_error_log_has_no_token(media: Media, serve_app, caplog: pytest.LogCaptureFixture) -> None:  # noqa: ANN001
    """waitress logs the request path when an app fails outside falcon; the filter scrubs it."""
    inner = create_app(make_config(media))

    def failing(environ: dict, start_response: object) -> object:
        if environ["PATH_INFO"].endswith("boom"):
            raise RuntimeError("failure outside falcon")
        return inner(environ, start_response)

    origin = serve_app(failing)
    token = token_for("test.flac")
    with caplog.at_level(logging.INFO):
        response = requests.get(origin.url + STREAM + token + "boom", timeout=10)
        assert response.status_code == 500
        time.sleep(0.2)
    assert "Exception while serving" in caplog.text
    assert "/stream/<redacted>" in caplog.text
    assert token not in caplog.text


@pytest.mark.parametrize(
    ("limits", "setting", "value"),
    [
        ({"connection_limit": MAX_CONNECTION_LIMIT + 1}, "connection_limit", MAX_CONNECTION_LIMIT + 1),
        ({"connection_limit": 0}, "connection_limit", 0),
        ({"threads": 0}, "threads", 0),
        ({"threads": 257}, "threads", 257),
    ],
)
def test_limits_out_of_range_are_refused_before_binding(limits: dict[str, int], setting: str, value: int) -> None:
    with pytest.raises(SettingError) as caught:
        make_server(object(), port=0, **limits)  # type: ignore[arg-type]
    assert (caught.value.setting, caught.value.value) == (setting, value)
    assert str(caught.value).startswith(setting.replace("_", " ") + " must be between 1 and ")
    assert "--" not in str(caught.value)  # the command line adds its own flag names


@pytest.mark.parametrize(
    ("forwarded", "logged"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.1, 203.0.113.7", "203.0.113.7"),  # the hop the proxy appended
        ("[2001:db8::1]", "2001:db8::1"),
        ("2001:db8::1", "2001:db8::1"),
        ("203.0.113.7 GET /forged 200", "127.0.0.1"),
        ("evil.example", "127.0.0.1"),
        ("203.0.113.7:443", "127.0.0.1"),
        ('::1%x tok=forged reason="forged by client"', "127.0.0.1"),  # a zone id may hold any text
        ("fe80::1%eth0", "127.0.0.1"),
        ("", "127.0.0.1"),
    ],
)
def test_only_a_valid_forwarded_address_is_logged(
    media: Media, serve_app, caplog: pytest.LogCaptureFixture, forwarded: str, logged: str  # noqa: ANN001
) -> None:
    proxied = serve_app(create_app(make_config(media)), trusted_proxy="127.0.0.1")
    with caplog.at_level(logging.INFO, logger="origin_server.access"):
        response = requests.get(
            proxied.url + STREAM + token_for("test.flac"), headers={"X-Forwarded-For": forwarded}, timeout=10
        )
    assert response.status_code == 200
    (line,) = [r.getMessage() for r in caplog.records if r.name == "origin_server.access"]
    fields = line.split(" ")
    assert len(fields) == 7 and fields[5] == logged, line


def test_a_busy_port_is_one_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError) as caught:
            make_server(object(), host="127.0.0.1", port=port)
    assert str(caught.value).startswith(f"cannot listen on 127.0.0.1:{port}: ")
    with pytest.raises(SettingError, match="not an IP address"):
        make_server(object(), port=0, trusted_proxy="proxy.example")
