"""What `fit(checkpoint_dir=..., resume=True)` keeps besides the state, in each checkpoint's
metadata, to go on with the same run:

    "fit"               the settings that fix the data order and the rows of the history
                        (samples, batch size, seed, shuffling; counting in epochs or in
                        steps, the evaluation period and the kind of source)
    "unfinished_epoch"  the step statistics since the last row of the history (an epoch, or
                        an evaluation period, cut by Ctrl-C or max_steps), as JSON numbers
                        that read back bit for bit
    "callbacks"         each callback's `state()`, by its place in `callbacks` and class
                        (files of before: "early_stopping", EarlyStopping's counters)

A resume goes on with the run only where it can honour every setting: the same kind of
data and way of counting, the same model, loss, dtype and kind of optimizer state, the same
batch size, seed and shuffling. Anything else is a `ResumeMismatchError` naming the saved
and the asked value of each and what to do (`differences`). Your own records
(`fit(checkpoint_metadata={...})`, a language model's tokenizer) sit beside these under
names of their own. Nothing here knows the loop: it is given the state, the history and the
unfinished rows.
"""

from __future__ import annotations

import functools
import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend
from ..callbacks import Callback, EarlyStopping, History
from ..layers.base import Layer
from ..losses import Loss
from ..optim import OPTIMIZERS, Optimizer, OptState
from ..train import TrainState
from ..tree import tree_paths
from .errors import CorruptCheckpointError
from .files import Checkpoint, checkpoint_info, load_checkpoint, model_difference
from .manager import CheckpointManager

__all__ = ["RunCheckpoints", "ResumeMismatchError", "FolderHoldsRunError",
           "NothingToTrainError", "rows_to_json", "rows_from_json", "differences",
           "mismatch_message", "optimizer_difference", "optimizer_kinds", "slots_in_words",
           "RESERVED_METADATA", "check_user_metadata"]

#: the names of the metadata fit's own records take (a user's metadata may not)
RESERVED_METADATA = ("fit", "unfinished_epoch", "callbacks", "early_stopping")

Rows = list[tuple[int, dict[str, Any]]]

#: the settings of the resume record compared one by one, as a message names them
_SETTINGS = {"samples": "training samples", "batch_size": "batch_size", "seed": "seed",
             "shuffle": "shuffle", "eval_every": "eval_every", "processes": "processes",
             "source": "source"}


class ResumeMismatchError(ValueError):
    """A resume asked for settings the saved run cannot go on with; the message names each
    one, its saved and its asked value, and what to do. `differences`: [(setting, saved,
    asked)]."""

    def __init__(self, message: str, differences: list[tuple[str, Any, Any]],
                 path: Path | None = None) -> None:
        super().__init__(message)
        self.differences = differences
        #: the checkpoint the run would have gone on from
        self.path = path


class FolderHoldsRunError(ValueError):
    """A new run (no resume) given a checkpoint folder that holds another run's checkpoints;
    `folder`, `newest` (the newest file's path)."""

    def __init__(self, message: str, folder: Path, newest: Path) -> None:
        super().__init__(message)
        self.folder, self.newest = folder, newest


class NothingToTrainError(ValueError):
    """A resume asked to train to fewer epochs (or steps) in all than the run has done:
    `path` (the checkpoint), `step`, `asked` (the epochs or steps asked for in all),
    `unit` ("epochs" or "steps") and `done` (whole epochs, or steps, done)."""

    def __init__(self, message: str, *, path: Path, step: int, asked: int, unit: str,
                 done: int) -> None:
        super().__init__(message)
        self.path, self.step, self.asked, self.unit, self.done = path, step, asked, unit, done


class RunCheckpoints:
    """One fit run's checkpoints: a `CheckpointManager` over `directory` (keeping the newest
    `keep` and the best by `monitor`), saved every `every` rows of the history, and the
    resume record (see the module's docstring), with `metadata` of the caller's own in
    every file. `fit` sets `settings` once the data are laid out. (The folder's lock is
    fit's to hold: `FolderLock`.)"""

    def __init__(self, directory: Any, *, every: int, keep: int, monitor: str, mode: str,
                 model: Layer, loss: Loss, input_shape: tuple | None,
                 callbacks: list[Callback], settings: dict[str, Any] | None = None,
                 writer: bool = True, metadata: dict[str, Any] | None = None) -> None:
        self.manager = CheckpointManager(directory, keep=keep, monitor=monitor, mode=mode)
        self.every, self.model, self.loss, self.input_shape = every, model, loss, input_shape
        self.settings: dict[str, Any] = settings or {}
        self.callbacks = callbacks
        self.metadata = dict(metadata or {})
        #: False in every process but the first of several: one writes for all
        self.writer = writer

    def due(self, row: int) -> bool:
        """Whether a checkpoint is due after row `row` (0-based) of the history."""
        return (row + 1) % self.every == 0

    def latest(self) -> Path | None:
        return self.manager.latest()

    def saved_dtype(self) -> str | None:
        """The floating dtype of the newest readable checkpoint's parameters ("float64"),
        from its header; None if there is none."""
        for path in reversed(self.manager.checkpoints()):
            try:
                return checkpoint_info(path).saved_dtype or None
            except (ValueError, OSError):
                continue  # the resume skips it too, with a warning
        return None

    def save(self, state: TrainState, history: History, rows: Rows) -> Path | None:
        """Save `state` with the history so far and `rows`, the statistics of the steps
        since its last row; the metrics of the last row (when no steps are pending) let the
        manager keep the best."""
        if not self.writer:
            return None
        metrics = {k: v[-1] for k, v in history.items()} if history and not rows else None
        metadata = {**self.metadata, "fit": self.settings, "unfinished_epoch": rows_to_json(rows),
                    "callbacks": [{"class": type(cb).__name__, "state": cb.state()}
                                  for cb in self.callbacks]}
        return self.manager.save(state, model=self.model, history=dict(history),
                                 metadata=metadata, metrics=metrics,
                                 input_shape=self.input_shape, loss=self.loss)

    def resume(self, backend: Backend, optimizer: Optimizer, dtype: Any
               ) -> tuple[Checkpoint, History, Rows] | None:
        """The newest checkpoint that loads, its history and its unfinished rows, with the
        callbacks' states restored; None if there is none yet; a ResumeMismatchError if the
        run cannot go on with this call's data or settings (see `differences`)."""
        found = self.manager.load_latest(backend, model=self.model)
        if found is None:
            return None
        problems = differences(found, self.settings, model=self.model, loss=self.loss,
                               optimizer=optimizer, dtype=dtype)
        if problems:
            raise ResumeMismatchError(mismatch_message(found.path, problems),
                                      [(k, a, b) for k, a, b, _ in problems], found.path)
        try:
            rows = rows_from_json(found.metadata.get("unfinished_epoch"))
            self._restore_callbacks(found.metadata, found.path)
            history = History({str(k): [float(x) for x in v]
                               for k, v in (found.history or {}).items()})
        except (TypeError, ValueError, AttributeError, KeyError, IndexError) as e:
            raise CorruptCheckpointError(f"{found.path} is corrupt: its resume record (the "
                                         f"history, an unfinished epoch or a callback's "
                                         f"state) is damaged ({e})") from None
        return found, history, rows

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


def differences(found: Checkpoint, settings: dict[str, Any], *, model: Layer, loss: Loss,
                optimizer: Optimizer, dtype: Any) -> list[tuple[str, Any, Any, str]]:
    """What keeps the run saved in `found` from going on with this call's `settings` (its
    resume record), model, loss, optimizer and dtype (None: the run's own): [(setting,
    saved, asked, what differs and what to do)], empty if it can go on."""
    saved = {"processes": 1, **found.metadata.get("fit", {})}  # 1 unsaid
    asked = {"processes": 1, **settings}
    out: list[tuple[str, Any, Any, str]] = []
    kind = {True: "a batch source", False: "arrays"}
    if ("source" in saved) != ("source" in asked):
        was, now = kind["source" in saved], kind["source" in asked]
        return [("data", was, now, f"the run trained from {was}, this call gives {now}")]
    if "source" not in saved and ("epochs" in saved) != ("epochs" in asked):
        was, now = (("epochs", "steps") if "epochs" in saved else ("steps", "epochs"))
        out.append(("counting", was, now,
                    (f"the run counted in {was} ({was}=...), this call counts in {now} "
                     f"({now}=...); count as the run did")))
    try:
        info = checkpoint_info(found.path)
    except (ValueError, OSError):  # it loaded a moment ago: compare what can be
        info = None
    if info is not None and info.model is not None:
        problem = model_difference(model, info.model)
        if problem is not None:
            out.append(("model", info.model, model, f"it trained another model ({problem})"))
    if info is not None and info.loss is not None:
        problem = model_difference(loss, info.loss)
        if problem is not None:
            out.append(("loss", info.loss, loss, "it trained with another loss ("
                        + problem.replace("the checkpoint's loss", "the run's") + ")"))
    problem = optimizer_difference(found.state, optimizer)
    if problem is not None:
        out.append(("optimizer", found.state.opt_state, optimizer, problem))
    have = found.saved_dtype
    want = None if dtype is None else np.dtype(dtype).name
    if want is not None and have and want != have:
        out.append(("dtype", have, want,
                    (f"the run trains in {have}, this call asks for {want} (leave dtype out "
                     f"to go on in {have}: a resume keeps the run's dtype; to go on in {want}, "
                     f"start a new run in another folder from its state, fit(..., state="
                     f"load_checkpoint(path, dtype={want!r}).state))")))
    if "validation" in saved and saved["validation"] != asked.get("validation"):
        was, now = (("with", "without") if saved["validation"] else ("without", "with"))
        out.append(("validation", saved["validation"], asked.get("validation"),
                    (f"the run trained {was} validation_data, this call {now}, so its "
                     "history's columns would not line up; give validation_data as the run "
                     "did")))
    if "metrics" in asked and saved.get("metrics") != asked["metrics"]:
        # (asked for all where the run kept fewer: fit says so with its own advice)
        was = saved.get("metrics", "all")
        out.append(("metrics", was, asked["metrics"],
                    (f"metrics {was!r} then, {asked['metrics']!r} now: they fix the history's "
                     "columns; pass metrics= as the run did")))
    for key in sorted(set(saved) | set(asked)):
        if key not in _SETTINGS or saved.get(key) == asked.get(key):
            continue
        if key == "eval_every" and any(k == "counting" for k, *_ in out):
            continue  # said already: one counts in epochs
        out.append((key, saved.get(key), asked.get(key),
                    f"{_SETTINGS[key]} {saved.get(key)!r} then, {asked.get(key)!r} now"))
    return out


def mismatch_message(path: Path, problems: list[tuple[str, Any, Any, str]]) -> str:
    """The error for the `differences` of a resume from `path`: the settings that fix the
    data order together, then each other difference with what to do."""
    plain = [p for k, *_, p in problems if k in _SETTINGS]
    other = [p for k, *_, p in problems if k not in _SETTINGS]
    parts = other + ([f"it was made with other data or settings ({', '.join(plain)})"]
                     if plain else [])
    advice = ("Resume with the same data, batch size, seed and shuffling, or start in an "
              "empty checkpoint folder." if not other else
              "Resume with the run's own settings, or start a new run in an empty folder.")
    return f"cannot resume from {path}: " + "; ".join(parts) + ". " + advice


@functools.cache
def _slot_owners() -> dict[tuple[str, ...], list[str]]:
    """The built-in optimizers by the slots they keep (("mu", "nu"): ["adam", "adamw"]), to
    name the kind of optimizer a run's state came from."""
    owners: dict[tuple[str, ...], list[str]] = {}
    probe = {"p": np.zeros(1, np.float32)}
    for name, make in OPTIMIZERS.items():
        state = make().init(probe)
        if isinstance(state, OptState):
            owners.setdefault(tuple(sorted(state.slots)), []).append(name)
    return owners


def optimizer_kinds(opt_state: Any) -> list[str]:
    """The built-in optimizers whose state has the slots of `opt_state` (["adam", "adamw"];
    ["sgd"] for none), to tell a user which optimizer a run can go on with."""
    if not isinstance(opt_state, OptState):
        return []
    return list(_slot_owners().get(tuple(sorted(opt_state.slots)), []))


def slots_in_words(opt_state: Any) -> str:
    """An optimizer state's slots in words: "mu, nu (as adam and adamw keep)"."""
    if not isinstance(opt_state, OptState):
        return f"a {type(opt_state).__name__}"
    names = tuple(sorted(opt_state.slots))
    owners = optimizer_kinds(opt_state)
    what = ", ".join(names) if names else "no slots"
    return what + (f" (as {' and '.join(owners)} {'keep' if len(owners) > 1 else 'keeps'})"
                   if owners else "")


def optimizer_difference(state: TrainState, optimizer: Optimizer) -> str | None:
    """Why `optimizer` cannot go on from `state`'s optimizer state — it keeps other slots,
    or slots of other shapes: a momentum run resumed with Adam would have no moments, an
    Adam run resumed with SGD would drop them — or None if it can."""
    try:
        fresh = optimizer.init(state.params)
    except Exception:  # noqa: BLE001 - an init that fails here fails in fit too, clearly
        return None
    have = [(p, tuple(getattr(a, "shape", ()))) for p, a in tree_paths(state.opt_state)]
    want = [(p, tuple(getattr(a, "shape", ()))) for p, a in tree_paths(fresh)]
    if have == want and type(fresh) is type(state.opt_state):
        return None
    return (f"its optimizer state holds {slots_in_words(state.opt_state)}, but the optimizer "
            f"asked for keeps {slots_in_words(fresh)}, so it cannot go on from that state "
            "(resume with the run's kind of optimizer, at any learning rate; or start a new "
            "run in another folder from the parameters, "
            "fit(..., params=load_checkpoint(path).state.params))")


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


def check_user_metadata(metadata: Any, checkpoint_dir: Any) -> None:
    """checkpoint_metadata checked before any work: a dict of JSON-able values, none under
    a name fit's own records use, with a checkpoint folder to go into."""
    if metadata is None:
        return
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise TypeError(f"checkpoint_metadata is a dict with str keys, not "
                        f"{type(metadata).__name__}")
    if checkpoint_dir is None:
        raise ValueError("checkpoint_metadata goes into fit's checkpoints; pass "
                         "checkpoint_dir=... too")
    taken = sorted(set(metadata) & set(RESERVED_METADATA))
    if taken:
        raise ValueError(f"checkpoint_metadata: {', '.join(map(repr, taken))} "
                         f"{'is a name' if len(taken) == 1 else 'are names'} fit's own "
                         "records use in the checkpoint's metadata; choose another key")
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"checkpoint_metadata must be JSON-able (numbers, strings, lists, "
                        f"dicts): {e}") from None
