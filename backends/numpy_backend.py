"""The NumPy backend: the CPU reference. NumPy only; it never imports JAX or CuPy."""

from __future__ import annotations

import ctypes
import math
import os
import sys
import types
from typing import Any

import numpy as np

from ._base import Array, Backend, BackendUnavailableError, library_pad


def _sum(x: Any, /, *, axis: Any = None, dtype: Any = None, keepdims: bool = False) -> Any:
    # numpy's stubs overload reduce on keepdims' Literal value: a bool variable matches none
    # (unused-ignore: stubs of other numpy versions may accept it)
    return np.add.reduce(x, axis=axis, dtype=dtype,  # type: ignore[call-overload, unused-ignore]
                         keepdims=keepdims)


def _mean(x: Any, /, *, axis: Any = None, keepdims: bool = False) -> Any:
    if not isinstance(x, np.ndarray) or x.dtype.kind != "f":
        return np.mean(x, axis=axis, keepdims=keepdims)
    axes = range(x.ndim) if axis is None else (axis,) if isinstance(axis, int) else axis
    count = math.prod(x.shape[a] for a in axes)
    # the keepdims overloads, as in _sum
    total = np.add.reduce(x, axis=axis,  # type: ignore[call-overload, unused-ignore]
                          keepdims=keepdims)
    return np.divide(total, count, dtype=x.dtype)


def _namespace() -> types.ModuleType:
    """NumPy's namespace, with `sum` and `mean` calling the ufunc reductions directly:
    np.sum and np.mean dispatch through Python first (about 1.5 and 3 µs a call, more than
    the arithmetic of a small network's bias gradient). Same results, same dtypes."""
    xp = types.ModuleType("numpy", np.__doc__)
    xp.__dict__.update({k: v for k, v in vars(np).items() if not k.startswith("__")})
    xp.__dict__.update(sum=_sum, mean=_mean)
    return xp


class NumpyBackend(Backend):
    name = "numpy"
    host_arrays = True
    modules = ("numpy",)
    xp = _namespace()
    device = "cpu"

    def __init__(self, device: str | None = None) -> None:
        if device not in (None, "cpu"):
            raise BackendUnavailableError(
                f"backend 'numpy' runs on the CPU only, not on {device!r}; for a GPU choose "
                "'cupy' or 'jax'.")

    def is_array(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    pad = library_pad

    def prepare_training(self) -> None:
        keep_freed_buffers()

    def sigmoid(self, x: Array) -> Array:
        """1 / (1 + e^-x) in four passes over one buffer instead of eight: e^-x overflows
        to inf only where σ(x) is 0 to the dtype's precision, and 1 / (1 + inf) is that 0
        exactly, so the overflow is harmless and not reported."""
        if x.dtype.kind != "f":
            return super().sigmoid(x)
        with np.errstate(over="ignore"):
            e = np.exp(np.negative(x))
        e += 1
        return np.reciprocal(e, out=e)

    def first_argmax(self, x: Array, x_max: Array) -> Array:
        """By scores: rows that hit the maximum score K, K-1, ..., 1 and the highest score
        wins, in three whole-array passes; NumPy's argmax along axis 0 walks one column at
        a time (7x slower for pooling windows).

        A column whose maximum is NaN (NaN == NaN is false, so no row hits it) gets its
        first NaN, as `argmax` gives on every backend and PyTorch's max pooling routes."""
        rows = x.shape[0]
        dtype = np.uint8 if rows < 256 else np.int32
        scores = (rows - np.arange(rows, dtype=dtype))[:, None]
        arg = rows - np.max((x == x_max) * scores, axis=0)
        missed = np.flatnonzero(arg == rows)  # (M,) pass; empty unless a maximum is NaN
        if missed.size:
            arg[missed] = np.argmax(np.isnan(x[:, missed]), axis=0)
        return arg


_MALLOC_TUNED = False
KEEP_BUFFERS_ENV = "XBACKPROP_KEEP_MALLOC"


def keep_freed_buffers() -> bool:
    """Ask glibc to keep freed large buffers for reuse instead of returning them to the OS.

    A NumPy train step allocates the same large arrays every step. By default glibc hands
    big freed blocks back to the kernel (munmap, heap trimming), and the next step takes
    them again through page faults that zero every page: about a quarter of a small CNN's
    step. Raising M_MMAP_THRESHOLD and M_TRIM_THRESHOLD (mallopt) keeps up to 512 MiB of
    freed memory in the process. Called once when a NumPy train step is made; glibc only;
    set XBACKPROP_KEEP_MALLOC=0 to leave malloc alone. Returns True if the settings took.
    """
    global _MALLOC_TUNED
    if _MALLOC_TUNED or os.environ.get(KEEP_BUFFERS_ENV, "1") == "0" or \
            not sys.platform.startswith("linux"):
        return _MALLOC_TUNED
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3  # from <malloc.h>
        ok = libc.mallopt(m_mmap_threshold, 256 << 20) == 1
        ok = libc.mallopt(m_trim_threshold, 512 << 20) == 1 and ok
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    _MALLOC_TUNED = ok
    return ok
