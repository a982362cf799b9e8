"""Device feeds: how each step's batch reaches the compiled step, one kind per way the data
are held. A feed wraps the core train step into what is compiled (`wrap`), gives a step's
arguments after the state (`args(step)`), and the step's batch as arrays on the backend
(`batch(step)`, for finding where a NaN came from).

    ArrayFeed    arrays in one process: they move to the backend once (a copy on each device
                 of a mesh); a step passes only its batch's indices and gathers its rows
                 inside the compiled step
    ProcessFeed  several processes: each holds its own slice of the arrays on the host; a
                 step's batch is every process's part, padded to one size (masked) and
                 joined into one global array (`Backend.put_local`)
    SourceFeed   a batch source in one process: each step's batch comes from the host,
                 padded to the step's rows (masked) where it has fewer
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import Array, Backend, backend_of
from .batching import DataOrder, padded_part
from .sources import BatchSource
from .train import TrainState

__all__ = ["ArrayFeed", "ProcessFeed", "SourceFeed"]

Step = Callable[..., tuple[TrainState, Any]]


def _mask(xp: Any, rows: int, n_real: Any, dtype: Any) -> Array:
    """(rows,) of `dtype`: 1 for the first n_real rows (the real ones), 0 for padding."""
    return xp.astype(xp.arange(rows) < n_real, dtype)


class ArrayFeed:
    """One process, arrays: the data move to the backend once (over a mesh, a copy onto
    each device) and a step gathers its batch from them by index, inside the compiled step.
    The indices are split over the mesh like the batch, so each device gathers only its
    rows."""

    #: whether a replay needs batches kept (never: they come from the data by index)
    keeps_batches = False

    def __init__(self, backend: Backend, x: np.ndarray, y: np.ndarray, order: DataOrder,
                 rows: int | None, jit: bool = True, mask_dtype: Any = None) -> None:
        self.backend, self.order, self.rows, self.host = backend, order, rows, (x, y)
        self.mask_dtype = mask_dtype
        self.data = (backend.asarray(x), backend.asarray(y))
        self.sharded = backend.batch_shards > 1
        # a compiled step takes the indices as they are on the host: moving them first
        # would be one more call (on JAX about 16 µs against 2)
        self.host_indices = backend.compiles and jit and not self.sharded
        #: the placements of the step's (state, data, indices, real rows) and its outputs
        self.shardings = {"in_shardings": ("replicated", "replicated", "batch", "replicated"),
                          "out_shardings": "replicated"} if self.sharded else {}

    def wrap(self, core: Step) -> Step:
        mask_dtype = self.mask_dtype

        def fit_step(state: TrainState, data: tuple[Array, Array], idx: Array,
                     n_real: Any) -> tuple[TrainState, dict[str, Array]]:
            x, y = data
            backend = backend_of(x)
            mask = None
            if n_real is not None:  # padded: the first n_real rows are real
                mask = _mask(backend.xp, idx.shape[0], n_real, mask_dtype or x.dtype)
            return core(state, (backend.take_rows(x, idx), backend.take_rows(y, idx), mask))
        return fit_step

    def args(self, step: int) -> tuple:
        """The step's arguments after the state: the data, the batch's indices on the
        device, and the count of real rows (None when batches are not padded)."""
        idx = self.order.indices(step)
        real = None
        if self.rows is not None:
            real = len(idx)
            if real < self.rows:
                idx = np.concatenate([idx, np.zeros(self.rows - real, idx.dtype)])
            idx = idx.astype(np.int32)
        if self.sharded:
            idx = self.backend.put(idx, "batch")
        elif not self.host_indices:
            idx = self.backend.asarray(idx)
        return self.data, idx, real

    def batch(self, step: int) -> tuple[Array, ...]:
        """The step's batch `(x, y)`, gathered eagerly (to look for a NaN's origin)."""
        idx = self.order.indices(step)
        return tuple(self.backend.asarray(a[idx]) for a in self.host)


class ProcessFeed:
    """Several processes: each holds only its own slice of the arrays, on the host. A step's
    batch is every process's part of it: each gathers its rows (in `order`), pads them to
    its part's size (masked) and the backend joins the parts into one global batch split
    over the devices (`put_local`: `jax.make_array_from_process_local_data`)."""

    keeps_batches = False

    def __init__(self, backend: Backend, x: np.ndarray, y: np.ndarray, order: DataOrder,
                 rows: int, mask_dtype: Any = None) -> None:
        self.backend, self.order, self.rows, self.host = backend, order, rows, (x, y)
        self.mask_dtype = mask_dtype
        self.shardings = {"in_shardings": ("replicated", "batch"),
                          "out_shardings": "replicated"}

    def wrap(self, core: Step) -> Step:
        return core

    def args(self, step: int) -> tuple:
        return (self.batch(step),)

    def batch(self, step: int) -> tuple[Array, ...]:
        idx = self.order.indices(step)
        return self.backend.put_local(padded_part([a[idx] for a in self.host], self.rows,
                                                  self.mask_dtype), "batch")


class SourceFeed:
    """One process, a batch source: each step's batch comes from the host (checked by the
    `BatchSource`), padded to the step's rows where it has fewer (masked), and moves to the
    backend with the step (split over the mesh's devices where there are several)."""

    def __init__(self, backend: Backend, source: BatchSource, rows: int | None,
                 jit: bool = True, mask_dtype: Any = None) -> None:
        self.backend, self.source, self.rows = backend, source, rows
        self.mask_dtype = mask_dtype
        self.sharded = backend.batch_shards > 1
        self.pass_host = backend.compiles and jit and not self.sharded  # jit moves them
        self.shardings = {"in_shardings": ("replicated", "batch", "replicated"),
                          "out_shardings": "replicated"} if self.sharded else {}
        #: an iterable's batches are kept for a replay; a function gives them again
        self.keeps_batches = not source.callable

    def wrap(self, core: Step) -> Step:
        mask_dtype = self.mask_dtype

        def fit_step(state: TrainState, batch: tuple[Array, Array], n_real: Any
                     ) -> tuple[TrainState, dict[str, Array]]:
            x, y = batch
            xp = backend_of(x).xp
            mask = None if n_real is None else _mask(xp, x.shape[0], n_real,
                                                      mask_dtype or x.dtype)
            return core(state, (x, y, mask))
        return fit_step

    def args(self, step: int) -> tuple:
        """The step's arguments after the state: its batch `(x, y)` (padded to the step's
        rows) and the count of real rows (None when batches are not padded)."""
        x, y = self.source.batch(step)
        real = None
        if self.rows is not None:
            real = len(x)
            if real < self.rows:
                x, y, _ = padded_part([x, y], self.rows)
        if self.sharded:
            batch = self.backend.put((x, y), "batch")
        elif self.pass_host:
            batch = (x, y)
        else:
            batch = (self.backend.asarray(x), self.backend.asarray(y))
        return batch, real

    def batch(self, step: int) -> tuple[Array, ...]:
        return tuple(self.backend.asarray(a) for a in self.source.batch(step))

    def anchor(self, step: int, replays: bool) -> None:
        """The loop's last copied state is `step`'s: a replay starts there (`replays`), so
        the batches before it are no longer needed."""
        self.source.keep_all = replays
        self.source.release(step)

    def must_sync(self) -> bool:
        return self.source.must_sync()
