"""Layers that hold layers: a residual connection and parallel branches (Thinc's `residual`,
`concatenate` and `add`, with pure functions instead of callbacks).

    Residual(f):                      y = x + f(x)              dx = dy + f.backward(dy)
    Parallel([f, g], merge="add"):    y = f(x) + g(x)           dx = f.backward(dy) + g.backward(dy)
    Parallel([f, g], merge="concat"): y = [f(x), g(x)] (axis)   dx = f.backward(dy_f)
                                                                     + g.backward(dy_g)

Where the forward pass shares an input between paths, the backward pass adds the paths'
gradients: that is the whole rule. Parameters are the children's pytree: a Residual's are
its child's own (so the names do not grow a level: `Residual(Sequential([LayerNorm(),
Dense(8)]))` at layer 2 has "2.0.gamma", "2.1.W"), a Parallel's a list, one entry per
branch ("3.0.W", "3.1.W").

A combinator never writes into a child's output, cache or gradient: every sum here makes
a new array. (Thinc's `add` adds the other branches into the first branch's output in
place; a ReLU that kept that output to mask its gradient then masks by the sum, and its
gradients are wrong. tests/layers/test_combinators.py puts ReLU branches under every
combinator and checks against JAX.)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from ..backends import backend_of
from .activations import ReLU, Tanh
from .base import EVAL, Context, Layer, Shape, describe, min_positions, run_backward, run_forward
from .dense import Dense
from .dropout import Dropout
from .normalization import BatchNorm

MERGES = ("concat", "add")


def _one_layer(owner: str, layer: Any) -> Layer:
    if isinstance(layer, (list, tuple)):
        raise TypeError(f"{owner} takes one layer; for several in a row give a Sequential: "
                        f"{owner}(Sequential([...]))")
    if not isinstance(layer, Layer):
        raise TypeError(f"{owner} takes a Layer, not a {type(layer).__name__} (did you forget "
                        "the parentheses, e.g. ReLU()?)")
    return layer


@dataclasses.dataclass(frozen=True)
class Residual(Layer):
    """`y = x + f(x)` (He et al., 2016): the block `f` learns a correction to its input,
    and the gradient reaches the input along two paths, `dx = dy + f.backward(dy)`.

    `f` must keep the input's shape. Its parameters (and state) are this layer's own.
    """

    layer: Layer

    def __post_init__(self) -> None:
        _one_layer("Residual", self.layer)

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return bool(self.layer.stochastic)

    def sublayers(self) -> tuple[tuple[str, Layer], ...]:
        return (("", self.layer),)

    def sublayer_shapes(self, in_shape: Shape) -> list[Shape]:
        return [tuple(in_shape)]

    @property
    def max_positions(self) -> int | None:
        return self.layer.max_positions

    def random_input(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return self.layer.random_input(rng, shape)

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Any:
        self.output_shape(in_shape)
        return self.layer.init(rng, in_shape)

    def init_state(self, in_shape: Shape) -> Any:
        return self.layer.init_state(in_shape)

    def next_state(self, state: Any, cache: Any) -> Any:
        return self.layer.next_state(state, cache)

    def output_shape(self, in_shape: Shape) -> Shape:
        out = tuple(self.layer.output_shape(in_shape))
        if out != tuple(in_shape):
            raise ValueError(f"{describe(self)}: the block turns inputs {tuple(in_shape)} into "
                             f"{out}, but x + f(x) needs f to keep the shape")
        return out

    def forward(self, params: Any, x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        fx, cache = run_forward(self.layer, params, x, ctx)
        if tuple(fx.shape) != tuple(x.shape):
            raise ValueError(f"{describe(self)}: the block turned x {tuple(x.shape)} into "
                             f"{tuple(fx.shape)}, but x + f(x) needs f to keep the shape")
        return x + fx, cache                              # a new array: fx stays the child's

    def backward(self, params: Any, cache: Any, dy: Any) -> tuple[Any, Any]:
        dfx, grads = run_backward(self.layer, params, cache, dy)
        return dy + dfx, grads                            # both paths reach x

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        from ..model import Sequential  # (model imports the layers package: a cycle)

        f = int(rng.integers(2, 5))
        yield cls(ReLU()), (f,)   # the ReLU's cached output must survive the sum
        # a block that draws dropout masks: checked in train mode too (its key reaches it)
        yield cls(Sequential([Dense(f), ReLU(), Dropout(0.4), Dense(f)])), \
            (int(rng.integers(1, 4)), f)


@dataclasses.dataclass(frozen=True)
class Parallel(Layer):
    """Branches applied to the same input, their outputs merged: `merge="concat"` joins
    them along `axis` (of the whole array: -1, the features, by default; never 0, the
    batch), `merge="add"` sums them (every branch must give the same shape).

    Backward: each branch gets its part of dy (its slice for concat, all of it for add),
    and the input's gradient is the sum of the branches' input gradients.
    Parameters and state: a list, one entry per branch.
    """

    layers: Sequence[Layer]  # given as a list or a tuple; kept as a tuple (hashable)
    merge: str = "concat"
    axis: int = -1

    def __post_init__(self) -> None:
        if isinstance(self.layers, Layer):
            raise TypeError("Parallel takes a list of branches: Parallel([f, g]), not "
                            f"{describe(self.layers)} alone")
        layers = tuple(self.layers)
        if not layers:
            raise ValueError("Parallel([]) has no branches: give it at least one")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Parallel: branch {i} is a {type(layer).__name__}, not a Layer"
                                " (did you forget the parentheses, e.g. ReLU()?)")
        object.__setattr__(self, "layers", layers)  # a list given: kept as a tuple (hashable)
        if self.merge not in MERGES:
            raise ValueError(f"Parallel: merge is one of {MERGES}, not {self.merge!r}")
        if not isinstance(self.axis, int) or isinstance(self.axis, bool) or self.axis == 0:
            raise ValueError(f"Parallel: axis {self.axis!r} is an axis of the output other "
                             "than the batch axis 0 (-1, the last, by default)")

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(layer.stochastic for layer in self.layers)

    def sublayers(self) -> tuple[tuple[str, Layer], ...]:
        return tuple((str(i), layer) for i, layer in enumerate(self.layers))

    def sublayer_shapes(self, in_shape: Shape) -> list[Shape]:
        return [tuple(in_shape)] * len(self.layers)

    @property
    def max_positions(self) -> int | None:
        return min_positions(self.layers)

    def random_input(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return self.layers[0].random_input(rng, shape)

    def init(self, rng: np.random.Generator, in_shape: Shape) -> list[Any]:
        self.output_shape(in_shape)
        return [layer.init(rng, in_shape) for layer in self.layers]

    def init_state(self, in_shape: Shape) -> list[Any] | None:
        states = [layer.init_state(in_shape) for layer in self.layers]
        return None if all(s is None for s in states) else states

    def next_state(self, state: Any, caches: Any) -> Any:
        if state is None:
            return None
        return [layer.next_state(s, c) for layer, s, c in zip(self.layers, state, caches[0])]

    def _sample_axis(self, ndim: int) -> int:
        """`axis` as an axis of one sample's shape (`ndim` axes, batch left out)."""
        axis = self.axis if self.axis > 0 else ndim + 1 + self.axis
        if not 1 <= axis <= ndim:
            raise ValueError(f"{describe(self)}: axis {self.axis} is not an axis of outputs "
                             f"with {ndim + 1} axes (batch included)")
        return axis - 1

    def output_shape(self, in_shape: Shape) -> Shape:
        shapes = [tuple(layer.output_shape(in_shape)) for layer in self.layers]
        if self.merge == "add":
            if any(s != shapes[0] for s in shapes):
                raise ValueError(f"{describe(self)}: merge='add' needs branches of one output "
                                 f"shape, but they give {', '.join(map(str, shapes))}")
            return shapes[0]
        if any(len(s) != len(shapes[0]) for s in shapes):
            raise ValueError(f"{describe(self)}: branches give outputs of different ranks "
                             f"({', '.join(map(str, shapes))}), which cannot be joined")
        k = self._sample_axis(len(shapes[0]))
        if any(s[:k] + s[k + 1:] != shapes[0][:k] + shapes[0][k + 1:] for s in shapes):
            raise ValueError(f"{describe(self)}: merge='concat' along axis {self.axis} needs "
                             f"branches that agree on every other axis, but they give "
                             f"{', '.join(map(str, shapes))}")
        return shapes[0][:k] + (sum(s[k] for s in shapes),) + shapes[0][k + 1:]

    def _context(self, ctx: Context, i: int) -> Context:
        if ctx.key is None and ctx.state is None:
            return ctx
        return ctx.child(i, None if ctx.state is None else ctx.state[i])

    def forward(self, params: list[Any], x: Any, ctx: Context = EVAL) -> tuple[Any, Any]:
        if not isinstance(params, (list, tuple)) or len(params) != len(self.layers):
            got = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
            raise ValueError(f"{describe(self)} has {len(self.layers)} branches but got "
                             f"parameters for {got}; make them with xbackprop.init_params")
        outs, caches = [], []
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            y, cache = run_forward(layer, p, x, self._context(ctx, i), i)
            outs.append(y)
            caches.append(cache)
        xp = backend_of(*outs).xp
        if self.merge == "add":
            y = outs[0]
            for other in outs[1:]:
                y = y + other                             # new arrays, never `+=`
            return y, (caches, None)
        axis = len(outs[0].shape) + self.axis if self.axis < 0 else self.axis
        sizes = [int(o.shape[axis]) for o in outs]
        return xp.concat(outs, axis=axis), (caches, (axis, sizes))

    def backward(self, params: list[Any], cache: Any, dy: Any) -> tuple[Any, list[Any]]:
        caches, split = cache
        dx, grads = None, []
        start = 0
        for i, (layer, p, c) in enumerate(zip(self.layers, params, caches)):
            if split is None:
                part = dy                                 # d(f + g)/df = 1: all of dy
            else:
                axis, sizes = split                       # this branch's slice of dy
                index = (slice(None),) * axis + (slice(start, start + sizes[i]), ...)
                part = dy[index]
                start += sizes[i]
            dxi, g = run_backward(layer, p, c, part, i)
            grads.append(g)
            dx = dxi if dx is None else dx + dxi          # the shared input: gradients add
        return dx, grads

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        f = int(rng.integers(2, 5))
        # ReLU branches: their cached outputs must survive the merge (Thinc's `add` bug)
        yield cls([ReLU(), Dense(int(rng.integers(1, 4))), ReLU()]), (f,)
        yield cls([ReLU(), Tanh(), Dense(f)], merge="add"), (f,)
        yield cls([Dense(f), ReLU()], axis=1), (int(rng.integers(1, 4)), f)
        # a branch with state: each branch gets its own (checked in train mode too)
        yield cls([BatchNorm(), Dense(2)]), (f,)
