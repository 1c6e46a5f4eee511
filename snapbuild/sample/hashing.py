"""Deterministic hash and permutation primitives: every sample value is a pure function of its inputs.

A row's content is computed from ``(seed, stream, row id)`` rather than drawn
from a running random generator, so any row can be produced on its own, in
any order, in flat memory, and the same seed always gives the same row.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

MASK = (1 << 64) - 1


def mix(x: int) -> int:
    """splitmix64: a fast, well-spread 64-bit hash, so each row is a pure function of its id."""
    x = (x + 0x9E3779B97F4A7C15) & MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK
    return x ^ (x >> 31)


@functools.lru_cache(maxsize=256)
def stream_base(seed: int, stream: int) -> int:
    """The key of one stream of values for ``seed``; ``mix(stream_base(seed, stream) ^ i)`` hashes row ``i``."""
    return mix(mix(seed & MASK) ^ (stream * 0x632BE59BD9B4E019 & MASK))


def row_hash(seed: int, stream: int, i: int) -> int:
    """The hash of row ``i`` in one stream of values: stable for a given seed and stream."""
    return mix(stream_base(seed, stream) ^ i)


def permutation(n: int, layout_seed: int | None) -> Iterator[int]:
    """Yield 0..n-1 in identity order, or in a seed-dependent order (an affine bijection), in O(1) memory."""
    if layout_seed is None or n <= 1:
        yield from range(n)
        return
    h = mix(layout_seed & MASK)
    step = (h % n) | 1
    while math.gcd(step, n) != 1:
        step += 2
    offset = (h >> 32) % n
    for k in range(n):
        yield (offset + k * step) % n


def coprime_stride(h: int, n: int) -> int:
    """A stride in 1..n-1 coprime with n, so ``start + k*stride (mod n)`` never repeats within n steps."""
    if n <= 2:
        return 1
    stride = 1 + h % (n - 1)
    while math.gcd(stride, n) != 1:
        stride = stride % (n - 1) + 1
    return stride
