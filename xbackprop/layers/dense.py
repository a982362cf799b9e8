"""Dense (fully connected) layer: y = x W + b, on the last axis of inputs of any rank."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of
from ..initializers import Initializer, get_initializer
from .base import EVAL, Context, Layer, Params, Shape, describe


@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """`x: (..., F_in) -> y: (..., units)`, with `W: (F_in, units)` and `b: (units,)`.

    `W[i, j]` is the weight from input i to output j. Leading axes are batch-like: a
    sequence `x: (B, T, C)` is projected token by token, as the rows of `(B·T, C)`, so the
    weight gradient sums over every leading axis. (Images `(N, C, H, W)` want a Flatten()
    first: on them, Dense would act on the W axis alone.)
    """

    units: int
    use_bias: bool = True
    weight_init: str | Initializer = "glorot_uniform"
    bias_init: str | Initializer = "zeros"

    def __post_init__(self) -> None:
        if isinstance(self.units, bool) or not isinstance(self.units, numbers.Integral) \
                or self.units < 1:
            raise ValueError(f"Dense: units is the number of outputs, a positive int, not "
                             f"{self.units!r}")
        object.__setattr__(self, "units", int(self.units))  # np.int64(3) -> 3: plain JSON

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        (fan_in,) = _features(self, in_shape)
        params = {"W": get_initializer(self.weight_init)(rng, (fan_in, self.units),
                                                         fan_in, self.units)}
        if self.use_bias:
            params["b"] = get_initializer(self.bias_init)(rng, (self.units,), fan_in, self.units)
        return params

    def output_shape(self, in_shape: Shape) -> Shape:
        _features(self, in_shape)
        return (*in_shape[:-1], self.units)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        _check_weights(self, params, x)
        xp = backend_of(x, *params.values()).xp  # one backend for input and weights
        rows = _rows(xp, x)                       # (..., F_in) as (M, F_in): one product
        y = rows @ params["W"]
        if self.use_bias:
            y = y + params["b"]
        return _unrows(xp, y, x.shape), rows

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        xp = backend_of(dy).xp
        dx = _rows(xp, dy) @ params["W"].T                 # dL/dx = dy W^T
        return _unrows(xp, dx, dy.shape), self.param_grads(params, cache, dy)

    def param_grads(self, params: Params, cache: Any, dy: Any) -> Params:
        rows = cache
        xp = backend_of(rows, dy).xp
        dy = _rows(xp, dy)
        grads = {"W": rows.T @ dy}                         # dL/dW = x^T dy, over all rows
        if self.use_bias:
            grads["b"] = xp.sum(dy, axis=0)                # dL/db = Σ_rows dy
        return grads

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(int(rng.integers(1, 6))), (int(rng.integers(1, 6)),)
        yield cls(int(rng.integers(1, 6)), use_bias=False), (int(rng.integers(1, 6)),)
        yield cls(int(rng.integers(1, 5))), (int(rng.integers(1, 4)), int(rng.integers(1, 5)))


def _rows(xp: Any, a: Any) -> Any:
    """`a: (..., F)` as a matrix `(M, F)` of its last-axis vectors (a view when contiguous)."""
    return a if len(a.shape) == 2 else xp.reshape(a, (-1, a.shape[-1]))


def _unrows(xp: Any, rows: Any, shape: tuple) -> Any:
    """`rows: (M, F')` back to the leading axes of `shape`: `(..., F')`."""
    return rows if len(shape) == 2 else xp.reshape(rows, (*shape[:-1], rows.shape[-1]))


def _check_weights(layer: Dense, params: Params, x: Any) -> None:
    """W must be (F_in, units) for x: (N, F_in); say which of the two is wrong, and that W is
    transposed when it is (units, F_in), the other common orientation (PyTorch's)."""
    w = tuple(params["W"].shape)
    if len(x.shape) < 2:
        raise ValueError(f"{describe(layer)} takes inputs of shape (N, features) (or (..., "
                         f"features)), not {tuple(x.shape)}: one sample? Use x[None]; one "
                         "number per sample? Use x[:, None]")
    features = tuple(x.shape[-1:])
    if len(w) == 2 and w[1] == layer.units and features == (w[0],):
        return
    if len(w) != 2 or w[1] != layer.units:
        if len(w) == 2 and w[0] == layer.units and features == (w[1],):
            raise ValueError(
                f"{describe(layer)}: W has shape {w}, which is (units, in_features); this layer "
                f"computes y = x W with W: (in_features, units) = {(w[1], layer.units)}. "
                "Transpose it (W.T), e.g. for weights from PyTorch's Linear.")
        raise ValueError(
            f"{describe(layer)}: W has shape {w}, but this layer has {layer.units} outputs, so "
            f"W is (in_features, {layer.units}): parameters of another architecture? Make "
            "them with xbackprop.init_params(model, seed, input_shape).")
    lead = "N" if len(x.shape) == 2 else "..."
    raise ValueError(f"{describe(layer)} expects inputs of shape ({lead}, {w[0]}), got "
                     f"{tuple(x.shape)}")


def _features(layer: Layer, in_shape: Shape) -> Shape:
    if len(in_shape) == 0:
        raise ValueError(f"{describe(layer)} takes inputs of shape (N, features); these have no "
                         "feature axis (one number per sample? reshape x to (N, 1))")
    return tuple(in_shape[-1:])
