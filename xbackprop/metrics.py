"""Metrics computed on a batch: functions `(pred, target) -> number of correct items`, so
that sums over batches give exact totals."""

from __future__ import annotations

from typing import Any

from .layers.base import namespace

__all__ = ["correct_count"]


def correct_count(pred: Any, target: Any, threshold: float = 0.5) -> Any:
    """How many predictions are right (a 0-d array).

    pred: (N, K) scores with K > 1 -> arg-max against integer labels (N,) or one-hot (N, K);
    pred: (N,) or (N, 1) -> `pred > threshold` against targets in {0, 1}.
    """
    xp = namespace(pred, target)
    if len(pred.shape) == 2 and pred.shape[1] > 1:
        labels = target if len(target.shape) == 1 else xp.argmax(target, axis=1)
        return xp.sum(xp.argmax(pred, axis=1) == labels)
    return xp.sum((xp.reshape(pred, (-1,)) > threshold) == (xp.reshape(target, (-1,)) > 0.5))
