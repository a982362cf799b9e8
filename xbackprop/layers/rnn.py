"""The vanilla (Elman) recurrent layer, min-char-rnn's cell: h_t = φ(x_t W_x + h_{t-1} W_h + b)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import Array, backend_of
from .base import Layer, Params, Shape
from .recurrent import Recurrent, activation, previous_states, project, time_major_product


@dataclasses.dataclass(frozen=True)
class RNN(Recurrent):
    """`x: (B, T, F) -> h: (B, T, hidden)` with

        a_t = x_t W_x + h_{t-1} W_h + b,    h_t = φ(a_t),    h_0 = 0 (or the given state)

    φ is tanh (default) or relu. Parameters `W_x: (F, hidden)`, `W_h: (hidden, hidden)`,
    `b: (hidden,)`. State: {"h"}. Options (keywords): `return_sequences`, `stateful`,
    `batch_size`, initialisers (see `Recurrent` and the module docstring of `recurrent`).

    From PyTorch's `nn.RNN` (h_t = φ(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)), one layer:
    `W_x = weight_ih_l0.T`, `W_h = weight_hh_l0.T`, `b = bias_ih_l0 + bias_hh_l0`.
    From min-char-rnn: `W_x = Wxh.T`, `W_h = Whh.T`, `b = bh[:, 0]`.
    """

    activation: str = "tanh"

    def __post_init__(self) -> None:
        super().__post_init__()
        activation(self.activation, type(self).__name__)  # a clear error for a bad name

    def run(self, params: Params, x: Array, state: tuple[Array, ...]
            ) -> tuple[Array, tuple[Array, ...], Any]:
        backend = backend_of(x, *params.values())
        xp = backend.xp
        phi, _ = activation(self.activation, "RNN")
        w_h = params["W_h"]
        a_x = project(xp, x, params["W_x"], params["b"])    # x_t W_x + b, every t at once

        def step(h: Array, a_x_t: Array) -> tuple[Array, Array]:
            h = phi(xp, a_x_t + h @ w_h)                       # h_t = φ(a_t)
            return h, h

        (h0,) = state
        h_last, hs = backend.scan(step, h0, a_x)
        return hs, (h_last,), (x, h0, hs)

    def run_backward(self, params: Params, cache: Any, dhs: Array
                     ) -> tuple[Array, Params, Array]:
        x, h0, hs = cache
        backend = backend_of(dhs, hs)
        xp = backend.xp
        _, dphi = activation(self.activation, "RNN")
        w_h_t = params["W_h"].T

        # Backward through time, t = T .. 1, carrying dL/dh_t from step t + 1:
        #   dL/dh_t = dy_t + δ_{t+1} W_hᵀ        (h_t feeds the output and the next step)
        #   δ_t = dL/da_t = dL/dh_t ⊙ φ'(a_t)    (φ' from h_t: 1 - h_t² for tanh, [h_t > 0])
        def step(dh_next: Array, inputs: tuple[Array, Array]) -> tuple[Array, Any]:
            dy_t, h_t = inputs
            dh = dy_t + dh_next
            delta = dh * dphi(xp, h_t)
            return delta @ w_h_t, (delta, dh)

        _, (deltas, dh_all) = backend.scan(step, xp.zeros_like(h0), (dhs, hs), reverse=True)
        grads = {"W_x": time_major_product(xp, x, deltas),            # Σ_t x_tᵀ δ_t
                 "W_h": time_major_product(xp, previous_states(xp, h0, hs), deltas),
                 "b": xp.sum(deltas, axis=(0, 1))}                     # Σ_t Σ_batch δ_t
        return deltas, grads, dh_all                                  # δx_t = δ_t

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        yield cls(int(rng.integers(2, 4))), (int(rng.integers(2, 5)), int(rng.integers(1, 4)))
        yield (cls(int(rng.integers(2, 4)), "relu", return_sequences=False),
               (int(rng.integers(2, 5)), int(rng.integers(1, 4))))
