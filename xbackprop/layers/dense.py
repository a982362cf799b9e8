"""Dense (fully connected) layer: y = x W + b."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of
from ..initializers import Initializer, get_initializer
from .base import EVAL, Context, Layer, Params, Shape, check_input, describe


@dataclasses.dataclass(frozen=True)
class Dense(Layer):
    """`x: (N, F_in) -> y: (N, units)`, with `W: (F_in, units)` and `b: (units,)`.

    `W[i, j]` is the weight from input i to output j.
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
        return (self.units,)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        _check_weights(self, params, x)
        backend_of(x, *params.values())  # one backend for input and weights
        y = x @ params["W"]
        if self.use_bias:
            y = y + params["b"]
        return y, x

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        return dy @ params["W"].T, self.param_grads(params, cache, dy)   # dL/dx = dy W^T

    def param_grads(self, params: Params, cache: Any, dy: Any) -> Params:
        x = cache
        grads = {"W": x.T @ dy}                            # dL/dW = x^T dy
        if self.use_bias:
            grads["b"] = backend_of(x, dy).xp.sum(dy, axis=0)  # dL/db = Σ_batch dy
        return grads

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(int(rng.integers(1, 6))), (int(rng.integers(1, 6)),)
        yield cls(int(rng.integers(1, 6)), use_bias=False), (int(rng.integers(1, 6)),)


def _check_weights(layer: Dense, params: Params, x: Any) -> None:
    """W must be (F_in, units) for x: (N, F_in); say which of the two is wrong, and that W is
    transposed when it is (units, F_in), the other common orientation (PyTorch's)."""
    w = tuple(params["W"].shape)
    features = tuple(x.shape[1:])
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
    check_input(layer, x, (w[0],))


def _features(layer: Layer, in_shape: Shape) -> Shape:
    if len(in_shape) == 0:
        raise ValueError(f"{describe(layer)} takes inputs of shape (N, features); these have no "
                         "feature axis (one number per sample? reshape x to (N, 1))")
    if len(in_shape) != 1:
        raise ValueError(f"{describe(layer)} takes inputs of shape (N, features), not (N, "
                         f"{', '.join(map(str, in_shape))}); put a Flatten() before it.")
    return tuple(in_shape)
