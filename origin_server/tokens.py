"""Private-origin tokens: JWS compact serialization, HS256 (a JWT), strict and rotatable.

A token is ``BASE64URL(header) "." BASE64URL(claims) "." BASE64URL(MAC)`` where
MAC is HMAC-SHA256 over the first two segments exactly as sent, keyed with the
secret's UTF-8 bytes (docs/tokens.md has the format byte by byte). Any JWT
library can mint one; :func:`verify_origin_token` refuses everything that is not
exactly such a token, cheaply and before decoding anything it need not decode.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Union

from .errors import ConfigError, TokenError, TokenExpired, TokenInvalid, TokenNotYetValid

__all__ = [
    "MAX_TOKEN_LENGTH",
    "STREAM_PATH",
    "KeyRing",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenNotYetValid",
    "create_origin_token",
    "expires_at",
    "parse_key_file",
    "read_key_file",
    "stream_url",
    "verify_origin_token",
]

#: Longest token accepted (characters); anything longer is refused unread.
MAX_TOKEN_LENGTH = 2048

#: Path of the origin's stream route, to which the token is appended.
STREAM_PATH = "/api/private-origin/stream/"

_KID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")
_TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
# A base64 segment of length 4n+2 ends in a character whose low 4 bits carry
# no data; one of length 4n+3 in one whose low 2 bits carry none. Canonical
# encoders write zeros there; anything else is the same bytes spelled twice.
_LAST_CHAR_OK = {
    2: frozenset(b"AQgw"),
    3: frozenset(b"AEIMQUYcgkosw048"),
}
_MAC_LENGTH = 43  # base64url characters of a 32-byte HMAC-SHA256, unpadded
_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})

Secret = Union[str, "KeyRing", Sequence[tuple[str | None, str]]]


class KeyRing:
    """An immutable, ordered set of HMAC keys: the first signs, every one verifies.

    Either a single key without a key id, or keys that all have distinct ids
    (letters, digits, ``.``, ``_``, ``-``). A token naming a ``kid`` is checked
    with that key only; a token without one is checked against each key.

    Args:
        keys: ``(kid_or_None, secret)`` pairs, the signing key first.

    Raises:
        ConfigError: no keys, an empty secret, a malformed or duplicate kid, or
            a key without a kid beside other keys.
        TypeError: a secret or kid of the wrong type.
    """

    __slots__ = ("_keys", "_by_kid", "_macs", "_kid_macs")

    def __init__(self, keys: Iterable[tuple[str | None, str]]) -> None:
        pairs: list[tuple[str | None, str]] = []
        for pair in keys:
            kid, secret = pair
            if kid is not None:
                if not isinstance(kid, str):
                    raise TypeError("a key id must be a str or None")
                if not kid or not _KID_CHARS.issuperset(kid):
                    raise ConfigError("a key id must be letters, digits, '.', '_' or '-'")
            if not isinstance(secret, str):
                raise TypeError("a secret must be a str")
            if not secret:
                raise ConfigError("a secret must not be empty")
            pairs.append((kid, secret))
        if not pairs:
            raise ConfigError("a key ring needs at least one key")
        kids = [kid for kid, _ in pairs]
        if None in kids and len(pairs) > 1:
            raise ConfigError("with more than one key, every key needs a key id")
        if len(set(kids)) != len(kids):
            raise ConfigError("duplicate key id")
        macs = tuple(hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256) for _, secret in pairs)
        object.__setattr__(self, "_keys", tuple(pairs))
        object.__setattr__(self, "_macs", macs)
        object.__setattr__(self, "_by_kid", {kid: mac for kid, mac in zip(kids, macs) if kid is not None})
        object.__setattr__(self, "_kid_macs", tuple(zip(kids, macs)))

    @classmethod
    def single(cls, secret: str) -> KeyRing:
        """A ring of one key without a key id (tokens carry no ``kid``)."""
        return cls([(None, secret)])

    @property
    def signing_key(self) -> tuple[str | None, str]:
        """The ``(kid, secret)`` pair new tokens are signed with."""
        return self._keys[0]

    @property
    def kids(self) -> tuple[str | None, ...]:
        """The key ids in order (``(None,)`` for a single key without an id)."""
        return tuple(kid for kid, _ in self._keys)

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

    def _mac(self, mac: Any, signing_input: bytes) -> bytes:
        """The unpadded base64url HMAC of ``signing_input`` under one precomputed key."""
        h = mac.copy()
        h.update(signing_input)
        return binascii.b2a_base64(h.digest(), newline=False)[:_MAC_LENGTH].translate(_TO_URLSAFE)


def _as_ring(secret: Secret) -> KeyRing:
    """Accept the plan's plain string secret, a KeyRing, or ``(kid, secret)`` pairs."""
    if isinstance(secret, KeyRing):
        return secret
    if isinstance(secret, str):
        ring = _SINGLE_RINGS.get(secret)
        if ring is None:
            ring = KeyRing.single(secret)
            if len(_SINGLE_RINGS) < 16:
                _SINGLE_RINGS[secret] = ring
        return ring
    if isinstance(secret, (bytes, bytearray)):
        raise TypeError("a secret must be a str (its UTF-8 bytes are the key), a KeyRing, or (kid, secret) pairs")
    return KeyRing(secret)


# Rings for plain-string secrets, so that the plan's str API costs no key setup per call.
_SINGLE_RINGS: dict[str, KeyRing] = {}


# --- key files ------------------------------------------------------------------


def _line_error(source: str, number: int, why: str) -> ConfigError:
    """One line naming the file and the line; never the line's text, which holds a secret."""
    return ConfigError(f"{source}: line {number}: {why}", path=source, line=number)


def parse_key_file(text: str, *, source: str = "<key file>", min_secret_bytes: int = 1) -> KeyRing:
    """Parse a key file's text into a KeyRing, saying which line is wrong.

    One key per line as ``KID:SECRET`` (the secret is everything after the first
    colon), the first key signing; blank lines and lines starting with ``#`` are
    ignored, and whitespace at either end of a line is dropped. A file holding a
    single line without a colon is one key without a key id.

    Args:
        text: the file's text (a leading byte-order mark is tolerated).
        source: how messages name the file.
        min_secret_bytes: shortest secret accepted, in UTF-8 bytes.

    Returns:
        The key ring, signing key first.

    Raises:
        ConfigError: with ``line`` set for a malformed line, a duplicate key id,
            a key without an id beside others, or a short secret; without it for
            a file that holds no key. Messages never contain a secret.
    """
    entries: list[tuple[int, str | None, str]] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.removeprefix("\ufeff").split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fail = functools.partial(_line_error, source, number)
        kid: str | None
        if ":" in line:
            kid, secret = line.split(":", 1)
            if not kid or not _KID_CHARS.issuperset(kid):
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
        try:
            secret_bytes = len(secret.encode("utf-8"))
        except UnicodeEncodeError:
            raise fail("the secret is not valid text") from None
        if secret_bytes < min_secret_bytes:
            raise fail(f"secret shorter than {min_secret_bytes} bytes")
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


def read_key_file(path: str | Path, *, min_secret_bytes: int = 32) -> KeyRing:
    """Read a UTF-8 key file (see :func:`parse_key_file`) and refuse short secrets.

    Args:
        path: the key file.
        min_secret_bytes: shortest secret accepted, in UTF-8 bytes.

    Returns:
        The key ring, signing key first.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8, holds no key, a
            line is malformed or a secret is too short; one line naming the file
            (and the line), never a secret.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: key file does not exist", path=path) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: key file is a directory", path=path) from None
    except OSError as error:
        raise ConfigError(f"{path}: cannot read key file: {error.strerror or type(error).__name__}", path=path) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        offset = error.start + (3 if data.startswith(b"\xef\xbb\xbf") else 0)
        number = data.count(b"\n", 0, offset) + 1
        raise ConfigError(f"{path}: line {number}: not UTF-8 text", path=path, line=number) from None
    try:
        return parse_key_file(text, source=str(path), min_secret_bytes=min_secret_bytes)
    except ConfigError as error:
        error.path = path
        raise


# --- minting ---------------------------------------------------------------------


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _check_time(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{name} must be a finite int or float (Unix seconds)")


def create_origin_token(
    secret: Secret,
    locator: str,
    expires_at: float,
    *,
    backend: str | None = None,
    key_id: str | None = None,
    not_before: float | None = None,
) -> str:
    """Mint a token for ``locator`` valid until ``expires_at`` (Unix seconds).

    Args:
        secret: a str (one key, no ``kid``), a KeyRing, or ``(kid, secret)`` pairs;
            the ring's first key signs and its kid goes into the header.
        locator: the file's storage key relative to a media root (never absolute).
        expires_at: the ``exp`` claim, Unix seconds (int or float).
        backend: the storage backend's name, choosing the media root.
        key_id: the ``kid`` to write instead of the signing key's own.
        not_before: the ``nbf`` claim, Unix seconds.

    Returns:
        The compact token: ASCII letters, digits, ``-``, ``_`` and two dots.

    Raises:
        TypeError: an argument of the wrong type.
        ValueError: an empty or absolute locator, or a malformed key id.
    """
    ring = _as_ring(secret)
    kid = ring.signing_key[0]
    if key_id is not None:
        if not isinstance(key_id, str) or not key_id or not _KID_CHARS.issuperset(key_id):
            raise ValueError("key_id must be letters, digits, '.', '_' or '-'")
        kid = key_id
    if not isinstance(locator, str):
        raise TypeError("locator must be a str")
    if not locator or not _is_text(locator):
        raise ValueError("locator must be non-empty, valid Unicode text")
    if locator.startswith(("/", "\\")) or (len(locator) > 1 and locator[1] == ":" and locator[0].isalpha()):
        raise ValueError("locator must be relative to a media root, not an absolute path")
    if backend is not None:
        if not isinstance(backend, str):
            raise TypeError("backend must be a str or None")
        if not _is_text(backend):
            raise ValueError("backend must be valid Unicode text")
    _check_time("expires_at", expires_at)
    if not_before is not None:
        _check_time("not_before", not_before)

    claims: dict[str, object] = {"locator": locator}
    if backend is not None:
        claims["backend"] = backend
    if not_before is not None:
        claims["nbf"] = not_before
    claims["exp"] = expires_at
    signing_input = _header_segment(kid) + b"." + _b64url(_COMPACT_JSON.encode(claims).encode("utf-8"))
    return (signing_input + b"." + ring._mac(ring._macs[0], signing_input)).decode("ascii")


@functools.lru_cache(maxsize=64)
def _header_segment(kid: str | None) -> bytes:
    """The encoded header for ``kid``: members sorted, as PyJWT writes them, so the bytes match."""
    header = {"alg": "HS256", "kid": kid, "typ": "JWT"} if kid is not None else {"alg": "HS256", "typ": "JWT"}
    return _b64url(json.dumps(header, separators=(",", ":")).encode("ascii"))


# Claims as compact UTF-8 JSON (what JSON.stringify writes), not \uXXXX escapes: shorter tokens.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def expires_at(now: float, ttl: float, *, round_to: int = 0) -> int:
    """An integer ``exp`` at least ``ttl`` seconds after ``now``, rounded up to a multiple of ``round_to``.

    Rounding up makes every URL minted for the same file within one
    ``round_to``-second window identical, so caches and players can reuse it.

    Args:
        now: the current time, Unix seconds.
        ttl: the shortest lifetime wanted, seconds.
        round_to: bucket size in seconds; 0 rounds up to the next whole second only.

    Returns:
        The ``exp`` value.
    """
    if round_to < 0 or ttl < 0:
        raise ValueError("ttl and round_to must not be negative")
    exp = math.ceil(now + ttl)
    if round_to:
        exp = -(-exp // round_to) * round_to
    return exp


def stream_url(base_url: str, token: str) -> str:
    """The origin's stream URL for ``token`` under ``base_url`` (with or without a trailing slash)."""
    return base_url.rstrip("/") + STREAM_PATH + token


# --- verification ------------------------------------------------------------------


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _unique_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree about duplicate members (first or last wins): refuse them.
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("duplicate member")
    return obj


_JSON = json.JSONDecoder(object_pairs_hook=_unique_object, parse_constant=_refuse_constant)


def _decode_json(segment: bytes, what: str) -> dict[str, Any]:
    """Decode one canonical base64url segment holding a UTF-8 JSON object, or refuse it."""
    try:
        text = binascii.a2b_base64(segment.translate(_FROM_URLSAFE) + b"=" * (-len(segment) % 4)).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError
        raise TokenInvalid(f"{what} is not UTF-8") from None
    try:
        value = _JSON.decode(text)
    except json.JSONDecodeError:
        raise TokenInvalid(f"{what} is not JSON") from None
    except (ValueError, RecursionError) as error:  # from the hooks: duplicates, NaN; or absurd nesting
        raise TokenInvalid(f"{what}: {error}" if isinstance(error, ValueError) else f"{what} nested too deeply") from None
    if type(value) is not dict:
        raise TokenInvalid(f"{what} is not a JSON object")
    return value


def _canonical_segment(segment: bytes) -> bool:
    remainder = len(segment) % 4
    if remainder == 0:
        return bool(segment)
    if remainder == 1:
        return False
    return segment[-1] in _LAST_CHAR_OK[remainder]


def _is_text(value: object) -> bool:
    """A str that is valid Unicode (JSON's ``\\ud800`` escapes can smuggle in lone surrogates)."""
    if type(value) is not str:
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_time(value: object) -> bool:
    return (type(value) is int) or (type(value) is float and math.isfinite(value))


def _header_kid(segment: bytes) -> str | None:
    """Parse and check a JOSE header; return its ``kid`` (None when absent)."""
    header = _decode_json(segment, "header")
    if header.get("alg") != "HS256":
        raise TokenInvalid("header alg must be HS256")
    if not _HEADER_MEMBERS.issuperset(header):
        raise TokenInvalid("header has members other than alg, typ and kid")
    if "typ" in header and header["typ"] != "JWT":
        raise TokenInvalid("header typ must be JWT")
    kid = header.get("kid")
    if kid is not None or "kid" in header:
        if type(kid) is not str:
            raise TokenInvalid("header kid must be a string")
    return kid


# Header segments already seen with a valid MAC, and their kid: a service
# mints one header per key, so parsing it again on every request is waste.
_HEADER_KIDS: dict[bytes, str | None] = {}
_HEADER_CACHE_SIZE = 64
_UNSEEN = object()


def verify_origin_token(secret: Secret, token: object, now: float, *, leeway: float = 30) -> dict[str, Any]:
    """Check a token's form, MAC, claims and lifetime; return its claims.

    Whatever ``token`` is, this returns the claims or raises a
    :class:`TokenError` subclass, never anything else.

    Args:
        secret: a str, a KeyRing, or ``(kid, secret)`` pairs; a token naming a
            ``kid`` is checked with that key only, one without against each.
        token: the compact token as received.
        now: the current time, Unix seconds (the caller reads the clock).
        leeway: seconds of clock skew allowed on ``exp`` and ``nbf``.

    Returns:
        The claims: ``locator``, ``exp``, and ``backend``/``nbf`` when present,
        plus any other claims untouched.

    Raises:
        TokenInvalid: malformed, badly signed, unknown key id, wrong claim types.
        TokenExpired: ``now`` is at or past ``exp + leeway``.
        TokenNotYetValid: ``now`` is before ``nbf - leeway``.
    """
    ring = _as_ring(secret)
    # Form first, on the characters alone: nothing is decoded before this passes.
    if type(token) is not str:
        raise TokenInvalid("token is not a string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenInvalid("token is too long")
    if not token.isascii():
        raise TokenInvalid("token has characters outside base64url")
    data = token.encode("ascii")
    if data.translate(None, _TOKEN_BYTES):
        raise TokenInvalid("token has characters outside base64url")
    parts = data.split(b".")
    if len(parts) != 3:
        raise TokenInvalid("token does not have three segments")
    header_segment, claims_segment, mac_sent = parts
    if len(mac_sent) != _MAC_LENGTH:
        raise TokenInvalid("signature has the wrong length")
    if not (_canonical_segment(header_segment) and _canonical_segment(claims_segment) and _canonical_segment(mac_sent)):
        raise TokenInvalid("segment is not canonical base64url")

    # Nothing is parsed before a MAC matched. A header seen before with a valid
    # MAC is known (and names its key); any other is tried against each key and
    # parsed only once one matched, which must then be the key its kid names.
    signing_input = data[: len(header_segment) + 1 + len(claims_segment)]
    known_kid = _HEADER_KIDS.get(header_segment, _UNSEEN)
    if known_kid is _UNSEEN or known_kid is None:
        candidates = ring._kid_macs
    else:
        mac = ring._by_kid.get(known_kid)
        if mac is None:
            raise TokenInvalid("unknown key id")
        candidates = ((known_kid, mac),)
    matched_kid: object = _UNSEEN
    for key_kid, mac in candidates:
        if hmac.compare_digest(ring._mac(mac, signing_input), mac_sent):
            matched_kid = key_kid
            break
    if matched_kid is _UNSEEN:
        raise TokenInvalid("bad signature")
    if known_kid is _UNSEEN:
        header_kid = _header_kid(header_segment)
        if header_kid is not None and header_kid != matched_kid:
            # A token naming a kid is valid only under that key.
            raise TokenInvalid("bad signature")
        if len(_HEADER_KIDS) < _HEADER_CACHE_SIZE:
            # Only headers that came with a valid MAC are remembered: no one without a key can fill this.
            _HEADER_KIDS[header_segment] = header_kid

    claims = _decode_json(claims_segment, "claims")
    if not _is_text(claims.get("locator")) or not claims["locator"]:
        raise TokenInvalid("claim locator must be a non-empty string")
    if "backend" in claims and not _is_text(claims["backend"]):
        raise TokenInvalid("claim backend must be a string")
    exp = claims.get("exp")
    if not _is_time(exp):
        raise TokenInvalid("claim exp must be a finite number")
    nbf = claims.get("nbf")
    if nbf is not None or "nbf" in claims:
        if not _is_time(nbf):
            raise TokenInvalid("claim nbf must be a finite number")
    # Written so that a huge integer claim is compared exactly, never converted to float.
    if now - leeway >= exp:
        raise TokenExpired("token has expired")
    if nbf is not None and now + leeway < nbf:
        raise TokenNotYetValid("token is not valid yet")
    return claims
