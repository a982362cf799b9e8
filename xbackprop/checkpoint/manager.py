"""A folder of numbered checkpoints, `ckpt-<step>.safetensors`: the newest `keep` and the best
by a metric are kept, the rest of the manager's own files deleted (never any other file).
Writing takes the folder's lock (lock.py: one writer per folder); reading takes none."""

from __future__ import annotations

import contextlib
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

from ..backends import Backend
from ..layers.base import Layer
from ..losses import Loss
from .errors import CheckpointError, CorruptCheckpointError, NotACheckpointError
from .files import Checkpoint, checkpoint_info, load_checkpoint, save_checkpoint
from .lock import FolderLock, checked_folder

__all__ = ["CheckpointManager"]


class CheckpointManager:
    """Numbered checkpoints in one folder, `ckpt-<step>.safetensors`: keeps the newest `keep`
    and the best one by a monitored metric, and deletes the rest of its own files (never any
    other file).

        manager = CheckpointManager("runs/digits", keep=3, monitor="val_loss")
        manager.save(state, model=model, history=history, metrics={"val_loss": 0.21})
        ckpt = manager.load_latest(backend="jax")      # None in an empty folder

    The best score lives in the best file's header, so it survives restarts: a new manager
    on the same folder knows which file is best. monitor=None keeps only the newest files;
    mode "min" (losses) or "max" (accuracy).

    A folder has one writer (`FolderLock`): a `save` takes the folder's lock for its
    duration, and `with manager:` holds it for the block (as `fit` does for its run), so
    another process's save is refused (`FolderInUseError`, naming it) rather than mixed in.
    Making a manager, listing and loading take no lock and change nothing: a reader never
    disturbs a run that is writing (the folder is made by the first save).
    """

    _NAME = re.compile(r"^ckpt-(\d+)\.safetensors$")

    def __init__(self, directory: str | os.PathLike, keep: int = 3, *,
                 monitor: str | None = "val_loss", mode: str = "min") -> None:
        if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
            raise ValueError(f"CheckpointManager: keep must be an int >= 1, not {keep!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"CheckpointManager: mode must be 'min' or 'max', not {mode!r}")
        self.directory = checked_folder(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(f"CheckpointManager: {self.directory} is a file, not a "
                                     "folder")
        self.keep, self.monitor, self.mode = keep, monitor, mode
        #: the folder's writer's lock (held in a `with` block, or during a save)
        self.lock = FolderLock(self.directory)

    def __repr__(self) -> str:
        return (f"CheckpointManager({str(self.directory)!r}, keep={self.keep}, "
                f"monitor={self.monitor!r}, mode={self.mode!r})")

    def __enter__(self) -> CheckpointManager:  # noqa: PYI034 (typing.Self: Python 3.11+)
        """Hold the folder's writer's lock until the block ends (FolderInUseError if
        another process writes there)."""
        self.lock.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.lock.release()

    def path_for(self, step: int) -> Path:
        """Where the checkpoint of `step` goes (zero-padded, so names sort by step)."""
        if int(step) < 0:  # "ckpt--0000001" would be a file the manager never sees again
            raise ValueError(f"CheckpointManager: a state's step counts from 0, not {step}")
        return self.directory / f"ckpt-{int(step):09d}.safetensors"

    def checkpoints(self) -> list[Path]:
        """This manager's files in the folder, oldest step first."""
        if not self.directory.is_dir():  # nothing saved yet
            return []
        found = [(int(m.group(1)), p) for p in self.directory.iterdir()
                 if (m := self._NAME.match(p.name)) and p.is_file()]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The checkpoint with the highest step, or None."""
        files = self.checkpoints()
        return files[-1] if files else None

    def best(self) -> Path | None:
        """The checkpoint with the best finite `monitor` score in its header (the earliest
        of equals), or None if none has one."""
        if self.monitor is None:
            return None
        best_path, best_score = None, math.nan
        for path in self.checkpoints():
            try:
                score = float(checkpoint_info(path).metrics.get(self.monitor, math.nan))
            except (CheckpointError, OSError, TypeError, ValueError):
                continue
            better = score < best_score if self.mode == "min" else score > best_score
            if math.isfinite(score) and (best_path is None or better):
                best_path, best_score = path, score
        return best_path

    def save(self, state: Any, *, model: Layer | None = None,
             history: dict[str, list] | None = None, metadata: dict[str, Any] | None = None,
             metrics: dict[str, float] | None = None,
             input_shape: tuple[int, ...] | None = None,
             loss: Loss | str | None = None) -> Path:
        """Save `state` as the checkpoint of its step (see `save_checkpoint` for the
        arguments), then delete this manager's files beyond the newest `keep` and the best.
        Returns the new file's path. Takes the folder's lock for the save unless it is
        held (FolderInUseError if another process writes there)."""
        took = not self.lock.held
        if took:
            self.lock.acquire()
        try:
            path = save_checkpoint(self.path_for(int(state.step)), state, model=model,
                                   history=history, metadata=metadata, metrics=metrics,
                                   input_shape=input_shape, loss=loss)
            files = self.checkpoints()
            keep = set(files[-self.keep:]) | {self.best(), path}
            for old in files:
                if old not in keep:
                    with contextlib.suppress(FileNotFoundError):
                        old.unlink()
        finally:
            if took:
                self.lock.release()
        return path

    def load_latest(self, backend: str | Backend | None = None, *, model: Layer | None = None,
                    dtype: Any = None) -> Checkpoint | None:
        """The newest checkpoint that loads (see `load_checkpoint`), or None if the folder
        has none. A newest file that cannot be loaded is skipped with a warning naming it
        and why, and the one before it is tried; one that the folder's writer deleted
        meanwhile (rotating its files) is passed over."""
        problems = []
        for path in reversed(self.checkpoints()):
            try:
                found = load_checkpoint(path, backend, model=model, dtype=dtype)
            except FileNotFoundError:
                continue  # rotated away since the listing: an older one is still there
            except (CorruptCheckpointError, NotACheckpointError) as e:
                warnings.warn(f"skipping a checkpoint that cannot be loaded: {e}", stacklevel=2)
                problems.append(str(e))
                continue
            named = int(path.name[5:].partition(".")[0])  # ckpt-<step>.safetensors
            if found.step == named:
                return found
            # renamed or copied over: its step is not the one the order of names says, and
            # a run resumed from it would go back, its own files sorting before this one
            problem = (f"{path} holds step {found.step}, not the step {named} of its name (was "
                       "it renamed?); give it back its name, "
                       f"{self.path_for(found.step).name}, or remove it")
            warnings.warn(f"skipping a checkpoint: {problem}", stacklevel=2)
            problems.append(problem)
        if problems:
            raise CorruptCheckpointError(f"no checkpoint in {self.directory} can be loaded: "
                                         + "; ".join(problems))
        return None

    def load_best(self, backend: str | Backend | None = None, *, model: Layer | None = None,
                  dtype: Any = None) -> Checkpoint | None:
        """The checkpoint with the best `monitor` score (see `best`), or None."""
        path = self.best()
        return None if path is None else load_checkpoint(path, backend, model=model,
                                                         dtype=dtype)
