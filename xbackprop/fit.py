"""`fit`: train a model from arrays (counted in epochs) or from a batch source (counted in
steps). This module is fit's wiring; the work is done in rooms of their own (Keras 3's
data adapter / epoch iterator / trainer split, Chainer's trainer / extensions):

    inputs.py      the data checked once before anything runs (arrays, targets, parameters)
    sources.py     a batch source's batches, checked as they come
    batching.py    the data order, the rows a step runs on, padding and masks
    feeds.py       how each step's batch reaches the compiled step (by index, from the host)
    loop.py        the steps, the statistics waiting on the device, the rows of the history
    progress.py    the progress bar and log lines
    diagnose.py    where a NaN came from
    callbacks/     what runs after a step or a row (EarlyStopping), the History
    checkpoint/    the checkpoints and the resume record (never imports fit)

The data order is a function of the step count (arrays: step s is batch s mod E of epoch
s // E, each epoch's order from a generator seeded by (seed, epoch); a source: `source(s)`),
and so are the dropout masks (their keys derive from the step): a run continued from a saved
state sees exactly the batches of the run it continues.

Data parallelism (`devices=N`, or a backend value over a mesh): each step's batch is split
into equal parts along the mesh's data axis, one per device, and the parameters and the
optimizer state are replicated; the one compiled step runs the hand-written forward and
backward on every device's part, and XLA all-reduces the sums over the batch (the loss, the
gradients, BatchNorm's statistics), so the result is the single-device step's on the same
batch. A batch that does not divide by the device count is padded up to one that does and
masked; so is an epoch's last, partial batch (and a source's shorter batch) on backends that
compile, so one compiled step serves every batch.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .backends import Backend, backend_of, get_backend, tree_to_backend
from .batching import BatchLayout, batch_size_for
from .callbacks import Callback, EarlyStopping, History, as_callbacks
from .checkpoint.lock import FolderLock
from .checkpoint.resume import (
    FolderHoldsRunError,
    NothingToTrainError,
    Rows,
    RunCheckpoints,
    check_user_metadata,
)
from .feeds import ArrayFeed, ProcessFeed, SourceFeed
from .inputs import check_model_params, check_targets, prepare_data
from .interrupt import deferred_interrupts
from .layers.base import Layer
from .loop import Loop
from .losses import Loss, get_loss
from .metrics import lacks_metrics, log_names, stats_for
from .model import init_params, init_state
from .optim import Optimizer, get_optimizer
from .progress import FitProgress
from .sources import BatchSource, is_source, validation_arrays
from .train import TrainState, copy_state
from .tree import tree_leaves

__all__ = ["fit", "FitResult", "EVAL_EVERY", "EPOCHS"]

#: epochs when neither `epochs` nor `steps` is given
EPOCHS = 10
#: steps between evaluations (rows of the history) when training from a source
EVAL_EVERY = 100
#: the batch size of arrays when none is given
BATCH_SIZE = 32
#: the batch size validation arrays are evaluated in (`evaluate`'s default)
VAL_BATCH_SIZE = 1024


class FitResult(NamedTuple):
    state: TrainState
    history: History

    @property
    def params(self) -> Any:
        return self.state.params


def fit(model: Layer, x: Any, y: Any = None, *, loss: Loss | str, optimizer: Optimizer | str,
        epochs: int | None = None, steps: int | None = None, batch_size: int | None = None,
        seed: int = 0, params: Any = None, state: TrainState | None = None,
        validation_data: Any = None, eval_every: int | None = None,
        eval_batches: int | None = None, backend: str | Backend | None = None,
        dtype: Any = None, shuffle: bool = True, progress: bool | str = True,
        log_every: int | None = None, jit: bool = True,
        callbacks: Sequence[Callback | Callable[[int, dict, TrainState], Any]] = (),
        early_stopping: EarlyStopping | int | None = None, max_steps: int | None = None,
        on_nonfinite: str = "raise", checkpoint_dir: Any = None, checkpoint_every: int = 1,
        keep_checkpoints: int = 3, resume: bool = False, devices: int | str | None = None,
        pad_batches: bool = True, checkpoint_metadata: dict[str, Any] | None = None,
        metrics: Sequence[str] | None = None) -> FitResult:
    """Train `model`; returns the final state and the history.

    Data, one of:
      fit(model, x, y, epochs=E)  arrays: x (N, ...) inputs, y (N,) integer labels or
          (N, ...) targets (NumPy or any backend), checked once against the loss and the
          model before training (labels within the classes, ...), in mini-batches of
          `batch_size` (default 32), shuffled each epoch (`shuffle`); `epochs` (default 10)
          more epochs are trained (an epoch the state is in the middle of counts as one);
          or `steps=S` more steps, with a row of history every `eval_every` steps (default:
          an epoch's worth).
      fit(model, source, steps=S)  a batch source: a function `source(step) -> (x_batch,
          y_batch)`, pure in the step (it draws from its own generator seeded by the step,
          as `xb.data.ArraySource` does), or any iterable of such pairs (a generator, a
          loader over files). Each batch is checked on the host as it comes (the first sets
          the shapes; a later one may have fewer samples). Training is counted in steps,
          and the history has a row every `eval_every` steps (default 100) and at the end.
    x stays integers for a model that takes integer ids (an embedding first: its
    `integer_inputs`), else becomes `dtype`. optimizer: an `Optimizer`, or a name ("adam")
    with its default rate. Parameters come from `state` (training continues where it left
    off: step count, data order, optimizer state), else `params`, else `init_params(model,
    seed, ...)`. Your `params` and `state` are copied, never changed. `max_steps` stops at
    that total step count. dtype: the parameters' and inputs' floating dtype, float32 by
    default; training from `state=` or a resume goes on in the state's own dtype (a dtype
    given that differs is an error saying how to convert).

    validation_data: (x_val, y_val) arrays, evaluated whole after each row of the history
    (in eval mode); or a validation source: `val(i)` for i in range(eval_batches), or the
    first `eval_batches` batches of a list of batches — the same batches every time, so the
    curves compare.

    History (one row per epoch, or per evaluation): "loss" (the mean over the row's samples;
    the total for reduction "sum") and the metrics of the steps' own outputs — "accuracy" for
    classification losses; "mse", "rmse", "mae", "r2" (and per output "r2[k]", ...) for
    regression losses — then with validation data the same on it as "val_loss",
    "val_accuracy", ..., and "time" in seconds; counting in steps, "step" first (the step
    count at the row). metrics: the metrics to record, some of those (e.g. ["accuracy"],
    ["rmse", "r2"]), or () for the loss alone; each step then computes only the sums these
    need (a step of a tiny network spends as long on the regression sums as on its
    arithmetic). The default, None, records them all.

    progress: True shows a bar per epoch (one bar over the epochs when an epoch is a single
    step; counting in steps, one bar over the steps with the loss and the last validation
    figures, and a line per evaluation); "steps" or "epochs" chooses; False shows none.
    log_every=k prints the logs every k rows (on standard error, with the bar).

    callbacks: `xb.Callback`s — `on_step(step, state)` after every step, `on_logs(index,
    logs, state)` after each row, either returning True to stop — or functions
    `cb(index, logs, state)` (an `on_logs`). The state they get is live (later steps update
    its arrays in place on NumPy and CuPy): copy what you keep. A callback's `state()` is
    saved with fit's checkpoints and given back (`restore`) on resume. early_stopping: an
    `EarlyStopping` (or a patience in rows on "val_loss") stops when its metric stops
    improving and returns the best row's state.

    A non-finite loss or gradient raises TrainingDivergedError naming the step and the first
    layer where the values went non-finite; the error's `state` is the last good state and
    its `history` the rows before. on_nonfinite="skip" skips such batches instead (counted
    per row in "skipped"). A source's bad batch is a `SourceError` naming the step, raised
    before that step runs.

    checkpoint_dir: save a checkpoint there every `checkpoint_every` rows, at the end, and
    when Ctrl-C stops training (a first Ctrl-C stops after the current step; a second stops
    at once); keep the newest `keep_checkpoints` and the best (by the early-stopping metric,
    else "val_loss" with validation data, else "loss"). resume=True continues the newest
    checkpoint there: the same run, to `epochs` (or `steps`) in all, not that many more,
    bit for bit on NumPy — state, data order, dropout masks, history, callbacks (an
    iterable source starts again from its beginning: its position cannot be restored, and
    fit warns). A resume with other data, model, loss, kind of optimizer, dtype, batch size,
    seed or shuffling, or counting in steps where the run counted epochs, is a
    `ResumeMismatchError` naming each; one with nothing left to train warns (or, asked for
    fewer steps than the run has done, is an error). Without resume, a folder that already
    holds checkpoints is an error. A folder has one writer: fit holds its lock
    (`xbackprop.checkpoint.FolderLock`) from start to end, so a second run writing there is
    refused (`FolderInUseError`, naming the first), and a run killed any way leaves no lock.
    checkpoint_metadata: a dict of your own (JSON-able) written into every checkpoint's
    metadata beside fit's records (`xb.checkpoint_info(path).metadata[key]`), e.g. the
    tokenizer a language model needs to be sampled from its checkpoint; the names fit uses
    there ("fit", "unfinished_epoch", "callbacks") are refused.

    devices: split every batch over this many devices ("all": every one) with the
    parameters replicated (data parallelism, JAX): the same as `backend=xb.get_backend(
    "jax", devices=N)`; or pass a backend value over your own mesh, `get_backend("jax",
    mesh=mesh)`, whose "data" axis splits batches. `batch_size` is the global batch, the
    rows of all devices together; a batch that does not divide by the device count is padded
    up to one that does (masked), so one compiled step serves every batch. The result is
    the single-device run's up to float32 rounding. pad_batches=False runs every batch at
    its own size instead (on JAX, a batch of another size compiles another step), and a
    batch that does not divide by the device count is then an error. `state=` continues
    where its arrays are (over their mesh, if they are replicated over one) unless
    `backend` or `devices` says where.

    Several processes (after `xb.initialize_distributed(...)`, one per host or GPU, with a
    backend over every process's devices, `devices="all"`): every process calls fit with
    its own slice of the arrays, the same settings and `batch_size` (the global batch); each
    contributes an equal part of each batch from its slice, shuffled with its own seeds
    (`xbackprop.batching.DataOrder`). Validation data are slices too, and the history holds
    the metrics over all of them. Only process 0 shows progress and writes checkpoints,
    which every process reads on resume (a folder they share).
    """
    loss, optimizer = get_loss(loss), get_optimizer(optimizer)  # a name: its defaults
    stats_for(loss.task, metrics, "fit: metrics")  # an unknown name: an error, now
    source = y is None and is_source(x)
    _check_settings(x, y, source, epochs, steps, batch_size, eval_every, eval_batches,
                    log_every, max_steps, on_nonfinite, progress, checkpoint_every,
                    keep_checkpoints)
    if resume and checkpoint_dir is None:
        raise ValueError("resume=True continues from the checkpoints in checkpoint_dir; pass "
                         "checkpoint_dir=...")
    check_user_metadata(checkpoint_metadata, checkpoint_dir)
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
        dtype = _state_dtype(target, state, dtype)
        state = copy_state(state)  # the steps below consume their state; keep yours
    if devices is not None:
        target = target.with_devices(devices)
    if state is not None and backend_of(*tree_leaves(state.params)) is not target:
        state = target.put(state)  # replicated over the devices, where there are several
    # one writer per checkpoint folder (checkpoint/lock.py), from before the resume reads it
    # to the last save; of several processes, the first writes for all
    lock = FolderLock(checkpoint_dir) if checkpoint_dir is not None and \
        target.process_index == 0 else contextlib.nullcontext()
    with lock, target.scope():  # layers see a configured backend value (a device, a mesh)
        return _fit(model, x, y, loss, optimizer, target, source=source, epochs=epochs,
                    steps=steps, batch_size=batch_size, seed=seed, params=params, state=state,
                    validation_data=validation_data, eval_every=eval_every,
                    eval_batches=eval_batches, dtype=dtype, shuffle=shuffle,
                    progress=progress, log_every=log_every, jit=jit, callbacks=callbacks,
                    early_stopping=early_stopping, max_steps=max_steps,
                    on_nonfinite=on_nonfinite, checkpoint_dir=checkpoint_dir,
                    checkpoint_every=checkpoint_every, keep_checkpoints=keep_checkpoints,
                    resume=resume, pad_batches=pad_batches,
                    checkpoint_metadata=checkpoint_metadata, metrics=metrics)


def _fit(model: Layer, x: Any, y: Any, loss: Loss, optimizer: Optimizer, target: Backend, *,
         source: bool, epochs: int | None, steps: int | None, batch_size: int | None,
         seed: int, params: Any, state: TrainState | None, validation_data: Any,
         eval_every: int | None, eval_batches: int | None, dtype: Any, shuffle: bool,
         progress: bool | str, log_every: int | None, jit: bool, callbacks: Sequence[Any],
         early_stopping: Any, max_steps: int | None, on_nonfinite: str, checkpoint_dir: Any,
         checkpoint_every: int, keep_checkpoints: int, resume: bool, pad_batches: bool,
         checkpoint_metadata: dict[str, Any] | None = None,
         metrics: Sequence[str] | None = None) -> FitResult:
    """fit's body, on `target` and inside its scope (and the checkpoint folder's lock)."""
    asked_dtype = None if dtype is None else target.check_dtype(dtype)
    integers = bool(getattr(model, "integer_inputs", False))  # token ids stay integers
    counting_steps = source or steps is not None
    cbs = as_callbacks(callbacks)
    stopper = EarlyStopping(patience=early_stopping) if isinstance(early_stopping, int) and \
        not isinstance(early_stopping, bool) else early_stopping
    if stopper is not None:
        stopper.reset()
        cbs.append(stopper)
    if target.process_index != 0:  # one process reports for all
        progress, log_every = False, None
    checkpoints = None
    if checkpoint_dir is not None:
        monitor = (stopper.monitor if stopper is not None else
                   "val_loss" if validation_data is not None else "loss")
        mode = "max" if stopper is not None and stopper.maximise else "min"
        checkpoints = RunCheckpoints(checkpoint_dir, every=checkpoint_every,
                                     keep=keep_checkpoints, monitor=monitor, mode=mode,
                                     model=model, loss=loss, input_shape=None, callbacks=cbs,
                                     writer=target.process_index == 0,
                                     metadata=checkpoint_metadata)
        if resume and dtype is None:  # a resume goes on in the run's dtype
            dtype = checkpoints.saved_dtype()
    dt = target.check_dtype("float32" if dtype is None else dtype)

    # the data: arrays checked and laid out now; a source's first batch once the start is known
    if source:
        if target.process_count > 1:
            raise ValueError("a batch source trains in one process (over any number of its "
                             "devices); with several processes, give each its slice of the "
                             "data as arrays")
        batches = BatchSource(x, model=model, loss=loss, dtype=dt, integers=integers)
        period, spe = eval_every or EVAL_EVERY, None
        settings: dict[str, Any] = {"source": batches.kind, "steps": int(steps or 0),
                                    "eval_every": period}
    else:
        if len(x) == 0 or len(y) == 0:
            raise ValueError(f"fit: the training data has no samples (x: {tuple(np.shape(x))}, "
                             f"y: {tuple(np.shape(y))})")
        input_shape = tuple(np.shape(x)[1:])
        x_host, y_host = prepare_data(x, y, dt, "training data", integers=integers)
        check_targets(model, loss, input_shape, y_host, len(y_host), "training data")
        batch_size = batch_size or BATCH_SIZE
        if target.process_count == 1:  # (several processes: batch_size is the global batch)
            batch_size = batch_size_for(batch_size, len(x_host))
        layout = BatchLayout(target, len(x_host), batch_size, pad_batches)
        order = layout.order(seed, shuffle)
        spe = order.steps_per_epoch
        period = (eval_every or spe) if counting_steps else spe
        settings = {"samples": layout.samples, "batch_size": int(batch_size), "seed": int(seed),
                    "shuffle": bool(shuffle)}
        settings.update({"steps": int(steps or 0), "eval_every": period} if counting_steps
                        else {"epochs": int(epochs if epochs is not None else EPOCHS)})
        if target.process_count > 1:  # each process's slice has its own order
            settings["processes"] = target.process_count
    settings["validation"] = validation_data is not None  # the history's columns
    if metrics is not None:  # they fix the rows' keys (and the sums a checkpoint keeps)
        settings["metrics"] = sorted(metrics)

    history, rows = History(), Rows()  # rows: the unfinished epoch's, when resumed
    resumed_from = None
    if checkpoints is not None:
        checkpoints.settings = settings
        checkpoints.input_shape = None if source else input_shape
        resumed = checkpoints.resume(target, optimizer, asked_dtype) if resume else None
        if resumed is not None:
            found, history, rows = resumed
            state, resumed_from = found.state, found.path
            if metrics is None and lacks_metrics(loss, history, rows):
                raise ValueError(f"cannot resume from {checkpoint_dir}: that run recorded only "
                                 "some metrics (fit(..., metrics=[...])); resume it with the "
                                 "metrics= it was started with")
            if stopper is not None and stopper.restore_best and stopper.best is not None:
                stopper.best_state = checkpoints.best_state(target)
        elif (newest := checkpoints.latest()) is not None:
            raise FolderHoldsRunError(f"{checkpoint_dir} already holds checkpoints (the "
                                      f"newest: {newest.name}); pass resume=True to continue "
                                      "that run, or choose an empty folder for a new one",
                                      Path(checkpoint_dir), newest)
    start = 0 if state is None else int(state.step)

    if source:
        batches.start(start)
        y_host = batches.batch(start)[1]  # the first batch sets the shapes (or a SourceError)
        assert batches.sample_shape is not None and batches.batch_size is not None  # (set now)
        input_shape, batch_size = batches.sample_shape, batches.batch_size
        layout = BatchLayout(target, None, batch_size, pad_batches)
        if checkpoints is not None:
            checkpoints.input_shape = input_shape
        if start and resume and not batches.callable:
            warnings.warn(f"fit resumes at step {start}, but its source is an iterable, whose "
                          "position cannot be restored: its batches start again from its "
                          "beginning. The state, the step count, the history and the "
                          "callbacks are restored. For an exact resume, train from a function "
                          "source(step).", UserWarning, stacklevel=3)
    val = None
    if validation_data is not None:
        val = validation_arrays(validation_data, model=model, loss=loss,
                                input_shape=input_shape, dtype=dt, integers=integers,
                                eval_batches=eval_batches)
        if target.process_count == 1:  # moved once; several processes batch it from the host
            val = tuple(target.asarray(a) for a in val)
    if state is None:
        if params is None:
            params = init_params(model, seed, input_shape, dtype=dt, backend=target)
        else:  # moved, and copied: training updates its own parameters in place
            params = copy_state(tree_to_backend(params, target, dtype=dt))
        mstate = init_state(model, input_shape, dtype=dt, backend=target)
        state = TrainState.create(params, optimizer, mstate, seed=seed)
    check_model_params(model, state.params, state.model_state, input_shape, "fit")
    if stopper is not None:
        stopper.check_logs(log_names(loss, y_host, val is not None, counting_steps, metrics))

    mask_dtype = dt if integers else None  # a mask of integer ids' dtype would not weigh
    if source:
        feed: Any = SourceFeed(target, batches, layout.rows, jit, mask_dtype=dt)
    elif target.process_count == 1:
        feed = ArrayFeed(target, x_host, y_host, order, layout.rows, jit, mask_dtype=mask_dtype)
    else:
        assert layout.rows is not None  # (set for several processes: each one's part)
        feed = ProcessFeed(target, x_host, y_host, order, layout.rows, mask_dtype=mask_dtype)
    loop = Loop(model, loss, optimizer, target, feed, jit=jit, skip=on_nonfinite == "skip",
                val=val, val_batch_size=layout.batch_size if source else VAL_BATCH_SIZE,
                period=period, spe=spe, counting_steps=counting_steps, metrics=metrics)
    if counting_steps:
        planned = int(steps or 0) if resume else start + int(steps or 0)
    else:
        assert spe is not None
        epochs = EPOCHS if epochs is None else epochs
        planned = epochs * spe if resume else (start // spe + epochs) * spe
    end = planned if max_steps is None else min(planned, max_steps)
    if resumed_from is not None and end <= start:
        _nothing_left(resumed_from, start, planned, end, spe, counting_steps)
    if end <= start:
        return FitResult(state, history)
    shown = FitProgress(progress, log_every, period, steps=counting_steps,
                        first=start if counting_steps else start // period,
                        last=end if counting_steps else -(-end // period))
    try:
        with deferred_interrupts() as interrupt:
            state = loop.run(state, start, end, planned, history, shown, cbs, rows, interrupt,
                             checkpoints)
    finally:
        shown.close()
    if stopper is not None and stopper.best_state is not None:
        state = stopper.best_state
    if loop.skipped:
        warnings.warn(f"fit skipped {loop.skipped} batch{'es' * (loop.skipped != 1)} whose loss "
                      "or gradients were not finite (on_nonfinite='skip'); see "
                      "history['skipped'].", RuntimeWarning, stacklevel=3)
    return FitResult(state, history)


def _state_dtype(target: Backend, state: TrainState, asked: Any) -> np.dtype:
    """The dtype training from `state` runs in: its parameters' (a given `asked` dtype must
    be it)."""
    floats = [target.numpy_dtype(a.dtype) for a in tree_leaves(state.params)]
    have = next((d for d in floats if d.kind == "f"), None)
    if have is None:
        return target.check_dtype("float32" if asked is None else asked)
    if asked is not None and target.check_dtype(asked) != have:
        want = target.check_dtype(asked).name
        raise ValueError(
            f"fit(state=...): the state's parameters are {have.name}, but dtype={want!r} was "
            f"asked for; leave dtype out to train on in {have.name}, or convert the state "
            f"first: state = xb.tree_to_backend(state, backend, dtype={want!r})")
    return have


def _nothing_left(path: Any, start: int, planned: int, end: int, spe: int | None,
                  counting_steps: bool) -> None:
    """A resume with nothing left to train: an error if fewer steps were asked for in all
    than the run has done (the run cannot go back), else a warning that says so."""
    if counting_steps or spe is None:
        where, asked = f"step {start}", f"steps={planned} in all"
        more, unit, done, count = f"steps > {start}", "steps", start, planned
    else:
        done, part = divmod(start, spe)
        where = f"step {start}, in epoch {done + 1}" if part else f"epoch {done} (step {start})"
        asked, more = f"epochs={planned // spe} in all", f"epochs > {done}"
        unit, count = "epochs", planned // spe
    if planned < start:
        raise NothingToTrainError(
            f"fit(resume=True): the run in {Path(path).parent} is at {where} already, past "
            f"the {asked} asked for; a resume counts the whole run, so pass {more} to train "
            "on (or start a new run in an empty folder)",
            path=Path(path), step=start, asked=count, unit=unit, done=done)
    cut = f" (max_steps={end})" if end < planned else ""
    warnings.warn(f"fit: nothing left to train: the run in {Path(path).parent} is at {where}, "
                  f"the end of the {asked} asked for{cut}; returning its state and history. "
                  f"A resume counts the whole run: pass {more} to train on.", UserWarning,
                  stacklevel=3)


def _check_settings(x: Any, y: Any, source: bool, epochs: int | None, steps: int | None,
                    batch_size: int | None, eval_every: int | None, eval_batches: int | None,
                    log_every: int | None, max_steps: int | None, on_nonfinite: str,
                    progress: bool | str, checkpoint_every: int, keep_checkpoints: int) -> None:
    """fit's arguments checked before any work, each error saying what to pass instead."""
    def count(value: Any) -> bool:
        return isinstance(value, (int, np.integer)) and not isinstance(value, bool)

    if y is None and not source:
        raise ValueError(f"fit(model, x, y): y is missing for x of type {type(x).__name__}; "
                         "give the targets, or train from a batch source: a function "
                         "source(step) -> (x_batch, y_batch) or an iterable of such pairs")
    if source:
        if epochs is not None:
            raise ValueError("a batch source has no epochs: count in steps (steps=N)")
        if steps is None:
            raise ValueError("fit(model, source) counts in steps: pass steps=N (on resume, "
                             "the whole run's count)")
        if batch_size is not None:
            raise ValueError(f"batch_size={batch_size}: a source's batches set the batch size "
                             "(its first batch's); leave batch_size out")
    elif epochs is not None and steps is not None:
        raise ValueError(f"fit counts in epochs or in steps, not both: epochs={epochs} and "
                         f"steps={steps} were given; pass one")
    elif eval_every is not None and steps is None:
        raise ValueError("eval_every is the steps between rows of the history when training "
                         "is counted in steps (steps=N); counting in epochs there is a row "
                         "after each epoch")
    if steps is not None and (not count(steps) or steps < 0):
        raise ValueError(f"steps is a step count >= 0, not {steps!r}")
    for name, value in (("eval_every", eval_every), ("eval_batches", eval_batches)):
        if value is not None and (not count(value) or value < 1):
            raise ValueError(f"{name} is a count >= 1 (or None), not {value!r}")
    size = BATCH_SIZE if batch_size is None else batch_size
    epochs_ = EPOCHS if epochs is None else epochs
    if not count(size) or size < 1 or not count(epochs_) or epochs_ < 0:
        raise ValueError(f"batch_size must be >= 1 and epochs >= 0 (got {size}, {epochs_})")
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
    if progress == "epochs" and (source or steps is not None):
        raise ValueError("progress='epochs' shows a bar over epochs; counting in steps there "
                         "is one bar over the steps: progress=True")
