"""Using a model: `predict` its outputs and `evaluate` its loss and metrics, in batches.

Both run the model in eval mode, compiled once per model and backend on JAX. Batches have
one shape: when the data take several batches, the last one is padded and masked, so JAX
compiles once and not once more for the ragged end.

Parameters replicated over a mesh (trained with `fit(..., devices=4)`) run there: batches
are padded to a multiple of the devices and split over them. With several processes
`evaluate` is collective: every process passes its own slice of the data and gets the loss
and metrics over all of them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import Array, Backend, backend_of, owner_of, to_numpy
from .batching import fixed_batches
from .inputs import check_inputs, check_model_params, check_targets
from .interrupt import deferred_interrupts
from .layers.base import Context, Layer
from .losses import Loss, get_loss, targets_checked
from .metrics import batch_stats, reduce_stats, scores
from .train import compiled
from .tree import tree_leaves

__all__ = ["predict", "evaluate"]


@functools.lru_cache(maxsize=64)
def _forward_fn(model: Layer, backend: Backend, jit: bool) -> Callable[[Any, Any, Array], Array]:
    """`(params, model_state, x) -> y` in eval mode; compiled once per model and backend."""
    def forward(params: Any, model_state: Any, x: Array) -> Array:
        return model.forward(params, x, Context(train=False, state=model_state))[0]
    return compiled(backend, forward, jit)


@functools.lru_cache(maxsize=64)
def _score_fn(model: Layer, loss: Loss, backend: Backend, jit: bool) -> Callable:
    """`(params, model_state, x, y, mask) -> (loss summed over the real samples, metric
    statistics)` in eval mode; padded rows (mask 0) count for nothing."""
    def score(params: Any, model_state: Any, x: Array, y: Array, mask: Array
              ) -> tuple[Array, dict[str, Array]]:
        out = model.forward(params, x, Context(train=False, state=model_state))[0]
        with targets_checked():  # by evaluate, once, on the host
            value = loss(out, y, mask)
        stats = batch_stats(out, y, loss.task, threshold=loss.threshold, mask=mask)
        total = value * stats["count"] if loss.reduction == "mean" else value
        return total, stats
    return compiled(backend, score, jit)


def predict(model: Layer, params: Any, x: Any, *, model_state: Any = None,
            batch_size: int = 1024, jit: bool = True) -> Array:
    """The model's outputs for `x: (N, ...)` in eval mode, in batches, on `params`' backend."""
    x = _check_call(model, params, model_state, x, batch_size, "predict")
    backend, dtype = _placement(params, x)
    if backend.process_count > 1:
        raise ValueError(
            f"predict runs in one process, but the backend spans {backend.process_count}: "
            "evaluate (collective) or save the model (xb.save_model, in process 0) and "
            "predict with it in one process")
    fn = _forward_fn(model, backend, jit)
    with backend.scope(), deferred_interrupts():
        x_dtype = _input_dtype(model, x, dtype)
        mask_dtype = None if x_dtype is dtype else dtype  # integer ids: a float mask
        x = backend.asarray(x, dtype=x_dtype)
        outs = [fn(params, model_state, xb)
                for xb, _ in fixed_batches(backend, [x], batch_size, mask_dtype)]
        return backend.xp.concat(outs, axis=0)[:x.shape[0], ...]


def evaluate(model: Layer, params: Any, x: Any, y: Any, loss: Loss | str, *,
             model_state: Any = None, batch_size: int = 1024, jit: bool = True
             ) -> dict[str, float]:
    """The loss and metrics of the model on (x, y) in eval mode.

    Classification losses: `{"loss", "accuracy"}`. Regression losses: `{"loss", "mse",
    "rmse", "mae", "r2"}` (means over the outputs) and, for several outputs, the same per
    output as `"rmse[k]"` etc. The loss is averaged over samples for reduction "mean".
    """
    loss = get_loss(loss)
    x = _check_call(model, params, model_state, x, batch_size, "evaluate")
    check_targets(model, loss, tuple(x.shape[1:]), y, x.shape[0], "evaluate")
    backend, dtype = _placement(params, x)
    fn = _score_fn(model, loss, backend, jit)
    with backend.scope(), deferred_interrupts():
        x_dtype = _input_dtype(model, x, dtype)
        if backend.process_count == 1:
            x, y = backend.asarray(x, dtype=x_dtype), backend.asarray(y)
        else:  # each process batches its own rows from the host
            x = np.asarray(to_numpy(x), backend.numpy_dtype(x_dtype))
            y = np.asarray(to_numpy(y))
            y = y.astype(np.int32) if y.dtype.kind in "iub" else \
                y.astype(backend.numpy_dtype(dtype))
        mask_dtype = None if x_dtype is dtype else backend.numpy_dtype(dtype)
        results = [fn(params, model_state, *batch)
                   for batch in fixed_batches(backend, [x, y], batch_size, mask_dtype)]
        values, stats = to_numpy([v for v, _ in results]), to_numpy([s for _, s in results])
    totals = reduce_stats(stats)
    total_loss = float(np.sum(values, dtype=np.float64))
    n = float(totals["count"][0])
    return {"loss": total_loss / n if loss.reduction == "mean" else total_loss,
            **scores(totals, loss.task)}


def _check_call(model: Layer, params: Any, model_state: Any, x: Any, batch_size: int,
                where: str) -> Any:
    """The checks `predict` and `evaluate` share, once per call: x, the batch size and the
    parameters against the model."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
            batch_size < 1:
        raise ValueError(f"{where}: batch_size is a number of samples >= 1, not {batch_size!r}")
    x = check_inputs(x, where)
    check_model_params(model, params, model_state, tuple(x.shape[1:]), where)
    return x


def _placement(params: Any, x: Any) -> tuple[Backend, Any]:
    """Where the model runs and in which dtype: the parameters' backend and dtype; for a
    model without parameters (Softmax alone), the input's backend and float dtype."""
    leaves = tree_leaves(params)
    if leaves:  # over the parameters' mesh, if they are on one
        return backend_of(*leaves).for_placement(params), leaves[0].dtype
    backend = backend_of(x)
    kind = backend.numpy_dtype(x.dtype) if owner_of(x) is not None else np.asarray(x).dtype
    return backend, kind if kind.kind == "f" else np.float32


def _input_dtype(model: Layer, x: Any, dtype: Any) -> Any:
    """What x becomes: the parameters' float dtype, or int32 ids for a model that takes
    integers (an embedding first) when x holds integers."""
    if getattr(model, "integer_inputs", False):
        kind = x.dtype if owner_of(x) is None else backend_of(x).numpy_dtype(x.dtype)
        if np.dtype(kind).kind in "biu":
            return np.int32
    return dtype
