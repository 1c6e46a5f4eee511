"""The key ring tokens are signed and checked with, and the key file it is read from.

A ring holds HMAC-SHA256 keys in order: the first signs, every one verifies.
Each key is set up once (``hmac.new``), so computing a MAC costs a copy of
the prepared state, not a key schedule.
"""

from __future__ import annotations

import binascii
import functools
import hashlib
import hmac
import os
import re
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Union

from .errors import ArgumentTypeError, ConfigError

__all__ = [
    "MAC_LENGTH",
    "MAX_KEY_FILE_BYTES",
    "KeyRing",
    "MacFunction",
    "Secret",
    "is_key_id",
    "parse_key_file",
    "read_key_file",
]

#: Base64url characters of a 32-byte HMAC-SHA256, unpadded.
MAC_LENGTH = 43
#: Largest key file read (a key line is under 100 bytes; this is hundreds of keys).
MAX_KEY_FILE_BYTES = 64 * 1024

# Any of the three line endings ends a line (a file saved on old Mac OS has CR only).
_LINE_END = re.compile(r"\r\n|\r|\n")
# No control character belongs in a secret: it would be an invisible part of the key.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)

_KID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")

#: Returns the unpadded base64url HMAC-SHA256 of a signing input under one key.
MacFunction = Callable[[bytes], bytes]
#: What the token functions accept as keys: one secret (no key id), a ring, or ``(kid, secret)`` pairs.
Secret = Union[str, "KeyRing", Sequence[tuple[Union[str, None], str]]]


def is_key_id(value: object) -> bool:
    """True for a usable key id: a non-empty str of letters, digits, ``.``, ``_`` and ``-``."""
    return isinstance(value, str) and bool(value) and _KID_CHARS.issuperset(value)


def _mac_function(secret: str) -> MacFunction:
    """The MAC function of one key, its HMAC state prepared once."""
    copy = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256).copy

    def mac(signing_input: bytes) -> bytes:
        h = copy()
        h.update(signing_input)
        return binascii.b2a_base64(h.digest(), newline=False)[:MAC_LENGTH].translate(_TO_URLSAFE)

    return mac


class KeyRing:
    """An immutable, ordered set of HMAC keys: the first signs, every one verifies.

    Either a single key without a key id, or keys that all have distinct ids
    (letters, digits, ``.``, ``_``, ``-``). A token naming a ``kid`` is checked
    with that key only; a token without one is checked against each key.

    Args:
        keys: ``(kid_or_None, secret)`` pairs, the signing key first.

    Raises:
        ConfigError: no keys, an empty secret, a malformed or duplicate kid, a
            secret given twice, or a key without a kid beside other keys.
        ArgumentTypeError: a secret or kid of the wrong type (also a ``TypeError``).
    """

    __slots__ = ("_keys", "_every", "_by_kid")

    def __init__(self, keys: Iterable[tuple[str | None, str]]) -> None:
        pairs: list[tuple[str | None, str]] = []
        for pair in keys:
            kid, secret = pair
            if kid is not None:
                if not isinstance(kid, str):
                    raise ArgumentTypeError("kid", "a key id must be a str or None")
                if not is_key_id(kid):
                    raise ConfigError("a key id must be letters, digits, '.', '_' or '-'")
            if not isinstance(secret, str):
                raise ArgumentTypeError("secret", "a secret must be a str")
            if not secret:
                raise ConfigError("a secret must not be empty")
            pairs.append((kid, secret))
        if not pairs:
            raise ConfigError("a key ring needs at least one key")
        if len(pairs) > 1:
            kids = [kid for kid, _ in pairs]
            if None in kids:
                raise ConfigError("with more than one key, every key needs a key id")
            if len(set(kids)) != len(kids):
                raise ConfigError("duplicate key id")
            # Under two ids, the first key's MAC would match a token naming the second.
            if len({secret for _, secret in pairs}) != len(pairs):
                raise ConfigError("two keys share one secret")
        every = tuple([(kid, _mac_function(secret)) for kid, secret in pairs])
        object.__setattr__(self, "_keys", tuple(pairs))
        object.__setattr__(self, "_every", every)
        object.__setattr__(self, "_by_kid", {candidate[0]: (candidate,) for candidate in every if candidate[0] is not None})

    @classmethod
    def single(cls, secret: str) -> KeyRing:
        """A ring of one key without a key id (tokens carry no ``kid``)."""
        return cls([(None, secret)])

    @classmethod
    def of(cls, secret: Secret) -> KeyRing:
        """The ring ``secret`` stands for: a ring as is, a str as one key without an id, or pairs.

        Raises:
            ArgumentTypeError: bytes (a secret is text; its UTF-8 bytes are the key) or a pair of wrong types.
            ConfigError: pairs that do not make a ring (see :class:`KeyRing`).
        """
        if isinstance(secret, KeyRing):
            return secret
        if isinstance(secret, str):
            return cls.single(secret)
        if isinstance(secret, (bytes, bytearray)):
            raise ArgumentTypeError(
                "secret", "a secret must be a str (its UTF-8 bytes are the key), a KeyRing, or (kid, secret) pairs"
            )
        return cls(secret)

    @property
    def signing_key(self) -> tuple[str | None, str]:
        """The ``(kid, secret)`` pair new tokens are signed with."""
        return self._keys[0]

    @property
    def kids(self) -> tuple[str | None, ...]:
        """The key ids in order (``(None,)`` for a single key without an id)."""
        return tuple(kid for kid, _ in self._keys)

    def sign(self, signing_input: bytes) -> bytes:
        """The unpadded base64url HMAC-SHA256 of ``signing_input`` under the signing key."""
        return self._every[0][1](signing_input)

    def candidates(self, kid: str | None) -> tuple[tuple[str | None, MacFunction], ...]:
        """The keys a token may be signed with, as ``(kid, MAC function)`` pairs, in ring order.

        Args:
            kid: the key id a token names, or None for a token naming none.

        Returns:
            The one key ``kid`` names (none if the ring lacks it), or every key when ``kid`` is None.
        """
        if kid is None:
            return self._every
        return self._by_kid.get(kid, ())

    def __iter__(self) -> Iterator[tuple[str | None, str]]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyRing):
            return NotImplemented
        return self._keys == other._keys

    def __hash__(self) -> int:
        return hash(self._keys)

    def __repr__(self) -> str:
        # Never the secrets: a ring may end up in a log line or a traceback.
        return f"KeyRing(kids={list(self.kids)!r})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("KeyRing is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("KeyRing is immutable")


# --- key files ------------------------------------------------------------------


def _line_error(source: str, number: int, why: str) -> ConfigError:
    """One line naming the file and the line; never the line's text, which holds a secret."""
    return ConfigError(f"{source}: line {number}: {why}", path=source, line=number)


def parse_key_file(text: str, *, source: str = "<key file>", min_secret_bytes: int = 1) -> KeyRing:
    """Parse a key file's text into a KeyRing, saying which line is wrong.

    One key per line as ``KID:SECRET`` (the secret is everything after the first
    colon), the first key signing; blank lines and lines starting with ``#`` are
    ignored, and whitespace at either end of a line is dropped. Lines end with
    LF, CRLF or CR alone, in any mix. A file holding a single line without a
    colon is one key without a key id.

    Args:
        text: the file's text (a leading byte-order mark is tolerated).
        source: how messages name the file.
        min_secret_bytes: shortest secret accepted, in UTF-8 bytes.

    Returns:
        The key ring, signing key first.

    Raises:
        ConfigError: with ``line`` set for a malformed line, a duplicate key id,
            a secret already given on another line, a secret holding a control
            character, a key without an id beside others, or a short secret;
            without it for a file that holds no key. Messages never contain a secret.
    """
    entries: list[tuple[int, str | None, str]] = []
    seen: dict[str, int] = {}
    secrets: dict[str, int] = {}
    for number, raw in enumerate(_LINE_END.split(text.removeprefix("\ufeff")), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fail = functools.partial(_line_error, source, number)
        kid: str | None
        if ":" in line:
            kid, secret = line.split(":", 1)
            if not is_key_id(kid):
                raise fail("expected KID:SECRET with a key id of letters, digits, '.', '_' or '-'")
            if kid in seen:
                raise fail(f"duplicate key id (first on line {seen[kid]})")
            seen[kid] = number
            if not secret:
                raise fail("empty secret")
            if secret[0].isspace():
                raise fail("the secret begins with whitespace")
        else:
            kid, secret = None, line
        if _CONTROL.search(secret):
            raise fail("the secret contains a control character")
        try:
            secret_bytes = len(secret.encode("utf-8"))
        except UnicodeEncodeError:
            raise fail("the secret is not valid text") from None
        if secret_bytes < min_secret_bytes:
            raise fail(f"secret shorter than {min_secret_bytes} bytes")
        if secret in secrets:
            raise fail(f"the same secret as line {secrets[secret]} (each key id needs its own secret)")
        secrets[secret] = number
        entries.append((number, kid, secret))
    if not entries:
        raise ConfigError(f"{source}: no keys", path=source)
    if len(entries) > 1:
        for number, kid, _ in entries:
            if kid is None:
                raise _line_error(
                    source, number, "expected KID:SECRET (a key without a key id is allowed only when the file holds a single key)"
                )
    return KeyRing((kid, secret) for _, kid, secret in entries)


def _read_regular_file(path: Path, limit: int) -> tuple[bytes, os.stat_result]:
    """Read at most ``limit`` bytes of a regular file, never opening a FIFO or device (which could hang).

    Raises:
        ConfigError: missing, a directory, not a regular file, larger than ``limit``, or unreadable.
    """
    try:
        named = os.stat(path)
        if stat.S_ISDIR(named.st_mode):
            raise ConfigError(f"{path}: key file is a directory", path=path)
        if not stat.S_ISREG(named.st_mode):
            raise ConfigError(f"{path}: key file is not a regular file (a pipe or a device?)", path=path)
        if named.st_size > limit:
            raise ConfigError(f"{path}: key file is larger than {limit} bytes", path=path)
        fd = os.open(path, _OPEN_FLAGS)
        with open(fd, "rb", closefd=True) as handle:
            opened = os.fstat(fd)
            if not stat.S_ISREG(opened.st_mode):  # swapped since the stat above
                raise ConfigError(f"{path}: key file is not a regular file (a pipe or a device?)", path=path)
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"{path}: key file does not exist", path=path) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read key file: {error.strerror or type(error).__name__}", path=path) from None
    if len(data) > limit:
        raise ConfigError(f"{path}: key file is larger than {limit} bytes", path=path)
    return data, opened


def _exposure(mode: int) -> str | None:
    """What others (neither owner nor group) may do with a file of this mode: "readable", "writable", or None."""
    if os.name == "nt":  # Windows' ACLs do not show in st_mode
        return None
    others = [word for bit, word in ((stat.S_IROTH, "readable"), (stat.S_IWOTH, "writable")) if mode & bit]
    return " and ".join(others) or None


def read_key_file(
    path: str | Path,
    *,
    min_secret_bytes: int = 32,
    warn: Callable[[str], None] | None = None,
) -> KeyRing:
    """Read a UTF-8 key file (see :func:`parse_key_file`) and refuse short secrets.

    Only a regular file of at most :data:`MAX_KEY_FILE_BYTES` is read (a
    FIFO or ``/dev/zero`` is refused without waiting on it).

    Args:
        path: the key file.
        min_secret_bytes: shortest secret accepted, in UTF-8 bytes.
        warn: called with one line when the file is readable or writable by
            others (POSIX); the caller decides where it goes.

    Returns:
        The key ring, signing key first.

    Raises:
        ConfigError: the file is missing, not a regular file, too large,
            unreadable, not UTF-8, holds no key, a line is malformed or a secret
            is too short; one line naming the file (and the line), never a secret.
    """
    path = Path(path)
    data, opened = _read_regular_file(path, MAX_KEY_FILE_BYTES)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        number = len(_LINE_END.findall(data[:offset].decode("latin-1"))) + 1
        raise ConfigError(f"{path}: line {number}: not UTF-8 text", path=path, line=number) from None
    try:
        ring = parse_key_file(text, source=str(path), min_secret_bytes=min_secret_bytes)
    except ConfigError as error:
        error.path = path
        raise
    exposure = _exposure(opened.st_mode)
    if exposure and warn is not None:
        warn(f"{path}: key file is {exposure} by others (mode {stat.S_IMODE(opened.st_mode):03o}); chmod 600 it")
    return ring
