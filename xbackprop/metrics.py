"""Metrics in two halves, so that they are exact over many batches and cheap on a device.

    stats = batch_stats(pred, target, task, mask=mask)   # on the device, inside a step
    total = combine(total, to_numpy(stats))               # on the host, in float64
    scores(total, task)                                   # {"accuracy": ...} or {"rmse": ...}

`batch_stats` gives sums (and, for regression, per-batch centred second moments) as small
device arrays; `combine` merges batches exactly (Chan, Golub & LeVeque's pairwise update for
the target variance, so R² stays accurate for targets far from zero); `scores` turns the
totals into numbers. `mask: (N,)` marks real samples (1) and padding (0): padded rows count
for nothing.

Classification: accuracy. Regression: MSE, RMSE, MAE and R² averaged over the outputs and,
for K > 1 outputs, per output as "mse[k]", "rmse[k]", "mae[k]", "r2[k]".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import backend_of

__all__ = ["correct_count", "batch_stats", "combine", "scores", "regression_scores",
           "classification_scores", "TASKS"]

TASKS = ("classification", "regression")


def correct_count(pred: Any, target: Any, threshold: float = 0.5, mask: Any = None) -> Any:
    """How many predictions are right (a 0-d array).

    pred: (N, K) scores with K > 1 -> arg-max against integer labels (N,) or one-hot (N, K);
    pred: (N,) or (N, 1) -> `pred > threshold` against targets in {0, 1}.
    """
    xp = backend_of(pred, target).xp
    if len(pred.shape) == 2 and pred.shape[1] > 1:
        labels = target if len(target.shape) == 1 else xp.argmax(target, axis=1)
        right = xp.argmax(pred, axis=1) == labels
    else:
        n = pred.shape[0]
        right = (xp.reshape(pred, (n, -1)) > threshold) == (xp.reshape(target, (n, -1)) > 0.5)
        right = xp.all(right, axis=1)
    if mask is not None:
        right = right & (mask > 0)
    return xp.sum(xp.astype(right, xp.int32))


def batch_stats(pred: Any, target: Any, task: str, *, threshold: float = 0.5,
                mask: Any = None) -> dict[str, Any]:
    """Sufficient statistics of one batch, as device arrays (works under `jax.jit`).

    classification: {"count", "correct"}; regression, with pred and target (N, K) or (N,):
    {"count", "sq": Σ (pred - target)², "abs": Σ |pred - target|, "mean": mean target,
    "m2": Σ (target - mean)²}, the last four per output (K,).
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    xp = backend_of(pred, target).xp
    n = pred.shape[0]
    weights = xp.ones((n,), dtype=pred.dtype) if mask is None else _as_dtype(xp, mask,
                                                                             pred.dtype)
    count = xp.sum(weights)
    if task == "classification":
        return {"count": count, "correct": correct_count(pred, target, threshold, mask)}
    p = xp.reshape(pred, (n, -1))
    t = _as_dtype(xp, xp.reshape(target, (n, -1)), pred.dtype)
    w = weights[:, None]
    err = (p - t) * w
    mean = xp.sum(t * w, axis=0) / xp.clip(count, 1.0, None)
    centred = (t - mean) * w
    return {"count": count, "sq": xp.sum(err * err, axis=0), "abs": xp.sum(xp.abs(err), axis=0),
            "mean": mean, "m2": xp.sum(centred * centred, axis=0)}


def combine(total: dict[str, np.ndarray] | None, batch: dict[str, Any]) -> dict[str, np.ndarray]:
    """Merge one batch's statistics (host arrays) into the running totals, in float64."""
    batch = {k: np.asarray(v, dtype=np.float64) for k, v in batch.items()}
    if total is None:
        return batch
    merged = {k: total[k] + batch[k] for k in total if k not in ("mean", "m2")}
    if "mean" in total:
        # pairwise variance update: M2 = M2_a + M2_b + δ² n_a n_b / n
        na, nb = total["count"], batch["count"]
        n = na + nb
        delta = batch["mean"] - total["mean"]
        share = nb / n if n > 0 else 0.0
        merged["mean"] = total["mean"] + delta * share
        merged["m2"] = total["m2"] + batch["m2"] + delta * delta * na * share
    return merged


def scores(total: dict[str, np.ndarray], task: str) -> dict[str, float]:
    """The metrics from combined statistics: {"accuracy"} or {"mse", "rmse", "mae", "r2"}
    (means over outputs, plus "name[k]" per output when there are several)."""
    n = float(total["count"])
    if n <= 0:
        raise ValueError("no samples to score")
    if task == "classification":
        return {"accuracy": float(total["correct"]) / n}
    mse = total["sq"] / n
    mae = total["abs"] / n
    # R² = 1 - SS_res / SS_tot; a constant target (SS_tot = 0) has no R²: NaN, not a crash
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total["m2"] > 0, 1.0 - total["sq"] / total["m2"], np.nan)
    per_output = {"mse": mse, "rmse": np.sqrt(mse), "mae": mae, "r2": r2}
    out = {name: float(np.mean(values)) for name, values in per_output.items()}
    if mse.size > 1:
        for name, values in per_output.items():
            out.update({f"{name}[{k}]": float(v) for k, v in enumerate(values)})
    return out


def regression_scores(pred: Any, target: Any) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of predictions against targets ((N,) or (N, K), any backend),
    in float64; per output too when K > 1."""
    from .backends import to_numpy

    p = np.asarray(to_numpy(pred), dtype=np.float64)
    t = np.asarray(to_numpy(target), dtype=np.float64)
    if p.shape[0] != t.shape[0] or p.size != t.size:
        raise ValueError(f"predictions {p.shape} and targets {t.shape} do not match")
    return scores(batch_stats(p, t, "regression"), "regression")


def classification_scores(pred: Any, target: Any, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy of scores (N, K) against labels (N,) or one-hot rows, or of one output
    against {0, 1} targets at `threshold`."""
    from .backends import to_numpy

    p, t = np.asarray(to_numpy(pred)), np.asarray(to_numpy(target))
    return scores(batch_stats(p, t, "classification", threshold=threshold), "classification")


def _as_dtype(xp: Any, x: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else xp.astype(x, dtype)
