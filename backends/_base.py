"""The `Backend` seam: what differs between array libraries, and nothing else.

Layer math is written once against a backend's array namespace `xp`, keeping to the Python
Array API standard (2023.12). A `Backend` adds what the standard lacks or does slowly, each
with a default written against the standard where one exists, so a new backend overrides
only where its library has something faster:

    identity      name, modules (whose arrays it owns), is_array, is_concrete,
                  refused_conversion
    capabilities  inplace_updates, compiles, host_arrays, counter()
    placement     put (shardings), put_local (a global batch from each process's rows),
                  with_devices (data parallelism), for_placement, batch_shards,
                  process_count, process_index, process_values
    moving        asarray, to_numpy, xp_dtype, numpy_dtype
    scope         scope(): this backend value is current and its device the library's
    math          slice_add (scatter-add), pad, im2col / col2im (patches), first_argmax,
                  sigmoid, random_bits, fold_in, fused_update
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
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from xbackprop.tree import tree_leaves, tree_map

from . import _bits

Pair = tuple[int, int]
Array = Any  # an array of some backend: numpy.ndarray, cupy.ndarray, jax.Array (or a tracer)

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
    dt = np.dtype(dtype)
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


class Backend:
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

    def pad(self, x: Array, widths: Sequence[Pair], value: float = 0.0) -> Array:
        """`x` with `widths[i] = (before, after)` elements of `value` added along axis i.
        The standard has no pad: blocks of `value` are concatenated."""
        xp = self.xp
        for axis, (before, after) in enumerate(widths):
            if not (before or after):
                continue
            shape = tuple(x.shape)
            blocks = [xp.full(shape[:axis] + (count,) + shape[axis + 1:], value, dtype=x.dtype)
                      for count in (before, after)]
            x = xp.concat([blocks[0], x, blocks[1]], axis=axis)
        return x

    def im2col(self, x: Array, kernel: Pair, stride: Pair, dilation: Pair,
               pads: tuple[Pair, Pair], out_hw: Pair, pad_value: float = 0.0
               ) -> tuple[Array, int]:
        """The patches of `x: (N, C, H, W)` as columns: `(cols, row_width)` with
        `cols: (C·KH·KW, N·OH·row_width)`.

        Row `c·KH·KW + i·KW + j` holds input channel c at kernel tap (i, j) for every output
        position; column `(n·OH + oh)·row_width + ow` is output position (oh, ow) of sample
        n. `row_width` ≥ OW: columns with ow ≥ OW are junk that callers slice off (and
        must give zero gradient). `x` is padded with `pad_value` by `pads` first.

        With stride 1 each tap is one contiguous shifted slice of the flattened, padded
        image, read over full padded rows (row_width = padded W): long copies instead of
        one short copy per output row. Otherwise taps are strided 2-D slices.
        """
        xp = self.xp
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
        n, c, h, w = x.shape
        (top, bottom), (left, right) = pads
        wp = w + left + right
        if (sh, sw) == (1, 1):
            # the last tap reads oh full rows from row (kh-1)·dh, column (kw-1)·dw: pad the
            # bottom so that read stays inside the flattened image
            reach = (kh - 1) * dh * wp + (kw - 1) * dw + oh * wp
            bottom = max(bottom, -(-reach // wp) - h - top)
        planes = self._padded_planes(x, ((top, bottom), (left, right)), pad_value)  # (C,N,Hp,Wp)
        if (sh, sw) == (1, 1):
            flat = xp.reshape(planes, (c, n, planes.shape[2] * wp))
            taps = [flat[:, :, i * dh * wp + j * dw: i * dh * wp + j * dw + oh * wp]
                    for i in range(kh) for j in range(kw)]                  # (C, N, OH·Wp)
            row_width = wp
        else:
            taps = [planes[:, :, _tap(i, sh, dh, oh), _tap(j, sw, dw, ow)]
                    for i in range(kh) for j in range(kw)]                  # (C, N, OH, OW)
            row_width = ow
        cols = xp.stack(taps, axis=1)                                      # (C, KH·KW, N, ...)
        return xp.reshape(cols, (c * kh * kw, n * oh * row_width)), row_width

    def col2im(self, cols: Array, x_shape: Sequence[int], kernel: Pair, stride: Pair,
               dilation: Pair, pads: tuple[Pair, Pair], out_hw: Pair, row_width: int
               ) -> Array:
        """The adjoint of `im2col`: every column entry summed back into the input position
        it was read from. `cols: (C·KH·KW, N·OH·row_width)` -> `(N, C, H, W)`."""
        xp = self.xp
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
        n, c, h, w = x_shape
        (top, bottom), (left, right) = pads
        hp, wp = h + top + bottom, w + left + right
        cols = xp.reshape(cols, (c, kh * kw, n, oh * row_width))
        if (sh, sw) == (1, 1):
            length = oh * wp
            size = max(hp * wp, (kh - 1) * dh * wp + (kw - 1) * dw + length)
            flat = xp.zeros((c, n, size), dtype=cols.dtype)
            for t in range(kh * kw):
                start = (t // kw) * dh * wp + (t % kw) * dw
                flat = self.slice_add(flat, (slice(None), slice(None),
                                             slice(start, start + length)), cols[:, t, ...])
            planes = xp.reshape(flat[:, :, :hp * wp], (c, n, hp, wp))
        else:
            cols = xp.reshape(cols, (c, kh * kw, n, oh, ow))
            planes = xp.zeros((c, n, hp, wp), dtype=cols.dtype)
            for t in range(kh * kw):
                index = (slice(None), slice(None), _tap(t // kw, sh, dh, oh),
                         _tap(t % kw, sw, dw, ow))
                planes = self.slice_add(planes, index, cols[:, t, ...])
        return xp.permute_dims(planes[:, :, top:hp - bottom, left:wp - right], (1, 0, 2, 3))

    def _padded_planes(self, x: Array, pads: tuple[Pair, Pair], value: float) -> Array:
        """`x: (N, C, H, W)` as `(C, N, H + top + bottom, W + left + right)`, padded with
        `value`: channel-major, so patch columns come out in the order the product wants."""
        (top, bottom), (left, right) = pads
        planes = self.xp.permute_dims(x, (1, 0, 2, 3))
        if top or bottom or left or right:
            return self.pad(planes, ((0, 0), (0, 0), (top, bottom), (left, right)), value)
        return planes

    def first_argmax(self, x: Array, x_max: Array) -> Array:
        """For `x: (K, M)` and its column maxima `x_max: (M,)`, the first row holding each
        column's maximum (ties go to the first, on every backend)."""
        return self.xp.argmax(x, axis=0)

    def sigmoid(self, x: Array) -> Array:
        """σ(x) = 1 / (1 + e^-x) for float `x`, never overflowing: from e^-|x|, as
        `where(x >= 0, 1 / (1 + e), e / (1 + e))`. A primitive because it is every sigmoid
        network's hot spot: eight passes here, which a library may fuse into fewer."""
        xp = self.xp
        e = xp.exp(-xp.abs(x))
        r = 1 / (1 + e)
        return xp.where(x >= 0, r, e * r)

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


def library_pad(backend: Backend, x: Array, widths: Sequence[Pair], value: float = 0.0
                ) -> Array:
    """`Backend.pad` by the library's own `pad` (NumPy, CuPy, JAX): one copy."""
    return backend.xp.pad(x, tuple(widths), constant_values=value)


#: what any backend's asarray takes from the host
HOST_TYPES = (np.ndarray, np.generic, int, float, bool, list, tuple)


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


def _tap(offset: int, stride: int, dilation: int, out: int) -> slice:
    """The slice of input rows that kernel tap `offset` reads for `out` output rows."""
    start = offset * dilation
    return slice(start, start + stride * (out - 1) + 1, stride)
