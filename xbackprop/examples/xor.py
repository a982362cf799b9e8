"""xor: a 2-4-1 sigmoid network learns exclusive or, the problem no single-layer network can
solve (Minsky & Papert, 1969).

The four points (0, 0) → 0, (0, 1) → 1, (1, 0) → 1, (1, 1) → 0, all in one batch; weights
drawn uniformly from [0, 1), biases zero; E = ½ Σ (t − y)²; plain gradient descent with
learning rate 0.5 for 10,000 epochs (2,000 with --quick). The hidden layer bends the plane
so that one line can separate what no line could before: the decision surface shows it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb
from xbackprop.explain import format_table

SUMMARY = "a 2-4-1 sigmoid network learns XOR: learning curve, outputs, decision surface"
GALLERY = "decision_surface.png"  # the picture the README shows

LEARNING_RATE = 0.5


def network() -> xb.Sequential:
    """2 -> 4 sigmoid -> 1 sigmoid, weights uniform in [0, 1) as the classic tutorial."""
    uniform = xb.initializers.uniform(0.0, 1.0)
    return xb.Sequential([xb.Dense(4, weight_init=uniform), xb.Sigmoid(),
                          xb.Dense(1, weight_init=uniform), xb.Sigmoid()])


@dataclasses.dataclass(frozen=True)
class Result:
    model: xb.Sequential
    params: Any             # the trained parameters (NumPy)
    x: np.ndarray           # (4, 2) the XOR inputs
    target: np.ndarray      # (4, 1)
    output: np.ndarray      # (4, 1) the trained network's outputs
    losses: np.ndarray      # (epochs,) E per epoch
    backend: str

    @property
    def solved(self) -> bool:
        """Every point on the right side of 0.5."""
        return bool(((self.output > 0.5) == (self.target > 0.5)).all())

    def __str__(self) -> str:
        rows = [[f"{a:g}", f"{b:g}", f"{t:g}", f"{y:.4f}", str(int(y > 0.5))]
                for (a, b), t, y in zip(self.x, self.target[:, 0], self.output[:, 0])]
        curve = [[f"{k:,}", f"{self.losses[k - 1]:.6f}"] for k in _milestones(len(self.losses))]
        return "\n\n".join([
            (f"xor: 2-4-1 sigmoid network, ½ Σ (t − y)², SGD lr {LEARNING_RATE:g}, "
             f"{len(self.losses):,} epochs on {self.backend}"),
            "learning curve\n" + format_table(["epoch", "E"], curve, numeric=lambda c: True),
            "the four points\n" + format_table(["x1", "x2", "target", "output", "class"], rows,
                                               numeric=lambda c: True),
            "solved: every output on the right side of 0.5" if self.solved else
            "not solved yet: try more epochs or another --seed",
        ])


def _milestones(n: int) -> list[int]:
    return [k for k in (1, 10, 100, 1000, 10_000, 100_000) if k < n] + [n]


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, epochs: int | None = None) -> Result:
    """Train on the four points, full batch; `seed` draws the starting weights."""
    epochs = (2000 if quick else 10_000) if epochs is None else epochs  # 0 is not "default"
    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1, not {epochs}")
    model = network()
    x, y = xb.data.xor()
    fitted = xb.fit(model, x, y, loss=xb.MSE("sum", scale=0.5),
                    optimizer=xb.optim.sgd(LEARNING_RATE), epochs=epochs, batch_size=4,
                    shuffle=False, seed=seed, backend=backend, progress=progress)
    losses = np.array(fitted.history["loss"])
    output = xb.to_numpy(xb.predict(model, fitted.params, x))
    return Result(model, xb.to_numpy(fitted.params), x, y, output, losses,
                  xb.get_backend(backend).name)


OPTIONS = [(("--epochs",), {"type": int, "metavar": "N",
                            "help": "passes over the four points (default 10000; 2000 with "
                                    "--quick)"})]


def draw(result: Result, out: Path) -> list[Path]:
    params = xb.tree_to_backend(result.params, "numpy")

    def predict(points: np.ndarray) -> Any:
        return xb.predict(result.model, params, points)

    return [
        xb.plot.plot_curves({"E = ½ Σ (t − y)²": result.losses}, out / "learning_curve.png",
                            log=True, xlabel="epoch", ylabel="error E",
                            title="xor: the learning curve"),
        xb.plot.plot_decision_regions(predict, result.x, result.target,
                                      out / "decision_surface.png",
                                      bounds=(-0.15, 1.15, -0.15, 1.15),
                                      annotate=True, class_names=["XOR = 0", "XOR = 1"],
                                      title="xor: what the network outputs over [0, 1]²"),
    ]
