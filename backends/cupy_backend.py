"""The CuPy backend: NumPy-like arrays on an NVIDIA GPU. Kept small on purpose: everything
it shares with NumPy lives in the shared layer code, which is tested on NumPy and JAX."""

from __future__ import annotations

from collections.abc import Callable
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
        self._kernels: dict[str, Any] = {}

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._cupy.ndarray)

    def to_numpy(self, x: Array) -> np.ndarray:
        return self._cupy.asnumpy(x)

    def fused_update(self, name: str) -> Callable | None:
        if name not in _FUSED:
            return None
        if name not in self._kernels:
            in_params, body = _FUSED[name]
            # --fmad=false: no fused multiply-adds, so every operation rounds as CuPy's
            # one-operation kernels do and the result is bit-identical to the op-by-op rule
            self._kernels[name] = self._cupy.ElementwiseKernel(
                in_params, "T p, T m, T v", body, f"xbackprop_{name}", options=("--fmad=false",))
        return self._kernels[name]

    def synchronize(self, tree: Any = None) -> Any:
        self._cupy.cuda.get_current_stream().synchronize()
        return tree


# Optimizer rules as one CUDA kernel each: (input parameters, body). The body repeats the
# rule in xbackprop/optim.py operation for operation (same order, same roundings), updating
# the parameter p and the slots m, v in place. One launch instead of a dozen per array.
_FUSED = {
    "adam": ("T g, T b1, T c1, T b2, T c2, T step, T inv_sqrt_bc2, T eps, T l2, T decay", """
        T grad = g;
        if (l2 != 0) grad = g + l2 * p;
        m = m * b1;
        m = m + c1 * grad;
        T gg = grad * grad;
        v = v * b2;
        v = v + c2 * gg;
        T delta = step * m / (sqrt(v) * inv_sqrt_bc2 + eps);
        if (decay != 0) delta = delta + decay * p;
        p = p - delta;
    """),
}
