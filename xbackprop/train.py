"""Training: the pure train step, and `fit`, a thin loop around it.

The step is one pure function `(state, (x, y)) -> (state, loss)` over a `TrainState` that
holds everything a step changes: parameters, optimizer state, non-trainable model state
(BatchNorm statistics), the step count and the random key. On JAX the whole step,
hand-written backward included, is compiled by `jax.jit`; the loop around it (batching,
shuffling, validation, history, progress bar) stays in Python and is the same everywhere.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, NamedTuple

import numpy as np

from .backends import Array, Backend, backend_of, get_backend, owner_of, to_numpy, \
    tree_to_backend
from .callbacks import EarlyStopping
from .layers.base import Context, Layer
from .losses import Loss, get_loss
from .metrics import batch_stats, combine, scores
from .model import init_params, init_state
from .optim import Optimizer
from .progress import ProgressBar
from .random import fold_in, make_key
from .tree import tree_leaves, tree_map

__all__ = ["TrainState", "TrainingDivergedError", "History", "FitResult", "loss_and_grads",
           "make_train_step", "fit", "predict", "evaluate"]

Batch = tuple[Array, Array]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite."""


class TrainState(NamedTuple):
    """Everything a train step reads and replaces; a pytree, so JAX can compile over it
    and a checkpoint can save it by name."""

    params: Any
    opt_state: Any
    model_state: Any
    step: Any  # updates done: a Python int on NumPy/CuPy, an int32 array on JAX
    key: Array  # uint32[2] random key; step keys are fold_in(key, step)

    @classmethod
    def create(cls, params: Any, optimizer: Optimizer, model_state: Any = None,
               seed: int = 0) -> TrainState:
        backend = backend_of(*tree_leaves(params))
        step = 0 if backend.mutable_arrays else backend.xp.zeros((), dtype=backend.xp.int32)
        return cls(params, optimizer.init(params), model_state, step, make_key(seed, backend))


def loss_and_grads(model: Layer, loss: Loss, params: Any, batch: Batch, ctx: Context
                   ) -> tuple[Array, Any, Any]:
    """Forward, loss, backward: `(loss value, parameter gradients, the model's caches)`."""
    x, y = batch
    out, caches = model.forward(params, x, ctx)
    value, loss_cache = loss.forward(out, y)
    grads = model.param_grads(params, caches, loss.backward(loss_cache))
    return value, grads, caches


def make_train_step(model: Layer, loss: Loss | str, optimizer: Optimizer, *,
                    backend: str | Backend | None = None, jit: bool = True,
                    donate: bool = False
                    ) -> Callable[[TrainState, Batch], tuple[TrainState, Array]]:
    """The pure train step `(state, (x, y)) -> (state, loss)` for `model`, compiled for
    `backend` when it compiles (JAX).

    donate=True lets the step reuse the input state's buffers for its output: the optimizer
    updates parameters and slots in place on NumPy and CuPy, and JAX may donate them on
    GPUs. The numbers are the same; the state you passed in is then stale, so keep only
    the one the step returns (fit does this).
    """
    loss = get_loss(loss)
    stochastic = getattr(model, "stochastic", False)

    def step(state: TrainState, batch: Batch) -> tuple[TrainState, Array]:
        key = fold_in(state.key, state.step) if stochastic else None
        ctx = Context(train=True, key=key, state=state.model_state)
        value, grads, caches = loss_and_grads(model, loss, state.params, batch, ctx)
        params, opt_state = optimizer.update(state.params, grads, state.opt_state,
                                             inplace=donate)
        model_state = model.next_state(state.model_state, caches)
        return TrainState(params, opt_state, model_state, state.step + 1, state.key), value

    target = get_backend(backend)
    target.prepare_training()
    return _compiled(target, step, jit, donate_argnums=(0,) if donate else ())


def _compiled(backend: Backend, fn: Callable, jit: bool, donate_argnums: tuple[int, ...] = ()
              ) -> Callable:
    """`fn` compiled by `backend` (JAX: jit), or with jit=False run op by op in the same
    numerics (JAX on a GPU: full float32 matrix products either way)."""
    if jit:
        return backend.compile(fn, donate_argnums=donate_argnums)

    @functools.wraps(fn)
    def eager(*args: Any) -> Any:
        with backend.numerics():
            return fn(*args)
    return eager


@functools.lru_cache(maxsize=64)
def _forward_fn(model: Layer, backend: Backend, jit: bool) -> Callable[[Any, Any, Array], Array]:
    """`(params, model_state, x) -> y` in eval mode; compiled once per model and backend."""
    def forward(params: Any, model_state: Any, x: Array) -> Array:
        return model.forward(params, x, Context(train=False, state=model_state))[0]
    return _compiled(backend, forward, jit)


@functools.lru_cache(maxsize=64)
def _score_fn(model: Layer, loss: Loss, backend: Backend, jit: bool) -> Callable:
    """`(params, model_state, x, y, mask) -> (loss summed over the real samples, metric
    statistics)` in eval mode; padded rows (mask 0) count for nothing."""
    def score(params: Any, model_state: Any, x: Array, y: Array, mask: Array
              ) -> tuple[Array, dict[str, Array]]:
        out = model.forward(params, x, Context(train=False, state=model_state))[0]
        value = loss(out, y, mask)
        stats = batch_stats(out, y, loss.task, threshold=loss.threshold, mask=mask)
        total = value * stats["count"] if loss.reduction == "mean" else value
        return total, stats
    return _compiled(backend, score, jit)


def _batches(n: int, batch_size: int) -> range:
    return range(0, n, batch_size)


def _padded(xp: Any, a: Array, size: int) -> Array:
    """`a: (n, ...)` with zero rows appended up to `size` rows."""
    if a.shape[0] == size:
        return a
    pad = xp.zeros((size - a.shape[0],) + tuple(a.shape[1:]), dtype=a.dtype)
    return xp.concatenate([a, pad], axis=0)


def _eval_batches(backend: Backend, arrays: Sequence[Array], batch_size: int
                  ) -> Iterator[tuple[Array, ...]]:
    """Batches of `arrays` (each (N, ...)) plus a mask (N,), all of one shape: the last
    batch is padded (mask 0) when there are several, so a compiled evaluation compiles
    once instead of once more for the ragged end."""
    xp = backend.xp
    n = arrays[0].shape[0]
    size = min(batch_size, n)
    for i in _batches(n, size):
        parts = [a[i:i + size] for a in arrays]
        mask = xp.asarray(np.arange(size) < parts[0].shape[0], dtype=arrays[0].dtype)
        yield (*(_padded(xp, p, size) for p in parts), mask)


def predict(model: Layer, params: Any, x: Any, *, model_state: Any = None,
            batch_size: int = 1024, jit: bool = True) -> Array:
    """The model's outputs for `x: (N, ...)` in eval mode, in batches, on `params`' backend."""
    backend = backend_of(*tree_leaves(params))
    fn = _forward_fn(model, backend, jit)
    x = backend.asarray(x, dtype=tree_leaves(params)[0].dtype)
    outs = [fn(params, model_state, xb_) for xb_, _ in _eval_batches(backend, [x], batch_size)]
    return backend.xp.concatenate(outs, axis=0)[:x.shape[0]]


def evaluate(model: Layer, params: Any, x: Any, y: Any, loss: Loss | str, *,
             model_state: Any = None, batch_size: int = 1024, jit: bool = True
             ) -> dict[str, float]:
    """The loss and metrics of the model on (x, y) in eval mode.

    Classification losses: `{"loss", "accuracy"}`. Regression losses: `{"loss", "mse",
    "rmse", "mae", "r2"}` (means over the outputs) and, for several outputs, the same per
    output as `"rmse[k]"` etc. The loss is averaged over samples for reduction "mean".
    """
    loss = get_loss(loss)
    backend = backend_of(*tree_leaves(params))
    fn = _score_fn(model, loss, backend, jit)
    x, y = backend.asarray(x, dtype=tree_leaves(params)[0].dtype), backend.asarray(y)
    total_loss, total = 0.0, None
    for batch in _eval_batches(backend, [x, y], batch_size):
        value, stats = fn(params, model_state, *batch)
        total_loss += float(value)
        total = combine(total, to_numpy(stats))
    n = float(total["count"])
    return {"loss": total_loss / n if loss.reduction == "mean" else total_loss,
            **scores(total, loss.task)}


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


def _copy(leaf: Any) -> Any:
    owner = owner_of(leaf)
    return leaf if owner is None else owner.xp.asarray(leaf, copy=True)


def _prepare_data(x: Any, y: Any, dtype: np.dtype, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Check (x, y) and return them as host arrays: x as `dtype`, labels as int32."""
    x_host, y_host = to_numpy(x), to_numpy(y)
    x_host, y_host = np.asarray(x_host), np.asarray(y_host)
    if x_host.shape[0] != y_host.shape[0]:
        raise ValueError(f"{name}: x has {x_host.shape[0]} samples but y has {y_host.shape[0]}")
    if x_host.shape[0] == 0:
        raise ValueError(f"{name}: no samples")
    bad = ~np.isfinite(x_host.astype(np.float64))
    if bad.any():
        raise ValueError(f"{name}: x has {int(bad.sum())} NaN or infinite values (first at "
                         f"index {tuple(int(i) for i in np.argwhere(bad)[0])}); clean the data")
    y_dtype = np.int32 if y_host.dtype.kind in "iub" else dtype
    return x_host.astype(dtype, copy=False), y_host.astype(y_dtype, copy=False)


def _check_labels(model: Layer, loss: Loss, input_shape: tuple, y: np.ndarray) -> None:
    """Integer labels for a softmax loss must index the model's outputs."""
    if y.dtype.kind not in "iu" or y.ndim != 1:
        return
    out = model.output_shape(input_shape)
    if len(out) == 1 and out[0] > 1 and (y.min() < 0 or y.max() >= out[0]):
        raise ValueError(f"labels run from {y.min()} to {y.max()} but the model has {out[0]} "
                         f"outputs; labels must be in [0, {out[0]})")


def fit(model: Layer, x: Any, y: Any, *, loss: Loss | str, optimizer: Optimizer,
        epochs: int = 10, batch_size: int = 32, seed: int = 0, params: Any = None,
        state: TrainState | None = None, validation_data: tuple[Any, Any] | None = None,
        backend: str | Backend | None = None, dtype: Any = "float32", shuffle: bool = True,
        progress: bool = True, jit: bool = True,
        callbacks: Sequence[Callable[[int, dict, TrainState], Any]] = (),
        early_stopping: EarlyStopping | int | None = None) -> FitResult:
    """Train `model` on (x, y) with mini-batches; returns the final state and the history.

    x: (N, ...) inputs; y: (N,) integer labels or (N, ...) targets (NumPy or any backend).
    Parameters come from `state`, else `params`, else `init_params(model, seed, ...)`.
    Each epoch shuffles with a generator seeded by (seed, epoch), so a run is reproducible.
    `callbacks` are called as `cb(epoch, logs, state)` after each epoch; one that returns
    True stops training. The state they get is live (later steps update its arrays in
    place on NumPy and CuPy): copy what you keep. Raises TrainingDivergedError when the
    loss becomes NaN or inf. Your `params` and `state` are copied, never changed.

    early_stopping: an `EarlyStopping` (or a patience in epochs, monitoring "val_loss")
    stops when the monitored metric stops improving and returns the best epoch's state.
    Metrics in the history: "loss", and "accuracy" for classification losses; with
    validation data also "val_loss" and "val_accuracy", or for regression losses
    "val_mse", "val_rmse", "val_mae", "val_r2" (and per output, "val_r2[k]", ...).
    """
    loss = get_loss(loss)
    target = get_backend(backend)
    if state is not None:
        target = backend_of(*tree_leaves(state.params))
        dtype = tree_leaves(state.params)[0].dtype
        state = tree_map(_copy, state)  # the steps below consume their state; keep yours
    dt = target.check_dtype(dtype)
    if batch_size < 1 or epochs < 0:
        raise ValueError(f"batch_size must be >= 1 and epochs >= 0 (got {batch_size}, {epochs})")
    if len(x) == 0 or len(y) == 0:
        raise ValueError(f"fit: the training data has no samples (x: {tuple(np.shape(x))}, "
                         f"y: {tuple(np.shape(y))})")
    input_shape = tuple(np.shape(x)[1:])
    _check_labels(model, loss, input_shape, np.asarray(to_numpy(y)))
    x_host, y_host = _prepare_data(x, y, dt, "training data")
    val = None
    if validation_data is not None:
        val = _prepare_data(*validation_data, dt, "validation data")
    # Batches are gathered where gathering is cheap: on the device for NumPy and CuPy (the
    # data moves there once); on the host for JAX, whose compiled step takes NumPy batches
    # directly, while an eager JAX gather per step would cost more than the step itself.
    on_device = target.mutable_arrays
    x_src, y_src = (target.asarray(x_host), target.asarray(y_host)) if on_device else (
        x_host, y_host)
    if state is None:
        if params is None:
            params = init_params(model, seed, input_shape, dtype=dt, backend=target)
        else:  # moved, and copied: training updates its own parameters in place
            params = tree_map(_copy, tree_to_backend(params, target, dtype=dt))
        mstate = init_state(model, input_shape, dtype=dt, backend=target)
        state = TrainState.create(params, optimizer, mstate, seed=seed)

    if isinstance(early_stopping, int) and not isinstance(early_stopping, bool):
        early_stopping = EarlyStopping(patience=early_stopping)
    if early_stopping is not None:
        early_stopping.reset()
        reported = ["loss"] + (["accuracy"] if loss.classification else [])
        if val is not None:
            reported += [f"val_{k}" for k in ["loss", *_metric_names(loss, val[1])]]
        early_stopping.check_logs(reported)
        callbacks = [*callbacks, early_stopping]

    step = make_train_step(model, loss, optimizer, backend=target, jit=jit, donate=True)
    history = History()
    n = x_host.shape[0]
    steps_per_epoch = math.ceil(n / batch_size)
    for epoch in range(epochs):
        t0 = time.perf_counter()
        order = (np.random.default_rng([seed, epoch]).permutation(n) if shuffle
                 else np.arange(n))
        bar = ProgressBar(steps_per_epoch, f"epoch {epoch + 1}/{epochs}", enabled=progress)
        losses = []
        for i in _batches(n, batch_size):
            idx = order[i:i + batch_size]
            if on_device:
                idx = target.asarray(idx)
            state, value = step(state, (target.asarray(x_src[idx]), target.asarray(y_src[idx])))
            losses.append(value)
            if bar.needs_refresh():
                bar.update(loss=float(value))
            else:
                bar.update()
        # the mean of the batch losses; one transfer from the device per epoch
        train_loss = float(target.xp.mean(target.xp.stack(losses)))
        if not math.isfinite(train_loss):
            bar.close(loss=train_loss)
            raise TrainingDivergedError(
                f"the training loss became {train_loss} in epoch {epoch + 1}: the learning rate "
                "is probably too high for this model (lower it, e.g. by 10x), or the targets "
                "are out of range for the loss.")
        logs = {"loss": train_loss}
        if loss.classification:
            logs["accuracy"] = evaluate(model, state.params, x_src, y_src, loss,
                                        model_state=state.model_state, jit=jit)["accuracy"]
        if val is not None:
            val_scores = evaluate(model, state.params, *val, loss,
                                  model_state=state.model_state, jit=jit)
            logs.update({f"val_{k}": v for k, v in val_scores.items()})
        logs["time"] = time.perf_counter() - t0
        history.append(logs)
        bar.close(**{k: v for k, v in logs.items() if k != "time"})
        if any([cb(epoch, logs, state) for cb in callbacks]):  # every callback runs
            break
    if early_stopping is not None and early_stopping.best_state is not None:
        state = early_stopping.best_state
    return FitResult(state, history)


def _metric_names(loss: Loss, y: np.ndarray) -> list[str]:
    """The metrics `evaluate` reports for `loss` on targets `y` (besides "loss")."""
    if loss.classification:
        return ["accuracy"]
    names = ["mse", "rmse", "mae", "r2"]
    outputs = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    return names + ([f"{m}[{k}]" for m in names for k in range(outputs)] if outputs > 1 else [])
