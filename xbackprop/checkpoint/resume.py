"""What `fit(checkpoint_dir=..., resume=True)` keeps besides the state, in each checkpoint's
metadata, to go on with the same run:

    "fit"               the settings that fix the data order and the rows of the history
                        (samples, batch size, seed, shuffling; counting in steps, the
                        evaluation period and the kind of source); a resume with others is
                        refused, naming each
    "unfinished_epoch"  the step statistics since the last row of the history (an epoch, or
                        an evaluation period, cut by Ctrl-C or max_steps), as JSON numbers
                        that read back bit for bit
    "callbacks"         each callback's `state()`, by its place in `callbacks` and class
                        (files of before: "early_stopping", EarlyStopping's counters)

Nothing here knows the loop: it is given the state, the history and the unfinished rows.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend
from ..callbacks import Callback, EarlyStopping, History
from ..layers.base import Layer
from ..losses import Loss
from ..train import TrainState
from .files import load_checkpoint
from .manager import CheckpointManager

__all__ = ["RunCheckpoints", "rows_to_json", "rows_from_json"]

Rows = list[tuple[int, dict[str, Any]]]


class RunCheckpoints:
    """One fit run's checkpoints: a `CheckpointManager` over `directory` (keeping the newest
    `keep` and the best by `monitor`), saved every `every` rows of the history, and the
    resume record (see the module's docstring)."""

    def __init__(self, directory: Any, *, every: int, keep: int, monitor: str, mode: str,
                 model: Layer, loss: Loss, input_shape: tuple | None, settings: dict[str, Any],
                 callbacks: list[Callback], writer: bool = True) -> None:
        self.manager = CheckpointManager(directory, keep=keep, monitor=monitor, mode=mode)
        self.every, self.model, self.loss, self.input_shape = every, model, loss, input_shape
        self.settings, self.callbacks = settings, callbacks
        #: False in every process but the first of several: one writes for all
        self.writer = writer

    def due(self, row: int) -> bool:
        """Whether a checkpoint is due after row `row` (0-based) of the history."""
        return (row + 1) % self.every == 0

    def latest(self) -> Path | None:
        return self.manager.latest()

    def save(self, state: TrainState, history: History, rows: Rows) -> Path | None:
        """Save `state` with the history so far and `rows`, the statistics of the steps
        since its last row; the metrics of the last row (when no steps are pending) let the
        manager keep the best."""
        if not self.writer:
            return None
        metrics = {k: v[-1] for k, v in history.items()} if history and not rows else None
        metadata = {"fit": self.settings, "unfinished_epoch": rows_to_json(rows),
                    "callbacks": [{"class": type(cb).__name__, "state": cb.state()}
                                  for cb in self.callbacks]}
        return self.manager.save(state, model=self.model, history=dict(history),
                                 metadata=metadata, metrics=metrics,
                                 input_shape=self.input_shape, loss=self.loss)

    def resume(self, backend: Backend) -> tuple[TrainState, History, Rows] | None:
        """The newest checkpoint's state, history and unfinished rows, with the callbacks'
        states restored; None if there is none yet; an error if it was made with other data
        or settings."""
        found = self.manager.load_latest(backend, model=self.model)
        if found is None:
            return None
        saved, settings = ({"processes": 1, **d} for d in (found.metadata.get("fit", {}),
                                                          self.settings))  # 1 unsaid
        differ = {k: (saved.get(k), v) for k, v in settings.items()
                  if k not in ("epochs", "steps") and saved.get(k) != v}
        if differ:
            details = ", ".join(f"{k} {a!r} then, {b!r} now" for k, (a, b) in differ.items())
            raise ValueError(f"cannot resume from {found.path}: it was made with other data or "
                             f"settings ({details}). Resume with the same data, batch size, "
                             "seed and shuffling, or start in an empty checkpoint folder.")
        self._restore_callbacks(found.metadata, found.path)
        history = History({k: list(v) for k, v in (found.history or {}).items()})
        return found.state, history, rows_from_json(found.metadata.get("unfinished_epoch"))

    def _restore_callbacks(self, metadata: dict[str, Any], path: Path) -> None:
        saved = metadata.get("callbacks")
        pairs: list[tuple[Callback, Any]]
        if saved is None:  # written before callbacks kept states: early stopping's alone
            old = metadata.get("early_stopping")
            saved = [] if not old else [{"class": "EarlyStopping", "state": old}]
            stoppers = [cb for cb in self.callbacks if isinstance(cb, EarlyStopping)]
            pairs = list(zip(stoppers, saved))
        else:
            pairs = list(zip(self.callbacks, saved))
        for cb, record in pairs:
            if record.get("state") is None:
                continue
            if type(cb).__name__ != record.get("class"):
                warnings.warn(f"{path}: callback {type(cb).__name__} is where the run had a "
                              f"{record.get('class')}; its state is not restored",
                              stacklevel=4)
                continue
            cb.restore(record["state"])

    def best_state(self, backend: Backend) -> TrainState | None:
        """The state of the best checkpoint by the manager's metric, or None."""
        best = self.manager.best()
        return None if best is None else load_checkpoint(best, backend, model=self.model).state


def rows_to_json(rows: Rows) -> list:
    """Host step statistics as JSON: floats written with repr (so they read back bit for
    bit), non-finite ones as strings."""
    def number(v: float) -> Any:
        return v if math.isfinite(v) else repr(v)
    return [[step, {k: [number(float(v)) for v in np.ravel(a)] + [list(np.shape(a))]
                    for k, a in stats.items()}] for step, stats in rows]


def rows_from_json(rows: list | None) -> Rows:
    out = []
    for step, stats in rows or []:
        out.append((int(step), {k: np.asarray([float(v) for v in values[:-1]],
                                              dtype=np.float64).reshape(values[-1])
                                for k, values in stats.items()}))
    return out
