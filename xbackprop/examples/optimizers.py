"""optimizers: six update rules race downhill on two functions, from the same start.

The functions, each with its gradient written by hand (and checked against JAX autodiff):

    bowl        f(x, y) = x² + y²                   ∇f = (2x, 2y)
    Rosenbrock  f(x, y) = (1 − x)² + 100 (y − x²)²  ∇f = (−2 (1 − x) − 400 x (y − x²),
                                                          200 (y − x²))

The bowl is easy for everyone. Rosenbrock's minimum (1, 1) lies at the end of a long,
curved, flat-bottomed valley: plain gradient descent finds the valley at once and then
crawls along it; momentum and Nesterov build up speed along it; Adam, RMSProp and AdaGrad
scale each coordinate's step by its gradient history.

Each rule runs `--steps` updates (default 2,000; 300 with --quick) from (−1.5, 2) through
`xb.optim.minimize`, the library's own optimizers on a plain function, with a learning
rate that suits it on that function (the table shows them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb
from xbackprop.explain import format_table

SUMMARY = "SGD, momentum, Nesterov, Adam, RMSProp, AdaGrad on x² + y² and Rosenbrock: paths"
GALLERY = "rosenbrock_paths.png"  # the picture the README shows
OPTIONS = [(("--steps",), {"type": int, "metavar": "N",
                           "help": "updates per optimizer (default 2000; 300 with --quick)"})]

START = (-1.5, 2.0)


def bowl(p: Any) -> Any:
    return p[0] ** 2 + p[1] ** 2


def bowl_grad(p: Any) -> Any:
    return 2 * p[0], 2 * p[1]


def rosenbrock(p: Any) -> Any:
    return (1 - p[0]) ** 2 + 100 * (p[1] - p[0] ** 2) ** 2


def rosenbrock_grad(p: Any) -> Any:
    return -2 * (1 - p[0]) - 400 * p[0] * (p[1] - p[0] ** 2), 200 * (p[1] - p[0] ** 2)


@dataclasses.dataclass(frozen=True)
class Surface:
    formula: str
    f: Callable[[Any], Any]
    grad: Callable[[Any], Any]
    minimum: tuple[float, float]
    bounds: tuple[float, float, float, float]  # for the pictures: x_min, x_max, y_min, y_max
    log: bool                                  # pictures on a log scale
    rates: dict[str, float]                    # optimizer -> learning rate on this surface


SURFACES = {
    "bowl": Surface("x² + y²", bowl, bowl_grad, (0.0, 0.0), (-2.2, 2.2, -1.2, 2.6), False,
                    {"sgd": 0.05, "momentum": 0.02, "nesterov": 0.02, "adam": 0.05,
                     "rmsprop": 0.01, "adagrad": 0.5}),
    "rosenbrock": Surface("(1 − x)² + 100 (y − x²)²", rosenbrock, rosenbrock_grad, (1.0, 1.0),
                          (-2.0, 2.0, -1.0, 3.0), True,
                          {"sgd": 1.5e-3, "momentum": 1e-3, "nesterov": 1e-3, "adam": 0.05,
                           "rmsprop": 3e-3, "adagrad": 0.5}),
}
RULES: dict[str, Callable[..., xb.optim.Optimizer]] = {
    "sgd": xb.optim.sgd, "momentum": xb.optim.momentum, "nesterov": xb.optim.nesterov,
    "adam": xb.optim.adam, "rmsprop": xb.optim.rmsprop, "adagrad": xb.optim.adagrad}


def _gradient_check(surface: Surface, backend: xb.Backend) -> xb.GradReport:
    """The hand-written gradient against the oracle (jax.vjp, else finite differences) at
    the start, in float64."""
    def forward(p: Any) -> tuple[Any, Any]:
        return surface.f(p), p

    def backward(p: Any, dy: Any) -> dict[str, Any]:
        return {"p": dy * xb.backend_of(p).xp.stack(surface.grad(p))}

    return xb.check_function(forward, backward, {"p": np.array(START)}, name=surface.formula,
                             backend=backend)


@dataclasses.dataclass(frozen=True)
class Result:
    paths: dict[str, dict[str, xb.optim.Trajectory]]  # surface -> optimizer -> its path
    checks: dict[str, xb.GradReport]                    # surface -> gradient check
    backend: str

    @property
    def steps(self) -> int:
        return len(next(iter(next(iter(self.paths.values())).values())).values) - 1

    def __str__(self) -> str:
        marks = [k for k in (10, 100) if k < self.steps] + [self.steps]
        checked = ", ".join(f"{name} {'ok' if report.ok else 'WRONG'} ({report.rows[0].oracle}, "
                            f"max rel err {max(row.max_rel for row in report.rows):.1e})"
                            for name, report in self.checks.items())
        parts = [(f"optimizers: six update rules from {START}, {self.steps:,} steps each, on "
                  f"{self.backend}"), f"hand-written gradients at the start: {checked}"]
        for name, paths in self.paths.items():
            surface = SURFACES[name]
            rows = [[rule, f"{surface.rates[rule]:g}", *(f"{path.values[k]:.3g}" for k in marks),
                     "({}, {})".format(*(f"{round(float(v), 4) + 0.0:.4f}" for v in path.x))]
                    for rule, path in paths.items()]  # (rounded first: no "-0.0000")
            header = ["optimizer", "lr", *(f"f after {k:,}" for k in marks), "ends at"]
            parts.append(f"{name}: f(x, y) = {surface.formula}, minimum 0 at "
                         f"{surface.minimum}\n" + format_table(header, rows,
                                                              numeric=lambda c: c >= 1))
        return "\n\n".join(parts)


def run(*, backend: str | xb.Backend | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, steps: int | None = None) -> Result:
    """Every rule on every surface; no randomness (`seed` changes nothing)."""
    steps = (300 if quick else 2000) if steps is None else steps
    backend = xb.get_backend(backend)
    paths: dict[str, dict[str, xb.optim.Trajectory]] = {}
    for name, surface in SURFACES.items():
        paths[name] = {rule: xb.optim.minimize(surface.f, surface.grad, START,
                                               RULES[rule](lr), steps, backend=backend)
                       for rule, lr in surface.rates.items()}
    checks = {name: _gradient_check(s, backend) for name, s in SURFACES.items()}
    return Result(paths, checks, backend.name)


def draw(result: Result, out: Path) -> list[Path]:
    pictures = []
    for name, paths in result.paths.items():
        surface = SURFACES[name]
        points = {rule: path.points for rule, path in paths.items()}
        title = f"{name}: f(x, y) = {surface.formula}, {result.steps:,} steps from {START}"
        pictures.append(xb.plot.plot_optimizer_paths(
            surface.f, points, out / f"{name}_paths.png", title=title, bounds=surface.bounds,
            minimum=surface.minimum, log=surface.log))
        pictures.append(xb.plot.plot_surface(
            surface.f, points, out / f"{name}_surface.png", title=title,
            bounds=surface.bounds, log=surface.log))
    return pictures
