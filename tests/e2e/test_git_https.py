"""The HTTPS recipe of docs/consumers.md, run for real: nginx, fcgiwrap and git http-backend on 127.0.0.1 with TLS.

Clone and pull need the password; a wrong one is refused; pushes are
refused; a split snapshot arrives and the consumer's hooks assemble it.
"""

from __future__ import annotations

import json
import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from snapbuild.sample import mutate_sample_catalog, write_sample_catalog
from tests.conftest import require_tool
from tests.e2e.conftest import cli_env, db_matches_manifest, free_port, git, run_ok
from tests.e2e.git_http_support import GitHttps, git_https


def https_git(server: GitHttps, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    """git trusting the test's certificate, never prompting for a password."""
    result = subprocess.run(
        ["git", *map(str, args)], capture_output=True, text=True, encoding="utf-8", errors="replace", timeout=120,
        env=cli_env({"GIT_SSL_CAINFO": str(server.cafile), "GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": ""}),
    )
    if check:
        assert result.returncode == 0, f"git {' '.join(map(str, args))}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.mark.slow
def test_clone_and_pull_over_https_with_basic_auth_read_only(tmp_path: Path) -> None:
    nginx, fcgiwrap, openssl = require_tool("nginx"), require_tool("fcgiwrap"), require_tool("openssl")
    require_tool("git")
    root = tmp_path / "srv-git"
    served = root / "catalog.git"
    git("init", "--quiet", "--bare", "--initial-branch=main", served)
    git("--git-dir", served, "config", "http.receivepack", "false")
    git("--git-dir", served, "config", "receive.unpackLimit", "1")
    catalog = tmp_path / "catalogsync.db"
    write_sample_catalog(catalog, tracks=3000, playlists=300, seed=7)
    publisher = tmp_path / "snapshots.git"
    run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", publisher, "--part-size", "64KiB",
           "--generated-at", "2026-01-01T00:00:00Z", "--push", served)
    template = tmp_path / "template"
    run_ok("snapbuild", "consumer-setup", "--template", template)

    with git_https(tmp_path / "nginx", root, port=free_port(), nginx=nginx, fcgiwrap=fcgiwrap, openssl=openssl) as server:
        anonymous = urllib.request.Request(f"{server.base_url}/catalog.git/info/refs?service=git-upload-pack")
        context = ssl.create_default_context(cafile=str(server.cafile))
        with pytest.raises(urllib.error.HTTPError) as unauthorised:
            urllib.request.urlopen(anonymous, context=context, timeout=10)
        assert unauthorised.value.code == 401

        wrong = https_git(server, "clone", server.url("catalog.git", password="wrong"), tmp_path / "nope", check=False)
        assert wrong.returncode != 0 and "Authentication failed" in wrong.stderr
        assert not (tmp_path / "nope").exists()

        clone = tmp_path / "consumer"
        https_git(server, "clone", "--quiet", "--template", template, server.url("catalog.git"), clone)
        assert db_matches_manifest(clone)

        mutate_sample_catalog(catalog, fraction=0.01, seed=1)
        run_ok("snapbuild", "export", "--db", catalog, "--commit", "--repo", publisher,
               "--generated-at", "2026-01-02T00:00:00Z", "--push", served)
        assert not list((served / "objects").glob("??/*"))  # the pushes were kept as packs, deltas and all
        pulled = https_git(server, "-C", clone, "pull", "--ff-only")
        assert "assembled catalog_read.db" in pulled.stdout + pulled.stderr
        assert db_matches_manifest(clone)
        assert json.loads((clone / "manifest.json").read_text(encoding="utf-8"))["generated_at"] == "2026-01-02T00:00:00Z"
        run_ok("snapbuild", "verify", "--repo", clone)

        before = git("--git-dir", served, "rev-parse", "main").stdout
        https_git(server, "-C", clone, "commit", "--quiet", "--allow-empty", "-m", "not a snapshot")
        pushed = https_git(server, "-C", clone, "push", "origin", "HEAD:main", check=False)
        assert pushed.returncode != 0 and "403" in pushed.stderr
        assert git("--git-dir", served, "rev-parse", "main").stdout == before
        receive = urllib.request.Request(
            f"{server.base_url}/catalog.git/git-receive-pack", data=b"0000", method="POST",
            headers={"Content-Type": "application/x-git-receive-pack-request"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(receive, context=context, timeout=10)
        assert refused.value.code == 403
    served_log = (tmp_path / "nginx" / "access.log").read_text(encoding="utf-8")
    assert '"POST /catalog.git/git-upload-pack HTTP/1.1" 200' in served_log and " consumer [" in served_log
