"""Early stopping: stop when a metric of the history stops improving, and keep the best
row's state."""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any

from ..backends import owner_of
from ..tree import tree_map
from .base import Callback

__all__ = ["EarlyStopping"]

#: metrics where larger is better; every other metric (losses, errors) is minimised
_MAXIMISED = ("accuracy", "r2")


@dataclasses.dataclass
class EarlyStopping(Callback):
    """Stop after `patience` epochs in a row in which `monitor` did not improve (as Keras
    counts), and (with `restore_best`) end with the state of the best epoch, not the last.
    Counting in steps, the rows are evaluations: `patience` evaluations, the best one's
    state, and `best_epoch`, `stopped_epoch` number evaluations.

    monitor: a key of fit's logs, e.g. "val_loss" (the default), "val_accuracy", "val_rmse"
    or "loss". mode: "min", "max", or "auto" (max for accuracy and R², min otherwise).
    An improvement must beat the best so far by more than `min_delta`.

    After `fit`, `best_epoch` (0-based), `best` (the monitored value there) and
    `stopped_epoch` (None if training ran to the end) say what happened; `wait` counts the
    rows since the best. `state()` / `restore()` carry these across a resumed run (fit's
    checkpoints); the best state itself comes back from the best checkpoint.
    """

    monitor: str = "val_loss"
    patience: int = 5
    min_delta: float = 0.0
    mode: str = "auto"
    restore_best: bool = True
    best: float | None = dataclasses.field(default=None, init=False)
    best_epoch: int | None = dataclasses.field(default=None, init=False)
    stopped_epoch: int | None = dataclasses.field(default=None, init=False)
    best_state: Any = dataclasses.field(default=None, init=False, repr=False)
    wait: int = dataclasses.field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.patience, int) or self.patience < 1:
            raise ValueError(f"EarlyStopping: patience is a number of epochs >= 1, not "
                             f"{self.patience!r}")
        if self.mode not in ("auto", "min", "max"):
            raise ValueError(f"EarlyStopping: mode must be 'auto', 'min' or 'max', not "
                             f"{self.mode!r}")
        if self.min_delta < 0:
            raise ValueError(f"EarlyStopping: min_delta must be >= 0, not {self.min_delta!r}")

    @property
    def maximise(self) -> bool:
        if self.mode != "auto":
            return self.mode == "max"
        name = self.monitor.removeprefix("val_").split("[")[0]
        return name in _MAXIMISED

    def reset(self) -> None:
        """Forget earlier runs (fit calls this when training starts)."""
        self.best = self.best_epoch = self.stopped_epoch = self.best_state = None
        self.wait = 0

    def check_logs(self, available: list[str]) -> None:
        """Fail before training, not after, when the monitored metric will not exist."""
        if self.monitor not in available:
            hint = (" (validation metrics need validation_data=(x_val, y_val))"
                    if self.monitor.startswith("val_") else "")
            raise ValueError(f"EarlyStopping monitors {self.monitor!r}, which this fit does not "
                             f"report{hint}; choose one of {available}")

    def state(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait,
                "monitor": self.monitor, "maximise": self.maximise}

    def restore(self, saved: dict[str, Any]) -> None:
        """Go on counting from `saved` — if it counted the same metric the same way: a best
        loss restored as a best accuracy would stop the run at the wrong epoch."""
        was = (saved.get("monitor", self.monitor), saved.get("maximise", self.maximise))
        if was != (self.monitor, self.maximise):
            warnings.warn(f"EarlyStopping monitors {self.monitor!r} "
                          f"({'max' if self.maximise else 'min'}) now, but the run's monitored "
                          f"{was[0]!r} ({'max' if was[1] else 'min'}): its count starts afresh "
                          "from this resume", UserWarning, stacklevel=2)
            return
        self.best, self.best_epoch, self.wait = saved["best"], saved["best_epoch"], saved["wait"]

    def on_logs(self, epoch: int, logs: dict[str, float], state: Any) -> bool:
        value = logs[self.monitor]
        if self.best is None:
            improved = not math.isnan(value)
        elif self.maximise:
            improved = value > self.best + self.min_delta
        else:
            improved = value < self.best - self.min_delta
        if improved:
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:  # a copy: later steps update the live state in place
                self.best_state = tree_map(_copy, state)
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False


def _copy(leaf: Any) -> Any:
    owner = owner_of(leaf)
    return leaf if owner is None else owner.xp.asarray(leaf, copy=True)
