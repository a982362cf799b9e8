"""What the recurrent layers (RNN, LSTM, GRU) share: inputs `x: (B, T, F)`, the initial state,
the state carried from one call to the next, and the time-major bookkeeping of backprop
through time. Each cell's own recurrence and its gradient live in its file (rnn.py, lstm.py,
gru.py); this file holds no cell math.

The loop over time is the backend primitive `scan` (`backend.scan(fn, carry, xs)`): a
Python loop on NumPy, CuPy and PyTorch, `jax.lax.scan` on JAX, so a compiled step holds
the cell once, not T times. A cell's forward is one scan over t = 1 .. T; its backward is
one scan in reverse, carrying dL/dh (and dL/dc) from step t back to step t - 1. Products
that do not depend on the recurrence run outside the loops, over all T·B rows at once: the
input projection x W_x before the forward scan, and the weight gradients after the
backward one (dW_x = Σ_t x_tᵀ δ_t as one product Xᵀ Δ).

The initial state. A call starts from `ctx.state` when there is one — a dict of `(B,
hidden)` arrays, {"h"} ({"h", "c"} for the LSTM) — and from zeros otherwise:

    y, cache = layer.forward(params, x, Context(state={"h": h0}))   # a given h0

Carrying the state (truncated backprop through time). With `stateful=True` (and
`batch_size`, the number of parallel streams), the layer keeps its last state as
non-trainable model state, as BatchNorm keeps its statistics: `init_state` is zeros of
`(batch_size, hidden)`, every call starts from the state and `next_state` returns the
state after the call's last step. A train step (`make_train_step`, `fit`) threads it
through, so consecutive chunks of a long text continue where the last one stopped, as
min-char-rnn carries `hprev`; row b of each batch must continue row b of the one before.
No gradient crosses a chunk boundary: the carried state enters the next step as a
constant, so backprop through time stops there (truncation). Start over by replacing the
state with `xbackprop.init_state(model, input_shape)` (e.g. at each pass over the data).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np

from ..backends import Array, backend_of, owner_of
from ..initializers import Initializer, get_initializer
from .base import EVAL, Context, Layer, Params, Shape, describe


@dataclasses.dataclass(frozen=True)
class Recurrent(Layer):
    """Base of RNN, LSTM and GRU: `x: (B, T, F) -> y: (B, T, hidden)`, the hidden state after
    every step (`return_sequences=False`: the last one alone, `(B, hidden)`).

    Parameters: `W_x: (F, gates·hidden)`, `W_h: (hidden, gates·hidden)` and biases, the
    gates side by side in column blocks of `hidden` (the order each cell documents). A
    subclass sets `gates` and `state_names` and writes `run` (the forward over time) and
    `run_backward` (backprop through time).
    """

    abstract = True  # a base, not a layer the gradient checker lists

    hidden: int
    _: dataclasses.KW_ONLY
    #: True: y is every step's hidden state (B, T, hidden); False: the last one, (B, hidden)
    return_sequences: bool = True
    #: carry the last state into the next call (see the module docstring)
    stateful: bool = False
    #: the number of parallel streams a stateful layer carries: the batch size it takes
    batch_size: int | None = None
    weight_init: str | Initializer = "glorot_uniform"   # W_x
    recurrent_init: str | Initializer = "orthogonal"     # W_h, one square block per gate
    bias_init: str | Initializer = "zeros"

    #: column blocks of `hidden` in W_x and W_h: 1 (RNN), 4 (LSTM), 3 (GRU)
    gates: ClassVar[int] = 1
    #: the arrays of the state, each (B, hidden)
    state_names: ClassVar[tuple[str, ...]] = ("h",)

    def __post_init__(self) -> None:
        name = type(self).__name__
        if not isinstance(self.hidden, (int, np.integer)) or isinstance(self.hidden, bool) \
                or self.hidden < 1:
            raise ValueError(f"{name}: hidden is the size of the hidden state, a positive int "
                             f"such as {name}(128), not {self.hidden!r}")
        if self.stateful and (not isinstance(self.batch_size, (int, np.integer))
                              or isinstance(self.batch_size, bool) or self.batch_size < 1):
            raise ValueError(
                f"{name}(stateful=True) carries one state per stream, so it needs the number "
                f"of streams: batch_size, a positive int (the batch size it will take), not "
                f"{self.batch_size!r}")
        if not self.stateful and self.batch_size is not None:
            raise ValueError(f"{name}: batch_size={self.batch_size!r} is the number of streams "
                             "a stateful layer carries; pass stateful=True with it, or drop it")

    # -- shapes and parameters ----------------------------------------------------------
    def _sequence_shape(self, in_shape: Shape) -> tuple[int, int]:
        """(T, F) from a sample's shape; an error that says which axis is missing."""
        if len(in_shape) == 2:
            return int(in_shape[0]), int(in_shape[1])
        if len(in_shape) == 1:
            (n,) = in_shape
            raise ValueError(
                f"{describe(self)} takes sequences x: (B, T, features); these samples have one "
                f"axis, ({n},): the time axis or the feature axis is missing. For one step of "
                f"{n} features give (B, 1, {n}) (x[:, None, :]); for {n} steps of one feature "
                f"give (B, {n}, 1) (x[:, :, None]); token ids (B, T) need an embedding or "
                "one-hot encoding to (B, T, features) first.")
        raise ValueError(f"{describe(self)} takes sequences x: (B, T, features), not samples "
                         f"of shape {tuple(in_shape)}")

    def output_shape(self, in_shape: Shape) -> Shape:
        steps, _ = self._sequence_shape(in_shape)
        return (steps, self.hidden) if self.return_sequences else (self.hidden,)

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        """W_x with `weight_init` over the whole (F, gates·hidden) block; W_h with
        `recurrent_init` one (hidden, hidden) block per gate (orthogonal each, by default);
        biases with `bias_init`, then `init_bias` (the LSTM's forget gate starts at 1)."""
        _, features = self._sequence_shape(in_shape)
        h, g = self.hidden, self.gates
        w_x = get_initializer(self.weight_init)(rng, (features, g * h), features, g * h)
        recurrent = get_initializer(self.recurrent_init)
        w_h = np.concatenate([recurrent(rng, (h, h), h, h) for _ in range(g)], axis=1)
        params = {"W_x": w_x, "W_h": w_h}
        for name in self.bias_names():
            params[name] = get_initializer(self.bias_init)(rng, (g * h,), features, g * h)
        return self.init_bias(params)

    def bias_names(self) -> tuple[str, ...]:
        """The bias vectors, each (gates·hidden,)."""
        return ("b",)

    def init_bias(self, params: Params) -> Params:
        return params

    def init_state(self, in_shape: Shape) -> Any:
        if not self.stateful:
            return None
        self._sequence_shape(in_shape)
        return {name: np.zeros((self.batch_size, self.hidden)) for name in self.state_names}

    def next_state(self, state: Any, cache: Any) -> Any:
        """The state after the last step of the call that made `cache` (train or eval mode:
        sampling one character at a time carries it too); unchanged if not stateful."""
        return cache[-1] if self.stateful else state

    # -- the pass over time -------------------------------------------------------------
    def run(self, params: Params, x: Array, state: tuple[Array, ...]
            ) -> tuple[Array, tuple[Array, ...], Any]:
        """The cell over time: x: (T, B, F) time-major, state: the initial arrays in
        `state_names` order -> (hs: (T, B, hidden), the final state, cache)."""
        raise NotImplementedError

    def run_backward(self, params: Params, cache: Any, dhs: Array
                     ) -> tuple[Array, Params, Array]:
        """Backprop through time: dhs = dL/dh_t from above, (T, B, hidden) -> (δx: the
        gradient of the input projection x_t W_x, (T, B, gates·hidden); parameter
        gradients; dL/dh_t in all: (T, B, hidden), from above and from the steps after t).
        The base turns δx into dL/dx_t = δx_t W_xᵀ, when something needs it."""
        raise NotImplementedError

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        self._check(params, x)
        backend = backend_of(x, *params.values())
        xp = backend.xp
        state = self._initial_state(xp, x, ctx.state)
        hs, last, cache = self.run(params, xp.permute_dims(x, (1, 0, 2)), state)
        y = xp.permute_dims(hs, (1, 0, 2)) if self.return_sequences else last[0]
        return y, (cache, tuple(hs.shape), dict(zip(self.state_names, last)))

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        dx, grads, _ = self._backward(params, cache, dy)
        return dx, grads

    def param_grads(self, params: Params, cache: Any, dy: Any) -> Params:
        """The parameter gradients without dL/dx (the network's first layer, whose input is
        data): one (T·B, gates·hidden) × (gates·hidden, F) product fewer."""
        return self._backward(params, cache, dy, input_grad=False)[1]

    def state_gradients(self, params: Params, cache: Any, dy: Any) -> Any:
        """dL/dh_t for every step t, `(B, T, hidden)`, from the backward pass of `dy` (the
        gradient of the output, as `backward` takes it): the gradient that reaches each
        hidden state from the output and through the steps after it. Its norm against t
        shows whether the gradient of a late loss survives the trip back in time (the
        vanilla RNN's vanishes; the gated cells' lasts)."""
        _, _, dh = self._backward(params, cache, dy)
        return backend_of(dh).xp.permute_dims(dh, (1, 0, 2))

    def _backward(self, params: Params, cache: Any, dy: Any, input_grad: bool = True
                  ) -> tuple[Any, Params, Any]:
        cell_cache, (steps, batch, hidden), _ = cache
        xp = backend_of(dy).xp
        if self.return_sequences:
            dhs = xp.permute_dims(dy, (1, 0, 2))                    # (T, B, hidden)
        else:  # only the last step's h reached the output
            before = xp.zeros((steps - 1, batch, hidden), dtype=dy.dtype)
            dhs = xp.concat([before, xp.expand_dims(dy, axis=0)], axis=0)
        delta_x, grads, dh = self.run_backward(params, cell_cache, dhs)
        if not input_grad:
            return None, grads, dh
        dx = project(xp, delta_x, params["W_x"].T)                 # dL/dx_t = δx_t W_xᵀ
        return xp.permute_dims(dx, (1, 0, 2)), grads, dh

    # -- checks -------------------------------------------------------------------------
    def _check(self, params: Params, x: Any) -> None:
        shape = tuple(x.shape)
        if len(shape) != 3:
            if len(shape) == 2:
                features = params["W_x"].shape[0] if "W_x" in params else None
                missing = ("the time axis: for one step give x[:, None, :], shape "
                           f"({shape[0]}, 1, {shape[1]})" if shape[1] == features else
                           "the feature axis: one feature per step is x[:, :, None], shape "
                           f"({shape[0]}, {shape[1]}, 1); token ids need an embedding or "
                           "one-hot encoding to (B, T, features) first")
                raise ValueError(f"{describe(self)} takes x: (B, T, features); got 2-d x of "
                                 f"shape {shape}, which lacks {missing}")
            raise ValueError(f"{describe(self)} takes x: (B, T, features), a 3-d array; got "
                             f"shape {shape}")
        if shape[1] == 0:
            raise ValueError(f"{describe(self)}: x has shape {shape}, sequences of length 0; "
                             "a recurrent layer needs at least one time step (T >= 1)")
        h, g = self.hidden, self.gates
        expected = {"W_x": (shape[2], g * h), "W_h": (h, g * h),
                    **{b: (g * h,) for b in self.bias_names()}}
        for name, want in expected.items():
            if name not in params:
                continue  # the caller's check names the missing parameter
            have = tuple(params[name].shape)
            if have == want:
                continue
            hint = (" Transpose it: xbackprop keeps W as (inputs, outputs); PyTorch keeps "
                    "(outputs, inputs)." if have == want[::-1] else
                    " Parameters of another architecture, or inputs with another number of "
                    "features? Make them with xbackprop.init_params(model, seed, input_shape).")
            raise ValueError(f"{describe(self)}: {name} has shape {have}, but for x: {shape} "
                             f"it must be {want} (gates {g} × hidden {h} columns).{hint}")

    def _initial_state(self, xp: Any, x: Any, given: Any) -> tuple[Array, ...]:
        batch = x.shape[0]
        if given is None:
            if self.stateful:
                raise ValueError(
                    f"{describe(self)} carries its state between calls, so it starts from "
                    "ctx.state: make it with xbackprop.init_state(model, input_shape) (a "
                    "TrainState made by fit has it); to start from zeros each call, use "
                    "stateful=False")
            zeros = xp.zeros((batch, self.hidden), dtype=x.dtype)
            return tuple(zeros for _ in self.state_names)
        if not isinstance(given, dict) or set(given) != set(self.state_names):
            keys = sorted(given) if isinstance(given, dict) else type(given).__name__
            raise ValueError(f"{describe(self)}: the initial state (ctx.state) is a dict of "
                             f"{', '.join(repr(n) for n in self.state_names)}, each (B, "
                             f"{self.hidden}); got {keys}")
        state = []
        for name in self.state_names:
            s = given[name]
            have, want = owner_of(s), owner_of(x)
            if have is not None and want is not None and have.name != want.name:
                raise TypeError(
                    f"{describe(self)}: the initial state {name!r} is a {have.name} array but x "
                    f"is a {want.name} array; move it with xbackprop.asarray(state, "
                    f"backend={want.name!r})")
            if tuple(s.shape) != (batch, self.hidden):
                carried = (f" This layer carries {self.batch_size} streams (stateful, "
                           f"batch_size={self.batch_size}): give batches of {self.batch_size}, "
                           "or evaluate with a copy made with stateful=False."
                           if self.stateful else "")
                raise ValueError(
                    f"{describe(self)}: the initial state {name!r} has shape {tuple(s.shape)}, "
                    f"but x: {tuple(x.shape)} needs ({batch}, {self.hidden}), one row per "
                    f"sequence.{carried}")
            state.append(s)
        return tuple(state)


def time_major_product(xp: Any, a: Array, b: Array) -> Array:
    """Σ_t a_tᵀ b_t for a: (T, B, M), b: (T, B, N): the weight gradient of every step at
    once, one product contracting time and batch together. (A tensordot, not a reshape to
    (T·B, M): merging T with a batch axis split across devices would make XLA gather it.)"""
    return xp.tensordot(a, b, axes=((0, 1), (0, 1)))


def project(xp: Any, x: Array, w: Array, b: Array | None = None) -> Array:
    """x W (+ b) for x: (T, B, F) time-major: one product over every step -> (T, B, N)."""
    out = xp.tensordot(x, w, axes=1)
    return out if b is None else out + b


def previous_states(xp: Any, first: Array, states: Array) -> Array:
    """[s_0, s_1, ..., s_{T-1}] from the initial state s_0: (B, H) and states s_1 .. s_T:
    (T, B, H): each step's incoming state, (T, B, H)."""
    return xp.concat([xp.expand_dims(first, axis=0), states[:-1, ...]], axis=0)


def activation(name: str, owner: str) -> tuple[Callable, Callable]:
    """(φ, φ' from φ's output) for the RNN's nonlinearity: "tanh" or "relu"."""
    if name == "tanh":
        return (lambda xp, a: xp.tanh(a)), (lambda xp, h: 1 - h * h)
    if name == "relu":
        return (lambda xp, a: xp.clip(a, 0.0, None)), (lambda xp, h: xp.astype(h > 0, h.dtype))
    raise ValueError(f"{owner}: activation is 'tanh' or 'relu' (PyTorch's nonlinearity), not "
                     f"{name!r}")
