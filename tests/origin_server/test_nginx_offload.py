"""``--offload nginx``: a real nginx in front serves the bytes the origin authorised (X-Accel-Redirect)."""

from __future__ import annotations

import time
import urllib.parse
from pathlib import Path

import pytest
import requests

from origin_server.media import content_type_for
from tests.conftest import require_tool

from . import nginx_conf
from .conftest import OUTSIDE_BYTES, SECRET, STREAM, Media, cli_server, evil_token, free_port, token_for


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "origin.keys"
    path.write_text(f"{SECRET}\n", encoding="utf-8")
    return path


def test_nginx_serves_what_the_origin_authorises(tmp_path: Path, media: Media, key_file: Path) -> None:
    nginx = require_tool("nginx")
    args = [
        "--media-root", str(media.root),
        "--media-root", f"other={media.other_root}",
        "--secret-file", str(key_file),
        "--offload", "nginx",
        "--trusted-proxy", "127.0.0.1",
        "--cors-origin", "https://player.example",
    ]  # fmt: skip
    with cli_server(args) as (origin, origin_process):
        port = free_port()
        config = nginx_conf.render(
            tmp_path / "nginx",
            listen_port=port,
            origin_port=origin.port,
            roots={None: media.root, "other": media.other_root},
        )
        front = nginx_conf.start(nginx, config, port)
        try:
            base = f"http://127.0.0.1:{port}{STREAM}"
            expires = time.time() + 300
            with requests.Session() as session:
                for locator, data in media.files.items():
                    url = base + token_for(locator, expires_at=expires)
                    whole = session.get(url, headers={"Origin": "https://player.example"}, timeout=10)
                    assert whole.status_code == 200 and whole.content == data, locator
                    headers = whole.headers
                    assert headers["Content-Type"] == content_type_for(locator)
                    assert headers["Cache-Control"].startswith("private, max-age=")
                    assert headers["Content-Disposition"].startswith("inline; filename=")
                    name = urllib.parse.unquote(headers["Content-Disposition"].split("filename*=UTF-8''")[1])
                    assert name == locator.rpartition("/")[2]
                    assert headers["X-Content-Type-Options"] == "nosniff"
                    assert headers["Referrer-Policy"] == "no-referrer"
                    assert headers["Access-Control-Allow-Origin"] == "https://player.example"
                    assert "X-Accel-Redirect" not in headers
                    if not data:
                        continue
                    part = session.get(url, headers={"Range": "bytes=1-2"}, timeout=10)
                    assert part.status_code == 206 and part.content == data[1:3]
                    assert part.headers["Content-Range"] == f"bytes 1-2/{len(data)}"
                    head = session.head(url, timeout=10)
                    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data))
                    cached = session.get(url, headers={"If-None-Match": whole.headers["ETag"]}, timeout=10)
                    assert cached.status_code == 304
                other = session.get(base + token_for("b.ogg", backend="other", expires_at=expires), timeout=10)
                assert other.content == b"other-root-bytes"
                # The origin still decides every refusal; nginx adds nothing of its own.
                for token in [evil_token("../secret.bin"), evil_token("/" + str(media.outside).lstrip("/")), "bad"]:
                    refused = session.get(base + token, timeout=10)
                    assert refused.status_code in (403, 404)
                    assert OUTSIDE_BYTES[:16] not in refused.content
                    assert refused.headers["Content-Type"] == "application/json"
                # The internal location cannot be asked for directly.
                direct = session.get(f"http://127.0.0.1:{port}/_protected/_default/test.flac", timeout=10)
                assert direct.status_code == 404 and b"test-audio" not in direct.content
        finally:
            nginx_conf.stop(front)
        origin_process.terminate()
        _out, err = origin_process.communicate(timeout=10)
    # The origin's access log saw the client through nginx's X-Forwarded-For, and no token.
    assert " 127.0.0.1 tok=" in err
    assert SECRET not in err
