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
from .base import EVAL, Context, Layer, Params, Shape, describe
from .window import Padding, check_nchw, check_padding, output_hw, pair, resolve_padding


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
                raise ValueError(f"{describe(self)}: padding {pads} is more than half the window "
                                 f"{kernel}, so some windows would hold only padding")
        return kernel, stride, pads, output_hw(in_hw, kernel, stride, (1, 1), pads, self)

    def output_shape(self, in_shape: Shape) -> Shape:
        check_nchw(self, in_shape)
        return (in_shape[0], *self._geometry((in_shape[1], in_shape[2]))[-1])

    def _windows(self, x: Any, pad_value: float) -> tuple[Backend, Any, tuple]:
        """`(backend, windows, geometry)` for `x: (N, C, H, W)`; `windows: (KH·KW, M)` holds
        one window per column, M = N·C·OH·width (see Backend.im2col)."""
        backend = backend_of(x)
        xp = backend.xp
        if len(x.shape) != 4:
            raise ValueError(f"{describe(self)} expects NCHW inputs, got shape "
                             f"{tuple(x.shape)}")
        n, c, h, w = x.shape
        kernel, stride, pads, out_hw = self._geometry((h, w))
        # every (sample, channel) plane on its own, sample-major, so a batch split over
        # devices stays split (channel-major planes, C·N, interleave the devices' samples,
        # and XLA would gather the whole batch onto every device to pool it)
        planes = xp.reshape(x, (n * c, 1, h, w))
        cols, width = backend.im2col(planes, kernel, stride, (1, 1), pads, out_hw, pad_value)
        return backend, cols, (tuple(x.shape), kernel, stride, pads, out_hw, width)

    @staticmethod
    def _to_output(xp: Any, values: Any, geometry: tuple) -> Any:
        """Per-window values `(M,)` as `(N, C, OH, OW)`, junk columns dropped."""
        (n, c, _, _), _, _, _, (oh, ow), width = geometry
        return xp.reshape(values, (n, c, oh, width))[:, :, :, :ow]

    @staticmethod
    def _from_output(backend: Backend, dy: Any, geometry: tuple) -> Any:
        """The adjoint layout: dy `(N, C, OH, OW)` as `(M,)`, zero in junk columns."""
        width = geometry[-1]
        if width > dy.shape[3]:
            dy = backend.pad(dy, ((0, 0), (0, 0), (0, 0), (0, width - dy.shape[3])))
        return backend.xp.reshape(dy, (-1,))

    def _unwindow(self, backend: Backend, dcols: Any, geometry: tuple) -> Any:
        """The adjoint of `_windows`: window gradients summed back into dL/dx."""
        (n, c, h, w), kernel, stride, pads, out_hw, width = geometry
        xp = backend.xp
        dx = backend.col2im(dcols, (n * c, 1, h, w), kernel, stride, (1, 1), pads, out_hw,
                            width)
        return xp.reshape(dx, (n, c, h, w))

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
        best = xp.max(cols, axis=0)                          # (M,)
        arg = backend.first_argmax(cols, best)               # (M,) row of each window's max
        return self._to_output(xp, best, geometry), (arg, cols.shape[0], geometry)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        arg, window, geometry = cache
        backend = backend_of(arg, dy)
        # each window's dy goes to its arg-max row, zero to the rest: (KH·KW, M)
        dcols = backend.scatter_rows(arg, self._from_output(backend, dy, geometry), window)
        return self._unwindow(backend, dcols, geometry), {}


@dataclasses.dataclass(frozen=True)
class AvgPool2D(_Pool2D):
    """`y = mean over each window`, padding counted as zeros (PyTorch's count_include_pad);
    each input in a window gets dy / (KH·KW)."""

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        backend, cols, geometry = self._windows(x, 0.0)
        xp = backend.xp
        return self._to_output(xp, xp.mean(cols, axis=0), geometry), (cols.shape[0], geometry)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        window, geometry = cache
        backend = backend_of(dy)
        xp = backend.xp
        share = self._from_output(backend, dy, geometry) / window
        dcols = xp.ones((window, 1), dtype=dy.dtype) * share[None, :]
        return self._unwindow(backend, dcols, geometry), {}


@dataclasses.dataclass(frozen=True)
class GlobalAvgPool2D(Layer):
    """`x: (N, C, H, W) -> y: (N, C)`, the mean over H and W; dx = dy / (H·W) everywhere."""

    def output_shape(self, in_shape: Shape) -> Shape:
        check_nchw(self, in_shape)
        return (in_shape[0],)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        if len(x.shape) != 4:
            raise ValueError(f"{describe(self)} expects NCHW inputs, got shape {tuple(x.shape)}")
        return backend_of(x).xp.mean(x, axis=(2, 3)), tuple(x.shape)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        _, _, h, w = cache
        xp = backend_of(dy).xp
        return xp.ones((1, 1, h, w), dtype=dy.dtype) * (dy[:, :, None, None] / (h * w)), {}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), (int(rng.integers(1, 4)), int(rng.integers(1, 5)), int(rng.integers(1, 5)))
