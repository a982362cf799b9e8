"""2-D convolution (cross-correlation, as in every deep-learning library) as a matrix product.

The input's patches are laid out as columns (im2col): `cols: (N, C·KH·KW, OH·OW)`. Then

    forward:   y_n = W₂ cols_n + b                 W₂ = W reshaped to (F, C·KH·KW)
    backward:  dW₂ = Σ_n dy_n cols_nᵀ,   db = Σ_{n,h,w} dy,   dcols_n = W₂ᵀ dy_n,
               dx = col2im(dcols)                  (col2im is the adjoint of im2col)

im2col and col2im are backend primitives, so each backend can use its fastest form; the
layer keeps only the patch matrix between forward and backward.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of
from ..initializers import Initializer, get_initializer
from .base import EVAL, Context, Layer, Params, Shape
from .window import Padding, check_nchw, check_padding, crop_nchw, output_hw, pad_nchw, pair, \
    resolve_padding


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
        if not isinstance(self.filters, int) or self.filters < 1:
            raise ValueError(f"Conv2D: filters must be a positive int, not {self.filters!r}")
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
            raise ValueError(f"{self!r} expects inputs (N, {w.shape[1]}, H, W), got "
                             f"{tuple(x.shape)}")
        n = x.shape[0]
        kernel, stride, dilation, pads, (oh, ow) = self._geometry((x.shape[2], x.shape[3]))
        xp_ = pad_nchw(xp, x, pads)
        cols = backend.im2col(xp_, kernel, stride, dilation, (oh, ow))   # (N, K, P)
        w2 = xp.reshape(w, (w.shape[0], -1))                              # (F, K)
        y = w2 @ cols                                                      # (N, F, P)
        if self.use_bias:
            y = y + params["b"][:, None]
        cache = (cols, tuple(xp_.shape), pads, (oh, ow))
        return xp.reshape(y, (n, w.shape[0], oh, ow)), cache

    def param_grads(self, params: Params, cache: Any, dy: Any) -> Params:
        cols = cache[0]
        xp = backend_of(cols, dy).xp
        n, f = dy.shape[0], dy.shape[1]
        dy2 = xp.reshape(dy, (n, f, -1))                                   # (N, F, P)
        dw2 = xp.sum(dy2 @ xp.transpose(cols, (0, 2, 1)), axis=0)         # Σ_n dy_n cols_nᵀ
        grads = {"W": xp.reshape(dw2, params["W"].shape)}
        if self.use_bias:
            grads["b"] = xp.sum(dy2, axis=(0, 2))
        return grads

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        cols, padded_shape, pads, out_hw = cache
        backend = backend_of(cols, dy)
        xp, w = backend.xp, params["W"]
        n, f = dy.shape[0], dy.shape[1]
        dcols = xp.reshape(w, (f, -1)).T @ xp.reshape(dy, (n, f, -1))     # (N, K, P)
        kernel, stride, dilation = (pair(self.kernel_size, "kernel_size"),
                                    pair(self.stride, "stride"), pair(self.dilation, "dilation"))
        dx = backend.col2im(dcols, padded_shape, kernel, stride, dilation, out_hw)
        return crop_nchw(dx, pads), self.param_grads(params, cache, dy)

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        c, h, w = int(rng.integers(1, 4)), int(rng.integers(5, 8)), int(rng.integers(4, 7))
        yield cls(int(rng.integers(1, 4)), 3, padding=1), (c, h, w)
        yield cls(2, (2, 3), stride=2, padding="valid"), (c, h, w)
        yield cls(3, 3, stride=2, padding="same", use_bias=False), (c, h, w)
        yield cls(2, (3, 2), stride=(1, 2), padding=((1, 0), (2, 1)), dilation=(2, 1)), (c, h, w)
        yield cls(1, 1), (c, h, w)
