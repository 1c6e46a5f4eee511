"""Hostile clients against a real waitress server on 127.0.0.1: memory, trickling, short files, FIFOs, keep-alive."""

from __future__ import annotations

import gc
import http.client
import logging
import os
import socket
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
import requests

from origin_server.app import create_app

from .conftest import STREAM, Media, closed_by_server, make_config, open_fds, token_for


def exchange(sock: socket.socket, request: bytes) -> int:
    """Send one request on a kept-alive connection; read the whole response; return its status."""
    sock.sendall(request)
    reader = sock.makefile("rb")
    status = int(reader.readline().split()[1])
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    reader.read(length)
    return status


def memory_kept(
    port: int, method: str, tokens: Iterable[str], status: int, between: Callable[[], None] = lambda: None
) -> int:
    """Bytes the server's process still holds after ``method`` requests for each token, each answered ``status``.

    One kept-alive connection; 20 requests first warm up falcon's router and the first log records.
    """
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        for number in range(20):
            exchange(sock, f"{method} {STREAM}warm{number} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for token in tokens:
                between()
                assert exchange(sock, f"{method} {STREAM}{token} HTTP/1.1\r\nHost: x\r\n\r\n".encode()) == status
            gc.collect()
            return tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()


def test_junk_tokens_leave_no_memory_behind(media: Media, serve_app) -> None:  # noqa: ANN001
    """Nothing proportional to a token is kept before its MAC matched (800 junk tokens of 10 KB here)."""
    origin = serve_app(create_app(make_config(media)))
    kept = memory_kept(origin.port, "GET", (f"{number:08d}" + "A" * 10_000 for number in range(800)), 403)
    # Python's urlsplit (in waitress's parser) keeps its last 128 targets, 2.6 MB here; not 8 MB more.
    assert kept < 4_000_000, f"{kept} bytes kept after 8 MB of junk tokens"


def test_unchecked_tokens_of_preflights_leave_no_memory_behind(
    media: Media, serve_app, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    """A CORS preflight answers 204 without checking its token: nothing of such a token is kept, access log on."""
    origin = serve_app(create_app(make_config(media)))
    # Under the longest token, so the access log reads each; the captured records are the test's, not the server's.
    junk = (f"{number:08d}" + "A" * 1990 for number in range(600))
    with caplog.at_level(logging.INFO, logger="origin_server.access"):
        kept = memory_kept(origin.port, "OPTIONS", junk, 204, between=caplog.clear)
    # urlsplit's 128 remembered targets (about 0.5 MB here) and the captured log text (about
    # 0.6 MB); not 1.2 MB of tokens more (a digest cache keyed by them kept 2.4 MB in all).
    assert kept < 1_700_000, f"{kept} bytes kept after 1.2 MB of unchecked tokens"


def test_oversized_headers_and_bodies_are_refused_before_the_app(media: Media, serve_app) -> None:  # noqa: ANN001
    origin = serve_app(create_app(make_config(media)))
    with socket.create_connection(("127.0.0.1", origin.port), timeout=10) as sock:
        big_header = "X-Junk: " + "j" * (20 * 1024)
        assert exchange(sock, f"GET /healthz HTTP/1.1\r\nHost: x\r\n{big_header}\r\n\r\n".encode()) == 431
    with socket.create_connection(("127.0.0.1", origin.port), timeout=10) as sock:
        body = b"b" * (9 * 1024)
        request = f"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        assert exchange(sock, request) == 413


class Trickle:
    """Connections that each send a request line, then one header line every ``interval`` seconds."""

    def __init__(self, port: int, count: int, interval: float = 0.5) -> None:
        self.sockets = []
        for _ in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /healthz HTTP/1.1\r\n")
            self.sockets.append(sock)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self.thread.start()

    def _run(self, interval: float) -> None:
        number = 0
        while not self.stop.wait(interval):
            number += 1
            for sock in self.sockets:
                try:
                    sock.sendall(f"X-Trickle-{number}: x\r\n".encode())
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=10)
        for sock in self.sockets:
            sock.close()


def test_trickling_connections_do_not_lock_out_a_new_client(media: Media, serve_app) -> None:  # noqa: ANN001
    origin = serve_app(create_app(make_config(media)))  # the server's default limits
    trickle = Trickle(origin.port, 300)
    try:
        newcomer = requests.get(origin.url + STREAM + token_for("test.flac"), timeout=2)
        assert newcomer.status_code == 200 and newcomer.content == media.files["test.flac"]
    finally:
        trickle.close()


def test_the_header_deadline_closes_slow_requests_not_idle_keep_alive(
    media: Media, serve_app, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    origin = serve_app(create_app(make_config(media)), header_timeout=1)
    with caplog.at_level(logging.INFO, logger="origin_server.access"):
        with socket.create_connection(("127.0.0.1", origin.port), timeout=10) as slow:
            slow.sendall(b"GET /healthz HTTP/1.1\r\n")
            assert closed_by_server(slow, within=15, trickle=True)
        with socket.create_connection(("127.0.0.1", origin.port), timeout=10) as silent:
            assert closed_by_server(silent, within=15, trickle=False)
    assert 'reason="no complete request within 1 s"' in caplog.text
    # A connection that finished its request and waits between requests is not cut off by it.
    connection = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    try:
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b'{"status": "ok"}'
        first = connection.sock
        time.sleep(2.5)
        connection.request("GET", "/healthz")
        assert connection.getresponse().status == 200
        assert connection.sock is first  # the same connection, kept open
    finally:
        connection.close()


def test_a_file_cut_short_while_streaming_ends_the_connection(
    media: Media, serve_app, caplog: pytest.LogCaptureFixture  # noqa: ANN001
) -> None:
    """A file truncated in place mid-stream: the client gets a short body and the connection ends."""
    track = media.root / "long.flac"
    size = 48 * 1024 * 1024
    track.write_bytes(os.urandom(1 << 20) * 48)
    origin = serve_app(create_app(make_config(media)))
    with caplog.at_level(logging.WARNING, logger="origin_server"):
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.settimeout(10)
            sock.connect(("127.0.0.1", origin.port))
            sock.sendall(f"GET {STREAM}{token_for('long.flac')} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            received = sock.recv(4096)
            assert received.startswith(b"HTTP/1.1 200")
            with track.open("r+b") as handle:  # what `cp` over a playing file does
                handle.truncate(0)
            while True:
                try:
                    chunk = sock.recv(1 << 16)
                except TimeoutError:
                    pytest.fail("the server kept the connection open after the file ended")
                if not chunk:
                    break
                received += chunk
    assert len(received) < size
    assert "file ended" in caplog.text and "long.flac" in caplog.text


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_never_opened(media: Media, serve_app, tmp_path: Path) -> None:  # noqa: ANN001
    """Opening a FIFO releases a writer waiting on it: the origin must refuse it without opening it."""
    outside = tmp_path / "outside.fifo"
    os.mkfifo(outside)
    (media.root / "link.flac").symlink_to(outside)
    inside = media.root / "inside.flac"
    os.mkfifo(inside)
    released = {outside: threading.Event(), inside: threading.Event()}

    def writer(fifo: Path) -> None:
        fd = os.open(fifo, os.O_WRONLY)  # blocks until someone opens the FIFO for reading
        released[fifo].set()
        os.close(fd)

    writers = [threading.Thread(target=writer, args=(fifo,), daemon=True) for fifo in released]
    for thread in writers:
        thread.start()
    origin = serve_app(create_app(make_config(media)))
    try:
        for locator in ("link.flac", "inside.flac"):
            response = requests.get(origin.url + STREAM + token_for(locator), timeout=10)
            assert response.status_code == 404
        assert not any(event.wait(1) for event in released.values()), "the origin opened a FIFO"
    finally:
        for fifo in released:  # let the writers go
            fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
            released[fifo].wait(5)
            os.close(fd)
        for thread in writers:
            thread.join(timeout=5)


def test_a_304_and_a_204_keep_the_connection(media: Media, serve_app) -> None:  # noqa: ANN001
    origin = serve_app(create_app(make_config(media, cors_origins=("https://player.example",))))
    path = STREAM + token_for("album/track.mp3")
    connection = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Range": "bytes=0-1"})
        first = connection.getresponse()
        etag = first.getheader("ETag")
        first.read()
        sock = connection.sock
        connection.request("GET", path, headers={"If-None-Match": etag})
        revalidated = connection.getresponse()
        revalidated.read()
        assert revalidated.status == 304 and revalidated.getheader("Connection") is None
        preflight_headers = {"Origin": "https://player.example", "Access-Control-Request-Method": "GET"}
        connection.request("OPTIONS", path, headers=preflight_headers)
        preflight = connection.getresponse()
        preflight.read()
        assert preflight.status == 204 and preflight.getheader("Connection") is None
        connection.request("GET", path, headers={"Range": "bytes=2-3"})
        again = connection.getresponse()
        assert again.status == 206 and again.read() == media.files["album/track.mp3"][2:4]
        assert connection.sock is sock  # one connection for all four
    finally:
        connection.close()


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="Windows' select() takes at most 512 sockets")
def test_the_loop_serves_sockets_numbered_past_1024(media: Media, serve_app) -> None:  # noqa: ANN001
    """select() cannot wait on a descriptor numbered 1024 or more; the origin's loop can (poll())."""
    if open_fds() is None:
        pytest.skip("no /proc/self/fd here")
    origin = serve_app(create_app(make_config(media)))  # the default limit, 1000 connections
    idle = [socket.create_connection(("127.0.0.1", origin.port), timeout=10) for _ in range(700)]
    try:
        deadline = time.monotonic() + 10
        while open_fds() < 1400 and time.monotonic() < deadline:  # type: ignore[operator]
            time.sleep(0.1)  # until the server has accepted them (both ends live in this process)
        assert open_fds() >= 1400  # type: ignore[operator]
        with socket.create_connection(("127.0.0.1", origin.port), timeout=10) as newcomer:
            # Descriptors are numbered lowest-free first: both ends of this one are past 1024.
            assert newcomer.fileno() > 1024
            assert exchange(newcomer, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n") == 200
    finally:
        for sock in idle:
            sock.close()
