"""Loading the signing key: key files, a real ssh-agent, and a one-line reason for every key that cannot sign."""

from __future__ import annotations

from pathlib import Path

import pytest

from snapbuild.errors import SigningKeyError, UsageError
from snapbuild.signing.keys import load_signing_key
from snapbuild.signing.sshsig import Sshsig

from .signing_support import Agent, SshKeys

MESSAGE = b"a commit, more or less\n"


@pytest.mark.parametrize("which", ["ed25519", "rsa"])
def test_an_agent_signs_with_the_key_a_public_key_file_names_and_the_bytes_equal_the_file_s(
    ssh_keys: SshKeys, ssh_agent: Agent, which: str
) -> None:
    key = getattr(ssh_keys, which)
    ssh_agent.add(key)
    through_agent = load_signing_key(key.pub, agent=str(ssh_agent.socket))
    assert through_agent.via_agent and "(ssh-agent)" in through_agent.label
    signature = through_agent.sign(MESSAGE)
    # Ed25519 and RSA (rsa-sha2-512) are deterministic: the agent's signature is the key file's.
    assert signature == load_signing_key(key.path, agent=None).sign(MESSAGE)
    assert Sshsig.parse(signature).verify(MESSAGE)


def test_a_passphrase_protected_key_signs_through_the_agent_that_holds_it(ssh_keys: SshKeys, ssh_agent: Agent) -> None:
    with pytest.raises(SigningKeyError, match="is protected by a passphrase, and ssh-agent at .* does not hold"):
        load_signing_key(ssh_keys.protected.path, agent=str(ssh_agent.socket))
    ssh_agent.add(ssh_keys.protected)
    key = load_signing_key(ssh_keys.protected.path, agent=str(ssh_agent.socket))
    assert key.via_agent
    assert Sshsig.parse(key.sign(MESSAGE)).verify(MESSAGE)


def test_a_pem_rsa_key_signs_from_the_file(ssh_keys: SshKeys) -> None:
    key = load_signing_key(ssh_keys.rsa_pem.path, agent=None)
    assert not key.via_agent and key.public_key.key_type == "ssh-rsa"


def _refusal(path: Path, agent: str | None = None) -> str:
    with pytest.raises(SigningKeyError) as caught:
        load_signing_key(path, agent=agent)
    error = caught.value
    assert isinstance(error, UsageError) and error.argument == "signing key" and error.path == path
    message = str(error)
    assert "\n" not in message and message.startswith(f"signing key {path}")
    return message


def test_every_key_that_cannot_sign_gets_one_line_that_says_why(ssh_keys: SshKeys, tmp_path: Path) -> None:
    assert "No such file" in _refusal(tmp_path / "missing")
    not_a_key = tmp_path / "notes.txt"
    not_a_key.write_text("hello\n", encoding="utf-8")
    assert "is not a usable SSH key" in _refusal(not_a_key)
    assert "is a public key, so ssh-agent must sign with it, but no agent is running" in _refusal(ssh_keys.ed25519.pub)
    assert "is protected by a passphrase, so ssh-agent must sign" in _refusal(ssh_keys.protected.path)
    assert "cannot ask ssh-agent at" in _refusal(ssh_keys.ed25519.pub, agent=str(tmp_path / "no-agent.sock"))


def test_an_agent_without_the_key_is_named(ssh_keys: SshKeys, ssh_agent: Agent) -> None:
    ssh_agent.add(ssh_keys.other)
    message = _refusal(ssh_keys.ed25519.pub, agent=str(ssh_agent.socket))
    assert "does not hold ED25519 key SHA256:" in message and "(ssh-add its private key)" in message


def test_an_encrypted_pem_key_asks_for_the_agent(ssh_keys: SshKeys, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(ssh_keys.rsa_pem.path.read_bytes(), password=None)
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"secret"),
        )
    )
    assert "protected by a passphrase: add it to ssh-agent" in _refusal(encrypted)
