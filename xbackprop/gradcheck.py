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
    BackendUnavailableError,
    available_backends,
    get_backend,
    owner_of,
    to_numpy,
    tree_to_backend,
)
from .layers.base import Context, Layer, describe, layer_classes, run_backward, run_forward
from .losses import Loss, get_loss, loss_classes
from .model import sample_shape
from .random import make_key
from .tree import tree_map, tree_paths

__all__ = ["GradRow", "GradReport", "GradientCheckError", "TOLERANCES", "check_function",
           "check_layer", "check_loss", "check_model", "check_parity", "assert_layer_gradients",
           "assert_gradients", "builtin_cases", "Case"]

FD_STEP = 1e-6
FULL_JACOBIAN_MAX = 128  # elements; larger tensors get random-direction checks
DIRECTIONS = 4

#: (oracle, dtype) -> (rtol, atol); see the module docstring.
TOLERANCES: dict[tuple[str, str], tuple[float, float]] = {
    ("jax", "float64"): (1e-8, 1e-10),
    ("fd", "float64"): (1e-5, 1e-7),
    ("jax", "float32"): (2e-3, 2e-4),
    ("fd", "float32"): (2e-3, 2e-4),
    ("parity", "float64"): (1e-10, 1e-12),
    ("parity", "float32"): (1e-4, 1e-5),
}

ORACLES = ("jax", "fd")


class GradientCheckError(AssertionError):
    """A gradient disagrees with its oracle; the message holds the report table."""


@dataclasses.dataclass
class GradRow:
    """One tensor's comparison. `worst`: (index, hand-written value, oracle value)."""

    tensor: str
    shape: tuple[int, ...]
    oracle: str
    max_abs: float
    max_rel: float
    rtol: float
    atol: float
    ok: bool
    note: str = ""
    worst: list[tuple[tuple[int, ...], float, float]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class GradReport:
    """The rows of one check. `print(report)` shows the table; `report.ok` is the verdict."""

    subject: str
    backend: str
    dtype: str
    rows: list[GradRow]

    @property
    def ok(self) -> bool:
        return all(row.ok for row in self.rows)

    def failures(self) -> list[GradRow]:
        return [row for row in self.rows if not row.ok]

    def __str__(self) -> str:
        head = f"{self.subject} on {self.backend}, {self.dtype}: " + (
            "all gradients match" if self.ok else
            f"{len(self.failures())} of {len(self.rows)} tensors WRONG")
        table = [("tensor", "shape", "oracle", "max abs err", "max rel err", "tolerance", "")]
        for r in self.rows:
            table.append((r.tensor, str(r.shape), r.oracle, f"{r.max_abs:.2e}",
                          f"{r.max_rel:.2e}", f"rtol {r.rtol:.0e} atol {r.atol:.0e}",
                          "ok" if r.ok else "FAIL"))
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        lines = [head] + ["  " + "  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip()
                          for row in table]
        for r in self.failures():
            if r.note:
                lines.append(f"  {r.tensor}: {r.note}")
            for index, hand, oracle in r.worst:
                lines.append(f"  {r.tensor}{list(index)}: hand-written {hand:+.8e}  "
                             f"oracle {oracle:+.8e}  diff {hand - oracle:+.2e}")
        return "\n".join(lines)

    def raise_if_failed(self) -> GradReport:
        if not self.ok:
            raise GradientCheckError("\n" + str(self))
        return self


# -- what is checked: a function of named float64 tensors with a hand-written vjp ----------

@dataclasses.dataclass
class _Problem:
    """`apply(inputs, consts) -> y` and `vjp(inputs, consts, v) -> {name: vᵀ ∂y/∂input}`,
    for `inputs` (name -> float64 host array) and fixed `consts` (a pytree: targets, keys,
    layer state) that move to whichever backend runs them."""

    subject: str
    inputs: dict[str, np.ndarray]
    apply: Callable[[dict[str, Any], Any], Any]
    vjp: Callable[[dict[str, Any], Any, Any], dict[str, Any]]
    consts: Any = None


def _move(tree: Any, backend: Backend, dtype: str) -> Any:
    return tree_to_backend(tree, backend, dtype=dtype)


def _runner(backend: Backend, fn: Callable, jit: bool | None) -> Callable:
    """`fn` compiled by `backend` (jit None or True; JAX: `jax.jit`), or run op by op
    inside its scope (jit False)."""
    if jit is True and not backend.compiles:
        raise ValueError(f"jit=True: backend {backend.name!r} does not compile; leave jit at "
                         "None (compile where the backend compiles)")
    if jit is not False:
        return backend.compile(fn)

    def eager(*args: Any) -> Any:
        with backend.scope():
            return fn(*args)
    return eager


def _mode(backend: Backend, jit: bool | None) -> str:
    """The backend's name as a report shows it: "jax (jit)", "jax (eager)", "numpy"."""
    if not backend.compiles:
        return backend.name
    return f"{backend.name} ({'eager' if jit is False else 'jit'})"


def _hand_written(problem: _Problem, backend: Backend, dtype: str, v: np.ndarray,
                  jit: bool | None = None) -> dict[str, np.ndarray]:
    with backend.dtype_scope(dtype):
        inputs = _move(problem.inputs, backend, dtype)
        consts = _move(problem.consts, backend, dtype)
        # compiled on JAX by default (one compilation per check, and what a step runs)
        grads = _runner(backend, problem.vjp, jit)(inputs, consts,
                                                    backend.asarray(v, dtype=dtype))
        grads = {k: g for k, g in grads.items() if g is not None}  # (integer inputs: none)
        for name, g in grads.items():
            owner = owner_of(g)
            if owner is not None and not backend.is_array(g):  # would pass once on the host
                raise TypeError(
                    f"{problem.subject}: on the {backend.name} backend the hand-written "
                    f"gradient of {name} is a {owner.name} array: the backward computes with "
                    "another library than its inputs' (np.* on them?). Use the inputs' "
                    "namespace: xp = xbackprop.backend_of(x).xp")
        return {k: np.asarray(to_numpy(g), dtype=np.float64) for k, g in grads.items()}


def _output(problem: _Problem, backend: Backend, dtype: str, jit: bool | None = None
            ) -> np.ndarray:
    with backend.dtype_scope(dtype):
        inputs = _move(problem.inputs, backend, dtype)
        y = _runner(backend, problem.apply, jit)(inputs, _move(problem.consts, backend, dtype))
        return np.asarray(to_numpy(y), dtype=np.float64)


def _jax_oracle(problem: _Problem, v: np.ndarray) -> dict[str, np.ndarray]:
    try:
        import jax  # deferred: jax is heavy and optional (the oracle falls back to fd)
    except ImportError as e:
        raise BackendUnavailableError(
            "the 'jax' gradient oracle needs JAX: pip install 'xbackprop[jax]', or use "
            "oracle='fd' (finite differences)") from e
    backend = get_backend("jax")

    def vjp(inputs: dict[str, Any], consts: Any, cotangent: Any) -> dict[str, Any]:
        _, pullback = jax.vjp(lambda d: problem.apply(d, consts), inputs)
        return pullback(cotangent)[0]

    with jax.enable_x64(True):
        # compiled whole: one compilation instead of one per eager operation and shape
        grads = jax.jit(vjp)(_move(problem.inputs, backend, "float64"),
                             _move(problem.consts, backend, "float64"),
                             backend.asarray(v, dtype="float64"))
        return {k: np.asarray(g, dtype=np.float64) for k, g in grads.items()}


def _fd_oracle(problem: _Problem, backend: Backend, v: np.ndarray, rng: np.random.Generator,
               hand: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """Per tensor: (hand-written values, oracle values, mode), both as compared: all
    elements for small tensors, projections on random directions for large ones."""
    with backend.dtype_scope("float64"):
        consts = _move(problem.consts, backend, "float64")
        apply = backend.compile(problem.apply)

        def objective(inputs: dict[str, np.ndarray]) -> float:
            y = apply(_move(inputs, backend, "float64"), consts)
            return float(np.sum(np.asarray(to_numpy(y), dtype=np.float64) * v))

        def derivative(name: str, direction: np.ndarray) -> float:
            plus = dict(problem.inputs, **{name: problem.inputs[name] + FD_STEP * direction})
            minus = dict(problem.inputs, **{name: problem.inputs[name] - FD_STEP * direction})
            return (objective(plus) - objective(minus)) / (2 * FD_STEP)

        out = {}
        for name, x in problem.inputs.items():
            if name not in hand or hand[name].shape != x.shape:
                continue
            if x.size <= FULL_JACOBIAN_MAX:
                oracle = np.empty(x.shape)
                for i in np.ndindex(x.shape):
                    e = np.zeros(x.shape)
                    e[i] = 1.0
                    oracle[i] = derivative(name, e)
                out[name] = (hand[name], oracle, "fd")
            else:
                dirs = [rng.normal(size=x.shape) for _ in range(DIRECTIONS)]
                oracle = np.array([derivative(name, u) for u in dirs])
                projected = np.array([np.sum(hand[name] * u) for u in dirs])
                out[name] = (projected, oracle, f"fd·{DIRECTIONS}dirs")
        return out


def _compare(name: str, hand: np.ndarray | None, oracle: np.ndarray, expected_shape: tuple,
             oracle_name: str, rtol: float, atol: float, top: int = 3) -> GradRow:
    if hand is None:
        return GradRow(name, expected_shape, oracle_name, np.inf, np.inf, rtol, atol, False,
                       "the hand-written backward returned no gradient for this tensor")
    if hand.shape != oracle.shape:
        return GradRow(name, expected_shape, oracle_name, np.inf, np.inf, rtol, atol, False,
                       f"hand-written gradient has shape {hand.shape}, expected "
                       f"{oracle.shape} (a transposed or mis-reshaped gradient?)")
    diff = np.abs(hand - oracle)
    finite = np.isfinite(hand).all()
    bound = atol + rtol * np.abs(oracle)
    bad = ~(diff <= bound)
    rel = diff / np.maximum(np.abs(oracle), atol)
    row = GradRow(name, expected_shape, oracle_name,
                  float(diff.max()) if diff.size else 0.0, float(rel.max()) if rel.size else 0.0,
                  rtol, atol, bool(finite and not bad.any()))
    if not finite:
        row.note = "hand-written gradient has NaN or inf"
    if not row.ok:
        order = np.argsort(-(diff - bound).ravel())[:top]
        row.worst = [(tuple(int(i) for i in np.unravel_index(k, diff.shape)),
                      float(hand.ravel()[k]), float(oracle.ravel()[k])) for k in order]
    return row


def _run(problem: _Problem, *, backend: str | Backend | None, dtype: str, oracle: str,
         seed: int, rtol: float | None, atol: float | None, jit: bool | None = None
         ) -> GradReport:
    target = get_backend(backend)
    dtype = str(np.dtype(dtype))
    oracles = _oracles(oracle)
    rng = np.random.default_rng(seed + 1)
    y = _output(problem, get_backend("numpy"), "float64")
    v = rng.normal(size=y.shape)  # the cotangent, the same for hand-written and oracles
    hand = _hand_written(problem, target, dtype, v, jit)
    rows = []
    extra = sorted(set(hand) - set(problem.inputs))
    for name in extra:
        rows.append(GradRow(name, hand[name].shape, "-", np.inf, np.inf, 0, 0, False,
                            "gradient for a tensor that is not an input or parameter"))
    for which in oracles:
        default = TOLERANCES[(which, dtype)]
        tol = (rtol if rtol is not None else default[0], atol if atol is not None else default[1])
        if which == "jax":
            reference = _jax_oracle(problem, v)
            for name, x in problem.inputs.items():
                rows.append(_compare(name, hand.get(name), reference[name], x.shape,
                                     "jax.vjp", *tol))
        else:
            compared = _fd_oracle(problem, target, v, rng, hand)
            for name, x in problem.inputs.items():
                if name in compared:
                    h, o, mode = compared[name]
                    rows.append(_compare(name, h, o, x.shape, mode, *tol))
                else:  # missing or mis-shaped: let _compare say so
                    rows.append(_compare(name, hand.get(name), np.zeros(x.shape), x.shape,
                                         "fd", *tol))
    return GradReport(problem.subject, _mode(target, jit), dtype, rows)


def _oracles(oracle: str) -> tuple[str, ...]:
    if oracle == "both":
        return ORACLES
    if oracle == "auto":
        try:
            import jax  # noqa: F401  (deferred: is jax, heavy and optional, there?)
        except ImportError:
            return ("fd",)
        return ("jax",)
    if oracle not in ORACLES:
        raise ValueError(f"oracle must be 'jax', 'fd', 'both' or 'auto', not {oracle!r}")
    return (oracle,)


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
                   given: dict[str, Any] | None = None) -> _Problem:
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
    return _Problem(subject, inputs, apply, vjp, consts)


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
    return _run(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
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
    return _run(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
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

    problem = _Problem(f"{describe(loss)} pred: {tuple(pred_shape)}", {"pred": pred}, apply, vjp,
                       target)
    return _run(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
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
    problem = _Problem(label, host, apply, vjp)
    return _run(problem, backend=backend, dtype=dtype, oracle=oracle, seed=seed, rtol=rtol,
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
    y_ref = _output(problem, numpy, dtype)
    v = rng.normal(size=y_ref.shape)
    ref = _hand_written(problem, numpy, dtype, v)
    rtol, atol = TOLERANCES[("parity", dtype)]
    rows, compared = [], []
    for name in (backends if backends is not None else available_backends()):
        other = get_backend(name)
        if other is numpy:
            continue
        compared.append(name)
        rows.append(_compare(f"{name}:y", _output(problem, other, dtype), y_ref, y_ref.shape,
                             "numpy", rtol, atol))
        got = _hand_written(problem, other, dtype, v)
        for tensor, expected in ref.items():
            rows.append(_compare(f"{name}:{tensor}", got.get(tensor), expected,
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
