"""Helpers and fixtures for the signing tests: real SSH keys made by ssh-keygen, a real ssh-agent."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import require_tool, stop_process

PASSPHRASE = "correct horse battery staple"


@dataclass(frozen=True)
class SshKey:
    """A key pair on disk: ``path`` is the private key, ``pub`` its public key file."""

    path: Path
    principal: str

    @property
    def pub(self) -> Path:
        return self.path.with_name(self.path.name + ".pub")

    @property
    def public_line(self) -> str:
        """``TYPE BASE64`` (without the comment), as an allowed-signers line holds it."""
        return " ".join(self.pub.read_text(encoding="utf-8").split()[:2])

    def signer_line(self, options: str = "") -> str:
        """This key's line for an allowed-signers file, with ``options`` if any."""
        return " ".join(part for part in (self.principal, options, self.public_line) if part)


@dataclass(frozen=True)
class SshKeys:
    """The keys every signing test uses (made once per session)."""

    ed25519: SshKey
    rsa: SshKey
    ecdsa: SshKey
    rsa_pem: SshKey
    other: SshKey
    protected: SshKey


def run(*args: str | Path, env: dict[str, str] | None = None, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run a tool, capture its output, and never raise on its exit code."""
    return subprocess.run([str(a) for a in args], capture_output=True, env=env, input=input, check=False)


def make_key(directory: Path, name: str, key_type: str, principal: str, *extra: str, passphrase: str = "") -> SshKey:
    """A new key pair made by the real ssh-keygen."""
    ssh_keygen = require_tool("ssh-keygen")
    path = directory / name
    done = run(ssh_keygen, "-q", "-t", key_type, *extra, "-N", passphrase, "-C", principal, "-f", path)
    assert done.returncode == 0, done.stderr
    return SshKey(path, principal)


def write_allowed(path: Path, *lines: str) -> Path:
    """An allowed-signers file of ``lines``."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory: pytest.TempPathFactory) -> SshKeys:
    """Ed25519, RSA (OpenSSH and PEM form), ECDSA, an unlisted one and a passphrase-protected one."""
    directory = tmp_path_factory.mktemp("keys")
    keys = SshKeys(
        ed25519=make_key(directory, "alice", "ed25519", "alice@example.org"),
        rsa=make_key(directory, "bob", "rsa", "bob@example.org", "-b", "2048"),
        ecdsa=make_key(directory, "erin", "ecdsa", "erin@example.org"),
        rsa_pem=make_key(directory, "peggy", "rsa", "peggy@example.org", "-b", "2048", "-m", "PEM"),
        other=make_key(directory, "mallory", "ed25519", "mallory@example.org"),
        protected=make_key(directory, "carol", "ed25519", "carol@example.org", passphrase=PASSPHRASE),
    )
    for key in (keys.ed25519, keys.rsa, keys.ecdsa, keys.rsa_pem, keys.other, keys.protected):
        key.path.chmod(0o600)
    return keys


class Agent:
    """A real ssh-agent on its own socket; :meth:`add` loads keys into it with the real ssh-add."""

    def __init__(self, socket: Path, askpass: Path) -> None:
        self.socket = socket
        self._askpass = askpass

    @property
    def env(self) -> dict[str, str]:
        """The environment a process uses this agent with (ssh-add reads the passphrase from the askpass helper)."""
        return {
            **os.environ, "SSH_AUTH_SOCK": str(self.socket),
            "SSH_ASKPASS": str(self._askpass), "SSH_ASKPASS_REQUIRE": "force", "DISPLAY": ":0",
        }

    def add(self, key: SshKey) -> None:
        done = run(require_tool("ssh-add"), key.path, env=self.env)
        assert done.returncode == 0, done.stderr


@pytest.fixture
def ssh_agent() -> Iterator[Agent]:
    """A running ssh-agent holding no key yet, stopped afterwards."""
    if os.name == "nt":
        pytest.skip("this fixture runs ssh-agent on a Unix socket")
    ssh_agent = require_tool("ssh-agent")
    require_tool("ssh-add")
    # A Unix socket path must stay under ~100 bytes: pytest's temporary paths can be longer.
    directory = Path(tempfile.mkdtemp(prefix="snapbuild-agent-"))
    socket = directory / "agent.sock"
    askpass = directory / "askpass"
    askpass.write_text(f"#!/bin/sh\necho '{PASSPHRASE}'\n", encoding="utf-8")
    askpass.chmod(0o700)
    process = subprocess.Popen([ssh_agent, "-D", "-a", str(socket)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(200):
            if socket.exists() or process.poll() is not None:
                break
            time.sleep(0.02)
        assert socket.exists(), "ssh-agent did not start"
        yield Agent(socket, askpass)
    finally:
        stop_process(process)
        shutil.rmtree(directory, ignore_errors=True)
