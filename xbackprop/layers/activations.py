"""Activation layers. Each caches what its derivative needs, usually its own output."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..arguments import integer, real
from ..backends import backend_of
from .base import EVAL, Context, Layer, Params, Shape


def _any_shape(rng: np.random.Generator) -> Shape:
    return tuple(int(s) for s in rng.integers(1, 5, size=int(rng.integers(1, 3))))


class _Elementwise(Layer):
    """Shared by activations: no parameters, shape kept, checked on 1-d and 2-d inputs."""

    abstract = True
    elementwise = True  # y_i = f(x_i), each unit alone (Softmax says otherwise)

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

    def __post_init__(self) -> None:
        object.__setattr__(self, "alpha", real("LeakyReLU", "alpha", self.alpha))

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

    elementwise = False  # each output mixes every unit of its axis
    axis: int = -1

    def __post_init__(self) -> None:
        object.__setattr__(self, "axis", integer("Softmax", "axis", self.axis))

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


_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
GELU_FORMS = ("tanh", "none")


@dataclasses.dataclass(frozen=True)
class GELU(_Elementwise):
    """The Gaussian error linear unit (Hendrycks & Gimpel, 2016), y = x Φ(x), with Φ the
    standard normal distribution function: the activation of GPT and BERT.

    approximate="none", the exact form:  Φ(x) = ½ (1 + erf(x / √2)),
        dy/dx = Φ(x) + x φ(x),  φ(x) = e^(-x²/2) / √(2π)
    approximate="tanh" (the default; GPT-2's, cheaper, within 1e-3 of the exact form):
        y = ½ x (1 + tanh u),  u = √(2/π) (x + 0.044715 x³),
        dy/dx = ½ (1 + tanh u) + ½ x (1 - tanh² u) · √(2/π) (1 + 3 · 0.044715 x²)

    The names are PyTorch's (`nn.GELU(approximate=...)`). erf is a backend primitive
    (`Backend.erf`): NumPy and the Array API standard have none.
    """

    approximate: str = "tanh"

    def __post_init__(self) -> None:
        if self.approximate not in GELU_FORMS:
            raise ValueError(f"GELU: approximate is 'tanh' or 'none' (the exact erf form), not "
                             f"{self.approximate!r}")

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        backend = backend_of(x)
        if self.approximate == "tanh":
            t = backend.xp.tanh(_SQRT_2_OVER_PI * (x + 0.044715 * x * x * x))
            return 0.5 * x * (1 + t), (x, t)
        phi_cdf = 0.5 * (1 + backend.erf(x * _INV_SQRT_2))             # Φ(x)
        return x * phi_cdf, (x, phi_cdf)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        x, s = cache
        xp = backend_of(x, dy).xp
        if self.approximate == "tanh":
            t = s
            du = _SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x)
            return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du), {}
        pdf = _INV_SQRT_2PI * xp.exp(-0.5 * x * x)                      # φ(x)
        return dy * (s + x * pdf), {}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), _any_shape(rng)
        yield cls("none"), _any_shape(rng)
