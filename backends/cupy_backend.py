"""The CuPy backend: NumPy-like arrays on an NVIDIA GPU. Kept small on purpose: everything
it shares with NumPy lives in the shared layer code, which is tested on NumPy and JAX.

`get_backend("cupy:1")` runs on GPU 1: inside its `scope()` (which `use_backend` and the
steps it compiles enter) CuPy's current device is that GPU, so new arrays go there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ._base import Array, Backend, BackendUnavailableError
from ._patches import library_pad


class CupyBackend(Backend):
    name = "cupy"
    modules = ("cupy",)

    def __init__(self, device: str | None = None) -> None:
        """device: None (CuPy's current device), or a GPU index such as "1"."""
        try:
            import cupy  # deferred: cupy is heavy and optional; imported when chosen
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
        if device is not None and not (device.isdigit() and int(device) < count):
            raise BackendUnavailableError(
                f"backend 'cupy': no GPU {device!r} here; choose 'cupy:0' to 'cupy:{count - 1}'.")
        self._cupy = cupy
        self.xp = cupy
        self._id = cupy.cuda.Device().id if device is None else int(device)
        self.device = f"cuda:{self._id}"
        self._kernels: dict[str, Any] = {}

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._cupy.ndarray)

    def to_numpy(self, x: Array) -> np.ndarray:
        return self._cupy.asnumpy(x)

    def refused_conversion(self, error: BaseException) -> bool:
        # cupy.ndarray.__array__: "Implicit conversion to a NumPy array is not allowed..."
        return isinstance(error, TypeError) and "Implicit conversion to a NumPy array" in str(error)

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        with self._cupy.cuda.Device(self._id):
            return super().asarray(x, dtype)

    def device_scope(self) -> Any:
        return self._cupy.cuda.Device(self._id)

    pad = library_pad

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


# Optimizer rules as one CUDA kernel each, by rule name: (input parameters, body). The body
# repeats the rule in xbackprop/optim/rules.py operation for operation (same order, same
# roundings), updating the parameter p and the slots m, v in place. One launch instead of a
# dozen per array. The gradient g arrives with the shared L2 weight decay already added.
_FUSED = {
    "adam": ("T g, T b1, T c1, T b2, T c2, T step, T inv_sqrt_bc2, T eps, T decay", """
        m = m * b1;
        m = m + c1 * g;
        T gg = g * g;
        v = v * b2;
        v = v + c2 * gg;
        T delta = step * m / (sqrt(v) * inv_sqrt_bc2 + eps);
        if (decay != 0) delta = delta + decay * p;
        p = p - delta;
    """),
}
FUSED_RULES = tuple(_FUSED)
