"""The CuPy backend: NumPy-like arrays on an NVIDIA GPU. Kept small on purpose: everything
it shares with NumPy lives in the shared layer code, which is tested on NumPy and JAX."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Array, Backend, BackendUnavailableError


class CupyBackend(Backend):
    name = "cupy"

    def __init__(self) -> None:
        try:
            import cupy
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend 'cupy' needs CuPy, which is not installed ({e}). Install the build "
                "for your CUDA driver: pip install 'xbackprop[cuda12]' or 'xbackprop[cuda13]' "
                "(nvidia-smi shows the CUDA version).") from e
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as e:  # CUDARuntimeError when there is no driver at all
            raise BackendUnavailableError(
                f"backend 'cupy': CuPy is installed but no CUDA device is usable ({e}). "
                "Run on a machine with an NVIDIA GPU and driver, or choose 'numpy' or 'jax'."
            ) from e
        if count < 1:
            raise BackendUnavailableError(
                "backend 'cupy': CuPy is installed but found no CUDA device. Run on a machine "
                "with an NVIDIA GPU, or choose 'numpy' or 'jax'.")
        self._cupy = cupy
        self.xp = cupy
        self.device = f"cuda:{cupy.cuda.Device().id}"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._cupy.ndarray)

    def to_numpy(self, x: Array) -> np.ndarray:
        return self._cupy.asnumpy(x)

    def synchronize(self, tree: Any = None) -> Any:
        self._cupy.cuda.get_current_stream().synchronize()
        return tree
