"""The nginx configuration docs/origin.md gives for the public internet, run as written in front of the origin."""

from __future__ import annotations

import os
import re
import socket
import ssl
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import requests

from tests.conftest import require_tool, self_signed_certificate

from . import nginx_conf
from .conftest import SECRET, STREAM, Media, cli_server, closed_by_server, free_port, token_for, write_private

DOC = Path(__file__).resolve().parents[2] / "docs" / "origin.md"
HEADING = "### nginx in front for the public internet, the origin sending the bytes"


def documented_config() -> str:
    """The first ``nginx`` block after the heading, as the docs show it."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index(HEADING) :]
    return re.search(r"```nginx\n(.*?)```", section, re.DOTALL).group(1)  # type: ignore[union-attr]


def substituted(config: str, replacements: dict[str, str]) -> str:
    """Replace each documented value once; fail if the docs no longer hold it."""
    for old, new in replacements.items():
        assert config.count(old) == 1, f"docs/origin.md's nginx block no longer has {old!r} once"
        config = config.replace(old, new)
    return config


@pytest.mark.slow  # waits for nginx's 10 s header timeout
def test_the_documented_nginx_front_works(tmp_path: Path, media: Media) -> None:
    nginx = require_tool("nginx")
    openssl = require_tool("openssl")
    work = tmp_path / "nginx"
    work.mkdir()
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / f"tmp_{name}").mkdir()
    cert, key = self_signed_certificate(openssl, work)
    key_file = write_private(tmp_path / "origin.keys", f"k1:{SECRET}\n")
    args = ["--media-root", str(media.root), "--secret-file", str(key_file), "--trusted-proxy", "127.0.0.1"]
    with cli_server(args) as (origin, process):
        port = free_port()
        site = substituted(
            documented_config(),
            {
                "listen 443 ssl http2;": f"listen 127.0.0.1:{port} ssl http2;",
                "server 127.0.0.1:8080;": f"server 127.0.0.1:{origin.port};",
                "/etc/ssl/nas.example.org/fullchain.pem": cert.as_posix(),
                "/etc/ssl/nas.example.org/privkey.pem": key.as_posix(),
                "/var/log/nginx/origin.log": (work / "access.log").as_posix(),
            },
        )
        user = "user root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
        temp_paths = "".join(
            f"    {directive}_temp_path {(work / f'tmp_{name}').as_posix()};\n"
            for directive, name in (("client_body", "body"), ("proxy", "proxy"), ("fastcgi", "fastcgi"),
                                    ("uwsgi", "uwsgi"), ("scgi", "scgi"))
        )
        config = work / "nginx.conf"
        config.write_text(
            f"{user}worker_processes 1;\ndaemon off;\npid {work.as_posix()}/nginx.pid;\n"
            f"error_log {work.as_posix()}/error.log warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n{temp_paths}{site}}}\n",
            encoding="utf-8",
        )
        front = start_tls(nginx, config, port)
        try:
            base = f"https://127.0.0.1:{port}"
            with warnings.catch_warnings(), requests.Session() as session:
                warnings.simplefilter("ignore")  # the self-signed certificate
                track = media.files["album/track.mp3"]
                part = session.get(
                    base + STREAM + token_for("album/track.mp3", expires_at=time.time() + 300),
                    headers={"Range": "bytes=10-99", "X-Forwarded-For": "203.0.113.66"},
                    timeout=10,
                    verify=False,
                )
                assert part.status_code == 206 and part.content == track[10:100]
                assert session.get(base + "/healthz", timeout=10, verify=False).json() == {"status": "ok"}
            assert cut_off_while_trickling(port), "nginx kept a client that trickles its headers"
            assert "/stream/" not in (work / "access.log").read_text(encoding="utf-8")  # no token in nginx's log
        finally:
            nginx_conf.stop(front)
        process.terminate()
        _out, err = process.communicate(timeout=10)
    (line,) = [line for line in err.splitlines() if " 206 " in line]
    assert line.split(" ")[-2] == "127.0.0.1"  # the address nginx saw, not the one the client claimed


def start_tls(nginx: str, config: Path, port: int, *, timeout: float = 10) -> subprocess.Popen:
    """Start nginx with ``config``; return once it completes a TLS handshake on ``port``."""
    process = subprocess.Popen(
        [nginx, "-c", str(config), "-p", str(config.parent), "-e", str(config.parent / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read().decode(errors='replace')}")  # type: ignore[union-attr]
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as raw, context.wrap_socket(raw):
                return process
        except OSError:
            time.sleep(0.1)
    nginx_conf.stop(process)
    raise RuntimeError("nginx did not start")


def cut_off_while_trickling(port: int) -> bool:
    """Send a request line, then a header line every second: True when nginx closes within 30 s."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(raw) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        return closed_by_server(sock, within=30, trickle=True, every=1)
