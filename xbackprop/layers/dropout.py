"""Dropout (Srivastava et al., 2014), inverted: scale at train time, identity at eval time."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..arguments import real
from ..backends import backend_of
from ..random import bernoulli
from .base import EVAL, Context, Layer, Params, Shape


@dataclasses.dataclass(frozen=True)
class Dropout(Layer):
    """Train mode: each element is zeroed with probability `rate` and the survivors scaled by
    1 / (1 - rate), so expectations match eval mode, where the layer is the identity.

    The mask is drawn from `ctx.key` with xbackprop's counter-based generator, so one key
    gives the same mask on NumPy, CuPy and JAX. dL/dx = mask · dy / (1 - rate).
    """

    rate: float = 0.5
    stochastic = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "rate", real("Dropout", "rate", self.rate, 0.0, 1.0,
                                              high_open=True))

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        if not ctx.train or self.rate == 0.0:
            return x, None
        keep = bernoulli(ctx.require_key(self), 1.0 - self.rate, tuple(x.shape))
        scale = backend_of(x).xp.astype(keep, x.dtype) * (1.0 / (1.0 - self.rate))
        return x * scale, scale

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        return (dy if cache is None else dy * cache), {}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(float(rng.uniform(0.1, 0.7))), tuple(int(s) for s in rng.integers(1, 6, size=2))
