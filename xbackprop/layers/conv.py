"""2-D convolution (cross-correlation, as in every deep-learning library) as a matrix product.

The input's patches are laid out as columns (im2col): `cols: (C·KH·KW, M)`, one column per
output position of every sample (M = N·OH·OW, plus junk columns the backend may add to make
its copies long; they are sliced off and get zero gradient). Then, with W₂ = W reshaped to
(F, C·KH·KW) and dy₂ = dy laid out as (F, M):

    forward:   y₂ = W₂ cols + b
    backward:  dW₂ = dy₂ colsᵀ,   db = Σ_{n,h,w} dy,   dcols = W₂ᵀ dy₂,
               dx = col2im(dcols)                  (col2im is the adjoint of im2col)

Three single large matrix products per layer. im2col and col2im are backend primitives, so
each backend can use its fastest form; the layer keeps only the patch matrix between
forward and backward.
"""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of
from ..initializers import Initializer, get_initializer
from .base import EVAL, Context, Layer, Params, Shape, describe
from .window import (
    Padding,
    check_nchw,
    check_padding,
    from_columns,
    output_hw,
    pair,
    resolve_padding,
    to_columns,
)


@dataclasses.dataclass(frozen=True)
class Conv2D(Layer):
    """`x: (N, C, H, W) -> y: (N, filters, OH, OW)`; `W: (filters, C, KH, KW)`, `b: (filters,)`.

    padding: an int, a pair (ph, pw), ((top, bottom), (left, right)), "valid" or "same".
    """

    filters: int
    kernel_size: int | tuple[int, int]
    stride: int | tuple[int, int] = 1
    padding: Padding = 0
    dilation: int | tuple[int, int] = 1
    use_bias: bool = True
    weight_init: str | Initializer = "he_normal"
    bias_init: str | Initializer = "zeros"

    def __post_init__(self) -> None:
        if isinstance(self.filters, bool) or not isinstance(self.filters, numbers.Integral) \
                or self.filters < 1:
            raise ValueError(f"Conv2D: filters must be a positive int, not {self.filters!r}")
        object.__setattr__(self, "filters", int(self.filters))
        for name in ("kernel_size", "stride", "dilation"):
            if min(pair(getattr(self, name), name)) < 1:
                raise ValueError(f"Conv2D: {name} must be positive, not {getattr(self, name)!r}")
        check_padding(self.padding)

    def _geometry(self, in_hw: tuple[int, int]):
        kernel, stride = pair(self.kernel_size, "kernel_size"), pair(self.stride, "stride")
        dilation = pair(self.dilation, "dilation")
        pads = resolve_padding(self.padding, in_hw, kernel, stride, dilation)
        return kernel, stride, dilation, pads, output_hw(in_hw, kernel, stride, dilation,
                                                          pads, self)

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        check_nchw(self, in_shape)
        c = in_shape[0]
        kh, kw = pair(self.kernel_size, "kernel_size")
        fan_in, fan_out = c * kh * kw, self.filters * kh * kw
        params = {"W": get_initializer(self.weight_init)(rng, (self.filters, c, kh, kw),
                                                         fan_in, fan_out)}
        if self.use_bias:
            params["b"] = get_initializer(self.bias_init)(rng, (self.filters,), fan_in, fan_out)
        return params

    def output_shape(self, in_shape: Shape) -> Shape:
        check_nchw(self, in_shape)
        return (self.filters, *self._geometry((in_shape[1], in_shape[2]))[-1])

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        backend = backend_of(x, *params.values())
        xp, w = backend.xp, params["W"]
        if len(x.shape) != 4 or x.shape[1] != w.shape[1]:
            raise ValueError(f"{describe(self)} expects inputs (N, {w.shape[1]}, H, W), got "
                             f"{tuple(x.shape)}")
        n, f = x.shape[0], w.shape[0]
        kernel, stride, dilation, pads, (oh, ow) = self._geometry((x.shape[2], x.shape[3]))
        cols, width = backend.im2col(x, kernel, stride, dilation, pads, (oh, ow))  # (K, M)
        y = from_columns(xp, xp.reshape(w, (f, -1)) @ cols, f, n, (oh, ow), width)
        if self.use_bias:
            y = y + xp.reshape(params["b"], (1, f, 1, 1))
        return y, (cols, tuple(x.shape), pads, (oh, ow), width)           # (N, F, OH, OW)

    def param_grads(self, params: Params, cache: Any, dy: Any) -> Params:
        backend = backend_of(cache[0], dy)
        dy2 = to_columns(backend, dy, cache[4])
        return self._param_grads(backend.xp, params, cache[0], dy2, dy)

    def _param_grads(self, xp: Any, params: Params, cols: Any, dy2: Any, dy: Any) -> Params:
        grads = {"W": xp.reshape(dy2 @ cols.T, params["W"].shape)}        # dW₂ = dy₂ colsᵀ
        if self.use_bias:
            grads["b"] = xp.sum(dy, axis=(0, 2, 3))
        return grads

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        cols, x_shape, pads, out_hw, width = cache
        backend = backend_of(cols, dy)
        xp, w = backend.xp, params["W"]
        dy2 = to_columns(backend, dy, width)
        dcols = xp.reshape(w, (w.shape[0], -1)).T @ dy2                    # dcols = W₂ᵀ dy₂
        kernel, stride, dilation = (pair(self.kernel_size, "kernel_size"),
                                    pair(self.stride, "stride"), pair(self.dilation, "dilation"))
        dx = backend.col2im(dcols, x_shape, kernel, stride, dilation, pads, out_hw, width)
        return dx, self._param_grads(xp, params, cols, dy2, dy)

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        c, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 8)), int(rng.integers(4, 7))
        yield cls(int(rng.integers(1, 4)), 3, padding=1), (c, h, w)
        yield cls(2, (2, 3), stride=2, padding="valid"), (c, h, w)
        yield cls(3, 3, stride=2, padding="same", use_bias=False), (c, h, w)
        yield cls(2, (3, 2), stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1)), (c, h, w)
        yield cls(1, 1), (c, h, w)
