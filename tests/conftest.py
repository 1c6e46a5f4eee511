"""Fixtures shared by every test: git isolated from the developer's environment."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated_git_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Clear ``HOME`` and every ``GIT_*`` variable, as dulwich's own tests do.

    Neither dulwich nor the ``git`` CLI then sees the developer's config,
    hooks or identity, so tests behave the same on every machine.
    """
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith("GIT_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("USERPROFILE", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_AUTHOR_NAME", "Test Consumer")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "consumer@example.invalid")
    monkeypatch.setenv("GIT_COMMITTER_NAME", "Test Consumer")
    monkeypatch.setenv("GIT_COMMITTER_EMAIL", "consumer@example.invalid")
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    monkeypatch.delenv("ORIGIN_SECRET_FILE", raising=False)
    return home


def require_tool(name: str) -> str:
    """Return the path of an external tool, or skip the test when it is missing.

    Under CI (``CI`` set, as ``.ci/run`` runs) a missing tool fails the test
    instead: CI installs every tool the suite needs, so a skip there would
    hide a broken install step.
    """
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is required in CI but is not installed")
        pytest.skip(f"{name} is not installed")
    return path


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """Terminate a server the tests started, then kill it if it does not exit in time."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


def self_signed_certificate(openssl: str, directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that no system trusts, and its key: ``directory/cert.pem``, ``key.pem`` (openssl CLI)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key
