"""Models: `Sequential`, a list of layers that is itself a layer, and the functions that make
a layer's parameters on a backend.

Parameters are a pytree keyed by layer: `params[i]` is layer i's dict, so `tree_paths` names
them "0.W", "0.b", "2.W", ... The forward pass keeps every layer's cache; the backward pass
walks the layers in reverse, each turning dL/d(output) into dL/d(input) and its gradients.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .backends import Array, Backend, get_backend, tree_to_backend
from .layers.base import EVAL, Context, Layer, Params, Shape, describe
from .tree import tree_leaves, tree_map

__all__ = ["Sequential", "init_params", "init_state", "count_params"]


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def init_params(layer: Layer, seed: int | np.random.Generator, input_shape: Shape, *,
                dtype: Any = "float32", backend: str | Backend | None = None) -> Any:
    """`layer`'s initial parameters for inputs of shape `(N, *input_shape)`, drawn on the host
    from `seed` and cast to `dtype` there, so one seed gives bit-identical parameters on every
    backend; then moved to `backend` (default: the current one)."""
    target = get_backend(backend)
    dt = target.check_dtype(dtype)
    host = layer.init(_rng(seed), tuple(input_shape))
    return tree_to_backend(tree_map(lambda a: np.asarray(a, dtype=dt), host), target)


def init_state(layer: Layer, input_shape: Shape, *, dtype: Any = "float32",
               backend: str | Backend | None = None) -> Any:
    """`layer`'s initial non-trainable state (BatchNorm's running statistics), on `backend`."""
    target = get_backend(backend)
    dt = target.check_dtype(dtype)
    host = layer.init_state(tuple(input_shape))
    return tree_to_backend(tree_map(lambda a: np.asarray(a, dtype=dt), host), target)


def count_params(params: Any) -> int:
    """The number of scalars in a parameter tree."""
    return int(sum(int(np.prod(p.shape)) for p in tree_leaves(params)))


class Sequential(Layer):
    """Layers applied one after another: `Sequential([Dense(64), ReLU(), Dense(10)])`."""

    abstract = True  # a container, not a layer the gradient checker should list

    def __init__(self, layers: Sequence[Layer]) -> None:
        layers = tuple(layers)
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Layer"
                                " (did you forget the parentheses, e.g. ReLU()?)")
        self.layers = layers
        self.stochastic = any(getattr(layer, "stochastic", False) for layer in layers)

    def __repr__(self) -> str:
        inner = ",\n    ".join(describe(layer) for layer in self.layers)
        return f"Sequential([\n    {inner},\n])"

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def _shapes(self, in_shape: Shape) -> list[Shape]:
        """The input shape of every layer, then the output shape."""
        shapes = [tuple(in_shape)]
        for layer in self.layers:
            shapes.append(tuple(layer.output_shape(shapes[-1])))
        return shapes

    def init(self, rng: np.random.Generator, in_shape: Shape) -> list[Params]:
        shapes = self._shapes(in_shape)
        return [layer.init(rng, shape) for layer, shape in zip(self.layers, shapes)]

    def init_state(self, in_shape: Shape) -> list[Any] | None:
        states = [layer.init_state(s) for layer, s in zip(self.layers, self._shapes(in_shape))]
        return None if all(s is None for s in states) else states

    def output_shape(self, in_shape: Shape) -> Shape:
        return self._shapes(in_shape)[-1]

    def forward(self, params: list[Params], x: Array, ctx: Context = EVAL
                ) -> tuple[Array, list[Any]]:
        _check_params(self, params)
        caches = []
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            x, cache = layer.forward(p, x, self._context(ctx, i))
            caches.append(cache)
        return x, caches

    def _context(self, ctx: Context, i: int) -> Context:
        """Layer i's context: its own random key and state (with neither, the context, and
        its mask, pass unchanged)."""
        if ctx.key is None and ctx.state is None:
            return ctx
        return ctx.child(i, None if ctx.state is None else ctx.state[i])

    def forward_layers(self, params: list[Params], x: Array, ctx: Context = EVAL
                       ) -> Iterator[tuple[int, Layer, Array, Array, Any]]:
        """The forward pass one layer at a time, for looking inside it: yields
        `(index, layer, input, output, cache)` in order; the same numbers as `forward`."""
        _check_params(self, params)
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            y, cache = layer.forward(p, x, self._context(ctx, i))
            yield i, layer, x, y, cache
            x = y

    def backward(self, params: list[Params], caches: list[Any], dy: Array
                 ) -> tuple[Array, list[Params]]:
        grads: list[Params] = [{}] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dy, grads[i] = self.layers[i].backward(params[i], caches[i], dy)
        return dy, grads

    def backward_layers(self, params: list[Params], caches: list[Any], dy: Array
                        ) -> Iterator[tuple[int, Layer, Array, Array, Params]]:
        """The backward pass one layer at a time, last layer first: yields `(index, layer,
        dL/d(output), dL/d(input), parameter gradients)`; the same numbers as `backward`."""
        for i in range(len(self.layers) - 1, -1, -1):
            dx, grads = self.layers[i].backward(params[i], caches[i], dy)
            yield i, self.layers[i], dy, dx, grads
            dy = dx

    def param_grads(self, params: list[Params], caches: list[Any], dy: Array) -> list[Params]:
        """The gradients without dL/d(input), which the first layer then need not compute."""
        grads: list[Params] = [{}] * len(self.layers)
        for i in range(len(self.layers) - 1, 0, -1):
            dy, grads[i] = self.layers[i].backward(params[i], caches[i], dy)
        if self.layers:
            grads[0] = self.layers[0].param_grads(params[0], caches[0], dy)
        return grads

    def next_state(self, state: Any, caches: list[Any]) -> Any:
        if state is None:
            return None
        return [layer.next_state(s, c) for layer, s, c in zip(self.layers, state, caches)]

    def summary(self, input_shape: Shape, params: Any = None) -> str:
        """A table of layers, output shapes and parameter counts."""
        shapes = self._shapes(input_shape)
        if params is None:
            params = self.init(np.random.default_rng(0), input_shape)
        rows = [("#", "layer", "output shape", "params")]
        for i, (layer, p) in enumerate(zip(self.layers, params)):
            rows.append((str(i), describe(layer), str((None, *shapes[i + 1])),
                         str(count_params(p))))
        rows.append(("", "total", "", str(count_params(params))))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
                         for r in rows)


def _check_params(model: Sequential, params: Any) -> None:
    if not isinstance(params, (list, tuple)) or len(params) != len(model.layers):
        got = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
        raise ValueError(f"Sequential of {len(model.layers)} layers got parameters for {got}; "
                         "make them with xbackprop.init_params(model, seed, input_shape)")
