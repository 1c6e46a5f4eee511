"""A real browser (headless Chromium) plays, seeks and is refused through the origin's token URLs.

The pages come from a tiny ``http.server`` on another port, i.e. another
origin than the media server, so every play here is a cross-origin media
load, and the ``crossorigin`` ones need the origin's CORS headers.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from snapbuild.sample import write_sample_catalog
from snapbuild.sample.media import TONE_SECONDS
from tests.conftest import require_tool
from tests.e2e.conftest import TEST_SECRET, OriginProcess, free_port, origin_server, write_key_file

pytestmark = pytest.mark.slow

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

SECONDS = TONE_SECONDS  # the sample's tones: long enough that a seek to the middle is a real seek
WAIT_MS = 60_000  # a slow, shared 2-core box: generous, state is polled

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>player</title></head>
<body>
<script>
// Create an <audio> element for src, recording its events (the test polls window.events).
window.startPlayer = (src, crossOrigin) => {
  const audio = document.createElement("audio");
  if (crossOrigin) audio.crossOrigin = "anonymous";
  audio.preload = "auto";
  window.events = [];
  for (const name of ["loadedmetadata", "canplay", "playing", "seeking", "seeked", "error", "abort"]) {
    audio.addEventListener(name, () => window.events.push(name));
  }
  audio.src = src;
  document.body.appendChild(audio);
  window.player = audio;
  audio.play().catch((e) => window.events.push("play-rejected:" + e.name));
};
</script>
</body></html>
"""


def write_tones(media: Path) -> dict[str, Path]:
    """The sample's own media (``sample-catalog --media-dir``): its first FLAC and first MP3 file."""
    pytest.importorskip("soundfile")
    write_sample_catalog(media.parent / "catalog.db", tracks=60, playlists=4, seed=2, media_dir=media)
    files = {}
    for fmt in ("flac", "mp3"):
        files[fmt] = min(media.rglob(f"*.{fmt}"))
    return files


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


@contextlib.contextmanager
def page_server(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on a free port of 127.0.0.1 (another origin than the media server)."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, object]]:
    """Tones on disk, two page origins (one allowed by --cors-origin), the origin server, a browser."""
    chromium = require_tool("chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    workdir = tmp_path_factory.mktemp("browser")
    media = workdir / "media"
    tones = write_tones(media)
    pages = workdir / "pages"
    pages.mkdir()
    (pages / "player.html").write_text(PAGE, encoding="utf-8")
    key_file = write_key_file(workdir / "keys.txt")
    with contextlib.ExitStack() as stack:
        allowed = stack.enter_context(page_server(pages))
        other = stack.enter_context(page_server(pages))
        origin = stack.enter_context(
            origin_server(workdir, [media], secret_file=key_file, extra_args=["--cors-origin", allowed])
        )
        playwright = stack.enter_context(sync_api.sync_playwright())
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        yield {"origin": origin, "browser": browser, "allowed": allowed, "other": other,
               "media": media, "tones": tones}


def token_url(origin: OriginProcess, media: Path, path: Path, *, expires_in: float = 3600) -> str:
    """A stream URL for ``path`` minted with the library, as the public service does."""
    from origin_server.tokens import create_origin_token

    locator = path.relative_to(media).as_posix()
    return origin.stream_url(create_origin_token(TEST_SECRET, locator, time.time() + expires_in))


@contextlib.contextmanager
def open_page(setup: dict[str, object], page_origin: str) -> Iterator[tuple[object, list[tuple[str, int, str | None]]]]:
    """A fresh page at ``page_origin``/player.html, with every media response recorded."""
    browser = setup["browser"]
    context = browser.new_context()  # type: ignore[attr-defined]
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    responses: list[tuple[str, int, str | None]] = []
    page.on(
        "response",
        lambda r: responses.append((r.url, r.status, r.request.headers.get("range")))
        if "/api/private-origin/stream/" in r.url else None,
    )
    try:
        page.goto(f"{page_origin}/player.html", wait_until="load")
        yield page, responses
    finally:
        context.close()


def wait_for(page: object, expression: str, what: str, timeout: float = WAIT_MS) -> None:
    """Poll ``expression`` in the page until true; fail with the element's state if it never is."""
    try:
        page.wait_for_function(expression, polling=200, timeout=timeout)  # type: ignore[attr-defined]
    except Exception as error:  # playwright's TimeoutError: report what the element did
        state = page.evaluate(  # type: ignore[attr-defined]
            "() => window.player ? {events: window.events, currentTime: player.currentTime, duration: player.duration,"
            " paused: player.paused, readyState: player.readyState, networkState: player.networkState,"
            " error: player.error && player.error.code} : null"
        )
        raise AssertionError(f"timed out waiting for {what}: {state}") from error


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_plays_and_seeks_to_the_middle(setup: dict[str, object], fmt: str) -> None:
    origin: OriginProcess = setup["origin"]  # type: ignore[assignment]
    src = token_url(origin, setup["media"], setup["tones"][fmt])  # type: ignore[arg-type,index]
    with open_page(setup, setup["other"]) as (page, responses):  # type: ignore[arg-type]
        page.evaluate("([src]) => window.startPlayer(src, false)", [src])
        wait_for(page, "() => window.events.includes('playing') && player.currentTime > 0.3", "playing")
        duration = page.evaluate("() => player.duration")
        assert abs(duration - SECONDS) < 0.5, duration

        middle = duration / 2
        page.evaluate("([t]) => { window.events = []; player.currentTime = t; }", [middle])
        wait_for(page, "() => window.events.includes('seeked')", "seeked")
        landed = page.evaluate("() => player.currentTime")
        assert middle - 0.5 <= landed <= middle + 1.5, (middle, landed)
        # It keeps playing from there: currentTime moves on past the seek point.
        wait_for(page, f"() => !player.paused && player.currentTime > {landed + 0.5}", "playback after the seek")
        assert page.evaluate("() => player.error") is None

    statuses = [status for _, status, _ in responses]
    assert 206 in statuses, responses
    assert all(status in (200, 206) for status in statuses), responses
    # The origin's own access log agrees: it answered the player with 206.
    assert 206 in logged_statuses(origin, src.rsplit("/", 1)[1])


def test_page_on_an_allowed_origin_plays_with_crossorigin(setup: dict[str, object]) -> None:
    origin: OriginProcess = setup["origin"]  # type: ignore[assignment]
    src = token_url(origin, setup["media"], setup["tones"]["mp3"])  # type: ignore[arg-type,index]
    with open_page(setup, setup["allowed"]) as (page, responses):  # type: ignore[arg-type]
        page.evaluate("([src]) => window.startPlayer(src, true)", [src])
        wait_for(page, "() => window.events.includes('playing') && player.currentTime > 0.3", "playing with CORS")
        # A script on that page may read the ranged response and its exposed headers.
        seen = page.evaluate(
            """async ([src]) => {
                const r = await fetch(src, {headers: {Range: "bytes=0-1"}});
                const body = await r.arrayBuffer();
                return {status: r.status, range: r.headers.get("Content-Range"), length: body.byteLength};
            }""",
            [src],
        )
    size = setup["tones"]["mp3"].stat().st_size  # type: ignore[index]
    assert seen == {"status": 206, "range": f"bytes 0-1/{size}", "length": 2}
    assert any(status == 206 for _, status, _ in responses), responses


def test_crossorigin_page_on_an_unlisted_origin_is_refused(setup: dict[str, object]) -> None:
    """The control for the CORS test: without the origin's consent, a crossorigin load fails."""
    origin: OriginProcess = setup["origin"]  # type: ignore[assignment]
    src = token_url(origin, setup["media"], setup["tones"]["mp3"])  # type: ignore[arg-type,index]
    with open_page(setup, setup["other"]) as (page, _):  # type: ignore[arg-type]
        page.evaluate("([src]) => window.startPlayer(src, true)", [src])
        wait_for(page, "() => player.error !== null", "a CORS error")
        assert "playing" not in page.evaluate("() => window.events")


def test_expired_token_reports_an_error_instead_of_hanging(setup: dict[str, object]) -> None:
    origin: OriginProcess = setup["origin"]  # type: ignore[assignment]
    # Well past the server's clock-skew leeway.
    src = token_url(origin, setup["media"], setup["tones"]["flac"], expires_in=-3600)  # type: ignore[arg-type,index]
    with open_page(setup, setup["other"]) as (page, _):  # type: ignore[arg-type]
        page.evaluate("([src]) => window.startPlayer(src, false)", [src])
        wait_for(page, "() => window.events.includes('error') && player.error !== null", "an error event")
        state = page.evaluate("() => ({code: player.error.code, network: player.networkState, events: window.events})")
    # MEDIA_ERR_SRC_NOT_SUPPORTED (a 4xx), NETWORK_NO_SOURCE: the player knows to fetch a new URL.
    assert state["code"] == 4, state
    assert state["network"] == 3, state
    assert "playing" not in state["events"]
    # The origin refused it (its access log names the token by digest only).
    statuses = logged_statuses(origin, src.rsplit("/", 1)[1])
    assert statuses and set(statuses) == {403}, statuses


def logged_statuses(origin: OriginProcess, token: str) -> list[int]:
    """The statuses of the stream requests the origin's access log shows for ``token``."""
    digest = hashlib.sha256(token.encode("ascii")).hexdigest()[:12]
    deadline = time.monotonic() + 10  # the line is written as the response starts; allow for buffering
    while True:
        log = origin.log_text()
        assert token not in log
        found = [int(m.group(1)) for m in re.finditer(rf" (\d{{3}}) \S+ \S+ \S+ tok={digest}\b", log)]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
