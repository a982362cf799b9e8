"""`fit`: a thin loop around the train step — batching, shuffling, validation, history, a
progress bar, early stopping, callbacks — that costs next to nothing per step.

The data move to the backend once; each step gathers its batch from them by index (inside
the compiled step on JAX), so a step transfers only its batch's indices.

The data order is a function of the step count: step s is batch s mod E of epoch s // E (E
steps per epoch), and each epoch's order comes from a generator seeded by (seed, epoch). A
run continued from a saved state therefore sees exactly the batches, and the dropout masks
(their keys derive from the step too), of the run it continues.

On backends that compile (JAX) the last, partial batch of an epoch is padded to the batch
size and masked, so one compiled step serves every batch.

Data parallelism (`devices=N`, or a backend value over a mesh): each step's batch is split
into equal parts along the mesh's data axis, one per device, and the parameters and the
optimizer state are replicated; the one compiled step runs the hand-written forward and
backward on every device's part, and XLA all-reduces the sums over the batch (the loss, the
gradients, BatchNorm's statistics), so the result is the single-device step's on the same
batch. A batch that does not divide by the device count is padded up to one that does and
masked. In one process the data sit on every device and a step gathers by index, as on one
device; with several processes (`initialize_distributed`) each process passes only its own
slice of the data, and a step's batch is every process's part of it, gathered from the host
and joined into one global array (`Backend.put_local`).

The loop reads nothing back from the device per step. Each step returns small statistics
(its loss, whether it stayed finite, metric sums) that wait on the device until the loop
needs them: at the end of an epoch that something reports (a progress line, validation, a
callback, a log line), and at least every few thousand steps. Epochs reported together are
summed up together, vectorised.

Every step checks that its loss and gradients are finite. On NumPy, whose values are on the
host anyway, it checks before it updates, so the state stays the last good one. Elsewhere
the flags are read with the statistics, and the steps since the last read are replayed from
the state copied then, to recover the last good state. Either way the error names the
step, the epoch and the first layer whose output or gradient went non-finite.
`on_nonfinite="skip"` skips such batches instead and counts them ("skipped" in the history).
"""

from __future__ import annotations

import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np

from .backends import Array, Backend, backend_of, get_backend, owner_of, to_numpy, \
    tree_to_backend
from .callbacks import EarlyStopping
from .diagnose import find_nonfinite
from .evaluate import evaluate, padded_part, split_size
from .inputs import check_model_params, check_targets, kind_name
from .interrupt import Interrupt, deferred_interrupts
from .layers.base import Context, Layer
from .losses import Loss, get_loss
from .metrics import reduce_stats, scores
from .model import init_params, init_state
from .optim import Optimizer, get_optimizer
from .progress import ProgressBar, format_metrics
from .random import fold_in
from .train import TrainingDivergedError, TrainState, _step, compile_step
from .tree import tree_leaves, tree_map

__all__ = ["fit", "FitResult", "History"]

#: the longest the loop lets step statistics wait on the device, in steps
MAX_PENDING = 4096
#: shuffling tiny data sets draws the orders of this many samples' worth of epochs at once
ORDER_BLOCK_SAMPLES = 256


class History(dict):
    """Per-epoch lists: `history["loss"]`, `["val_loss"]`, `["accuracy"]`, `["time"]`, ..."""

    def append(self, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            self.setdefault(name, []).append(value)

    def plot(self, path: str, title: str = "training history") -> str:
        """Save loss (and accuracy) curves to `path` (PNG, needs matplotlib); returns path."""
        from .plot import plot_history

        return plot_history(self, path, title=title)


class FitResult(NamedTuple):
    state: TrainState
    history: History

    @property
    def params(self) -> Any:
        return self.state.params


class DataOrder:
    """Which samples each step trains on: a pure function of the step count.

    Epoch e is a permutation drawn from a generator seeded by (seed, e); for tiny data sets
    (n ≤ 128) one generator seeded by (seed, block) draws a block of 256 // n consecutive
    epochs at once, so they do not pay for a new generator every epoch. Step s is batch
    s mod E of epoch s // E.

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
        self._stream = [] if stream is None else [stream]
        self._cached: tuple[int, np.ndarray] | None = None

    def epoch(self, epoch: int) -> np.ndarray:
        """The sample order of `epoch`: (n,) indices."""
        if not self.shuffle:
            return np.arange(self.n)
        if self.block == 1:
            return np.random.default_rng([self.seed, epoch, *self._stream]).permutation(self.n)
        block, row = divmod(epoch, self.block)
        if self._cached is None or self._cached[0] != block:
            rng = np.random.default_rng([self.seed, block, *self._stream])
            orders = rng.permuted(np.tile(np.arange(self.n), (self.block, 1)), axis=1)
            self._cached = (block, orders)
        return self._cached[1][row]

    def indices(self, step: int) -> np.ndarray:
        """The samples of `step`'s batch (fewer than the batch size for an epoch's last; none
        when a process's slice has run out before the longest one)."""
        epoch, i = divmod(step, self.steps_per_epoch)
        return self.epoch(epoch)[i * self.batch_size:(i + 1) * self.batch_size]


def fit(model: Layer, x: Any, y: Any, *, loss: Loss | str, optimizer: Optimizer | str,
        epochs: int = 10, batch_size: int = 32, seed: int = 0, params: Any = None,
        state: TrainState | None = None, validation_data: tuple[Any, Any] | None = None,
        backend: str | Backend | None = None, dtype: Any = "float32", shuffle: bool = True,
        progress: bool | str = True, log_every: int | None = None, jit: bool = True,
        callbacks: Sequence[Callable[[int, dict, TrainState], Any]] = (),
        early_stopping: EarlyStopping | int | None = None, max_steps: int | None = None,
        on_nonfinite: str = "raise", checkpoint_dir: Any = None, checkpoint_every: int = 1,
        keep_checkpoints: int = 3, resume: bool = False, devices: int | str | None = None,
        pad_batches: bool = True) -> FitResult:
    """Train `model` on (x, y) with mini-batches; returns the final state and the history.

    x: (N, ...) inputs; y: (N,) integer labels or (N, ...) targets (NumPy or any backend),
    checked once against the loss and the model before training (labels within the
    classes, ...). optimizer: an `Optimizer`, or a name ("adam") with its default rate.
    Parameters come from `state` (training continues where it left off: step count, data
    order, optimizer state), else `params`, else `init_params(model, seed, ...)`. Your
    `params` and `state` are copied, never changed. `epochs` more epochs are trained (an
    epoch the state is in the middle of counts as one); `max_steps` stops at that total
    step count.

    History (one entry per completed epoch): "loss" (the mean over the epoch's samples; the
    total for reduction "sum") and the metrics of the steps' own outputs — "accuracy" for
    classification losses; "mse", "rmse", "mae", "r2" (and per output "r2[k]", ...) for
    regression losses — then with `validation_data` the same on it as "val_loss",
    "val_accuracy", ... (in eval mode, after the epoch), and "time" in seconds.

    progress: True shows a bar per epoch, or one bar over the epochs when an epoch is a
    single step (full-batch training); "steps" or "epochs" chooses; False shows none.
    log_every=k prints the metrics every k epochs (on standard error, with the bar).
    callbacks are called as `cb(epoch, logs, state)` after each epoch; one that returns True
    stops training. The state they get is live (later steps update its arrays in place on
    NumPy and CuPy): copy what you keep. early_stopping: an `EarlyStopping` (or a patience
    in epochs on "val_loss") stops when its metric stops improving and returns the best
    epoch's state.

    A non-finite loss or gradient raises TrainingDivergedError naming the step, the epoch
    and the first layer where the values went non-finite; the error's `state` is the last
    good state and its `history` the epochs before. on_nonfinite="skip" skips such batches
    instead (counted per epoch in "skipped").

    checkpoint_dir: save a checkpoint there every `checkpoint_every` epochs, at the end, and
    when Ctrl-C stops training (a first Ctrl-C stops after the current step; a second stops
    at once); keep the newest `keep_checkpoints` and the best (by the early-stopping metric,
    else "val_loss" with validation data, else "loss"). resume=True continues the newest
    checkpoint there: the same run, to `epochs` in all (not `epochs` more), bit for bit on
    NumPy — state, data order, dropout masks and history. Without resume, a folder that
    already holds checkpoints is an error (they would be rotated away).

    devices: split every batch over this many devices ("all": every one) with the
    parameters replicated (data parallelism, JAX): the same as `backend=xb.get_backend(
    "jax", devices=N)`; or pass a backend value over your own mesh, `get_backend("jax",
    mesh=mesh)`, whose "data" axis splits batches. `batch_size` is the global batch, the
    rows of all devices together; a batch that does not divide by the device count is padded
    up to one that does (masked: the loss, BatchNorm and the metrics ignore the padding), as
    is an epoch's last, partial batch, so one compiled step serves every batch. The result
    is the single-device run's up to float32 rounding (the sums add up in another order).
    pad_batches=False runs every batch at its own size instead (on JAX, the last partial
    batch compiles a second step), and a batch that does not divide by the device count is
    then an error. `state=` continues where its arrays are (over their mesh, if they are
    replicated over one) unless `backend` or `devices` says where: the state is then placed
    there (replicated), and the run goes on the same.

    Several processes (after `xb.initialize_distributed(...)`, one per host or GPU,
    with a backend over every process's devices, `devices="all"`): every process calls fit
    with its own slice of the data, the same settings and `batch_size` (the global batch);
    each contributes an equal part of each batch from its slice, shuffled with its own seeds
    (see `DataOrder`). Validation data are slices too, and the history holds the metrics
    over all of them. Only process 0 shows progress and writes checkpoints, which every
    process reads on resume (a folder they share).
    """
    loss, optimizer = get_loss(loss), get_optimizer(optimizer)  # a name: its defaults
    _check_settings(epochs, batch_size, log_every, max_steps, on_nonfinite, progress,
                    checkpoint_every, keep_checkpoints)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True continues from the checkpoints in checkpoint_dir; pass "
                         "checkpoint_dir=...")
    if resume and (state is not None or params is not None):
        raise ValueError("resume=True takes the state from the newest checkpoint; do not pass "
                         "state= or params= as well")
    target = get_backend(backend)
    if state is not None:
        held = backend_of(*tree_leaves(state.params)).for_placement(state.params)
        if backend is None and devices is None:  # where the state is (a mesh, a device)
            target = held
        elif type(held) is not type(target):  # another library
            raise ValueError(
                f"the state's arrays are {held.name}'s, but backend {target.name!r} was asked "
                f"for: continue on {held.name} (leave backend out), or move the state through "
                "a checkpoint (xb.save_checkpoint, then xb.load_checkpoint(path, "
                f"backend={target.name!r}))")
        dtype = target.numpy_dtype(tree_leaves(state.params)[0].dtype)
        state = tree_map(_copy, state)  # the steps below consume their state; keep yours
    if devices is not None:
        target = target.with_devices(devices)
    if state is not None and backend_of(*tree_leaves(state.params)) is not target:
        state = target.put(state)  # replicated over the devices, where there are several
    with target.scope():  # a configured backend value (a device, a mesh) is what layers see
        return _fit(model, x, y, loss, optimizer, target, epochs=epochs, batch_size=batch_size,
                    seed=seed, params=params, state=state, validation_data=validation_data,
                    dtype=dtype, shuffle=shuffle, progress=progress, log_every=log_every,
                    jit=jit, callbacks=callbacks, early_stopping=early_stopping,
                    max_steps=max_steps, on_nonfinite=on_nonfinite,
                    checkpoint_dir=checkpoint_dir, checkpoint_every=checkpoint_every,
                    keep_checkpoints=keep_checkpoints, resume=resume, pad_batches=pad_batches)


def _fit(model: Layer, x: Any, y: Any, loss: Loss, optimizer: Optimizer, target: Backend, *,
         epochs: int, batch_size: int, seed: int, params: Any, state: TrainState | None,
         validation_data: Any, dtype: Any, shuffle: bool, progress: bool | str,
         log_every: int | None, jit: bool, callbacks: Sequence[Callable], early_stopping: Any,
         max_steps: int | None, on_nonfinite: str, checkpoint_dir: Any, checkpoint_every: int,
         keep_checkpoints: int, resume: bool, pad_batches: bool) -> FitResult:
    """fit's body, on `target` and inside its scope."""
    dt = target.check_dtype(dtype)
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"fit: the training data has no samples (x: {tuple(np.shape(x))}, "
                         f"y: {tuple(np.shape(y))})")
    input_shape = tuple(np.shape(x)[1:])
    x_host, y_host = _prepare_data(x, y, dt, "training data")
    _check_labels(model, loss, input_shape, y_host)
    if target.process_count == 1:  # (several processes: batch_size is the global batch)
        batch_size = _batch_size(batch_size, len(x_host))
    layout = _Layout(target, len(x_host), batch_size, pad_batches)
    val = None
    if validation_data is not None:
        val = _validation_data(model, loss, input_shape, validation_data, dt)
        if target.process_count == 1:  # moved once; several processes batch it from the host
            val = tuple(target.asarray(a) for a in val)
    if target.process_index != 0:  # one process reports for all
        progress, log_every = False, None
    if state is None:
        if params is None:
            params = init_params(model, seed, input_shape, dtype=dt, backend=target)
        else:  # moved, and copied: training updates its own parameters in place
            params = tree_map(_copy, tree_to_backend(params, target, dtype=dt))
        mstate = init_state(model, input_shape, dtype=dt, backend=target)
        state = TrainState.create(params, optimizer, mstate, seed=seed)
    check_model_params(model, state.params, state.model_state, input_shape, "fit")

    callbacks = list(callbacks)
    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    if early_stopping is not None:
        early_stopping.reset()
        early_stopping.check_logs(_log_names(loss, y_host, val is not None))
        callbacks.append(early_stopping)

    order = layout.order(seed, shuffle)
    spe = order.steps_per_epoch
    history, rows = History(), []
    checkpoints = None
    if checkpoint_dir is not None:
        monitor = (early_stopping.monitor if early_stopping is not None else
                   "val_loss" if val is not None else "loss")
        mode = "max" if early_stopping is not None and early_stopping.maximise else "min"
        settings = {"samples": layout.samples, "batch_size": int(batch_size), "seed": int(seed),
                    "shuffle": bool(shuffle), "epochs": int(epochs)}
        if target.process_count > 1:  # each process's slice has its own order
            settings["processes"] = target.process_count
        checkpoints = _Checkpoints(checkpoint_dir, every=checkpoint_every,
                                   keep=keep_checkpoints, monitor=monitor, mode=mode,
                                   model=model, loss=loss, input_shape=input_shape,
                                   settings=settings, early_stopping=early_stopping,
                                   writer=target.process_index == 0)
        resumed = checkpoints.resume(target) if resume else None
        if resumed is not None:
            state, history, rows = resumed
        elif checkpoints.manager.latest() is not None:
            raise ValueError(f"{checkpoint_dir} already holds checkpoints (the newest: "
                             f"{checkpoints.manager.latest().name}); pass resume=True to "
                             "continue that run, or choose an empty folder for a new one")
    feed = _DeviceFeed(target, x_host, y_host, order, layout.rows, jit) \
        if target.process_count == 1 else _ProcessFeed(target, x_host, y_host, order, layout.rows)
    loop = _Loop(model, loss, optimizer, target, feed, jit=jit, skip=on_nonfinite == "skip",
                 val=val)
    start = int(state.step)
    end = epochs * spe if resume else (start // spe + epochs) * spe
    if max_steps is not None:
        end = min(end, max_steps)
    if end <= start:
        return FitResult(state, history)
    reporter = _Reporter(progress, log_every, spe, first=start // spe,
                         last=-(-end // spe))
    try:
        with deferred_interrupts() as interrupt:
            state = loop.run(state, start, end, history, reporter, callbacks, rows,
                             interrupt, checkpoints)
    finally:
        reporter.close()
    if early_stopping is not None and early_stopping.best_state is not None:
        state = early_stopping.best_state
    if loop.skipped:
        warnings.warn(f"fit skipped {loop.skipped} batch{'es' * (loop.skipped != 1)} whose loss "
                      "or gradients were not finite (on_nonfinite='skip'); see "
                      "history['skipped'].", RuntimeWarning, stacklevel=2)
    return FitResult(state, history)


class _Layout:
    """How one fit call's batches are laid out: the rows a step runs on, this process's part
    of every batch and its data order.

    `batch_size` is the global batch. It is padded (when padding is on) to `rows`, a multiple
    of the devices a batch is split over; with several processes, process k's part of each
    batch is `rows / processes` rows, of which its share of `batch_size` are real.
    """

    def __init__(self, backend: Backend, n: int, batch_size: int, pad: bool) -> None:
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
            self.counts = [int(c) for c in backend.process_values(np.int64(n))]
            self.samples = sum(self.counts)
        elif pad and backend.compiles:
            self.rows = split_size(batch_size, shards)
        elif shards > 1:
            last = n % batch_size
            if batch_size % shards or last % shards:
                bad, what = ((batch_size, f"batch_size {batch_size}") if batch_size % shards
                             else (last, f"the last batch of each epoch ({n} samples = "
                                         f"{n // batch_size} x {batch_size} + {last})"))
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
        if self.procs == 1:
            return DataOrder(self.n, self.batch_size, seed, shuffle)
        steps = max(-(-c // self.share(k)) for k, c in enumerate(self.counts))
        return DataOrder(self.n, self.share(self.rank), seed, shuffle, steps_per_epoch=steps,
                         stream=self.rank)


class _DeviceFeed:
    """One process: the data move to the backend once (over a mesh, a copy onto each
    device) and a step gathers its batch from them by index, inside the compiled step. The
    indices are split over the mesh like the batch, so each device gathers only its rows."""

    def __init__(self, backend: Backend, x: np.ndarray, y: np.ndarray, order: DataOrder,
                 rows: int | None, jit: bool = True) -> None:
        self.backend, self.order, self.rows, self.host = backend, order, rows, (x, y)
        self.data = (backend.asarray(x), backend.asarray(y))
        self.sharded = backend.batch_shards > 1
        # a compiled step takes the indices as they are on the host: moving them first
        # would be one more call (on JAX about 16 µs against 2)
        self.host_indices = backend.compiles and jit and not self.sharded
        #: the placements of the step's (state, data, indices, real rows) and its outputs
        self.shardings = dict(in_shardings=("replicated", "replicated", "batch", "replicated"),
                              out_shardings="replicated") if self.sharded else {}

    def wrap(self, core: Callable) -> Callable:
        def fit_step(state: TrainState, data: tuple[Array, Array], idx: Array,
                     n_real: Any) -> tuple[TrainState, dict[str, Array]]:
            x, y = data
            xp = backend_of(x).xp
            mask = None
            if n_real is not None:  # padded: the first n_real rows are real
                mask = xp.astype(xp.arange(idx.shape[0]) < n_real, x.dtype)
            return core(state, (xp.take(x, idx, axis=0), xp.take(y, idx, axis=0), mask))
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


class _ProcessFeed:
    """Several processes: each holds only its own slice of the data, on the host. A step's
    batch is every process's part of it: each gathers its rows, pads them to its part's size
    (masked) and the backend joins the parts into one global batch split over the devices
    (`put_local`: `jax.make_array_from_process_local_data`)."""

    def __init__(self, backend: Backend, x: np.ndarray, y: np.ndarray, order: DataOrder,
                 rows: int) -> None:
        self.backend, self.order, self.rows, self.host = backend, order, rows, (x, y)
        self.shardings = dict(in_shardings=("replicated", "batch"),
                              out_shardings="replicated")

    def wrap(self, core: Callable) -> Callable:
        return core

    def args(self, step: int) -> tuple:
        return (self.batch(step),)

    def batch(self, step: int) -> tuple[Array, ...]:
        idx = self.order.indices(step)
        return self.backend.put_local(padded_part([a[idx] for a in self.host], self.rows),
                                      "batch")


class _Loop:
    """The steps of one `fit` call, the statistics waiting on the device, and turning them
    into epochs of history."""

    def __init__(self, model: Layer, loss: Loss, optimizer: Optimizer, backend: Backend,
                 feed: _DeviceFeed | _ProcessFeed, *, jit: bool, skip: bool,
                 val: tuple[Array, Array] | None) -> None:
        self.model, self.loss, self.backend, self.feed, self.order = (model, loss, backend,
                                                                      feed, feed.order)
        self.val, self.jit, self.skip = val, jit, skip
        self.skipped = 0
        if backend.host_arrays:  # reading a value costs nothing: check before updating
            guard = "check-skip" if skip else "check"
        elif backend.compiles:  # check in the compiled step; read the flags in bulk
            guard = "select" if skip else None
        else:  # an asynchronous device (CuPy): read the flags in bulk, skipping syncs
            guard = "check-skip" if skip else None
        self.check_each_step = guard in ("check", "check-skip")
        core = _step(model, loss, optimizer, donate=True, aux=True, guard=guard)
        backend.prepare_training()
        step = feed.wrap(core)
        #: a compiled step's statistics come back as one vector: [(name, shape)] to unpack
        self.layout: list[tuple[str, tuple[int, ...]]] | None = None
        if backend.compiles and jit:
            step = self._packed(step)
        self.step = compile_step(backend, step, jit, donate_argnums=(0,), **feed.shardings)

    def _packed(self, step: Callable) -> Callable:
        """`step` returning its statistics concatenated into one vector of the loss's dtype:
        each array a compiled call returns costs about 1.6 µs on a CPU, and each read back
        another transfer, more than a tiny network's step (flags and counts are exact as
        floats)."""
        def packed(state: TrainState, *args: Any) -> tuple[TrainState, Array]:
            state, aux = step(state, *args)
            keys = sorted(aux)
            xp, dtype = backend_of(aux["loss"]).xp, aux["loss"].dtype
            self.layout = [(k, tuple(aux[k].shape)) for k in keys]  # set while tracing
            return state, xp.concat([xp.reshape(xp.astype(aux[k], dtype), (-1,))
                                     for k in keys])
        return packed

    def unpack(self, host: Any) -> dict[str, Any]:
        """A step's statistics on the host as a dict (`host`: what `to_numpy` gave)."""
        if self.layout is None:
            return host
        out, at = {}, 0
        for key, shape in self.layout:
            size = math.prod(shape)
            value = host[at:at + size].reshape(shape)
            out[key] = value.astype(bool) if key == "finite" else value
            at += size
        return out

    def loss_of(self, aux: Any) -> float:
        """The loss of one step's statistics, still on the device."""
        if self.layout is None:
            return float(aux["loss"])
        return float(to_numpy(aux)[[k for k, _ in self.layout].index("loss")])

    def run(self, state: TrainState, start: int, end: int, history: History,
            reporter: _Reporter, callbacks: list, rows: list[tuple[int, dict]],
            interrupt: Interrupt, checkpoints: _Checkpoints | None) -> TrainState:
        """Steps `start` to `end`; `rows` holds the host statistics of the steps of an
        unfinished epoch before `start` (from a checkpoint), and gets this run's."""
        spe = self.order.steps_per_epoch
        pending: list[tuple[int, Any]] = []   # (step, statistics still on the device)
        anchor = (start, state if self.check_each_step else tree_map(_copy, state))
        clock = time.perf_counter()
        s = start
        while s < end:
            state, aux = self.step(state, *self.feed.args(s))
            if self.check_each_step and not aux["finite"] and not self.skip:
                rows += [(st, to_numpy(a)) for st, a in pending] + [(s, to_numpy(aux))]
                self._report(rows, s // spe, history, None, None, clock, [])
                raise self._diverged(s, state, history, checkpoints)
            pending.append((s, aux))
            s += 1
            reporter.step(pending, self.loss_of)
            stopping = interrupt.requested
            epoch_done = s % spe == 0 or s == end
            if not (epoch_done or stopping):
                continue
            epoch = (s - 1) // spe
            due = checkpoints is not None and s % spe == 0 and checkpoints.due(epoch)
            if not (stopping or due or s == end or len(pending) >= MAX_PENDING
                    or reporter.wants(epoch) or callbacks or self.val is not None):
                continue
            # read the statistics back; find the first step that went non-finite, if any
            host = [self.unpack(h) for h in to_numpy([aux for _, aux in pending])]
            bad = next((i for i, h in enumerate(host) if not h["finite"]), None)
            if bad is not None and not self.skip:
                bad_step = pending[bad][0]
                good = self._replay(anchor, bad_step)
                rows += [(st, h) for (st, _), h in zip(pending[:bad], host[:bad])]
                self._report(rows, bad_step // spe, history, None, None, clock, [])
                raise self._diverged(bad_step, good, history, checkpoints)
            rows += [(st, h) for (st, _), h in zip(pending, host)]
            pending = []
            stop = self._report(rows, s // spe, history, state, reporter, clock, callbacks)
            clock = time.perf_counter()
            saved = None
            if checkpoints is not None and (due or stopping or stop or s == end):
                saved = checkpoints.save(state, history, rows)
            if stopping:
                where = f"; saved {saved}" if saved else ""
                raise KeyboardInterrupt(f"training interrupted after step {s} (epoch "
                                        f"{(s - 1) // spe + 1}){where}")
            if stop:
                break
            if not self.check_each_step:
                anchor = (s, tree_map(_copy, state))
        return state

    def _report(self, rows: list, upto_epoch: int, history: History, state: Any,
                reporter: _Reporter | None, clock: float, callbacks: list) -> bool:
        """Append the epochs before `upto_epoch` whose steps are all in `rows` to the
        history (removing their rows); validate, report and call back on the last of them
        when `state` is given. Returns True if a callback asks to stop."""
        spe = self.order.steps_per_epoch
        done = [r for r in rows if r[0] < upto_epoch * spe]
        if not done:
            return False
        del rows[:len(done)]
        steps = np.array([st for st, _ in done])
        epochs = steps // spe
        starts = np.flatnonzero(np.r_[True, epochs[1:] != epochs[:-1]])
        stats = [h for _, h in done]
        stacked = {k: np.stack([np.asarray(h[k], dtype=np.float64) for h in stats])
                   for k in stats[0]}
        metric_keys = [k for k in stacked if k not in ("loss", "finite")]
        totals = reduce_stats({k: stacked[k] for k in metric_keys}, starts)
        losses = np.add.reduceat(stacked["loss"] * (stacked["count"] if
                                                    self.loss.reduction == "mean" else 1.0),
                                 starts)
        if self.loss.reduction == "mean":
            losses = losses / totals["count"]
        metrics = scores(totals, self.loss.task) if len(starts) > 1 else {
            k: np.atleast_1d(v) for k, v in scores(totals, self.loss.task).items()}
        skipped = np.add.reduceat(1.0 - stacked["finite"], starts)
        self.skipped += int(skipped.sum())
        seconds = (time.perf_counter() - clock) / len(starts)
        stop = False
        for j, epoch in enumerate(epochs[starts]):
            logs = {"loss": float(losses[j]), **{k: float(v[j]) for k, v in metrics.items()}}
            if self.skip:
                logs["skipped"] = int(skipped[j])
            last = j == len(starts) - 1
            if last and state is not None and self.val is not None:
                val = evaluate(self.model, state.params, *self.val, self.loss,
                               model_state=state.model_state, jit=self.jit)
                logs.update({f"val_{k}": v for k, v in val.items()})
            logs["time"] = seconds
            history.append(logs)
            if reporter is not None:
                reporter.epoch(int(epoch), logs)
            if last and state is not None:
                stop = any([cb(int(epoch), logs, state) for cb in callbacks])  # all run
        return stop

    def _replay(self, anchor: tuple[int, TrainState], bad_step: int) -> TrainState:
        """The state before `bad_step`: the steps from the anchor's, replayed."""
        step, state = anchor
        state = tree_map(_copy, state)  # the anchor itself stays as it was
        for s in range(step, bad_step):
            state, _ = self.step(state, *self.feed.args(s))
        return state

    def _diverged(self, step: int, state: TrainState, history: History,
                  checkpoints: _Checkpoints | None = None) -> TrainingDivergedError:
        """The error for a step whose loss or gradients went non-finite, from the state
        before it."""
        spe = self.order.steps_per_epoch
        epoch, i = divmod(step, spe)
        backend = self.backend
        key = fold_in(state.key, state.step) if getattr(self.model, "stochastic", False) \
            else None
        ctx = Context(train=True, key=key, state=state.model_state)
        if backend.process_count > 1:  # its values are spread over the processes
            where = None
            culprit = ("Run it in one process to find the first non-finite value (with "
                       "several, each holds only its part of a batch).")
        else:
            with backend.numerics():
                where = find_nonfinite(self.model, self.loss, state.params,
                                       self.feed.batch(step), ctx)
            culprit = (f"The first non-finite value is {where}." if where else
                       "Replayed eagerly, the step stays finite: the compiled step differs "
                       "(try jit=False to compare).")
        advice = ("Clean the data." if where and where.startswith("the batch's") else
                  "The learning rate is probably too high for this model (lower it, e.g. "
                  "10x), or the targets are out of the range the loss takes.")
        latest = checkpoints.manager.latest() if checkpoints is not None else None
        kept = f" The last good checkpoint is {latest}." if latest else ""
        error = TrainingDivergedError(
            f"training stopped at step {step + 1} (epoch {epoch + 1}, batch {i + 1} of "
            f"{spe}): its loss or gradients are NaN or infinite. {culprit} {advice} The "
            "error's .state holds the parameters from before that step; "
            f"fit(..., on_nonfinite='skip') would skip such batches instead.{kept}")
        error.state, error.history, error.step = state, history, step
        return error


class _Checkpoints:
    """fit's checkpoints: a `CheckpointManager` over `directory`, and what a resumed run
    needs besides the state — the history, the statistics of an unfinished epoch, the fit
    settings that fix the data order, and early stopping's counters."""

    def __init__(self, directory: Any, *, every: int, keep: int, monitor: str, mode: str,
                 model: Layer, loss: Loss, input_shape: tuple, settings: dict[str, Any],
                 early_stopping: EarlyStopping | None, writer: bool = True) -> None:
        from .checkpoint import CheckpointManager

        self.manager = CheckpointManager(directory, keep=keep, monitor=monitor, mode=mode)
        self.every, self.model, self.loss, self.input_shape = every, model, loss, input_shape
        self.settings, self.early_stopping = settings, early_stopping
        #: False in every process but the first of several: one writes for all
        self.writer = writer

    def due(self, epoch: int) -> bool:
        return (epoch + 1) % self.every == 0

    def save(self, state: TrainState, history: History, rows: list[tuple[int, dict]]) -> Any:
        if not self.writer:
            return None
        metrics = {k: v[-1] for k, v in history.items()} if history and not rows else None
        stopper = self.early_stopping
        metadata = {"fit": self.settings, "unfinished_epoch": _rows_to_json(rows),
                    "early_stopping": None if stopper is None else {
                        "best": stopper.best, "best_epoch": stopper.best_epoch,
                        "wait": stopper._wait}}
        return self.manager.save(state, model=self.model, history=dict(history),
                                 metadata=metadata, metrics=metrics,
                                 input_shape=self.input_shape, loss=self.loss)

    def resume(self, backend: Backend) -> tuple[TrainState, History, list] | None:
        """The newest checkpoint's state, history and unfinished epoch, or None if there is
        none yet; an error if it was made with other data or settings."""
        found = self.manager.load_latest(backend, model=self.model)
        if found is None:
            return None
        saved = found.metadata.get("fit", {})
        saved, settings = ({"processes": 1, **d} for d in (saved, self.settings))  # 1 unsaid
        differ = {k: (saved.get(k), v) for k, v in settings.items()
                  if k != "epochs" and saved.get(k) != v}
        if differ:
            details = ", ".join(f"{k} {a!r} then, {b!r} now" for k, (a, b) in differ.items())
            raise ValueError(f"cannot resume from {found.path}: it was made with other data or "
                             f"settings ({details}). Resume with the same data, batch size, "
                             "seed and shuffling, or start in an empty checkpoint folder.")
        stopper = self.early_stopping
        saved_stopper = found.metadata.get("early_stopping")
        if stopper is not None and saved_stopper:
            stopper.best, stopper.best_epoch = saved_stopper["best"], saved_stopper["best_epoch"]
            stopper._wait = saved_stopper["wait"]
            best = self.manager.best()
            if stopper.restore_best and best is not None:
                from .checkpoint import load_checkpoint

                stopper.best_state = load_checkpoint(best, backend, model=self.model).state
        history = History({k: list(v) for k, v in (found.history or {}).items()})
        return found.state, history, _rows_from_json(found.metadata.get("unfinished_epoch"))


def _rows_to_json(rows: list[tuple[int, dict]]) -> list:
    """Host step statistics as JSON: floats written with repr (so they read back bit for
    bit), non-finite ones as strings."""
    def number(v: float) -> Any:
        return v if math.isfinite(v) else repr(v)
    return [[step, {k: [number(float(v)) for v in np.ravel(a)] + [list(np.shape(a))]
                    for k, a in stats.items()}] for step, stats in rows]


def _rows_from_json(rows: list | None) -> list[tuple[int, dict]]:
    out = []
    for step, stats in rows or []:
        out.append((int(step), {k: np.asarray([float(v) for v in values[:-1]],
                                              dtype=np.float64).reshape(values[-1])
                                for k, values in stats.items()}))
    return out


class _Reporter:
    """The progress bar(s) and log lines of one fit call."""

    def __init__(self, progress: bool | str, log_every: int | None, steps_per_epoch: int,
                 first: int, last: int) -> None:
        mode = progress
        if progress is True:
            mode = "epochs" if steps_per_epoch == 1 else "steps"
        self.mode, self.log_every, self.spe = mode or None, log_every, steps_per_epoch
        self.first, self.last = first, last
        self.bar: ProgressBar | None = None
        if self.mode == "epochs":
            self.bar = ProgressBar(last - first, "epochs")

    def wants(self, epoch: int) -> bool:
        """True when `epoch`'s logs must be shown now."""
        return (self.mode == "steps" or (self.log_every is not None
                                         and (epoch + 1) % self.log_every == 0)
                or (self.bar is not None and self.bar.needs_refresh()))

    def step(self, pending: list, loss_of: Callable[[Any], float]) -> None:
        if self.mode != "steps":
            return
        if self.bar is None:
            epoch = pending[-1][0] // self.spe
            total = self.spe - pending[-1][0] % self.spe
            self.bar = ProgressBar(total, f"epoch {epoch + 1}/{self.last}")
        if self.bar.needs_refresh():
            self.bar.update(loss=loss_of(pending[-1][1]))
        else:
            self.bar.update()

    def epoch(self, epoch: int, logs: dict[str, float]) -> None:
        shown = {k: v for k, v in logs.items() if k != "time"}
        if self.mode == "steps" and self.bar is not None:
            self.bar.close(**shown)
            self.bar = None
        elif self.mode == "epochs":
            self.bar.count = epoch + 1 - self.first
            if self.bar.needs_refresh():
                self.bar.update(0, **shown)
        if self.log_every is not None and (epoch + 1) % self.log_every == 0:
            line = f"epoch {epoch + 1}/{self.last}  {format_metrics(shown)}"
            if self.bar is not None:
                self.bar.write(line)
            else:
                print(line, file=sys.stderr, flush=True)
        self._last = shown

    def close(self) -> None:
        if self.mode == "epochs" and self.bar is not None:
            self.bar.close(**getattr(self, "_last", {}))
            self.bar = None


def _check_settings(epochs: int, batch_size: int, log_every: int | None, max_steps: int | None,
                    on_nonfinite: str, progress: bool | str, checkpoint_every: int,
                    keep_checkpoints: int) -> None:
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1 or \
            not isinstance(epochs, (int, np.integer)) or epochs < 0:
        raise ValueError(f"batch_size must be >= 1 and epochs >= 0 (got {batch_size}, {epochs})")
    if log_every is not None and (not isinstance(log_every, int) or log_every < 1):
        raise ValueError(f"log_every is a number of epochs >= 1 (or None), not {log_every!r}")
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 0):
        raise ValueError(f"max_steps is a step count >= 0 (or None), not {max_steps!r}")
    if on_nonfinite not in ("raise", "skip"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'skip', not {on_nonfinite!r}")
    if not isinstance(checkpoint_every, int) or checkpoint_every < 1 or \
            not isinstance(keep_checkpoints, int) or keep_checkpoints < 1:
        raise ValueError(f"checkpoint_every and keep_checkpoints are counts >= 1, not "
                         f"{checkpoint_every!r} and {keep_checkpoints!r}")
    if progress not in (True, False, "steps", "epochs"):
        raise ValueError(f"progress is True, False, 'steps' or 'epochs', not {progress!r}")


def _copy(leaf: Any) -> Any:
    owner = owner_of(leaf)
    return leaf if owner is None else owner.xp.asarray(leaf, copy=True)


def _prepare_data(x: Any, y: Any, dtype: np.dtype, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check (x, y) and return them as host arrays: x as `dtype`, labels as int32."""
    x_host, y_host = np.asarray(to_numpy(x)), np.asarray(to_numpy(y))
    if x_host.ndim == 0 or y_host.ndim == 0:
        raise ValueError(f"{name}: x and y are arrays of samples, (N, ...) and (N,) or (N, ...); "
                         f"got shapes {x_host.shape} and {y_host.shape}")
    if x_host.shape[0] != y_host.shape[0]:
        raise ValueError(f"{name}: x has {x_host.shape[0]} samples but y has {y_host.shape[0]}")
    if x_host.shape[0] == 0:
        raise ValueError(f"{name}: no samples")
    for what, a in (("x", x_host), ("y", y_host)):
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{name}: {what} holds {kind_name(a.dtype)}; it must be numbers")
        if a.dtype.kind == "f":
            bad = ~np.isfinite(a)
            if bad.any():
                raise ValueError(
                    f"{name}: {what} has {int(bad.sum())} NaN or infinite values (first at "
                    f"index {tuple(int(i) for i in np.argwhere(bad)[0])}); clean the data")
    y_dtype = np.int32 if y_host.dtype.kind in "iub" else dtype
    return x_host.astype(dtype, copy=False), y_host.astype(y_dtype, copy=False)


def _check_labels(model: Layer, loss: Loss, input_shape: tuple, y: np.ndarray,
                  name: str = "training data") -> None:
    """The targets must be what the loss can mean for the model's outputs: integer labels
    within its classes, whole-number labels, probabilities in range (Loss.check_target)."""
    check_targets(model, loss, input_shape, y, len(y), name)


def _validation_data(model: Layer, loss: Loss, input_shape: tuple, data: Any,
                     dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """validation_data checked as the training data are, before training: a mistake in it
    would otherwise surface after the first epoch, or as a plausible but wrong val_loss."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"validation_data is a pair (x_val, y_val), not a {type(data).__name__}"
                         f"{f' of {len(data)}' if isinstance(data, (tuple, list)) else ''}")
    x_val, y_val = _prepare_data(*data, dtype, "validation data")
    if tuple(x_val.shape[1:]) != tuple(input_shape):
        raise ValueError(f"validation data: samples of shape {tuple(x_val.shape[1:])}, but the "
                         f"training samples have shape {tuple(input_shape)}")
    _check_labels(model, loss, input_shape, y_val, "validation data")
    return x_val, y_val


def _batch_size(batch_size: int, samples: int) -> int:
    """A batch larger than the data is the whole data: one full batch per epoch (padding it
    to the asked size would only compute on zeros), with a warning."""
    if batch_size <= samples:
        return batch_size
    warnings.warn(f"fit: batch_size {batch_size} is larger than the {samples} training "
                  f"samples; training on all {samples} in one batch per epoch", UserWarning,
                  stacklevel=4)
    return samples


def _metric_names(loss: Loss, y: np.ndarray) -> list[str]:
    """The metrics reported for `loss` on targets `y` (besides "loss")."""
    if loss.classification:
        return ["accuracy"]
    names = ["mse", "rmse", "mae", "r2"]
    outputs = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    return names + ([f"{m}[{k}]" for m in names for k in range(outputs)] if outputs > 1 else [])


def _log_names(loss: Loss, y: np.ndarray, validation: bool) -> list[str]:
    """Every key of fit's per-epoch logs (for checking what a callback monitors)."""
    train = ["loss", *_metric_names(loss, y)]
    return train + ([f"val_{k}" for k in train] if validation else [])

