"""git over HTTPS as docs/consumers.md sets it up: nginx, fcgiwrap and ``git http-backend`` on 127.0.0.1.

The server block is read from docs/consumers.md itself (its one ``nginx``
code block), so the test runs the documented recipe, not a copy of it: the
recipe's paths and port are replaced with the test's, and the block is
wrapped in a self-contained ``http`` context.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import self_signed_certificate, stop_process

REPO_ROOT = Path(__file__).resolve().parents[2]
DOC = REPO_ROOT / "docs" / "consumers.md"

# The recipe's placeholders, replaced with the test's own paths.
RECIPE_PROJECT_ROOT = "/srv/git"
RECIPE_HTPASSWD = "/etc/nginx/snapshots.htpasswd"
RECIPE_SOCKET = "unix:/run/fcgiwrap.socket"
RECIPE_CERT = "/etc/ssl/git.example.org.crt"
RECIPE_KEY = "/etc/ssl/git.example.org.key"
RECIPE_LISTEN = "listen 443 ssl;"


def recipe_server_block() -> str:
    """The ``nginx`` code block of docs/consumers.md."""
    match = re.search(r"```nginx\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert match, "docs/consumers.md has no nginx code block"
    return match.group(1)


@dataclass
class GitHttps:
    """A running recipe: the URL prefix, the CA file a client trusts, and the user and password."""

    base_url: str
    cafile: Path
    user: str
    password: str

    def url(self, name: str, *, password: str | None = None) -> str:
        """The clone URL of repository ``name`` with credentials in it."""
        host = self.base_url.removeprefix("https://")
        return f"https://{self.user}:{password if password is not None else self.password}@{host}/{name}"


def _htpasswd(path: Path, openssl: str, user: str, password: str) -> None:
    hashed = subprocess.run([openssl, "passwd", "-6", password], check=True, capture_output=True, text=True).stdout
    path.write_text(f"{user}:{hashed.strip()}\n", encoding="utf-8")


def render(workdir: Path, *, port: int, project_root: Path, socket: Path, cert: Path, key: Path, htpasswd: Path) -> Path:
    """Write ``workdir/nginx.conf``: the recipe's server block with the test's paths, in a complete config."""
    block = recipe_server_block()
    for placeholder, value in (
        (RECIPE_LISTEN, f"listen 127.0.0.1:{port} ssl;"),
        (RECIPE_PROJECT_ROOT, project_root.as_posix()),
        (RECIPE_HTPASSWD, htpasswd.as_posix()),
        (RECIPE_SOCKET, f"unix:{socket.as_posix()}"),
        (RECIPE_CERT, cert.as_posix()),
        (RECIPE_KEY, key.as_posix()),
    ):
        assert placeholder in block, f"the recipe no longer names {placeholder}"
        block = block.replace(placeholder, value)
    shutil.copyfile("/etc/nginx/fastcgi_params", workdir / "fastcgi_params")
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / f"tmp_{name}").mkdir(exist_ok=True)
    user = "user root;\n" if hasattr(os, "geteuid") and os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(
        f"""{user}worker_processes 1;
daemon off;
pid {workdir.as_posix()}/nginx.pid;
error_log {workdir.as_posix()}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log {workdir.as_posix()}/access.log;
    client_body_temp_path {workdir.as_posix()}/tmp_body;
    proxy_temp_path {workdir.as_posix()}/tmp_proxy;
    fastcgi_temp_path {workdir.as_posix()}/tmp_fastcgi;
    uwsgi_temp_path {workdir.as_posix()}/tmp_uwsgi;
    scgi_temp_path {workdir.as_posix()}/tmp_scgi;
{block}}}
""",
        encoding="utf-8",
    )
    return conf


def _wait_for(path: Path, process: subprocess.Popen, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start")
        time.sleep(0.05)


@contextmanager
def git_https(
    workdir: Path, project_root: Path, *, port: int, nginx: str, fcgiwrap: str, openssl: str,
    user: str = "consumer", password: str = "s3cret-snapshots",
) -> Iterator[GitHttps]:
    """Run fcgiwrap and nginx with the recipe, serving the bare repositories under ``project_root``."""
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = self_signed_certificate(openssl, workdir)
    htpasswd = workdir / "snapshots.htpasswd"
    _htpasswd(htpasswd, openssl, user, password)
    socket = workdir / "fcgiwrap.socket"
    conf = render(workdir, port=port, project_root=project_root, socket=socket, cert=cert, key=key, htpasswd=htpasswd)
    # fcgiwrap preforks its workers in its own process group, so all of them stop together.
    wrapper = subprocess.Popen([fcgiwrap, "-c", "2", "-s", f"unix:{socket}"], start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    server = None
    try:
        _wait_for(socket, wrapper, "fcgiwrap")
        server = subprocess.Popen([nginx, "-c", str(conf), "-p", str(workdir), "-e", str(workdir / "error.log")],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for(workdir / "nginx.pid", server, "nginx")
        yield GitHttps(f"https://127.0.0.1:{port}", cert, user, password)
    finally:
        if server is not None:
            stop_process(server)
        if wrapper.poll() is None:
            os.killpg(wrapper.pid, signal.SIGTERM)
            try:
                wrapper.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(wrapper.pid, signal.SIGKILL)
                wrapper.wait(timeout=10)
