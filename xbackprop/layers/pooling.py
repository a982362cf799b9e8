"""Pooling over NCHW windows: max, average, and global average.

Windows are read with the backend's im2col on every channel separately, so overlapping
windows (kernel 3, stride 2) and windows that do not tile the input (the last rows and
columns that no full window covers are dropped, as in PyTorch) need no special case.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import Backend, backend_of
from .base import EVAL, Context, Layer, Params, Shape
from .window import Padding, check_nchw, check_padding, crop_nchw, output_hw, pad_nchw, pair, \
    resolve_padding


@dataclasses.dataclass(frozen=True)
class _Pool2D(Layer):
    """Shared by MaxPool2D and AvgPool2D: window geometry and patch extraction."""

    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] | None = None  # default: the kernel size
    padding: Padding = 0

    abstract = True

    def __post_init__(self) -> None:
        if min(pair(self.kernel_size, "kernel_size")) < 1 or min(self._stride()) < 1:
            raise ValueError(f"{type(self).__name__}: kernel_size and stride must be positive")
        check_padding(self.padding)

    def _stride(self) -> tuple[int, int]:
        return pair(self.kernel_size if self.stride is None else self.stride, "stride")

    def _geometry(self, in_hw: tuple[int, int]):
        kernel, stride = pair(self.kernel_size, "kernel_size"), self._stride()
        pads = resolve_padding(self.padding, in_hw, kernel, stride)
        for (before, after), k in zip(pads, kernel):
            if max(before, after) > k // 2:
                raise ValueError(f"{self!r}: padding {pads} is more than half the window "
                                 f"{kernel}, so some windows would hold only padding")
        return kernel, stride, pads, output_hw(in_hw, kernel, stride, (1, 1), pads, self)

    def output_shape(self, in_shape: Shape) -> Shape:
        check_nchw(self, in_shape)
        return (in_shape[0], *self._geometry((in_shape[1], in_shape[2]))[-1])

    def _windows(self, x: Any, pad_value: float) -> tuple[Backend, Any, tuple]:
        """`(backend, windows: (N·C, KH·KW, OH·OW), geometry)` for `x: (N, C, H, W)`."""
        backend = backend_of(x)
        xp = backend.xp
        if len(x.shape) != 4:
            raise ValueError(f"{self!r} expects NCHW inputs, got shape {tuple(x.shape)}")
        n, c = x.shape[0], x.shape[1]
        kernel, stride, pads, out_hw = self._geometry((x.shape[2], x.shape[3]))
        padded = pad_nchw(xp, x, pads, pad_value)
        hp, wp = padded.shape[2], padded.shape[3]
        cols = backend.im2col(xp.reshape(padded, (n * c, 1, hp, wp)), kernel, stride, (1, 1),
                              out_hw)
        return backend, cols, (n, c, hp, wp, kernel, stride, pads, out_hw)

    def _unwindow(self, backend: Backend, dcols: Any, geometry: tuple) -> Any:
        """The adjoint of `_windows`: window gradients summed back into dL/dx."""
        n, c, hp, wp, kernel, stride, pads, out_hw = geometry
        dx = backend.col2im(dcols, (n * c, 1, hp, wp), kernel, stride, (1, 1), out_hw)
        return crop_nchw(backend.xp.reshape(dx, (n, c, hp, wp)), pads)

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        c, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 9)), int(rng.integers(4, 8))
        yield cls(2), (c, h, w)                       # tiles, or drops the odd last row/col
        yield cls(3, stride=2), (c, h, w)             # overlapping windows
        yield cls((2, 3), stride=(1, 2), padding=1), (c, h, w)
        yield cls(3, stride=2, padding="same"), (c, h, w)


@dataclasses.dataclass(frozen=True)
class MaxPool2D(_Pool2D):
    """`y = max over each window`; the gradient goes to one arg-max per window (the first in
    row-major order when several tie), so it is deterministic on every backend."""

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        backend, cols, geometry = self._windows(x, -np.inf)  # padding never wins
        xp = backend.xp
        arg = xp.argmax(cols, axis=1)                       # (N·C, P)
        y = xp.max(cols, axis=1)
        n, c, _, _, _, _, _, (oh, ow) = geometry
        return xp.reshape(y, (n, c, oh, ow)), (arg, cols.shape[1], geometry)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        arg, window, geometry = cache
        backend = backend_of(arg, dy)
        xp = backend.xp
        n, c = dy.shape[0], dy.shape[1]
        routed = arg[:, None, :] == xp.arange(window)[None, :, None]   # one-hot arg-max
        dcols = routed * xp.reshape(dy, (n * c, 1, -1))
        return self._unwindow(backend, dcols, geometry), {}


@dataclasses.dataclass(frozen=True)
class AvgPool2D(_Pool2D):
    """`y = mean over each window`, padding counted as zeros (PyTorch's count_include_pad);
    each input in a window gets dy / (KH·KW)."""

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        backend, cols, geometry = self._windows(x, 0.0)
        xp = backend.xp
        n, c, _, _, _, _, _, (oh, ow) = geometry
        return xp.reshape(xp.mean(cols, axis=1), (n, c, oh, ow)), (cols.shape[1], geometry)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        window, geometry = cache
        backend = backend_of(dy)
        xp = backend.xp
        n, c = dy.shape[0], dy.shape[1]
        share = xp.reshape(dy, (n * c, 1, -1)) / window
        dcols = xp.ones((1, window, 1), dtype=dy.dtype) * share
        return self._unwindow(backend, dcols, geometry), {}


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool2D(Layer):
    """`x: (N, C, H, W) -> y: (N, C)`, the mean over H and W; dx = dy / (H·W) everywhere."""

    def output_shape(self, in_shape: Shape) -> Shape:
        check_nchw(self, in_shape)
        return (in_shape[0],)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        if len(x.shape) != 4:
            raise ValueError(f"{self!r} expects NCHW inputs, got shape {tuple(x.shape)}")
        return backend_of(x).xp.mean(x, axis=(2, 3)), tuple(x.shape)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        n, c, h, w = cache
        xp = backend_of(dy).xp
        return xp.ones((1, 1, h, w), dtype=dy.dtype) * (dy[:, :, None, None] / (h * w)), {}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), (int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
