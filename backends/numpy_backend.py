"""The NumPy backend: the CPU reference. NumPy only; it never imports JAX or CuPy."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Array, Backend


class NumpyBackend(Backend):
    name = "numpy"
    xp = np
    device = "cpu"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)
