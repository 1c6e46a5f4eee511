"""A self-contained nginx config (temp dir, 127.0.0.1) in front of the origin, as docs/origin.md shows it.

Used by the offload tests and by ``benchmarks/bench_origin.py``.
"""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from pathlib import Path

from tests.conftest import stop_process

# The internal location of docs/origin.md: nginx copies Content-Type,
# Content-Disposition and Cache-Control from the origin's answer by itself;
# the others are re-added from $upstream_http_* (an empty value adds nothing).
INTERNAL_LOCATION = """
    location {prefix}/{segment}/ {{
        internal;
        alias {root}/;
        add_header X-Content-Type-Options $upstream_http_x_content_type_options always;
        add_header Referrer-Policy $upstream_http_referrer_policy always;
        add_header Vary $upstream_http_vary always;
        add_header Access-Control-Allow-Origin $upstream_http_access_control_allow_origin always;
        add_header Access-Control-Expose-Headers $upstream_http_access_control_expose_headers always;
    }}
"""


def render(
    workdir: Path,
    *,
    listen_port: int,
    origin_port: int,
    roots: dict[str | None, Path],
    prefix: str = "/_protected",
    static_root: Path | None = None,
    worker_processes: int = 1,
) -> Path:
    """Write ``workdir/nginx.conf`` (proxy to the origin, internal locations per root); return its path.

    ``static_root``, when given, is also served directly under ``/static/`` (the
    benchmark's "nginx alone" anchor).
    """
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / f"tmp_{name}").mkdir(parents=True, exist_ok=True)
    internal = "".join(
        INTERNAL_LOCATION.format(prefix=prefix, segment=name or "_default", root=Path(root).resolve().as_posix())
        for name, root in roots.items()
    )
    static = (
        f"    location /static/ {{\n        alias {Path(static_root).resolve().as_posix()}/;\n    }}\n"
        if static_root is not None
        else ""
    )
    user = "user root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    text = f"""{user}worker_processes {worker_processes};
daemon off;
pid {workdir.as_posix()}/nginx.pid;
error_log {workdir.as_posix()}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {workdir.as_posix()}/tmp_body;
    proxy_temp_path {workdir.as_posix()}/tmp_proxy;
    fastcgi_temp_path {workdir.as_posix()}/tmp_fastcgi;
    uwsgi_temp_path {workdir.as_posix()}/tmp_uwsgi;
    scgi_temp_path {workdir.as_posix()}/tmp_scgi;
    sendfile on;
    default_type application/octet-stream;
    upstream origin {{
        server 127.0.0.1:{origin_port};
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{listen_port};
        location /api/private-origin/ {{
            proxy_pass http://origin;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
{internal}{static}    }}
}}
"""
    path = workdir / "nginx.conf"
    path.write_text(text, encoding="utf-8")
    return path


def start(nginx: str, config: Path, port: int, *, timeout: float = 10) -> subprocess.Popen:
    """Start nginx in the foreground with ``config``; return once it accepts connections."""
    process = subprocess.Popen(
        # -e: the startup error log too lives in the temp dir (non-root runs cannot open nginx's default).
        [nginx, "-c", str(config), "-p", str(config.parent), "-e", str(config.parent / "error.log")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {process.stderr.read().decode(errors='replace')}")  # type: ignore[union-attr]
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/nginx-probe", timeout=1)
        except urllib.error.HTTPError:
            return process  # a 404 from nginx: it is up
        except OSError:
            time.sleep(0.1)
            continue
        return process
    process.kill()
    raise RuntimeError("nginx did not start")


def stop(process: subprocess.Popen) -> None:
    """Stop an nginx started by :func:`start` (master and its workers)."""
    stop_process(process)
