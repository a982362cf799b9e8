"""The `Backend` seam: what differs between NumPy, CuPy and JAX, and nothing else.

Layer math is written once against a backend's array namespace `xp` (the subset of the
Python Array API that NumPy 2, CuPy and `jax.numpy` share). A `Backend` adds the few
primitives where the libraries really differ: moving arrays in and out, adding into a
slice (in place where arrays are mutable), patch extraction for convolution and its
adjoint, compiling a step, and waiting for the device before reading a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

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

    def im2col(self, x: Array, kernel: tuple[int, int], stride: tuple[int, int],
               dilation: tuple[int, int], out_hw: tuple[int, int]) -> Array:
        """Patches of an already padded `x: (N, C, H, W)` as `(N, C*KH*KW, OH*OW)`.

        Row `c*KH*KW + i*KW + j` holds input channel c at kernel offset (i, j) for every
        output position: `x[n, c, oh*sh + i*dh, ow*sw + j*dw]`.
        """
        xp = self.xp
        (kh, kw), (oh, ow) = kernel, out_hw
        n, c = x.shape[0], x.shape[1]
        taps = [x[:, :, _tap(i, stride[0], dilation[0], oh), _tap(j, stride[1], dilation[1], ow)]
                for i in range(kh) for j in range(kw)]
        cols = xp.stack(taps, axis=2)  # (N, C, KH*KW, OH, OW)
        return xp.reshape(cols, (n, c * kh * kw, oh * ow))

    def col2im(self, cols: Array, x_shape: Sequence[int], kernel: tuple[int, int],
               stride: tuple[int, int], dilation: tuple[int, int],
               out_hw: tuple[int, int]) -> Array:
        """The adjoint of `im2col`: sum every patch entry back into the (padded) input
        position it was read from. `cols: (N, C*KH*KW, OH*OW)` -> `(N, C, H, W)`."""
        xp = self.xp
        (kh, kw), (oh, ow) = kernel, out_hw
        n, c = x_shape[0], x_shape[1]
        cols = xp.reshape(cols, (n, c, kh, kw, oh, ow))
        dx = xp.zeros(tuple(x_shape), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                index = (slice(None), slice(None), _tap(i, stride[0], dilation[0], oh),
                         _tap(j, stride[1], dilation[1], ow))
                dx = self.slice_add(dx, index, cols[:, :, i, j])
        return dx

    def compile(self, fn: Callable, donate_argnums: Sequence[int] = ()) -> Callable:
        """Compile a pure function of arrays (JAX: `jax.jit`); other backends run it as is."""
        return fn

    def synchronize(self, tree: Any = None) -> Any:
        """Wait until the device has finished computing `tree` (for honest timings)."""
        return tree

    def check_dtype(self, dtype: Any) -> np.dtype:
        """The float dtype as a NumPy dtype; raise if this backend cannot hold it."""
        return check_float_dtype(dtype)


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
