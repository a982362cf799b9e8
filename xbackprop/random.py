"""Counter-based random numbers: keys, and distributions drawn from the backend's bits.

A key is a `uint32` array of shape (2,). Random bits are a hash of (key, element index)
(`Backend.random_bits`, the lowbias32 hash in `backends/_bits.py`), so they need no hidden
state, work under `jax.jit` (the key is just an input), and are bit-identical on every
backend: a dropout mask drawn from the same key is the same mask everywhere, which keeps
cross-backend runs comparable step by step.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .backends import Array, Backend, backend_of, get_backend

__all__ = ["make_key", "check_seed", "host_generator", "fold_in", "uniform", "bernoulli"]


def check_seed(seed: Any) -> int:
    """`seed` as a Python int, or a ValueError if it is not a whole number in [0, 2**64)
    (NumPy's own message for -1, "expected non-negative integer", names no seed)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or \
            not 0 <= int(seed) < 2**64:
        raise ValueError(f"a random seed is an int in [0, 2**64), not {seed!r}")
    return int(seed)


def host_generator(seed: int | np.random.Generator) -> np.random.Generator:
    """NumPy's generator for `seed` (checked), or `seed` itself if it is one: the host-side
    randomness of initial weights, splits and toy data."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(check_seed(seed))


def make_key(seed: int, backend: str | Backend | None = None) -> Array:
    """A key for `seed` (any non-negative int up to 2**64-1) on `backend`."""
    seed = check_seed(seed)
    target = get_backend(backend)
    return target.asarray([seed & 0xFFFFFFFF, seed >> 32], dtype="uint32")


def fold_in(key: Array, data: int | Array) -> Array:
    """A new key derived from `key` and an integer (a step count, a layer index)."""
    return backend_of(key).fold_in(key, data)


def uniform(key: Array, shape: tuple[int, ...], dtype: Any = "float32") -> Array:
    """Uniform numbers in [0, 1) with 24 random bits each (exact in float32)."""
    backend = backend_of(key)
    xp = backend.xp
    # the top 24 bits: (bits >> 8)·2**-24 = (bits & ~0xFF)·2**-32, exact in float32; `&`
    # rather than `>>`, which some libraries lack for uint32 (PyTorch)
    top = backend.random_bits(key, tuple(shape)) & xp.asarray(0xFFFFFF00, dtype=xp.uint32)
    return xp.astype(top, backend.xp_dtype(dtype)) * (2.0 ** -32)


def bernoulli(key: Array, p: float, shape: tuple[int, ...]) -> Array:
    """Booleans that are True with probability `p` (to 2**-24)."""
    threshold = round(float(p) * 2**24) * 2.0**-24  # exact in float32, as uniform's values
    return uniform(key, shape) < threshold
