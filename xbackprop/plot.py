"""Pictures, one function per picture: matplotlib (the `plot` extra) with the Agg backend, so
they are files and never need a display. matplotlib is imported when a picture is drawn,
never by `import xbackprop`.

Every function takes the numbers to draw and a `path`, writes a PNG there and returns the
path. Every picture has a title, labelled axes, and a legend where there are several series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["plot_history"]

DPI = 120


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("pictures need matplotlib, which is not installed: "
                          "pip install 'xbackprop[plot]'") from e
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _finish(fig: Any, path: str | Path, title: str) -> Path:
    """Title the figure, save it as `path` (a PNG; the folder must exist) and close it."""
    path = Path(path)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"cannot save {path}: the folder {path.parent} does not exist")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI, format="png")
    _pyplot().close(fig)
    return path


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path,
                 title: str = "training history") -> Path:
    """Loss curves (and accuracy curves, if any) per epoch, saved as a PNG at `path`."""
    plt = _pyplot()
    has_acc = "accuracy" in history or "val_accuracy" in history
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 4),
                             squeeze=False)
    for ax, metric in zip(axes[0], ["loss", "accuracy"]):
        for key, style in [(metric, "-"), (f"val_{metric}", "--")]:
            if key in history:
                values = history[key]
                ax.plot(range(1, len(values) + 1), values, style, label=key)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        if metric == "loss" and min(history.get("loss", [1.0])) > 0:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _finish(fig, path, title)


# -- data pictures: classification results and regression fits ------------------------------
__all__ += ["plot_confusion_matrix", "plot_misclassified", "plot_predicted_vs_true"]


def plot_confusion_matrix(matrix: Any, path: str | Path, *, labels: Sequence[str] | None = None,
                          title: str = "confusion matrix") -> Path:
    """`matrix: (K, K)` counts, row = true class, column = predicted class, as a heat map
    coloured by the share of each true class (so small classes show as clearly as large
    ones), every count written in its cell."""
    import numpy as np

    plt = _pyplot()
    counts = np.asarray(matrix)
    k = counts.shape[0]
    names = [str(c) for c in (labels if labels is not None else range(k))]
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.5, 0.5 * k + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    for i in range(k):
        for j in range(k):
            if counts[i, j]:
                ax.text(j, i, str(int(counts[i, j])), ha="center", va="center", fontsize=8,
                        color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), names, rotation=45 if max(map(len, names)) > 2 else 0, ha="right"
                  if max(map(len, names)) > 2 else "center")
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    right = int(np.trace(counts))
    ax.set_title(f"{right} of {int(counts.sum())} right ({right / max(counts.sum(), 1):.1%})",
                 fontsize=10)
    return _finish(fig, path, title)


def plot_misclassified(images: Any, true: Any, pred: Any, path: str | Path, *,
                       labels: Sequence[str] | None = None, limit: int = 40, columns: int = 10,
                       title: str = "misclassified images") -> Path:
    """The first `limit` images whose prediction is wrong, in a grid, each captioned
    "true → predicted". images: (N, H, W) or (N, H·W) square, grey values; true, pred: (N,)
    class indices (all images are given; the wrong ones are picked here)."""
    import numpy as np

    plt = _pyplot()
    images, true, pred = np.asarray(images), np.asarray(true), np.asarray(pred)
    if images.ndim == 2:
        side = int(round(images.shape[1] ** 0.5))
        images = images.reshape(len(images), side, side)
    wrong = np.flatnonzero(true != pred)[:limit]
    columns = max(1, min(columns, len(wrong)))
    rows = max(1, -(-len(wrong) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.2 * columns + 0.4, 1.35 * rows + 0.6),
                             squeeze=False)
    name = (lambda c: str(labels[c])) if labels is not None else str
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), wrong):
        ax.imshow(images[i], cmap="gray_r", interpolation="nearest")
        ax.set_title(f"{name(int(true[i]))} → {name(int(pred[i]))}", fontsize=8,
                     color="firebrick")
    if not len(wrong):
        axes[0, 0].text(0.5, 0.5, "no mistakes", ha="center", va="center")
    fig.text(0.5, 0.005, f"{int((true != pred).sum())} of {len(true)} wrong; first {len(wrong)} "
             "shown, captioned true → predicted", ha="center", va="bottom", fontsize=8)
    return _finish(fig, path, title)


def plot_predicted_vs_true(true: Any, pred: Any, path: str | Path, *, name: str = "target",
                           baseline: float | None = None,
                           title: str = "predicted vs true") -> Path:
    """One output's predictions against the true values, one point per sample, with the
    diagonal where a perfect model's points would lie and (if given) the constant
    `baseline` prediction; RMSE, MAE and R² in the corner. true, pred: (N,) or (N, 1)."""
    import numpy as np

    from .metrics import regression_scores

    plt = _pyplot()
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    scores = regression_scores(p, t)
    fig, ax = plt.subplots(figsize=(5.5, 5.2))
    ax.scatter(t, p, s=14, alpha=0.6, edgecolors="none", label=f"{len(t)} samples")
    low, high = min(t.min(), p.min()), max(t.max(), p.max())
    pad = 0.04 * (high - low or 1.0)
    ax.plot([low - pad, high + pad], [low - pad, high + pad], "k--", lw=1,
            label="perfect: predicted = true")
    if baseline is not None:
        ax.axhline(baseline, color="tab:orange", lw=1.2, label=f"mean predictor ({baseline:.3g})")
    ax.set_xlim(low - pad, high + pad)
    ax.set_ylim(low - pad, high + pad)
    ax.set_aspect("equal")
    ax.set_xlabel(f"true {name}")
    ax.set_ylabel(f"predicted {name}")
    ax.text(0.03, 0.97, f"RMSE {scores['rmse']:.3g}\nMAE  {scores['mae']:.3g}\nR²   "
            f"{scores['r2']:.3f}", transform=ax.transAxes, va="top", family="monospace",
            bbox={"facecolor": "white", "alpha": 0.8, "edgecolor": "0.8"})
    ax.grid(True, alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    return _finish(fig, path, title)
