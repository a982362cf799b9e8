"""Models: `Sequential`, a list of layers that is itself a layer, and the functions that make
a layer's parameters on a backend.

Parameters are a pytree keyed by layer: `params[i]` is layer i's dict, so `tree_paths` names
them "0.W", "0.b", "2.W", ... The forward pass keeps every layer's cache; the backward pass
walks the layers in reverse, each turning dL/d(output) into dL/d(input) and its gradients.
"""

from __future__ import annotations

import functools
import textwrap
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .backends import Array, Backend, get_backend, tree_to_backend
from .layers.base import (
    EVAL,
    Context,
    Layer,
    Params,
    Shape,
    describe,
    min_positions,
    run_backward,
    run_forward,
)
from .random import host_generator
from .tree import tree_leaves, tree_map, tree_paths

__all__ = ["Sequential", "init_params", "init_state", "count_params", "check_params",
           "ParamsMismatchError", "layer_name"]


def init_params(layer: Layer, seed: int | np.random.Generator, input_shape: Shape, *,
                dtype: Any = "float32", backend: str | Backend | None = None) -> Any:
    """`layer`'s initial parameters for inputs `x: (N, *input_shape)`, drawn on the host
    from `seed` and cast to `dtype` there, so one seed gives bit-identical parameters on every
    backend; then moved to `backend` (default: the current one).

    input_shape is one sample's shape, without the batch axis: `(64,)` for `x: (N, 64)`,
    `(1, 28, 28)` for images `(N, 1, 28, 28)`. (The gradient checkers' `input_shape`
    includes the batch axis: they draw a batch.)"""
    target = get_backend(backend)
    dt = target.check_dtype(dtype)
    shape = sample_shape(layer, input_shape, "init_params")
    host = layer.init(host_generator(seed), shape)
    return tree_to_backend(tree_map(lambda a: np.asarray(a, dtype=dt), host), target)


def init_state(layer: Layer, input_shape: Shape, *, dtype: Any = "float32",
               backend: str | Backend | None = None) -> Any:
    """`layer`'s initial non-trainable state (BatchNorm's running statistics), on `backend`."""
    target = get_backend(backend)
    dt = target.check_dtype(dtype)
    host = layer.init_state(sample_shape(layer, input_shape, "init_state"))
    return tree_to_backend(tree_map(lambda a: np.asarray(a, dtype=dt), host), target)


def sample_shape(layer: Layer, input_shape: Any, caller: str) -> Shape:
    """`input_shape`, one sample's shape without the batch axis, as a tuple of ints that
    `layer` takes; an error that says what was meant when it is an int or includes the
    batch axis (a layer's own message, e.g. "put a Flatten() before it", would mislead)."""
    if isinstance(input_shape, (int, np.integer)):
        raise TypeError(f"{caller}: input_shape is one sample's shape, a tuple: "
                        f"({int(input_shape)},) for x: (N, {int(input_shape)}), not the int "
                        f"{int(input_shape)}")
    try:
        shape = tuple(input_shape)
    except TypeError:
        raise TypeError(f"{caller}: input_shape is one sample's shape, a tuple of ints such "
                        f"as (64,) or (1, 28, 28), not {input_shape!r}") from None
    if not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1
               for d in shape):
        raise ValueError(f"{caller}: input_shape {shape} must hold positive ints, such as (64,) "
                         "or (1, 28, 28)")
    shape = tuple(int(d) for d in shape)
    try:
        layer.output_shape(shape)
    except ValueError as e:
        if len(shape) > 1 and _takes(layer, shape[1:]):
            raise ValueError(
                f"{caller}: input_shape is one sample's shape, without the batch axis: "
                f"{shape[1:]} for x: {shape}? (check_layer and check_model take the batch "
                f"axis; {caller} does not.) As given, {shape} fails: {e}") from None
        raise
    return shape


def _takes(layer: Layer, shape: Shape) -> bool:
    try:
        layer.output_shape(shape)
    except (ValueError, TypeError):
        return False
    return True


def count_params(params: Any) -> int:
    """The number of scalars in a parameter tree."""
    return int(sum(int(np.prod(p.shape)) for p in tree_leaves(params)))


class Sequential(Layer):
    """Layers applied one after another: `Sequential([Dense(64), ReLU(), Dense(10)])`."""

    abstract = True  # a container, not a layer the gradient checker should list

    def __init__(self, layers: Sequence[Layer]) -> None:
        if isinstance(layers, Layer):
            raise TypeError("Sequential takes a list of layers: Sequential([layer, ...]), not "
                            f"{describe(layers)} alone")
        layers = tuple(layers)
        if not layers:
            raise ValueError("Sequential([]) has no layers: give it at least one, e.g. "
                             "Sequential([Dense(10)])")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is a {type(layer).__name__}, not a Layer"
                                " (did you forget the parentheses, e.g. ReLU()?)")
        self.layers = layers
        self.stochastic = any(getattr(layer, "stochastic", False) for layer in layers)
        self.integer_inputs = bool(layers) and getattr(layers[0], "integer_inputs", False)

    def __repr__(self) -> str:
        parts = [describe(layer) for layer in self.layers]  # a layer a line, nested indented
        inner = ",\n".join(textwrap.indent(p, "    ") for p in parts)
        return f"Sequential([\n{inner},\n])"

    def __eq__(self, other: object) -> bool:
        """Equal layers in the same order (so a model rebuilt from its configuration, or a
        Residual holding one, compares equal)."""
        return type(other) is type(self) and other.layers == self.layers

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.layers))

    def sublayers(self) -> tuple[tuple[str, Layer], ...]:
        return tuple((str(i), layer) for i, layer in enumerate(self.layers))

    def sublayer_shapes(self, in_shape: Shape) -> list[Shape]:
        return self._shapes(in_shape)[:-1]

    @property
    def max_positions(self) -> int | None:
        return min_positions(self.layers)

    def random_input(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        return self.layers[0].random_input(rng, shape)

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
            x, cache = run_forward(layer, p, x, self._context(ctx, i), i)
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
            y, cache = run_forward(layer, p, x, self._context(ctx, i), i)
            yield i, layer, x, y, cache
            x = y

    def backward(self, params: list[Params], caches: list[Any], dy: Array
                 ) -> tuple[Array, list[Params]]:
        grads: list[Params] = [{}] * len(self.layers)
        for i in range(len(self.layers) - 1, -1, -1):
            dy, grads[i] = run_backward(self.layers[i], params[i], caches[i], dy, i)
        return dy, grads

    def backward_layers(self, params: list[Params], caches: list[Any], dy: Array
                        ) -> Iterator[tuple[int, Layer, Array, Array, Params]]:
        """The backward pass one layer at a time, last layer first: yields `(index, layer,
        dL/d(output), dL/d(input), parameter gradients)`; the same numbers as `backward`."""
        for i in range(len(self.layers) - 1, -1, -1):
            dx, grads = run_backward(self.layers[i], params[i], caches[i], dy, i)
            yield i, self.layers[i], dy, dx, grads
            dy = dx

    def param_grads(self, params: list[Params], caches: list[Any], dy: Array) -> list[Params]:
        """The gradients without dL/d(input), which the first layer then need not compute."""
        grads: list[Params] = [{}] * len(self.layers)
        for i in range(len(self.layers) - 1, 0, -1):
            dy, grads[i] = run_backward(self.layers[i], params[i], caches[i], dy, i)
        first = self.layers[0]
        if type(first).param_grads is Layer.param_grads:  # not overridden: backward's
            grads[0] = run_backward(first, params[0], caches[0], dy, 0)[1]
        else:
            grads[0] = first.param_grads(params[0], caches[0], dy)
        return grads

    def next_state(self, state: Any, caches: list[Any]) -> Any:
        if state is None:
            return None
        return [layer.next_state(s, c) for layer, s, c in zip(self.layers, state, caches)]

    def summary(self, input_shape: Shape, params: Any = None) -> str:
        """A table of layers, output shapes and parameter counts. Layers that hold layers
        (Residual, Parallel, a nested Sequential) list theirs below them, indented, named by
        their parameters' path ("2.0" is child 0 of layer 2)."""
        input_shape = tuple(input_shape)
        if params is None:
            params = self.init(np.random.default_rng(0), input_shape)
        rows = [("#", "layer", "output shape", "params")]
        for (key, layer), shape, p in zip(self.sublayers(), self.sublayer_shapes(input_shape),
                                          params):
            rows.extend(_summary_rows(key, layer, shape, p, 0))
        rows.append(("", "total", "", str(count_params(params))))
        widths = [max(len(r[c]) for r in rows) for c in range(4)]
        return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip()
                         for r in rows)


def _summary_rows(path: str, layer: Layer, in_shape: Shape, params: Any, depth: int
                  ) -> list[tuple[str, str, str, str]]:
    """The summary's row for `layer` and, below it, its sublayers' rows (a Residual of a
    Sequential lists the Sequential's layers: the Sequential adds nothing to read)."""
    children = layer.sublayers()
    name = describe(layer) if not children else type(layer).__name__
    rows = [("  " * depth + path, "  " * depth + name,
             str((None, *layer.output_shape(in_shape))), str(count_params(params)))]
    shapes = layer.sublayer_shapes(in_shape)
    if len(children) == 1 and children[0][0] == "" and children[0][1].sublayers():
        layer, shapes = children[0][1], children[0][1].sublayer_shapes(shapes[0])
        children = layer.sublayers()  # Residual(Sequential([...])): the Sequential's layers
    for (key, child), shape in zip(children, shapes):
        child_params = params[int(key)] if key else params
        child_path = f"{path}.{key}" if key else path
        rows.extend(_summary_rows(child_path, child, shape, child_params, depth + 1))
    return rows


def _check_params(model: Sequential, params: Any) -> None:
    if not isinstance(params, (list, tuple)) or len(params) != len(model.layers):
        got = len(params) if isinstance(params, (list, tuple)) else type(params).__name__
        raise ValueError(f"Sequential of {len(model.layers)} layers got parameters for {got}; "
                         "make them with xbackprop.init_params(model, seed, input_shape)")


class ParamsMismatchError(ValueError):
    """Parameters or model state whose arrays do not fit the model: another architecture,
    another input shape, a missing or extra array."""


def check_params(model: Layer, params: Any, input_shape: Shape, model_state: Any = None, *,
                 source: str | None = None, where: str = "",
                 error: type[ValueError] = ParamsMismatchError, state: bool = True) -> None:
    """Raise `error` at the first array of `params` (and `model_state`, if `state`) whose
    shape or presence differs from what `model` makes for inputs `(N, *input_shape)`:
    Dense(16)'s parameters given to a Dense(32) model fail here, naming the layer, instead of
    training or predicting something else in silence. Messages begin with `source` ("run.st:
    the checkpoint"), else `where` and the argument ("predict: params")."""
    def subject(what: str) -> str:
        return source if source is not None else f"{where}{what}"

    try:
        expected = _expected_shapes(model, tuple(int(d) for d in input_shape))
    except (ValueError, TypeError) as e:
        raise error(
            f"{subject('params')} is for inputs of shape (N, {', '.join(map(str, input_shape))}),"
            f" which the model {describe(model)} cannot take: {e}") from e
    pairs = zip(("params", "model_state"), expected, (params, model_state))
    for what, want, have in list(pairs)[:2 if state else 1]:
        have_shapes = {n: tuple(a.shape) if hasattr(a, "shape") else ()
                       for n, a in tree_paths(have)}
        for name, shape in want.items():
            if name not in have_shapes:
                raise error(f"{subject(what)} does not fit the model: it has no {what}.{name}, "
                            f"which {layer_name(model, name)} needs with shape {shape}")
            if have_shapes[name] != shape:
                raise error(f"{subject(what)} does not fit the model (another architecture?): "
                            f"{what}.{name} has shape {have_shapes[name]}, but "
                            f"{layer_name(model, name)} needs {shape}")
        for name, shape in have_shapes.items():
            if name not in want:
                raise error(f"{subject(what)} does not fit the model: it has {what}.{name} of "
                            f"shape {shape}, for which the model has no place")


def _expected_shapes(model: Layer, input_shape: Shape
                     ) -> tuple[dict[str, Shape], dict[str, Shape]]:
    """The shapes of the parameters and the state `model` makes for `input_shape`, by path;
    remembered per model and shape (drawing a large model's parameters takes a while)."""
    try:
        return _cached_shapes(model, input_shape)
    except TypeError:  # an unhashable (non-frozen) user layer: no memory
        return _shapes_of(model, input_shape)


def _shapes_of(model: Layer, input_shape: Shape) -> tuple[dict[str, Shape], dict[str, Shape]]:
    params = model.init(np.random.default_rng(0), input_shape)
    state = model.init_state(input_shape)
    return ({n: tuple(np.shape(a)) for n, a in tree_paths(params)},
            {n: tuple(np.shape(a)) for n, a in tree_paths(state)})


_cached_shapes = functools.lru_cache(maxsize=64)(_shapes_of)


def layer_name(model: Layer, tensor: str) -> str:
    """'layer 0, Dense(16)' for tensor '0.W' of a Sequential, 'layer 3.0, Dense(16)' for
    '3.0.W' inside a container at layer 3; the model's name for a plain layer."""
    path, layer, found = [], model, False
    rest = tensor.split(".")
    while True:
        children = dict(layer.sublayers())
        if "" in children:  # the child's parameters are the container's own
            layer = children[""]
            continue
        if not rest or rest[0] not in children:
            break
        path.append(rest.pop(0))
        layer, found = children[path[-1]], True
    return f"layer {'.'.join(path)}, {describe(layer)}" if found else describe(model)
