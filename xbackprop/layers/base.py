"""What a layer is: hyperparameters in an object, arrays in pytrees, and four pure functions.

    init(rng, in_shape)            -> params        (NumPy arrays made on the host)
    forward(params, x, ctx)        -> (y, cache)
    backward(params, cache, dy)    -> (dx, grads)   (grads has the structure of params)
    output_shape(in_shape)         -> out_shape

Shapes exclude the batch axis: a Dense layer on `x: (N, 3)` has `in_shape == (3,)`.
Layers with non-trainable state (BatchNorm's running statistics) also define
`init_state(in_shape)` and `next_state(state, cache)`; they read their state from `ctx`.

Every Layer subclass defined anywhere is registered by name (`layer_classes()`), which is
how the gradient checker finds every layer without anyone writing a test for it: a layer
lists a few instances of itself worth checking in `examples(rng)`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from ..backends import Array
from ..random import fold_in

Params = dict[str, Any]
Shape = tuple[int, ...]

_LAYER_CLASSES: list[type[Layer]] = []


@dataclasses.dataclass(frozen=True)
class Context:
    """How a forward pass runs: train or eval mode, a random key, the layer's state.

    Passed to every `forward`; most layers ignore it. Train/eval mode is always explicit.
    """

    train: bool = False
    key: Array | None = None  # uint32[2] random key (xbackprop.random); None: no randomness
    state: Any = None  # this layer's non-trainable state (see Layer.init_state)
    #: (N,) 1 for real samples, 0 for padding that fills a batch to a fixed size; layers that
    #: mix samples (BatchNorm's batch statistics) must ignore the padded ones
    mask: Array | None = None

    def child(self, index: int, state: Any = None) -> Context:
        """The context for sub-layer `index` of a container: its own key and state."""
        key = None if self.key is None else fold_in(self.key, index)
        return Context(self.train, key, state, self.mask)

    def require_key(self, layer: Layer) -> Array:
        if self.key is None:
            raise ValueError(
                f"{describe(layer)} needs randomness in train mode: pass Context(train=True, "
                "key=xbackprop.random.make_key(seed)) (fit and make_train_step do this).")
        return self.key


EVAL = Context(train=False)


class Layer:
    """Base class: a layer with no parameters and no state. Subclasses override the rest.

    Subclasses are dataclasses of their hyperparameters, so `repr` shows them and two
    equal configurations compare equal.
    """

    #: Set on containers (Sequential) so the gradient checker does not list them as layers.
    abstract: ClassVar[bool] = False
    #: True for layers that draw random numbers in train mode (they need `ctx.key`).
    stochastic: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract", False):
            _LAYER_CLASSES.append(cls)

    def init(self, rng: np.random.Generator, in_shape: Shape) -> Params:
        """Initial parameters as float64 NumPy arrays (the model casts and moves them)."""
        return {}

    def init_state(self, in_shape: Shape) -> Any:
        """Initial non-trainable state (NumPy arrays), or None for stateless layers."""
        return None

    def next_state(self, state: Any, cache: Any) -> Any:
        """The state after a train-mode forward pass that produced `cache`."""
        return state

    def output_shape(self, in_shape: Shape) -> Shape:
        return tuple(in_shape)

    def forward(self, params: Params, x: Array, ctx: Context = EVAL) -> tuple[Array, Any]:
        raise NotImplementedError

    def backward(self, params: Params, cache: Any, dy: Array) -> tuple[Array, Params]:
        raise NotImplementedError

    def param_grads(self, params: Params, cache: Any, dy: Array) -> Params:
        """The parameter gradients alone. Layers whose dL/dx costs real work (Dense, Conv2D)
        override this to skip it; a model uses it for its first layer."""
        return self.backward(params, cache, dy)[1]

    def __call__(self, params: Params, x: Array, ctx: Context = EVAL) -> Array:
        """The forward output alone (for inference and for autodiff oracles)."""
        return self.forward(params, x, ctx)[0]

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        """Instances and input shapes (without batch) the gradient checker should try.
        `rng` varies the sizes; the checker picks the batch size."""
        return iter(())


def layer_classes(module_prefix: str = "xbackprop.") -> dict[str, type[Layer]]:
    """Concrete Layer subclasses defined in modules under `module_prefix` (default: the
    built-in layers; "" for every layer defined so far), by class name."""
    return {cls.__name__: cls for cls in _LAYER_CLASSES
            if cls.__module__.startswith(module_prefix)}


def describe(obj: Any) -> str:
    """A short repr of a layer or loss: only the settings that differ from the defaults,
    e.g. `Conv2D(16, 3, padding=1)` rather than every field."""
    if not dataclasses.is_dataclass(obj):
        return repr(obj)
    parts = []
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if required:
            parts.append(repr(value))
        elif value != f.default:
            parts.append(f"{f.name}={getattr(value, '__name__', None) or repr(value)}")
    return f"{type(obj).__name__}({', '.join(parts)})"


def check_input(layer: Layer, x: Array, in_shape: Shape | None = None, ndim: int | None = None
                ) -> None:
    """Raise a ValueError that says what `layer` expects if `x` has the wrong shape."""
    if ndim is not None and len(x.shape) != ndim:
        raise ValueError(f"{describe(layer)} expects a {ndim}-d input, got shape "
                         f"{tuple(x.shape)}")
    if in_shape is not None and tuple(x.shape[1:]) != tuple(in_shape):
        expected = ", ".join(map(str, in_shape))
        raise ValueError(f"{describe(layer)} expects inputs of shape (N, {expected}), got "
                         f"{tuple(x.shape)}")

