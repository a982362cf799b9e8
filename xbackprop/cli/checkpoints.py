"""`xbackprop train --checkpoint DIR [--resume]`: what the command checks before it trains,
and the library's resume errors in the command's words.

`fit` refuses a resume it cannot honour (`ResumeMismatchError`, `NothingToTrainError`,
`FolderHoldsRunError`) with advice in Python's words ("pass resume=True"); on the command
line the advice names options (`--resume`, `--optimizer adam`, `--epochs 11`). What the
command can know from the folder before training — whether it holds a run, where that run
stands, in which dtype it trains — it checks here first, so a run with nothing left to train
says so instead of printing the old run's results as if it had trained. The command holds
the folder's writer's lock (`FolderLock`) while it checks and trains, so a second
`xbackprop train` on the folder is refused before it loads any data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

from ..checkpoint import CheckpointError, CheckpointManager, checkpoint_info
from ..checkpoint.resume import (
    FolderHoldsRunError,
    NothingToTrainError,
    ResumeMismatchError,
    optimizer_kinds,
    slots_in_words,
)

__all__ = ["Resumption", "plan", "reworded"]


class Resumption(NamedTuple):
    """Where the run in a checkpoint folder stands: its newest readable checkpoint, its step,
    whole epochs done (and steps into the next), and the dtype it trains in ("" unknown)."""

    path: Path
    step: int
    epoch: int
    part: int
    dtype: str

    def where(self) -> str:
        """"epoch 3 (step 12)", or "step 14, in epoch 4" for a run stopped within an epoch."""
        if self.part:
            return f"step {self.step}, in epoch {self.epoch + 1}"
        return f"epoch {self.epoch} (step {self.step})"


def plan(folder: str | None, resume: bool, *, epochs: int, n_train: int, batch_size: int,
         dtype: str | None, exact: bool) -> Resumption | None:
    """The run `--resume` goes on with (None: a new run), checked against the options:
    a folder that holds a run needs `--resume`; the run must have epochs left to train
    (checked where `exact`: one process, whose steps per epoch are known here) and train in
    the `--dtype` asked for (None: the run's own). (`--resume` without `--checkpoint` is
    refused by `train.run` before any job starts.)"""
    if not folder:
        return None
    manager = CheckpointManager(folder)
    newest = manager.latest()
    if newest is None:
        return None
    if not resume:
        raise ValueError(f"--checkpoint {folder} already holds checkpoints (the newest: "
                         f"{newest.name}): add --resume to continue that run, or give "
                         "--checkpoint an empty folder for a new one")
    found = _newest_readable(manager)
    if found is None:
        return None  # fit loads the newest that loads, or says why none does
    path, info = found
    settings = info.metadata.get("fit") if isinstance(info.metadata.get("fit"), dict) else {}
    samples, size = settings.get("samples", n_train), settings.get("batch_size", batch_size)
    spe = -(-int(samples) // max(1, min(int(size), int(samples)))) if samples else 1
    step = info.step or 0
    at = Resumption(path, step, step // spe, step % spe, info.saved_dtype)
    if dtype is not None and at.dtype and dtype != at.dtype:
        raise ValueError(f"cannot resume from {path} with --dtype {dtype}: the run trains in "
                         f"{at.dtype} (a resume keeps the run's dtype). Leave --dtype out to "
                         f"go on in {at.dtype}, or start a new run in {dtype} with another "
                         "--checkpoint folder")
    if exact and "epochs" in settings and epochs * spe <= step:
        past = "past" if epochs * spe < step else "the end of"
        raise ValueError(f"nothing left to train: the run in {folder} is at {at.where()}, "
                         f"{past} the --epochs {epochs} asked for. --epochs "
                         f"counts the whole run when resuming: pass --epochs "
                         f"{at.epoch + 1} or more to train on")
    return at


def _newest_readable(manager: CheckpointManager) -> tuple[Path, Any] | None:
    for path in reversed(manager.checkpoints()):
        try:
            return path, checkpoint_info(path)
        except (CheckpointError, OSError):
            continue
    return None


def reworded(error: ValueError, *, optimizer: str) -> ValueError:
    """fit's resume error `error` with the command's options as its advice; other errors
    as they are. `optimizer`: the --optimizer of this run."""
    if isinstance(error, FolderHoldsRunError):
        return ValueError(f"--checkpoint {error.folder} already holds checkpoints (the "
                          f"newest: {error.newest.name}): add --resume to continue that run, "
                          "or give --checkpoint an empty folder for a new one")
    if isinstance(error, NothingToTrainError):
        option = "--epochs" if error.unit == "epochs" else "--steps"
        return ValueError(f"nothing left to train: the run in {error.path.parent} has done "
                          f"{error.done} {error.unit}, past the {option} {error.asked} asked "
                          f"for. {option} counts the whole run when resuming: pass {option} "
                          f"{error.done + 1} or more to train on")
    if not isinstance(error, ResumeMismatchError):
        return error
    parts = [_difference(key, saved, asked, optimizer)
             for key, saved, asked in error.differences]
    return ValueError(f"cannot resume from {error.path}: " + "; ".join(parts) + ". Resume "
                      "with the run's own options, or give this run another --checkpoint "
                      "folder")


#: the command's option for each setting of a run's resume record
_OPTIONS = {"batch_size": "--batch-size", "seed": "--seed", "dtype": "--dtype",
            "processes": "--num-processes"}


def _difference(key: str, saved: Any, asked: Any, optimizer: str) -> str:
    """One difference between the saved run and this one, with the option that fixes it."""
    if key == "optimizer":
        kinds = optimizer_kinds(saved)
        fix = (f"resume with --optimizer {' or '.join(kinds)} (at any --lr)" if kinds else
               "resume with the run's optimizer")
        return (f"the run's optimizer state holds {slots_in_words(saved)}, which --optimizer "
                f"{optimizer} cannot go on from: {fix}")
    if key in ("model", "loss"):
        return f"the run trained another {key} (was it another job?)"
    if key == "samples":
        return (f"the run trained on {saved} samples, this one has {asked} (other data, or "
                "another number of processes)")
    if key in _OPTIONS:
        return f"the run's {_OPTIONS[key]} was {saved}, this one's is {asked}"
    return f"its {key} was {saved!r}, this run's is {asked!r}"
