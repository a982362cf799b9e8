"""Flatten: `(N, d1, d2, ...) -> (N, d1·d2·...)`, between convolutional and dense layers."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of
from .base import EVAL, Context, Layer, Params, Shape


@dataclasses.dataclass(frozen=True)
class Flatten(Layer):
    """Keeps the batch axis, joins the rest (row-major, so NCHW flattens channel first)."""

    def output_shape(self, in_shape: Shape) -> Shape:
        return (int(np.prod(in_shape)),)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        return backend_of(x).xp.reshape(x, (x.shape[0], -1)), tuple(x.shape)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        return backend_of(dy).xp.reshape(dy, cache), {}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), tuple(int(s) for s in rng.integers(1, 4, size=3))
