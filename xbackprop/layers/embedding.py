"""Embeddings: a learned vector per token id, and a learned vector per position.

    Embedding(vocab, dim):         ids (B, T) -> W[ids] (B, T, dim)
        backward: dW[v] = Σ over the positions p with ids[p] = v of dy[p]  (a scatter-add:
                  a token that occurs twice gets both rows); ids get no gradient
    PositionEmbedding(max_len, dim):   x (B, T, dim) -> x + P[:T]
        backward: dx = dy, dP[t] = Σ_batch dy[:, t] for t < T, 0 beyond

Looking a row up is multiplying a one-hot vector by W, so dW is the one-hot's transpose
times dy; the backend's `index_add` does that sum without building the one-hot matrix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..backends import backend_of, is_trusted, owner_of
from ..initializers import Initializer, get_initializer
from .base import EVAL, Context, Layer, Params, Shape, describe


def _positive(layer: str, name: str, value: Any) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{layer}: {name} is a positive int, not {value!r}")


@dataclasses.dataclass(frozen=True)
class Embedding(Layer):
    """Integer ids `(B, T)` (or any shape) -> their rows of `W: (vocab, dim)`, `(B, T, dim)`.

    ids must be integers in [0, vocab); an id outside is an error naming it, its position
    and the vocabulary size (checked where the ids can be read: eagerly, not inside a
    compiled step, where XLA would clamp it; check token data once where it is made).
    """

    vocab: int
    dim: int
    weight_init: str | Initializer = "small_normal"
    #: its inputs are integer ids: whatever feeds it batches must not cast them to floats
    integer_inputs = True

    def __post_init__(self) -> None:
        _positive("Embedding", "vocab (the number of distinct token ids)", self.vocab)
        _positive("Embedding", "dim (the length of each token's vector)", self.dim)

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        return {"W": get_initializer(self.weight_init)(rng, (self.vocab, self.dim), self.vocab,
                                                       self.dim)}

    def output_shape(self, in_shape: Shape) -> Shape:
        return (*in_shape, self.dim)

    def random_input(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return rng.integers(0, self.vocab, size=shape)

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        w = params["W"]
        xp = backend_of(x, w).xp
        check_ids(self, x, self.vocab)
        if tuple(w.shape) != (self.vocab, self.dim):
            raise ValueError(f"{describe(self)}: W has shape {tuple(w.shape)}, not (vocab, dim) "
                             f"= {(self.vocab, self.dim)}: parameters of another model? Make "
                             "them with xbackprop.init_params(model, seed, input_shape)")
        flat = xp.reshape(x, (-1,))
        rows = xp.take(w, flat, axis=0)                                # W[ids]
        return xp.reshape(rows, (*x.shape, self.dim)), flat

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        flat = cache
        backend = backend_of(flat, dy)
        xp = backend.xp
        zeros = xp.zeros((self.vocab, self.dim), dtype=dy.dtype)
        # dW[v] = Σ_{p: ids[p] = v} dy[p]: repeated ids add up
        dw = backend.index_add(zeros, flat, xp.reshape(dy, (-1, self.dim)))
        return None, {"W": dw}                         # ids are integers: no gradient

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        # few ids over several positions: repeated ids, whose rows must add up
        yield cls(int(rng.integers(2, 5)), int(rng.integers(1, 4))), (int(rng.integers(3, 6)),)
        yield cls(int(rng.integers(2, 4)), 2), (2, int(rng.integers(1, 4)))


def check_ids(layer: Layer, ids: Any, vocab: int) -> None:
    """Raise a ValueError unless `ids` are integers in [0, vocab): float ids always; ids out
    of range where they can be read now (not traced under jax.jit, and not inside a step
    that has checked its inputs: see `backends.trusted`)."""
    owner = owner_of(ids)
    if owner is None:
        raise TypeError(f"{describe(layer)} takes an array of token ids, not a "
                        f"{type(ids).__name__}")
    kind = owner.numpy_dtype(ids.dtype).kind
    if kind not in "iu":
        raise TypeError(
            f"{describe(layer)}: token ids must be integers, but these are "
            f"{owner.numpy_dtype(ids.dtype).name}: ids cast to float by the way in (a dtype= "
            "applied to the inputs?), or the wrong array? Pass them as integers, e.g. "
            "ids.astype('int64').")
    if is_trusted() or not owner.is_concrete(ids) or not ids.shape or 0 in ids.shape:
        return
    host = np.asarray(owner.to_numpy(ids))
    bad = (host < 0) | (host >= vocab)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        position = where[0] if len(where) == 1 else where
        raise ValueError(
            f"{describe(layer)}: token id {int(host[where])} at position {position} is outside "
            f"the vocabulary of {vocab} ids [0, {vocab}) (the ids run from {int(host.min())} to "
            f"{int(host.max())}): ids from another tokenizer, or a vocabulary too small? Build "
            f"the layer with the tokenizer's vocab_size.")


@dataclasses.dataclass(frozen=True)
class PositionEmbedding(Layer):
    """`x: (B, T, dim) -> x + P[:T]`, a learned vector per position, `P: (max_len, dim)`.

    T may be anything up to `max_len`; a longer sequence is an error (crop it to the last
    `max_len` steps, as `generate` does). Positions at or beyond T get zero gradient.
    """

    max_len: int
    dim: int
    weight_init: str | Initializer = "small_normal"

    def __post_init__(self) -> None:
        _positive("PositionEmbedding", "max_len (the longest sequence)", self.max_len)
        _positive("PositionEmbedding", "dim (the length of each position's vector)", self.dim)

    @property
    def max_positions(self) -> int | None:
        return self.max_len

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        self.output_shape(in_shape)
        return {"P": get_initializer(self.weight_init)(rng, (self.max_len, self.dim),
                                                       self.max_len, self.dim)}

    def output_shape(self, in_shape: Shape) -> Shape:
        if len(in_shape) != 2 or in_shape[1] != self.dim:
            raise ValueError(f"{describe(self)} takes sequences of shape (B, T, {self.dim}), "
                             f"not (B, {', '.join(map(str, in_shape))})")
        self._check_length(in_shape[0])
        return tuple(in_shape)

    def _check_length(self, length: int) -> None:
        if length > self.max_len:
            raise ValueError(
                f"{describe(self)}: the sequence has {length} positions, more than max_len "
                f"{self.max_len}: crop it to the last {self.max_len} (x[:, -{self.max_len}:]), "
                "or build the model with a longer context")

    def forward(self, params: Params, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        p = params["P"]
        backend_of(x, p)
        if len(x.shape) != 3 or x.shape[2] != self.dim:
            raise ValueError(f"{describe(self)} takes sequences of shape (B, T, {self.dim}), "
                             f"not {tuple(x.shape)}")
        t = x.shape[1]
        self._check_length(t)
        return x + p[:t, ...], t                              # y[b, t] = x[b, t] + P[t]

    def backward(self, params: Params, cache: Any, dy: Any) -> tuple[Any, Params]:
        t = cache
        xp = backend_of(dy).xp
        dp = xp.sum(dy, axis=0)                                 # dP[t] = Σ_b dy[b, t]
        if t < self.max_len:                                    # unused positions: 0
            dp = xp.concat([dp, xp.zeros((self.max_len - t, self.dim), dtype=dy.dtype)])
        return dy, {"P": dp}

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        dim = int(rng.integers(1, 4))
        yield cls(4, dim), (int(rng.integers(1, 5)), dim)
