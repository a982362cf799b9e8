"""Shared helpers for the data tests: where the real MNIST test pair is (if this checkout has
it), and small MNIST-like folders the tests write themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xbackprop.data import save_idx

#: ../shared/data/ beside the repository root: real data for development machines; a clean
#: CI checkout may not have it, and no test may depend on it being there
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SHARED_MNIST = SHARED_DATA / "mnist"


def shared_mnist() -> Path | None:
    """The folder holding the real MNIST test pair, or None where this checkout lacks it."""
    names = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    return SHARED_MNIST if all((SHARED_MNIST / n).is_file() for n in names) else None


def write_mnist_like(folder: Path, *, train: int | None = 30, test: int | None = 20,
                     gz: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the standard four files (or one pair, when `train` or `test` is None) with
    random images (uint8, (n, 28, 28)) and labels 0..9; returns the arrays by file stem."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for prefix, n in (("train", train), ("t10k", test)):
        if n is None:
            continue
        arrays = {f"{prefix}-images-idx3-ubyte": rng.integers(0, 256, (n, 28, 28), np.uint8),
                  f"{prefix}-labels-idx1-ubyte": rng.integers(0, 10, n).astype(np.uint8)}
        for stem, array in arrays.items():
            save_idx(folder / (stem + (".gz" if gz else "")), array)
        written.update(arrays)
    return written


@pytest.fixture
def data_home(tmp_path, monkeypatch) -> Path:
    """$XBACKPROP_DATA pointed at an empty temporary folder for the test."""
    home = tmp_path / "cache"
    monkeypatch.setenv("XBACKPROP_DATA", str(home))
    return home
