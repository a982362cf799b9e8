"""How batches are laid out, for `fit` and `evaluate` alike: which samples a step takes (the
data order), how many rows a step runs on, and the padding and masks that give every batch
one shape.

Padding: a compiled step (JAX) serves one shape, so a batch with fewer real rows than the
step's (an epoch's last, a batch that does not divide by the devices it is split over) is
filled with zero rows up to it, and a mask `(rows,)` marks the real ones (1) and the padding
(0); the loss, the gradients, BatchNorm's statistics and the metrics ignore padded rows.

Data parallelism: `batch_size` is the global batch, split over `backend.batch_shards`
devices in equal parts (padded up to a multiple of them). With several processes each holds
only its own slice of the data and contributes an equal part of every batch from it.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .backends import Array, Backend, to_numpy

__all__ = ["DataOrder", "BatchLayout", "split_size", "padded", "padded_part", "fixed_batches",
           "batch_size_for", "ORDER_BLOCK_SAMPLES"]

#: shuffling tiny data sets draws the orders of this many samples' worth of epochs at once
ORDER_BLOCK_SAMPLES = 256


def split_size(rows: int, shards: int) -> int:
    """`rows` rounded up to a multiple of `shards`: a batch that splits into equal parts."""
    return -(-rows // shards) * shards


def padded(xp: Any, a: Array, size: int) -> Array:
    """`a: (n, ...)` with zero rows appended up to `size` rows."""
    if a.shape[0] == size:
        return a
    pad = xp.zeros((size - a.shape[0],) + tuple(a.shape[1:]), dtype=a.dtype)
    return xp.concat([a, pad], axis=0)


def padded_part(arrays: Sequence[np.ndarray], rows: int, mask_dtype: Any = None
                ) -> tuple[np.ndarray, ...]:
    """Host arrays (each (n, ...), n ≤ rows) with zero rows appended up to `rows`, and the
    mask (rows,) that marks the n real ones (of `mask_dtype`, default the first array's):
    one process's part of a global batch."""
    n = arrays[0].shape[0]
    full = tuple(np.concatenate([a, np.zeros((rows - n,) + a.shape[1:], a.dtype)])
                 for a in arrays)
    return (*full, (np.arange(rows) < n).astype(mask_dtype or arrays[0].dtype))


def fixed_batches(backend: Backend, arrays: Sequence[Array], batch_size: int,
                  mask_dtype: Any = None) -> Iterator[tuple[Array, ...]]:
    """Batches of `arrays` (each (N, ...)) plus a mask (N,), all of one shape: the last
    batch is padded (mask 0) when there are several, and every batch to a multiple of the
    devices a batch is split over (`backend.batch_shards`), then split over them. The mask
    has `mask_dtype` (default: the first array's).

    With several processes `arrays` are this process's rows and each batch holds every
    process's part; every process must take the same number of batches (collective)."""
    if backend.process_count > 1:
        yield from _process_batches(backend, arrays, batch_size, mask_dtype)
        return
    xp, shards = backend.xp, backend.batch_shards
    n = arrays[0].shape[0]
    size = split_size(min(batch_size, n), shards)
    for i in range(0, n, size):
        parts = [a[i:min(i + size, n), ...] for a in arrays]
        mask = backend.asarray((np.arange(size) < parts[0].shape[0]).astype(np.float64),
                               dtype=mask_dtype or arrays[0].dtype)
        batch = (*(padded(xp, p, size) for p in parts), mask)
        yield backend.put(batch, "batch") if shards > 1 else batch


def _process_batches(backend: Backend, arrays: Sequence[Array], batch_size: int,
                     mask_dtype: Any) -> Iterator[tuple[Array, ...]]:
    """`fixed_batches` over several processes: this process's rows, from the host, padded
    to an equal part of each batch, and joined into global batches (`put_local`)."""
    host = [np.asarray(to_numpy(a)) for a in arrays]
    counts = backend.process_values(np.int64(host[0].shape[0]))
    shards, procs = backend.batch_shards, backend.process_count
    part = split_size(min(batch_size, int(counts.sum())), shards) // procs
    for i in range(0, int(counts.max()), part):
        yield backend.put_local(padded_part([a[i:i + part] for a in host], part, mask_dtype),
                                "batch")


def batch_size_for(batch_size: int, samples: int) -> int:
    """A batch larger than the data is the whole data: one full batch per epoch (padding it
    to the asked size would only compute on zeros), with a warning."""
    if batch_size <= samples:
        return batch_size
    warnings.warn(f"fit: batch_size {batch_size} is larger than the {samples} training "
                  f"samples; training on all {samples} in one batch per epoch", UserWarning,
                  stacklevel=4)
    return samples


class DataOrder:
    """Which samples each step trains on: a pure function of the step count.

    Epoch e is a permutation drawn from a generator seeded by (seed, e); for tiny data sets
    (n ≤ 128) one generator seeded by (seed, block) draws a block of 256 // n consecutive
    epochs at once, so they do not pay for a new generator every epoch. Step s is batch
    s mod E of epoch s // E. A run continued from a saved state therefore sees exactly the
    batches (and the dropout masks: their keys derive from the step too) of the run it
    continues.

    With several processes, process k orders its own slice of the data with the seeds
    (seed, e, k) (`stream=k`), takes its part of every batch from it, and all of them run
    the longest slice's number of steps per epoch (`steps_per_epoch`; a shorter slice's
    parts run out first and are padding).
    """

    def __init__(self, n: int, batch_size: int, seed: int, shuffle: bool, *,
                 steps_per_epoch: int | None = None, stream: int | None = None) -> None:
        self.n, self.batch_size, self.seed, self.shuffle = n, batch_size, seed, shuffle
        self.steps_per_epoch = steps_per_epoch or -(-n // batch_size)
        self.block = max(1, ORDER_BLOCK_SAMPLES // n) if shuffle else 1
        self.stream = [] if stream is None else [stream]
        self.cached: tuple[int, np.ndarray] | None = None

    def epoch(self, epoch: int) -> np.ndarray:
        """The sample order of `epoch`: (n,) indices."""
        if not self.shuffle:
            return np.arange(self.n)
        if self.block == 1:
            return np.random.default_rng([self.seed, epoch, *self.stream]).permutation(self.n)
        block, row = divmod(epoch, self.block)
        if self.cached is None or self.cached[0] != block:
            rng = np.random.default_rng([self.seed, block, *self.stream])
            orders = rng.permuted(np.tile(np.arange(self.n), (self.block, 1)), axis=1)
            self.cached = (block, orders)
        return self.cached[1][row]

    def indices(self, step: int) -> np.ndarray:
        """The samples of `step`'s batch (fewer than the batch size for an epoch's last; none
        when a process's slice has run out before the longest one)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        return self.epoch(epoch)[i * self.batch_size:(i + 1) * self.batch_size]


class BatchLayout:
    """How one fit call's batches are laid out: the rows a step runs on and this process's
    part of every batch.

    `batch_size` is the global batch. It is padded (when padding is on) to `rows`, a multiple
    of the devices a batch is split over; with several processes, process k's part of each
    batch is `rows / processes` rows, of which its share of `batch_size` are real.
    `n` is this process's sample count, or None for a batch source (no epochs, no last
    batch).
    """

    def __init__(self, backend: Backend, n: int | None, batch_size: int, pad: bool) -> None:
        shards, procs = backend.batch_shards, backend.process_count
        if backend.run_processes > procs:
            raise ValueError(
                f"this process is one of {backend.run_processes} that train together, but "
                f"backend {backend.name!r} on {backend.device} holds only this process's "
                "devices, so each would train alone on its slice: pass devices='all' (or a "
                "backend over a mesh of every process's devices)")
        self.n, self.batch_size, self.procs, self.rank = n, batch_size, procs, \
            backend.process_index
        #: rows per step (this process's part of them with several processes), or None
        #: where batches run at their own size
        self.rows: int | None = None
        self.samples = n
        if procs > 1:
            if not pad:
                raise ValueError("pad_batches=False: with several processes every process's "
                                 "part of a batch is padded to one size; leave padding on")
            if batch_size < procs:
                raise ValueError(f"batch_size {batch_size} is the global batch, which each of "
                                 f"the {procs} processes takes a part of: make it >= {procs}")
            if shards % procs:
                raise ValueError(f"the mesh splits batches {shards} ways, which does not "
                                 f"divide among {procs} processes; give every process the "
                                 "same number of devices along the data axis")
            self.rows = split_size(batch_size, shards) // procs
            if n is not None:
                self.counts = [int(c) for c in backend.process_values(np.int64(n))]
                self.samples = sum(self.counts)
        elif pad and backend.compiles:
            self.rows = split_size(batch_size, shards)
        elif shards > 1:
            last = 0 if n is None else n % batch_size
            if batch_size % shards or last % shards:
                bad, what = ((batch_size, f"batch_size {batch_size}") if batch_size % shards
                             else (last, (f"the last batch of each epoch ({n} samples = "
                                          f"{(n or 0) // batch_size} x {batch_size} + "
                                          f"{last})")))
                raise ValueError(
                    f"pad_batches=False: {what} does not divide by the {shards} devices "
                    f"that each batch is split over ({bad} = {bad // shards} x {shards} + "
                    f"{bad % shards}). Choose a batch size and a sample count that divide "
                    f"by {shards}, or leave pad_batches=True to pad batches to a multiple "
                    f"of {shards} (masked)")

    def share(self, rank: int) -> int:
        """Process `rank`'s real rows of every full batch: the global batch split evenly."""
        return self.batch_size // self.procs + (rank < self.batch_size % self.procs)

    def order(self, seed: int, shuffle: bool) -> DataOrder:
        """The data order of arrays (not of a source)."""
        assert self.n is not None
        if self.procs == 1:
            return DataOrder(self.n, self.batch_size, seed, shuffle)
        steps = max(-(-c // self.share(k)) for k, c in enumerate(self.counts))
        return DataOrder(self.n, self.share(self.rank), seed, shuffle, steps_per_epoch=steps,
                         stream=self.rank)
