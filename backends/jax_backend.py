"""The JAX backend: `jax.numpy` arrays on one device or over a device mesh, steps compiled by
`jax.jit`.

JAX arrays are immutable, so `slice_add` is `x.at[index].add(values)`; under `jax.jit`
XLA turns it back into an in-place update. Tracers count as JAX arrays, so layer math runs
unchanged under `jax.jit`, `jax.vmap` and `jax.grad`.

Placement: `get_backend("jax:gpu:1")` (or "jax:1", "jax:cpu") keeps arrays on one device;
`get_backend("jax", mesh=mesh)` places them over a `jax.sharding.Mesh`: replicated by
default, or split along its data axis with `put(batch, "batch")`, and a compiled step takes
shardings per argument (`compile(fn, in_shardings=("replicated", "batch"))`). XLA then runs
the step data-parallel and all-reduces what the shardings require.

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

from ._base import SHARDINGS, Array, Backend, BackendUnavailableError, DtypeError, \
    is_array_leaf, to_host, check_float_dtype, library_pad


class JaxBackend(Backend):
    name = "jax"
    modules = ("jax", "jaxlib")
    inplace_updates = False
    compiles = True
    #: precision of float32 matrix products in `numerics()` and in functions compiled after
    #: it is set: a name `jax.default_matmul_precision` takes ("float32", "tensorfloat32",
    #: "bfloat16"), or "default" for JAX's own choice (TensorFloat-32 on NVIDIA GPUs)
    matmul_precision: str = "float32"

    def __init__(self, device: str | None = None, mesh: Any = None,
                 data_axis: str = "data") -> None:
        """device: None (JAX's default), "cpu", "gpu", "gpu:1" or an index into
        `jax.devices()`; mesh: a `jax.sharding.Mesh` whose `data_axis` splits batches."""
        try:
            import jax
            import jax.numpy as jnp
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend 'jax' needs JAX, which is not installed ({e}). "
                "Install it with: pip install 'xbackprop[jax]'") from e
        self._jax = jax
        self.xp = jnp
        self.mesh = mesh
        self.data_axis = data_axis
        #: where `asarray` puts arrays: None for JAX's default device
        self._placement: Any = None
        if mesh is not None:
            if device is not None:
                raise BackendUnavailableError("backend 'jax': give a device or a mesh, not both")
            if data_axis not in mesh.axis_names:
                raise BackendUnavailableError(
                    f"backend 'jax': the mesh has axes {mesh.axis_names}, not the data axis "
                    f"{data_axis!r}; pass data_axis=... or name a mesh axis {data_axis!r}.")
            devices = list(mesh.devices.flat)
            self._placement = self._named()
            shape = ", ".join(f"{k}={v}" for k, v in mesh.shape.items())
            self.device = f"mesh({shape}) of {devices[0].platform}"
        else:
            devices = [_find_device(jax, device)]
            if device is not None:
                self._placement = jax.sharding.SingleDeviceSharding(devices[0])
            self.device = f"{devices[0].platform}:{devices[0].id}"
        self._devices = devices
        # XLA:CPU cannot reuse donated buffers, and always multiplies in full float32
        self._cpu = devices[0].platform == "cpu"

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._jax.Array)  # tracers included

    def is_concrete(self, x: Any) -> bool:
        return not isinstance(x, self._jax.core.Tracer)

    def refused_conversion(self, error: BaseException) -> bool:
        return isinstance(error, self._jax.errors.TracerArrayConversionError)

    def counter(self, value: int = 0) -> Any:
        return self.asarray(np.int32(value))

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        a = super().asarray(x, dtype)
        if self._placement is None or isinstance(a, self._jax.core.Tracer):
            return a
        return self._jax.device_put(a, self._placement)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def put(self, tree: Any, sharding: Any = None) -> Any:
        from xbackprop.tree import tree_map

        place = self._sharding(sharding)

        def one(x: Any) -> Any:
            if not is_array_leaf(x):
                return x
            if not (self.is_array(x) or isinstance(x, (np.ndarray, np.generic))):
                x = to_host(x)
            return self._jax.device_put(x, place)
        return tree_map(one, tree)

    def check_sharding(self, spec: Any) -> None:
        from xbackprop.tree import tree_leaves

        for leaf in tree_leaves(spec):
            self._sharding(leaf)

    def _sharding(self, spec: Any) -> Any:
        """A jax.sharding.Sharding for a placement name (see `Backend.put`), or None for
        JAX's default device."""
        if spec is None:
            return self._placement
        if isinstance(spec, self._jax.sharding.Sharding):
            return spec
        if spec not in SHARDINGS:
            raise ValueError(f"backend 'jax': a sharding is None, 'replicated', 'batch' or a "
                             f"jax.sharding.Sharding, not {spec!r}.")
        if self.mesh is None:
            return self._jax.sharding.SingleDeviceSharding(self._devices[0])
        return self._named(self.data_axis if spec == "batch" else None)

    def _named(self, axis: str | None = None) -> Any:
        spec = self._jax.sharding.PartitionSpec() if axis is None else \
            self._jax.sharding.PartitionSpec(axis)
        return self._jax.sharding.NamedSharding(self.mesh, spec)

    def device_scope(self) -> contextlib.AbstractContextManager[Any]:
        if self._placement is None or self.mesh is not None:
            return super().device_scope()
        return self._jax.default_device(self._devices[0])

    def slice_add(self, target: Array, index: Any, values: Array) -> Array:
        return target.at[index].add(values)

    pad = library_pad

    def compile(self, fn: Callable, donate_argnums: Sequence[int] = (),
                in_shardings: Any = None, out_shardings: Any = None) -> Callable:
        from xbackprop.tree import tree_map

        shardings = {}
        for arg, spec in (("in_shardings", in_shardings), ("out_shardings", out_shardings)):
            if spec is not None:
                shardings[arg] = tree_map(self._sharding, spec)
        numerics = self.numerics

        @functools.wraps(fn)
        def traced(*args: Any, **kwargs: Any) -> Any:
            # runs only while JAX traces: the layers see this backend value, and JAX fixes a
            # product's precision at trace time (a scope per call would cost microseconds)
            with self.scope(), numerics():
                return fn(*args, **kwargs)
        donate = () if self._cpu else tuple(donate_argnums)
        return self._jax.jit(traced, donate_argnums=donate, **shardings)

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


def _find_device(jax: Any, device: str | None) -> Any:
    """`jax.devices()[0]` for None; else "cpu", "gpu:1" or "1" as a device, or a clear error."""
    if device is None:
        return jax.devices()[0]
    platform, _, index = device.partition(":")
    if platform.isdigit():
        platform, index = "", platform
    try:
        return jax.devices(platform or None)[int(index or 0)]
    except (RuntimeError, ValueError, IndexError) as e:
        raise BackendUnavailableError(
            f"backend 'jax': no device {device!r} here ({e}); JAX sees "
            f"{', '.join(f'{d.platform}:{d.id}' for d in jax.devices())}.") from e
