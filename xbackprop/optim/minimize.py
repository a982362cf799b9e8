"""Optimizers on a plain function with a hand-written gradient: `minimize` runs the updates
and keeps the path, for pictures of how each rule moves (the optimizers lesson)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from ..backends import get_backend, owner_of, to_numpy
from .base import Optimizer

__all__ = ["Trajectory", "minimize"]


class Trajectory(NamedTuple):
    """Where `minimize` went: `points[k]` is x after k updates (`points[0]` is x0) and
    `values[k]` is f there; host NumPy arrays, `points: (steps + 1, *x0.shape)`."""

    points: np.ndarray
    values: np.ndarray

    @property
    def x(self) -> np.ndarray:
        """The last point."""
        return self.points[-1]

    @property
    def value(self) -> float:
        """f at the last point."""
        return float(self.values[-1])


def minimize(f: Callable[[Any], Any], grad: Callable[[Any], Any], x0: Any,
             optimizer: Optimizer, steps: int, *, backend: Any = None, dtype: Any = None,
             jit: bool = True) -> Trajectory:
    """Run `optimizer` on a function with a hand-written gradient: `steps` updates
    x ← update(x, grad(x)) from `x0`, and the path they take.

    x0: a Python float, a sequence of floats (e.g. `(-1.5, 2.0)`) or an array: the start.
    f(x) -> a scalar, grad(x) -> ∂f/∂x with x's shape (a tuple of entries is fine); both get
    x as an array of the backend and may use arithmetic, indexing (`x[0]`) and the array's
    namespace (`xb.backend_of(x).xp`). On JAX one update is compiled by `jax.jit`, so they
    must be traceable there (jit=False runs them op by op).
    backend: where to compute (default: x0's, if it is an array of a backend, else the
    current one); dtype: x0's if it is a float array, else float32.

        path = xb.optim.minimize(lambda p: p[0]**2 + p[1]**2, lambda p: 2 * p,
                                 (-1.5, 2.0), xb.optim.momentum(0.05), 100)
        path.points  # (101, 2), path.values  # (101,), path.x, path.value
    """
    if not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f"steps must be a whole number >= 0, not {steps!r}")
    owner = owner_of(x0)
    target = get_backend(backend) if backend is not None or owner is None else owner
    x = _starting_point(x0, target, dtype)
    xp = target.xp

    def value_of(x: Any) -> Any:
        v = _as_array(xp, f(x), x.dtype)
        if math.prod(v.shape) != 1:
            raise ValueError(f"f returned shape {tuple(v.shape)}: it must return one number")
        return xp.reshape(v, ())

    def update(x: Any, state: Any) -> tuple[Any, Any, Any]:
        g = _as_array(xp, grad(x), x.dtype)
        if tuple(g.shape) != tuple(x.shape):
            raise ValueError(f"grad returned shape {tuple(g.shape)} for x of shape "
                             f"{tuple(x.shape)}: it must return ∂f/∂x, one entry per entry "
                             "of x")
        new_x, state = optimizer.update(x, g, state)
        return new_x, state, value_of(x)

    if jit:
        update, value_of = target.compile(update), target.compile(value_of)
    state = optimizer.init(x)
    points, values = [x], []
    for _ in range(int(steps)):
        x, state, value = update(x, state)
        points.append(x)
        values.append(value)
    values.append(value_of(x))
    # one array at a time: stacking thousands of JAX arrays would compile a huge concatenate
    return Trajectory(np.stack([target.to_numpy(p) for p in points]),
                      np.stack([target.to_numpy(v) for v in values]))


def _as_array(xp: Any, value: Any, dtype: Any) -> Any:
    """A function's result as one array: a tuple of entries (arrays or numbers) is stacked."""
    if isinstance(value, (tuple, list)):
        return xp.stack([xp.reshape(xp.asarray(v, dtype=dtype), ()) for v in value])
    return xp.asarray(value, dtype=dtype)


def _starting_point(x0: Any, backend: Any, dtype: Any) -> Any:
    """x0 as a float array of `backend`, checked: numbers only, all finite. Its dtype: `dtype`,
    else x0's if x0 is a float array of `backend` already, else float32."""
    if backend.is_array(x0):
        host = backend.to_numpy(x0)
    else:
        try:
            host = np.asarray(to_numpy(x0))  # arrays of any backend in x0 as NumPy
        except (TypeError, ValueError) as e:
            raise TypeError(f"x0 must be a float, a sequence of floats or an array, not "
                            f"{type(x0).__name__} ({e})") from e
    if host.dtype.kind not in "iuf":
        raise TypeError(
            f"x0 must be a float, a sequence of floats or an array, not {x0!r}: minimize "
            "moves one array; put several parameters into it, e.g. x0=(x, y)")
    if dtype is None:
        dtype = host.dtype if backend.is_array(x0) and host.dtype.kind == "f" else "float32"
    dt = backend.check_dtype(dtype)
    if not np.isfinite(host).all():
        raise ValueError(f"x0 must be finite, got {host.tolist()}")
    return backend.asarray(host, dtype=dt)
