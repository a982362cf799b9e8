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

import numpy as np

from .atomic import atomic_write
from .backends import to_numpy
from .metrics import regression_scores

__all__ = ["plot_history", "plot_curves", "plot_histories", "plot_fit", "plot_decision_regions",
           "plot_optimizer_paths", "plot_surface", "plot_parallel_coordinates", "plot_filters",
           "plot_feature_maps", "plot_matrices", "plot_network", "plot_confusion_matrix",
           "plot_misclassified", "plot_predicted_vs_true", "plot_attention", "plot_embeddings",
           "plot_through_time", "plot_text_activations"]

Numbers = Sequence[float] | np.ndarray  # a curve's values: a list (a History's) or an array

DPI = 120


def _pyplot() -> Any:
    try:
        import matplotlib  # deferred: matplotlib is heavy and optional (the plot extra)
    except ImportError as e:
        raise ImportError("pictures need matplotlib, which is not installed: "
                          "pip install 'xbackprop[plot]'") from e
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt  # (matplotlib, deferred)

    return plt


def _finish(fig: Any, path: str | Path, title: str) -> Path:
    """Title the figure, save it as `path` (a PNG; the folder must exist) and close it."""
    fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Any, path: str | Path, **options: Any) -> Path:
    """Write the figure to `path` atomically (an old picture stays whole until the new one
    is complete) and close it."""
    path = Path(path)
    if not path.parent.is_dir():
        _pyplot().close(fig)
        raise FileNotFoundError(f"cannot save {path}: the folder {path.parent} does not exist")
    try:
        with atomic_write(path) as f:
            fig.savefig(f, dpi=DPI, format="png", **options)
    finally:
        _pyplot().close(fig)
    return path


def plot_history(history: Mapping[str, Numbers], path: str | Path,
                 title: str = "training history", xlabel: str | None = None) -> Path:
    """Loss curves (and accuracy curves, if any) per epoch — or, for a history counted in
    steps (it has "step"), against the step — saved as a PNG at `path`."""
    plt = _pyplot()
    steps = history.get("step")
    xlabel = xlabel or ("step" if steps else "epoch")
    has_acc = "accuracy" in history or "val_accuracy" in history
    fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5.5, 4),
                             squeeze=False)
    for ax, metric in zip(axes[0], ["loss", "accuracy"]):
        for key, style in [(metric, "-"), (f"val_{metric}", "--")]:
            if key in history:
                values = history[key]
                ax.plot(steps or range(1, len(values) + 1), values, style, label=key)
        ax.set_xlabel(xlabel)
        _whole_numbers(ax)
        ax.set_ylabel(metric)
        if metric == "loss" and min(history.get("loss", [1.0])) > 0:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _finish(fig, path, title)


# -- data pictures: classification results and regression fits ------------------------------


def plot_confusion_matrix(matrix: Any, path: str | Path, *, labels: Sequence[str] | None = None,
                          title: str = "confusion matrix") -> Path:
    """`matrix: (K, K)` counts, row = true class, column = predicted class, as a heat map
    coloured by the share of each true class (so small classes show as clearly as large
    ones), every count written in its cell."""
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
    plt = _pyplot()
    images, true, pred = np.asarray(images), np.asarray(true), np.asarray(pred)
    if images.ndim == 2:
        side = round(images.shape[1] ** 0.5)
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
# -- lessons: curves, fits, decision regions, optimizer paths, networks, CNNs ------------------

#: class colours (matplotlib's tab10), shared by every picture that colours by class
CLASS_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
                 "#7f7f7f", "#bcbd22", "#17becf")


def _host(a: Any) -> Any:
    """Any backend's array (or a nested list) as a NumPy array."""
    return np.asarray(to_numpy(a))


def _class_colour(k: int) -> str:
    return CLASS_COLOURS[k % len(CLASS_COLOURS)]


def _whole_numbers(ax: Any) -> None:
    """Ticks at whole numbers only on the x axis (epochs, steps)."""
    from matplotlib.ticker import MaxNLocator  # (matplotlib, deferred)

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _loss_panel(ax: Any, history: Numbers) -> None:
    """A training-loss curve per epoch on a log scale, beside a picture of the model."""
    ax.plot(range(1, len(history) + 1), _host(history), label="training loss")
    ax.set_xlabel("epoch")
    _whole_numbers(ax)
    ax.set_ylabel("loss")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()


def plot_curves(curves: Mapping[str, Numbers], path: str | Path, *,
                title: str = "training", xlabel: str = "step", ylabel: str = "loss",
                log: bool = False, logx: bool = False, x: Numbers | None = None
                ) -> Path:
    """Line series by name (learning curves, weights over training), on one set of axes;
    `x` gives the positions (default 1, 2, ...); `log`, `logx`: logarithmic y, x axes."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for name, values in curves.items():
        values = _host(values)
        xs = np.arange(1, len(values) + 1) if x is None else _host(x)
        ax.plot(xs, values, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if log:
        ax.set_yscale("log")
    if logx:
        ax.set_xscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _finish(fig, path, title)


def plot_through_time(norms: Mapping[str, Mapping[str, Numbers]], path: str | Path, *,
                      title: str = "the gradient through time",
                      ylabel: str = "‖∂L/∂h_t‖, loss at the last step",
                      floor: float | None = None) -> Path:
    """How far back in time a gradient reaches: `norms[model][stage]` is a norm per step t
    (e.g. ‖∂L/∂h_t‖ for a loss at the last step), drawn against k = T - 1 - t, the steps
    back from the loss, on a log scale; one colour per model, one line style per stage
    ("at initialisation" dashed, "trained" solid, in the order given). `floor`: the bottom
    of the axis (a curve that falls below it leaves the picture); zeros are not drawn."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2))
    styles = ["--", "-", ":", "-."]
    top = 0.0
    for i, (model, stages) in enumerate(norms.items()):
        for j, (stage, values) in enumerate(stages.items()):
            curve = np.asarray(_host(values), dtype=np.float64)[::-1]   # k = 0: the last step
            top = max(top, float(np.max(curve)))
            ax.plot(np.arange(len(curve)), np.where(curve > 0, curve, np.nan),
                    styles[j % 4], color=_class_colour(i), label=f"{model}, {stage}")
    ax.set_yscale("log")
    if floor is not None:
        ax.set_ylim(floor, 3 * top if top > floor else None)
    ax.set_xlabel("k, steps back in time from the loss (h_t with t = T - 1 - k)")
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3, which="major")
    ax.legend(fontsize=8)
    return _finish(fig, path, title)


def plot_text_activations(text: str, activations: Any, path: str | Path, *,
                          rows: Sequence[str] | None = None,
                          title: str = "hidden units over a line of text") -> Path:
    """What hidden units do as a network reads: `activations: (len(text), U)`, one row per
    unit (labelled by `rows`, default "unit 0", "unit 1", ...), one column per character
    of `text` (spaces shown as ␣, newlines as ↵), coloured from -1 (blue) through 0
    (white) to 1 (red)."""
    plt = _pyplot()
    values = _host(activations)
    if values.shape[0] != len(text):
        raise ValueError(f"plot_text_activations: {values.shape[0]} rows of activations for "
                         f"{len(text)} characters; give one row per character")
    names = list(rows) if rows is not None else [f"unit {u}" for u in range(values.shape[1])]
    shown = ["␣" if c == " " else "↵" if c == "\n" else c for c in text]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.16 * len(text) + 2.5),
                                    0.42 * len(names) + 1.6))
    limit = max(1.0, float(np.abs(values).max()))
    image = ax.imshow(values.T, cmap="coolwarm", vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    ax.set_xticks(range(len(text)), shown, fontsize=8, fontfamily="monospace")
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_xlabel("the text, one character per column (read left to right)")
    fig.colorbar(image, ax=ax, fraction=0.03, pad=0.01, label="activation h")
    return _finish(fig, path, title)


def plot_histories(histories: Mapping[str, Mapping[str, Numbers]], path: str | Path, *,
                   title: str = "training histories",
                   metrics: Sequence[str] = ("loss", "val_accuracy")) -> Path:
    """Several training runs overlaid, one panel per metric (e.g. the loss and the validation
    accuracy of one model trained by several optimizers); `histories`: run name -> history."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for i, (name, history) in enumerate(histories.items()):
            if metric in history:
                values = history[metric]
                ax.plot(range(1, len(values) + 1), values, color=_class_colour(i), label=name)
        ax.set_xlabel("epoch")
        _whole_numbers(ax)
        ax.set_ylabel(metric.replace("val_", "validation ").replace("_", " ") if
                      metric.startswith("val_") else f"training {metric}")
        if "loss" in metric:
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    return _finish(fig, path, title)


def plot_fit(x: Any, y: Any, prediction: Any, path: str | Path, *, title: str = "fit",
             curve_x: Any = None, truth: Any = None, train_range: Sequence[float] | None = None,
             history: Numbers | None = None, xlabel: str = "x", ylabel: str = "y"
             ) -> Path:
    """A 1-D regression: the data (x, y) as points, the model's `prediction` as a line at
    `curve_x` (default: at x), the true function `truth` (at the same places) dashed, the
    region outside `train_range` (lo, hi) shaded, and the loss curve beside it if `history`
    is given. Arrays of shape (N,) or (N, 1)."""
    plt = _pyplot()
    x, y = _host(x).ravel(), _host(y).ravel()
    xs = x if curve_x is None else _host(curve_x).ravel()
    order = np.argsort(xs)
    panels = 2 if history is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.5 * panels, 4), squeeze=False)
    ax = axes[0][0]
    if train_range is not None:
        for lo, hi in [(xs.min(), train_range[0]), (train_range[1], xs.max())]:
            if hi > lo:
                ax.axvspan(lo, hi, color="0.92", zorder=0)
        ax.axvspan(0, 0, color="0.92", label="outside the training data")
    ax.scatter(x, y, s=8, color="0.5", label="data", zorder=2)
    if truth is not None:
        ax.plot(xs[order], _host(truth).ravel()[order], "--", color="black", lw=1,
                label="true function", zorder=3)
    ax.plot(xs[order], _host(prediction).ravel()[order], color=_class_colour(3), lw=2,
            label="network", zorder=4)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    if history is not None:
        _loss_panel(axes[0][1], history)
    return _finish(fig, path, title)


def plot_decision_regions(predict: Any, x: Any, y: Any, path: str | Path, *,
                          title: str = "decision regions", bounds: Sequence[float] | None = None,
                          resolution: int = 200, history: Numbers | None = None,
                          annotate: bool = False, class_names: Sequence[str] | None = None
                          ) -> Path:
    """The plane coloured by what the model says, with the points on top (as TensorFlow
    Playground draws it), and the loss curve beside it if `history` is given.

    predict: points (M, 2) NumPy -> scores: (M, K) class scores for K > 1 (regions coloured
    by the arg-max class, paler where the model is less sure), or (M,) / (M, 1) outputs in
    [0, 1] (a heat map with the 0.5 contour as the decision boundary). x: (N, 2) points;
    y: (N,) labels or (N, 1) 0/1 targets; bounds: (x_min, x_max, y_min, y_max), default
    the points' range plus a margin; annotate: write the output next to each point.
    """
    plt = _pyplot()
    x, y = _host(x), _host(y).reshape(len(x), -1)[:, 0]
    labels = np.rint(y).astype(int)
    if bounds is None:
        lo, hi = x.min(axis=0), x.max(axis=0)
        pad = 0.1 * (hi - lo) + 1e-3
        bounds = (lo[0] - pad[0], hi[0] + pad[0], lo[1] - pad[1], hi[1] + pad[1])
    gx = np.linspace(bounds[0], bounds[1], resolution)
    gy = np.linspace(bounds[2], bounds[3], resolution)
    xx, yy = np.meshgrid(gx, gy)
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype(np.float32)
    scores = _host(predict(grid)).reshape(len(grid), -1)
    panels = 2 if history is not None else 1
    fig, axes = plt.subplots(1, panels, figsize=(5.6 * panels + (0.8 if panels == 1 else 0), 4.8),
                             squeeze=False, gridspec_kw={"width_ratios": [1.25, 1][:panels]})
    ax = axes[0][0]
    classes = max(scores.shape[1], int(labels.max()) + 1, 2)
    names = list(class_names) if class_names is not None else [f"class {k}" for k in
                                                               range(classes)]
    if scores.shape[1] == 1:
        out = scores[:, 0].reshape(xx.shape)
        filled = ax.contourf(xx, yy, out, levels=np.linspace(0, 1, 21), cmap="RdBu_r",
                             extend="both", alpha=0.85)
        fig.colorbar(filled, ax=ax, label="network output")
        ax.contour(xx, yy, out, levels=[0.5], colors="black", linewidths=1.5)
        ax.plot([], [], color="black", lw=1.5, label="output 0.5")
        point_colours = ["#08306b", "#67000d"]  # darker than the map beneath them
    else:
        from matplotlib.colors import to_rgb  # (matplotlib, deferred)

        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        best, sure = probs.argmax(axis=1), probs.max(axis=1)
        strength = 0.12 + 0.38 * (sure - 1 / scores.shape[1]) / (1 - 1 / scores.shape[1])
        colours = np.array([to_rgb(_class_colour(k)) for k in range(scores.shape[1])])
        rgb = 1 - strength[:, None] * (1 - colours[best])
        ax.imshow(rgb.reshape(*xx.shape, 3), origin="lower", extent=tuple(bounds),
                  aspect="auto", interpolation="bilinear")
        point_colours = [_class_colour(k) for k in range(classes)]
    for k in range(classes):
        members = labels == k
        if members.any():
            ax.scatter(x[members, 0], x[members, 1], s=70 if annotate else 16,
                       marker="os^DvP*"[k % 7] if annotate else "o",
                       color=point_colours[k % len(point_colours)],
                       edgecolors="white" if annotate else "0.2",
                       linewidths=1.2 if annotate else 0.5, label=names[k], zorder=3)
    if annotate:
        own = _host(predict(x.astype(np.float32))).reshape(len(x), -1)
        middle = ((bounds[0] + bounds[1]) / 2, (bounds[2] + bounds[3]) / 2)
        for (px, py), value in zip(x, own):
            text = f"{value[0]:.3f}" if own.shape[1] == 1 else str(int(value.argmax()))
            right, up = px <= middle[0], py <= middle[1]  # labels point inwards
            ax.annotate(text, (px, py), textcoords="offset points",
                        xytext=(9 if right else -9, 9 if up else -9),
                        ha="left" if right else "right", va="bottom" if up else "top",
                        fontsize=9, bbox={"boxstyle": "round,pad=0.2", "fc": "white",
                                          "alpha": 0.85})
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=min(classes + 1, 5),
              fontsize=8, frameon=False)
    if history is not None:
        _loss_panel(axes[0][1], history)
    return _finish(fig, path, title)


def _grid_values(f: Any, bounds: Sequence[float], resolution: int) -> tuple[Any, Any, Any]:
    """f on a grid: `f(np.stack([X, Y]))`, so a function written with p[0] and p[1] works."""
    xx, yy = np.meshgrid(np.linspace(bounds[0], bounds[1], resolution),
                         np.linspace(bounds[2], bounds[3], resolution))
    return xx, yy, _host(f(np.stack([xx, yy])))


def plot_optimizer_paths(f: Any, paths: Mapping[str, Any], path: str | Path, *,
                         title: str = "optimizer paths", bounds: Sequence[float] = (-2, 2, -1, 3),
                         minimum: Sequence[float] | None = None, log: bool = True,
                         resolution: int = 300) -> Path:
    """A contour map of f(x, y) with the path each optimizer took across it.

    f: evaluated on `np.stack([X, Y])` (shape (2, H, W)), so `lambda p: p[0]**2 + p[1]**2`
    works; paths: name -> points (T, 2) (e.g. `xb.optim.minimize(...).points`); log:
    contour levels spaced logarithmically (for valleys like Rosenbrock's); minimum: marked.
    """
    plt = _pyplot()
    xx, yy, zz = _grid_values(f, bounds, resolution)
    fig, ax = plt.subplots(figsize=(6.8, 5.2))
    if log:
        from matplotlib.colors import LogNorm  # (matplotlib, deferred)

        low = max(float(zz.min()), 1e-5 * float(zz.max()), 1e-12)
        levels = np.logspace(np.log10(low), np.log10(float(zz.max())), 25)
        filled = ax.contourf(xx, yy, np.maximum(zz, low), levels=levels, norm=LogNorm(),
                             cmap="viridis", alpha=0.75)
    else:
        filled = ax.contourf(xx, yy, zz, levels=25, cmap="viridis", alpha=0.75)
    fig.colorbar(filled, ax=ax, label="f(x, y)", format="%.3g")
    for i, (name, points) in enumerate(paths.items()):
        points = _host(points)
        last = float(_host(f(points[-1])))
        ax.plot(points[:, 0], points[:, 1], "-", color=_class_colour(i), lw=1.8,
                label=f"{name} (f = {last:.3g})")
        ax.plot(points[-1, 0], points[-1, 1], "o", color=_class_colour(i), ms=5,
                markeredgecolor="white")
    start = _host(next(iter(paths.values())))[0]
    ax.plot(*start, "s", color="white", markeredgecolor="black", ms=7, label="start")
    if minimum is not None:
        ax.plot(*minimum, "*", color="gold", markeredgecolor="black", ms=14, label="minimum")
    ax.set_xlim(bounds[0], bounds[1])
    ax.set_ylim(bounds[2], bounds[3])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.legend(fontsize=8, loc="best", framealpha=0.85)
    return _finish(fig, path, title)


def plot_surface(f: Any, paths: Mapping[str, Any], path: str | Path, *,
                 title: str = "loss surface", bounds: Sequence[float] = (-2, 2, -1, 3),
                 log: bool = True, resolution: int = 80) -> Path:
    """f(x, y) as a 3-D surface with each optimizer's path drawn on it (f as in
    `plot_optimizer_paths`); log: height log10(1 + f), so a steep function stays readable."""
    plt = _pyplot()
    xx, yy, zz = _grid_values(f, bounds, resolution)

    def height(z: Any) -> Any:
        return np.log10(1 + z) if log else z

    fig = plt.figure(figsize=(7, 5.4))
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(xx, yy, height(zz), cmap="viridis", alpha=0.45, linewidth=0,
                    antialiased=True, rcount=resolution, ccount=resolution)
    for i, (name, points) in enumerate(paths.items()):
        points = _host(points)
        inside = ((points[:, 0] >= bounds[0]) & (points[:, 0] <= bounds[1]) &
                  (points[:, 1] >= bounds[2]) & (points[:, 1] <= bounds[3]))
        pts = points[inside]
        z = height(_host(f(pts.T)))
        ax.plot(pts[:, 0], pts[:, 1], z, color=_class_colour(i), lw=2, label=name, zorder=5)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("log₁₀(1 + f)" if log else "f(x, y)")
    ax.view_init(elev=38, azim=-115)
    ax.legend(fontsize=8, loc="upper left")
    return _finish(fig, path, title)


def plot_parallel_coordinates(layers: Sequence[tuple[str, Any]], labels: Any, path: str | Path,
                              *, title: str = "activations, layer by layer",
                              unit_names: Sequence[Sequence[str]] | None = None,
                              class_names: Sequence[str] | None = None,
                              max_lines: int = 600) -> Path:
    """A network seen in parallel coordinates: one vertical axis per unit, grouped by layer
    (left to right, input to output), one line per sample through its activations,
    coloured by its class.

    layers: (layer name, activations (N, units)) in order; labels: (N,) classes. Each
    axis is scaled to its own range, so a line's height is where that sample sits among
    all samples on that unit. At most `max_lines` samples are drawn (evenly chosen).
    """
    from matplotlib.collections import LineCollection  # (matplotlib, deferred)

    plt = _pyplot()
    labels = _host(labels).astype(int)
    blocks = [(name, _host(a).reshape(len(labels), -1)) for name, a in layers]
    positions, ticks, starts, x = [], [], [], 0.0
    for b, (name, acts) in enumerate(blocks):
        starts.append(x)
        for u in range(acts.shape[1]):
            positions.append(x)
            ticks.append(unit_names[b][u] if unit_names is not None else f"{u}")
            x += 1.0
        x += 0.8  # a gap between layers
    values = np.concatenate([a for _, a in blocks], axis=1)
    lo, hi = values.min(axis=0), values.max(axis=0)
    scaled = (values - lo) / np.where(hi > lo, hi - lo, 1.0)
    keep = np.unique(np.linspace(0, len(labels) - 1, min(max_lines, len(labels))).astype(int))
    fig, ax = plt.subplots(figsize=(max(7.0, 0.42 * len(positions) + 2), 4.8))
    xs = np.array(positions)
    order = np.random.default_rng(0).permutation(keep)  # no class painted over the others
    ax.add_collection(LineCollection([np.stack([xs, scaled[i]], axis=1) for i in order],
                                     colors=[_class_colour(k) for k in labels[order]],
                                     alpha=0.18, linewidths=0.8))
    for k in range(int(labels.max()) + 1):
        name = class_names[k] if class_names is not None else f"class {k}"
        ax.plot([], [], color=_class_colour(k), label=name)
    for p in positions:
        ax.axvline(p, color="0.3", lw=0.6, zorder=0)
    for (name, acts), start in zip(blocks, starts):
        ax.text(start + (acts.shape[1] - 1) / 2, 1.06, name, ha="center", va="bottom",
                fontsize=9, transform=ax.get_xaxis_transform())
    ax.set_xticks(positions)
    ax.set_xticklabels(ticks, fontsize=7, rotation=90 if len(positions) > 24 else 0)
    ax.set_xlim(positions[0] - 0.5, positions[-1] + 0.5)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("unit (axes grouped by layer)")
    ax.set_ylabel("activation, scaled to each unit's range")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return _finish(fig, path, title)


def plot_filters(weights: Any, path: str | Path, *, title: str = "learned filters",
                 channel: int = 0) -> Path:
    """A convolution's kernels as small images: weights (C_out, C_in, KH, KW), input channel
    `channel`, one panel per output channel, on one colour scale centred at 0."""
    plt = _pyplot()
    w = _host(weights)[:, channel]
    n = w.shape[0]
    cols = min(n, 8)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.35 * cols + 1.2, 1.6 * rows + 1.0),
                             squeeze=False)
    limit = float(np.abs(w).max()) or 1.0
    image = None
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k < n:
            image = ax.imshow(w[k], cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"filter {k}", fontsize=8)
            ax.set_xlabel("column", fontsize=7)
            if k % cols == 0:
                ax.set_ylabel("row", fontsize=7)
        else:
            ax.axis("off")
    fig.colorbar(image, ax=axes, shrink=0.85, label="weight")
    fig.suptitle(title)
    return _finish_loose(fig, path)


def plot_feature_maps(stages: Sequence[tuple[str, Any]], path: str | Path, *,
                      title: str = "feature maps", max_maps: int = 8) -> Path:
    """What one image becomes layer by layer: stages (name, maps (C, H, W) or (H, W)), one
    row per stage, one panel per channel (the first `max_maps`)."""
    plt = _pyplot()
    rows = [(name, _host(m).reshape((-1,) + _host(m).shape[-2:])) for name, m in stages]
    cols = min(max(m.shape[0] for _, m in rows), max_maps)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.3 * cols + 1.6, 1.35 * len(rows) + 0.6),
                             squeeze=False)
    for r, (name, maps) in enumerate(rows):
        for c in range(cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < maps.shape[0]:
                ax.imshow(maps[c], cmap="magma")
                if r == len(rows) - 1 or c >= rows[r + 1][1].shape[0]:
                    ax.set_xlabel(f"ch {c}", fontsize=7)
            else:
                ax.axis("off")
        axes[r][0].set_ylabel(f"{name}\n{maps.shape[-2]}×{maps.shape[-1]}", fontsize=8,
                              rotation=0, ha="right", va="center")
    fig.supxlabel("channel")
    fig.suptitle(title)
    return _finish_loose(fig, path)


def plot_matrices(matrices: Mapping[str, Any], path: str | Path, *, title: str = "matrices",
                  block: int | None = None, fmt: str = "{:.2g}") -> Path:
    """Small 2-D arrays side by side as annotated heat maps (e.g. an input and where two
    pooling layers send its gradient); block: draw a grid line every `block` cells."""
    plt = _pyplot()
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.3 * n, 4.0), squeeze=False)
    for ax, (name, m) in zip(axes[0], matrices.items()):
        m = _host(m)
        limit = float(np.abs(m).max()) or 1.0
        ax.imshow(m, cmap="PuOr", vmin=-limit, vmax=limit)
        for (i, j), v in np.ndenumerate(m):
            ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=9,
                    color="white" if abs(v) > 0.6 * limit else "black")
        if block:
            for k in range(block, max(m.shape), block):
                ax.axhline(k - 0.5, color="black", lw=1.5)
                ax.axvline(k - 0.5, color="black", lw=1.5)
        ax.set_xticks(range(m.shape[1]))
        ax.set_yticks(range(m.shape[0]))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
        ax.set_title(name, fontsize=10)
    return _finish(fig, path, title)


def plot_network(record: Any, path: str | Path, *, title: str = "one step of backprop",
                 precision: int = 4) -> Path:
    """A small dense network as a diagram of one training step (an `xb.explain` record):
    each unit with its weighted sum, its activation and its delta δ = ∂L/∂(weighted sum);
    each connection with its weight, its gradient and, after an update, its new value.
    For networks of Dense layers (each optionally followed by an elementwise activation)
    with at most 6 units per layer; sample 0 of the record."""
    plt = _pyplot()
    columns = _network_columns(record)
    dx, dy = 4.0, 2.0  # column and row spacing
    height = max(len(c["units"]) for c in columns)
    fig, ax = plt.subplots(figsize=(3.3 * len(columns) + 1, 1.5 * height + 1.6))
    p = precision

    def place(col: int, unit: int) -> tuple[float, float]:
        return dx * col, dy * ((len(columns[col]["units"]) - 1) / 2 - unit)

    for c, column in enumerate(columns[1:], start=1):
        sources = len(columns[c - 1]["units"])
        for (i, j), info in column["edges"].items():
            (x0, y0), (x1, y1) = place(c - 1, i), place(c, j)
            ax.plot([x0, x1], [y0, y1], color="0.6", lw=1, zorder=1)
            t = (i + 1) / (sources + 1)  # labels of different sources at different places
            text = f"{info['name']} {info['value']:.{p}g}"
            if "new" in info:
                text += f" → {info['new']:.{p}g}"
            text += f"\n∂ {info['grad']:+.{p}g}"
            ax.text(x0 + t * (x1 - x0), y0 + t * (y1 - y0), text, fontsize=7.5, ha="center",
                    va="center", zorder=3,
                    bbox={"boxstyle": "round,pad=0.25", "fc": "#fff8e6", "ec": "#e0c080"})
    for c, column in enumerate(columns):
        for u, unit in enumerate(column["units"]):
            x, y = place(c, u)
            ax.add_patch(plt.Circle((x, y), 0.62, fc="#dbe9f6" if c else "#e8e8e8",
                                    ec="#1f4e79", lw=1.4, zorder=2))
            lines = [unit["name"]]
            if "net" in unit:
                lines.append(f"net {unit['net']:.{p}g}")
            lines.append(f"out {unit['value']:.{p}g}" if c else f"{unit['value']:.{p}g}")
            if "delta" in unit:
                lines.append(f"δ {unit['delta']:+.{p}g}")
            ax.text(x, y, "\n".join(lines), ha="center", va="center", fontsize=8, zorder=4)
    ax.set_xlim(-0.9, dx * (len(columns) - 1) + 0.9)
    ax.set_ylim(-dy * (height - 1) / 2 - 0.9, dy * (height - 1) / 2 + 0.9)
    ax.set_aspect("equal")
    ax.set_xticks([dx * c for c in range(len(columns))])
    ax.set_xticklabels([c["title"] for c in columns])
    ax.set_yticks([])
    loss = record.names.get("loss", "L")
    ax.set_xlabel(f"layer  ({loss} = {record.loss:.{p + 2}g};  δ = ∂{loss}/∂net,  "
                  f"∂ = ∂{loss}/∂w,  → the weight after the update)")
    ax.set_ylabel("units")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    return _finish(fig, path, title)


def _network_columns(record: Any) -> list[dict]:
    """The diagram's columns from an explain record: the input, then one per Dense layer
    (merged with the elementwise activation after it), for sample 0."""
    columns: list[dict[str, Any]] = [{"title": "input", "edges": {},
                "units": [{"name": record.label("input", (i,)), "value": float(v)}
                          for i, v in enumerate(record.input[0].ravel())]}]
    for step in record.layers:
        weights = step.params.get("W")
        if weights is not None and weights.ndim == 2:
            if weights.shape[1] > 6 or weights.shape[0] > 6:
                raise ValueError(f"plot_network draws layers of at most 6 units; layer "
                                 f"{step.name} has {weights.shape[0]} -> {weights.shape[1]}")
            key = str(step.index)
            edges = {}
            for (i, j), w in np.ndenumerate(weights):
                edges[(i, j)] = {"name": record.label(f"{key}.W", (i, j)), "value": float(w),
                                 "grad": float(step.grads["W"][i, j])}
                if step.new_params is not None:
                    edges[(i, j)]["new"] = float(step.new_params["W"][i, j])
            units = [{"name": record.label(key, (j,)), "net": float(step.y[0, j]),
                      "value": float(step.y[0, j]), "delta": float(step.dy[0, j])}
                     for j in range(weights.shape[1])]
            columns.append({"title": f"{type(step.layer).__name__}({weights.shape[1]})",
                            "edges": edges, "units": units})
        elif step.layer.elementwise and len(columns) > 1:
            column = columns[-1]
            column["title"] += f" → {type(step.layer).__name__}"
            for j, unit in enumerate(column["units"]):
                unit["value"] = float(step.y[0, j])
                unit["name"] = record.label(str(step.index), (j,))
        else:
            raise ValueError(f"plot_network draws Dense layers and elementwise activations, not "
                             f"{step.name}")
    return columns


def _finish_loose(fig: Any, path: str | Path) -> Path:
    """Save without tight_layout (for figures with colour bars spanning several axes)."""
    return _save(fig, path, bbox_inches="tight")


# -- language models -----------------------------------------------------------------------


def _char_label(c: str) -> str:
    """A character as a tick or point label: the invisible ones made visible."""
    return {"\n": "⏎", " ": "␣", "\t": "⇥"}.get(c, c)


def plot_attention(maps: Sequence[tuple[str, Any]], tokens: Sequence[str], path: str | Path, *,
                   title: str = "attention weights") -> Path:
    """Attention weights over one sequence: a row of panels per block (`maps`: name ->
    (heads, T, T)), one panel per head; row t of a panel is how much position t takes from
    each position s (columns), the tokens written along both axes. The future (s > t), which
    causal attention cannot see, is left blank; colours follow √weight, so small weights
    still show."""
    plt = _pyplot()
    from matplotlib.colors import PowerNorm  # (matplotlib is imported when drawing)

    heads = max(_host(m).shape[0] for _, m in maps)
    fig, axes = plt.subplots(len(maps), heads, figsize=(3.1 * heads, 3.1 * len(maps) + 0.4),
                             squeeze=False)
    labels = [_char_label(t) for t in tokens]
    size = 7 if len(labels) <= 32 else 5 if len(labels) <= 48 else 4
    cmap = plt.get_cmap("viridis").with_extremes(bad="white")
    image = None
    for row, (name, m) in enumerate(maps):
        m = _host(m)
        for h in range(heads):
            ax = axes[row, h]
            if h >= m.shape[0]:
                ax.axis("off")
                continue
            t = m.shape[-1]
            future = np.triu(np.ones((t, t), dtype=bool), k=1)   # masked: drawn blank
            image = ax.imshow(np.ma.masked_where(future, m[h]), cmap=cmap,
                              norm=PowerNorm(0.5, vmin=0.0, vmax=1.0))
            ticks = range(len(labels))
            ax.set_xticks(ticks)
            ax.set_yticks(ticks)
            ax.set_xticklabels(labels if row == len(maps) - 1 else [], fontsize=size)
            ax.set_yticklabels(labels if h == 0 else [], fontsize=size)
            ax.tick_params(length=0)
            ax.set_title(f"{name}, head {h + 1}", fontsize=9)
        axes[row, 0].set_ylabel("position t (query)", fontsize=8)
    for ax in axes[-1]:
        ax.set_xlabel("position s it reads (key)", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    if image is not None:
        fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label="weight")
    return _save(fig, path)


def plot_embeddings(points: Any, labels: Sequence[str], path: str | Path, *,
                    title: str = "embeddings", xlabel: str = "first principal axis",
                    ylabel: str = "second principal axis") -> Path:
    """Token embeddings in 2-D (`points: (vocab, 2)`, e.g. their two principal axes), each
    drawn as its character: capitals, lower case, digits and the rest in four colours."""
    plt = _pyplot()
    points = _host(points)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    kinds = [("capitals", str.isupper), ("lower case", str.islower), ("digits", str.isdigit),
             ("space, punctuation", lambda c: True)]
    seen = set()
    for (x, y), c in zip(points, labels):
        k = next(i for i, (_, test) in enumerate(kinds) if test(c))
        ax.text(x, y, _char_label(c), color=_class_colour(k), fontsize=11, ha="center",
                va="center", fontweight="bold")
        if k not in seen:  # one legend entry per kind
            ax.scatter([], [], color=_class_colour(k), label=kinds[k][0])
            seen.add(k)
    pad = 0.08 * (points.max(axis=0) - points.min(axis=0) + 1e-12)
    ax.set_xlim(points[:, 0].min() - pad[0], points[:, 0].max() + pad[0])
    ax.set_ylim(points[:, 1].min() - pad[1], points[:, 1].max() + pad[1])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _finish(fig, path, title)
