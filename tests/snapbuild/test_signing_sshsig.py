"""SSHSIG signatures against the real ssh-keygen: the same bytes it writes, and each side verifies the other's."""

from __future__ import annotations

import base64
import struct
import subprocess
from pathlib import Path

import pytest

from snapbuild.signing.keys import load_signing_key
from snapbuild.signing.sshsig import PublicKey, Sshsig, WireReader
from tests.conftest import require_tool

from .signing_support import SshKey, SshKeys, run, write_allowed

MESSAGE = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\nSnapshot 海屿你\n".encode("utf-8")


def _ssh_keygen_sign(key: SshKey, message: bytes, tmp_path: Path, namespace: str = "git") -> bytes:
    data = tmp_path / "message"
    data.write_bytes(message)
    done = run(require_tool("ssh-keygen"), "-Y", "sign", "-f", key.path, "-n", namespace, data)
    assert done.returncode == 0, done.stderr
    return (tmp_path / "message.sig").read_bytes()


def _ssh_keygen_verify(key: SshKey, signature: bytes, message: bytes, tmp_path: Path) -> subprocess.CompletedProcess[bytes]:
    allowed = write_allowed(tmp_path / "allowed", key.signer_line())
    sig = tmp_path / "ours.sig"
    sig.write_bytes(signature)
    return run(
        require_tool("ssh-keygen"), "-Y", "verify", "-f", allowed, "-I", key.principal, "-n", "git", "-s", sig,
        input=message,
    )


@pytest.mark.parametrize("which", ["ed25519", "rsa", "rsa_pem"])
def test_deterministic_keys_sign_exactly_the_bytes_ssh_keygen_writes(ssh_keys: SshKeys, which: str, tmp_path: Path) -> None:
    key = getattr(ssh_keys, which)
    ours = load_signing_key(key.path, agent=None).sign(MESSAGE)
    assert ours == _ssh_keygen_sign(key, MESSAGE, tmp_path)
    algorithm = WireReader(Sshsig.parse(ours).signature).text()
    assert algorithm == ("ssh-ed25519" if which == "ed25519" else "rsa-sha2-512")
    assert ours.startswith(b"-----BEGIN SSH SIGNATURE-----\n") and ours.endswith(b"-----END SSH SIGNATURE-----\n")


@pytest.mark.parametrize("which", ["ed25519", "rsa", "ecdsa"])
def test_ssh_keygen_verifies_our_signature_and_we_verify_its(ssh_keys: SshKeys, which: str, tmp_path: Path) -> None:
    key = getattr(ssh_keys, which)
    ours = load_signing_key(key.path, agent=None).sign(MESSAGE)
    done = _ssh_keygen_verify(key, ours, MESSAGE, tmp_path)
    assert done.returncode == 0, done.stderr
    assert b"Good \"git\" signature" in done.stdout

    theirs = Sshsig.parse(_ssh_keygen_sign(key, MESSAGE, tmp_path))
    assert theirs.namespace == "git" and theirs.hash_algorithm == "sha512"
    assert theirs.public_key == PublicKey.from_openssh(key.public_line)
    assert theirs.verify(MESSAGE)
    assert not theirs.verify(MESSAGE + b"\n")


def test_ecdsa_from_a_key_file_is_deterministic_too(ssh_keys: SshKeys) -> None:
    key = load_signing_key(ssh_keys.ecdsa.path, agent=None)
    assert key.sign(MESSAGE) == key.sign(MESSAGE)


def test_a_signature_in_another_namespace_keeps_its_namespace(ssh_keys: SshKeys, tmp_path: Path) -> None:
    parsed = Sshsig.parse(_ssh_keygen_sign(ssh_keys.ed25519, MESSAGE, tmp_path, namespace="file"))
    assert parsed.namespace == "file"
    assert parsed.verify(MESSAGE)  # valid, but for files: checking the namespace is the caller's job


def test_the_fingerprint_is_the_one_ssh_keygen_prints(ssh_keys: SshKeys) -> None:
    for key in (ssh_keys.ed25519, ssh_keys.rsa, ssh_keys.ecdsa):
        printed = run(require_tool("ssh-keygen"), "-l", "-E", "sha256", "-f", key.pub).stdout.decode().split()[1]
        assert PublicKey.from_openssh(key.public_line).fingerprint == printed


def _blob(armored: bytes) -> bytes:
    return base64.b64decode(b"".join(armored.strip().splitlines()[1:-1]))


def _armor(blob: bytes) -> bytes:
    return b"-----BEGIN SSH SIGNATURE-----\n" + base64.b64encode(blob) + b"\n-----END SSH SIGNATURE-----\n"


def test_malformed_signatures_are_refused_with_a_reason(ssh_keys: SshKeys) -> None:
    good = load_signing_key(ssh_keys.ed25519.path, agent=None).sign(MESSAGE)
    blob = _blob(good)
    cases = {
        b"-----BEGIN PGP SIGNATURE-----\nabc\n-----END PGP SIGNATURE-----\n": "not an armored SSH signature",
        good.replace(b"U1NI", b"U1N!", 1): "not base64",
        _armor(b"SSHSIX" + blob[6:]): "no SSHSIG magic",
        _armor(blob[:6] + struct.pack(">I", 2) + blob[10:]): "version 2",
        _armor(blob[:-5]): "truncated",
        _armor(blob + b"x"): "trailing bytes",
    }
    for armored, reason in cases.items():
        with pytest.raises(ValueError, match=reason):
            Sshsig.parse(armored)


def test_unsupported_and_weak_keys_are_refused() -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    with pytest.raises(ValueError, match="unsupported key type 'ssh-dss'"):
        PublicKey.from_blob(struct.pack(">I", 7) + b"ssh-dss" + b"\0" * 20)

    def openssh(key: rsa.RSAPublicKey) -> str:
        return key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()

    floor = rsa.generate_private_key(public_exponent=65537, key_size=1024).public_key()
    assert PublicKey.from_openssh(openssh(floor)).key_type == "ssh-rsa"
    weak = rsa.RSAPublicNumbers(65537, (floor.public_numbers().n >> 256) | 1).public_key()
    with pytest.raises(ValueError, match="768 bits .*under 1024 bits"):
        PublicKey.from_openssh(openssh(weak))
