"""TokenVerifier: what refusals carry, what it remembers, and that nothing is shared between verifiers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from origin_server.errors import ArgumentError, TokenError, TokenExpired, TokenInvalid, TokenNotYetValid
from origin_server.keys import KeyRing
from origin_server.tokens import MAX_TOKEN_LENGTH, TokenVerifier, create_origin_token, verify_origin_token

from .conftest import TOKEN_NOW as NOW
from .conftest import sign_segments

KEY = "verifier-test-secret-" + "v" * 32
NEW = ("2026-02", "new-secret-" + "n" * 32)
OLD = ("2026-01", "old-secret-" + "o" * 32)


def refusal(verifier: TokenVerifier, token: object, now: float) -> TokenError:
    with pytest.raises(TokenError) as caught:
        verifier.verify(token, now)
    return caught.value


def test_verifier_and_verify_origin_token_agree() -> None:
    token = create_origin_token(KEY, "a.flac", NOW + 600, backend="nas")
    expected = {"locator": "a.flac", "backend": "nas", "exp": NOW + 600}
    assert TokenVerifier(KEY).verify(token, NOW) == expected == verify_origin_token(KEY, token, NOW)
    assert TokenVerifier([(None, KEY)], remember=0).verify(token, NOW) == expected


def test_refusals_carry_the_claims_only_once_the_mac_matched() -> None:
    verifier = TokenVerifier(KEY, leeway=0)
    token = create_origin_token(KEY, "a.flac", NOW + 600, not_before=NOW - 5)
    claims = {"locator": "a.flac", "nbf": NOW - 5, "exp": NOW + 600}

    forged = refusal(verifier, token[:-2] + ("AA" if not token.endswith("AA") else "BB"), NOW)
    assert type(forged) is TokenInvalid and forged.claims is None
    assert refusal(verifier, "not-a-token", NOW).claims is None
    assert refusal(verifier, sign_segments(b"{not json", b'{"locator":"a","exp":1}', KEY), NOW).claims is None
    assert refusal(verifier, sign_segments(b'{"alg":"HS256"}', b"[1, 2]", KEY), NOW).claims is None

    expired = refusal(verifier, token, NOW + 600)
    assert type(expired) is TokenExpired and expired.claims == claims
    early = refusal(verifier, token, NOW - 6)
    assert type(early) is TokenNotYetValid and early.claims == claims
    wrong_form = refusal(verifier, sign_segments(b'{"alg":"HS256"}', b'{"locator":7,"exp":1}', KEY), NOW)
    assert type(wrong_form) is TokenInvalid and wrong_form.claims == {"locator": 7, "exp": 1}


def test_outcomes_do_not_depend_on_what_was_verified_before() -> None:
    minted_with_old = create_origin_token(KeyRing([OLD]), "a.flac", NOW + 600)
    new_only = KeyRing([NEW])
    before = refusal(TokenVerifier(new_only), minted_with_old, NOW)
    assert verify_origin_token(KeyRing([NEW, OLD]), minted_with_old, NOW)["locator"] == "a.flac"
    after = refusal(TokenVerifier(new_only), minted_with_old, NOW)
    assert (type(before), str(before), before.claims) == (type(after), str(after), after.claims)
    assert type(after) is TokenInvalid and after.claims is None


def test_a_header_learned_with_one_key_is_checked_with_that_key_only() -> None:
    ring = KeyRing([NEW, OLD])
    verifier = TokenVerifier(ring)
    assert verifier.verify(create_origin_token(ring, "a.flac", NOW + 600), NOW)["locator"] == "a.flac"
    # Same header (kid 2026-02), signed with the other key of the ring: refused.
    forged = create_origin_token(KeyRing([(NEW[0], OLD[1])]), "b.flac", NOW + 600)
    assert str(refusal(verifier, forged, NOW)) == "bad signature"


def test_one_verifier_shared_by_threads_while_it_forgets() -> None:
    ring = KeyRing([NEW, OLD])
    verifier = TokenVerifier(ring, remember=8)  # far fewer than the tokens: it keeps dropping the oldest
    tokens = [create_origin_token(ring, f"track-{i}.flac", NOW + 600) for i in range(40)]
    tokens += [create_origin_token(OLD[1], f"old-{i}.flac", NOW + 600) for i in range(10)]

    def check(token: str) -> str:
        return verifier.verify(token, NOW)["locator"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(check, tokens * 20))
    assert results == [verify_origin_token(ring, token, NOW)["locator"] for token in tokens] * 20


# --- the lifetime cap and the memory a verifier keeps --------------------------------------


def test_a_token_living_longer_than_the_cap_is_invalid() -> None:
    week = 7 * 24 * 3600
    verifier = TokenVerifier(KEY, max_lifetime=week)
    assert verifier.verify(create_origin_token(KEY, "a.flac", NOW + week), NOW)["exp"] == NOW + week
    for exp in (NOW + week + 31, NOW + 10**9, 10**300, float(2**1000)):
        error = refusal(verifier, create_origin_token(KEY, "a.flac", exp), NOW)
        assert type(error) is TokenInvalid and str(error) == "token lives longer than the maximum lifetime"
        assert error.claims is not None and error.claims["exp"] == exp  # the MAC matched: claims were read
    assert TokenVerifier(KEY, max_lifetime=0).verify(create_origin_token(KEY, "a.flac", 10**300), NOW)
    assert verify_origin_token(KEY, create_origin_token(KEY, "a.flac", 10**300), NOW)  # no cap unless asked
    with pytest.raises(TokenInvalid, match="maximum lifetime"):
        verify_origin_token(KEY, create_origin_token(KEY, "a.flac", NOW + 2 * week), NOW, max_lifetime=week)


def test_remembered_tokens_are_bounded_in_characters_too() -> None:
    verifier = TokenVerifier(KEY, remember=1000, remember_bytes=20_000)
    tokens = [create_origin_token(KEY, f"{n:04d}/" + "x" * 900, NOW + 600) for n in range(200)]
    for token in tokens:
        verifier.verify(token, NOW)
    assert 0 < verifier._verified_chars <= 20_000
    assert verifier._verified_chars == sum(len(token) for token in verifier._verified)
    assert list(verifier._verified) == tokens[-len(verifier._verified):]  # the newest are kept


def test_no_token_is_minted_that_the_verifier_refuses_for_its_length() -> None:
    with pytest.raises(ArgumentError, match="longer than"):
        create_origin_token(KEY, "海" * 600, NOW + 600)
    longest = create_origin_token(KEY, "a" * 1400, NOW + 600)
    assert len(longest) <= MAX_TOKEN_LENGTH and TokenVerifier(KEY).verify(longest, NOW)
