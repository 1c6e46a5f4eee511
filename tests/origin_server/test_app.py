"""The falcon app, request by request, through falcon's TestClient."""

from __future__ import annotations

import gc
import logging
import urllib.parse
import warnings
from pathlib import Path

import falcon
import falcon.testing
import pytest

from origin_server.app import accel_redirect_path, create_app
from origin_server.config import OriginConfig
from origin_server.keys import KeyRing
from origin_server.tokens import create_origin_token

from .conftest import (
    EXPIRES,
    NOW,
    OUTSIDE_BYTES,
    SECRET,
    STREAM,
    Media,
    evil_token,
    make_config,
    open_fds,
    raw_token,
    token_for,
)


def get(client: falcon.testing.TestClient, token: str, **headers: str) -> falcon.testing.Result:
    return client.simulate_get(STREAM + token, headers=headers)


def test_a_valid_token_streams_the_file_under_a_relative_locator(tmp_path: Path) -> None:
    """The first end-to-end check: a valid token streams the file's bytes."""
    music_file = tmp_path / "test.flac"
    music_file.write_bytes(b"test-audio")
    token = create_origin_token(secret="secret-123" * 4, locator="test.flac", expires_at=4102444800)
    app = create_app(make_config_for(tmp_path, "secret-123" * 4))
    response = falcon.testing.TestClient(app).simulate_get(f"/api/private-origin/stream/{token}")
    assert response.status_code == 200
    assert response.content == b"test-audio"


def make_config_for(root: Path, secret: str) -> OriginConfig:
    return OriginConfig(roots={None: root}, keys=KeyRing.single(secret), clock=lambda: 4102444800 - 60)


def test_whole_file(client: falcon.testing.TestClient, media: Media) -> None:
    response = get(client, token_for("马也 - Crabbit/海屿你.flac"))
    assert response.status_code == 200
    assert response.content == media.files["马也 - Crabbit/海屿你.flac"]
    headers = response.headers
    assert headers["content-length"] == str(len(response.content))
    assert headers["content-type"] == "audio/flac"
    assert headers["accept-ranges"] == "bytes"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "private, max-age=600"
    assert headers["etag"].startswith('"')
    assert headers["last-modified"].endswith("GMT")
    disposition = headers["content-disposition"]
    assert disposition.startswith("inline; filename=")
    assert urllib.parse.unquote(disposition.split("filename*=UTF-8''")[1]) == "海屿你.flac"
    assert "vary" not in headers and "access-control-allow-origin" not in headers
    assert str(media.root) not in str(dict(headers))


def test_ranges(client: falcon.testing.TestClient, media: Media) -> None:
    data = media.files["album/track.mp3"]
    token = token_for("album/track.mp3")
    probe = get(client, token, Range="bytes=0-1")
    assert probe.status_code == 206 and probe.content == data[:2]
    assert probe.headers["content-range"] == f"bytes 0-1/{len(data)}"
    assert probe.headers["content-length"] == "2"
    tail = get(client, token, Range="bytes=-100")
    assert tail.status_code == 206 and tail.content == data[-100:]
    middle = get(client, token, Range="bytes=1000-")
    assert middle.content == data[1000:]
    assert get(client, token, Range="bytes=0-1,4-5").content == data
    assert get(client, token, Range="bytes=zz").status_code == 200
    unsatisfiable = get(client, token, Range=f"bytes={len(data)}-")
    assert unsatisfiable.status_code == 416
    assert unsatisfiable.headers["content-range"] == f"bytes */{len(data)}"
    assert unsatisfiable.json == {"error": "range_not_satisfiable"}
    stale = get(client, token, Range="bytes=0-1", **{"If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = get(client, token, Range="bytes=0-1", **{"If-Range": probe.headers["etag"]})
    assert fresh.status_code == 206
    by_date = get(client, token, Range="bytes=0-1", **{"If-Range": probe.headers["last-modified"]})
    assert by_date.status_code == 206


def test_conditional_requests(client: falcon.testing.TestClient) -> None:
    token = token_for("test.flac")
    first = get(client, token)
    etag, modified = first.headers["etag"], first.headers["last-modified"]
    not_modified = get(client, token, **{"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert "content-length" not in not_modified.headers or not_modified.headers["content-length"] == "0"
    assert get(client, token, **{"If-None-Match": "W/" + etag}).status_code == 304
    assert get(client, token, **{"If-Modified-Since": modified}).status_code == 304
    assert get(client, token, **{"If-None-Match": '"x"', "If-Modified-Since": modified}).status_code == 200


def test_head_mirrors_get(client: falcon.testing.TestClient, media: Media) -> None:
    token = token_for("album/track.mp3")
    for headers in ({}, {"Range": "bytes=0-1"}):
        got = get(client, token, **headers)
        head = client.simulate_head(STREAM + token, headers=headers)
        assert head.status_code == got.status_code
        assert head.content == b""
        assert dict(head.headers) == dict(got.headers)


def test_empty_file(client: falcon.testing.TestClient) -> None:
    response = get(client, token_for("empty.wav"))
    assert response.status_code == 200 and response.content == b""
    assert response.headers["content-length"] == "0"
    assert get(client, token_for("empty.wav"), Range="bytes=0-1").status_code == 416


def test_backend_claim_picks_the_root(client: falcon.testing.TestClient) -> None:
    assert get(client, token_for("b.ogg", backend="other")).content == b"other-root-bytes"
    assert get(client, token_for("b.ogg")).status_code == 404
    assert get(client, token_for("test.flac", backend="other")).status_code == 404
    assert get(client, token_for("test.flac", backend="unknown")).json == {"error": "not_found"}


def test_token_errors(client: falcon.testing.TestClient) -> None:
    expired = get(client, token_for("test.flac", expires_at=NOW - 31))
    assert expired.status_code == 403 and expired.json == {"error": "token_expired"}
    within_leeway = get(client, token_for("test.flac", expires_at=NOW - 5))
    assert within_leeway.status_code == 200
    assert within_leeway.headers["cache-control"] == "private, max-age=0"
    early = get(client, token_for("test.flac", not_before=NOW + 300))
    assert early.status_code == 403 and early.json == {"error": "token_not_yet_valid"}
    forged = create_origin_token("another-secret-of-enough-length-000000", "test.flac", EXPIRES)
    for bad in [forged, "abc", "a.b.c", "x" * 5000, "%00", "..", "eyJ.eyJ.", forged[:-1] + "A"]:
        response = get(client, bad)
        assert response.status_code in (403, 404), bad
        assert response.json in ({"error": "invalid_token"}, {"error": "not_found"})
        assert response.headers["cache-control"] == "no-store"


def test_every_refusal_is_the_same_404(client: falcon.testing.TestClient, media: Media) -> None:
    bodies = set()
    for locator in ["missing.flac", "album", "../secret.bin", str(media.outside), "CON", "a\\b", "album//x"]:
        response = get(client, evil_token(locator))
        assert response.status_code == 404
        assert OUTSIDE_BYTES not in response.content
        bodies.add((response.content, tuple(sorted(response.headers.items()))))
    assert len(bodies) == 1


def test_not_configured_is_503(media: Media) -> None:
    client = falcon.testing.TestClient(create_app(make_config(media, keys=None)))
    response = get(client, token_for("test.flac"))
    assert response.status_code == 503 and response.json == {"error": "not_configured"}
    health = client.simulate_get("/healthz")
    assert health.status_code == 503 and health.json == {"status": "unavailable"}


@pytest.mark.filterwarnings("ignore::wsgiref.validate.WSGIWarning")
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "TRACE", "PROPFIND", "FOO"])
def test_other_methods_are_405(client: falcon.testing.TestClient, method: str) -> None:
    response = client.simulate_request(method, STREAM + token_for("test.flac"))
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD, OPTIONS"
    assert response.json == {"error": "method_not_allowed"}


def test_unknown_paths_are_json_404(client: falcon.testing.TestClient) -> None:
    for path in ["/", "/api/private-origin/stream/a/b", "/etc/passwd", "/%2e%2e/x"]:
        response = client.simulate_get(path)
        assert response.status_code == 404 and response.json == {"error": "not_found"}


def test_cors(media: Media) -> None:
    client = falcon.testing.TestClient(
        create_app(make_config(media, cors_origins=("https://player.example",), cors_max_age=900))
    )
    token = token_for("test.flac")
    allowed = get(client, token, Origin="https://player.example")
    assert allowed.headers["access-control-allow-origin"] == "https://player.example"
    assert allowed.headers["vary"] == "Origin"
    exposed = {name.strip() for name in allowed.headers["access-control-expose-headers"].split(",")}
    assert exposed == {"Content-Range", "Accept-Ranges", "ETag", "Content-Length"}
    other = get(client, token, Origin="https://evil.example")
    assert "access-control-allow-origin" not in other.headers and other.headers["vary"] == "Origin"
    # Errors are readable cross-origin too, so a player's script can see "token_expired".
    expired = get(client, token_for("test.flac", expires_at=NOW - 100), Origin="https://player.example")
    assert expired.headers["access-control-allow-origin"] == "https://player.example"
    preflight = client.simulate_options(
        STREAM + token,
        headers={"Origin": "https://player.example", "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "range"},
    )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert preflight.headers["access-control-allow-headers"] == "Range, If-Range, If-None-Match, If-Modified-Since"
    assert preflight.headers["access-control-max-age"] == "900"
    assert preflight.headers["access-control-allow-origin"] == "https://player.example"
    stranger = client.simulate_options(
        STREAM + token, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}
    )
    assert stranger.status_code == 204
    assert "access-control-allow-methods" not in stranger.headers
    assert "access-control-allow-origin" not in stranger.headers


def test_max_age_is_capped(media: Media) -> None:
    client = falcon.testing.TestClient(create_app(make_config(media, max_age=60)))
    assert get(client, token_for("test.flac")).headers["cache-control"] == "private, max-age=60"


def test_health_tells_anyone_only_the_status(client: falcon.testing.TestClient, media: Media) -> None:
    response = client.simulate_get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok"}
    media.other_root.rename(media.other_root.with_name("moved"))
    degraded = client.simulate_get("/healthz")
    assert degraded.status_code == 503 and degraded.json == {"status": "unavailable"}


def test_health_details_only_when_configured(media: Media) -> None:
    client = falcon.testing.TestClient(create_app(make_config(media, health_details=True)))
    response = client.simulate_get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok", "roots": {"_default": True, "other": True}, "keys_loaded": 1}
    assert str(media.root) not in response.text and SECRET not in response.text
    media.other_root.rename(media.other_root.with_name("moved"))
    degraded = client.simulate_get("/healthz")
    assert degraded.status_code == 503 and degraded.json["roots"]["other"] is False


def test_offload_answers_with_x_accel_redirect(media: Media) -> None:
    client = falcon.testing.TestClient(create_app(make_config(media, offload="nginx", offload_prefix="/_p")))
    response = get(client, token_for("马也 - Crabbit/海屿你.flac"))
    assert response.status_code == 200 and response.content == b""
    assert response.headers["x-accel-redirect"] == (
        "/_p/_default/%E9%A9%AC%E4%B9%9F%20-%20Crabbit/%E6%B5%B7%E5%B1%BF%E4%BD%A0.flac"
    )
    assert response.headers["content-type"] == "audio/flac"
    assert response.headers["content-disposition"].startswith("inline;")
    assert response.headers["cache-control"] == "private, max-age=600"
    other = get(client, token_for("b.ogg", backend="other"))
    assert other.headers["x-accel-redirect"] == "/_p/other/b.ogg"
    # Refusals are still decided here, before nginx is asked for anything.
    assert get(client, evil_token("../secret.bin")).status_code == 404
    assert "x-accel-redirect" not in get(client, token_for("missing.flac")).headers


def test_accel_paths_encode_every_special_character() -> None:
    path = accel_redirect_path("/_protected", None, 'a b/%?#;"x".flac')
    assert path == "/_protected/_default/a%20b/%25%3F%23%3B%22x%22.flac"


def test_file_handles_are_closed_on_every_bodiless_path(client: falcon.testing.TestClient) -> None:
    if open_fds() is None:
        pytest.skip("no /proc/self/fd here")
    token = token_for("album/track.mp3")
    etag = get(client, token).headers["etag"]
    before = open_fds()
    # CPython closes a dropped file when its last reference goes, so a leak
    # shows as a ResourceWarning ("unclosed file") rather than in the count.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        for _ in range(20):
            client.simulate_head(STREAM + token)
            get(client, token, **{"If-None-Match": etag})
            get(client, token, Range="bytes=999999999-")
            get(client, token, Range="bytes=0-1")
            get(client, token)
            get(client, token_for("missing.flac"))
        gc.collect()
    assert [w for w in caught if issubclass(w.category, ResourceWarning)] == []
    assert open_fds() == before


def test_an_unexpected_error_is_500_json_and_logs_no_token(
    client: falcon.testing.TestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    token = token_for("test.flac")

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError(f"bug while handling {args!r} /api/private-origin/stream/{token}")

    monkeypatch.setattr("origin_server.app.open_regular_file", broken)
    with caplog.at_level(logging.INFO):
        response = get(client, token)
    assert response.status_code == 500 and response.json == {"error": "internal_error"}
    assert "RuntimeError" in caplog.text
    assert token not in caplog.text and SECRET not in caplog.text


def test_access_log_line(client: falcon.testing.TestClient, caplog: pytest.LogCaptureFixture) -> None:
    token = token_for("album/track.mp3")
    with caplog.at_level(logging.INFO, logger="origin_server.access"):
        get(client, token, Range="bytes=0-99")
        get(client, "not-a-token")
    lines = [record.getMessage() for record in caplog.records if record.name == "origin_server.access"]
    assert len(lines) == 2
    method, route, status, length, elapsed, client_addr, digest = lines[0].split(" ")
    assert (method, route, status, length) == ("GET", "/api/private-origin/stream/{token}", "206", "100")
    assert elapsed.endswith("ms") and digest.startswith("tok=") and len(digest) == 16
    assert lines[1].split(" ")[2:4] == ["403", str(len(b'{"error": "invalid_token"}'))]
    assert token not in caplog.text and "not-a-token" not in caplog.text


def test_a_remembered_token_still_expires_and_waits_for_nbf(media: Media) -> None:
    """Verified tokens are remembered for speed; their lifetime is still checked on every request."""
    now = [NOW]
    client = falcon.testing.TestClient(create_app(make_config(media, clock=lambda: now[0])))
    token = token_for("test.flac", expires_at=NOW + 100)
    assert get(client, token).status_code == 200
    assert get(client, token, Range="bytes=0-1").status_code == 206
    now[0] = NOW + 100 + 29  # inside the 30 s leeway
    assert get(client, token).status_code == 200
    now[0] = NOW + 100 + 30
    assert get(client, token).json == {"error": "token_expired"}
    assert get(client, token).json == {"error": "token_expired"}
    early = token_for("test.flac", not_before=NOW + 200, expires_at=NOW + 1000)
    now[0] = NOW + 200 - 30
    assert get(client, early).status_code == 200
    now[0] = NOW  # a clock stepped back: the remembered token is not valid yet again
    assert get(client, early).json == {"error": "token_not_yet_valid"}
    # A forged twin of a remembered token is still refused.
    assert get(client, token[:-2] + ("AA" if not token.endswith("AA") else "BB")).status_code == 403


# --- refusals: the lifetime cap, the reason in the log line, 416 ----------------------------


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "origin_server.access"]


def test_a_token_living_longer_than_seven_days_is_refused_by_default(
    media: Media, caplog: pytest.LogCaptureFixture
) -> None:
    client = falcon.testing.TestClient(create_app(make_config(media)))
    week = 7 * 24 * 3600
    assert get(client, token_for("test.flac", expires_at=NOW + week)).status_code == 200
    with caplog.at_level(logging.INFO, logger="origin_server.access"):
        forever = get(client, token_for("test.flac", expires_at=10**300))
    assert forever.status_code == 403 and forever.json == {"error": "invalid_token"}
    assert access_lines(caplog)[-1].endswith(' reason="token lives longer than the maximum lifetime"')
    uncapped = falcon.testing.TestClient(create_app(make_config(media, max_token_lifetime=0)))
    assert get(uncapped, token_for("test.flac", expires_at=10**300)).status_code == 200


def test_the_access_log_says_why_a_request_was_refused(media: Media, caplog: pytest.LogCaptureFixture) -> None:
    """Clients get the same body whatever the reason; the operator's log line tells them apart."""
    client = falcon.testing.TestClient(create_app(make_config(media, roots={"music": media.root})))
    requests_and_answers = [
        (token_for("test.flac", backend="music", expires_at=NOW - 60), 403, "token_expired", "token has expired"),
        (token_for("test.flac", backend="music")[:-3] + "AAA", 403, "invalid_token", "bad signature"),
        ("x" * 5000, 403, "invalid_token", "token is too long"),
        (token_for("missing.flac", backend="music"), 404, "not_found", "no such file"),
        (token_for("album", backend="music"), 404, "not_found", "not a regular file"),
        (raw_token({"locator": "../secret.bin", "backend": "music", "exp": EXPIRES}), 404, "not_found", "locator has an empty, dot or device-name segment"),
        (token_for("test.flac", backend="other"), 404, "not_found", "no media root named 'other'"),
        (token_for("test.flac"), 404, "not_found", "the token names no backend and no unnamed media root is configured"),
    ]
    with caplog.at_level(logging.INFO, logger="origin_server.access"):
        for token, status, code, _reason in requests_and_answers:
            response = get(client, token)
            assert (response.status_code, response.json) == (status, {"error": code})
    lines = access_lines(caplog)
    assert [line.partition(' reason="')[2] for line in lines] == [reason + '"' for *_, reason in requests_and_answers]
    assert lines[2].split(" ")[6] == "tok=-"  # an over-long token is not even hashed


def test_416_is_not_stored(client: falcon.testing.TestClient) -> None:
    response = get(client, token_for("test.flac"), Range="bytes=999-")
    assert response.status_code == 416 and response.json == {"error": "range_not_satisfiable"}
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-range"] == "bytes */10"
