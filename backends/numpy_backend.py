"""The NumPy backend: the CPU reference. NumPy only; it never imports JAX or CuPy."""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided

from . import _threads
from ._base import Array, Backend, BackendUnavailableError, Pair
from ._malloc import keep_freed_buffers
from ._patches import library_pad


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
    strided_views = True
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

    def index_add(self, target: Array, indices: Array, values: Array) -> Array:
        np.add.at(target, indices, values)  # unbuffered: repeated rows add up
        return target

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

    def strided_view(self, x: Array, shape: Sequence[int], strides: Sequence[int]
                     ) -> Array:
        x = np.ascontiguousarray(x)
        return as_strided(x, tuple(shape), tuple(s * x.itemsize for s in strides),
                          writeable=False)

    def col2im(self, cols: Array, x_shape: Sequence[int], kernel: Pair, stride: Pair,
               dilation: Pair, pads: tuple[Pair, Pair], out_hw: Pair, row_width: int
               ) -> Array:
        """Windows that do not overlap (max pooling's 2x2, stride 2) write each input pixel
        once: their taps are copied into place instead of added onto zeros, into an
        uninitialised array where they cover all of it. Otherwise the generic sum."""
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
        if (sh, sw) == (1, 1) or sh < dh * (kh - 1) + 1 or sw < dw * (kw - 1) + 1:
            return super().col2im(cols, x_shape, kernel, stride, dilation, pads, out_hw,
                                  row_width)
        n, c, h, w = x_shape
        (top, bottom), (left, right) = pads
        hp, wp = h + top + bottom, w + left + right
        tiled = (dh, dw) == (1, 1) and (sh, sw) == (kh, kw) and (oh * sh, ow * sw) == (hp, wp)
        planes = (np.empty if tiled else np.zeros)((n, c, hp, wp), dtype=cols.dtype)
        taps = cols.reshape(c, kh, kw, n, oh, ow)
        for i in range(kh):
            for j in range(kw):
                rows = slice(i * dh, i * dh + sh * (oh - 1) + 1, sh)
                columns = slice(j * dw, j * dw + sw * (ow - 1) + 1, sw)
                planes[:, :, rows, columns] = taps[:, i, j].transpose(1, 0, 2, 3)
        return planes[:, :, top:hp - bottom, left:wp - right]

    def scatter_rows(self, index: Array, values: Array, rows: int) -> Array:
        """Row by row, values · 1[index == k] written into place: the generic products
        without a (rows, M) mask, in two passes over it instead of three."""
        out = np.empty((rows, index.shape[0]), dtype=values.dtype)
        for k in range(rows):
            np.multiply(values, index == k, out=out[k])
        return out

    def fused_update(self, name: str) -> Callable | None:
        """Adam, the same bits, split across the cores (see `_adam`)."""
        return _FUSED.get(name)

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


#: the least elements a thread takes of a fused update: below this, handing work to another
#: thread costs more than it saves
GRAIN = 65536


def _adam(g: np.ndarray, b1: float, c1: float, b2: float, c2: float, step: float,
          inv_sqrt_bc2: float, eps: float, decay: float, p: np.ndarray, m: np.ndarray,
          v: np.ndarray) -> None:
    """Adam's update of `p` and its moments `m`, `v` in place: the operations of the rule in
    xbackprop/optim/rules.py in the same order (so the same bits; c1 = 1 - b1, c2 = 1 - b2,
    decay = lr · λ for AdamW), on parts of the arrays split across the cores
    (backends/_threads.py): a dozen element-wise passes that NumPy runs on one core."""
    if not all(a.flags.c_contiguous for a in (p, m, v)):
        _adam_range(g, b1, c1, b2, c2, step, inv_sqrt_bc2, eps, decay, p, m, v)
        return
    flat = [a.reshape(-1) for a in (g, p, m, v)]  # views (g: a copy if it must be)

    def part(lo: int, hi: int) -> None:
        _adam_range(flat[0][lo:hi], b1, c1, b2, c2, step, inv_sqrt_bc2, eps, decay,
                    *(x[lo:hi] for x in flat[1:]))
    _threads.split(part, flat[1].size, GRAIN)


def _adam_range(g: np.ndarray, b1: float, c1: float, b2: float, c2: float, step: float,
                inv_sqrt_bc2: float, eps: float, decay: float, p: np.ndarray, m: np.ndarray,
                v: np.ndarray) -> None:
    """The rule, op by op, as InPlaceOps runs it (xbackprop/optim/base.py, rules.py)."""
    m *= b1                                       # m <- b1 m + (1 - b1) g
    m += c1 * g
    v *= b2                                       # v <- b2 v + (1 - b2) g²
    v += c2 * (g * g)                             # (no g² kept alive: peak memory)
    delta = step * m / (np.sqrt(v) * inv_sqrt_bc2 + eps)
    if decay:
        delta = delta + decay * p                 # AdamW: decay outside the moments
    p -= delta


_FUSED: dict[str, Callable] = {"adam": _adam}
