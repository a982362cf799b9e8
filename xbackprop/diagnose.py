"""Where did the NaN come from? One train step replayed eagerly, checking every value.

`fit` calls `diverged` when a step's loss or gradients are not finite, with the state from
before that step: `find_nonfinite` replays the step to name the first culprit — the batch's
inputs or targets, a layer's output in the forward pass, the loss, or a gradient in the
backward pass — and the error says what to do about it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .backends import Backend, to_numpy
from .layers.base import Context, Layer, describe
from .losses import Loss
from .random import fold_in
from .train import TrainingDivergedError, TrainState
from .tree import tree_paths

__all__ = ["find_nonfinite", "diverged"]


def _bad(value: Any) -> bool:
    a = np.asarray(to_numpy(value))
    return a.dtype.kind in "fc" and not np.isfinite(a).all()


def find_nonfinite(model: Layer, loss: Loss, params: Any, batch: tuple, ctx: Context
                   ) -> str | None:
    """The first place a train step on `batch = (x, y[, mask])` produces NaN or inf, in the
    order the step computes, as a phrase ("the output of layer 2, Dense(1), in the forward
    pass"); None if every value is finite."""
    x, y = batch[0], batch[1]
    mask = batch[2] if len(batch) > 2 else None
    if mask is not None:
        ctx = Context(ctx.train, ctx.key, ctx.state, mask)
    if _bad(x):
        return "the batch's inputs x (they hold NaN or inf)"
    if _bad(y):
        return "the batch's targets y (they hold NaN or inf)"
    steps = getattr(model, "forward_layers", None)
    if steps is None:
        out, caches = model.forward(params, x, ctx)
        if _bad(out):
            return f"the output of {describe(model)} in the forward pass"
    else:
        caches = []
        for i, layer, _, out, cache in steps(params, x, ctx):
            if _bad(out):
                return f"the output of layer {i}, {describe(layer)}, in the forward pass"
            caches.append(cache)
    value, loss_cache = loss.forward(out, y, ctx.mask)
    if _bad(value):
        host = np.asarray(to_numpy(out))
        largest = float(np.max(np.abs(host.astype(np.float64))))
        if largest ** 2 * host.size > float(np.finfo(host.dtype).max):  # Σ of squares
            return (f"the loss, {describe(loss)}, which overflowed: the outputs are finite but "
                    f"reach {largest:.3g}")
        return (f"the loss, {describe(loss)}, of finite outputs (targets out of the range "
                "the loss takes?)")
    dy = loss.backward(loss_cache)
    if _bad(dy):
        return f"the gradient of the loss, {describe(loss)}, with respect to the outputs"
    backward = getattr(model, "backward_layers", None)
    if backward is None:
        _, grads = model.backward(params, caches, dy)
        return _first_bad_grad(grads, "")
    for i, layer, _, dx, grads in backward(params, caches, dy):
        found = _first_bad_grad(grads, f"{i}.")
        if found:
            return f"{found} ({describe(layer)})"
        if _bad(dx):
            return (f"the gradient flowing back out of layer {i}, {describe(layer)}, in the "
                    "backward pass")
    return None


def _first_bad_grad(grads: Any, prefix: str) -> str | None:
    for path, g in tree_paths(grads):
        if _bad(g):
            return f"the gradient of parameter {prefix}{path}"
    return None


def diverged(model: Layer, loss: Loss, backend: Backend, state: TrainState,
             batch: Callable[[], tuple], step: int, position: str, *, history: Any = None,
             checkpoint: Any = None) -> TrainingDivergedError:
    """The error for step `step` (0-based), whose loss or gradients went non-finite, from
    `state`, the state before it: `position` says where the step is ("epoch 3, batch 4 of
    45"); `batch()` gives its batch to replay; `checkpoint` is the last good one, if any.
    The error's `.state` is `state`, `.history` the history so far, `.step` the step."""
    key = fold_in(state.key, state.step) if getattr(model, "stochastic", False) else None
    ctx = Context(train=True, key=key, state=state.model_state)
    if backend.process_count > 1:  # its values are spread over the processes
        where = None
        culprit = ("Run it in one process to find the first non-finite value (with "
                   "several, each holds only its part of a batch).")
    else:
        with backend.numerics():
            where = find_nonfinite(model, loss, state.params, batch(), ctx)
        culprit = (f"The first non-finite value is {where}." if where else
                   "Replayed eagerly, the step stays finite: the compiled step differs "
                   "(try jit=False to compare).")
    advice = ("Clean the data." if where and where.startswith("the batch's") else
              "The learning rate is probably too high for this model (lower it, e.g. "
              "10x), or the targets are out of the range the loss takes.")
    kept = f" The last good checkpoint is {checkpoint}." if checkpoint else ""
    at = f" ({position})" if position else ""
    error = TrainingDivergedError(
        f"training stopped at step {step + 1}{at}: its loss or gradients are NaN or "
        f"infinite. {culprit} {advice} The error's .state holds the parameters from before "
        "that step; fit(..., on_nonfinite='skip') would skip such batches instead." + kept)
    error.state, error.history, error.step = state, history, step
    return error
