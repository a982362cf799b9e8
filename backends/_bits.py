"""Counter-based random bits written once against the Array API standard.

Random bits are a hash of (key, element index), so they need no hidden state, run under
`jax.jit` (the key is just an input) and are bit-identical on every backend: a dropout
mask drawn from one key is the same mask everywhere. A key is a `uint32` array of shape (2,).

The mixer is Chris Wellons' "lowbias32" integer hash (hash-prospector, 2018); uint32
multiplication wraps modulo 2**32 on every backend, which is what the hash relies on.
This is the standard-only default of `Backend.random_bits`; xbackprop.random builds keys
and distributions on it.
"""

from __future__ import annotations

import math
from typing import Any

M1, M2 = 0x21F0AAAD, 0x735A2D97  # lowbias32 multipliers
GOLDEN = 0x9E3779B9  # 2**32 / golden ratio, spreads consecutive counters apart


def u32(xp: Any, value: int) -> Any:
    """`value` as a 0-d uint32 array of namespace `xp`."""
    return xp.asarray(value, dtype=xp.uint32)


def mix(xp: Any, x: Any) -> Any:
    """lowbias32: a bijective uint32 -> uint32 hash with good avalanche."""
    x = x ^ (x >> 16)
    x = x * u32(xp, M1)
    x = x ^ (x >> 15)
    x = x * u32(xp, M2)
    return x ^ (x >> 15)


def bits(xp: Any, key: Any, shape: tuple[int, ...]) -> Any:
    """uint32 bits of `shape`: element i gets mix(mix(i·φ ^ k0) + k1)."""
    counter = xp.arange(math.prod(shape), dtype=xp.uint32)
    h = mix(xp, counter * u32(xp, GOLDEN) ^ key[0:1])
    h = mix(xp, h + key[1:2])
    return xp.reshape(h, tuple(shape))
