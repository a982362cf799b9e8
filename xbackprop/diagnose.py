"""Where did the NaN come from? One train step replayed eagerly, checking every value.

`fit` calls `find_nonfinite` when a step's loss or gradients are not finite, on the state
from before that step, so its error can name the first culprit: the batch's inputs or
targets, a layer's output in the forward pass, the loss, or a gradient in the backward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import to_numpy
from .layers.base import Context, Layer, describe
from .losses import Loss
from .tree import tree_paths

__all__ = ["find_nonfinite"]


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
