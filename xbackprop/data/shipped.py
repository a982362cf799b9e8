"""Data sets that ship inside the package (no download); see README.md in this folder for
sources and licences. Every file is read with `allow_pickle=False`: a data file can never
run code."""

from __future__ import annotations

from importlib import resources

import numpy as np

from .split import Dataset, train_test_split

__all__ = ["load_digits", "xor"]


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
