"""worked-221: one step of backpropagation through a 2-2-1 sigmoid network, number by number.

The classic worked example, without biases: inputs x1 = 0.35, x2 = 0.7; hidden unit 3 with
weights w13 = w23 = 0.2 and unit 4 with w14 = w24 = 0.3; output unit 5 with w35 = 0.3 and
w45 = 0.9; target t = 0.5; error E = ½ (t − y5)²; learning rate η = 1.

    forward    a_j = Σ_i w_ij y_i,   y_j = σ(a_j) = 1 / (1 + e^−a_j)
    backward   δ5 = ∂E/∂a5 = (y5 − t) · y5 (1 − y5)
               δj = ∂E/∂aj = δ5 w_j5 · y_j (1 − y_j)          (hidden units j = 3, 4)
    update     ∂E/∂w_ij = δj y_i,   w_ij ← w_ij − η ∂E/∂w_ij

Every number comes from `xb.explain`: the Dense and Sigmoid layers' own forward and backward
passes and the SGD update, printed with the tutorial's names.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

import xbackprop as xb

SUMMARY = "one backprop step through the 2-2-1 sigmoid network, every number (y5 ≈ 0.6651)"
GALLERY = "network.png"  # the picture the README shows

X = [[0.35, 0.7]]
TARGET = [[0.5]]
W_HIDDEN = [[0.2, 0.3],   # W[i, j]: from input i to hidden unit j (units 3 and 4)
            [0.2, 0.3]]
W_OUTPUT = [[0.3],        # from hidden units 3 and 4 to output unit 5
            [0.9]]
LEARNING_RATE = 1.0
NAMES = {"input": ["x1", "x2"], "0": ["a3", "a4"], "1": ["y3", "y4"], "2": ["a5"],
         "3": ["y5"], "0.W": [["w13", "w14"], ["w23", "w24"]], "2.W": [["w35"], ["w45"]],
         "loss": "E"}


def network() -> xb.Sequential:
    """2 inputs -> 2 sigmoid units -> 1 sigmoid unit, no biases."""
    return xb.Sequential([xb.Dense(2, use_bias=False), xb.Sigmoid(),
                          xb.Dense(1, use_bias=False), xb.Sigmoid()])


@dataclasses.dataclass(frozen=True)
class Result:
    record: xb.StepRecord  # the step, from the layers' own passes
    output_after: float    # y5 from the updated weights
    error_after: float     # E from the updated weights

    @property
    def output(self) -> float:
        return float(self.record.output[0, 0])

    @property
    def error(self) -> float:
        """t − y5, the error as the tutorial writes it."""
        return float(self.record.target[0, 0] - self.record.output[0, 0])

    def __str__(self) -> str:
        r = self.record
        return "\n\n".join([
            (f"worked-221: the 2-2-1 sigmoid network, one step of backprop (lr "
             f"{LEARNING_RATE:g}; {r.backend}, {r.dtype})"),
            r.format(precision=6),
            f"the error  t − y5 = {r.target[0, 0]:g} − {self.output:.6f} = {self.error:.6f}",
            r.chain_rule(precision=6),
            (f"after the update: y5 = {self.output_after:.6f} (was {self.output:.6f}), "
             f"E = {self.error_after:.6f} (was {r.loss:.6f})"),
        ])


def run(*, backend: str | xb.Backend | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False) -> Result:
    """The step in float64 (on JAX inside its 64-bit mode). No randomness: `seed` and
    `quick` change nothing."""
    backend = xb.get_backend(backend)
    model, loss = network(), xb.MSE("sum", scale=0.5)   # E = ½ Σ (y − t)²
    with backend.dtype_scope("float64"):
        params = xb.tree_to_backend([{"W": np.array(W_HIDDEN)}, {}, {"W": np.array(W_OUTPUT)},
                                     {}], backend, dtype="float64")
        record = xb.explain(model, params, X, TARGET, loss, xb.optim.sgd(LEARNING_RATE),
                            names=NAMES)
        updated = xb.tree_to_backend(record.new_params, backend)
        x, t = backend.asarray(X, dtype="float64"), backend.asarray(TARGET, dtype="float64")
        after = model(updated, x)
        error_after = float(loss(after, t))
        output_after = float(xb.to_numpy(after)[0, 0])
    return Result(record, output_after, error_after)


def draw(result: Result, out: Path) -> list[Path]:
    return [xb.plot.plot_network(result.record, out / "network.png",
                                 title="worked-221: forward values, deltas and updated weights")]
