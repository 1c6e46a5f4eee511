"""Log handling: tokens redacted from any record, access lines written in blocks."""

from __future__ import annotations

import io
import logging
import re
import time

from origin_server.accesslog import ACCESS_LOGGER, RedactTokens, redact, token_digest
from origin_server.server import LINE_FORMAT, BlockStreamHandler, LineFormatter

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJsb2NhdG9yIjoieCJ9.c2lnbmF0dXJlLXNpZ25hdHVyZS1zaWduYXR1cmUtc2ln"


def test_redact() -> None:
    assert redact(f"GET /api/private-origin/stream/{TOKEN} HTTP/1.1") == (
        "GET /api/private-origin/stream/<redacted> HTTP/1.1"
    )
    assert redact(f"/stream/{TOKEN}?x=1 and /stream/{TOKEN}") == "/stream/<redacted>?x=1 and /stream/<redacted>"
    assert redact("/api/private-origin/stream/{token}") == "/api/private-origin/stream/{token}"
    assert TOKEN not in token_digest(TOKEN) and len(token_digest(TOKEN)) == 12


def test_filter_scrubs_message_args_and_traceback() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("test.redaction")
    handler = logging.StreamHandler(stream)
    logger.addFilter(RedactTokens())
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("Exception while serving %s", f"/api/private-origin/stream/{TOKEN}")
        try:
            raise RuntimeError(f"boom at /stream/{TOKEN}")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "/stream/<redacted>" in text and "RuntimeError" in text
    assert TOKEN not in text


def test_block_handler_writes_in_blocks_and_at_close() -> None:
    stream = io.StringIO()
    handler = BlockStreamHandler(stream, size=200, interval=3600)
    record = logging.LogRecord("origin_server.access", logging.INFO, __file__, 1, "x" * 50, None, None)
    handler.handle(record)
    handler.handle(record)
    assert stream.getvalue() == ""  # queued: under the block size, timer far away
    for _ in range(3):
        handler.handle(record)
    assert stream.getvalue().count("x" * 50) == 4  # the block filled at the fourth line
    handler.handle(record)
    warning = logging.LogRecord("waitress", logging.WARNING, __file__, 1, "trouble", None, None)
    handler.handle(warning)
    assert stream.getvalue().endswith("x" * 50 + "\ntrouble\n")  # a warning goes out at once, in order
    handler.handle(record)
    handler.close()
    assert stream.getvalue().count("x" * 50) == 7


def test_block_handler_flushes_a_quiet_log_on_its_own() -> None:
    stream = io.StringIO()
    handler = BlockStreamHandler(stream, interval=0.05)
    try:
        handler.handle(logging.LogRecord("origin_server.access", logging.INFO, __file__, 1, "one line", None, None))
        deadline = time.monotonic() + 10
        while "one line" not in stream.getvalue() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert "one line" in stream.getvalue()
    finally:
        handler.close()


def test_the_access_line_writer_writes_what_the_log_record_would() -> None:
    """``configure_logging``'s fast path for access lines: the same line as a record through the handler."""
    stream = io.StringIO()
    handler = BlockStreamHandler(stream)
    handler.setFormatter(LineFormatter(LINE_FORMAT))
    try:
        message = "GET /api/private-origin/stream/{token} 206 2 0.1ms 127.0.0.1 tok=c6fa71cc8cbe"
        handler.handle(logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 0, message, None, None))
        handler.line_writer(ACCESS_LOGGER)(message)
        handler.flush()
    finally:
        handler.close()
    line = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO origin_server\.access: " + re.escape(message) + "\n"
    assert re.fullmatch(line * 2, stream.getvalue()), stream.getvalue()
