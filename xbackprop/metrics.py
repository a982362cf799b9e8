"""Metrics in two halves, so that they are exact over many batches and cheap on a device.

    stats = batch_stats(pred, target, task, mask=mask)   # on the device, inside a step
    totals = reduce_stats([to_numpy(s) for s in ...])     # on the host, in float64
    scores(totals, task)                                  # {"accuracy": ...} or {"rmse": ...}

`batch_stats` gives sums (and, for regression, per-batch target means and centred second
moments) as small device arrays; `reduce_stats` merges batches exactly (the pairwise
variance update of Chan, Golub & LeVeque, so R² stays accurate for targets far from zero),
for one run of batches or for many consecutive runs at once (the epochs of a training
chunk); `scores` turns the totals into numbers. `mask: (N,)` marks real samples (1) and
padding (0): padded rows count for nothing.

Classification: accuracy. Regression: MSE, RMSE, MAE and R² averaged over the outputs and,
for K > 1 outputs, per output as "mse[k]", "rmse[k]", "mae[k]", "r2[k]". Asking for some of
them (`stats_for`) computes only the sums those need: `fit(..., metrics=())` trains with
the loss alone.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from .backends import backend_of, to_numpy
from .losses import Loss

__all__ = ["correct_count", "positions", "batch_stats", "reduce_stats", "scores",
           "regression_scores", "classification_scores", "TASKS", "METRICS", "stats_for",
           "metric_names", "log_names", "lacks_metrics"]

TASKS = ("classification", "regression")
#: each task's metrics, and the sums (besides "count") that each is computed from
METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "classification": {"accuracy": ("correct",)},
    "regression": {"mse": ("sq",), "rmse": ("sq",), "mae": ("abs",),
                   "r2": ("sq", "mean", "m2")}}


def stats_for(task: str, metrics: Any, where: str = "metrics") -> frozenset[str] | None:
    """The sums `batch_stats` must compute for `metrics` (names of `task`'s metrics; None:
    all of them, returned as None). A name the task has not is a ValueError naming those
    it has."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    if metrics is None:
        return None
    if isinstance(metrics, str) or not all(isinstance(m, str) for m in metrics):
        raise ValueError(f"{where} is a list of metric names (or None for all), not "
                         f"{metrics!r}: for {task}, some of {list(METRICS[task])}")
    unknown = [m for m in metrics if m not in METRICS[task]]
    if unknown:
        raise ValueError(f"{where}: {unknown} are not metrics of a {task} loss; its metrics "
                         f"are {list(METRICS[task])} (or () for the loss alone)")
    return frozenset(s for m in metrics for s in METRICS[task][m])


def correct_count(pred: Any, target: Any, threshold: float = 0.5, mask: Any = None) -> Any:
    """How many predictions are right (a 0-d array).

    pred: (N, K) scores with K > 1 -> arg-max against integer labels (N,) or one-hot (N, K);
    pred: (N, T, K) scores of sequences against labels (N, T) -> one prediction per position;
    pred: (N,) or (N, 1) -> `pred > threshold` against targets in {0, 1}.
    """
    xp = backend_of(pred, target).xp
    if len(pred.shape) >= 3 and len(target.shape) == len(pred.shape) - 1:
        right = xp.argmax(pred, axis=-1) == target           # (N, T): each position
        if mask is not None:
            right = right & (xp.reshape(mask, (-1,) + (1,) * (len(right.shape) - 1)) > 0)
        return xp.sum(xp.astype(right, xp.int32))
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
                mask: Any = None, stats: frozenset[str] | None = None) -> dict[str, Any]:
    """Sufficient statistics of one batch, as device arrays (works under `jax.jit`).

    classification: {"count", "correct"}; regression, with pred and target (N, K) or (N,):
    {"count", "sq": Σ (pred - target)², "abs": Σ |pred - target|, "mean": mean target,
    "m2": Σ (target - mean)²}, the last four per output (K,). stats: only these besides
    "count" (`stats_for`; None: all). Without a mask nothing is weighted: the same
    numbers, bit for bit (x·1 = x), in fewer passes.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, not {task!r}")
    xp = backend_of(pred, target).xp
    n = pred.shape[0]
    if mask is None:  # every row counts: n, exact in any float dtype a batch fits
        weights, count = None, xp.asarray(float(n), dtype=pred.dtype)
    else:
        weights = _as_dtype(xp, mask, pred.dtype)
        count = xp.sum(weights)
    wanted = (lambda name: True) if stats is None else stats.__contains__
    if task == "classification":
        # sequences (N, T, K) against labels (N, T): every position is one prediction
        out = {"count": count * positions(pred, target)}
        if wanted("correct"):
            out["correct"] = correct_count(pred, target, threshold, mask)
        return out
    out = {"count": count}
    if not (wanted("sq") or wanted("abs") or wanted("m2")):
        return out
    p = xp.reshape(pred, (n, -1))
    t = _as_dtype(xp, xp.reshape(target, (n, -1)), pred.dtype)
    w = None if weights is None else weights[:, None]
    if wanted("sq") or wanted("abs"):
        err = p - t if w is None else (p - t) * w
        if wanted("sq"):
            out["sq"] = xp.sum(err * err, axis=0)
        if wanted("abs"):
            out["abs"] = xp.sum(xp.abs(err), axis=0)
    if wanted("mean") or wanted("m2"):
        if w is None:
            mean = xp.sum(t, axis=0) / count
            centred = t - mean
        else:
            mean = xp.sum(t * w, axis=0) / xp.clip(count, 1.0, None)
            centred = (t - mean) * w
        out["mean"], out["m2"] = mean, xp.sum(centred * centred, axis=0)
    return out


def positions(pred: Any, target: Any) -> int:
    """Predictions per sample: T for sequence scores (N, T, ..., K) against labels (N, T,
    ...), one prediction per position; 1 otherwise."""
    if len(pred.shape) >= 3 and len(target.shape) == len(pred.shape) - 1:
        return math.prod(pred.shape[1:-1])
    return 1


def reduce_stats(batches: Sequence[dict[str, Any]] | dict[str, np.ndarray],
                 starts: Sequence[int] | np.ndarray = (0,)) -> dict[str, np.ndarray]:
    """Totals of consecutive runs of batches, in float64.

    batches: a list of per-batch statistics (host arrays), or the same stacked (one batch
    per row). Runs start at the rows `starts` (np.add.reduceat's convention; the default is
    one run of all batches). Returns the totals with one row per run.
    """
    if not isinstance(batches, dict):
        batches = {k: np.stack([np.asarray(b[k], dtype=np.float64) for b in batches])
                   for k in batches[0]}
    rows = {k: np.asarray(v, dtype=np.float64) for k, v in batches.items()}
    starts = np.asarray(starts, dtype=np.intp)
    out = {k: np.add.reduceat(v, starts, axis=0) for k, v in rows.items()
           if k not in ("mean", "m2")}
    if "mean" in rows:
        n = rows["count"][:, None]                                         # (S, 1)
        n_run = np.maximum(out["count"], 1)[:, None]                       # (G, 1)
        mean = np.add.reduceat(n * rows["mean"], starts, axis=0) / n_run   # (G, K)
        run_of_row = np.repeat(np.arange(len(starts)),
                               np.diff(np.append(starts, len(n))))
        # M2 = Σ M2_b + Σ n_b (mean_b - mean)²: each batch's spread plus its offset
        offset = rows["mean"] - mean[run_of_row]
        out["mean"] = mean
        out["m2"] = (np.add.reduceat(rows["m2"], starts, axis=0)
                     + np.add.reduceat(n * offset * offset, starts, axis=0))
    return out


def scores(totals: dict[str, np.ndarray], task: str) -> dict[str, Any]:
    """The metrics from totals: {"accuracy"} or {"mse", "rmse", "mae", "r2"} (means over
    outputs, plus "name[k]" per output when there are several). Totals of one run (as
    `reduce_stats` returns by default, or unstacked) give floats; of several runs, arrays
    with one value per run."""
    one = np.ndim(totals["count"]) == 0 or np.shape(totals["count"]) == (1,)
    t = {k: np.atleast_1d(np.asarray(v, dtype=np.float64)) for k, v in totals.items()}
    n = t["count"]
    if (n <= 0).any():
        raise ValueError("no samples to score")
    if task == "classification":
        out = {"accuracy": t["correct"] / n} if "correct" in t else {}
    else:
        if any(v.ndim == 1 for k, v in t.items() if k != "count"):  # unstacked, one run:
            t = {k: v[None] if k != "count" else v for k, v in t.items()}  # outputs last
        # the metrics whose sums are there (`batch_stats`' stats)
        per_output: dict[str, np.ndarray] = {}
        if "sq" in t:
            mse = t["sq"] / n[:, None]
            per_output.update(mse=mse, rmse=np.sqrt(mse))
        if "abs" in t:
            per_output["mae"] = t["abs"] / n[:, None]
        if "sq" in t and "m2" in t:
            # R² = 1 - SS_res / SS_tot; a constant target (SS_tot = 0) has no R²: NaN
            with np.errstate(divide="ignore", invalid="ignore"):
                per_output["r2"] = np.where(t["m2"] > 0, 1.0 - t["sq"] / t["m2"], np.nan)
        out = {name: values.mean(axis=-1) for name, values in per_output.items()}
        if per_output and next(iter(per_output.values())).shape[-1] > 1:
            for name, values in per_output.items():
                out.update({f"{name}[{k}]": values[:, k] for k in range(values.shape[-1])})
    return {k: float(v[0]) for k, v in out.items()} if one else out


def regression_scores(pred: Any, target: Any) -> dict[str, float]:
    """MSE, RMSE, MAE and R² of predictions against targets ((N,) or (N, K), any backend),
    in float64; per output too when K > 1."""
    p = np.asarray(to_numpy(pred), dtype=np.float64)
    t = np.asarray(to_numpy(target), dtype=np.float64)
    if p.shape[0] != t.shape[0] or p.size != t.size:
        raise ValueError(f"predictions {p.shape} and targets {t.shape} do not match")
    return scores(batch_stats(p, t, "regression"), "regression")


def classification_scores(pred: Any, target: Any, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy of scores (N, K) against labels (N,) or one-hot rows, or of one output
    against {0, 1} targets at `threshold`."""
    p, t = np.asarray(to_numpy(pred)), np.asarray(to_numpy(target))
    return scores(batch_stats(p, t, "classification", threshold=threshold), "classification")


def _as_dtype(xp: Any, x: Any, dtype: Any) -> Any:
    return x if x.dtype == dtype else xp.astype(x, dtype)


# -- what fit logs ------------------------------------------------------------------------

def lacks_metrics(loss: Loss, history: dict[str, Any], rows: list) -> bool:
    """Whether a resumed run's rows lack some of the loss's metrics (or their sums)."""
    sums = {k for needs in METRICS[loss.task].values() for k in needs}
    return (bool(history.get("loss")) and not set(METRICS[loss.task]) <= set(history)) or \
        (bool(rows) and not sums <= set(rows[0][1]))


def metric_names(loss: Loss, y: np.ndarray, metrics: Sequence[str] | None = None
                  ) -> list[str]:
    """The metrics reported for `loss` on targets `y` (besides "loss"): all, or `metrics`."""
    if loss.classification:
        return ["accuracy"] if metrics is None or "accuracy" in metrics else []
    names = [m for m in ["mse", "rmse", "mae", "r2"] if metrics is None or m in metrics]
    outputs = int(np.prod(y.shape[1:])) if y.ndim > 1 else 1
    return names + ([f"{m}[{k}]" for m in names for k in range(outputs)] if outputs > 1 else [])


def log_names(loss: Loss, y: np.ndarray, validation: bool, steps: bool,
               metrics: Sequence[str] | None = None) -> list[str]:
    """Every key of fit's logs (for checking what a callback monitors)."""
    train = ["loss", *metric_names(loss, y, metrics)]
    return (["step"] if steps else []) + train + ([f"val_{k}" for k in train]
                                                  if validation else [])
