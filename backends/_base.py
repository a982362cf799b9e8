"""The `Backend` seam: what differs between NumPy, CuPy and JAX, and nothing else.

Layer math is written once against a backend's array namespace `xp` (the subset of the
Python Array API that NumPy 2, CuPy and `jax.numpy` share). A `Backend` adds the few
primitives where the libraries really differ: moving arrays in and out, adding into a
slice (in place where arrays are mutable), patch extraction for convolution and its
adjoint, compiling a step, and waiting for the device before reading a clock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Pair = tuple[int, int]
Array = Any  # an array of some backend: numpy.ndarray, cupy.ndarray, jax.Array (or a tracer)

FLOAT_DTYPES = ("float32", "float64")


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


def check_float_dtype(dtype: Any) -> np.dtype:
    """Return `dtype` as a NumPy dtype, or raise if it is not float32/float64."""
    dt = np.dtype(dtype)
    if dt.name not in FLOAT_DTYPES:
        raise DtypeError(f"xbackprop models compute in float32 or float64, not {dt.name!r}.")
    return dt


class Backend:
    """One array library. Subclasses set `name`, `xp`, `device` and override primitives.

    The defaults here suit libraries with mutable arrays (NumPy, CuPy); JAX overrides
    the ones that mutate.
    """

    name: str = "?"
    xp: Any = None  # the array namespace
    device: str = "?"
    #: True where `slice_add` and `update_` change their target in place.
    mutable_arrays: bool = True

    # -- identity -----------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"<xbackprop backend {self.name!r} on {self.device}>"

    def is_array(self, x: Any) -> bool:
        """True if `x` is an array (or a tracer) of this backend."""
        raise NotImplementedError

    # -- moving arrays --------------------------------------------------------------------
    def asarray(self, x: Any, dtype: Any = None) -> Array:
        """`x` (NumPy array, Python number or nested list, or another backend's array) as an
        array of this backend, on its device; a no-op for an array already here."""
        if dtype is not None:
            dtype = np.dtype(dtype)
            if dtype.kind == "f":
                self.check_dtype(dtype)
        if not (self.is_array(x) or isinstance(x, _HOST_TYPES)):
            x = _to_host(x)
        return self.xp.asarray(x, dtype=dtype)

    def to_numpy(self, x: Array) -> np.ndarray:
        """A NumPy copy (or view, on NumPy) of an array of this backend."""
        raise NotImplementedError

    # -- primitives where the libraries differ ------------------------------------------------
    def slice_add(self, target: Array, index: Any, values: Array) -> Array:
        """Return `target` with `values` added into `target[index]` (basic slices, no repeated
        elements). Mutable backends add in place and return `target` itself."""
        target[index] += values
        return target

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
        planes = _padded_planes(xp, x, ((top, bottom), (left, right)), pad_value)  # (C,N,Hp,Wp)
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
                                             slice(start, start + length)), cols[:, t])
            planes = xp.reshape(flat[:, :, :hp * wp], (c, n, hp, wp))
        else:
            cols = xp.reshape(cols, (c, kh * kw, n, oh, ow))
            planes = xp.zeros((c, n, hp, wp), dtype=cols.dtype)
            for t in range(kh * kw):
                index = (slice(None), slice(None), _tap(t // kw, sh, dh, oh),
                         _tap(t % kw, sw, dw, ow))
                planes = self.slice_add(planes, index, cols[:, t])
        return xp.transpose(planes[:, :, top:hp - bottom, left:wp - right], (1, 0, 2, 3))

    def first_argmax(self, x: Array, x_max: Array) -> Array:
        """For `x: (K, M)` and its column maxima `x_max: (M,)`, the first row holding each
        column's maximum (ties go to the first, on every backend)."""
        return self.xp.argmax(x, axis=0)

    def prepare_training(self) -> None:
        """Called once when a train step is made for this backend (a hook for host-side
        settings; see the NumPy backend)."""

    def compile(self, fn: Callable, donate_argnums: Sequence[int] = ()) -> Callable:
        """Compile a pure function of arrays (JAX: `jax.jit`); other backends run it as is."""
        return fn

    def fused_update(self, name: str) -> Callable | None:
        """A one-kernel, in-place form of optimizer rule `name` (see `xbackprop.optim`), or
        None to run the rule op by op."""
        return None

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


def _padded_planes(xp: Any, x: Array, pads: tuple[Pair, Pair], value: float) -> Array:
    """`x: (N, C, H, W)` as `(C, N, H + top + bottom, W + left + right)`, padded with `value`:
    channel-major, so that patch columns come out in the order the matrix product wants."""
    (top, bottom), (left, right) = pads
    planes = xp.transpose(x, (1, 0, 2, 3))
    if top or bottom or left or right:
        return xp.pad(planes, ((0, 0), (0, 0), (top, bottom), (left, right)),
                      constant_values=value)
    return planes


_HOST_TYPES = (np.ndarray, np.generic, int, float, bool, list, tuple)


def _to_host(x: Any) -> Any:
    """Another backend's array as NumPy, through the backend that owns it; anything no
    backend claims is passed on for the array library to convert (or reject)."""
    from ._select import owner_of  # local: _select imports the backend modules

    owner = owner_of(x)
    return x if owner is None else owner.to_numpy(x)


def _tap(offset: int, stride: int, dilation: int, out: int) -> slice:
    """The slice of input rows that kernel tap `offset` reads for `out` output rows."""
    start = offset * dilation
    return slice(start, start + stride * (out - 1) + 1, stride)
