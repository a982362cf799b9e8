"""The JAX backend: `jax.numpy` arrays on one device or over a device mesh, steps compiled by
`jax.jit`.

JAX arrays are immutable, so `slice_add` is `x.at[index].add(values)`; under `jax.jit`
XLA turns it back into an in-place update. Tracers count as JAX arrays, so layer math runs
unchanged under `jax.jit`, `jax.vmap` and `jax.grad`.

Placement: `get_backend("jax:gpu:1")` (or "jax:1", "jax:cpu") keeps arrays on one device;
`get_backend("jax", mesh=mesh)` places them over a `jax.sharding.Mesh`, and
`get_backend("jax", devices=4)` ("jax:gpu" for GPUs; "all" for every device) makes a
one-axis mesh "data" of the first four devices. Arrays are replicated by default, or split
along the data axis with `put(batch, "batch")`, and a compiled step takes shardings per
argument (`compile(fn, in_shardings=("replicated", "batch"))`). XLA then runs the step
data-parallel (GSPMD) and all-reduces what the shardings require: the sums over the batch
in the loss, the gradients and BatchNorm's statistics. Mesh axes are used as "Auto" axes
(JAX's sharding propagation) even where `jax.make_mesh` made them "Explicit", since
explicit sharding would have every layer name its output shardings.

On CPU devices (`XLA_FLAGS=--xla_force_host_platform_device_count=N`) a step compiled over a
mesh waits for its results before the next call. With calls queued ahead, as JAX's
asynchronous dispatch queues them, XLA:CPU deadlocked: in the stuck process one device's
thread waited in a step's all-reduce while the others waited on a semaphore to launch their
part, and XLA aborted after 40 s ("Termination timeout ... Expected 3 threads to join the
rendezvous", SIGABRT). On a busy 2-core machine (JAX 0.10.2) a bare `jax.jit` loop of 20,000
steps aborted in every run over 3 of 4 host devices (6 runs), 4 of 4 (2) and 3 of 3 (2),
none over 2 of 4 (2); waiting for each call's results, none (3 runs), and `xbackprop train
digits --devices 3` went from 3 aborts in 11 runs to none in 10. On one CPU the queue hides
little work anyway.

Several processes (`initialize_distributed`, one per host or GPU) share one mesh over all
their devices; each passes its own rows of a batch to `put_local`, which builds the global
array with `jax.make_array_from_process_local_data`.

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

from xbackprop.tree import tree_leaves, tree_map

from ._base import HOST_TYPES as _HOST
from ._base import (
    SHARDINGS,
    Array,
    Backend,
    BackendUnavailableError,
    DtypeError,
    ShardingError,
    check_float_dtype,
    is_array_leaf,
    scan_length,
    to_host,
)
from ._patches import library_pad


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
                 data_axis: str = "data", devices: int | str | None = None) -> None:
        """device: None (JAX's default), "cpu", "gpu", "gpu:1" or an index into
        `jax.devices()`; mesh: a `jax.sharding.Mesh` whose `data_axis` splits batches;
        devices: N or "all", a one-axis mesh over the first N devices (of `device`'s
        platform, if named)."""
        try:
            import jax  # deferred: jax is heavy and optional; imported when chosen
            import jax.numpy as jnp  # (jax)
        except ImportError as e:
            raise BackendUnavailableError(
                f"backend 'jax' needs JAX, which is not installed ({e}). "
                "Install it with: pip install 'xbackprop[jax]'") from e
        self._jax = jax
        self.xp = jnp
        if devices is not None:
            if mesh is not None:
                raise ShardingError("backend 'jax': give devices=N or a mesh, not both")
            mesh = _device_mesh(jax, device, devices, data_axis)
            device = None
        self.mesh = mesh
        self.data_axis = data_axis
        #: where `asarray` puts arrays: None for JAX's default device
        self._placement: Any = None
        if mesh is not None:
            if device is not None:
                raise ShardingError("backend 'jax': give a device or a mesh, not both")
            if data_axis not in mesh.axis_names:
                raise ShardingError(
                    f"backend 'jax': the mesh has axes {mesh.axis_names}, not the data axis "
                    f"{data_axis!r}; pass data_axis=... or name a mesh axis {data_axis!r}.")
            self.mesh = mesh = _auto_axes(jax, mesh)
            found = list(mesh.devices.flat)
            self._placement = self._named()
            shape = ", ".join(f"{k}={v}" for k, v in mesh.shape.items())
            self.device = f"mesh({shape}) of {found[0].platform}"
            self.batch_shards = int(mesh.shape[data_axis])
            self.process_count = len({d.process_index for d in found})
            self.process_index = jax.process_index()
        else:
            found = [_find_device(jax, device)]
            if device is not None:
                self._placement = jax.sharding.SingleDeviceSharding(found[0])
            self.device = f"{found[0].platform}:{found[0].id}"
        #: the devices it computes on: the mesh's, or the one device
        self._devices: list[Any] = found
        self._by_name: dict[str, Any] = {}  # "batch", "replicated": made once, here
        for name in SHARDINGS:
            self._by_name[name] = self._sharding(name)
        # XLA:CPU cannot reuse donated buffers, and always multiplies in full float32
        self._cpu = found[0].platform == "cpu"

    @classmethod
    def initialize_distributed(cls, coordinator_address: str | None = None,
                               num_processes: int | None = None,
                               process_id: int | None = None) -> tuple[int, int]:
        try:
            import jax  # deferred: jax is heavy and optional
        except ImportError as e:
            raise BackendUnavailableError(
                f"several processes train together on JAX, which is not installed ({e}). "
                "Install it with: pip install 'xbackprop[jax]'") from e
        given = [coordinator_address, num_processes, process_id]
        if any(v is not None for v in given) and any(v is None for v in given):
            raise ShardingError(
                "a multi-process run needs all of the coordinator address (HOST:PORT of "
                "process 0), the number of processes and this process's id, or none of them "
                "(to detect them from SLURM, Open MPI or Kubernetes)")
        if num_processes is not None and process_id is not None \
                and not 0 <= process_id < num_processes:
            raise ShardingError(f"process id {process_id} is not in [0, {num_processes}): "
                                "processes are numbered from 0")
        if not jax.distributed.is_initialized():
            if getattr(jax.config, "jax_cpu_collectives_implementation", "gloo") in (None,
                                                                                  "none"):
                # CPU devices of several processes all-reduce over TCP (JAX < 0.5 had none)
                jax.config.update("jax_cpu_collectives_implementation", "gloo")
            jax.distributed.initialize(coordinator_address, num_processes, process_id)
        return jax.process_index(), jax.process_count()

    def with_devices(self, devices: int | str) -> Backend:
        if self.mesh is not None:
            if devices == "all" and self.batch_shards == len(self._jax.devices()) or \
                    devices == self.batch_shards:
                return self
            raise ShardingError(
                f"backend 'jax' on {self.device} splits batches over its mesh already; give "
                f"devices={devices!r} or a backend with a mesh, not both")
        from ._select import get_backend  # local: a cycle (_select loads the backend modules)

        spec = "jax" if self._placement is None else f"jax:{self._devices[0].platform}"
        return get_backend(spec, devices=devices)

    def for_placement(self, tree: Any) -> Backend:
        leaves = tree_leaves(tree)
        sharding = getattr(leaves[0], "sharding", None) if leaves and self.is_array(
            leaves[0]) and not isinstance(leaves[0], self._jax.core.Tracer) else None
        if self.mesh is not None or not isinstance(sharding, self._jax.sharding.NamedSharding) \
                or sharding.mesh.size == 1 or self.data_axis not in sharding.mesh.axis_names:
            return self
        from ._select import get_backend  # local: a cycle (_select loads the backend modules)

        return get_backend("jax", mesh=sharding.mesh, data_axis=self.data_axis)

    @property
    def run_processes(self) -> int:  # type: ignore[override]
        return self._jax.process_count()

    def is_array(self, x: Any) -> bool:
        return isinstance(x, self._jax.Array)  # tracers included

    def is_concrete(self, x: Any) -> bool:
        return not isinstance(x, self._jax.core.Tracer)

    def refused_conversion(self, error: BaseException) -> bool:
        return isinstance(error, self._jax.errors.TracerArrayConversionError)

    def counter(self, value: int = 0) -> Any:
        return self.asarray(np.int32(value))

    def asarray(self, x: Any, dtype: Any = None) -> Array:
        if self.process_count > 1 and not isinstance(x, self._jax.core.Tracer) and not (
                self.is_array(x) and not x.is_fully_addressable):
            # a global placement takes host values (the same in every process), not arrays
            # of this process's devices
            host = np.asarray(x if isinstance(x, _HOST) else to_host(x))
            if dtype is not None:
                dtype = self.numpy_dtype(dtype)
                if dtype.kind == "f":
                    self.check_dtype(dtype)
            return self._jax.device_put(host if dtype is None else host.astype(dtype),
                                        self._placement)
        a = super().asarray(x, dtype)
        if self._placement is None or isinstance(a, self._jax.core.Tracer):
            return a
        return self._jax.device_put(a, self._placement)

    def to_numpy(self, x: Array) -> np.ndarray:
        return np.asarray(x)

    def put(self, tree: Any, sharding: Any = None) -> Any:
        place = self._sharding(sharding)
        if isinstance(tree, np.ndarray) and self.process_count == 1:  # one host array: fast
            return self._jax.device_put(tree, place)

        def one(x: Any) -> Any:
            if not is_array_leaf(x):
                return x
            if not (self.is_array(x) or isinstance(x, (np.ndarray, np.generic))):
                x = to_host(x)
            if self.process_count > 1 and self.is_array(x) and x.is_fully_addressable:
                x = np.asarray(x)  # this process's array: to a global one through the host
            return self._jax.device_put(x, place)
        return tree_map(one, tree)

    def put_local(self, tree: Any, sharding: Any = "batch") -> Any:
        if self.process_count == 1:
            return self.put(tree, sharding)
        place = self._sharding(sharding)
        make = self._jax.make_array_from_process_local_data
        return tree_map(lambda x: make(place, np.asarray(to_host(x))) if is_array_leaf(x)
                        else x, tree)

    def process_values(self, value: Any) -> np.ndarray:
        if self.process_count == 1:
            return np.asarray(value)[None]
        from jax.experimental import multihost_utils  # deferred: jax, several processes only

        return np.asarray(multihost_utils.process_allgather(np.asarray(value)))

    def check_sharding(self, spec: Any) -> None:
        for leaf in tree_leaves(spec):
            self._sharding(leaf)

    def _sharding(self, spec: Any) -> Any:
        """A jax.sharding.Sharding for a placement name (see `Backend.put`), or None for
        JAX's default device."""
        if spec is None:
            return self._placement
        if isinstance(spec, self._jax.sharding.Sharding):
            return spec
        named = self._by_name.get(spec) if isinstance(spec, str) else None
        if named is not None:
            return named
        if spec not in SHARDINGS:
            raise ShardingError(f"backend 'jax': a sharding is None, 'replicated', 'batch' or "
                                f"a jax.sharding.Sharding, not {spec!r}.")
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

    def sigmoid(self, x: Array) -> Array:
        return self._jax.nn.sigmoid(x)  # lax.logistic: one fused, overflow-free operation

    def slice_add(self, target: Array, index: Any, values: Array) -> Array:
        return target.at[index].add(values)

    def index_add(self, target: Array, indices: Array, values: Array) -> Array:
        return target.at[indices].add(values)  # XLA's scatter-add

    def erf(self, x: Array) -> Array:
        return self._jax.lax.erf(x)

    def scan(self, fn: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any, *,
             reverse: bool = False) -> tuple[Any, Any]:
        """`jax.lax.scan`: `fn` is traced once and compiled into a loop, so a step compiled
        over T = 1024 steps is no bigger, and compiles no slower, than over T = 64."""
        scan_length(self._jax.tree_util.tree_leaves(xs))
        return self._jax.lax.scan(fn, carry, xs, reverse=reverse)

    pad = library_pad

    def compile(self, fn: Callable, donate_argnums: Sequence[int] = (),
                in_shardings: Any = None, out_shardings: Any = None) -> Callable:
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
        jitted = self._jax.jit(traced, donate_argnums=donate, **shardings)
        if self._cpu and self.mesh is not None and self.mesh.size > 1:
            return _OneAtATime(jitted, self._jax.block_until_ready)  # see the module docstring
        return jitted

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


class _OneAtATime:
    """A compiled function whose every call waits for its results (XLA:CPU over a mesh: the
    module docstring says why); otherwise the jitted function itself (`.lower`, ...)."""

    def __init__(self, jitted: Callable, block: Callable[[Any], Any]) -> None:
        self._jitted, self._block = jitted, block
        functools.update_wrapper(self, jitted)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._block(self._jitted(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._jitted, name)


def _device_mesh(jax: Any, device: str | None, devices: int | str, axis: str) -> Any:
    """A one-axis mesh named `axis` over the first `devices` devices ("all": every one) of
    JAX's default platform, or of `device`'s ("cpu", "gpu")."""
    platform = device
    if device is not None and (":" in device or device.isdigit()):
        named = device.partition(":")[0]
        raise ShardingError(
            f"backend 'jax': devices={devices!r} takes the first devices of a platform; name "
            f"the platform ('jax:{'gpu' if named.isdigit() else named}'), not one device "
            f"({device!r})")
    try:
        found = jax.devices(platform)
    except RuntimeError as e:
        raise BackendUnavailableError(f"backend 'jax': no {platform} devices here ({e})"
                                      ) from e
    if devices == "all":
        n = len(found)
    elif isinstance(devices, (int, np.integer)) and not isinstance(devices, bool) \
            and devices >= 1:
        n = int(devices)
    else:
        raise ShardingError(f"devices is a number of devices >= 1 or 'all', not {devices!r}")
    if n > len(found):
        kind = found[0].platform
        hint = (f" On a CPU, split the host into {n} devices before JAX starts: "
                f"XLA_FLAGS=--xla_force_host_platform_device_count={n} (or "
                f"jax.config.update('jax_num_cpu_devices', {n}) before the first JAX call)."
                if kind == "cpu" else "")
        raise ShardingError(
            f"backend 'jax': devices={n}, but JAX sees {len(found)} {kind} device"
            f"{'s' * (len(found) != 1)} ({', '.join(f'{d.platform}:{d.id}' for d in found)})."
            + hint)
    chosen = found[:n]
    if len({d.process_index for d in chosen}) < jax.process_count():
        raise ShardingError(
            f"backend 'jax': devices={n} leaves out processes of this {jax.process_count()}-"
            f"process run (each has {len(jax.local_devices())} devices); every process must "
            "take part in each step: devices='all'")
    return jax.sharding.Mesh(np.array(chosen), (axis,))


def _auto_axes(jax: Any, mesh: Any) -> Any:
    """`mesh` with every axis "Auto" (sharding propagation decides the layers' outputs)."""
    axis_type = getattr(jax.sharding, "AxisType", None)
    if axis_type is None or all(t == axis_type.Auto for t in mesh.axis_types):
        return mesh
    return mesh.update(axis_types=(axis_type.Auto,) * len(mesh.axis_names))
