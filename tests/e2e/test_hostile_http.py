"""Hostile HTTP input against the origin app: property-based (hypothesis).

Arbitrary token strings; validly signed tokens carrying arbitrary locators
(POSIX and Windows forms, Unicode, percent-encoding, symlinks out of the
root); arbitrary ``Range``, ``If-Range``, ``If-None-Match`` and
``If-Modified-Since`` headers. Whatever the input: no 5xx, no byte from
outside the media root (a canary file lies right beside it), and every 200
or 206 body is exactly the named file's bytes at the stated offsets.

The app is the real ``create_app``, driven by falcon's ``TestClient``; a
second property runs the header cases against a real waitress server.
"""

from __future__ import annotations

import os
import random
import re
import time
import urllib.parse
from collections.abc import Iterator

import pytest
import requests
from falcon import testing
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from origin_server.app import create_app
from origin_server.config import OriginConfig
from origin_server.keys import KeyRing
from tests.e2e.conftest import STREAM_PATH, TEST_SECRET, mint_token_stdlib, origin_server, write_key_file

NOW = 1_800_000_000.0
ALLOWED_ORIGIN = "https://player.example"
# Any slice of 32 bytes or more of the canary contains this marker.
MARKER = b"CANARY!-outside-the-media-root-"
CANARY = (MARKER + b"|") * 256

FILES = {
    "a.flac": 40_000,
    "歌手/晚风 #1 100% (Live).mp3": 9_001,
    "deep/er/c d.ogg": 1,
    "empty.wav": 0,
}

# Locators that try to leave the root, in POSIX and Windows forms, plus near-misses of real files.
HOSTILE_LOCATORS = [
    "../canary.bin", "../../canary.bin", "deep/../../canary.bin", "./a.flac", "a.flac/", "/a.flac", "//a.flac",
    "deep//er/c d.ogg", "deep/er/./c d.ogg", "..\\canary.bin", "deep\\..\\..\\canary.bin", "C:\\canary.bin",
    "C:canary.bin", "\\\\127.0.0.1\\share\\canary.bin", "//?/C:/canary.bin", "\\\\?\\C:\\canary.bin",
    "a.flac::$DATA", "a.flac.", "a.flac ", "CON", "NUL.flac", "com1.mp3", "deep/AUX/x", "LPT9",
    "%2e%2e/canary.bin", "%2E%2E%2Fcanary.bin", "..%2fcanary.bin", "..%5ccanary.bin", "a%2eflac",
    "%61.flac", "a.flac%00", "a.flac\x00.mp3", "a.flac\n", "..", ".", "", "link-out", "link-out/../a.flac",
    "dir-link/canary.bin", "deep", "deep/er", "\u2025/canary.bin", "\uff0e\uff0e/canary.bin",
    "a.flac\u200b", "A.FLAC", "canary.bin", "media/../canary.bin", "…/canary.bin", "a" * 5000,
    "/".join(["d"] * 600),
]

BACKENDS = st.one_of(st.none(), st.sampled_from(["nas-main", "main-s3", "", "..", "nas-main/..", "../media"]), st.text(max_size=12))

header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, blacklist_characters="\x7f"), max_size=60
)
number = st.one_of(st.integers(min_value=0, max_value=50_000), st.integers(min_value=-5, max_value=2**70))


@st.composite
def range_headers(draw: st.DrawFn) -> str | None:
    """Well-formed, almost-well-formed and random ``Range`` values."""
    kind = draw(st.integers(0, 8))
    if kind == 0:
        return None
    if kind == 1:
        return draw(header_text)
    if kind <= 4:  # well-formed single ranges (closed, open-ended, suffix), mostly satisfiable
        a = draw(st.integers(0, 41_000))
        b = a + draw(st.integers(0, 20_000))
        return draw(st.sampled_from([f"bytes={a}-{b}", f"bytes={a}-", f"bytes=-{b - a + 1}", "bytes=0-1", "bytes=0-"]))
    a, b = draw(number), draw(number)
    unit = draw(st.sampled_from(["bytes", "bytes", "Bytes", "BYTES", "items", "bytes "]))
    spec = draw(st.sampled_from([f"{a}-{b}", f"{a}-", f"-{b}", f"{a}-{b},{b}-", f" {a} - {b} ", f"{a}--{b}",
                                 f"{a}-{b}-", "-", f"+{a}-{b}", f"0x{a:x}-", f"{a}-{b}, ", f"{a}.0-{b}"]))
    return f"{unit}={spec}"


@st.composite
def locators(draw: st.DrawFn) -> str:
    """Real files, hostile forms, percent-encoded forms, Unicode and random text."""
    kind = draw(st.integers(0, 5))
    if kind == 0:
        return draw(st.sampled_from(sorted(FILES)))
    if kind == 1:
        return draw(st.sampled_from(HOSTILE_LOCATORS))
    if kind == 2:
        return urllib.parse.quote(draw(st.sampled_from(sorted(FILES) + HOSTILE_LOCATORS)), safe=draw(st.sampled_from(["", "/"])))
    if kind == 3:
        parts = draw(st.lists(st.sampled_from(["..", ".", "", "a.flac", "deep", "er", "c d.ogg", "歌手", "\\", ":",
                                               "canary.bin", "link-out", "%2e", "CON", "x "]), min_size=1, max_size=6))
        return draw(st.sampled_from(["/", "\\"])).join(parts)
    return draw(st.text(max_size=40))


class Media(dict):  # type: ignore[type-arg]
    """The fixture's facts; a short repr keeps hypothesis' failure reports readable."""

    def __repr__(self) -> str:
        return f"Media(root={self['root']})"


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A media root with a few files (Unicode names, an empty file), symlinks out, and a canary beside it."""
    base = tmp_path_factory.mktemp("hostile-http")
    root = base / "media"
    rng = random.Random(11)
    contents: dict[str, bytes] = {}
    for locator, size in FILES.items():
        path = root / locator
        path.parent.mkdir(parents=True, exist_ok=True)
        data = rng.randbytes(size)
        assert MARKER not in data
        path.write_bytes(data)
        contents[locator] = data
    (base / "canary.bin").write_bytes(CANARY)
    outside = base / "outside"
    outside.mkdir()
    (outside / "canary.bin").write_bytes(CANARY)
    try:
        os.symlink(base / "canary.bin", root / "link-out")
        os.symlink(outside, root / "dir-link", target_is_directory=True)
    except (OSError, NotImplementedError):  # Windows without the symlink privilege
        pass
    return Media(base=base, root=root, contents=contents)


@pytest.fixture(scope="module")
def client(media: dict[str, object]) -> testing.TestClient:
    root = media["root"]
    config = OriginConfig(
        roots={None: root, "nas-main": root},  # type: ignore[dict-item]
        keys=KeyRing.single(TEST_SECRET),
        clock=lambda: NOW,
        cors_origins=(ALLOWED_ORIGIN,),
    )
    return testing.TestClient(create_app(config))


def served_body(result: testing.Result, method: str) -> bytes:
    """The body, which must be exactly ``Content-Length`` bytes long when that header is sent."""
    length = result.headers.get("content-length")
    if length is not None and method != "HEAD" and result.status_code not in (204, 304):
        assert len(result.content) == int(length), "body length differs from its Content-Length"
    return result.content


def check_response(
    status: int, headers: dict[str, str], body: bytes, *, locator: str | None, media: dict[str, object], method: str = "GET"
) -> None:
    """The invariants every response must hold, whatever the request."""
    assert status < 500, (status, body[:200])
    assert MARKER not in body
    base = str(media["base"])
    assert base.encode("utf-8") not in body
    assert all(base not in value for value in headers.values())
    contents: dict[str, bytes] = media["contents"]  # type: ignore[assignment]
    if status not in (200, 206) or "application/json" in headers.get("content-type", ""):
        assert status not in (200, 206) or locator is None  # only /healthz answers 200 JSON
        return
    # Bytes were served: only for a locator that names one of the root's files exactly.
    assert locator in contents, f"served {len(body)} bytes for locator {locator!r}"
    data = contents[locator]
    if method == "HEAD":
        assert body == b""
        return
    if status == 200:
        assert body == data
        return
    match = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+)", headers.get("content-range", ""))
    assert match, headers.get("content-range")
    first, last, size = map(int, match.groups())
    assert size == len(data) and first <= last < size
    assert body == data[first : last + 1]


def lower(headers: object) -> dict[str, str]:
    return {name.lower(): value for name, value in dict(headers).items()}  # type: ignore[call-overload]


SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(token=st.one_of(st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_\-]{0,60}(\.[A-Za-z0-9_\-=+/]{0,80}){0,4}", fullmatch=True)),
       method=st.sampled_from(["GET", "HEAD", "OPTIONS", "POST", "DELETE"]))
def test_arbitrary_token_strings(client: testing.TestClient, media: dict[str, object], token: str, method: str) -> None:
    result = client.simulate_request(method, STREAM_PATH + urllib.parse.quote(token, safe=""))
    check_response(result.status_code, lower(result.headers), served_body(result, method), locator=None, media=media, method=method)
    if method in ("GET", "HEAD"):
        assert result.status_code in (403, 404, 405), result.status_code


@SETTINGS
@given(locator=locators(), backend=BACKENDS, rng=range_headers(), method=st.sampled_from(["GET", "HEAD"]))
def test_signed_tokens_with_arbitrary_locators(
    client: testing.TestClient, media: dict[str, object], locator: str, backend: str | None, rng: str | None, method: str
) -> None:
    token = mint_token_stdlib(TEST_SECRET, locator, NOW + 600, backend=backend)
    headers = {"Range": rng} if rng is not None else {}
    result = client.simulate_request(method, STREAM_PATH + token, headers=headers)
    served_locator = locator if backend in (None, "nas-main") else None
    event(f"status {result.status_code}")
    check_response(result.status_code, lower(result.headers), served_body(result, method), locator=served_locator,
                   media=media, method=method)
    if locator not in FILES or backend not in (None, "nas-main"):
        # 404 for every refused path; 403 when the verifier already refuses the claim (e.g. an empty locator).
        assert result.status_code in (403, 404), (locator, backend, result.status_code)
    else:
        assert result.status_code in (200, 206, 416), (locator, rng, result.status_code)


@pytest.fixture(scope="module")
def validators(client: testing.TestClient) -> dict[str, tuple[str, str]]:
    """ETag and Last-Modified of every file, from a HEAD (for realistic conditional headers)."""
    found = {}
    for locator in FILES:
        result = client.simulate_head(STREAM_PATH + mint_token_stdlib(TEST_SECRET, locator, NOW + 600))
        found[locator] = (result.headers["ETag"], result.headers["Last-Modified"])
    return found


@st.composite
def conditional_headers(draw: st.DrawFn, etag: str, last_modified: str) -> dict[str, str]:
    """Range plus arbitrary, stale and matching If-Range / If-None-Match / If-Modified-Since."""
    headers: dict[str, str] = {}
    value = draw(range_headers())
    if value is not None:
        headers["Range"] = value
    dates = st.sampled_from([last_modified, "Thu, 01 Jan 1970 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                             last_modified.replace("GMT", "UTC"), "Sunday, 06-Nov-94 08:49:37 GMT",
                             "Sun Nov  6 08:49:37 1994", "0", "-1"])
    tags = st.sampled_from([etag, "*", f"W/{etag}", etag.strip('"'), '"stale"', f'"x", {etag}', f"{etag}, W/\"y\"",
                            '""', '"', ", ,"])
    origins = st.sampled_from([ALLOWED_ORIGIN, "https://evil.example", "null", ALLOWED_ORIGIN + "/", "*"])
    for name, strategy in (("If-Range", st.one_of(tags, dates)), ("If-None-Match", tags), ("If-Modified-Since", dates),
                           ("Origin", origins)):
        choice = draw(st.integers(0, 2))
        if choice == 1:
            headers[name] = draw(strategy)
        elif choice == 2:
            headers[name] = draw(header_text)
    return headers


@SETTINGS
@given(data=st.data(), method=st.sampled_from(["GET", "HEAD"]))
def test_arbitrary_range_and_conditional_headers(
    client: testing.TestClient, media: dict[str, object], validators: dict[str, tuple[str, str]],
    data: st.DataObject, method: str,
) -> None:
    locator = data.draw(st.sampled_from(sorted(FILES)))
    headers = data.draw(conditional_headers(*validators[locator]))
    token = mint_token_stdlib(TEST_SECRET, locator, NOW + 600)
    result = client.simulate_request(method, STREAM_PATH + token, headers=headers)
    got = lower(result.headers)
    event(f"status {result.status_code}")
    check_response(result.status_code, got, served_body(result, method), locator=locator, media=media, method=method)
    assert result.status_code in (200, 206, 304, 416), (headers, result.status_code)
    # CORS: only the configured origin, exactly, is ever allowed to read the response.
    allowed = got.get("access-control-allow-origin")
    event("CORS allowed" if allowed else "CORS not allowed")
    assert allowed is None or (allowed == ALLOWED_ORIGIN == headers.get("Origin")), (headers.get("Origin"), allowed)
    size = FILES[locator]
    if result.status_code == 416:
        assert got["content-range"] == f"bytes */{size}"
    if result.status_code == 304:
        assert result.content == b""


@pytest.fixture(scope="module")
def live_origin(media: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same media root behind a real ``origin-server serve`` (waitress)."""
    workdir = tmp_path_factory.mktemp("hostile-live")
    key_file = write_key_file(workdir / "keys.txt")
    with origin_server(workdir, [media["root"]], secret_file=key_file) as origin:  # type: ignore[list-item]
        yield origin.base_url


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(locator=locators(), rng=range_headers())
def test_real_server_ranges_and_locators(live_origin: str, media: dict[str, object], locator: str, rng: str | None) -> None:
    token = mint_token_stdlib(TEST_SECRET, locator, time.time() + 600)
    headers = {"Range": rng} if rng is not None else {}
    try:
        response = requests.get(live_origin + STREAM_PATH + token, headers=headers, timeout=30)
    except requests.exceptions.InvalidHeader:  # requests' own check (leading whitespace), not the server's
        assume(False)
        return
    event(f"status {response.status_code}")
    check_response(response.status_code, lower(response.headers), response.content, locator=locator, media=media)
    if response.headers.get("content-length") is not None:
        assert len(response.content) == int(response.headers["content-length"])
