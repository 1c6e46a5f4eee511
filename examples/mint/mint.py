"""Mint a private-origin stream URL with the Python standard library only.

Usage (the secret comes from the environment, never the command line):

    ORIGIN_SECRET=... [ORIGIN_KEY_ID=2026-02] [ORIGIN_BASE_URL=http://nas:8080] \
        python mint.py LOCATOR [BACKEND]

Prints the token, or the stream URL when ORIGIN_BASE_URL is set. The expiry is
one hour from now rounded up to the next 5 minutes (ORIGIN_EXP overrides it).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import os
import sys
import time


def b64url(data: bytes) -> str:
    """Unpadded base64url."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def mint_origin_token(
    secret: str, locator: str, expires_at: int, backend: str | None = None, key_id: str | None = None
) -> str:
    """A JWS compact token, HS256: header.claims.HMAC-SHA256(secret, header.claims)."""
    header = {"alg": "HS256", "kid": key_id, "typ": "JWT"} if key_id else {"alg": "HS256", "typ": "JWT"}
    claims: dict[str, object] = {"locator": locator}
    if backend is not None:
        claims["backend"] = backend
    claims["exp"] = expires_at
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode("utf-8"))
        + "."
        + b64url(json.dumps(claims, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    )
    mac = hmac.new(secret.encode("utf-8"), signing_input.encode("ascii"), hashlib.sha256).digest()
    return signing_input + "." + b64url(mac)


def rounded_expiry(now: float, ttl: int = 3600, bucket: int = 300) -> int:
    """At least ``ttl`` seconds from now, rounded up so that re-minted URLs repeat within a bucket."""
    return math.ceil((now + ttl) / bucket) * bucket


def main(argv: list[str]) -> int:
    """Mint from the environment and the command line; print the token or URL."""
    if not 2 <= len(argv) <= 3 or not os.environ.get("ORIGIN_SECRET"):
        sys.stderr.write("usage: ORIGIN_SECRET=... python mint.py LOCATOR [BACKEND]\n")
        return 2
    exp = int(os.environ["ORIGIN_EXP"]) if os.environ.get("ORIGIN_EXP") else rounded_expiry(time.time())
    token = mint_origin_token(
        os.environ["ORIGIN_SECRET"],
        argv[1],
        exp,
        backend=argv[2] if len(argv) > 2 else None,
        key_id=os.environ.get("ORIGIN_KEY_ID") or None,
    )
    base_url = os.environ.get("ORIGIN_BASE_URL")
    print(base_url.rstrip("/") + "/api/private-origin/stream/" + token if base_url else token)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
