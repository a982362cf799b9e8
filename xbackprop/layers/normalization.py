"""Normalisation layers: BatchNorm (Ioffe & Szegedy, 2015) over the batch, for `(N, F)` and
`(N, C, H, W)` inputs, and LayerNorm (Ba et al., 2016) over each sample's last axis."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..arguments import real
from ..backends import backend_of
from .base import EVAL, Context, Layer, Params, Shape, describe


@dataclasses.dataclass(frozen=True)
class BatchNorm(Layer):
    """Normalise each feature (axis 1: features of (N, F), channels of (N, C, H, W)) over the
    batch (and H, W), then scale by γ and shift by β.

    Train mode uses the batch statistics and updates the running ones,
    `running = momentum · running + (1 - momentum) · batch` (the variance unbiased, as
    PyTorch); eval mode uses the running statistics. State: {"mean", "var"}.

    Backward in train mode, with x̂ = (x - μ) / σ, m items per feature, g = dy · γ:
        dx = (g - mean(g) - x̂ · mean(g · x̂)) / σ,   dγ = Σ dy · x̂,   dβ = Σ dy

    With `ctx.mask` (padded batches), the statistics and the means above run over the real
    samples only; padded outputs are treated as unused (their dy is dropped) and padded
    inputs get no gradient.
    """

    momentum: float = 0.9
    eps: float = 1e-5

    def __post_init__(self) -> None:
        object.__setattr__(self, "momentum", real("BatchNorm", "momentum", self.momentum, 0.0,
                                                  1.0, high_open=True))
        object.__setattr__(self, "eps", real("BatchNorm", "eps", self.eps, 0.0, low_open=True))

    @staticmethod
    def _check(layer: BatchNorm, in_shape: Shape) -> int:
        if len(in_shape) not in (1, 3):
            raise ValueError(f"{describe(layer)} takes (N, F) or (N, C, H, W) inputs, not "
                             f"per-sample shape {tuple(in_shape)}")
        return in_shape[0]

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        c = self._check(self, in_shape)
        return {"gamma": np.ones(c), "beta": np.zeros(c)}

    def init_state(self, in_shape: Shape) -> Any:
        c = self._check(self, in_shape)
        return {"mean": np.zeros(c), "var": np.ones(c)}

    def output_shape(self, in_shape: Shape) -> Shape:
        self._check(self, in_shape)
        return tuple(in_shape)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        xp = backend_of(x, *params.values()).xp
        axes = (0,) if len(x.shape) == 2 else (0, 2, 3)
        shape = (1, -1) if len(x.shape) == 2 else (1, -1, 1, 1)   # broadcast per feature

        def per_feature(v: Any) -> Any:
            return xp.reshape(v, shape)

        w = None
        if ctx.train:
            per_sample = math.prod(x.shape) // (x.shape[0] * x.shape[1])   # H·W, or 1
            if ctx.mask is None:
                m = x.shape[0] * per_sample                   # items per feature
                mean = xp.mean(x, axis=axes)
                var = xp.mean((x - per_feature(mean)) ** 2, axis=axes)
            else:                                             # padded samples count for 0
                w = xp.reshape(ctx.mask, (x.shape[0],) + (1,) * (len(x.shape) - 1))
                w = w if w.dtype == x.dtype else xp.astype(w, x.dtype)
                m = xp.sum(w) * per_sample
                mean = xp.sum(x * w, axis=axes) / m
                var = xp.sum((x - per_feature(mean)) ** 2 * w, axis=axes) / m
        else:
            if ctx.state is None:
                raise ValueError(f"{describe(self)} in eval mode needs its running statistics in "
                                 "ctx.state (see xbackprop.init_state)")
            mean, var = ctx.state["mean"], ctx.state["var"]
        inv_std = 1.0 / xp.sqrt(per_feature(var) + self.eps)
        x_hat = (x - per_feature(mean)) * inv_std
        y = per_feature(params["gamma"]) * x_hat + per_feature(params["beta"])
        stats = (mean, var, m, w) if ctx.train else None
        return y, (x_hat, inv_std, axes, stats)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        x_hat, inv_std, axes, stats = cache
        xp = backend_of(x_hat, dy).xp
        w = None if stats is None else stats[3]
        if w is not None:
            dy = dy * w  # padded outputs are ignored downstream: no gradient flows from them
        grads = {"gamma": xp.sum(dy * x_hat, axis=axes), "beta": xp.sum(dy, axis=axes)}
        shape = (1, -1) if len(dy.shape) == 2 else (1, -1, 1, 1)
        g = dy * xp.reshape(params["gamma"], shape)
        if stats is None:                     # eval: statistics are constants
            return g * inv_std, grads
        m = stats[2]
        if w is None:
            return (g - xp.mean(g, axis=axes, keepdims=True)
                    - x_hat * xp.mean(g * x_hat, axis=axes, keepdims=True)) * inv_std, grads
        # the same with means over the real samples only; padded samples get no gradient
        mean_g = xp.sum(g * w, axis=axes, keepdims=True) / m
        mean_gx = xp.sum(g * x_hat * w, axis=axes, keepdims=True) / m
        return (g - mean_g - x_hat * mean_gx) * inv_std * w, grads

    def next_state(self, state: Any, cache: Any) -> Any:
        stats = cache[3]
        if stats is None:
            return state
        mean, var, m, _ = stats
        bessel = m / max(m - 1, 1) if isinstance(m, int) else m / backend_of(var).xp.clip(
            m - 1, 1.0, None)
        unbiased = var * bessel
        keep = self.momentum
        return {"mean": keep * state["mean"] + (1 - keep) * mean,
                "var": keep * state["var"] + (1 - keep) * unbiased}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), (int(rng.integers(1, 5)),)
        yield cls(momentum=0.5), (int(rng.integers(1, 4)), int(rng.integers(1, 4)),
                                  int(rng.integers(1, 4)))


@dataclasses.dataclass(frozen=True)
class LayerNorm(Layer):
    """Normalise each sample's last axis (each token's features), then scale by γ and
    shift by β (Ba et al., 2016): with μ, σ² the mean and variance over the last axis,

        x̂ = (x - μ) / √(σ² + ε),   y = γ ⊙ x̂ + β

    Unlike BatchNorm it never mixes samples, so train and eval mode are the same and it
    needs no running statistics. Backward, with g = dy ⊙ γ and means over the last axis:

        dx = (g - mean(g) - x̂ ⊙ mean(g ⊙ x̂)) / √(σ² + ε),   dγ = Σ dy ⊙ x̂,   dβ = Σ dy

    (the sums over every leading axis). `scale=False` / `shift=False` leave out γ / β.
    """

    eps: float = 1e-5
    scale: bool = True
    shift: bool = True

    def __post_init__(self) -> None:
        if not self.eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive, not {self.eps!r}")

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        c = self._features(in_shape)
        params = {}
        if self.scale:
            params["gamma"] = np.ones(c)
        if self.shift:
            params["beta"] = np.zeros(c)
        return params

    def _features(self, in_shape: Shape) -> int:
        if len(in_shape) == 0:
            raise ValueError(f"{describe(self)} normalises the last axis of (N, ..., features) "
                             "inputs; these have one number per sample")
        return in_shape[-1]

    def output_shape(self, in_shape: Shape) -> Shape:
        self._features(in_shape)
        return tuple(in_shape)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        xp = backend_of(x, *params.values()).xp
        mean = xp.mean(x, axis=-1, keepdims=True)
        centred = x - mean
        var = xp.mean(centred * centred, axis=-1, keepdims=True)
        inv_std = 1.0 / xp.sqrt(var + self.eps)                  # 1 / √(σ² + ε)
        x_hat = centred * inv_std
        y = x_hat
        if self.scale:
            y = y * params["gamma"]
        if self.shift:
            y = y + params["beta"]
        return y, (x_hat, inv_std)

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        x_hat, inv_std = cache
        xp = backend_of(x_hat, dy).xp
        leading = tuple(range(len(dy.shape) - 1))                # every axis but the last
        grads = {}
        if self.scale:
            grads["gamma"] = xp.sum(dy * x_hat, axis=leading)   # dγ = Σ dy ⊙ x̂
        if self.shift:
            grads["beta"] = xp.sum(dy, axis=leading)            # dβ = Σ dy
        g = dy * params["gamma"] if self.scale else dy
        dx = (g - xp.mean(g, axis=-1, keepdims=True)
              - x_hat * xp.mean(g * x_hat, axis=-1, keepdims=True)) * inv_std
        return dx, grads

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(), (int(rng.integers(2, 6)),)
        yield cls(eps=1e-3), (int(rng.integers(1, 4)), int(rng.integers(2, 5)))
        yield cls(scale=False, shift=False), (int(rng.integers(2, 5)),)
