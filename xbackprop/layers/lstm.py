"""Long short-term memory (Hochreiter & Schmidhuber, 1997; with the forget gate of Gers et al.,
2000), in PyTorch's gate order i, f, g, o."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import Array, backend_of
from .base import Layer, Params, Shape
from .recurrent import Recurrent, previous_states, project, time_major_product


@dataclasses.dataclass(frozen=True)
class LSTM(Recurrent):
    """`x: (B, T, F) -> h: (B, T, hidden)` with, for a_t = x_t W_x + h_{t-1} W_h + b split in
    four column blocks of `hidden`, in PyTorch's order [i | f | g | o]:

        i = σ(a_i)  input gate      f = σ(a_f)  forget gate
        g = tanh(a_g)  candidate    o = σ(a_o)  output gate
        c_t = f ⊙ c_{t-1} + i ⊙ g    h_t = o ⊙ tanh(c_t)      h_0 = c_0 = 0 (or given)

    The cell c_t is a sum, not a product: dc_{t-1} = dc_t ⊙ f, so where the forget gate is
    near 1 the gradient passes many steps back undiminished (the vanilla RNN's passes
    through W_h and φ' at every step, and vanishes).

    Parameters `W_x: (F, 4·hidden)`, `W_h: (hidden, 4·hidden)`, `b: (4·hidden,)`, the
    forget block of b starting at `forget_bias` (1: remember by default, Jozefowicz et al.,
    2015; PyTorch starts it near 0). State: {"h", "c"}.

    From PyTorch's `nn.LSTM` (same gate order), one layer: `W_x = weight_ih_l0.T`,
    `W_h = weight_hh_l0.T`, `b = bias_ih_l0 + bias_hh_l0`.
    """

    forget_bias: float = 1.0

    gates = 4
    state_names = ("h", "c")

    def init_bias(self, params: Params) -> Params:
        h = self.hidden
        params["b"][h:2 * h] += self.forget_bias
        return params

    def run(self, params: Params, x: Array, state: tuple[Array, ...]
            ) -> tuple[Array, tuple[Array, ...], Any]:
        backend = backend_of(x, *params.values())
        xp, sigmoid, n = backend.xp, backend.sigmoid, self.hidden
        w_h = params["W_h"]
        a_x = project(xp, x, params["W_x"], params["b"])    # x_t W_x + b, every t at once

        def step(carry: tuple[Array, Array], a_x_t: Array) -> tuple[Any, Any]:
            h, c = carry
            a = a_x_t + h @ w_h                               # (B, 4·hidden)
            s = sigmoid(a)                 # one call for i, f and o (g's block unused)
            i, f, o = s[:, :n], s[:, n:2 * n], s[:, 3 * n:]
            g = xp.tanh(a[:, 2 * n:3 * n])
            c = f * c + i * g                                 # c_t = f ⊙ c_{t-1} + i ⊙ g
            tanh_c = xp.tanh(c)
            h = o * tanh_c                                    # h_t = o ⊙ tanh(c_t)
            return (h, c), (h, c, xp.concat([i, f, g, o], axis=1), tanh_c)

        h0, c0 = state
        (h_last, c_last), (hs, cs, gates, tanh_cs) = backend.scan(step, (h0, c0), a_x)
        return hs, (h_last, c_last), (x, h0, c0, hs, cs, gates, tanh_cs)

    def run_backward(self, params: Params, cache: Any, dhs: Array
                     ) -> tuple[Array, Params, Array]:
        x, h0, c0, hs, cs, gates, tanh_cs = cache
        backend = backend_of(dhs, hs)
        xp, n = backend.xp, self.hidden
        w_h_t = params["W_h"].T

        # Backward through time, t = T .. 1, carrying dL/dh_t and dL/dc_t from step t + 1:
        #   dh = dy_t + δ_{t+1} W_hᵀ
        #   dc = dc_{t+1 → t} + dh ⊙ o ⊙ (1 - tanh²(c_t))     (c_t feeds h_t and c_{t+1})
        #   da_o = dh ⊙ tanh(c_t) ⊙ o(1 - o)      da_i = dc ⊙ g ⊙ i(1 - i)
        #   da_f = dc ⊙ c_{t-1} ⊙ f(1 - f)        da_g = dc ⊙ i ⊙ (1 - g²)
        #   δ_t = [da_i | da_f | da_g | da_o];   to step t - 1: δ_t W_hᵀ and dc ⊙ f
        def step(carry: tuple[Array, Array], inputs: tuple[Array, ...]) -> tuple[Any, Array]:
            dh_next, dc_next = carry
            dy_t, c_prev, gates_t, tanh_c = inputs
            i, f = gates_t[:, :n], gates_t[:, n:2 * n]
            g, o = gates_t[:, 2 * n:3 * n], gates_t[:, 3 * n:]
            dh = dy_t + dh_next
            dc = dc_next + dh * o * (1 - tanh_c * tanh_c)
            delta = xp.concat([dc * g * i * (1 - i), dc * c_prev * f * (1 - f),
                               dc * i * (1 - g * g), dh * tanh_c * o * (1 - o)], axis=1)
            return (delta @ w_h_t, dc * f), (delta, dh)

        c_prevs = previous_states(xp, c0, cs)
        _, (deltas, dh_all) = backend.scan(step, (xp.zeros_like(h0), xp.zeros_like(c0)),
                                 (dhs, c_prevs, gates, tanh_cs), reverse=True)
        grads = {"W_x": time_major_product(xp, x, deltas),            # Σ_t x_tᵀ δ_t
                 "W_h": time_major_product(xp, previous_states(xp, h0, hs), deltas),
                 "b": xp.sum(deltas, axis=(0, 1))}
        return deltas, grads, dh_all                                  # δx_t = δ_t

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        # one case (each check compiles the loop on JAX); the last step alone or every
        # step by the draw (the base's code, which RNN's examples check both ways). T >= 2
        # and hidden >= 2, so W_h's gradient flows through time and a transposed one shows
        yield (cls(int(rng.integers(2, 4)), return_sequences=bool(rng.integers(0, 2))),
               (int(rng.integers(2, 5)), int(rng.integers(1, 4))))
