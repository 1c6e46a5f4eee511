"""Build the waitress server for the origin app (used by ``origin-server serve``, tests and benchmarks).

The server is waitress with the origin's connection handling
(:mod:`.connections`): a deadline for each request, files that end early
closed cleanly, keep-alive after 304. On POSIX waitress's loop uses
``poll()``, which has no ceiling on socket numbers, so the connection limit
may go far past 1024 (the open-file limit is raised to match); on Windows it
uses ``select()``, which takes at most 512 sockets.
"""

from __future__ import annotations

import ipaddress
import logging
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import waitress.server
from waitress import wasyncore
from waitress.adjustments import Adjustments
from waitress.task import ThreadedTaskDispatcher

from .accesslog import ACCESS_LOGGER, RedactTokens, install_redaction
from .config import DEFAULT_CONNECTION_LIMIT, DEFAULT_HEADER_TIMEOUT, MAX_CONNECTION_LIMIT, SELECT_ONLY
from .connections import OriginServer
from .errors import ConfigError, SettingError

#: Largest request line plus headers accepted (nginx allows 8 KiB per line). It also
#: bounds what the request parser keeps (Python's ``urlsplit`` remembers its last
#: 128 request targets: at most 128 x 2 x 16 KiB, whatever clients send).
MAX_REQUEST_HEADER_BYTES = 16 * 1024
#: The origin takes no request body; a client sending one gets 413 past this.
MAX_REQUEST_BODY_BYTES = 8 * 1024
# Headers a proxy sets; never believed from anyone but --trusted-proxy.
_PROXY_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST",
                  "HTTP_X_FORWARDED_PORT", "HTTP_X_FORWARDED_BY", "HTTP_FORWARDED")


def forwarded_client(app: Callable[..., Any], trusted_proxy: str) -> Callable[..., Any]:
    """Wrap ``app`` so that ``REMOTE_ADDR`` is the client a trusted proxy names, if it names one validly.

    For a request from ``trusted_proxy``, the last address of
    ``X-Forwarded-For`` (the one the proxy itself appended) becomes
    ``REMOTE_ADDR``, but only if it is a syntactically valid IPv4 or IPv6
    address without an IPv6 zone id (which may hold any text); anything else
    (a forged log field, a host name, junk) leaves the peer's address. Proxy headers are removed from every request, so the app
    never sees one it should not believe.
    """

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        for name in _PROXY_HEADERS:
            environ.pop(name, None)
        if forwarded and environ.get("REMOTE_ADDR") == trusted_proxy:
            client = forwarded.rpartition(",")[2].strip()
            if client.startswith("[") and client.endswith("]"):
                client = client[1:-1]
            try:
                address = ipaddress.ip_address(client)
            except ValueError:
                address = None
            # An IPv6 zone id ("fe80::1%eth0") may hold any text, spaces and quotes included.
            if address is not None and getattr(address, "scope_id", None) is None:
                environ["REMOTE_ADDR"] = str(address)
        return app(environ, start_response)

    return middleware


def open_files_for(connection_limit: int) -> int:
    """Open files a connection limit needs: a socket and, while it streams, a file each; some to spare for logs."""
    return 2 * connection_limit + 64


def default_connection_limit() -> int:
    """The connection limit when none is given: the default, or less if this system's open-file hard limit is lower."""
    try:
        import resource
    except ImportError:  # Windows: no such limit on sockets
        return DEFAULT_CONNECTION_LIMIT
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard >= open_files_for(DEFAULT_CONNECTION_LIMIT):
        return DEFAULT_CONNECTION_LIMIT
    return max(1, (hard - open_files_for(0)) // 2)


def _raise_open_file_limit(needed: int) -> None:
    """Raise this process's soft limit on open files to ``needed`` (POSIX), or refuse the connection limit.

    Raises:
        SettingError: (setting ``connection_limit``) the hard limit is lower than ``needed``.
    """
    try:
        import resource
    except ImportError:  # Windows: no such limit on sockets
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise SettingError(
            "connection_limit",
            needed,
            f"needs {needed} open files, and the system allows {hard} (raise it with ulimit -n, or lower the limit)",
        )
    resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def waitress_options(*, host: str, port: int, threads: int, connection_limit: int) -> dict[str, Any]:
    """The waitress settings the origin runs with (benchmarks give a bare app the same ones)."""
    return {
        "host": host,
        "port": port,
        "threads": threads,
        "connection_limit": connection_limit,
        "ident": "origin-server",
        # With --trusted-proxy, forwarded_client reads (and drops) proxy headers; without one the
        # app reads none, so waitress need not strip them on every request.
        "clear_untrusted_proxy_headers": False,
        "asyncore_use_poll": not SELECT_ONLY,
        "max_request_header_size": MAX_REQUEST_HEADER_BYTES,
        "max_request_body_size": MAX_REQUEST_BODY_BYTES,
        # How often the request deadline is checked, in seconds.
        "cleanup_interval": 1,
    }


def make_server(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 4,
    connection_limit: int = DEFAULT_CONNECTION_LIMIT,
    header_timeout: float = DEFAULT_HEADER_TIMEOUT,
    trusted_proxy: str | None = None,
) -> OriginServer | waitress.server.MultiSocketServer:
    """Create (bind, not yet run) a waitress server for ``app``.

    Args:
        app: the WSGI app (from :func:`origin_server.app.create_app`).
        host, port: where to listen; port 0 picks a free port (see :func:`listening`).
        threads: worker threads; streaming does not hold them, so a few suffice.
        connection_limit: open connections at most (paused players each hold one).
        header_timeout: seconds a client has to send a complete request.
        trusted_proxy: the address of a reverse proxy whose ``X-Forwarded-For``
            names the client (``REMOTE_ADDR`` in the access log).

    Raises:
        SettingError: (setting ``connection_limit``, ``threads``, ``header_timeout`` or
            ``trusted_proxy``) a value out of range, or more connections than open files allowed.
        ConfigError: the address cannot be listened on (in use, not this machine's).
    """
    if not 1 <= connection_limit <= MAX_CONNECTION_LIMIT:
        ceiling = " (Windows' select() ceiling)" if SELECT_ONLY else ""
        raise SettingError(
            "connection_limit", connection_limit, f"must be between 1 and {MAX_CONNECTION_LIMIT}{ceiling}"
        )
    if not 1 <= threads <= 256:
        raise SettingError("threads", threads, "must be between 1 and 256")
    if not 0 < header_timeout <= 3600:
        raise SettingError("header_timeout", header_timeout, "must be more than 0 and at most 3600 seconds")
    if trusted_proxy:
        try:
            trusted_proxy = str(ipaddress.ip_address(trusted_proxy))
        except ValueError:
            raise SettingError("trusted_proxy", trusted_proxy, f"{trusted_proxy!r} is not an IP address") from None
        app = forwarded_client(app, trusted_proxy)
    _raise_open_file_limit(open_files_for(connection_limit))
    options = waitress_options(host=host, port=port, threads=threads, connection_limit=connection_limit)
    try:
        return _bind(app, Adjustments(**options), header_timeout)
    except (OSError, ValueError) as error:  # in use, not an address of this machine, no such host
        shown = f"[{host}]" if ":" in host else host
        reason = getattr(error, "strerror", None) or str(error)
        raise ConfigError(f"cannot listen on {shown}:{port}: {reason}") from None


def _bind(app: Any, adj: Adjustments, header_timeout: float) -> OriginServer | waitress.server.MultiSocketServer:
    """One :class:`OriginServer` per address ``adj`` listens on (``localhost`` may be two), as waitress would."""
    socket_map: dict[int, Any] = {}
    dispatcher = ThreadedTaskDispatcher()
    servers: list[OriginServer] = []
    try:
        for sockinfo in adj.listen:
            server = OriginServer(app, socket_map, dispatcher=dispatcher, adj=adj, sockinfo=sockinfo)
            server.header_timeout = header_timeout  # before run(): nothing is accepted until then
            servers.append(server)
    except BaseException:
        wasyncore.close_all(socket_map)  # the sockets bound so far and waitress's wake-up pipes
        raise
    dispatcher.set_thread_count(adj.threads)
    if len(servers) == 1:
        return servers[0]
    listens = [(server.effective_host, server.effective_port) for server in servers]
    return waitress.server.MultiSocketServer(socket_map, adj, listens, dispatcher, servers[-1].log_info)


def listening(server: OriginServer | waitress.server.MultiSocketServer) -> list[tuple[str, int]]:
    """The (host, port) pairs a server from :func:`make_server` listens on."""
    if isinstance(server, waitress.server.MultiSocketServer):
        return [(str(host), int(port)) for host, port in server.effective_listen]
    return [(str(server.effective_host), int(server.effective_port))]


class LineFormatter(logging.Formatter):
    """A ``logging.Formatter`` that formats each second's timestamp once (:meth:`stamp`, which access lines share)."""

    _second: int = -1
    _text: str = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """``YYYY-mm-dd HH:MM:SS,mmm`` in local time, as ``logging.Formatter`` writes it."""
        return self.stamp(record.created)

    def stamp(self, created: float) -> str:
        """The ``asctime`` of a record made at ``created`` (Unix seconds)."""
        second = int(created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(created))
            self._second = second
        return self.default_msec_format % (self._text, int((created - second) * 1000))


class BlockStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that writes in blocks, like nginx's ``access_log ... buffer= flush=``.

    One write per access line costs the serving threads a system call and a
    GIL hand-off each; here lines are formatted at once and written together
    when ``size`` characters have gathered, when a WARNING or worse arrives
    (written at once, with everything before it), or ``interval`` seconds
    later at the latest (a daemon thread). ``close()``, which
    ``logging.shutdown`` calls at exit, writes the rest.
    """

    def __init__(self, stream: Any = None, *, size: int = 64 * 1024, interval: float = 1.0) -> None:
        super().__init__(stream)
        self.size = size
        self._pending: list[str] = []
        self._pending_chars = 0
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, args=(interval,), name="log-flush", daemon=True)
        self._ticker.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted record (the handler lock is held); write when due."""
        try:
            text = self.format(record) + self.terminator
        except Exception:
            self.handleError(record)
            return
        self._pending.append(text)
        self._pending_chars += len(text)
        if record.levelno >= logging.WARNING or self._pending_chars >= self.size:
            self._write()

    def line_writer(self, name: str) -> Callable[[str], None]:
        """A function queueing an INFO line of logger ``name`` exactly as :meth:`emit` would write it.

        For the access log, which writes a line per request: it skips making
        a ``LogRecord`` and passing it through the loggers and filters (a few
        microseconds a request). Only for a logger whose records would reach
        this handler alone, as after :func:`configure_logging`.
        """
        formatter = self.formatter
        if not isinstance(formatter, LineFormatter) or formatter._fmt != LINE_FORMAT:
            raise TypeError("line_writer needs the handler's own formatter, with LINE_FORMAT")
        lock = self.lock
        pending = self._pending
        infix = f" {logging.getLevelName(logging.INFO)} {name}: "

        def write(message: str) -> None:
            now = time.time()
            with lock:  # type: ignore[union-attr]
                text = formatter.stamp(now) + infix + message + self.terminator
                pending.append(text)
                self._pending_chars += len(text)
                if self._pending_chars >= self.size:
                    self._write()

        return write

    def _write(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._pending_chars = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except Exception:  # a closed or broken stderr must not take the server down
            pass

    def flush(self) -> None:
        """Write whatever is queued."""
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.flush()

    def close(self) -> None:
        """Stop the timer and write the rest."""
        self._stop.set()
        self.flush()
        super().close()


#: How every log line looks (:meth:`BlockStreamHandler.line_writer` writes access lines in exactly this form).
LINE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(level: int = logging.INFO, *, access_log: bool = True) -> Callable[[str], None] | None:
    """Log to stderr, one line per record, with tokens redacted from every record that passes.

    Lines are written in blocks (at most a second late; warnings at once):
    see :class:`BlockStreamHandler`.

    Args:
        level: the root logger's level.
        access_log: False silences ``origin_server.access`` (errors are still logged).

    Returns:
        With ``access_log``, a function writing an access line straight to
        stderr's block (``create_app(..., access_line=...)``), else None.
    """
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.WARNING)
    # The access log writes one record per request: skip the record fields
    # nobody prints (thread, process names cost a few microseconds each).
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    # waitress warns "Task queue depth is N" on every queued request under load.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    handler = BlockStreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter(LINE_FORMAT))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    install_redaction()
    return handler.line_writer(ACCESS_LOGGER) if access_log else None
