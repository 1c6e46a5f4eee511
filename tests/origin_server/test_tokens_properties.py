"""Property tests: for ANY input, verification returns claims or raises a TokenError, nothing else."""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import jwt
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from origin_server.keys import KeyRing
from origin_server.tokens import TokenError, create_origin_token, verify_origin_token

from .conftest import TOKEN_NOW as NOW
from .conftest import b64url, sign_segments

KEY = "property-test-secret-" + "k" * 32
RING = KeyRing([("k2", KEY), ("k1", "older-secret-" + "o" * 32)])
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# No deadline: the machine is shared and noisy; tests never assert timings.
relaxed = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def outcome(secret: Any, token: object, now: float = NOW) -> dict[str, Any] | TokenError:
    """Verify; any exception other than a TokenError fails the test by propagating."""
    try:
        claims = verify_origin_token(secret, token, now)
    except TokenError as refused:
        return refused
    assert isinstance(claims, dict) and isinstance(claims["locator"], str) and claims["locator"]
    assert type(claims["exp"]) in (int, float) and math.isfinite(claims["exp"])
    return claims


VALID = create_origin_token(RING, "netease/马也/海屿你.flac", NOW + 600, backend="nas")

# JSON values of every shape (NaN and infinities included: json.dumps writes them).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
claim_like = st.fixed_dictionaries(
    {},
    optional={
        "locator": json_values | st.text(max_size=30),
        "backend": json_values,
        "exp": json_values | st.integers(NOW - 100, NOW + 100) | st.floats(NOW - 100, NOW + 100),
        "nbf": json_values | st.integers(NOW - 100, NOW + 100),
        "sub": json_values,
    },
)
header_like = st.fixed_dictionaries(
    {},
    optional={
        "alg": st.sampled_from(["HS256", "none", "HS512", "hs256"]) | json_values,
        "typ": st.sampled_from(["JWT", "jwt"]) | json_values,
        "kid": st.sampled_from(["k1", "k2", "k3"]) | json_values,
        "crit": json_values,
    },
)


@relaxed
@given(st.text(max_size=2200))
@example("")
@example("..")
@example("a.b.c")
@example(VALID + "=")
@example(VALID.replace(".", ". ", 1))
def test_arbitrary_text(token: str) -> None:
    outcome(RING, token)


@relaxed
@given(st.binary(max_size=600))
def test_arbitrary_bytes_decoded(data: bytes) -> None:
    outcome(RING, data.decode("latin-1"))
    outcome(RING, data.decode("utf-8", "surrogateescape"))
    outcome(RING, data)  # not even a str


@relaxed
@given(
    st.tuples(
        st.text(B64URL, max_size=80) | st.binary(max_size=60).map(b64url),
        st.text(B64URL, max_size=200) | st.binary(max_size=150).map(b64url),
        st.text(B64URL + "=+/", min_size=40, max_size=46),
    ).map(".".join)
)
def test_token_shaped_text(token: str) -> None:
    outcome(RING, token)


@relaxed
@given(st.data())
def test_mutated_valid_token(data: st.DataObject) -> None:
    token = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(token)))
        kind = data.draw(st.sampled_from(["replace", "insert", "delete", "truncate", "swap"]))
        char = data.draw(st.sampled_from(B64URL + ".=+/ é\x00") | st.characters())
        if kind == "replace" and i < len(token):
            token = token[:i] + char + token[i + 1 :]
        elif kind == "insert":
            token = token[:i] + char + token[i:]
        elif kind == "delete":
            token = token[:i] + token[i + 1 :]
        elif kind == "truncate":
            token = token[:i]
        elif kind == "swap" and i + 1 < len(token):
            token = token[:i] + token[i + 1] + token[i] + token[i + 2 :]
    result = outcome(RING, token)
    if not isinstance(result, TokenError):
        assert token == VALID  # nothing but the original (or a no-op mutation) verifies


@relaxed
@given(st.binary(max_size=300), st.binary(max_size=300))
def test_correctly_signed_arbitrary_bytes(header: bytes, claims: bytes) -> None:
    outcome(KEY, sign_segments(header, claims, KEY))
    outcome(KEY, sign_segments(b'{"alg":"HS256"}', claims, KEY))


@relaxed
@given(header_like, claim_like)
def test_correctly_signed_arbitrary_json(header: dict[str, Any], claims: dict[str, Any]) -> None:
    token = sign_segments(
        json.dumps(header).encode("utf-8", "surrogatepass"), json.dumps(claims).encode("utf-8", "surrogatepass"), KEY
    )
    result = outcome(RING, token)
    if not isinstance(result, TokenError):
        assert header["alg"] == "HS256" and header.get("typ", "JWT") == "JWT" and header.get("kid", "k2") == "k2"
        assert set(header) <= {"alg", "typ", "kid"}
        assert result == claims


locators = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=120).filter(
    lambda s: not s.startswith(("/", "\\")) and not (len(s) > 1 and s[1] == ":" and s[0].isalpha())
)
times = st.integers(0, 2**40) | st.floats(0, 2**40, allow_nan=False, allow_infinity=False)


@relaxed
@given(
    locator=locators,
    backend=st.none() | st.text(st.characters(blacklist_categories=("Cs",)), max_size=30),
    exp=times,
    ahead=st.floats(0.001, 10**6),
    nbf_before=st.none() | st.floats(0, 10**6),
    ring=st.sampled_from([KEY, RING, list(RING)]),
)
def test_round_trip(locator: str, backend: str | None, exp: float, ahead: float, nbf_before: float | None, ring: Any) -> None:
    now = exp - ahead - 30  # leeway 30: still valid
    nbf = None if nbf_before is None else now - nbf_before
    assume(now - 30 < exp)
    token = create_origin_token(ring, locator, exp, backend=backend, not_before=nbf)
    expected: dict[str, Any] = {"locator": locator, "exp": exp}
    if backend is not None:
        expected["backend"] = backend
    if nbf is not None:
        expected["nbf"] = nbf
    assert verify_origin_token(ring, token, now) == expected
    secret = KEY if isinstance(ring, str) else RING.signing_key[1]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": False, "verify_nbf": False}) == expected
