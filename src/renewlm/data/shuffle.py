"""A seeded random permutation of [0, n) evaluated at any index, with no table in memory.

A corpus of 100B tokens cut into 2,048-token sequences has ~50M of them; a stored permutation per
epoch would cost 200–400 MB per process. A keyed Feistel network is a bijection on [0, 2^2h); walking
the cycle until the value falls below n makes it a bijection on [0, n) (Black & Rogaway 2002).
Since 2^2h < 4n, the expected number of walks per index is below 4, and every index is independent,
so a whole batch, across corpora and epochs, is a few dozen vectorised numpy operations.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

import numpy as np

_ROUNDS = 4
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


@lru_cache(maxsize=65536)
def derive_key(*parts: object) -> int:
    """A 64-bit key from any values (seed, corpus name, epoch), stable across processes and runs."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@lru_cache(maxsize=65536)
def _round_keys(key: int) -> tuple[int, ...]:
    return tuple(derive_key(key, r) for r in range(_ROUNDS))


def _mix(x: np.ndarray) -> np.ndarray:
    # splitmix64 finaliser: a fast, well-spread 64-bit hash.
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


def permute(index, n, key) -> np.ndarray:
    """Position `index` of the random permutation of range(n) chosen by `key`.

    Vectorised: `index`, `n` and `key` broadcast together, so one call serves a batch whose samples
    come from several corpora (each its own n) and epochs (each its own key).
    """
    x = np.asarray(index, dtype=np.uint64)
    n = np.broadcast_to(np.asarray(n, dtype=np.int64), x.shape)
    keys = np.broadcast_to(np.asarray(key, dtype=np.uint64), x.shape)
    if x.size == 0:
        return np.zeros(x.shape, dtype=np.int64)
    if (n <= 0).any():
        raise ValueError("permute needs n > 0")
    # half-width in bits: 2·half ≥ bit_length(n − 1), at least 1
    bits = np.frexp(np.maximum(n - 1, 1).astype(np.float64))[1]
    half = np.maximum(1, (bits + 1) // 2).astype(np.uint64)
    mask = (np.uint64(1) << half) - np.uint64(1)
    unique, where = np.unique(keys, return_inverse=True)
    table = np.array([_round_keys(int(k)) for k in unique], dtype=np.uint64)  # (unique keys, rounds)
    round_keys = table[where.reshape(-1)].reshape(*x.shape, _ROUNDS)
    bound = n.astype(np.uint64)

    def encrypt(v, sel):
        h, m = half[sel], mask[sel]
        left, right = v >> h, v & m
        for r in range(_ROUNDS):
            left, right = right, left ^ (_mix(right ^ round_keys[sel][..., r]) & m)
        return (left << h) | right

    with np.errstate(over="ignore"):
        everything = np.ones(x.shape, dtype=bool)
        out = encrypt(x, everything)
        walking = out >= bound
        while walking.any():
            out[walking] = encrypt(out[walking], walking)
            walking = out >= bound
    return np.where(n == 1, 0, out.astype(np.int64))
