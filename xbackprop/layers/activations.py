"""Activation layers. Each caches what its derivative needs, usually its own output."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of
from .base import EVAL, Context, Layer, Params, Shape


def _any_shape(rng: np.random.Generator) -> Shape:
    return tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 3))))


class _Elementwise(Layer):
    """Shared by activations: no parameters, shape kept, checked on 1-d and 2-d inputs."""

    abstract = True

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), _any_shape(rng)


@dataclasses.dataclass(frozen=True)
class Identity(_Elementwise):
    """y = x."""

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        return x, None

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        return dy, {}


@dataclasses.dataclass(frozen=True)
class Sigmoid(_Elementwise):
    """y = σ(x) = 1 / (1 + e^-x);  dy/dx = y (1 - y)."""

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        y = backend_of(x).sigmoid(x)   # 1 / (1 + e^-x), without overflow
        return y, y

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        y = cache
        return dy * y * (1 - y), {}


@dataclasses.dataclass(frozen=True)
class Tanh(_Elementwise):
    """y = tanh(x);  dy/dx = 1 - y²."""

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        y = backend_of(x).xp.tanh(x)
        return y, y

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        y = cache
        return dy * (1 - y * y), {}


@dataclasses.dataclass(frozen=True)
class ReLU(_Elementwise):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0 (0 at x = 0, as in PyTorch and JAX)."""

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        y = backend_of(x).xp.clip(x, 0.0, None)               # max(x, 0)
        return y, y

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        y = cache
        return backend_of(y, dy).relu_grad(y, dy), {}          # dy · 1[x > 0]


@dataclasses.dataclass(frozen=True)
class LeakyReLU(_Elementwise):
    """y = x for x > 0, else α x;  dy/dx = 1 or α."""

    alpha: float = 0.01

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        xp = backend_of(x).xp
        return xp.where(x > 0, x, self.alpha * x), x

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        x = cache
        return backend_of(x, dy).xp.where(x > 0, dy, self.alpha * dy), {}


@dataclasses.dataclass(frozen=True)
class Softmax(_Elementwise):
    """y_i = e^{x_i} / Σ_j e^{x_j} along `axis`;  dx = y ⊙ (dy - Σ_j dy_j y_j).

    For classification prefer SoftmaxCrossEntropy on logits: it is stabler and cheaper.
    """

    axis: int = -1

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        xp = backend_of(x).xp
        e = xp.exp(x - xp.max(x, axis=self.axis, keepdims=True))  # shift: no overflow
        y = e / xp.sum(e, axis=self.axis, keepdims=True)
        return y, y

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        y = cache
        xp = backend_of(y, dy).xp
        return y * (dy - xp.sum(dy * y, axis=self.axis, keepdims=True)), {}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), (int(rng.integers(1, 6)),)
        yield cls(axis=1), (int(rng.integers(1, 5)), int(rng.integers(1, 4)))
