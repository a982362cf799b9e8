"""The JAX backend: `jax.numpy` arrays on JAX's default device, steps compiled by `jax.jit`.

JAX arrays are immutable, so `slice_add` is `x.at[index].add(values)`; under `jax.jit`
XLA turns it back into an in-place update. Tracers count as JAX arrays, so layer math runs
unchanged under `jax.jit`, `jax.vmap` and `jax.grad`.

On NVIDIA GPUs JAX computes float32 matrix products and convolutions in TensorFloat-32 by
default (a 10-bit mantissa: ~1e-3 relative error). xbackprop asks for full float32 instead,
so one model gives the same numbers on NumPy, CuPy and JAX; set `matmul_precision` to
"default" (or "tensorfloat32") to trade that for speed.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ._base import Array, Backend, BackendUnavailableError, DtypeError, check_float_dtype


class JaxBackend(Backend):
    name = "jax"
    mutable_arrays = False
    #: precision of float32 matrix products in `numerics()` and in functions compiled after
    #: it is set: a name `jax.default_matmul_precision` takes ("float32", "tensorfloat32",
    #: "bfloat16"), or "default" for JAX's own choice (TensorFloat-32 on NVIDIA GPUs)
    matmul_precision: str = "float32"

    def __init__(self) -> None:
        try:
            import jax
            import jax.numpy as jnp
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend 'jax' needs JAX, which is not installed ({e}). "
                "Install it with: pip install 'xbackprop[jax]'") from e
        self._jax = jax
        self.xp = jnp
        dev = jax.devices()[0]
        self.device = f"{dev.platform}:{dev.id}"
        # XLA:CPU cannot reuse donated buffers, and always multiplies in full float32
        self._cpu = dev.platform == "cpu"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._jax.Array)  # tracers included

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def slice_add(self, target: Array, index: Any, values: Array) -> Array:
        return target.at[index].add(values)

    def compile(self, fn: Callable, donate_argnums: Sequence[int] = ()) -> Callable:
        donate = () if self._cpu else tuple(donate_argnums)
        if self._cpu:
            return self._jax.jit(fn, donate_argnums=donate)

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            # JAX fixes a product's precision when it is traced, so the scope is needed
            # here only, not around every call (which would cost microseconds per step)
            with self.numerics():
                return fn(*args, **kwargs)
        return self._jax.jit(traced, donate_argnums=donate)

    @contextlib.contextmanager
    def numerics(self) -> Iterator[None]:
        """Scope `matmul_precision` around eager JAX code (compiled steps have it already)."""
        if self._cpu or self.matmul_precision == "default":
            yield
            return
        with self._jax.default_matmul_precision(self.matmul_precision):
            yield

    def synchronize(self, tree: Any = None) -> Any:
        return self._jax.block_until_ready(tree)

    def dtype_scope(self, dtype: Any) -> contextlib.AbstractContextManager[None]:
        if check_float_dtype(dtype) == np.float64 and not self.x64_enabled():
            return self._jax.enable_x64(True)
        return contextlib.nullcontext()

    def x64_enabled(self) -> bool:
        """True where JAX would keep float64 (global `jax_enable_x64` or `jax.enable_x64()`)."""
        return self._jax.dtypes.canonicalize_dtype(np.float64) == np.float64

    def check_dtype(self, dtype: Any) -> np.dtype:
        dt = check_float_dtype(dtype)
        if dt == np.float64 and not self.x64_enabled():
            raise DtypeError(
                "float64 on the JAX backend needs JAX's 64-bit mode, which is off, so JAX "
                "would silently compute in float32. Turn it on before creating arrays: "
                "jax.config.update('jax_enable_x64', True), or scope it with "
                "`with jax.enable_x64(True):`; or use float32.")
        return dt
