"""OpenSSH's SSHSIG format: an armored, detached signature over a namespace and a hash of the message.

git's ``gpg.format=ssh`` keeps one in a commit's ``gpgsig`` header, made in
the namespace ``git`` over the commit without that header (OpenSSH's
PROTOCOL.sshsig; ``ssh-keygen -Y sign`` writes the same bytes for the same
Ed25519 or RSA key and message). Parsing errors are ``ValueError``: callers
name what was malformed (a signature, a key file, an agent's answer).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import struct
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

MAGIC = b"SSHSIG"
VERSION = 1
BEGIN = b"-----BEGIN SSH SIGNATURE-----"
END = b"-----END SSH SIGNATURE-----"
#: The namespace git signs commits and tags in.
GIT_NAMESPACE = "git"
#: The message hash ssh-keygen uses; sha256 is accepted when verifying.
HASH_ALGORITHM = "sha512"
_HASHES = {"sha256": hashlib.sha256, "sha512": hashlib.sha512}
#: ssh-keygen wraps the armored base64 at 70 columns.
_ARMOR_WIDTH = 70

#: Key type -> the signature algorithms OpenSSH accepts from it in an SSHSIG (never SHA-1 ``ssh-rsa``).
SIGNATURE_ALGORITHMS = {
    "ssh-ed25519": ("ssh-ed25519",),
    "ssh-rsa": ("rsa-sha2-512", "rsa-sha2-256"),
    "ecdsa-sha2-nistp256": ("ecdsa-sha2-nistp256",),
    "ecdsa-sha2-nistp384": ("ecdsa-sha2-nistp384",),
    "ecdsa-sha2-nistp521": ("ecdsa-sha2-nistp521",),
}
_RSA_HASHES = {"rsa-sha2-512": hashes.SHA512, "rsa-sha2-256": hashes.SHA256}
_ECDSA_HASHES = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384, "secp521r1": hashes.SHA512}
#: OpenSSH refuses smaller RSA keys.
RSA_MIN_BITS = 1024


# --------------------------------------------------------------------------- wire encoding (RFC 4251)


def ssh_string(data: bytes) -> bytes:
    """``data`` as an SSH ``string``: a big-endian uint32 length, then the bytes."""
    return struct.pack(">I", len(data)) + data


def ssh_mpint(value: int) -> bytes:
    """A non-negative integer as an SSH ``mpint`` (big-endian, a zero byte first when the top bit is set)."""
    return ssh_string(value.to_bytes((value.bit_length() + 8) // 8, "big") if value else b"")


class WireReader:
    """Reads SSH wire values from ``data`` in order; raises ``ValueError`` when it runs short."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    def take(self, size: int) -> bytes:
        """The next ``size`` raw bytes."""
        if size > len(self._data) - self._at:
            raise ValueError("truncated")
        chunk = self._data[self._at : self._at + size]
        self._at += size
        return chunk

    def u32(self) -> int:
        """The next big-endian uint32."""
        return int(struct.unpack(">I", self.take(4))[0])

    def string(self) -> bytes:
        """The next ``string``."""
        return self.take(self.u32())

    def text(self) -> str:
        """The next ``string``, as UTF-8 text."""
        try:
            return self.string().decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError("a name is not UTF-8") from None

    def mpint(self) -> int:
        """The next ``mpint`` (non-negative ones only: signatures never hold others)."""
        raw = self.string()
        if raw[:1] >= b"\x80":
            raise ValueError("negative integer")
        return int.from_bytes(raw, "big")

    def end(self) -> None:
        """Refuse bytes left over after the last value."""
        if self._at != len(self._data):
            raise ValueError("trailing bytes")


# --------------------------------------------------------------------------- public keys


def split_openssh(text: str) -> tuple[str, bytes]:
    """``TYPE BASE64 [COMMENT]`` (a ``.pub`` file's line): the type name and the key in SSH wire form.

    Raises:
        ValueError: fewer than two words, or the second is not base64.
    """
    parts = text.split(None, 2)
    if len(parts) < 2:
        raise ValueError("expected 'TYPE BASE64-KEY [COMMENT]'")
    try:
        return parts[0], base64.b64decode(parts[1], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the {parts[0]} key is not base64") from None


@dataclass(frozen=True)
class PublicKey:
    """An SSH public key that can verify SSHSIG signatures.

    Attributes:
        blob: the key in SSH wire form (what ``ssh-keygen`` base64-encodes in a ``.pub`` file).
        key_type: its type name, e.g. ``ssh-ed25519``.
    """

    blob: bytes
    key_type: str
    _key: Any = field(compare=False, repr=False)

    @classmethod
    def from_blob(cls, blob: bytes) -> PublicKey:
        """Parse a key in SSH wire form.

        Raises:
            ValueError: malformed, of a type OpenSSH does not sign with in SSHSIG
                form here (certificates, security keys, DSA), or RSA under 1024 bits.
        """
        key_type = WireReader(blob).text()
        if key_type not in SIGNATURE_ALGORITHMS:
            raise ValueError(f"unsupported key type {key_type!r} (Ed25519, RSA and ECDSA keys are)")
        try:
            key = serialization.load_ssh_public_key(key_type.encode() + b" " + base64.b64encode(blob))
        except (ValueError, UnsupportedAlgorithm) as error:
            raise ValueError(f"malformed {key_type} key ({error})") from None
        if isinstance(key, rsa.RSAPublicKey) and key.key_size < RSA_MIN_BITS:
            raise ValueError(f"RSA key of {key.key_size} bits (OpenSSH refuses keys under {RSA_MIN_BITS} bits)")
        return cls(blob, key_type, key)

    @classmethod
    def from_openssh(cls, text: str) -> PublicKey:
        """Parse ``TYPE BASE64 [COMMENT]``, the form of a ``.pub`` file's line.

        Raises:
            ValueError: not that form, or the key is not usable (see :meth:`from_blob`).
        """
        key_type, blob = split_openssh(text)
        key = cls.from_blob(blob)
        if key.key_type != key_type:
            raise ValueError(f"key type {key_type!r} names a {key.key_type} key")
        return key

    @property
    def fingerprint(self) -> str:
        """``SHA256:`` and the unpadded base64 of the blob's SHA-256, as ``ssh-keygen -l`` prints it."""
        digest = base64.b64encode(hashlib.sha256(self.blob).digest()).decode("ascii").rstrip("=")
        return f"SHA256:{digest}"

    @property
    def label(self) -> str:
        """The key as people name it: ``ED25519 key SHA256:...``."""
        kind = {"ssh-ed25519": "ED25519", "ssh-rsa": "RSA"}.get(self.key_type, "ECDSA")
        return f"{kind} key {self.fingerprint}"

    def openssh(self) -> str:
        """``TYPE BASE64``: the key as an allowed-signers file or a ``.pub`` file holds it."""
        return f"{self.key_type} {base64.b64encode(self.blob).decode('ascii')}"

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` (SSH form: algorithm name, then its bytes) is this key's over ``data``.

        Raises:
            ValueError: the signature is malformed or of an algorithm this key does not sign with.
        """
        reader = WireReader(signature)
        algorithm = reader.text()
        raw = reader.string()
        reader.end()
        if algorithm not in SIGNATURE_ALGORITHMS[self.key_type]:
            raise ValueError(f"a {algorithm} signature cannot come from a {self.key_type} key")
        key = self._key
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(raw, data)
            elif isinstance(key, rsa.RSAPublicKey):
                key.verify(raw, data, padding.PKCS1v15(), _RSA_HASHES[algorithm]())
            else:
                numbers = WireReader(raw)
                r, s = numbers.mpint(), numbers.mpint()
                numbers.end()
                key.verify(encode_dss_signature(r, s), data, ec.ECDSA(_ECDSA_HASHES[key.curve.name]()))
        except InvalidSignature:
            return False
        return True


# --------------------------------------------------------------------------- signatures


def signed_data(namespace: str, hash_algorithm: str, message: bytes) -> bytes:
    """What the key actually signs: the magic, the namespace, and the hash of ``message``."""
    digest = _HASHES[hash_algorithm](message).digest()
    return MAGIC + ssh_string(namespace.encode()) + ssh_string(b"") + ssh_string(hash_algorithm.encode()) + ssh_string(digest)


def armor(public_blob: bytes, namespace: str, hash_algorithm: str, signature: bytes) -> bytes:
    """The armored SSHSIG text (ending in a newline), exactly as ``ssh-keygen -Y sign`` writes it."""
    blob = (
        MAGIC
        + struct.pack(">I", VERSION)
        + ssh_string(public_blob)
        + ssh_string(namespace.encode())
        + ssh_string(b"")
        + ssh_string(hash_algorithm.encode())
        + ssh_string(signature)
    )
    text = base64.b64encode(blob)
    lines = [text[i : i + _ARMOR_WIDTH] for i in range(0, len(text), _ARMOR_WIDTH)]
    return b"\n".join([BEGIN, *lines, END]) + b"\n"


@dataclass(frozen=True)
class Sshsig:
    """A parsed SSHSIG signature.

    Attributes:
        public_key: the key that claims to have made it.
        namespace: what it was made for (``git`` for commits).
        hash_algorithm: ``sha512`` or ``sha256``.
        signature: the key's signature over :func:`signed_data`, in SSH form.
    """

    public_key: PublicKey
    namespace: str
    hash_algorithm: str
    signature: bytes

    @classmethod
    def parse(cls, armored: bytes) -> Sshsig:
        """Parse an armored SSHSIG.

        Raises:
            ValueError: not an SSH signature, malformed, of a newer version, an
                unknown hash, or a key that cannot verify (see :meth:`PublicKey.from_blob`).
        """
        lines = armored.strip().splitlines()
        if len(lines) < 3 or lines[0].strip() != BEGIN or lines[-1].strip() != END:
            raise ValueError("not an armored SSH signature")
        try:
            blob = base64.b64decode(b"".join(line.strip() for line in lines[1:-1]), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the armored SSH signature is not base64") from None
        reader = WireReader(blob)
        try:
            if reader.take(len(MAGIC)) != MAGIC:
                raise ValueError("no SSHSIG magic")
            version = reader.u32()
            if version != VERSION:
                raise ValueError(f"SSHSIG version {version}, only {VERSION} is known")
            public_blob = reader.string()
            namespace = reader.text()
            reader.string()  # reserved: ignored, as the format says
            hash_algorithm = reader.text()
            signature = reader.string()
            reader.end()
        except ValueError as error:
            raise ValueError(f"malformed SSH signature ({error})") from None
        if hash_algorithm not in _HASHES:
            raise ValueError(f"unknown hash algorithm {hash_algorithm!r} in the SSH signature")
        return cls(PublicKey.from_blob(public_blob), namespace, hash_algorithm, signature)

    def verify(self, message: bytes) -> bool:
        """True when the signature is :attr:`public_key`'s over ``message`` in :attr:`namespace`.

        Raises:
            ValueError: the inner signature is malformed or of the wrong algorithm for the key.
        """
        return self.public_key.verify(self.signature, signed_data(self.namespace, self.hash_algorithm, message))
