"""Causal self-attention (Vaswani et al., 2017; GPT's, as in nanoGPT), forward and backward
by hand.

Every position t of a sequence x: (B, T, C) asks a question (its query q_t), every position
s offers an answer key k_s and a value v_s; t takes the values of the positions s ≤ t (the
past: the causal mask), each weighted by how well its key matches t's query. With H heads
of D = C / H features each, side by side:

    forward                                              backward (dy: (B, T, C) arrives)
    q|k|v = x W_qkv + b_qkv    (B, T, 3C), split         dW_qkv = xᵀ d(q|k|v),  dx = d(q|k|v) W_qkvᵀ
          into heads: q, k, v  (B, H, T, D)
    S = q kᵀ / √D              (B, H, T, T) scores       dq = dS k / √D,  dk = dSᵀ q / √D
    S[t, s] = -∞ for s > t     (the future is masked)    (masked entries: P = 0, so dS = 0)
    P = softmax(S) over s      each row sums to 1        dS = P ⊙ (dP - Σ_s dP ⊙ P)   (softmax)
    P̃ = dropout(P)            (train mode only)         dP = dP̃ ⊙ mask / (1 - rate)
    o = P̃ v                   (B, H, T, D)              dP̃ = do vᵀ,  dv = P̃ᵀ do
    y = o W_out + b_out        heads joined: (B, T, C)   dW_out = oᵀ dy,  do = dy W_outᵀ

The softmax's backward is the one step that is not a product rule: softmax couples every
entry of a row, and its Jacobian ∂P_s/∂S_r = P_s (δ_sr - P_r) applied to dP is the line
above. The caches keep x, q, k, v, P (and the dropout mask) and o: (B, H, T, T) for P is
the memory attention costs.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of
from ..initializers import Initializer, get_initializer
from ..random import bernoulli
from .base import EVAL, Context, Layer, Params, Shape, describe


@dataclasses.dataclass(frozen=True)
class CausalSelfAttention(Layer):
    """Multi-head causal self-attention on `x: (B, T, C)` -> `(B, T, C)`, `C = heads · D`.

    Parameters: `W_qkv: (C, 3C)` (queries, keys and values in one product; columns
    [0, C) are q, [C, 2C) k, [2C, 3C) v, each split into `heads` blocks of D), `W_out:
    (C, C)`, and with `use_bias` `b_qkv: (3C,)`, `b_out: (C,)`. `dropout`: the rate at
    which attention weights are dropped in train mode (nanoGPT's attn_dropout).
    """

    heads: int
    dropout: float = 0.0
    use_bias: bool = True
    weight_init: str | Initializer = "small_normal"

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        """Draws dropout masks in train mode (needs `ctx.key`) when dropout > 0."""
        return self.dropout > 0

    def __post_init__(self) -> None:
        if not isinstance(self.heads, (int, np.integer)) or isinstance(self.heads, bool) \
                or self.heads < 1:
            raise ValueError(f"CausalSelfAttention: heads is a positive int, not {self.heads!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"CausalSelfAttention: dropout is a rate in [0, 1), not "
                             f"{self.dropout!r}")

    def _width(self, in_shape: Shape) -> int:
        if len(in_shape) != 2:
            raise ValueError(f"{describe(self)} takes sequences x: (B, T, C), not (B, "
                             f"{', '.join(map(str, in_shape))})")
        c = in_shape[1]
        if c % self.heads:
            fits = [h for h in range(1, c + 1) if c % h == 0]
            raise ValueError(
                f"{describe(self)}: {self.heads} heads do not divide the width {c} (each head "
                f"takes C / heads features): choose heads among {fits}, or a width that is a "
                f"multiple of {self.heads}")
        return c

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        c = self._width(in_shape)
        init = get_initializer(self.weight_init)
        params = {"W_qkv": init(rng, (c, 3 * c), c, 3 * c), "W_out": init(rng, (c, c), c, c)}
        if self.use_bias:
            params["b_qkv"] = np.zeros(3 * c)
            params["b_out"] = np.zeros(c)
        return params

    def output_shape(self, in_shape: Shape) -> Shape:
        self._width(in_shape)
        return tuple(in_shape)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        xp = backend_of(x, *params.values()).xp
        if len(x.shape) != 3:
            raise ValueError(f"{describe(self)} takes sequences x: (B, T, C), not "
                             f"{tuple(x.shape)}")
        b, t, c = x.shape
        self._width((t, c))
        h, d = self.heads, c // self.heads
        rows = xp.reshape(x, (b * t, c))
        qkv = rows @ params["W_qkv"]                                   # (B·T, 3C)
        if self.use_bias:
            qkv = qkv + params["b_qkv"]
        # (B·T, 3C) -> (3, B, H, T, D): q, k, v, each split into heads
        qkv = xp.permute_dims(xp.reshape(qkv, (b, t, 3, h, d)), (2, 0, 3, 1, 4))
        q, k, v = qkv[0, ...], qkv[1, ...], qkv[2, ...]
        q = q * (1.0 / math.sqrt(d))                  # scaled here: (T, D) is less than (T, T)
        s = q @ xp.matrix_transpose(k)                                 # (B, H, T, T)
        s = xp.where(causal_mask(xp, t), s, xp.asarray(-math.inf, dtype=s.dtype))  # no peeking
        e = xp.exp(s - xp.max(s, axis=-1, keepdims=True))             # (the diagonal is
        p = e * (1.0 / xp.sum(e, axis=-1, keepdims=True))              #  never masked)
        keep = None
        if ctx.train and self.dropout > 0:
            mask = bernoulli(ctx.require_key(self), 1.0 - self.dropout, tuple(p.shape))
            keep = xp.astype(mask, p.dtype) * (1.0 / (1.0 - self.dropout))
            p_used = p * keep
        else:
            p_used = p
        o = p_used @ v                                                 # (B, H, T, D)
        o = xp.reshape(xp.permute_dims(o, (0, 2, 1, 3)), (b * t, c))  # heads side by side
        y = o @ params["W_out"]
        if self.use_bias:
            y = y + params["b_out"]
        return xp.reshape(y, (b, t, c)), (rows, q, k, v, p, keep, p_used, o)  # q: scaled

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        rows, q, k, v, p, keep, p_used, o = cache
        xp = backend_of(rows, dy).xp
        b, h, t, d = q.shape
        c = h * d
        dy = xp.reshape(dy, (b * t, c))
        grads = {"W_out": o.T @ dy}                                    # dW_out = oᵀ dy
        if self.use_bias:
            grads["b_out"] = xp.sum(dy, axis=0)
        do = dy @ params["W_out"].T                                    # (B·T, C)
        do = xp.permute_dims(xp.reshape(do, (b, t, h, d)), (0, 2, 1, 3))  # (B, H, T, D)
        dv = xp.matrix_transpose(p_used) @ do                          # dv = P̃ᵀ do
        dp = do @ xp.matrix_transpose(v)                               # dP̃ = do vᵀ
        if keep is not None:
            dp = dp * keep                                             # through dropout
        # softmax: dS = P ⊙ (dP - Σ_s dP ⊙ P), row by row; masked entries have P = 0
        ds = p * (dp - xp.sum(dp * p, axis=-1, keepdims=True))
        dq = (ds @ k) * (1.0 / math.sqrt(d))                           # dq = dS k / √D
        dk = xp.matrix_transpose(ds) @ q          # dk = dSᵀ q / √D (q was cached scaled)

        def heads_to_rows(a: Any) -> Any:                # (B, H, T, D) -> (B·T, C)
            return xp.reshape(xp.permute_dims(a, (0, 2, 1, 3)), (b * t, c))
        # the heads back in q|k|v's columns: (B·T, 3C)
        dqkv = xp.concat([heads_to_rows(dq), heads_to_rows(dk), heads_to_rows(dv)], axis=1)
        grads["W_qkv"] = rows.T @ dqkv                                 # dW_qkv = xᵀ dqkv
        if self.use_bias:
            grads["b_qkv"] = xp.sum(dqkv, axis=0)
        dx = dqkv @ params["W_qkv"].T                                  # dx = dqkv W_qkvᵀ
        return xp.reshape(dx, (b, t, c)), grads

    def attention_weights(self, params: Params, x: Any) -> Any:
        """The attention weights P: (B, H, T, T) of `x` (eval mode): row t of head h is how
        much position t takes from each position s ≤ t. For pictures and inspection."""
        return self.forward(params, x)[1][4]

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(2), (int(rng.integers(1, 4)), 4)
        yield cls(1, use_bias=False), (int(rng.integers(2, 4)), int(rng.integers(1, 4)))
        yield cls(2, dropout=0.3), (3, 2)


def causal_mask(xp: Any, t: int) -> Any:
    """(T, T) booleans, True where position s ≤ t (row t, column s): the past and itself."""
    positions = xp.arange(t)
    return positions[:, None] >= positions[None, :]
