"""The key that signs snapshot commits: a private key file, or a key that ssh-agent holds.

A path names the key as git's ``user.signingKey`` does: a private key file
(OpenSSH or PEM form, without a passphrase) signs here; a public key file
(``id_ed25519.pub``), or a passphrase-protected private key, signs through
the agent, which must hold it. Ed25519 and RSA signatures are deterministic,
so the same snapshot and key give the same commit; ECDSA from a file is
deterministic too (RFC 6979), ECDSA through an agent is not.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from ..errors import SigningKeyError
from .agent import SSH_AGENT_RSA_SHA2_512, Agent
from .sshsig import GIT_NAMESPACE, HASH_ALGORITHM, PublicKey, WireReader, armor, signed_data, ssh_mpint, ssh_string

_OPENSSH_PRIVATE = b"-----BEGIN OPENSSH PRIVATE KEY-----"
_OPENSSH_MAGIC = b"openssh-key-v1\x00"
_ECDSA = {"secp256r1": ("nistp256", hashes.SHA256), "secp384r1": ("nistp384", hashes.SHA384),
          "secp521r1": ("nistp521", hashes.SHA512)}


@dataclass(frozen=True)
class SigningKey:
    """A key that makes SSHSIG signatures.

    Attributes:
        public_key: its public half (what an allowed-signers file lists).
        path: the file it was named by.
        via_agent: True when ssh-agent signs, False when the key file does.
    """

    public_key: PublicKey
    path: Path
    via_agent: bool
    _sign: Callable[[bytes], bytes] = field(compare=False, repr=False)

    @property
    def label(self) -> str:
        """``ED25519 key SHA256:... (ssh-agent)``: which key signs, and where."""
        return f"{self.public_key.label} ({'ssh-agent' if self.via_agent else 'key file'})"

    def sign(self, message: bytes, namespace: str = GIT_NAMESPACE) -> bytes:
        """The armored SSHSIG of ``message`` in ``namespace``, as ``ssh-keygen -Y sign`` writes it.

        The signature is checked against the public key before it is returned,
        so an agent that signs with SHA-1 or with another key is caught here,
        not by every consumer.

        Raises:
            SigningKeyError: the agent cannot be reached, refuses, or returns a signature that does not verify.
        """
        data = signed_data(namespace, HASH_ALGORITHM, message)
        signature = self._sign(data)
        try:
            good = self.public_key.verify(signature, data)
        except ValueError as error:
            raise SigningKeyError(f"signing key {self.path}: unusable signature ({error})", path=self.path) from None
        if not good:
            raise SigningKeyError(
                f"signing key {self.path}: the signature made does not verify with {self.public_key.label}",
                path=self.path,
            )
        return armor(self.public_key.blob, namespace, HASH_ALGORITHM, signature)


def load_signing_key(path: str | os.PathLike[str], *, agent: str | None) -> SigningKey:
    """Open the key named by ``path``; make sure it can sign before anything is exported.

    Args:
        path: a private key file, or a public key file whose private half the agent holds.
        agent: the ssh-agent's socket (or Windows pipe), None when no agent runs.

    Raises:
        SigningKeyError: unreadable, not a key, an unsupported kind, a passphrase
            without an agent holding the key, or the agent does not hold it.
    """
    key_path = Path(path)
    try:
        data = key_path.read_bytes()
    except OSError as error:
        raise SigningKeyError(f"signing key {key_path}: {error.strerror or error}", path=key_path) from None
    text = data.strip()
    try:
        if text.startswith(_OPENSSH_PRIVATE):
            cipher, public_blob = _openssh_header(text)
            if cipher == "none":
                return _file_key(key_path, serialization.load_ssh_private_key(data, password=None))
            return _agent_key(key_path, PublicKey.from_blob(public_blob), agent, "is protected by a passphrase")
        if text.startswith(b"-----BEGIN ") and b"PRIVATE KEY-----" in text.split(b"\n", 1)[0]:
            return _file_key(key_path, serialization.load_pem_private_key(data, password=None))
        line = text.split(b"\n", 1)[0].decode("utf-8")
        return _agent_key(key_path, PublicKey.from_openssh(line), agent, "is a public key")
    except TypeError:  # cryptography: an encrypted PEM key needs a password
        raise SigningKeyError(
            f"signing key {key_path} is protected by a passphrase: add it to ssh-agent (ssh-add {key_path}) "
            f"and name its public key ({key_path}.pub) instead",
            path=key_path,
        ) from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SigningKeyError(f"signing key {key_path} is not a usable SSH key ({error})", path=key_path) from None


def _openssh_header(text: bytes) -> tuple[str, bytes]:
    """The cipher and the (never encrypted) public key of an OpenSSH private key file."""
    try:
        raw = base64.b64decode(b"".join(text.splitlines()[1:-1]), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None
    if not raw.startswith(_OPENSSH_MAGIC):
        raise ValueError("not an OpenSSH private key")
    reader = WireReader(raw[len(_OPENSSH_MAGIC) :])
    cipher = reader.text()
    reader.string()  # the KDF's name
    reader.string()  # and its options
    if reader.u32() != 1:
        raise ValueError("a file of several keys")
    return cipher, reader.string()


def _file_key(path: Path, key: Any) -> SigningKey:
    """A key file that signs here, with the algorithm git and OpenSSH expect of its type."""
    sign: Callable[[bytes], bytes]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        def sign(data: bytes) -> bytes:
            return ssh_string(b"ssh-ed25519") + ssh_string(key.sign(data))
    elif isinstance(key, rsa.RSAPrivateKey):
        def sign(data: bytes) -> bytes:
            return ssh_string(b"rsa-sha2-512") + ssh_string(key.sign(data, padding.PKCS1v15(), hashes.SHA512()))
    elif isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _ECDSA:
        curve, digest = _ECDSA[key.curve.name]

        def sign(data: bytes) -> bytes:
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest(), deterministic_signing=True)))
            return ssh_string(f"ecdsa-sha2-{curve}".encode()) + ssh_string(ssh_mpint(r) + ssh_mpint(s))
    else:
        raise ValueError(f"a {type(key).__name__.removeprefix('_')} cannot sign for git here (Ed25519, RSA, ECDSA can)")
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return SigningKey(PublicKey.from_openssh(public.decode("ascii")), path, False, sign)


def _agent_key(path: Path, public: PublicKey, agent: str | None, why: str) -> SigningKey:
    """A key that ssh-agent signs with; the agent must hold it now."""
    if agent is None:
        raise SigningKeyError(
            f"signing key {path} {why}, so ssh-agent must sign with it, but no agent is running "
            f"(start one and ssh-add the private key)",
            path=path,
        )
    client = Agent(agent)
    try:
        held = client.identities()
    except (OSError, ValueError) as error:
        raise SigningKeyError(f"signing key {path}: cannot ask ssh-agent at {agent} ({error})", path=path) from None
    if public.blob not in held:
        raise SigningKeyError(
            f"signing key {path} {why}, and ssh-agent at {agent} does not hold {public.label} "
            f"(ssh-add its private key)",
            path=path,
        )
    flags = SSH_AGENT_RSA_SHA2_512 if public.key_type == "ssh-rsa" else 0

    def sign(data: bytes) -> bytes:
        try:
            return client.sign(public.blob, data, flags)
        except (OSError, ValueError) as error:
            raise SigningKeyError(f"signing key {path}: ssh-agent at {agent} did not sign ({error})", path=path) from None

    return SigningKey(public, path, True, sign)
