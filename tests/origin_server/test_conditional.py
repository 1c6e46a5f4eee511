"""Range, If-Range and validators as pure functions (RFC 9110)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from origin_server.conditional import (
    Plan,
    cache_max_age,
    content_range,
    http_date,
    if_range_matches,
    make_etag,
    none_match,
    parse_http_date,
    parse_range,
    plan_response,
)

SIZE = 1000
ETAG = make_etag(SIZE, 1_700_000_000_123_456_789, 42)
MTIME = 1_700_000_000
DATE = http_date(MTIME)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-1", (0, 2)),
        ("bytes=0-0", (0, 1)),
        ("bytes=0-999", (0, 1000)),
        ("bytes=0-5000", (0, 1000)),
        ("bytes=500-", (500, 500)),
        ("bytes=999-", (999, 1)),
        ("bytes=-1", (999, 1)),
        ("bytes=-100", (900, 100)),
        ("bytes=-5000", (0, 1000)),
        ("BYTES = 10 - 19", (10, 10)),
        ("bytes=10-19 ", (10, 10)),
        ("bytes=0-" + "9" * 40, (0, 1000)),
        ("bytes=-" + "9" * 40, (0, 1000)),
        ("bytes=1000-", False),
        ("bytes=1000-2000", False),
        ("bytes=" + "9" * 40 + "-", False),
        ("bytes=-0", False),
        (None, None),
        ("", None),
        ("bytes", None),
        ("bytes=", None),
        ("bytes=-", None),
        ("bytes=5-4", None),
        ("bytes=a-b", None),
        ("bytes=0-1,3-4", None),
        ("bytes=0-1,", None),
        ("bytes=,0-1", None),
        ("items=0-1", None),
        ("bytes=0x10-20", None),
        ("bytes=+1-2", None),
        ("bytes=１-２", None),
        ("bytes=0-1" + " " * 300, None),
    ],
)
def test_parse_range(header: str | None, expected: object) -> None:
    assert parse_range(header, SIZE) == expected


def test_ranges_of_an_empty_file_are_unsatisfiable() -> None:
    assert parse_range("bytes=0-", 0) is False
    assert parse_range("bytes=-5", 0) is False
    assert parse_range("bytes=0-1", 0) is False


@given(st.text(max_size=60), st.integers(min_value=0, max_value=10**12))
def test_parse_range_never_raises_and_stays_in_bounds(header: str, size: int) -> None:
    result = parse_range(header, size)
    if isinstance(result, tuple):
        start, length = result
        assert 0 <= start < size and 1 <= length and start + length <= size


@given(st.from_regex(r"bytes=[0-9]{0,25}-[0-9]{0,25}", fullmatch=True), st.integers(min_value=0, max_value=10**6))
def test_parse_range_on_well_formed_specs(header: str, size: int) -> None:
    result = parse_range(header, size)
    assert result is None or result is False or (0 <= result[0] and result[0] + result[1] <= size)


def test_etag_is_strong_and_changes_with_each_fact() -> None:
    assert ETAG.startswith('"') and ETAG.endswith('"') and not ETAG.startswith("W/")
    assert len({make_etag(1, 2, 3), make_etag(2, 2, 3), make_etag(1, 3, 3), make_etag(1, 2, 4)}) == 4


def test_http_dates_round_trip_in_all_three_forms() -> None:
    assert DATE.endswith(" GMT")
    assert parse_http_date(DATE) == MTIME
    assert parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT") == 784111777
    assert parse_http_date("Sun Nov  6 08:49:37 1994") == 784111777
    for bad in ["", "yesterday", "Sun, 99 Nov 1994 08:49:37 GMT", "x" * 100, None]:
        assert parse_http_date(bad) is None


def test_none_match_uses_weak_comparison() -> None:
    assert none_match("*", ETAG)
    assert none_match(ETAG, ETAG)
    assert none_match("W/" + ETAG, ETAG)
    assert none_match(f'"nope", {ETAG}', ETAG)
    assert not none_match('"nope"', ETAG)
    assert not none_match("garbage", ETAG)
    assert not none_match(ETAG.strip('"'), ETAG)


def test_if_range_uses_strong_comparison_or_an_exact_date() -> None:
    assert if_range_matches(ETAG, ETAG, MTIME)
    assert not if_range_matches("W/" + ETAG, ETAG, MTIME)
    assert not if_range_matches('"other"', ETAG, MTIME)
    assert if_range_matches(DATE, ETAG, MTIME)
    assert not if_range_matches(http_date(MTIME - 1), ETAG, MTIME)
    assert not if_range_matches(http_date(MTIME + 1), ETAG, MTIME)
    assert not if_range_matches("not a date", ETAG, MTIME)


def plan(**headers: str) -> Plan:
    return plan_response(size=SIZE, etag=ETAG, last_modified=MTIME, **headers)


def test_plans() -> None:
    assert plan() == Plan(200, 0, SIZE)
    assert plan(range_header="bytes=0-1") == Plan(206, 0, 2)
    assert plan(range_header="bytes=5000-") == Plan(416)
    assert plan(range_header="bytes=0-1,5-6") == Plan(200, 0, SIZE)
    # If-Range: a current validator keeps the range, a stale one gets the whole file.
    assert plan(range_header="bytes=10-", if_range=ETAG) == Plan(206, 10, SIZE - 10)
    assert plan(range_header="bytes=10-", if_range=DATE) == Plan(206, 10, SIZE - 10)
    assert plan(range_header="bytes=10-", if_range='"stale"') == Plan(200, 0, SIZE)
    assert plan(range_header="bytes=10-", if_range=http_date(MTIME - 60)) == Plan(200, 0, SIZE)
    assert plan(range_header="bytes=10-", if_range="W/" + ETAG) == Plan(200, 0, SIZE)
    assert plan(if_range=ETAG) == Plan(200, 0, SIZE)
    # 304s.
    assert plan(if_none_match=ETAG) == Plan(304)
    assert plan(if_none_match="*") == Plan(304)
    assert plan(if_none_match='"other"') == Plan(200, 0, SIZE)
    assert plan(if_modified_since=DATE) == Plan(304)
    assert plan(if_modified_since=http_date(MTIME + 3600)) == Plan(304)
    assert plan(if_modified_since=http_date(MTIME - 1)) == Plan(200, 0, SIZE)
    assert plan(if_modified_since="garbage") == Plan(200, 0, SIZE)
    # If-None-Match present: If-Modified-Since is ignored (RFC 9110 13.1.3).
    assert plan(if_none_match='"other"', if_modified_since=DATE) == Plan(200, 0, SIZE)
    assert plan(if_none_match=ETAG, range_header="bytes=0-1") == Plan(304)


def test_content_range_values() -> None:
    assert content_range(Plan(206, 0, 2), SIZE) == "bytes 0-1/1000"
    assert content_range(Plan(206, 999, 1), SIZE) == "bytes 999-999/1000"
    assert content_range(Plan(416), SIZE) == "bytes */1000"
    assert content_range(Plan(200, 0, SIZE), SIZE) is None


def test_cache_max_age_never_outlives_the_token() -> None:
    assert cache_max_age(1000.0, 400.0, 3600) == 600
    assert cache_max_age(1000.0, 400.0, 60) == 60
    assert cache_max_age(1000.0, 999.5, 3600) == 0
    assert cache_max_age(1000.0, 1010.0, 3600) == 0  # inside the leeway: still never negative
    assert cache_max_age(1000.7, 400.0, 3600) == 600
