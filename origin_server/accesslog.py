"""Access log (one line per request, written when the response starts) and token redaction.

The token is a bearer credential valid until it expires, so it must never
reach a log: the access line carries ``sha256(token)[:12]`` instead (enough to
correlate with the minting service's own log; nothing is kept between
requests, so junk tokens cost no memory), and :class:`RedactTokens`
scrubs stream URLs out of waitress's own records ("Exception while serving
/api/private-origin/stream/<token>", "Client disconnected while serving ...").

The line is written from falcon's ``process_response``, never by wrapping the
body iterator: waitress only sends a file from its I/O loop when the app
returns waitress's own file wrapper untouched.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import falcon

ACCESS_LOGGER = "origin_server.access"
ERROR_LOGGER = "origin_server"

# A token never holds braces, so the route template "/stream/{token}" is left alone.
_STREAM_URL = re.compile(r"(/stream/)[^\s/?#\"'{}]+")
# What a reason may not carry into a log line: its closing quote, line breaks, controls.
_UNLOGGABLE = re.compile(r'["\\\x00-\x1f\x7f-\x9f]')


def token_digest(token: str) -> str:
    """Return the first 12 hex digits of the token's SHA-256: loggable, not replayable."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def loggable(text: str) -> str:
    """``text`` safe inside a double-quoted log field: quotes, backslashes and controls become ``?``."""
    return _UNLOGGABLE.sub("?", text)


def access_line(
    method: str, route: str, status: int, length: str, ms: float | None, client: str, digest: str, reason: str | None
) -> str:
    """One access line: ``METHOD route status bytes ms client tok=digest [reason="..."]`` (``-`` for what is unknown)."""
    line = f"{method} {route} {status} {length} {'-' if ms is None else f'{ms:.1f}ms'} {client} tok={digest}"
    return f'{line} reason="{loggable(reason)}"' if reason else line


def redact(text: str) -> str:
    """Replace every ``/stream/<token>`` in ``text`` with ``/stream/<redacted>``."""
    return _STREAM_URL.sub(r"\1<redacted>", text)


class RedactTokens(logging.Filter):
    """A logging filter that removes stream tokens from a record's message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record in place (message, args, exception text); always keep it."""
        if record.name == ACCESS_LOGGER and not record.exc_info:
            return True  # written by AccessLog, which never puts a path or token in it
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep the raw template only
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_redaction(*names: str) -> None:
    """Attach one :class:`RedactTokens` to each named logger (default: waitress's), idempotently."""
    for name in names or ("waitress",):
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactTokens) for existing in logger.filters):
            logger.addFilter(RedactTokens())


class AccessLog:
    """Falcon middleware: one line per request, ``METHOD route status bytes ms client tok=digest [reason="..."]``.

    ``route`` is the matched URI template (never the raw path, which holds the
    token); ``bytes`` is the ``Content-Length`` sent (``-`` when none); ``ms`` is
    the time from routing to the response's start (0.0 for a path no route
    matched); ``client`` is ``REMOTE_ADDR``, which
    the server rewrites from ``X-Forwarded-For`` only for a ``--trusted-proxy``;
    ``tok`` is ``-`` for a token longer than ``max_token_length`` (refused
    unread). A refused request ends with ``reason="..."``, taken from
    ``req.context.reason``: why, for the operator (clients get the same body
    whatever the reason).

    Args:
        logger: where lines go (default ``origin_server.access``); its level
            decides whether they are written at all.
        max_token_length: tokens longer than this are not even hashed.
        write: writes a line instead of making a log record of it (see
            ``server.configure_logging``, whose handler would be its only reader).
    """

    def __init__(
        self,
        logger: logging.Logger | None = None,
        *,
        max_token_length: int = 2048,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.logger = logger or logging.getLogger(ACCESS_LOGGER)
        self.max_token_length = max_token_length
        self.write = write

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict[str, Any]
    ) -> None:
        """Note when a routed request reached its resource, and its token unless too long to be one."""
        context = req.context
        context.started = time.perf_counter()
        token = params.get("token")
        if isinstance(token, str) and len(token) <= self.max_token_length:
            context.token = token

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Write the access line as the response starts."""
        logger = self.logger
        if not logger.isEnabledFor(logging.INFO):
            return
        context = vars(req.context)
        started = context.get("started")
        elapsed = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        code = resp.status_code
        length = resp.get_header("Content-Length")
        if length is None:
            body = resp.render_body()  # serialises (and caches) a JSON error body
            length = str(len(body)) if body is not None else "-"
        token = context.get("token")
        digest = "-" if token is None else token_digest(token)
        line = access_line(
            req.method, req.uri_template or "-", code, length, elapsed, req.remote_addr or "-", digest, context.get("reason")
        )
        if self.write is not None:
            self.write(line)
        else:
            # The record logger.info() would make, minus its caller lookup (a stack
            # walk on every request, for a file and line nobody prints here).
            logger.handle(logging.LogRecord(logger.name, logging.INFO, __file__, 0, line, None, None))
