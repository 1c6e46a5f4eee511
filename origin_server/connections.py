"""What the origin changes in waitress's connections: a header deadline, files that end early, keep-alive after 304.

Each piece uses a hook waitress offers (a server's ``channel_class``, a
channel's ``task_class``, the server's periodic ``maintenance``), so waitress
itself is not copied or patched:

* **Header deadline.** waitress closes a connection only after
  ``channel_timeout`` seconds *without any byte*, so a client that sends one
  header line every few seconds keeps its connection (and a place under the
  connection limit) forever; a few hundred of them lock everyone out. Here a
  connection must deliver a complete request within ``header_timeout``
  seconds of being accepted, and a request that has begun must be complete
  within ``header_timeout`` seconds of its first byte; otherwise it is
  closed and logged. The clock does not run while the server is still
  answering (a pipelined request waits for us, not the other way round), nor
  on an idle keep-alive connection between requests (``channel_timeout``
  governs those).
* **Files that end early.** :class:`~origin_server.body.FileBody` raises
  :class:`~origin_server.errors.FileEndedEarly`; the channel logs one line
  and closes the connection at once instead of spinning on a writable
  socket with nothing to send.
* **Keep-alive after a response without a body.** waitress 3 closes the
  connection after every 304 (and 204) because such a response carries no
  ``Content-Length``; HTTP/1.1 frames them without one (RFC 9112, 6.3), so
  players and caches revalidating keep their connection.
"""

from __future__ import annotations

import functools
import logging
import time
from typing import Any

from waitress.channel import HTTPChannel
from waitress.server import TcpWSGIServer
from waitress.task import WSGITask

from .accesslog import ACCESS_LOGGER, ERROR_LOGGER, access_line
from .conditional import http_date  # remembered per second: one format a second, not one a response
from .errors import FileEndedEarly

_access = logging.getLogger(ACCESS_LOGGER)
_log = logging.getLogger(ERROR_LOGGER)


@functools.lru_cache(maxsize=256)
def _header_name(name: str) -> str:
    """``content-type`` -> ``Content-Type``, as waitress writes names (the app's names: a small, fixed set)."""
    return "-".join(part.capitalize() for part in name.split("-"))


class OriginTask(WSGITask):
    """waitress's WSGI task: keep-alive after 304 and 204, and a quicker header for ordinary responses.

    The header of an ordinary HTTP/1.1 response (one with a body and a
    ``Content-Length``, on a connection that stays open: every file response)
    is written here in one pass, as waitress writes it (names capitalised,
    ``Server`` and ``Date`` added) except that the app's order is kept
    instead of sorting; waitress's own method, which also handles chunking,
    HTTP/1.0 and closing, takes every other response.
    """

    _bodyless_keep_alive = False

    def build_response_header(self) -> bytes:
        """The status line and headers; a bodyless response no longer forces ``Connection: close``."""
        if self.version == "1.1" and not self.close_on_finish and self.request.headers.get("CONNECTION", "").lower() != "close":
            if self.has_body:
                header = self._plain_header()
                if header is not None:
                    return header
            else:
                self._bodyless_keep_alive = True
                try:
                    return self._waitress_header()
                finally:
                    self._bodyless_keep_alive = False
        return self._waitress_header()

    def _waitress_header(self) -> bytes:
        if not any(name.lower() == "date" for name, _ in self.response_headers):
            self.response_headers.append(("Date", http_date(int(self.start_time))))
        return super().build_response_header()  # type: ignore[no-any-return]

    def _plain_header(self) -> bytes | None:
        """The header of a response with a ``Content-Length`` and only ordinary headers, else None."""
        lines = [f"HTTP/1.1 {self.status}"]
        length = False
        for name, value in self.response_headers:
            name = _header_name(name)
            if name in ("Date", "Server", "Connection", "Transfer-Encoding"):
                return None  # let waitress reconcile these
            if name == "Content-Length":
                length = True
            lines.append(f"{name}: {value}")
        if not length:
            return None
        ident = self.channel.server.adj.ident
        if ident:
            lines.append(f"Server: {ident}")
        lines.append(f"Date: {http_date(int(self.start_time))}")
        lines.append("\r\n")
        return "\r\n".join(lines).encode("latin-1")

    def set_close_on_finish(self) -> None:
        """Close after this response, unless it is a bodyless one that HTTP/1.1 frames by itself."""
        if not self._bodyless_keep_alive:
            super().set_close_on_finish()


class OriginChannel(HTTPChannel):
    """waitress's HTTP channel with a deadline for each request and a clean end for short files."""

    task_class = OriginTask

    def __init__(self, server: OriginServer, sock: Any, addr: Any, adj: Any, map: Any = None) -> None:  # noqa: A002
        super().__init__(server, sock, addr, adj, map)
        # A new connection owes its first request at once.
        self.request_deadline: float | None = time.monotonic() + server.header_timeout

    def received(self, data: bytes) -> bool:
        """Parse bytes from the client; start the clock at a request's first byte, stop it when complete."""
        if self.request is None and self.request_deadline is None:
            self.request_deadline = time.monotonic() + self.server.header_timeout
        result = super().received(data)
        if self.request is None:  # nothing half-received
            self.request_deadline = None
        return result  # type: ignore[no-any-return]

    def past_deadline(self, now: float) -> bool:
        """True when the client has let its request's deadline pass (``now``: ``time.monotonic()``)."""
        deadline = self.request_deadline
        if deadline is None:
            return False
        if self.requests or self.total_outbufs_len:
            # The server is still answering: the client owes nothing until it is done.
            self.request_deadline = now + self.server.header_timeout
            return False
        return now >= deadline

    def _flush_some(self, do_close: bool = True) -> bool:
        try:
            return super()._flush_some(do_close=do_close)  # type: ignore[no-any-return]
        except FileEndedEarly as error:
            if not self.will_close:
                self.will_close = True
                _log.warning(
                    "closed the connection to %s: %s (replaced while it was sent? replace media files by rename)",
                    self.addr[0] if self.addr else "-",
                    error,
                )
            return False


class OriginServer(TcpWSGIServer):
    """waitress's TCP server with :class:`OriginChannel` connections and the request deadline enforced.

    ``header_timeout`` (seconds) is set on the instance before it accepts a
    connection; the deadline is checked in waitress's ``maintenance``, which
    runs every ``cleanup_interval`` seconds.
    """

    channel_class = OriginChannel
    header_timeout: float = 5.0

    def maintenance(self, now: float) -> None:
        """waitress's idle timeout, then close every connection past its request deadline."""
        super().maintenance(now)
        monotonic = time.monotonic()
        for channel in list(self.active_channels.values()):
            if not channel.will_close and channel.past_deadline(monotonic):
                channel.will_close = True
                client = channel.addr[0] if channel.addr else "-"
                reason = f"no complete request within {self.header_timeout:g} s"
                _access.info(access_line("-", "-", 408, "-", None, client, "-", reason))
