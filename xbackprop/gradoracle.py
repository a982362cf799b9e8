"""The gradient checker's engine: a function of named float64 tensors with a hand-written
vector-Jacobian product (`Problem`), run on the backend under test and against an oracle
(JAX's `jax.vjp`, or central finite differences), compared tensor by tensor into a
`GradReport`. `xbackprop.gradcheck` builds problems from layers, losses and models; its
docstring explains the oracles and the tolerances (`TOLERANCES`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import (
    Backend,
    BackendUnavailableError,
    get_backend,
    owner_of,
    to_numpy,
    tree_to_backend,
)

__all__ = ["GradRow", "GradReport", "GradientCheckError", "TOLERANCES", "ORACLES", "FD_STEP",
           "FULL_JACOBIAN_MAX", "DIRECTIONS", "Problem", "hand_written", "output", "compare",
           "run_problem"]

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
class Problem:
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


def hand_written(problem: Problem, backend: Backend, dtype: str, v: np.ndarray,
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


def output(problem: Problem, backend: Backend, dtype: str, jit: bool | None = None
            ) -> np.ndarray:
    with backend.dtype_scope(dtype):
        inputs = _move(problem.inputs, backend, dtype)
        y = _runner(backend, problem.apply, jit)(inputs, _move(problem.consts, backend, dtype))
        return np.asarray(to_numpy(y), dtype=np.float64)


def _jax_oracle(problem: Problem, v: np.ndarray) -> dict[str, np.ndarray]:
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


def _fd_oracle(problem: Problem, backend: Backend, v: np.ndarray, rng: np.random.Generator,
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


def compare(name: str, hand: np.ndarray | None, oracle: np.ndarray, expected_shape: tuple,
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


def run_problem(problem: Problem, *, backend: str | Backend | None, dtype: str, oracle: str,
         seed: int, rtol: float | None, atol: float | None, jit: bool | None = None
         ) -> GradReport:
    target = get_backend(backend)
    dtype = str(np.dtype(dtype))
    oracles = _oracles(oracle)
    rng = np.random.default_rng(seed + 1)
    y = output(problem, get_backend("numpy"), "float64")
    v = rng.normal(size=y.shape)  # the cotangent, the same for hand-written and oracles
    hand = hand_written(problem, target, dtype, v, jit)
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
                rows.append(compare(name, hand.get(name), reference[name], x.shape,
                                     "jax.vjp", *tol))
        else:
            compared = _fd_oracle(problem, target, v, rng, hand)
            for name, x in problem.inputs.items():
                if name in compared:
                    h, o, mode = compared[name]
                    rows.append(compare(name, h, o, x.shape, mode, *tol))
                else:  # missing or mis-shaped: let compare say so
                    rows.append(compare(name, hand.get(name), np.zeros(x.shape), x.shape,
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
