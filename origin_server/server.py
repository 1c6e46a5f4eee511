"""Build the waitress server for the origin app (used by ``origin-server serve``, tests and benchmarks)."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

import waitress
import waitress.server

from .accesslog import ACCESS_LOGGER, RedactTokens, install_redaction
from .errors import SettingError

#: Windows' select() handles at most 512 sockets; stay below it everywhere so a
#: configuration that works on Linux also works on a Windows NAS.
MAX_CONNECTION_LIMIT = 511


def make_server(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    threads: int = 4,
    connection_limit: int = 200,
    trusted_proxy: str | None = None,
) -> waitress.server.BaseWSGIServer:
    """Create (bind, not yet run) a waitress server for ``app``.

    Args:
        app: the WSGI app (from :func:`origin_server.app.create_app`).
        host, port: where to listen; port 0 picks a free port (see ``server.effective_port``).
        threads: worker threads; streaming does not hold them, so a few suffice.
        connection_limit: open connections at most (paused players each hold one).
        trusted_proxy: the address of a reverse proxy whose ``X-Forwarded-For`` /
            ``X-Forwarded-Proto`` waitress believes (``REMOTE_ADDR`` in the access log).

    Raises:
        SettingError: (setting ``connection_limit`` or ``threads``) a limit out of range.
    """
    if not 1 <= connection_limit <= MAX_CONNECTION_LIMIT:
        raise SettingError(
            "connection_limit",
            connection_limit,
            f"must be between 1 and {MAX_CONNECTION_LIMIT} (Windows' select() ceiling)",
        )
    if not 1 <= threads <= 256:
        raise SettingError("threads", threads, "must be between 1 and 256")
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "threads": threads,
        "connection_limit": connection_limit,
        "ident": "origin-server",
        "clear_untrusted_proxy_headers": True,
        # poll() has no FD_SETSIZE ceiling; Windows has no poll() in asyncore's sense.
        "asyncore_use_poll": os.name != "nt",
    }
    if trusted_proxy:
        options.update(
            trusted_proxy=trusted_proxy,
            trusted_proxy_count=1,
            trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"},
        )
    return waitress.create_server(app, **options)


class _Formatter(logging.Formatter):
    """The standard formatter, formatting each second's timestamp once (one access line per request)."""

    _second: int = -1
    _text: str = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        """``YYYY-mm-dd HH:MM:SS,mmm`` in local time, as ``logging.Formatter`` writes it."""
        second = int(record.created)
        if second != self._second:
            self._text = time.strftime(self.default_time_format, self.converter(record.created))
            self._second = second
        return self.default_msec_format % (self._text, record.msecs)


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


def configure_logging(level: int = logging.INFO, *, access_log: bool = True) -> None:
    """Log to stderr, one line per record, with tokens redacted from every record that passes.

    Lines are written in blocks (at most a second late; warnings at once):
    see :class:`BlockStreamHandler`.

    Args:
        level: the root logger's level.
        access_log: False silences ``origin_server.access`` (errors are still logged).
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
    handler.setFormatter(_Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    install_redaction()
