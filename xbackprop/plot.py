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
