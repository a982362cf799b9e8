"""Data sets that ship inside the package (no download); see README.md in this folder for
sources and licences. Every file is read with `allow_pickle=False`: a data file can never
run code."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from typing import Any

import numpy as np

from .split import Dataset, train_test_split
from .tables import Table, load_csv

__all__ = ["load_digits", "xor", "load_forest_fires", "load_energy", "FOREST_FIRES_FEATURES",
           "ENERGY_FEATURES", "ENERGY_TARGETS"]

#: the forest-fires table's weather readings and Fire Weather Index components
FOREST_FIRES_FEATURES = ("FFMC", "DMC", "DC", "ISI", "temp", "RH", "wind", "rain")
ENERGY_FEATURES = ("relative_compactness", "surface_area", "wall_area", "roof_area",
                   "overall_height", "orientation", "glazing_area", "glazing_area_distribution")
ENERGY_TARGETS = ("heating_load", "cooling_load")


def _read_npz(name: str) -> dict[str, np.ndarray]:
    path = resources.files(__package__).joinpath(name)
    with path.open("rb") as f, np.load(f, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_digits(*, test_fraction: float = 0.2, seed: int = 0, flatten: bool = True,
                dtype: str = "float32") -> Dataset:
    """The UCI 8x8 handwritten digits (1,797 images, 10 classes), scaled to [0, 1] and split
    into train and test sets, stratified by class.

    x: (N, 64) if `flatten` else (N, 1, 8, 8) (NCHW, for convolutional networks); y: (N,) int.
    """
    raw = _read_npz("digits.npz")
    images = raw["images"].astype(dtype) / 16.0
    labels = raw["labels"].astype(np.int64)
    x = images.reshape(len(images), 64) if flatten else images[:, None, :, :]
    return train_test_split(x, labels, test_fraction=test_fraction, seed=seed)


def xor(dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points `x: (4, 2)` and targets `y: (4, 1)`."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return x, y


def _read_table(name: str, target: str | Sequence[str], options: dict[str, Any]) -> Table:
    with resources.as_file(resources.files(__package__).joinpath(name)) as path:
        return load_csv(path, target, **options)


def load_forest_fires(*, features: Sequence[str] = FOREST_FIRES_FEATURES, **options: Any
                      ) -> Table:
    """The UCI forest-fires table (517 fires in Montesinho park, Portugal; Cortez & Morais,
    2007): the burned `area` in hectares from, by default, the weather and the Fire Weather
    Index components (`FOREST_FIRES_FEATURES`). Most fires burned under 1 ha and a few
    hundreds, so models usually predict ln(area + 1) (`np.log1p(table.y_train)`).

    y: (N, 1) area in ha. `features` may name any columns (X, Y, month, day as well; the
    text ones are one-hot encoded); `options` go to `load_csv` (test_fraction, seed,
    standardize, dtype, ...).
    """
    return _read_table("forestfires.csv.gz", "area", {"features": list(features), **options})


def load_energy(**options: Any) -> Table:
    """The UCI energy-efficiency table (768 simulated buildings; Tsanas & Xifara, 2012): the
    heating and cooling loads (kWh/m², `ENERGY_TARGETS`) from eight shape features
    (`ENERGY_FEATURES`). y: (N, 2). `options` go to `load_csv` (test_fraction, seed,
    standardize, standardize_target, dtype, ...)."""
    return _read_table("energy_efficiency.csv.gz", list(ENERGY_TARGETS), options)
