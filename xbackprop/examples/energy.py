"""energy: the heating and the cooling load of 768 simulated buildings from eight
shape features (the UCI table, shipped with xbackprop; Tsanas & Xifara, 2012). One network
predicts both loads at once (two outputs, one MSE), and each output gets its own test RMSE,
MAE and R² next to the mean predictor's, and its own predicted-vs-true picture.

    xbackprop example energy
"""

from __future__ import annotations

from pathlib import Path

import xbackprop as xb
from xbackprop.examples._regression import RegressionResult, draw_regression, train_regressor

SUMMARY = "UCI energy efficiency: heating and cooling load, two outputs, per-output R²"

GALLERY = "predicted_vs_true_heating_load.png"

OPTIONS = [
    (["--epochs"], {"type": int, "help": "most epochs (early stopping usually ends sooner; "
                                         "default 400)"}),
]


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, epochs: int | None = None) -> RegressionResult:
    table = xb.data.load_energy(standardize=True, seed=seed)
    return train_regressor(
        table, name="energy",
        title="energy efficiency, the heating and cooling load of buildings (kWh/m²)",
        hidden=(64, 64), epochs=(60 if quick else 400) if epochs is None else epochs, patience=30,
        lr=3e-3, batch_size=32, seed=seed, backend=backend, progress=progress)


def draw(result: RegressionResult, out: Path) -> list[Path]:
    return draw_regression(result, out, "energy efficiency")
