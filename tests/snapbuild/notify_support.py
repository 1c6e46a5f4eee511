"""A real HTTP(S) receiver on 127.0.0.1 for the notification tests: records each POST, answers as scripted."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: A scripted answer: an HTTP status, or HANG (read the request, never answer).
HANG = "hang"


@dataclass(frozen=True)
class Received:
    """One request as the receiver got it (header names in lower case)."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class Receiver:
    """A threaded ``http.server`` on 127.0.0.1: each path answers from its script (the last entry repeats).

    ``on_request`` runs inside the handler before it answers, so a test can
    look at the world as the receiver sees it when the notice arrives.
    """

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.requests: list[Received] = []
        self.scripts: dict[str, list[int | str]] = {}
        self.on_request: Callable[[Received], None] | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802  (http.server's name)
                length = int(self.headers.get("Content-Length") or 0)
                seen = Received("POST", self.path, {k.lower(): v for k, v in self.headers.items()},
                                self.rfile.read(length))
                with receiver._lock:
                    receiver.requests.append(seen)
                    script = receiver.scripts.get(self.path, [204])
                    answer = script.pop(0) if len(script) > 1 else script[0]
                if receiver.on_request is not None:
                    receiver.on_request(seen)
                if answer == HANG:
                    receiver._released.wait(60)
                    return
                self.send_response(int(answer))
                self.send_header("Content-Length", "0")
                if 300 <= int(answer) < 400:
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.scheme = "http"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, tls))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"{self.scheme}://127.0.0.1:{self.server.server_address[1]}{path}"

    def posts(self, path: str = "/hook") -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(10)


@contextmanager
def receiver(tls: tuple[Path, Path] | None = None) -> Iterator[Receiver]:
    with Receiver(tls) as running:
        yield running


def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was just free)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
