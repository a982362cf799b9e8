"""The history of a `fit` call: one row of logs per epoch, or per evaluation when training
is counted in steps."""

from __future__ import annotations

from pathlib import Path

from ..plot import plot_history

__all__ = ["History"]


class History(dict):
    """Lists by name, one entry per row: `history["loss"]`, `["val_loss"]`, `["accuracy"]`,
    `["time"]` (seconds), and counting in steps `["step"]` (the step count at each row)."""

    def append(self, logs: dict[str, float]) -> None:
        for name, value in logs.items():
            self.setdefault(name, []).append(value)

    def plot(self, path: str | Path, title: str = "training history") -> Path:
        """Save loss (and accuracy) curves to `path` (PNG, needs matplotlib); returns path."""
        return plot_history(self, path, title=title)
