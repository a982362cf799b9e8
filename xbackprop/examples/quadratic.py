"""quadratic: a 1-100-100-100-1 ReLU network learns y = x² + 2x − 3.

The data: x from −7 to 5 (excluded) in steps of 0.05, 240 points, and y = x² + 2x − 3
exactly. The network: three hidden layers of 100 ReLU units (He-initialised), a linear
output. Training as the classic tutorial does it: loss ½ Σ (y − ŷ)² over each mini-batch
of 16, plain SGD (no momentum) with learning rate 1e-4, here decayed along a cosine to 0
so that it settles; 1,000 epochs (300 with --quick).

A ReLU network is piecewise linear: it bends the line where units switch on and off. On
the training range it fits the parabola (R² ≥ 0.99); outside it, where there was no data,
it carries on in straight lines. The picture shows both.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb
from xbackprop.metrics import regression_scores

SUMMARY = "a 1-100-100-100-1 ReLU network fits y = x² + 2x − 3: the fit, loss curve, RMSE, R²"
GALLERY = "fit.png"  # the picture the README shows

LEARNING_RATE = 1e-4
BATCH_SIZE = 16
LOW, HIGH, STEP = -7.0, 5.0, 0.05


def f(x: np.ndarray) -> np.ndarray:
    return x ** 2 + 2 * x - 3


def network() -> xb.Sequential:
    layers: list[xb.Layer] = []
    for _ in range(3):
        layers += [xb.Dense(100, weight_init="he_normal"), xb.ReLU()]
    return xb.Sequential([*layers, xb.Dense(1, weight_init="he_normal")])


@dataclasses.dataclass(frozen=True)
class Result:
    model: xb.Sequential
    params: Any            # trained parameters (NumPy)
    x: np.ndarray          # (240, 1) training inputs
    y: np.ndarray          # (240, 1) targets
    losses: np.ndarray     # (epochs,) mean of the batch losses per epoch
    train: dict[str, float]   # rmse, r2, ... on the training points
    between: dict[str, float]  # the same halfway between them (x + 0.025): unseen points
    backend: str

    def __str__(self) -> str:
        return "\n".join([
            (f"quadratic: y = x² + 2x − 3 on [{LOW:g}, {HIGH:g}) step {STEP:g} "
             f"({len(self.x)} points), 1-100-100-100-1 ReLU"),
            (f"trained {len(self.losses):,} epochs on {self.backend}: ½ Σ (y − ŷ)² per "
             f"batch of {BATCH_SIZE}, plain SGD, lr {LEARNING_RATE:g} with cosine decay"),
            (f"loss (mean over the epoch's batches): {self.losses[0]:.4g} in the first "
             f"epoch, {self.losses[-1]:.4g} in the last"),
            "",
            "                          RMSE      R²",
            f"  the training points   {self.train['rmse']:7.4f}  {self.train['r2']:.5f}",
            f"  halfway between them  {self.between['rmse']:7.4f}  {self.between['r2']:.5f}",
        ])


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False) -> Result:
    epochs = 300 if quick else 1000
    x = np.arange(LOW, HIGH, STEP)[:, None]
    y = f(x)
    model = network()
    steps = epochs * -(-len(x) // BATCH_SIZE)
    optimizer = xb.optim.sgd(xb.schedules.cosine_decay(LEARNING_RATE, steps))
    fitted = xb.fit(model, x, y, loss=xb.MSE("sum", scale=0.5), optimizer=optimizer,
                    epochs=epochs, batch_size=BATCH_SIZE, seed=seed, backend=backend,
                    progress="epochs" if progress else False)
    losses = np.array(fitted.history["loss"])
    between = x[:-1] + STEP / 2
    return Result(model, xb.to_numpy(fitted.params), x, y, losses,
                  regression_scores(xb.predict(model, fitted.params, x), y),
                  regression_scores(xb.predict(model, fitted.params, between), f(between)),
                  xb.get_backend(backend).name)


def draw(result: Result, out: Path) -> list[Path]:
    params = xb.tree_to_backend(result.params, "numpy")
    wide = np.linspace(LOW - 2.5, HIGH + 2.5, 600)[:, None]
    prediction = xb.predict(result.model, params, wide)
    return [xb.plot.plot_fit(
        result.x, result.y, prediction, out / "fit.png", curve_x=wide, truth=f(wide),
        train_range=(LOW, HIGH), history=result.losses,
        title=f"quadratic: y = x² + 2x − 3 (R² {result.train['r2']:.4f} on the data)")]
