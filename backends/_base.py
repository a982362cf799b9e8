"""The `Backend` seam: what differs between array libraries, and nothing else.

Layer math is written once against a backend's array namespace `xp`, keeping to the Python
Array API standard (2023.12). A `Backend` adds what the standard lacks or does slowly, each
with a default written against the standard where one exists, so a new backend overrides
only where its library has something faster:

    identity      name, modules (whose arrays it owns), is_array, is_concrete,
                  refused_conversion
    capabilities  inplace_updates, compiles, host_arrays, strided_views, counter()
    placement     put (shardings), put_local (a global batch from each process's rows),
                  with_devices (data parallelism), for_placement, batch_shards,
                  process_count, process_index, process_values
    moving        asarray, to_numpy, xp_dtype, numpy_dtype
    scope         scope(): this backend value is current and its device the library's
    math          slice_add (add into a slice), index_add (scatter-add of rows), pad,
                  im2col / col2im (patches), first_argmax, scatter_rows (max pooling's
                  routing), sigmoid, relu_grad, erf, scan (a loop over time), random_bits,
                  fold_in, fused_update
    steps         take_rows (a batch's rows by index), all_finite (the finite check)
    running       compile (with shardings), numerics, dtype_scope, synchronize,
                  prepare_training

A backend *value* may be configured (CuPy on device 1, JAX over a device mesh); whatever
runs inside its `scope()` (compiled steps do) sees that value for the backend's arrays.

Data parallelism is placement, not math: a value over a mesh splits each batch into
`batch_shards` equal parts along axis 0, one per device, keeps parameters replicated, and
lets its compiler all-reduce what the step's sums need. Layers never know.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from xbackprop.tree import tree_flatten, tree_leaves, tree_map, tree_unflatten

from . import _bits
from ._patches import Array, PatchPrimitives

# `Pair as Pair`: the explicit re-export (PEP 484) of the kernel sizes the backends name
from ._patches import Pair as Pair  # noqa: PLC0414
from ._steps import StepPrimitives

FLOAT_DTYPES = ("float32", "float64")
#: placements every backend understands (see `Backend.put`)
SHARDINGS = ("replicated", "batch")
_DTYPE_NAMES = ("float32", "float64", "float16", "int8", "int16", "int32", "int64", "uint8",
                "uint16", "uint32", "uint64", "bool", "complex64", "complex128")


class BackendError(RuntimeError):
    """Base class of every error the backend layer raises."""


class UnknownBackendError(BackendError, ValueError):
    """A backend name that xbackprop does not know."""


class BackendUnavailableError(BackendError, ImportError):
    """A known backend that cannot run here: its library is missing or it has no device."""


class MixedBackendError(BackendError, TypeError):
    """Arrays from two backends given to one call."""


class DtypeError(BackendError, TypeError):
    """A dtype the backend cannot hold as asked (e.g. float64 on JAX without x64 mode)."""


class ShardingError(BackendError, ValueError):
    """A placement the backend cannot make: devices on a one-device backend, a mesh axis
    that does not exist, more devices than there are."""


def check_float_dtype(dtype: Any) -> np.dtype:
    """Return `dtype` as a NumPy dtype, or raise if it is not float32/float64."""
    try:
        dt = np.dtype(dtype)
    except TypeError:  # NumPy's "data type 'bogus' not understood" names no argument
        raise DtypeError(f"xbackprop models compute in float32 or float64; {dtype!r} is not a "
                         "dtype.") from None
    if dt.name not in FLOAT_DTYPES:
        raise DtypeError(f"xbackprop models compute in float32 or float64, not {dt.name!r}.")
    return dt


#: The backend value chosen for this thread and context by `use_backend` / `Backend.scope`.
current: contextvars.ContextVar[Backend | None] = contextvars.ContextVar(
    "xbackprop_backend", default=None)
#: a backend whose arrays were checked at a step's boundary: inside, `backend_of` answers it
#: without looking at the arrays (see `trusted`)
checked: contextvars.ContextVar[Backend | None] = contextvars.ContextVar(
    "xbackprop_checked_backend", default=None)

_NO_SCOPE = contextlib.nullcontext()


class Backend(PatchPrimitives, StepPrimitives):
    """One array library. A subclass sets `name`, `modules`, `xp` and `device`, and overrides
    the primitives its library does differently or faster (see the module docstring)."""

    #: the name users choose it by: get_backend("numpy"), XBACKPROP_BACKEND=numpy
    name: ClassVar[str] = "?"
    #: top-level modules whose types its arrays have. Finding the owner of an array looks at
    #: `type(x).__module__` only, so it never imports a library.
    modules: ClassVar[tuple[str, ...]] = ()

    # -- capabilities -----------------------------------------------------------------------
    #: `x += y` and `x[i] += y` change `x`: updates may overwrite buffers their caller gave
    #: up (a train step's donated state). False for immutable arrays (JAX).
    inplace_updates: ClassVar[bool] = True
    #: `compile` traces a function once and replays the trace: a value that changes between
    #: calls must be an array, not a Python number, or every new value recompiles (see
    #: `counter`). Its compiled functions take NumPy arrays as arguments and move them
    #: themselves (cheaper than moving them first). True for JAX.
    compiles: ClassVar[bool] = False
    #: arrays live in host memory and compute eagerly, so reading a value (a loss, a flag)
    #: costs nothing: no transfer and no wait for a device. True for NumPy; for torch, per
    #: instance (CPU tensors only), so not a ClassVar.
    host_arrays: bool = False
    #: `strided_view` gives views with any strides over an array's memory, so `im2col`
    #: copies patches once from a view instead of slicing and stacking. NumPy, PyTorch.
    strided_views: ClassVar[bool] = False

    # -- placement (data parallelism) --------------------------------------------------------
    #: the equal parts a batch is split into along axis 0, one per device of a mesh's data
    #: axis: a batch must have a multiple of this many rows (fit and evaluate pad to one)
    batch_shards: int = 1
    #: processes that run each step together (multi-process JAX); each holds only its own
    #: slice of the data and passes its rows of every batch to `put_local`
    process_count: int = 1
    #: this process's place among them, 0 to process_count - 1
    process_index: int = 0
    #: processes in the run this process belongs to (`initialize_distributed`); more than
    #: `process_count` when this value leaves some out
    run_processes: int = 1

    xp: Any = None  # the array namespace
    device: str = "?"

    def __init__(self, device: str | None = None) -> None:
        if device is not None:
            raise BackendUnavailableError(
                f"backend {self.name!r} has one device; choose {self.name!r}, not "
                f"{self.name!r} on device {device!r}.")

    # -- identity -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<xbackprop backend {self.name!r} on {self.device}>"

    def is_array(self, x: Any) -> bool:
        """True if `x` is an array (or a tracer) of this backend."""
        raise NotImplementedError

    def is_concrete(self, x: Any) -> bool:
        """True if `x` holds values that can be read now (not a JAX tracer inside `jax.jit`):
        where a check of the values themselves is possible."""
        return True

    def refused_conversion(self, error: BaseException) -> bool:
        """True if `error` is this library refusing to turn one of its arrays into a NumPy
        array (JAX: `np.*` called on a traced array; CuPy: on GPU memory), the sign of layer
        code that calls NumPy instead of the namespace of its inputs."""
        return False

    def counter(self, value: int = 0) -> Any:
        """A step counter starting at `value`: a Python int, or a 0-d int32 array where
        `compiles` (a Python int would be baked into the trace)."""
        return int(value)

    # -- moving arrays --------------------------------------------------------------------
    def asarray(self, x: Any, dtype: Any = None) -> Array:
        """`x` (NumPy array, Python number or nested list, or another backend's array) as an
        array of this backend, on its device; a no-op for an array already here. `dtype`: a
        name, a NumPy dtype or one of this namespace's dtypes."""
        if dtype is not None:
            dtype = self.numpy_dtype(dtype)
            if dtype.kind == "f":
                self.check_dtype(dtype)
            dtype = self.xp_dtype(dtype)
        if not (self.is_array(x) or isinstance(x, HOST_TYPES)):
            x = to_host(x)
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x: Array) -> np.ndarray:
        """A NumPy copy (or view, on NumPy) of an array of this backend."""
        raise NotImplementedError

    def put(self, tree: Any, sharding: Any = None) -> Any:
        """Every array in `tree` (of any backend, or NumPy) placed on this backend; other
        leaves are kept. `sharding`: None (this backend value's default placement),
        "replicated" (a whole copy on every device), "batch" (axis 0 split across the
        devices), or the library's own placement object (JAX: a `jax.sharding.Sharding`).
        A backend with one device places everything there."""
        self.check_sharding(sharding)
        return tree_map(lambda x: self.asarray(x) if is_array_leaf(x) else x, tree)

    def put_local(self, tree: Any, sharding: Any = "batch") -> Any:
        """Global arrays from this process's part of them: every process calls this with its
        own rows (the same shape everywhere), and the result holds every process's rows, in
        process order, along axis 0. In one process, `put(tree, sharding)`."""
        return self.put(tree, sharding)

    def process_values(self, value: Any) -> np.ndarray:
        """Every process's `value` (a number or small host array), stacked: `(process_count,
        ...)`. Every process must call it: with several processes it is a collective."""
        return np.asarray(value)[None]

    @classmethod
    def initialize_distributed(cls, coordinator_address: str | None,
                               num_processes: int | None, process_id: int | None
                               ) -> tuple[int, int]:
        """Join a multi-process run (see `xbackprop.backends.initialize_distributed`)."""
        raise ShardingError(
            f"backend {cls.name!r} runs in one process; processes that train together run on "
            "the JAX backend: initialize_distributed('jax', ...), then backend='jax'.")

    def for_placement(self, tree: Any) -> Backend:
        """The configured value of this backend whose placement `tree`'s arrays have (JAX:
        the mesh they are replicated over), so work on them goes on where they are; else
        this value."""
        return self

    def with_devices(self, devices: int | str) -> Backend:
        """This backend over its first `devices` devices ("all": every one), each batch
        split among them and parameters replicated: data-parallel training. Backends that
        compute on one device raise, saying what to use instead."""
        raise ShardingError(
            f"backend {self.name!r} computes on one device ({self.device}), so it cannot "
            f"split batches over devices={devices!r}. Data-parallel training runs on the JAX "
            "backend: backend='jax' (pip install 'xbackprop[jax]'); on a CPU, "
            "XLA_FLAGS=--xla_force_host_platform_device_count=N splits it into N devices.")

    def check_sharding(self, spec: Any) -> None:
        """Raise unless every leaf of `spec` is a placement this backend understands."""
        for leaf in tree_leaves(spec):
            if leaf not in SHARDINGS:
                raise ShardingError(
                    f"backend {self.name!r} on {self.device} places arrays on one device: a "
                    f"sharding is None, 'replicated' or 'batch', not {leaf!r}.")

    def xp_dtype(self, dtype: Any) -> Any:
        """This namespace's dtype for a dtype name or NumPy dtype."""
        return getattr(self.xp, np.dtype(dtype).name)

    def numpy_dtype(self, dtype: Any) -> np.dtype:
        """The NumPy dtype of a dtype name, NumPy dtype or this namespace's dtype."""
        try:
            return np.dtype(dtype)
        except TypeError:
            for name in _DTYPE_NAMES:
                if dtype == getattr(self.xp, name, None):
                    return np.dtype(name)
            raise DtypeError(f"backend {self.name!r}: no NumPy dtype for {dtype!r}") from None

    # -- scope ----------------------------------------------------------------------------
    def scope(self) -> contextlib.AbstractContextManager[Backend]:
        """A `with` block in which this backend value is the current one, so `backend_of`
        answers it for this library's arrays and new arrays go to its device; restored on
        exit. `use_backend` and compiled functions enter it."""
        return _Scope(self)

    def device_scope(self) -> contextlib.AbstractContextManager[Any]:
        """Makes this backend's device the library's current one (CuPy: `Device(i)`)."""
        return _NO_SCOPE

    # -- primitives where the libraries differ ----------------------------------------------
    def slice_add(self, target: Array, index: Any, values: Array) -> Array:
        """Return `target` with `values` added into `target[index]` (basic slices, no repeated
        elements). Where `inplace_updates`, adds in place and returns `target` itself."""
        target[index] += values
        return target

    def index_add(self, target: Array, indices: Array, values: Array) -> Array:
        """Return `target: (R, ...)` with row `values[i]` added into row `target[indices[i]]`
        for every i (`indices: (M,)` integers in [0, R), `values: (M, ...)`); a row named
        several times gets every one of its values (a scatter-add: an embedding's weight
        gradient). Where `inplace_updates`, may add in place and return `target` itself.

        The standard has no scatter: the default multiplies by the one-hot matrix,
        `target + onehot(indices)ᵀ · values`, exact but `(M, R)` in memory; libraries
        with a scatter-add override it."""
        xp = self.xp
        rows = target.shape[0]
        onehot = xp.astype(indices[:, None] == xp.arange(rows)[None, :], values.dtype)
        flat = xp.reshape(values, (values.shape[0], -1))
        return target + xp.reshape(onehot.T @ flat, tuple(target.shape))

    def relu_grad(self, y: Array, dy: Array) -> Array:
        """ReLU's backward from its output: dy · 1[y > 0] (0 at y = 0, as PyTorch and JAX).
        A primitive because it is every ReLU network's hot spot: three passes here (compare,
        cast, multiply), where a library may have one (PyTorch's threshold_backward). (A dy
        that is not finite where y <= 0 may give NaN or 0 there, by library.)"""
        return dy * self.xp.astype(y > 0, dy.dtype)

    def sigmoid(self, x: Array) -> Array:
        """σ(x) = 1 / (1 + e^-x) for float `x`, never overflowing: from e^-|x|, as
        `where(x >= 0, 1 / (1 + e), e / (1 + e))`. A primitive because it is every sigmoid
        network's hot spot: eight passes here, which a library may fuse into fewer."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r)
    def erf(self, x: Array) -> Array:
        """The error function erf(x) = 2/√π ∫₀ˣ e^(-t²) dt of float `x`, elementwise (exact
        GELU needs it; the standard has none). The default is accurate to a few units in
        the last place of float64 (≤ 2e-15 relative, checked against C's erf), in the
        dtype of `x`: with a = |x|,

          a < 2.5:  erf(a) = 2/√π e^(-a²) Σ_n (2a²)ⁿ a / (1·3·…·(2n+1)), 40 terms (all
                    positive: no cancellation);
          a ≥ 2.5:  erfc(a) = e^(-a²)/√π · 1/(a + ½/(a + 1/(a + (3/2)/(a + …)))), the
                    continued fraction evaluated from 30 levels deep; erf = 1 - erfc;

        and erf(-x) = -erf(x). Libraries that have erf use their own."""
        xp = self.xp
        a = xp.abs(x)
        s = xp.clip(a, None, _ERF_SPLIT)   # each branch on its own range: no overflow
        c = xp.clip(a, _ERF_SPLIT, None)
        two_s2 = 2 * s * s
        term, total = s, s
        for n in range(1, _ERF_TERMS):
            term = term * two_s2 / (2 * n + 1)
            total = total + term
        series = _TWO_OVER_SQRT_PI * xp.exp(-s * s) * total
        t = c
        for k in range(_ERF_DEPTH, 0, -1):
            t = c + (k / 2) / t
        tail = 1 - xp.exp(-c * c) / (_SQRT_PI * t)
        r = xp.where(a < _ERF_SPLIT, series, tail)
        return xp.where(x < 0, -r, r)

    def scan(self, fn: Callable[[Any, Any], tuple[Any, Any]], carry: Any, xs: Any, *,
             reverse: bool = False) -> tuple[Any, Any]:
        """A loop over time: `fn(carry, x_t) -> (carry, y_t)` for t = 0 .. T-1 (T-1 .. 0 with
        `reverse`), returning the last carry and every `y_t` stacked along a new axis 0,
        in time order either way. `xs` and the `y_t` are pytrees of arrays (tuples, lists,
        dicts; `y_t` may be None); `x_t` is each leaf of `xs` at index t of its axis 0,
        which every leaf has of length T ≥ 1. `carry` is a pytree `fn` returns the same
        shapes and dtypes of.

        The semantics of `jax.lax.scan`. Recurrent layers run their forward pass (reverse
        False) and their backward through time (reverse True) with it, so the layer math
        stays free of library names. Here, a Python loop over t that stacks the outputs
        (NumPy, CuPy, PyTorch: one eager step per t); JAX compiles `fn` once into a loop,
        so a program's size and compile time do not grow with T.
        """

        leaves, structure = tree_flatten(xs)
        length = scan_length(leaves)
        # x_t rebuilt per step: directly for an array or a flat tuple of them (the layers'
        # case: the tree functions cost more than a small step's arithmetic), else as a tree
        if isinstance(xs, tuple) and len(xs) == len(leaves) and not hasattr(xs, "_fields"):
            def at(t: int) -> Any:
                return tuple(a[t, ...] for a in leaves)
        elif len(leaves) == 1 and structure == tree_flatten(leaves[0])[1]:
            def at(t: int) -> Any:
                return leaves[0][t, ...]
        else:
            def at(t: int) -> Any:
                return tree_unflatten(structure, [a[t, ...] for a in leaves])
        outputs: list[Any] = [None] * length
        for t in (range(length - 1, -1, -1) if reverse else range(length)):
            carry, outputs[t] = fn(carry, at(t))
        first = outputs[0]
        if first is None:
            return carry, None
        if isinstance(first, tuple) and not hasattr(first, "_fields") and all(
                not isinstance(y, (tuple, list, dict)) and y is not None for y in first):
            return carry, tuple(self.xp.stack(column, axis=0) for column in zip(*outputs))
        per_step = [tree_flatten(y) for y in outputs]
        stacked = [self.xp.stack([step[0][i] for step in per_step], axis=0)
                   for i in range(len(per_step[0][0]))]
        return carry, tree_unflatten(per_step[0][1], stacked)

    def random_bits(self, key: Array, shape: tuple[int, ...]) -> Array:
        """uint32 random bits of `shape` from a uint32[2] key, the same bits on every
        backend (xbackprop.random draws from them; the hash is in `backends/_bits.py`)."""
        return _bits.bits(self.xp, key, shape)

    def fold_in(self, key: Array, data: Any) -> Array:
        """A new uint32[2] key from `key` and `data` (a Python int or an integer array, such
        as a step counter), the same on every backend (the hash is in `backends/_bits.py`)."""
        return _bits.fold_in(self.xp, key, data)

    def fused_update(self, name: str) -> Callable | None:
        """A one-kernel, in-place form of optimizer rule `name` (see `xbackprop.optim`), or
        None to run the rule op by op."""
        return None

    # -- running ------------------------------------------------------------------------
    def prepare_training(self) -> None:
        """Called once when a train step is made for this backend (a hook for host-side
        settings; see the NumPy backend)."""

    def compile(self, fn: Callable, donate_argnums: Sequence[int] = (),
                in_shardings: Any = None, out_shardings: Any = None) -> Callable:
        """`fn`, a pure function of arrays, ready to run on this backend, inside its
        `scope()` (so the layers in it see this backend value). JAX compiles it with
        `jax.jit`; elsewhere it runs op by op. `in_shardings` / `out_shardings`: a placement
        (see `put`) per argument / output, or one for all; None leaves it to the backend."""
        self.check_sharding(in_shardings)
        self.check_sharding(out_shardings)

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with _Scope(self):
                return fn(*args, **kwargs)
        return run

    def numerics(self) -> contextlib.AbstractContextManager[None]:
        """A scope for eager code that should compute exactly as compiled steps do (JAX on a
        GPU: full float32 matrix products); nothing to do elsewhere."""
        return contextlib.nullcontext()

    def synchronize(self, tree: Any = None) -> Any:
        """Wait until the device has finished computing `tree` (for honest timings)."""
        return tree

    def dtype_scope(self, dtype: Any) -> contextlib.AbstractContextManager[None]:
        """A scope in which this backend can hold `dtype` (JAX: 64-bit mode on for float64,
        restored on exit); nothing to do where every float dtype is always available."""
        check_float_dtype(dtype)
        return contextlib.nullcontext()

    def check_dtype(self, dtype: Any) -> np.dtype:
        """The float dtype as a NumPy dtype; raise if this backend cannot hold it."""
        return check_float_dtype(dtype)


class _Scope:
    """`Backend.scope()`: a plain class, since compiled eager steps enter one per call."""

    __slots__ = ("backend", "token", "device")

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def __enter__(self) -> Backend:
        self.device = self.backend.device_scope()
        self.device.__enter__()
        self.token = current.set(self.backend)
        return self.backend

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        current.reset(self.token)
        self.device.__exit__(exc_type, exc, tb)


def scan_length(leaves: Sequence[Array]) -> int:
    """T, the length of axis 0 that every array of a scan's `xs` shares; an error if there
    is no array, if they differ, or if T is 0 (a loop over time needs a step)."""
    if not leaves:
        raise ValueError("scan: xs has no arrays to loop over")
    length = leaves[0].shape[0] if len(leaves[0].shape) else None
    if length is None or any(len(a.shape) == 0 or a.shape[0] != length for a in leaves):
        raise ValueError(f"scan: every array in xs needs the same leading (time) axis; got "
                         f"shapes {', '.join(str(tuple(a.shape)) for a in leaves)}")
    if length == 0:
        raise ValueError("scan: xs has length 0 along axis 0; a loop over time needs at least "
                         "one step")
    return int(length)


#: what any backend's asarray takes from the host
HOST_TYPES = (np.ndarray, np.generic, int, float, bool, list, tuple)

# Backend.erf's default: where the series hands over to the continued fraction, and how
# many terms and levels each takes for float64 accuracy over the whole real line
_ERF_SPLIT, _ERF_TERMS, _ERF_DEPTH = 2.5, 40, 30
_SQRT_PI = math.sqrt(math.pi)
_TWO_OVER_SQRT_PI = 2 / _SQRT_PI


def is_array_leaf(x: Any) -> bool:
    """Leaves that move between backends: arrays of any backend and NumPy scalars."""
    from ._select import owner_of  # local: a cycle (_select imports this module)

    return isinstance(x, np.generic) or owner_of(x) is not None


def to_host(x: Any) -> Any:
    """Another backend's array as NumPy, through the backend that owns it; anything no
    backend claims is passed on for the array library to convert (or reject)."""
    from ._select import owner_of  # local: a cycle (_select imports this module)

    owner = owner_of(x)
    return x if owner is None else owner.to_numpy(x)
