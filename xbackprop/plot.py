"""Plots (matplotlib, the `plot` extra): imported only when a plot is asked for."""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def _pyplot():
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError("plots need matplotlib: pip install 'xbackprop[plot]'") from e
    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def plot_history(history: Mapping[str, Sequence[float]], path: str,
                 title: str = "training history") -> str:
    """Loss curves (and accuracy curves, if any) per epoch, saved as an image at `path`."""
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
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
