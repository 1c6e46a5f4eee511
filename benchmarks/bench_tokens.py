"""Token create / verify per operation, beside PyJWT's encode / decode in the same run.

Usage: python benchmarks/bench_tokens.py [--rounds 31] [--number 2000] [--clock cpu|wall]

Each round times ``number`` calls of every operation, interleaved so that the
shared machine's noise hits all of them alike; the figure is the median over
rounds of the per-call time. Targets: verify faster than PyJWT's
decode, and at most 10 microseconds per token.

"verify" is a :class:`TokenVerifier` that remembers no tokens (what the app
does for a token it has not seen); "remembered" is one that does (what the app
does for a player's next Range request); ``verify_origin_token`` sets up its
keys on every call, as PyJWT's ``decode`` does.
"""

from __future__ import annotations

import argparse
import base64
import hmac
import json
import platform
import statistics
import sys
import time
import timeit
import warnings
from collections.abc import Callable

import jwt

from origin_server.keys import KeyRing
from origin_server.tokens import TokenInvalid, TokenVerifier, create_origin_token, verify_origin_token

SECRET = "bench-secret-" + "s" * 40
RING = KeyRing([("2026-02", SECRET), ("2026-01", "older-secret-" + "o" * 40)])
LOCATOR = "netease/马也/海屿你.flac"
BACKEND = "nas-main"


def operations(now: float) -> dict[str, Callable[[], object]]:
    """The timed calls, each returning something so that nothing is optimised away."""
    exp = int(now) + 3600
    ours = create_origin_token(RING, LOCATOR, exp, backend=BACKEND)
    ours_no_kid = create_origin_token(SECRET, LOCATOR, exp, backend=BACKEND)
    theirs = jwt.encode({"locator": LOCATOR, "backend": BACKEND, "exp": exp}, SECRET, algorithm="HS256", headers={"kid": "2026-02"})
    bad_mac = ours[:-2] + ("AA" if not ours.endswith("AA") else "BA")
    ring_verifier = TokenVerifier(RING, remember=0)
    secret_verifier = TokenVerifier(SECRET, remember=0)
    remembering = TokenVerifier(RING)
    assert ring_verifier.verify(theirs, now)["locator"] == LOCATOR
    assert jwt.decode(ours, SECRET, algorithms=["HS256"], leeway=30)["locator"] == LOCATOR

    key = SECRET.encode("utf-8")

    def bare_stdlib_verify() -> object:
        # The least any HS256 verifier must do, with no checks at all (measured-facts.md: ~6 us).
        header, claims, mac = ours.split(".")
        expected = base64.urlsafe_b64encode(hmac.digest(key, (header + "." + claims).encode(), "sha256")).rstrip(b"=")
        return hmac.compare_digest(expected, mac.encode()) and json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))

    def refuse(token: str) -> Callable[[], object]:
        def call() -> object:
            try:
                return ring_verifier.verify(token, now)
            except TokenInvalid as refused:
                return refused

        return call

    return {
        "create (ours, key ring)": lambda: create_origin_token(RING, LOCATOR, exp, backend=BACKEND),
        "create (ours, str secret)": lambda: create_origin_token(SECRET, LOCATOR, exp, backend=BACKEND),
        "encode (PyJWT)": lambda: jwt.encode(
            {"locator": LOCATOR, "backend": BACKEND, "exp": exp}, SECRET, algorithm="HS256", headers={"kid": "2026-02"}
        ),
        "verify (ours, key ring, kid)": lambda: ring_verifier.verify(ours, now),
        "verify (ours, str secret)": lambda: secret_verifier.verify(ours_no_kid, now),
        "verify (ours, ring, no kid: 2 keys)": lambda: ring_verifier.verify(ours_no_kid, now),
        "verify (ours, remembered token)": lambda: remembering.verify(ours, now),
        "verify_origin_token (ring, per call)": lambda: verify_origin_token(RING, ours, now),
        "verify_origin_token (str, per call)": lambda: verify_origin_token(SECRET, ours_no_kid, now),
        "refuse bad MAC (ours)": refuse(bad_mac),
        "refuse 2 KiB of junk (ours)": refuse("x" * 2048 + "."),
        "decode (PyJWT)": lambda: jwt.decode(ours, SECRET, algorithms=["HS256"], leeway=30),
        "bare stdlib HMAC + json.loads, no checks": bare_stdlib_verify,
    }


CLOCKS = {"cpu": time.thread_time, "wall": time.perf_counter}


def measure(rounds: int, number: int, clock: str = "cpu") -> dict[str, list[float]]:
    """Seconds per call of every operation, one sample per round."""
    ops = operations(time.time())
    timers = {name: timeit.Timer(call, timer=CLOCKS[clock]) for name, call in ops.items()}
    samples: dict[str, list[float]] = {name: [] for name in ops}
    for timer in timers.values():  # warm up
        timer.timeit(number=max(1, number // 10))
    for _ in range(rounds):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(number=number) / number)
    return samples


def main(argv: list[str] | None = None) -> int:
    """Run and print the figures with their ratios to PyJWT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument(
        "--clock",
        choices=sorted(CLOCKS),
        default="cpu",
        help="cpu: this thread's CPU time, which time spent waiting for a shared core does not inflate; "
        "wall: elapsed time",
    )
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # PyJWT's key-length warnings do not apply (40-byte key)

    samples = measure(args.rounds, args.number, args.clock)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    print(f"python {platform.python_version()}, PyJWT {jwt.__version__}, {platform.machine()}; "
          f"median of {args.rounds} rounds x {args.number} calls, {args.clock} clock")
    print(f"{'operation':40s} {'median us':>10s} {'x PyJWT':>8s} {'best us':>8s}")
    for name, seconds in medians.items():
        anchor = medians["encode (PyJWT)"] if name.startswith(("create", "encode")) else medians["decode (PyJWT)"]
        print(f"{name:40s} {seconds * 1e6:10.2f} {seconds / anchor:8.2f} {min(samples[name]) * 1e6:8.2f}")
    verify = medians["verify (ours, key ring, kid)"]
    decode = medians["decode (PyJWT)"]
    create = medians["create (ours, key ring)"]
    encode = medians["encode (PyJWT)"]
    print(f"verify vs PyJWT decode: {decode / verify:.1f}x faster ({verify * 1e6:.2f} us vs {decode * 1e6:.2f} us)")
    bare = medians["bare stdlib HMAC + json.loads, no checks"]
    print(f"verify vs bare stdlib HMAC + json.loads: {verify / bare:.2f}x (the cost of the strictness)")
    print(f"create vs PyJWT encode: {encode / create:.1f}x faster ({create * 1e6:.2f} us vs {encode * 1e6:.2f} us)")
    faster = verify < decode
    within = verify <= 10e-6
    print(f"target verify < PyJWT decode: {'met' if faster else 'MISSED'}; "
          f"target verify <= 10 us: {'met' if within else 'MISSED'}")
    return 0 if faster and within else 1


if __name__ == "__main__":
    sys.exit(main())
