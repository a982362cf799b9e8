"""Prove hand-written gradients: against JAX autodiff, against finite differences, and
across backends, with a per-tensor report that shows where a gradient is wrong.

    report = xbackprop.check_layer(MyLayer(8), input_shape=(4, 3), backend="numpy")
    print(report)        # one row per tensor: shape, errors, tolerance, pass/fail
    report.ok            # True if every row passes

How a check runs. Inputs, parameters and a cotangent `v` are drawn in float64 from `seed`.
The hand-written backward runs on the backend under test (in `dtype`) and gives vᵀJ for
every tensor: compiled whole by the backend where it compiles (JAX: `jax.jit`, the way a
train step runs), or op by op with `jit=False`. An integer input (token ids into an
Embedding) is data, not a variable: it gets no gradient and no row. The oracle gives the
same quantity independently:

- "jax": the forward pass runs on the JAX backend in float64 and `jax.vjp` differentiates it
  (64-bit mode is switched on inside the check only, with `jax.enable_x64`).
- "fd": central differences in float64 on the backend under test, no JAX needed:
  vᵀJ e_i ≈ vᵀ(f(x + h e_i) - f(x - h e_i)) / 2h for every element of tensors up to
  `full_jacobian_max` elements; for larger ones, vᵀJu for a few random directions u.

A row passes when |hand - oracle| ≤ atol + rtol · |oracle| for every element. Tolerances:

    oracle   dtype under test   rtol    atol    why
    jax      float64            1e-8    1e-10   same math, different rounding (~1e-14)
    fd       float64            1e-5    1e-7    h = 1e-6: truncation ~h², rounding ~1e-16/h
    any      float32            2e-3    2e-4    float32 rounding (~1e-7) times the depth
    parity   float64            1e-10   1e-12   same code, other backend
    parity   float32            1e-4    1e-5

A real bug (a transposed weight gradient, a missing factor of 2) is off by O(1) relative,
orders of magnitude beyond these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np

from .backends import (
    Backend,
    available_backends,
    get_backend,
    to_numpy,
)
from .gradoracle import (
    TOLERANCES,
    GradientCheckError,
    GradReport,
    GradRow,
    Problem,
    compare,
    hand_written,
    output,
    run_problem,
)
from .layers.base import Context, Layer, describe, layer_classes, run_backward, run_forward
from .losses import Loss, get_loss, loss_classes
from .model import sample_shape
from .random import make_key
from .tree import tree_map, tree_paths

__all__ = ["GradRow", "GradReport", "GradientCheckError", "TOLERANCES", "check_function",
           "check_layer", "check_loss", "check_model", "check_parity", "assert_layer_gradients",
           "assert_gradients", "builtin_cases", "Case"]

# -- the public checks -------------------------------------------------------------------

def _random_params(layer: Layer, rng: np.random.Generator, in_shape: tuple) -> Any:
    """The layer's initial parameters plus noise, so no parameter sits at a special value
    (zero biases, unit scales) where a wrong gradient could still look right."""
    return tree_map(lambda p: np.asarray(p, dtype=np.float64) + 0.5 * rng.normal(size=np.shape(p)),
                    layer.init(rng, in_shape))


def _random_state(layer: Layer, in_shape: tuple, rng: np.random.Generator) -> Any:
    """Plausible non-trainable state: the initial state scaled by U(0.5, 1.5) and shifted by
    U(-0.1, 0.1), so running variances stay positive and running means are not all zero."""
    return tree_map(lambda s: np.asarray(s, dtype=np.float64) * rng.uniform(0.5, 1.5, np.shape(s))
                    + rng.uniform(-0.1, 0.1, np.shape(s)), layer.init_state(in_shape))


def _flat(prefix: str, tree: Any) -> dict[str, Any]:
    return {f"{prefix}{path}": leaf for path, leaf in tree_paths(tree)}


def _unflat(prefix: str, like: Any, flat: dict[str, Any]) -> Any:
    paths = iter(path for path, _ in tree_paths(like))
    return tree_map(lambda _: flat[prefix + next(paths)], like)


def _layer_problem(layer: Layer, input_shape: Sequence[int], seed: int, train: bool,
                   loss: Loss | None = None, target: np.ndarray | None = None,
                   given: dict[str, Any] | None = None) -> Problem:
    """`given` may hold "params", "x" and "state" to check at instead of random ones."""
    given = {k: _float64(v) for k, v in (given or {}).items() if v is not None}
    rng = np.random.default_rng(seed)
    _check_batch_shape(layer, input_shape)
    in_shape = tuple(input_shape[1:])
    params = given["params"] if "params" in given else _random_params(layer, rng, in_shape)
    state = given["state"] if "state" in given else _random_state(layer, in_shape, rng)
    x = given["x"] if "x" in given else np.asarray(layer.random_input(rng, tuple(input_shape)))
    ids = x.dtype.kind in "iub"  # integer inputs (token ids) are data: no gradient
    inputs = {**({} if ids else {"x": x}), **_flat("", params)}
    consts = {"key": make_key(seed, "numpy"), "state": state, "target": target,
              "ids": x if ids else None}

    def ctx_of(consts: Any) -> Context:
        return Context(train=train, key=consts["key"], state=consts["state"])

    def input_of(d: dict[str, Any], c: Any) -> Any:
        return c["ids"] if ids else d["x"]

    # through the checked calls: a user layer that breaks its contract (returns one value,
    # computes with NumPy on torch tensors or JAX tracers) gets an error naming it
    def apply(d: dict[str, Any], c: Any) -> Any:
        y = run_forward(layer, _unflat("", params, d), input_of(d, c), ctx_of(c))[0]
        return y if loss is None else loss.forward(y, c["target"])[0]

    def vjp(d: dict[str, Any], c: Any, v: Any) -> dict[str, Any]:
        p = _unflat("", params, d)
        y, cache = run_forward(layer, p, input_of(d, c), ctx_of(c))
        if loss is not None:
            _, loss_cache = loss.forward(y, c["target"])
            v = loss.backward(loss_cache, v)
        dx, grads = run_backward(layer, p, cache, v)
        return {**({} if ids else {"x": dx}), **_flat("", grads)}

    mode = "train" if train else "eval"
    subject = f"{describe(layer)} [{mode}] x: {tuple(input_shape)}"
    if loss is not None:
        subject += f" + {describe(loss)}"
    if given:
        subject += f" at the given {', '.join(sorted(given))}"
    return Problem(subject, inputs, apply, vjp, consts)


def _check_batch_shape(layer: Layer, input_shape: Sequence[int]) -> None:
    """The checkers draw a batch, so their input_shape includes the batch axis; a sample's
    shape alone (init_params' input_shape) gets an error that says so, not the layer's."""
    if isinstance(input_shape, (int, np.integer)):
        raise TypeError(f"input_shape is the shape of a batch, a tuple: (4, {int(input_shape)}) "
                        f"for 4 samples of {int(input_shape)} features, not the int "
                        f"{int(input_shape)}")
    shape = tuple(input_shape)
    try:
        sample_shape(layer, shape[1:], "the gradient check")
    except (ValueError, TypeError) as e:
        try:
            sample_shape(layer, shape, "the gradient check")
        except (ValueError, TypeError):
            raise e from None
        batch = (4, *shape)
        raise ValueError(
            f"the gradient checkers' input_shape includes the batch axis: {batch} for 4 "
            f"samples of shape {shape}? (init_params' input_shape does not.) As given, "
            f"{shape} means samples of shape {shape[1:]}: {e}") from None


def _float64(tree: Any) -> Any:
    """Arrays of any backend as NumPy arrays: floating ones in float64 (the checker's working
    precision), integer ones (token ids) as int64."""
    def one(a: Any) -> np.ndarray:
        host = np.asarray(to_numpy(a))
        return host.astype(np.int64) if host.dtype.kind in "iub" else \
            host.astype(np.float64)
    return tree_map(one, tree)


def check_layer(layer: Layer, input_shape: Sequence[int], *, backend: str | Backend | None = None,
                dtype: str = "float64", oracle: str = "auto", train: bool = False, seed: int = 0,
                rtol: float | None = None, atol: float | None = None, jit: bool | None = None
                ) -> GradReport:
    """Check `layer`'s backward for an input of `input_shape` (batch axis included), in eval
    mode or `train` mode: the input gradient and every parameter gradient.

    oracle: "jax" (jax.vjp in float64), "fd" (finite differences, no JAX needed), "both",
    or "auto" (JAX if installed, else finite differences; the report names the one used).
    jit: None compiles the hand-written pass where the backend compiles (JAX), False runs
    it op by op, True insists on compiling.
    """
    problem = _layer_problem(layer, input_shape, seed, train)
    return run_problem(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
                atol=atol, jit=jit)


def assert_layer_gradients(layer: Layer, input_shape: Sequence[int], **kwargs: Any
                           ) -> GradReport:
    """`check_layer`, raising GradientCheckError with the table if any tensor is wrong."""
    return check_layer(layer, input_shape, **kwargs).raise_if_failed()


def check_model(model: Layer, input_shape: Sequence[int] | None = None, *,
                loss: Loss | str | None = None, target: Any = None, x: Any = None,
                params: Any = None, model_state: Any = None,
                backend: str | Backend | None = None, dtype: str = "float64",
                oracle: str = "auto", train: bool = False, seed: int = 0,
                rtol: float | None = None, atol: float | None = None,
                jit: bool | None = None) -> GradReport:
    """Check a whole model (a Sequential or any container layer), optionally through a loss
    on `target` (required with a loss): every parameter of every layer and the input.

    By default the parameters and the input (of `input_shape`, batch axis included) are
    random. To check a trained model where it actually is, pass its `params` (and
    `model_state`, for BatchNorm) and a real batch `x: (N, ...)` with its `target`: arrays
    of any backend, checked in float64 on `backend` (integer x, token ids, stay integers).
    """
    if loss is not None:
        loss = get_loss(loss)
        if target is None:
            raise ValueError("check_model with a loss needs the target it is computed against")
    if x is not None:
        x_shape = tuple(np.shape(to_numpy(x)))
        if input_shape is not None and tuple(input_shape) != x_shape:
            raise ValueError(f"check_model: input_shape {tuple(input_shape)} but x has shape "
                             f"{x_shape}; pass one of them")
        input_shape = x_shape
    if input_shape is None:
        raise ValueError("check_model needs input_shape (random inputs) or x (a real batch)")
    problem = _layer_problem(model, input_shape, seed, train, loss,
                             None if target is None else np.asarray(to_numpy(target)),
                             {"params": params, "x": x, "state": model_state})
    return run_problem(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
                atol=atol, jit=jit)


def check_loss(loss: Loss | str, pred_shape: Sequence[int], target: np.ndarray | None = None, *,
               backend: str | Backend | None = None, dtype: str = "float64",
               oracle: str = "auto", seed: int = 0, rtol: float | None = None,
               atol: float | None = None, jit: bool | None = None) -> GradReport:
    """Check a loss's gradient with respect to its prediction (targets get none). Without a
    `target`, the loss's first example target maker draws one."""
    loss = get_loss(loss)
    rng = np.random.default_rng(seed)
    bounds = loss.pred_range
    pred = (rng.uniform(*bounds, size=tuple(pred_shape)) if bounds is not None
            else 2.0 * rng.normal(size=tuple(pred_shape)))
    if target is None:
        maker = next(iter(type(loss).examples(np.random.default_rng(seed))), None)
        if maker is None:
            raise ValueError(f"{loss!r} lists no examples; pass a target")
        target = maker[2](rng, tuple(pred_shape))
    target = np.asarray(target)

    def apply(d: dict[str, Any], c: Any) -> Any:
        return loss.forward(d["pred"], c)[0]

    def vjp(d: dict[str, Any], c: Any, v: Any) -> dict[str, Any]:
        _, cache = loss.forward(d["pred"], c)
        return {"pred": loss.backward(cache, v)}

    problem = Problem(f"{describe(loss)} pred: {tuple(pred_shape)}", {"pred": pred}, apply, vjp,
                       target)
    return run_problem(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
                atol=atol, jit=jit)


def check_function(forward: Callable[..., tuple[Any, Any]],
                   backward: Callable[[Any, Any], dict[str, Any]],
                   inputs: dict[str, np.ndarray], *, name: str | None = None,
                   backend: str | Backend | None = None, dtype: str = "float64",
                   oracle: str = "auto", seed: int = 0, rtol: float | None = None,
                   atol: float | None = None, jit: bool | None = None) -> GradReport:
    """Check any function with a hand-written backward.

    forward(**inputs) -> (y, cache), written with the array namespace of its inputs;
    backward(cache, dy) -> {input name: dL/d(input)}. `inputs`: name -> NumPy array.
    """
    def apply(d: dict[str, Any], c: Any) -> Any:
        return forward(**d)[0]

    def vjp(d: dict[str, Any], c: Any, v: Any) -> dict[str, Any]:
        return dict(backward(forward(**d)[1], v))

    host = {k: np.asarray(x, dtype=np.float64) for k, x in inputs.items()}
    label = name if name else str(getattr(forward, "__name__", "function"))
    problem = Problem(label, host, apply, vjp)
    return run_problem(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
                atol=atol, jit=jit)


def assert_gradients(report: GradReport) -> GradReport:
    """Raise GradientCheckError with the table if `report` has a failing row."""
    return report.raise_if_failed()


def check_parity(layer: Layer, input_shape: Sequence[int], *,
                 backends: Iterable[str] | None = None, dtype: str = "float32",
                 train: bool = False, seed: int = 0) -> GradReport:
    """The same layer, inputs, cotangent and seed on every backend: forward output and every
    gradient compared with NumPy's, at the per-dtype parity tolerance."""
    dtype = str(np.dtype(dtype))
    problem = _layer_problem(layer, input_shape, seed, train)
    numpy = get_backend("numpy")
    rng = np.random.default_rng(seed + 1)
    y_ref = output(problem, numpy, dtype)
    v = rng.normal(size=y_ref.shape)
    ref = hand_written(problem, numpy, dtype, v)
    rtol, atol = TOLERANCES[("parity", dtype)]
    rows, compared = [], []
    for name in (backends if backends is not None else available_backends()):
        other = get_backend(name)
        if other is numpy:
            continue
        compared.append(name)
        rows.append(compare(f"{name}:y", output(problem, other, dtype), y_ref, y_ref.shape,
                             "numpy", rtol, atol))
        got = hand_written(problem, other, dtype, v)
        for tensor, expected in ref.items():
            rows.append(compare(f"{name}:{tensor}", got.get(tensor), expected,
                                 expected.shape, "numpy", rtol, atol))
    return GradReport(problem.subject, "+".join(compared) + " vs numpy", dtype, rows)


# -- discovery: every built-in layer and loss, for the tests and `xbackprop gradcheck` ------

@dataclasses.dataclass
class Case:
    """One thing to check: a layer (in a mode) or a loss, with its shapes."""

    kind: str  # "layer" or "loss"
    name: str
    subject: Any
    shape: tuple[int, ...]
    train: bool = False
    target_maker: Callable | None = None

    def describe(self) -> str:
        """What is checked, as reports name it: `Dense(3) [eval] x: (2, 4)`."""
        if self.kind == "loss":
            return f"{describe(self.subject)} pred: {self.shape}"
        return f"{describe(self.subject)} [{'train' if self.train else 'eval'}] x: {self.shape}"

    def run(self, *, backend: str | Backend | None, dtype: str = "float64",
            oracle: str = "auto", seed: int = 0, jit: bool | None = None) -> GradReport:
        if self.kind == "loss":
            make = self.target_maker  # (None: check_loss draws a target itself)
            target = None if make is None else make(np.random.default_rng(seed), self.shape)
            return check_loss(self.subject, self.shape, target, backend=backend, dtype=dtype,
                              oracle=oracle, seed=seed, jit=jit)
        return check_layer(self.subject, self.shape, backend=backend, dtype=dtype,
                           oracle=oracle, train=self.train, seed=seed, jit=jit)


def layer_cases(classes: dict[str, type[Layer]], seed: int = 0, batch: int = 2
                ) -> list[Case]:
    """Each class's `examples()`, with `batch` samples, in eval mode and (for layers that
    behave differently when training) in train mode."""
    cases: list[Case] = []
    rng = np.random.default_rng(seed)
    for name, cls in sorted(classes.items()):
        for layer, shape in cls.examples(rng):
            modes = [False, True] if _train_differs(layer, shape) else [False]
            cases.extend(Case("layer", name, layer, (batch, *shape), train) for train in modes)
    return cases


def _train_differs(layer: Layer, shape: tuple[int, ...]) -> bool:
    """Whether `layer` may compute otherwise in train mode: it (or one it holds) draws random
    numbers (Dropout, attention with dropout), or it has state for samples of `shape`
    (BatchNorm; not a recurrent layer that carries none)."""
    return bool(getattr(layer, "stochastic", False)) or layer.init_state(shape) is not None


def loss_cases(seed: int = 0) -> list[Case]:
    rng = np.random.default_rng(seed)
    return [Case("loss", name, loss, tuple(shape), target_maker=maker)
            for name, cls in sorted(loss_classes().items())
            for loss, shape, maker in cls.examples(rng)]


def builtin_cases(seed: int = 0, batch: int = 2) -> list[Case]:
    """Every built-in layer and loss, as `Case`s (found by registry, not listed by hand)."""
    return layer_cases(layer_classes(), seed, batch) + loss_cases(seed)
