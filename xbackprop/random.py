"""Counter-based random numbers: keys, and distributions drawn from the backend's bits.

A key is a `uint32` array of shape (2,). Random bits are a hash of (key, element index)
(`Backend.random_bits`, the lowbias32 hash in `backends/_bits.py`), so they need no hidden
state, work under `jax.jit` (the key is just an input), and are bit-identical on every
backend: a dropout mask drawn from the same key is the same mask everywhere, which keeps
cross-backend runs comparable step by step.
"""

from __future__ import annotations

from typing import Any

from .backends import Array, Backend, backend_of, get_backend
from .backends._bits import GOLDEN, mix, u32

__all__ = ["make_key", "fold_in", "uniform", "bernoulli"]


def make_key(seed: int, backend: str | Backend | None = None) -> Array:
    """A key for `seed` (any non-negative int up to 2**64-1) on `backend`."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"a random seed is an int in [0, 2**64), not {seed!r}")
    seed = int(seed)
    target = get_backend(backend)
    return target.asarray([seed & 0xFFFFFFFF, seed >> 32], dtype="uint32")


def fold_in(key: Array, data: int | Array) -> Array:
    """A new key derived from `key` and an integer (a step count, a layer index)."""
    xp = backend_of(key).xp
    d = u32(xp, data & 0xFFFFFFFF) if isinstance(data, int) else xp.astype(xp.asarray(data),
                                                                             xp.uint32)
    k0, k1 = key[0:1], key[1:2]
    a = mix(xp, k0 ^ mix(xp, d * u32(xp, GOLDEN) + k1))
    b = mix(xp, k1 + mix(xp, a ^ d))
    return xp.concat([a, b])


def uniform(key: Array, shape: tuple[int, ...], dtype: Any = "float32") -> Array:
    """Uniform numbers in [0, 1) with 24 random bits each (exact in float32)."""
    backend = backend_of(key)
    bits = backend.random_bits(key, tuple(shape)) >> 8
    return backend.xp.astype(bits, backend.xp_dtype(dtype)) * (2.0 ** -24)


def bernoulli(key: Array, p: float, shape: tuple[int, ...]) -> Array:
    """Booleans that are True with probability `p` (to 2**-24)."""
    backend = backend_of(key)
    threshold = int(round(float(p) * 2**24))
    return (backend.random_bits(key, tuple(shape)) >> 8) < u32(backend.xp, threshold)
