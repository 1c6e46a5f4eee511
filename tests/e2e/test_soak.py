"""A short run of the origin soak (benchmarks/soak_origin.py) as a test: no error, no wrong byte."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.e2e.conftest import REPO_ROOT, cli_env

pytestmark = pytest.mark.slow


def test_short_soak_has_no_errors_and_no_wrong_bytes() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "soak_origin.py"), "--seconds", "10", "--json"],
        capture_output=True, text=True, encoding="utf-8", timeout=300, env=cli_env(), cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == 0 and report["wrong_bytes"] == 0, result.stderr
    # Every kind of client got through: ranged reads, whole files and paused players that resumed.
    assert report["clients"] == {"ranged": 32, "whole": 8, "paused": 40}
    assert all(count > 0 for count in report["requests"].values()), report["requests"]
    assert report["mb_checked"] > 0
    if sys.platform.startswith("linux"):
        assert report["rss"]["start"] and report["rss"]["end"]
