"""Gated recurrent unit (Cho et al., 2014), as PyTorch and cuDNN compute it: gate order r, z, n,
the reset gate applied after the recurrent product."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import Array, backend_of
from .base import Layer, Params, Shape
from .recurrent import Recurrent, previous_states, project, time_major_product


@dataclasses.dataclass(frozen=True)
class GRU(Recurrent):
    """`x: (B, T, F) -> h: (B, T, hidden)` with, for u_t = x_t W_x + b_x and
    v_t = h_{t-1} W_h + b_h each split in three column blocks of `hidden`, in PyTorch's order
    [r | z | n]:

        r = σ(u_r + v_r)  reset gate        z = σ(u_z + v_z)  update gate
        n = tanh(u_n + r ⊙ v_n)  candidate   h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    h_0 = 0 (or given). Where z is near 1, h_t ≈ h_{t-1} and the gradient passes back
    undiminished, as through an LSTM's cell.

    Parameters `W_x: (F, 3·hidden)`, `W_h: (hidden, 3·hidden)`, `b_x` and `b_h`:
    (3·hidden,) each. Two biases, because b_h's n block is inside the product with r (for r
    and z only their sum matters). State: {"h"}.

    From PyTorch's `nn.GRU` (same layout), one layer: `W_x = weight_ih_l0.T`,
    `W_h = weight_hh_l0.T`, `b_x = bias_ih_l0`, `b_h = bias_hh_l0`.
    """

    gates = 3

    def bias_names(self) -> tuple[str, ...]:
        return ("b_x", "b_h")

    def run(self, params: Params, x: Array, state: tuple[Array, ...]
            ) -> tuple[Array, tuple[Array, ...], Any]:
        backend = backend_of(x, *params.values())
        xp, sigmoid, n = backend.xp, backend.sigmoid, self.hidden
        w_h, b_h = params["W_h"], params["b_h"]
        u = project(xp, x, params["W_x"], params["b_x"])    # x_t W_x + b_x, every t at once

        def step(h: Array, u_t: Array) -> tuple[Array, Any]:
            v = h @ w_h + b_h                                 # (B, 3·hidden)
            rz = sigmoid(u_t[:, :2 * n] + v[:, :2 * n])       # [r | z] = σ(u + v)
            r, z = rz[:, :n], rz[:, n:]
            v_n = v[:, 2 * n:]
            cand = xp.tanh(u_t[:, 2 * n:] + r * v_n)          # n = tanh(u_n + r ⊙ v_n)
            h = cand + z * (h - cand)                         # (1 - z) ⊙ n + z ⊙ h_{t-1}
            return h, (h, r, z, cand, v_n)

        (h0,) = state
        h_last, (hs, rs, zs, cands, v_ns) = backend.scan(step, h0, u)
        return hs, (h_last,), (x, h0, hs, rs, zs, cands, v_ns)

    def run_backward(self, params: Params, cache: Any, dhs: Array
                     ) -> tuple[Array, Params, Array]:
        x, h0, hs, rs, zs, cands, v_ns = cache
        backend = backend_of(dhs, hs)
        xp = backend.xp
        w_h_t = params["W_h"].T

        # Backward through time, t = T .. 1, carrying dL/dh_t from step t + 1:
        #   dh = dy_t + (dL/dh_t from step t + 1)
        #   dn = dh ⊙ (1 - z)          dz = dh ⊙ (h_{t-1} - n)
        #   dû_n = dn ⊙ (1 - n²)       dr = dû_n ⊙ v_n         (û_n = u_n + r ⊙ v_n)
        #   δu = [dr ⊙ r(1 - r) | dz ⊙ z(1 - z) | dû_n]         (dL/du_t)
        #   δv = [dr ⊙ r(1 - r) | dz ⊙ z(1 - z) | dû_n ⊙ r]     (dL/dv_t)
        #   to step t - 1: dh ⊙ z + δv W_hᵀ
        def step(dh_next: Array, inputs: tuple[Array, ...]) -> tuple[Array, Any]:
            dy_t, h_prev, r, z, cand, v_n = inputs
            dh = dy_t + dh_next
            du_n = dh * (1 - z) * (1 - cand * cand)
            da_r = du_n * v_n * r * (1 - r)
            da_z = dh * (h_prev - cand) * z * (1 - z)
            delta_v = xp.concat([da_r, da_z, du_n * r], axis=1)
            return dh * z + delta_v @ w_h_t, (xp.concat([da_r, da_z, du_n], axis=1), delta_v,
                                              dh)

        h_prevs = previous_states(xp, h0, hs)
        _, (delta_u, delta_v, dh_all) = backend.scan(step, xp.zeros_like(h0),
                                             (dhs, h_prevs, rs, zs, cands, v_ns), reverse=True)
        grads = {"W_x": time_major_product(xp, x, delta_u),            # Σ_t x_tᵀ δu_t
                 "W_h": time_major_product(xp, h_prevs, delta_v),      # Σ_t h_{t-1}ᵀ δv_t
                 "b_x": xp.sum(delta_u, axis=(0, 1)), "b_h": xp.sum(delta_v, axis=(0, 1))}
        return delta_u, grads, dh_all                                 # δx_t = δu_t

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        # one case (each check compiles the loop on JAX); the last step alone or every
        # step by the draw (the base's code, which RNN's examples check both ways). T >= 2
        # and hidden >= 2, so W_h's gradient flows through time and a transposed one shows
        yield (cls(int(rng.integers(2, 4)), return_sequences=bool(rng.integers(0, 2))),
               (int(rng.integers(2, 5)), int(rng.integers(1, 4))))
