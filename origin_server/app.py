"""The falcon app: the stream route, the health check, and the one place errors become statuses.

``create_app(config)`` builds a stateless WSGI app from an
:class:`~origin_server.config.OriginConfig`; any number of instances can run
behind one proxy. Responders parse the request, call the core functions
(:mod:`.tokens`, :mod:`.resolve`, :mod:`.conditional`, :mod:`.media`) and
render; every error is turned into a status and a short JSON body by
:func:`_render_error`, registered with ``app.add_error_handler``.

Streaming: under waitress the responder hands falcon a
:class:`~origin_server.body.FileBody` (the open file, the range's start and
exact length) as ``resp.stream``; falcon returns it as the body, and waitress,
which takes it for its own file wrapper, sends it from its I/O loop, so a
paused player holds a socket and a file handle but no worker thread. The file
is closed here on every path that sends no body (HEAD, 304, 416, offload,
errors); waitress closes it after sending otherwise.

Why a request was refused goes into ``req.context.reason``, which the access
log writes; the client's body stays the same short JSON whatever the reason.
"""

from __future__ import annotations

import logging
import os
import re
import traceback
import urllib.parse
from collections.abc import Callable
from typing import Any

import falcon

from .accesslog import ERROR_LOGGER, AccessLog, install_redaction, redact
from .body import FileBody
from .conditional import cache_max_age, content_range, http_date, make_etag, plan_response
from .config import DEFAULT_ROOT_SEGMENT, OriginConfig
from .errors import FileGone, FileRefused, NotConfigured, TokenExpired, TokenInvalid, TokenNotYetValid
from .media import content_disposition, content_type_for
from .resolve import OpenedFile, locator_segments, open_regular_file, real_root
from .tokens import MAX_TOKEN_LENGTH, STREAM_PATH, TokenVerifier

STREAM_ROUTE = STREAM_PATH + "{token}"
HEALTH_ROUTE = "/healthz"
ALLOWED_METHODS = "GET, HEAD, OPTIONS"
CORS_REQUEST_HEADERS = "Range, If-Range, If-None-Match, If-Modified-Since"
CORS_EXPOSED_HEADERS = "Content-Range, Accept-Ranges, ETag, Content-Length"

#: Our errors -> (status, JSON ``error`` code). Every refusal of a file is the same 404.
_ERRORS: dict[type[Exception], tuple[int, str]] = {
    TokenInvalid: (403, "invalid_token"),
    TokenExpired: (403, "token_expired"),
    TokenNotYetValid: (403, "token_not_yet_valid"),
    FileRefused: (404, "not_found"),
    FileGone: (410, "gone"),
    NotConfigured: (503, "not_configured"),
}
# Headers a responder may have set before failing; an error response must not carry them.
_FILE_HEADERS = (
    "Content-Disposition",
    "Content-Range",
    "Content-Length",
    "Accept-Ranges",
    "ETag",
    "Last-Modified",
    "X-Accel-Redirect",
)

_log = logging.getLogger(ERROR_LOGGER)


def _error_code(status: int | str) -> tuple[int, str]:
    """``404`` / ``"404 Not Found"`` -> ``(404, "not_found")``."""
    line = falcon.code_to_http_status(status)
    number, _space, phrase = line.partition(" ")
    return int(number), re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_") or "error"


def _render_error(req: falcon.Request, resp: falcon.Response, error: Exception, params: dict[str, Any]) -> None:
    """The one place an exception becomes a status and a short JSON body."""
    for kind, (status, code) in _ERRORS.items():
        if isinstance(error, kind):
            req.context.reason = getattr(error, "reason", None) or str(error)
            break
    else:
        if isinstance(error, falcon.HTTPError):
            status, code = _error_code(error.status)
        else:
            status, code = 500, "internal_error"
            text = traceback.format_exc()
            token = params.get("token")
            if isinstance(token, str) and token:
                text = text.replace(token, "<redacted>")
            _log.error("unexpected error in %s %s:\n%s", req.method, req.uri_template or "-", redact(text))
    stream = resp.stream
    if stream is not None and hasattr(stream, "close"):
        stream.close()
    resp.stream = None
    for name in _FILE_HEADERS:
        resp.delete_header(name)
    if isinstance(error, falcon.HTTPError) and error.headers:
        for name, value in error.headers.items():
            resp.set_header(name, value)
    resp.status = status
    resp.content_type = falcon.MEDIA_JSON
    resp.set_header("Cache-Control", "no-store")
    resp.media = {"error": code}


def accel_redirect_path(prefix: str, backend: str | None, locator: str) -> str:
    """Return the nginx internal URI for a file: ``PREFIX/BACKEND/seg/seg``, every segment percent-encoded.

    nginx decodes an ``X-Accel-Redirect`` holding ``%`` escapes, so ``?``, ``#``,
    ``%``, spaces and non-ASCII names survive the trip.
    """
    segments = [backend or DEFAULT_ROOT_SEGMENT, *locator_segments(locator)]
    return prefix + "/" + "/".join(urllib.parse.quote(segment, safe="") for segment in segments)


class _ResponseHeaders:
    """Middleware: security headers on every response; CORS for the configured origins."""

    def __init__(self, config: OriginConfig) -> None:
        self.origins = frozenset(config.cors_origins)

    def allowed(self, origin: str | None) -> str | None:
        """The ``Access-Control-Allow-Origin`` value for a request ``Origin``, or None."""
        if not origin or not self.origins:
            return None
        if "*" in self.origins:
            return "*"
        return origin if origin in self.origins else None

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Add the headers; runs after the error handler, so error bodies are readable cross-origin."""
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        if not self.origins:
            return
        resp.append_header("Vary", "Origin")
        allow = self.allowed(req.get_header("Origin"))
        if allow is not None:
            resp.set_header("Access-Control-Allow-Origin", allow)
            resp.set_header("Access-Control-Expose-Headers", CORS_EXPOSED_HEADERS)


class _Stream:
    """``/api/private-origin/stream/{token}``: GET and HEAD stream the file; OPTIONS answers preflights."""

    def __init__(self, config: OriginConfig, headers: _ResponseHeaders) -> None:
        self.config = config
        self.headers = headers
        # One verifier for the app's life: it remembers verified tokens, so a
        # player's next Range request skips the MAC (never the lifetime check).
        self.tokens = (
            TokenVerifier(config.keys, leeway=config.leeway, max_lifetime=config.max_token_lifetime)
            if config.keys is not None
            else None
        )
        # Resolved once: a root missing now is resolved per request instead.
        self.real_roots = {name: real_root(path) for name, path in config.roots.items() if path.is_dir()}

    def on_get(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Stream the whole file (200) or one range (206), or answer 304 / 416."""
        self._serve(req, resp, token, send_body=True)

    def on_head(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Answer exactly as GET would, without a body (and without keeping the file open)."""
        self._serve(req, resp, token, send_body=False)

    def on_options(self, req: falcon.Request, resp: falcon.Response, token: str) -> None:
        """Answer a CORS preflight; the token is not checked (no file is touched)."""
        resp.status = 204
        resp.set_header("Allow", ALLOWED_METHODS)
        if self.headers.allowed(req.get_header("Origin")) and req.get_header("Access-Control-Request-Method"):
            resp.set_header("Access-Control-Allow-Methods", ALLOWED_METHODS)
            resp.set_header("Access-Control-Allow-Headers", CORS_REQUEST_HEADERS)
            resp.set_header("Access-Control-Max-Age", str(self.config.cors_max_age))

    def _serve(self, req: falcon.Request, resp: falcon.Response, token: str, *, send_body: bool) -> None:
        config = self.config
        if self.tokens is None:
            raise NotConfigured()
        now = config.clock()
        claims = self.tokens.verify(token, now)
        backend = claims.get("backend")
        root = config.roots.get(backend)
        if root is None:
            raise FileRefused(
                f"no media root named {backend!r}"
                if backend is not None
                else "the token names no backend and no unnamed media root is configured"
            )
        locator = claims["locator"]
        # The catalog before the filesystem: an unlisted file is gone whether it is on disk or not.
        if config.catalog is not None and not config.catalog.allows(backend, locator):
            raise FileGone()
        opened = open_regular_file(root, locator, root_real=self.real_roots.get(backend))
        handed_over = False
        try:
            max_age = cache_max_age(claims["exp"], now, config.max_age)
            if config.offload is not None:
                self._offload(resp, opened, backend, locator, max_age)
            else:
                handed_over = self._respond(req, resp, opened, locator, max_age, send_body=send_body)
        finally:
            if not handed_over:
                opened.close()

    def _offload(
        self, resp: falcon.Response, opened: OpenedFile, backend: str | None, locator: str, max_age: int
    ) -> None:
        """Let nginx send the bytes (with its own Range, ETag, Accept-Ranges and conditionals)."""
        resp.set_header("Cache-Control", f"private, max-age={max_age}")
        resp.content_type = content_type_for(opened.name)
        resp.set_header("Content-Disposition", content_disposition(opened.name))
        resp.set_header("X-Accel-Redirect", accel_redirect_path(self.config.offload_prefix, backend, locator))

    def _respond(
        self,
        req: falcon.Request,
        resp: falcon.Response,
        opened: OpenedFile,
        locator: str,
        max_age: int,
        *,
        send_body: bool,
    ) -> bool:
        """Set status and headers; return True when the open file was handed to falcon as the body."""
        env = req.env
        etag = make_etag(opened.size, opened.mtime_ns, opened.inode)
        last_modified = opened.mtime_ns // 1_000_000_000
        plan = plan_response(
            size=opened.size,
            etag=etag,
            last_modified=last_modified,
            range_header=env.get("HTTP_RANGE"),
            if_range=env.get("HTTP_IF_RANGE"),
            if_none_match=env.get("HTTP_IF_NONE_MATCH"),
            if_modified_since=env.get("HTTP_IF_MODIFIED_SINCE"),
        )
        resp.status = plan.status
        resp.set_header("Accept-Ranges", "bytes")
        if plan.status == 416:  # an error: like every error response, not to be stored
            resp.set_header("Cache-Control", "no-store")
            resp.set_header("Content-Range", content_range(plan, opened.size))
            resp.content_type = falcon.MEDIA_JSON
            resp.media = {"error": "range_not_satisfiable"}
            return False
        headers = [  # set at once: one call instead of one per header
            ("ETag", etag),
            ("Last-Modified", http_date(last_modified)),
            ("Cache-Control", f"private, max-age={max_age}"),
        ]
        if plan.status == 304:
            resp.set_headers(headers)
            return False
        headers += [
            ("Content-Type", content_type_for(opened.name)),
            ("Content-Disposition", content_disposition(opened.name)),
            ("Content-Length", str(plan.length)),
        ]
        if plan.status == 206:
            headers.append(("Content-Range", content_range(plan, opened.size)))
        resp.set_headers(headers)
        if not send_body or plan.length == 0:
            return False
        # waitress sends it from its I/O loop (and closes the connection if the file ends early);
        # any other server iterates it: exactly the range's bytes either way.
        resp.stream = FileBody(opened.file, plan.start, plan.length, locator)
        return True


class _Health:
    """``/healthz``: are the roots readable and keys loaded? Names backends and counts keys only if configured to."""

    def __init__(self, config: OriginConfig) -> None:
        self.config = config

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """200 ``{"status": "ok"}`` when every root is readable and a key is loaded, else 503 ``unavailable``."""
        roots = {
            (name if name is not None else DEFAULT_ROOT_SEGMENT): os.access(path, os.R_OK | os.X_OK)
            and os.path.isdir(path)
            for name, path in self.config.roots.items()
        }
        keys = len(self.config.keys) if self.config.keys is not None else 0
        healthy = bool(roots) and all(roots.values()) and keys > 0
        resp.status = 200 if healthy else 503
        resp.set_header("Cache-Control", "no-store")
        answer: dict[str, object] = {"status": "ok" if healthy else "unavailable"}
        if self.config.health_details:  # backend names and key counts help a prober map the NAS
            answer.update(roots=roots, keys_loaded=keys)
            if self.config.catalog is not None:
                answer["catalog"] = self.config.catalog.snapshot_id
        resp.media = answer

    on_head = on_get


def _unknown_method(req: falcon.Request, resp: falcon.Response, **params: Any) -> None:
    """An HTTP method falcon does not know (``FOO``): 405 like any other, not falcon's 400."""
    raise falcon.HTTPMethodNotAllowed(["GET", "HEAD", "OPTIONS"])


class _App(falcon.App):
    _default_responder_bad_request = _unknown_method


def create_app(config: OriginConfig, *, access_line: Callable[[str], None] | None = None) -> falcon.App:
    """Build the origin's WSGI app from ``config``.

    Also attaches the token-redacting filter to waitress's logger (idempotent),
    since waitress logs request paths, which hold tokens.

    Args:
        config: roots, key ring, clock, CORS origins and offload mode.
        access_line: writes each access line (from ``server.configure_logging``);
            by default they are records of the ``origin_server.access`` logger.

    Returns:
        A ``falcon.App`` serving ``GET|HEAD|OPTIONS /api/private-origin/stream/{token}`` and ``GET /healthz``.
    """
    install_redaction()
    headers = _ResponseHeaders(config)
    app = _App(middleware=[AccessLog(max_token_length=MAX_TOKEN_LENGTH, write=access_line), headers])
    app.add_route(STREAM_ROUTE, _Stream(config, headers))
    app.add_route(HEALTH_ROUTE, _Health(config))
    app.add_error_handler(Exception, _render_error)
    app.add_error_handler(falcon.HTTPError, _render_error)
    return app
