"""Write tests/vectors/tokens.json: published test vectors for private-origin tokens.

The tokens are built here byte by byte with the standard library only (not with
origin_server.tokens), so the vectors check the verifier rather than echo it.
Deterministic: run ``python tests/vectors/make_token_vectors.py`` and the file
must not change (a test checks that).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

OUT = Path(__file__).with_name("tokens.json")

NOW = 1767225600  # 2026-01-01T00:00:00Z
EXP = NOW + 600
LOCATOR = "netease/马也/海屿你.flac"

KEYS = {
    "single": [[None, "single-key-0123456789-abcdefghijklmnopqrstuvwxyz"]],
    "ring": [
        ["2026-02", "second-key-ZYXWVUTSRQPONMLKJIHGFEDCBA-9876543210"],
        ["2026-01", "first-key-abcdefghijklmnopqrstuvwxyz-0123456789"],
    ],
    "unicode": [[None, "密钥-非ASCII的秘密也按UTF-8字节参与HMAC-0123456789"]],
}


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWS writes it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mac(secret: str, signing_input: str) -> str:
    """The third segment for ``signing_input`` under ``secret``."""
    return b64url(hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest())


def token(secret: str, header: str | bytes, claims: str | bytes) -> str:
    """A token whose first two segments encode exactly these JSON texts."""
    h = header.encode("utf-8") if isinstance(header, str) else header
    c = claims.encode("utf-8") if isinstance(claims, str) else claims
    signing_input = b64url(h) + "." + b64url(c)
    return signing_input + "." + mac(secret, signing_input)


def resign(secret: str, header_segment: str, claims_segment: str) -> str:
    """A token built from segments given as sent (to test non-canonical spellings that are signed)."""
    signing_input = header_segment + "." + claims_segment
    return signing_input + "." + mac(secret, signing_input)


def flip_last_bits(segment: str) -> str:
    """The same bytes spelled non-canonically: set the unused low bits of the last character."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    unused = {2: 0b1111, 3: 0b11}[len(segment) % 4]
    last = alphabet.index(segment[-1])
    return segment[:-1] + alphabet[last | unused]


def spaced(json_text: str, remainder: int) -> bytes:
    """``json_text`` with spaces before its closing brace until its UTF-8 length % 3 == ``remainder``.

    An unpadded base64url segment of n bytes has 4n/3 rounded up characters: its
    length % 4 is 0, 2 or 3 for n % 3 of 0, 1 or 2.
    """
    data = json_text.encode("utf-8")
    while len(data) % 3 != remainder:
        data = data[:-1] + b" }"
    return data


def build() -> dict[str, object]:
    """All vectors, valid then invalid."""
    single = KEYS["single"][0][1]
    signer = KEYS["ring"][0]  # kid 2026-02
    older = KEYS["ring"][1]  # kid 2026-01
    uni = KEYS["unicode"][0][1]
    hs = '{"alg":"HS256","typ":"JWT"}'
    hk = '{"alg":"HS256","kid":"%s","typ":"JWT"}'
    basic = json.dumps({"locator": LOCATOR, "exp": EXP}, ensure_ascii=False, separators=(",", ":"))

    valid = [
        {
            "name": "single key, no kid, UTF-8 claims",
            "keys": "single",
            "token": token(single, hs, basic),
            "claims": {"locator": LOCATOR, "exp": EXP},
        },
        {
            "name": "ring, signed by the current key (kid 2026-02)",
            "keys": "ring",
            "token": token(signer[1], hk % signer[0], json.dumps(
                {"locator": LOCATOR, "backend": "nas-main", "exp": EXP}, ensure_ascii=False, separators=(",", ":"))),
            "claims": {"locator": LOCATOR, "backend": "nas-main", "exp": EXP},
        },
        {
            "name": "ring, signed by the previous key (kid 2026-01), still verifies until removed",
            "keys": "ring",
            "token": token(older[1], hk % older[0], basic),
            "claims": {"locator": LOCATOR, "exp": EXP},
        },
        {
            "name": "ring, no kid: checked against each key",
            "keys": "ring",
            "token": token(older[1], hs, basic),
            "claims": {"locator": LOCATOR, "exp": EXP},
        },
        {
            "name": "claims escaped as ASCII (\\u9a6c), header members in another order, no typ elsewhere",
            "keys": "single",
            "token": token(single, '{"typ":"JWT","alg":"HS256"}', json.dumps({"exp": EXP, "locator": LOCATOR})),
            "claims": {"locator": LOCATOR, "exp": EXP},
        },
        {
            "name": "header without typ, whitespace inside the JSON",
            "keys": "single",
            "token": token(single, '{ "alg" : "HS256" }', '{\n  "locator": "a b/c#d?e.mp3",\n  "exp": %d\n}' % EXP),
            "claims": {"locator": "a b/c#d?e.mp3", "exp": EXP},
        },
        {
            "name": "fractional exp and nbf (RFC 7519 NumericDate), unknown claims kept",
            "keys": "single",
            "token": token(single, hs, '{"locator":"x.ogg","nbf":%d.25,"exp":%d.5,"sub":"u1","jti":"abc","n":[1,{"a":null}]}' % (NOW - 60, EXP)),
            "claims": {"locator": "x.ogg", "nbf": NOW - 60 + 0.25, "exp": EXP + 0.5, "sub": "u1", "jti": "abc", "n": [1, {"a": None}]},
        },
        {
            "name": "exp in the past but within the 30 s leeway",
            "keys": "single",
            "token": token(single, hs, '{"locator":"x.ogg","exp":%d}' % (NOW - 29)),
            "claims": {"locator": "x.ogg", "exp": NOW - 29},
        },
        {
            "name": "nbf in the future but within the 30 s leeway",
            "keys": "single",
            "token": token(single, hs, '{"locator":"x.ogg","nbf":%d,"exp":%d}' % (NOW + 30, EXP)),
            "claims": {"locator": "x.ogg", "nbf": NOW + 30, "exp": EXP},
        },
        {
            "name": "secret with non-ASCII characters: the key is its UTF-8 bytes",
            "keys": "unicode",
            "token": token(uni, hs, basic),
            "claims": {"locator": LOCATOR, "exp": EXP},
        },
        {
            "name": "exp in exponent notation",
            "keys": "single",
            "token": token(single, hs, '{"locator":"x.ogg","exp":1.8e9}'),
            "claims": {"locator": "x.ogg", "exp": 1.8e9},
        },
    ]
    for v in valid:
        v.setdefault("now", NOW)
        v.setdefault("leeway", 30)

    good = token(single, hs, basic)
    h_seg, c_seg, m_seg = good.split(".")
    invalid: list[dict[str, object]] = []

    def bad(reason: str, tok: str, error: str = "TokenInvalid", keys: str = "single", now: int = NOW) -> None:
        invalid.append({"reason": reason, "keys": keys, "token": tok, "now": now, "leeway": 30, "error": error})

    def claims(text: str) -> str:
        return token(single, hs, text)

    # Form, refused before anything is decoded.
    bad("empty string", "")
    bad("two segments", h_seg + "." + c_seg)
    bad("four segments", good + "." + m_seg)
    bad("empty header segment", resign(single, "", c_seg))
    bad("empty claims segment", resign(single, h_seg, ""))
    short = b64url(spaced(basic, 1))  # length 4n+2: a padded encoder would add "=="
    bad("padding in a segment, correctly signed", resign(single, h_seg, short + "=="))
    bad("padding on the signature", good + "=")
    assert "_" in c_seg
    bad("standard base64 alphabet (/ for _), correctly signed", resign(single, h_seg, c_seg.replace("_", "/")))
    bad("whitespace inside", h_seg + ". " + c_seg + "." + m_seg)
    bad("trailing newline", good + "\n")
    bad("non-ASCII character", good[:-1] + "é")
    bad("segment of length 4n+1, correctly signed", resign(single, h_seg, c_seg + "A"))
    bad("non-canonical signature (unused low bits set)", h_seg + "." + c_seg + "." + flip_last_bits(m_seg))
    bad("non-canonical claims segment (4n+2), correctly signed", resign(single, h_seg, flip_last_bits(short)))
    bad("non-canonical claims segment (4n+3), correctly signed",
        resign(single, h_seg, flip_last_bits(b64url(spaced(basic, 2)))))
    bad("signature truncated", good[:-1])
    bad("longer than 2048 characters", token(single, hs, '{"locator":"%s","exp":%d}' % ("a" * 1600, EXP)))
    # Signature.
    bad("signature of another key", token(KEYS["ring"][0][1], hs, basic))
    bad("claims changed after signing", h_seg + "." + b64url(basic.replace(".flac", ".mp3").encode("utf-8")) + "." + m_seg)
    bad("a common mistake: MAC over a re-serialized payload (ASCII escapes) while UTF-8 was sent",
        h_seg + "." + c_seg + "." + mac(single, h_seg + "." + b64url(json.dumps({"locator": LOCATOR, "exp": EXP}, separators=(",", ":")).encode())))
    bad("unknown kid", token(signer[1], hk % "2025-12", basic), keys="ring")
    bad("kid names another key than the one that signed", token(older[1], hk % signer[0], basic), keys="ring")
    bad("kid with a single key without key id", token(single, hk % "k1", basic))
    # Header.
    bad("alg none, empty signature", b64url(b'{"alg":"none","typ":"JWT"}') + "." + c_seg + ".")
    bad("alg none, with a MAC", token(single, '{"alg":"none"}', basic))
    bad("alg HS512", token(single, '{"alg":"HS512","typ":"JWT"}', basic))
    bad("alg hs256 (case)", token(single, '{"alg":"hs256","typ":"JWT"}', basic))
    bad("alg missing", token(single, '{"typ":"JWT"}', basic))
    bad("typ other than JWT", token(single, '{"alg":"HS256","typ":"jwt"}', basic))
    bad("crit header", token(single, '{"alg":"HS256","crit":["exp"],"exp":1}', basic))
    bad("unknown header member", token(single, '{"alg":"HS256","jku":"https://example.invalid/"}', basic))
    bad("kid not a string", token(single, '{"alg":"HS256","kid":1}', basic))
    bad("duplicate header member", token(single, '{"alg":"HS256","alg":"none"}', basic))
    bad("header not an object", token(single, '["HS256"]', basic))
    bad("header not JSON", token(single, "alg=HS256", basic))
    # Claims.
    bad("claims not an object", claims('["x",%d]' % EXP))
    bad("claims not JSON", claims("locator=x"))
    bad("claims with trailing data", claims('{"locator":"x","exp":%d} {}' % EXP))
    bad("claims not UTF-8 (Latin-1 bytes)", token(single, hs, '{"locator":"caf\xe9","exp":%d}'.encode("latin-1") % EXP))
    bad("claims with a UTF-8 byte-order mark", token(single, hs, b"\xef\xbb\xbf" + basic.encode("utf-8")))
    bad("claims in UTF-16", token(single, hs, basic.encode("utf-16-le")))
    bad("duplicate claim", claims('{"locator":"a.flac","locator":"b.flac","exp":%d}' % EXP))
    bad("exp missing", claims('{"locator":"x"}'))
    bad("exp a string", claims('{"locator":"x","exp":"%d"}' % EXP))
    bad("exp a boolean", claims('{"locator":"x","exp":true}'))
    bad("exp null", claims('{"locator":"x","exp":null}'))
    bad("exp NaN", claims('{"locator":"x","exp":NaN}'))
    bad("exp Infinity", claims('{"locator":"x","exp":Infinity}'))
    bad("exp overflowing to infinity (1e400)", claims('{"locator":"x","exp":1e400}'))
    bad("nbf a string", claims('{"locator":"x","nbf":"0","exp":%d}' % EXP))
    bad("nbf null", claims('{"locator":"x","nbf":null,"exp":%d}' % EXP))
    bad("nbf -Infinity", claims('{"locator":"x","nbf":-Infinity,"exp":%d}' % EXP))
    bad("locator missing", claims('{"exp":%d}' % EXP))
    bad("locator empty", claims('{"locator":"","exp":%d}' % EXP))
    bad("locator a number", claims('{"locator":7,"exp":%d}' % EXP))
    bad("locator a list", claims('{"locator":["a","b"],"exp":%d}' % EXP))
    bad("locator with a lone surrogate escape", claims('{"locator":"a\\ud800.flac","exp":%d}' % EXP))
    bad("backend not a string", claims('{"locator":"x","backend":1,"exp":%d}' % EXP))
    bad("backend null", claims('{"locator":"x","backend":null,"exp":%d}' % EXP))
    # Lifetime.
    bad("expired beyond the leeway", claims('{"locator":"x","exp":%d}' % (NOW - 30)), error="TokenExpired")
    bad("expired long ago", claims('{"locator":"x","exp":0}'), error="TokenExpired")
    bad("not yet valid beyond the leeway", claims('{"locator":"x","nbf":%d,"exp":%d}' % (NOW + 31, EXP)), error="TokenNotYetValid")
    return {
        "description": (
            "Test vectors for origin_server private-origin tokens (JWS compact, HS256; docs/tokens.md). "
            "Each vector names a key set from 'keys' (lists of [kid or null, secret]; the first signs, "
            "the secret's UTF-8 bytes are the HMAC key), the token, 'now' and 'leeway' in seconds. "
            "Valid vectors give the claims verification returns; invalid ones the reason they must be "
            "refused and the error class raised (TokenInvalid, TokenExpired or TokenNotYetValid). "
            "Generated by tests/vectors/make_token_vectors.py."
        ),
        "keys": KEYS,
        "valid": valid,
        "invalid": invalid,
    }


def render() -> str:
    """The file's exact text."""
    return json.dumps(build(), ensure_ascii=False, indent=2) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8", newline="\n")
    sys.stdout.write(f"wrote {OUT}\n")
