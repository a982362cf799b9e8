"""worked-222: the classic 2-2-2 network worked through by hand, then trained.

Matt Mazur's "A Step by Step Backpropagation Example" (2015): inputs i1 = 0.05, i2 = 0.10;
weights w1..w8 = 0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55 (w1, w2 into h1; w3, w4 into
h2; w5, w6 into o1; w7, w8 into o2); biases b1 = 0.35, b2 = 0.60, kept fixed; sigmoid units;
targets 0.01, 0.99; E = Σ ½ (target − out)²; learning rate 0.5.

One step prints every value and gradient, and each ∂E/∂w as its chain-rule factors:

    ∂E/∂w5 = ∂E/∂out_o1 × ∂out_o1/∂net_o1 × ∂net_o1/∂w5
           = 0.74136507 × 0.186815602 × 0.593269992 = 0.082167041

Then the same step is repeated `--steps` times (default 10,000) and the error falls to
3.5102e-05. All numbers come from the layers' own passes (`xb.explain`, `make_train_step`).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb
from xbackprop.explain import format_table
from xbackprop.progress import ProgressBar

SUMMARY = "Mazur's 2-2-2 network: one step by hand (E = 0.298371109), then --steps N of them"
GALLERY = "error.png"  # the picture the README shows
OPTIONS = [(("--steps",), {"type": int, "metavar": "N",
                           "help": "training steps (default 10000; 1000 with --quick)"})]

X = [[0.05, 0.10]]
TARGET = [[0.01, 0.99]]
W = [0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55]  # w1..w8
B1, B2 = 0.35, 0.60
LEARNING_RATE = 0.5
NAMES: dict[str, Any] = {
    "input": ["i1", "i2"], "0": ["net_h1", "net_h2"], "1": ["h1", "h2"],
    "2": ["net_o1", "net_o2"], "3": ["o1", "o2"],
    "0.W": [["w1", "w3"], ["w2", "w4"]], "2.W": [["w5", "w7"], ["w6", "w8"]],
    "0.b": ["b1", "b1"], "2.b": ["b2", "b2"], "loss": "E"}


def network() -> tuple[xb.Sequential, list[dict[str, np.ndarray]]]:
    """The model and its starting parameters (Dense W[i, j]: from input i to unit j)."""
    w1, w2, w3, w4, w5, w6, w7, w8 = W
    model = xb.Sequential([xb.Dense(2), xb.Sigmoid(), xb.Dense(2), xb.Sigmoid()])
    params = [{"W": np.array([[w1, w3], [w2, w4]]), "b": np.array([B1, B1])}, {},
              {"W": np.array([[w5, w7], [w6, w8]]), "b": np.array([B2, B2])}, {}]
    return model, params


@dataclasses.dataclass(frozen=True)
class Result:
    record: xb.StepRecord    # the first step, from the layers' own passes
    errors: np.ndarray       # (steps,) E computed by step k, before its update
    final_error: float       # E after all the updates
    final_output: np.ndarray  # (2,) o1, o2 after all the updates

    @property
    def steps(self) -> int:
        return len(self.errors)

    def __str__(self) -> str:
        r = self.record
        rows = [[f"{k:,}", f"{self.errors[k - 1]:.9g}"] for k in _milestones(self.steps)]
        training = (f"the same step, {self.steps:,} times (E computed by step k, before its "
                    "update)\n" + format_table(["step k", "E"], rows, numeric=lambda c: True))
        outputs = ", ".join(f"{n} {v:.9f} (target {t:g})" for n, v, t in
                            zip(NAMES["3"], self.final_output, r.target[0]))
        return "\n\n".join([
            (f"worked-222: Mazur's 2-2-2 network, biases fixed, lr {LEARNING_RATE:g} "
             f"({r.backend}, {r.dtype})"),
            r.format(precision=9),
            r.chain_rule(precision=9),
            training,
            f"after {self.steps:,} steps: E = {self.final_error:.5g}; {outputs}",
        ])


def _milestones(steps: int) -> list[int]:
    marks = [k for k in (1, 2, 10, 100, 1000, 10_000, 100_000, 1_000_000) if k < steps]
    return marks + [steps] if steps else []


def run(*, backend: str | xb.Backend | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, steps: int | None = None) -> Result:
    """One explained step, then `steps` training steps (default 10,000; 1,000 if `quick`),
    in float64 (JAX: in 64-bit mode). No randomness: `seed` changes nothing."""
    steps = (1000 if quick else 10_000) if steps is None else steps
    if steps < 1:
        raise ValueError(f"--steps must be at least 1, not {steps}")
    backend = xb.get_backend(backend)
    model, host = network()
    loss = xb.MSE("sum", scale=0.5)                             # E = ½ Σ (target − out)²
    optimizer = xb.optim.freeze(xb.optim.sgd(LEARNING_RATE), ["*.b"])  # biases stay fixed
    with backend.dtype_scope("float64"):
        params = xb.tree_to_backend(host, backend, dtype="float64")
        record = xb.explain(model, params, X, TARGET, loss, optimizer, names=NAMES)
        x, t = backend.asarray(X, dtype="float64"), backend.asarray(TARGET, dtype="float64")
        step = xb.make_train_step(model, loss, optimizer, backend=backend)
        state = xb.TrainState.create(params, optimizer)
        per_step = []
        bar = ProgressBar(steps, "training", enabled=progress)
        for _ in range(steps):
            state, error = step(state, (x, t))
            per_step.append(error)
            bar.update(1, **({"E": float(error)} if bar.needs_refresh() else {}))
        out = model(state.params, x)
        final_error = float(loss(out, t))
        bar.close(E=final_error)
        errors = np.array(xb.to_numpy(per_step))  # (stacking 10,000 JAX arrays compiles slowly)
        final_output = xb.to_numpy(out)[0]
    return Result(record, errors, final_error, final_output)


def draw(result: Result, out: Path) -> list[Path]:
    steps = np.arange(1, result.steps + 1)
    return [
        xb.plot.plot_network(result.record, out / "network.png",
                             title="worked-222: the first step (Mazur's 2-2-2 network)"),
        xb.plot.plot_curves({"E (total error)": result.errors}, out / "error.png", x=steps,
                            log=True, logx=True, xlabel="step", ylabel="E = Σ ½ (target − out)²",
                            title=f"worked-222: the error over {result.steps:,} steps"),
    ]
