"""forest-fires: predict the burned area of 517 fires in Montesinho park, Portugal, from the
weather and the Fire Weather Index (the UCI table, shipped with xbackprop; Cortez & Morais,
2007). The area is skewed (most fires burned under 1 ha, a few burned hundreds), so the
network predicts ln(area + 1). It is compared with the mean predictor, which always answers
the training rows' mean: on this data set that baseline is hard to beat, and the report
says so when the network does not.

    xbackprop example forest-fires
    xbackprop example forest-fires --csv my_table.csv --target price   # your own table
    xbackprop example forest-fires --csv buildings.csv --target heat,cool --log-target

With --csv, every column but the targets is a feature (text columns one-hot encoded) unless
--features names them; features and targets are standardised with the training rows'
statistics; the errors are reported in the targets' own units.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import xbackprop as xb
from xbackprop.examples._regression import (
    RegressionResult,
    csv_option,
    draw_regression,
    train_regressor,
)

SUMMARY = "UCI forest fires: burned area from the weather, vs the mean predictor; --csv for yours"

GALLERY = "predicted_vs_true.png"

OPTIONS = [
    (["--csv"], {"metavar": "FILE", "help": "run the same pipeline on your own CSV table"}),
    (["--target"], {"metavar": "COL[,COL...]", "type": csv_option,
                    "help": "the column(s) to predict (with --csv; default: area)"}),
    (["--features"], {"metavar": "COL[,COL...]", "type": csv_option,
                      "help": "input columns (default: the weather and FWI columns; with "
                              "--csv, every other column)"}),
    (["--log-target"], {"action": argparse.BooleanOptionalAction, "default": None,
                        "help": "predict ln(y + 1) (default: on for the forest fires, off "
                                "with --csv)"}),
    (["--hidden"], {"metavar": "N[,N...]", "type": csv_option,
                    "help": "hidden layer sizes (default 16)"}),
    (["--epochs"], {"type": int, "help": "most epochs (early stopping usually ends sooner; "
                                         "default 200)"}),
    (["--patience"], {"type": int, "default": 10,
                      "help": "epochs without a better validation loss before stopping"}),
]

CAVEAT = ("This data set is hard: most fires are small, and the weather and fire-danger "
          "indices say little about how large a fire grows.")


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        csv: str | None = None, target: list[str] | None = None,
        features: list[str] | None = None, log_target: bool | None = None,
        hidden: list[str] | None = None, epochs: int | None = None, patience: int = 10,
        progress: bool = False) -> RegressionResult:
    if csv is None:
        if target not in (None, ["area"]):
            raise ValueError("--target needs --csv FILE (the forest-fires table's target is "
                             "area)")
        options = {"features": features} if features else {}
        table = xb.data.load_forest_fires(standardize=True, seed=seed, **options)
        title = "the burned area from the weather and fire-danger indices"
        log_target = True if log_target is None else log_target
        caveat = CAVEAT
    else:
        if not target:
            raise ValueError("--csv needs --target COL (or COL1,COL2 for several outputs)")
        table = xb.data.load_csv(csv, target, features=features, standardize=True, seed=seed)
        title = f"{Path(csv).name}: {', '.join(target)} from {len(table.features)} features"
        caveat = ""
    return train_regressor(
        table, name="forest-fires", title=title, hidden=[int(h) for h in hidden or ["16"]],
        log_target=bool(log_target), epochs=(30 if quick else 200) if epochs is None else epochs,
        patience=patience, lr=1e-2, seed=seed, backend=backend, caveat=caveat,
        progress=progress)


def draw(result: RegressionResult, out: Path) -> list[Path]:
    return draw_regression(result, out, "forest fires" if result.caveat else
                           result.table.source)
