"""Data sets that ship with xbackprop (no download) and small tools to split them.

Every file here is read with `allow_pickle=False`: a data file can never run code.
See README.md in this folder for sources and licences.
"""

from __future__ import annotations

from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = ["Dataset", "load_digits", "train_test_split", "xor"]


class Dataset(NamedTuple):
    """Training and test arrays, on the host (NumPy)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def _read_npz(name: str) -> dict[str, np.ndarray]:
    path = resources.files(__name__).joinpath(name)
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


def train_test_split(x: np.ndarray, y: np.ndarray, *, test_fraction: float = 0.2,
                     seed: int = 0, stratify: bool = True) -> Dataset:
    """Shuffle with `seed` and hold out `test_fraction` of the samples (of each class, when
    `stratify` and y holds integer labels)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(x) != len(y):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    rng = np.random.default_rng(seed)
    if stratify and y.ndim == 1 and y.dtype.kind in "iu":
        test = np.concatenate([
            idx[:int(round(len(idx) * test_fraction))]
            for idx in (rng.permutation(np.flatnonzero(y == c)) for c in np.unique(y))])
    else:
        test = rng.permutation(len(x))[:int(round(len(x) * test_fraction))]
    mask = np.zeros(len(x), dtype=bool)
    mask[test] = True
    train_idx, test_idx = rng.permutation(np.flatnonzero(~mask)), rng.permutation(test)
    return Dataset(x[train_idx], y[train_idx], x[test_idx], y[test_idx])


def xor(dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """The four XOR points `x: (4, 2)` and targets `y: (4, 1)`."""
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    y = np.array([[0], [1], [1], [0]], dtype=dtype)
    return x, y
