"""Data: the sets that ship with xbackprop, loaders for standard formats and small tools.

Everything here returns NumPy arrays on the host; `fit` moves batches to the backend.
Nothing here ever unpickles. See README.md in this folder for sources and licences.
"""

from __future__ import annotations

from .generators import moons, spiral
from .shipped import load_digits, xor
from .split import Dataset, train_test_split

__all__ = ["Dataset", "load_digits", "moons", "spiral", "train_test_split", "xor"]
