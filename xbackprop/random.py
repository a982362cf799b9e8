"""Counter-based random numbers written once against the array namespace.

A key is a `uint32` array of shape (2,). Random bits are a hash of (key, element index),
so they need no hidden state, work under `jax.jit` (the key is just an input), and are
bit-identical on NumPy, CuPy and JAX: a dropout mask drawn from the same key is the same
mask on every backend, which keeps cross-backend runs comparable step by step.

The mixer is Chris Wellons' "lowbias32" integer hash (hash-prospector, 2018); uint32
multiplication wraps modulo 2**32 on every backend, which is what the hash relies on.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import Array, Backend, backend_of, get_backend

__all__ = ["make_key", "fold_in", "uniform", "bernoulli"]

_M1, _M2 = 0x21F0AAAD, 0x735A2D97  # lowbias32 multipliers
_GOLDEN = 0x9E3779B9  # 2**32 / golden ratio, spreads consecutive counters apart


def _u32(xp: Any, value: int) -> Array:
    return xp.asarray(value, dtype=xp.uint32)


def _mix(xp: Any, x: Array) -> Array:
    """lowbias32: a bijective uint32 -> uint32 hash with good avalanche."""
    x = x ^ (x >> 16)
    x = x * _u32(xp, _M1)
    x = x ^ (x >> 15)
    x = x * _u32(xp, _M2)
    return x ^ (x >> 15)


def make_key(seed: int, backend: str | Backend | None = None) -> Array:
    """A key for `seed` (any non-negative int up to 2**64-1) on `backend`."""
    if not 0 <= int(seed) < 2**64:
        raise ValueError(f"a random seed is an int in [0, 2**64), not {seed!r}")
    seed = int(seed)
    xp = get_backend(backend).xp
    return xp.asarray([seed & 0xFFFFFFFF, seed >> 32], dtype=xp.uint32)


def fold_in(key: Array, data: int | Array) -> Array:
    """A new key derived from `key` and an integer (a step count, a layer index)."""
    xp = backend_of(key).xp
    d = xp.asarray(data).astype(xp.uint32) if not isinstance(data, int) else _u32(
        xp, data & 0xFFFFFFFF)
    k0, k1 = key[0:1], key[1:2]
    a = _mix(xp, k0 ^ _mix(xp, d * _u32(xp, _GOLDEN) + k1))
    b = _mix(xp, k1 + _mix(xp, a ^ d))
    return xp.concat([a, b]) if hasattr(xp, "concat") else xp.concatenate([a, b])


def _bits(key: Array, shape: tuple[int, ...]) -> Array:
    xp = backend_of(key).xp
    n = 1
    for s in shape:
        n *= int(s)
    counter = xp.arange(n, dtype=xp.uint32)
    h = _mix(xp, counter * _u32(xp, _GOLDEN) ^ key[0:1])
    h = _mix(xp, h + key[1:2])
    return xp.reshape(h, tuple(shape))


def uniform(key: Array, shape: tuple[int, ...], dtype: Any = "float32") -> Array:
    """Uniform numbers in [0, 1) with 24 random bits each (exact in float32)."""
    xp = backend_of(key).xp
    bits = _bits(key, shape) >> 8
    return bits.astype(getattr(xp, np.dtype(dtype).name)) * (2.0 ** -24)


def bernoulli(key: Array, p: float, shape: tuple[int, ...]) -> Array:
    """Booleans that are True with probability `p` (to 2**-24)."""
    xp = backend_of(key).xp
    threshold = int(round(float(p) * 2**24))
    return (_bits(key, shape) >> 8) < _u32(xp, threshold)
