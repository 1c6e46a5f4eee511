"""Private-origin tokens: JWS compact serialization, HS256 (a JWT), strict and rotatable.

A token is ``BASE64URL(header) "." BASE64URL(claims) "." BASE64URL(MAC)`` where
MAC is HMAC-SHA256 over the first two segments exactly as sent, keyed with the
secret's UTF-8 bytes (docs/tokens.md has the format byte by byte). Any JWT
library can mint one; :class:`TokenVerifier` refuses everything that is not
exactly such a token, cheaply and before decoding anything it need not decode.
The keys come from :mod:`.keys`.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import json
import math
import threading
from typing import Any

from .errors import ArgumentError, ArgumentTypeError, TokenError, TokenExpired, TokenInvalid, TokenNotYetValid
from .keys import MAC_LENGTH, KeyRing, Secret, is_key_id

__all__ = [
    "MAX_TOKEN_LENGTH",
    "STREAM_PATH",
    "TokenError",
    "TokenExpired",
    "TokenInvalid",
    "TokenNotYetValid",
    "TokenVerifier",
    "create_origin_token",
    "expires_at",
    "stream_url",
    "verify_origin_token",
]

#: Longest token accepted (characters); anything longer is refused unread, and never minted.
MAX_TOKEN_LENGTH = 2048

#: Path of the origin's stream route, to which the token is appended.
STREAM_PATH = "/api/private-origin/stream/"

_TOKEN_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
# A base64 segment of length 4n+2 ends in a character whose low 4 bits carry
# no data; one of length 4n+3 in one whose low 2 bits carry none. Canonical
# encoders write zeros there; anything else is the same bytes spelled twice.
_LAST_CHAR_OK = {
    2: frozenset(b"AQgw"),
    3: frozenset(b"AEIMQUYcgkosw048"),
}
_HEADER_MEMBERS = frozenset({"alg", "typ", "kid"})


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


# --- minting ---------------------------------------------------------------------


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _check_time(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ArgumentTypeError(name, f"{name} must be a finite int or float (Unix seconds)")


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
        ArgumentTypeError: an argument of the wrong type (also a ``TypeError``).
        ArgumentError: an empty or absolute locator, a malformed key id, or a token that would
            be longer than :data:`MAX_TOKEN_LENGTH` (also a ``ValueError``).
        ConfigError: ``secret`` does not make a key ring (an empty secret, say).
    """
    ring = KeyRing.of(secret)
    kid = ring.signing_key[0]
    if key_id is not None:
        if not is_key_id(key_id):
            raise ArgumentError("key_id", "key_id must be letters, digits, '.', '_' or '-'")
        kid = key_id
    if not isinstance(locator, str):
        raise ArgumentTypeError("locator", "locator must be a str")
    if not locator or not _is_text(locator):
        raise ArgumentError("locator", "locator must be non-empty, valid Unicode text")
    if locator.startswith(("/", "\\")) or (len(locator) > 1 and locator[1] == ":" and locator[0].isalpha()):
        raise ArgumentError("locator", "locator must be relative to a media root, not an absolute path")
    if backend is not None:
        if not isinstance(backend, str):
            raise ArgumentTypeError("backend", "backend must be a str or None")
        if not _is_text(backend):
            raise ArgumentError("backend", "backend must be valid Unicode text")
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
    if len(signing_input) + 1 + MAC_LENGTH > MAX_TOKEN_LENGTH:
        raise ArgumentError("locator", f"the token would be longer than {MAX_TOKEN_LENGTH} characters (locator too long)")
    return (signing_input + b"." + ring.sign(signing_input)).decode("ascii")


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

    Raises:
        ArgumentError: ``ttl`` or ``round_to`` is negative (also a ``ValueError``).
    """
    if round_to < 0 or ttl < 0:
        raise ArgumentError("ttl" if ttl < 0 else "round_to", "ttl and round_to must not be negative")
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


#: What the header cache answers for a header not seen yet (no key id is empty).
_UNSEEN = ""


class TokenVerifier:
    """Verify tokens against one key ring, remembering what makes repeated work cheap.

    Two bounded caches, each filled only with tokens whose MAC matched, so
    nobody without a key can fill them:

    * header segment -> ``kid``: a service mints one header per key, so a
      header is parsed once; a token with a known header is checked with
      the key it names only (at most 64 headers);
    * token -> claims: a player sends the same URL for every seek and every
      chunk, so a token verified once skips the MAC next time, but never
      the lifetime check, which is the same for both paths (at most
      ``remember`` tokens and ``remember_bytes`` characters of them; the
      claims kept are smaller than the token they came from).

    Nothing is kept for a token whose MAC did not match, and a token longer
    than :data:`MAX_TOKEN_LENGTH` is refused before anything else.
    One verifier may be shared by any number of threads.

    Args:
        keys: a KeyRing, a str (one key without an id), or ``(kid, secret)`` pairs.
        leeway: seconds of clock skew allowed on ``exp`` and ``nbf``.
        remember: how many verified tokens to remember (0: check every token in full).
        remember_bytes: how many characters of verified tokens to remember at most.
        max_lifetime: refuse a token whose ``exp`` lies more than this many
            seconds (plus ``leeway``) ahead; None or 0: no cap.

    Raises:
        ArgumentTypeError, ConfigError: ``keys`` do not make a key ring.
    """

    __slots__ = (
        "keys", "leeway", "remember", "remember_bytes", "max_lifetime",
        "_header_kids", "_verified", "_verified_chars", "_lock",
    )

    #: Distinct headers remembered; a service mints one per key, an attacker none.
    HEADER_CACHE_SIZE = 64

    def __init__(
        self,
        keys: Secret,
        *,
        leeway: float = 30,
        remember: int = 4096,
        remember_bytes: int = 4 << 20,
        max_lifetime: float | None = None,
    ) -> None:
        self.keys = KeyRing.of(keys)
        self.leeway = leeway
        self.remember = remember
        self.remember_bytes = remember_bytes
        self.max_lifetime = max_lifetime or None
        self._header_kids: dict[bytes, str | None] = {}
        self._verified: dict[str, dict[str, Any]] = {}
        self._verified_chars = 0
        self._lock = threading.Lock()

    def verify(self, token: object, now: float) -> dict[str, Any]:
        """Check a token's form, MAC, claims and lifetime; return its claims.

        Whatever ``token`` is, this returns the claims or raises a
        :class:`~origin_server.errors.TokenError` subclass, never anything else.

        Args:
            token: the compact token as received.
            now: the current time, Unix seconds (the caller reads the clock).

        Returns:
            The claims: ``locator``, ``exp``, and ``backend``/``nbf`` when present,
            plus any other claims untouched.

        Raises:
            TokenInvalid: malformed, badly signed, unknown key id, wrong claim
                types, or living longer than ``max_lifetime``; ``claims`` is set
                when the MAC matched and the claims were read.
            TokenExpired: ``now`` is at or past ``exp + leeway``; carries the claims.
            TokenNotYetValid: ``now`` is before ``nbf - leeway``; carries the claims.
        """
        if type(token) is not str:
            raise TokenInvalid("token is not a string")
        if len(token) > MAX_TOKEN_LENGTH:
            raise TokenInvalid("token is too long")
        claims = self._verified.get(token)
        if claims is not None:
            try:
                self._check_lifetime(claims, now)
            except TokenExpired:
                self._forget(token)  # it can never be valid again
                raise
            return claims

        # Form first, on the characters alone: nothing is decoded before this passes.
        if not token.isascii():
            raise TokenInvalid("token has characters outside base64url")
        data = token.encode("ascii")
        if data.translate(None, _TOKEN_BYTES):
            raise TokenInvalid("token has characters outside base64url")
        parts = data.split(b".")
        if len(parts) != 3:
            raise TokenInvalid("token does not have three segments")
        header_segment, claims_segment, mac_sent = parts
        if len(mac_sent) != MAC_LENGTH:
            raise TokenInvalid("signature has the wrong length")
        if not (_canonical_segment(header_segment) and _canonical_segment(claims_segment) and _canonical_segment(mac_sent)):
            raise TokenInvalid("segment is not canonical base64url")

        # Nothing is parsed before a MAC matched. A header seen before with a valid
        # MAC is known (and names its key); any other is tried against each key and
        # parsed only once one matched, which must then be the key its kid names.
        signing_input = data[: len(header_segment) + 1 + len(claims_segment)]
        known_kid = self._header_kids.get(header_segment, _UNSEEN)
        for kid, mac in self.keys.candidates(known_kid or None):
            if hmac.compare_digest(mac(signing_input), mac_sent):
                break
        else:
            # An unparsed header may name a key id the ring lacks: no MAC can tell the two apart.
            raise TokenInvalid("bad signature" if known_kid != _UNSEEN else "bad signature or unknown key id")
        if known_kid == _UNSEEN:
            header_kid = _header_kid(header_segment)
            if header_kid is not None and header_kid != kid:
                # A token naming a kid is valid only under that key.
                raise TokenInvalid("bad signature")
            if len(self._header_kids) < self.HEADER_CACHE_SIZE:
                self._header_kids[header_segment] = header_kid

        claims = _decode_json(claims_segment, "claims")
        if not _is_text(claims.get("locator")) or not claims["locator"]:
            raise TokenInvalid("claim locator must be a non-empty string", claims=claims)
        if "backend" in claims and not _is_text(claims["backend"]):
            raise TokenInvalid("claim backend must be a string", claims=claims)
        if not _is_time(claims.get("exp")):
            raise TokenInvalid("claim exp must be a finite number", claims=claims)
        if "nbf" in claims and not _is_time(claims["nbf"]):
            raise TokenInvalid("claim nbf must be a finite number", claims=claims)
        self._check_lifetime(claims, now)
        if self.remember:
            self._keep(token, claims)
        return claims

    def _check_lifetime(self, claims: dict[str, Any], now: float) -> None:
        """The one lifetime check, for fresh and remembered claims alike."""
        leeway = self.leeway
        exp = claims["exp"]
        # Written so that a huge integer claim is compared exactly, never converted to float.
        if now - leeway >= exp:
            raise TokenExpired("token has expired", claims=claims)
        nbf = claims.get("nbf")
        if nbf is not None and now + leeway < nbf:
            raise TokenNotYetValid("token is not valid yet", claims=claims)
        if self.max_lifetime is not None and exp > now + leeway + self.max_lifetime:
            raise TokenInvalid("token lives longer than the maximum lifetime", claims=claims)

    def _keep(self, token: str, claims: dict[str, Any]) -> None:
        with self._lock:
            verified = self._verified
            if token in verified:
                return
            while verified and (
                len(verified) >= self.remember or self._verified_chars + len(token) > self.remember_bytes
            ):
                oldest = next(iter(verified))  # dicts keep insertion order: drop the oldest
                del verified[oldest]
                self._verified_chars -= len(oldest)
            verified[token] = claims
            self._verified_chars += len(token)

    def _forget(self, token: str) -> None:
        with self._lock:
            if self._verified.pop(token, None) is not None:
                self._verified_chars -= len(token)


def verify_origin_token(
    secret: Secret, token: object, now: float, *, leeway: float = 30, max_lifetime: float | None = None
) -> dict[str, Any]:
    """Check a token's form, MAC, claims and lifetime; return its claims.

    The one-call form of :meth:`TokenVerifier.verify`, with nothing kept
    between calls: a server checking many tokens keeps one
    :class:`TokenVerifier` instead.

    Args:
        secret: a str, a KeyRing, or ``(kid, secret)`` pairs; a token naming a
            ``kid`` is checked with that key only, one without against each.
        token: the compact token as received.
        now: the current time, Unix seconds (the caller reads the clock).
        leeway: seconds of clock skew allowed on ``exp`` and ``nbf``.
        max_lifetime: refuse a token whose ``exp`` lies further ahead (seconds); None: no cap.

    Returns:
        The claims, as :meth:`TokenVerifier.verify` returns them.

    Raises:
        TokenInvalid: malformed, badly signed, unknown key id, wrong claim types, too long a lifetime.
        TokenExpired: ``now`` is at or past ``exp + leeway``.
        TokenNotYetValid: ``now`` is before ``nbf - leeway``.
    """
    return TokenVerifier(secret, leeway=leeway, remember=0, max_lifetime=max_lifetime).verify(token, now)
