"""Counter-based random bits written once against the Array API standard.

Random bits are a hash of (key, element index), so they need no hidden state, run under
`jax.jit` (the key is just an input) and are bit-identical on every backend: a dropout
mask drawn from one key is the same mask everywhere. A key is a `uint32` array of shape (2,).

The mixer is Chris Wellons' "lowbias32" integer hash (hash-prospector, 2018); uint32
multiplication and addition wrap modulo 2**32, which is what the hash relies on.
These are the standard-only defaults of `Backend.random_bits` and `Backend.fold_in`;
xbackprop.random builds keys and distributions on them.

`lane`: the integer dtype the hash computes in. None is uint32, as the standard has it. A
library with incomplete uint32 arithmetic (PyTorch has no uint32 `+` or `>>` on the CPU)
passes a wider signed dtype (int64) holding values in [0, 2**32): every sum and product is
then reduced mod 2**32, and products are taken in 16-bit halves so none exceeds 2**49.
Both give the same bits.
"""

from __future__ import annotations

import math
from typing import Any

M1, M2 = 0x21F0AAAD, 0x735A2D97  # lowbias32 multipliers
GOLDEN = 0x9E3779B9  # 2**32 / golden ratio, spreads consecutive counters apart
MASK = 0xFFFFFFFF


def u32(xp: Any, value: int) -> Any:
    """`value` as a 0-d uint32 array of namespace `xp`."""
    return xp.asarray(value, dtype=xp.uint32)


def _mul(xp: Any, x: Any, m: int, lane: Any) -> Any:
    """x·m mod 2**32 for a constant m."""
    if lane is None:
        return x * u32(xp, m)
    # x·m = x·lo + x·hi·2**16, and x·hi·2**16 mod 2**32 = (x·hi mod 2**16)·2**16
    lo, hi = m & 0xFFFF, m >> 16
    return (x * lo + (((x * hi) & 0xFFFF) << 16)) & MASK


def _add(x: Any, y: Any, lane: Any) -> Any:
    """x + y mod 2**32."""
    return x + y if lane is None else (x + y) & MASK


def mix(xp: Any, x: Any, lane: Any = None) -> Any:
    """lowbias32: a bijective uint32 -> uint32 hash with good avalanche."""
    x = x ^ (x >> 16)
    x = _mul(xp, x, M1, lane)
    x = x ^ (x >> 15)
    x = _mul(xp, x, M2, lane)
    return x ^ (x >> 15)


def bits(xp: Any, key: Any, shape: tuple[int, ...], lane: Any = None) -> Any:
    """uint32 bits of `shape`: element i gets mix(mix(i·φ ^ k0) + k1)."""
    counter = xp.arange(math.prod(shape), dtype=xp.uint32 if lane is None else lane)
    h = mix(xp, _mul(xp, counter, GOLDEN, lane) ^ key[0:1], lane)
    h = mix(xp, _add(h, key[1:2], lane), lane)
    return xp.reshape(h, tuple(shape))


def fold_in(xp: Any, key: Any, data: Any, lane: Any = None) -> Any:
    """A new key from `key` and `data` (a Python int or an integer array, taken mod 2**32):
    a = mix(k0 ^ mix(d·φ + k1)), b = mix(k1 + mix(a ^ d))."""
    if isinstance(data, int):
        d = xp.asarray(data & MASK, dtype=xp.uint32 if lane is None else lane)
    elif lane is None:
        d = xp.astype(xp.asarray(data), xp.uint32)
    else:
        d = xp.astype(xp.asarray(data), lane) & MASK
    k0, k1 = key[0:1], key[1:2]
    a = mix(xp, k0 ^ mix(xp, _add(_mul(xp, d, GOLDEN, lane), k1, lane), lane), lane)
    b = mix(xp, _add(k1, mix(xp, a ^ d, lane), lane), lane)
    return xp.concat([a, b])
