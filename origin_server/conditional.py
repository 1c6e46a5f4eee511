"""Range, If-Range and validator logic (RFC 9110) as pure functions.

No I/O, no framework: the app hands in the request's header values and the
file's facts (size, mtime, inode) and gets back what to send. The Range
header is parsed here rather than by falcon, whose ``req.range`` raises on
multi-range and some malformed forms: RFC 9110 lets a server ignore a Range it
does not want to honour, and players cope best with the whole file (200).

Precedence follows RFC 9110 section 13.2.2: ``If-None-Match`` (weak
comparison, ``*`` matches) decides 304 and, when present, ``If-Modified-Since``
is ignored; then ``Range``, honoured only when ``If-Range`` (if sent) matches
(strong comparison for entity tags, exact match for dates).
"""

from __future__ import annotations

import email.utils
import functools
import math
import re
from dataclasses import dataclass

#: A decimal over this many digits is treated as "huge" without converting it
#: (Python refuses int() of more than 4300 digits; a file is never 10**18 bytes).
_MAX_DIGITS = 18
_HUGE = 10**18

# What players send nearly always ("bytes=0-", "bytes=1000-66535"): one match decides it.
_PLAIN_RANGE = re.compile(r"bytes=(\d{1,18})-(\d{0,18})\Z", re.ASCII)
_RANGE_UNIT = re.compile(r"\s*bytes\s*=\s*(.*)\Z", re.IGNORECASE | re.DOTALL)
_RANGE_SPEC = re.compile(r"(\d*)\s*-\s*(\d*)\Z", re.ASCII)
_ENTITY_TAG = re.compile(r'\s*(W/)?("[\x21\x23-\x7e\x80-\xff]*")\s*(?:,|\Z)')


@dataclass(frozen=True)
class Plan:
    """What to send for a request: the status, and the byte span of the body.

    ``start`` and ``length`` describe the bytes to send for 200 and 206;
    304 and 416 send no file bytes (``length`` 0).
    """

    status: int
    start: int = 0
    length: int = 0


@functools.lru_cache(maxsize=4096)
def make_etag(size: int, mtime_ns: int, inode: int) -> str:
    """Return a strong entity tag that changes whenever the file's content can have changed."""
    return f'"{size:x}-{mtime_ns:x}-{inode:x}"'


@functools.lru_cache(maxsize=4096)
def http_date(timestamp: float) -> str:
    """Format Unix seconds as an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``)."""
    return email.utils.formatdate(math.floor(timestamp), usegmt=True)


def parse_http_date(value: str | None) -> int | None:
    """Parse an HTTP-date (any of RFC 9110's three forms) into Unix seconds; None if invalid."""
    if not value or len(value) > 64:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    try:
        return math.floor(parsed.timestamp())
    except (OverflowError, ValueError, OSError):
        return None


def _number(digits: str) -> int:
    """Convert ASCII digits, capping absurdly long numbers instead of raising."""
    return _HUGE if len(digits) > _MAX_DIGITS else int(digits)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """Interpret a ``Range`` header against a representation of ``size`` bytes.

    Args:
        header: the raw header value, or None.
        size: the file's length in bytes.

    Returns:
        ``(start, length)`` for one satisfiable range; ``None`` to ignore the
        header and send the whole file (absent, malformed, another unit,
        several ranges); ``False`` when the one range is unsatisfiable (416).
    """
    if header is None or len(header) > 256:
        return None
    plain = _PLAIN_RANGE.match(header)
    if plain is not None:
        first, last = plain.group(1), plain.group(2)
    else:
        unit = _RANGE_UNIT.match(header)
        if unit is None:
            return None
        specs = unit.group(1).strip()
        if "," in specs:
            # Multi-range (or a list with empty elements): allowed to ignore; a
            # multipart/byteranges body helps no audio player.
            return None
        spec = _RANGE_SPEC.match(specs)
        if spec is None:
            return None
        first, last = spec.group(1), spec.group(2)
    if not first and not last:
        return None
    if not first:
        suffix = _number(last)
        if suffix == 0 or size == 0:
            return False
        length = min(suffix, size)
        return size - length, length
    start = _number(first)
    if last:
        end = _number(last)
        if end < start:
            return None  # invalid byte-range-spec: the header is ignored
    else:
        end = size - 1
    if start >= size:
        return False
    end = min(end, size - 1)
    return start, end - start + 1


def _entity_tags(header: str) -> list[tuple[bool, str]] | None:
    """Parse a comma-separated list of entity tags as ``(weak, opaque)`` pairs; None if malformed."""
    tags: list[tuple[bool, str]] = []
    position = 0
    text = header.strip()
    while position < len(text):
        if text[position] in ", \t":
            position += 1
            continue
        match = _ENTITY_TAG.match(text, position)
        if match is None:
            return None
        tags.append((match.group(1) is not None, match.group(2)))
        position = match.end()
    return tags


def none_match(header: str, etag: str) -> bool:
    """True when ``If-None-Match`` matches ``etag`` by weak comparison (``*`` matches any)."""
    if header.strip() == "*":
        return True
    tags = _entity_tags(header)
    return bool(tags) and any(opaque == etag for _weak, opaque in tags)


def if_range_matches(header: str, etag: str, last_modified: int) -> bool:
    """True when ``If-Range`` still names this representation (strong tag or exact date)."""
    value = header.strip()
    if value.startswith(('"', "W/")):
        tags = _entity_tags(value)
        if not tags or len(tags) != 1:
            return False
        weak, opaque = tags[0]
        return not weak and opaque == etag
    date = parse_http_date(value)
    return date is not None and date == last_modified


def plan_response(
    *,
    size: int,
    etag: str,
    last_modified: int,
    range_header: str | None = None,
    if_range: str | None = None,
    if_none_match: str | None = None,
    if_modified_since: str | None = None,
) -> Plan:
    """Decide 200, 206, 304 or 416 for a GET (or HEAD, which mirrors it).

    Args:
        size: the file's length in bytes.
        etag: the file's strong entity tag (from :func:`make_etag`).
        last_modified: the file's mtime, whole Unix seconds.
        range_header, if_range, if_none_match, if_modified_since: raw request
            header values, or None when absent.

    Returns:
        The :class:`Plan`: status, first byte and length to send.
    """
    if if_none_match is not None:
        if none_match(if_none_match, etag):
            return Plan(304)
    elif if_modified_since is not None:
        since = parse_http_date(if_modified_since)
        if since is not None and last_modified <= since:
            return Plan(304)
    whole = Plan(200, 0, size)
    if range_header is None:
        return whole
    if if_range is not None and not if_range_matches(if_range, etag, last_modified):
        return whole
    parsed = parse_range(range_header, size)
    if parsed is None:
        return whole
    if parsed is False:
        return Plan(416)
    start, length = parsed  # type: ignore[misc]
    return Plan(206, start, length)


def content_range(plan: Plan, size: int) -> str | None:
    """The ``Content-Range`` value for a 206 or 416 plan, else None."""
    if plan.status == 206:
        return f"bytes {plan.start}-{plan.start + plan.length - 1}/{size}"
    if plan.status == 416:
        return f"bytes */{size}"
    return None


def cache_max_age(expires_at: float, now: float, cap: int) -> int:
    """Seconds a response may be cached: never past the token's expiry, never negative, at most ``cap``."""
    try:
        remaining = math.floor(expires_at - now)
    except (OverflowError, ValueError):
        remaining = 0
    return max(0, min(cap, remaining))
