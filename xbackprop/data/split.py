"""`Dataset`, the train/test pair every loader returns, and a seeded, stratified split."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..random import host_generator

__all__ = ["Dataset", "train_test_split"]


class Dataset(NamedTuple):
    """Training and test arrays, on the host (NumPy)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def train_test_split(x: np.ndarray, y: np.ndarray, *, test_fraction: float = 0.2,
                     seed: int = 0, stratify: bool = True) -> Dataset:
    """Shuffle with `seed` and hold out `test_fraction` of the samples (of each class, when
    `stratify` and y holds integer labels)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    rng = host_generator(seed)
    if stratify and y.ndim == 1 and y.dtype.kind in "iu":
        test = np.concatenate([
            idx[:round(len(idx) * test_fraction)]
            for idx in (rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y))])
    else:
        test = rng.permutation(len(x))[:round(len(x) * test_fraction)]
    mask = np.zeros(len(x), dtype=bool)
    mask[test] = True
    train_idx, test_idx = rng.permutation(np.flatnonzero(~mask)), rng.permutation(test)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx])
