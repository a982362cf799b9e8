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

from ..backends import Array, is_trusted, owner_of
from ..random import fold_in

Params = dict[str, Any]  # a layer's parameters (and their gradients) by name
#: what the Layer interface passes as parameters: `Params` for a layer, a list of its layers'
#: for a container (Sequential); leaf layers annotate their own methods with `Params`
ParamTree = Any
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
    #: True for layers that draw random numbers in train mode (they need `ctx.key`). Not a
    #: ClassVar, as the next one: a container sets it per instance, from its layers.
    stochastic: bool = False
    #: True for activations that act on each unit alone, y_i = f(x_i) (Sigmoid, ReLU, ...;
    #: not Softmax): `explain`'s chain-rule table and `plot_network` split their
    #: derivative into ∂out/∂net per unit.
    elementwise: ClassVar[bool] = False
    #: True for layers whose inputs are integer ids (an embedding's token ids): `fit`,
    #: `evaluate` and `predict` keep such inputs integers instead of casting them to floats.
    integer_inputs: bool = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract", False):
            _LAYER_CLASSES.append(cls)

    def init(self, rng: np.random.Generator, in_shape: Shape) -> ParamTree:
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

    def forward(self, params: ParamTree, x: Array, ctx: Context = EVAL) -> tuple[Array, Any]:
        raise NotImplementedError

    def backward(self, params: ParamTree, cache: Any, dy: Array) -> tuple[Array, ParamTree]:
        raise NotImplementedError

    def param_grads(self, params: ParamTree, cache: Any, dy: Array) -> ParamTree:
        """The parameter gradients alone. Layers whose dL/dx costs real work (Dense, Conv2D)
        override this to skip it; a model uses it for its first layer."""
        return run_backward(self, params, cache, dy)[1]

    def __call__(self, params: ParamTree, x: Array, ctx: Context = EVAL) -> Array:
        """The forward output alone (for inference and for autodiff oracles)."""
        return self.forward(params, x, ctx)[0]

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Layer, Shape]]:
        """Instances and input shapes (without batch) the gradient checker should try.
        `rng` varies the sizes; the checker picks the batch size."""
        return iter(())

    def random_input(self, rng: np.random.Generator, shape: Shape) -> np.ndarray:
        """An input of `shape` (batch axis included) at which the gradient checker may check
        this layer: normal float64 numbers. A layer that takes integer ids (Embedding)
        draws valid ids instead; an integer input gets no gradient (its backward returns
        None as dL/dx) and the checker compares the parameters' gradients only."""
        return rng.normal(size=shape)

    @property
    def max_positions(self) -> int | None:
        """The longest sequence (axis 1 of the input) this layer can take, or None for no
        limit: PositionEmbedding's `max_len`. `generate` crops its window to it."""
        return None

    def sublayers(self) -> tuple[tuple[str, Layer], ...]:
        """The layers this one holds (Sequential, Residual, Parallel), each with the key of
        its parameters within this layer's: "0", "1", ... for a list, "" where the child's
        parameters are this layer's own (Residual). Empty for a plain layer. Parameter
        names nest by these keys: "3.0.W" is W of child 0 of layer 3."""
        return ()

    def sublayer_shapes(self, in_shape: Shape) -> list[Shape]:
        """The input shape (without batch) of each of `sublayers()`, for inputs `in_shape`."""
        return []


def layer_classes(module_prefix: str = "xbackprop.") -> dict[str, type[Layer]]:
    """Concrete Layer subclasses defined in modules under `module_prefix` (default: the
    built-in layers; "" for every layer defined so far), by class name."""
    return {cls.__name__: cls for cls in _LAYER_CLASSES
            if cls.__module__.startswith(module_prefix)}


def min_positions(layers: Any) -> int | None:
    """The shortest `max_positions` of `layers` (None if none of them limits it)."""
    limits = [layer.max_positions for layer in layers if layer.max_positions is not None]
    return min(limits) if limits else None


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
            parts.append(describe(value) if isinstance(value, Layer) else
                         f"[{', '.join(map(describe, value))}]" if isinstance(value, tuple)
                         and value and all(isinstance(v, Layer) for v in value) else
                         repr(value))
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



# -- calling a layer, checked -----------------------------------------------------------------
# Containers call their layers through these, so a user layer that breaks the contract gets
# an error naming it and the fix, instead of an unpacking error or silently wrong numbers
# further on. The checks look at types and lengths only: nothing under jax.jit, next to
# nothing eagerly.

class MissingParameterError(KeyError):
    """A layer's parameters lack an array that it needs."""

    def __str__(self) -> str:  # the message as it is, not quoted as a key
        return str(self.args[0]) if self.args else ""


def run_forward(layer: Layer, params: ParamTree, x: Array, ctx: Context = EVAL,
                index: int | None = None) -> tuple[Array, Any]:
    """`layer.forward(params, x, ctx)`, checked to return `(y, cache)` computed by the library
    of `x`; `index`, the layer's place in its container, goes into the error messages."""
    return _checked(layer, "forward", params, x, index, (params, x, ctx))


def run_backward(layer: Layer, params: ParamTree, cache: Any, dy: Array,
                 index: int | None = None) -> tuple[Array, ParamTree]:
    """`layer.backward(params, cache, dy)`, checked to return `(dx, grads)` with `grads` a dict
    like `params`, computed by the library of `dy`."""
    out = _checked(layer, "backward", params, dy, index, (params, cache, dy))
    if isinstance(params, dict) and not isinstance(out[1], dict):
        raise TypeError(f"{_where(index)}{describe(layer)}.backward must return (dx, grads) "
                        f"with grads a dict like its parameters "
                        f"({', '.join(map(repr, params)) or 'none'}), not {_what(out[1])}")
    if not is_trusted() and isinstance(out[1], dict):
        for name, grad in out[1].items():  # (a container's children checked their own)
            _same_library(layer, "backward", dy, grad, index, f"the gradient of {name!r}")
    return out


_RETURNS = {"forward": "(y, cache): the output and what backward needs from this pass",
            "backward": "(dx, grads): dL/dx and a dict of parameter gradients by name ({} for "
                        "a layer without parameters)"}


def _checked(layer: Layer, method: str, params: ParamTree, given: Array, index: int | None,
             args: tuple) -> tuple[Any, Any]:
    """`layer.<method>(*args)`, with `given` the array it works on (x or dy)."""
    try:
        out = getattr(layer, method)(*args)
    except (KeyError, TypeError) as e:
        _explain(layer, method, params, given, e, index)
        raise
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError(f"{_where(index)}{describe(layer)}.{method} must return a pair "
                        f"{_RETURNS[method]}; it returned {_what(out)}")
    if not is_trusted():  # (a step checks on its first call, then trusts: see trusted)
        _same_library(layer, method, given, out[0], index)
    return out


def _what(value: Any) -> str:
    if isinstance(value, tuple):
        return f"a tuple of {len(value)}"
    shape = getattr(value, "shape", None)
    return f"one array of shape {tuple(shape)}" if shape is not None else \
        f"a {type(value).__name__}"


def _where(index: int | None) -> str:
    return "" if index is None else f"layer {index}, "


def _same_library(layer: Layer, method: str, given: Any, returned: Any, index: int | None,
                  what: str = "") -> None:
    have, got = owner_of(given), owner_of(returned)
    if have is not None and got is not None and got is not have:
        raise TypeError(
            f"{_where(index)}{describe(layer)}.{method} was given a {have.name} array and "
            f"returned a {got.name} array{f' as {what}' if what else ''}: it computes with "
            "another library than its input's "
            f"(np.* on {have.name} arrays?). Use the inputs' namespace: xp = "
            "xbackprop.backend_of(x).xp, then xp.exp(x), xp.sum(...), ...")


def _explain(layer: Layer, method: str, params: Any, given: Any, error: Exception,
             index: int | None) -> None:
    """Raise a clearer error for `error` from `layer.<method>` if its cause is known: a
    parameter missing from `params`, or NumPy called on another library's arrays."""
    name = error.args[0] if isinstance(error, KeyError) and error.args else None
    if isinstance(name, str) and isinstance(params, dict) and name not in params:
        raise MissingParameterError(
            f"{_where(index)}{describe(layer)}: its parameters have no {name!r} (they have "
            f"{', '.join(map(repr, params)) or 'none'}). Parameters of another model? Make "
            "them with xbackprop.init_params(model, seed, input_shape)") from error
    owner = owner_of(given)
    if isinstance(error, TypeError) and owner is not None and owner.refused_conversion(error):
        raise TypeError(
            f"{_where(index)}{describe(layer)}.{method} called NumPy (np.*) on a {owner.name} "
            f"array, which {owner.name} refuses. Compute with the namespace of the inputs: xp = "
            "xbackprop.backend_of(x).xp, then xp.exp(x), xp.sum(...), ...") from error
