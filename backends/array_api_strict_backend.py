"""The array-api-strict backend: the Python Array API standard (2023.12) and nothing else.

array-api-strict (a NumPy-based reference) refuses everything outside the standard: the
`.astype` method, `bool * float`, NumPy's `pad` and `transpose`, partial multi-axis indexing,
scalars where the standard wants arrays. Every layer, loss, optimizer and the gradient
oracle run on it in the tests, which proves that their math needs nothing but the standard
and this seam's primitives, all at their standard-only defaults here. It is a conformance
check, not a fast backend.

Choosing it sets array-api-strict's API version to 2023.12 for the whole process (the
library keeps that flag globally).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Array, Backend, BackendUnavailableError

API_VERSION = "2023.12"


class ArrayApiStrictBackend(Backend):
    name = "array_api_strict"
    host_arrays = True
    modules = ("array_api_strict",)

    def __init__(self, device: str | None = None) -> None:
        super().__init__(device)
        try:
            import array_api_strict  # deferred: array_api_strict, optional (tests)
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend 'array_api_strict' needs array-api-strict, which is not installed "
                f"({e}). Install it with: pip install array-api-strict (the 'test' extra "
                "has it).") from e
        array_api_strict.set_array_api_strict_flags(api_version=API_VERSION)
        self.xp = array_api_strict
        self._array_type = type(array_api_strict.asarray(0))
        self.device = "cpu"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._array_type)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.from_dlpack(x)
