"""Training a language model on a token array, nanoGPT's way, through `fit`: steps over
random windows, the validation loss every `eval_every` steps, checkpoints that resume
exactly.

    data = xb.data.load_tiny_shakespeare()
    model = gpt(data.tokenizer.vocab_size, context=64)
    run = train_language_model(model, data, steps=2000, context=64, batch_size=12,
                               optimizer=gpt_optimizer(2000), report=print)
    run.val_loss          # the last validation loss
    run.history           # {"step": [...], "train_loss": [...], "val_loss": [...]}

`train_language_model` is a thin layer over `xb.fit`: the training source is
`TokenWindows(data.train, context, batch_size, seed)`, so the batch a step sees depends on
the step alone and a resumed run sees what it would have seen; the validation source is
`TokenWindows(data.val, context, batch_size, seed + 1)`, whose first `eval_batches`
windows fit evaluates every `eval_every` steps (the same windows every time, nanoGPT's
`estimate_loss` with fixed windows, so the curve is not noise). fit brings the compiled
step, the NaN guard (`TrainingDivergedError`), the checkpoints and their exact resume; this
module adds what a language model needs beside them: the evaluation before the first step
(step 0, kept in the checkpoints by the `LossLines` callback), the tokenizer and the
context in every checkpoint (so `xbackprop sample` reads one), the report lines, and a
steadier last evaluation over `final_eval_batches` windows after fit returns.

The training loss of a row of the history is fit's "loss": the mean over the tokens of
the steps since the row before (every batch has as many tokens, so it is the mean of those
steps' losses); at step 0 it is the estimate over `eval_batches` training windows.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import Backend, backend_of, get_backend, to_numpy
from ..callbacks import Callback
from ..checkpoint import CheckpointError, CheckpointManager, checkpoint_info
from ..data.text import CharTokenizer, TextData, TokenWindows
from ..fit import fit
from ..layers.base import Context, Layer
from ..losses import SoftmaxCrossEntropy, targets_checked
from ..model import init_params
from ..optim import Optimizer
from ..train import TrainState
from ..tree import tree_leaves

__all__ = ["LanguageRun", "train_language_model", "estimate_loss", "LossLines"]

Report = Callable[[str], Any]


@dataclasses.dataclass
class LanguageRun:
    """What `train_language_model` returns: the trained state (`state.params`), the curves,
    and the time the steps took (evaluations not counted)."""

    model: Layer
    state: TrainState
    tokenizer: CharTokenizer
    context: int
    history: dict[str, list[float]]   # at every evaluation: step, train_loss, val_loss
    final_val_loss: float | None      # over final_eval_batches windows after the last step
    steps: int                        # the steps this call trained (a resumed run: since)
    step_seconds: float               # time in train steps (compilation included)
    seconds: float                    # the whole call's wall time
    backend: str

    @property
    def params(self) -> Any:
        return self.state.params

    @property
    def val_loss(self) -> float:
        """The last validation loss: the final evaluation's if there was one, else the last
        row's."""
        if self.final_val_loss is not None:
            return self.final_val_loss
        return self.history["val_loss"][-1] if self.history["val_loss"] else math.nan

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.step_seconds / max(self.steps, 1)


def estimate_loss(model: Layer, params: Any, tokens: np.ndarray, *, context: int,
                  batch_size: int, batches: int, seed: int = 0, model_state: Any = None,
                  loss_fn: Callable | None = None) -> float:
    """The mean loss (softmax cross-entropy per token, eval mode) over `batches` windows
    of `tokens`, drawn by `TokenWindows(tokens, context, batch_size, seed)` at steps 0, 1,
    ...: the same windows on every call. `loss_fn`: a compiled `(params, state, x, y) ->
    loss` to reuse (see `eval_loss_fn`)."""
    source = TokenWindows(tokens, context, batch_size, seed)
    leaves = tree_leaves(params)
    backend = backend_of(*leaves) if leaves else get_backend(None)
    fn = loss_fn or eval_loss_fn(model, backend)
    total = 0.0
    for i in range(batches):  # the windows moved to where the parameters are
        x, y = (backend.asarray(a) for a in source(i))
        total += float(to_numpy(fn(params, model_state, x, y)))
    return total / batches


def eval_loss_fn(model: Layer, backend: Backend) -> Callable:
    """`(params, model_state, x, y) -> mean cross-entropy`, eval mode, compiled where the
    backend compiles."""
    loss = SoftmaxCrossEntropy()

    def fn(params: Any, model_state: Any, x: Any, y: Any) -> Any:
        logits = model.forward(params, x, Context(train=False, state=model_state))[0]
        with targets_checked():
            return loss.forward(logits, y)[0]
    return backend.compile(fn)


def train_language_model(model: Layer, data: TextData, *, steps: int, context: int,
                         batch_size: int, optimizer: Optimizer, seed: int = 0,
                         eval_every: int = 250, eval_batches: int = 20,
                         final_eval_batches: int | None = None,
                         backend: str | Backend | None = None, dtype: str = "float32",
                         report: Report | None = None, checkpoint_dir: str | None = None,
                         resume: bool = False, metadata: dict[str, Any] | None = None,
                         jit: bool = True, keep_checkpoints: int = 2) -> LanguageRun:
    """Train `model` (ids `(B, context)` -> logits `(B, context, vocab)`) for `steps` steps
    on `data.train` with `xb.fit`, reporting the train and validation loss before the first
    step, every `eval_every` steps and at the end (a line to `report` each time).

    The parameters are drawn from `seed` (so are the batches: `TokenWindows(..., seed)`).
    final_eval_batches: after the last step, the validation loss again over this many
    windows (the first `eval_batches` of them are the ones evaluated during training), the
    run's `val_loss`; None: the last row's.
    checkpoint_dir: fit's checkpoint at every evaluation (the newest `keep_checkpoints`
    and the best by validation loss are kept), with the tokenizer, the context and
    `metadata` in its record; resume: continue from the newest one there, exactly where it
    stopped (`steps` is then the whole run's count). A loss or gradient that stops being
    finite raises fit's `TrainingDivergedError`, naming the step and the layer.
    """
    started = time.perf_counter()
    target = get_backend(backend)
    say = report or (lambda line: None)
    train = TokenWindows(data.train, context, batch_size, seed)
    val = TokenWindows(data.val, context, batch_size, seed + 1)
    lines = LossLines(say)
    record = {**(metadata or {}), "tokenizer": data.tokenizer.to_config(),
              "context": int(context)}
    with target.dtype_scope(dtype), target.scope():
        loss_fn = eval_loss_fn(model, target)
        found = _latest(checkpoint_dir) if resume and checkpoint_dir else None
        params = None
        if found is not None:
            lines.start = found[0]
            say(f"resuming at step {found[0]} from {found[1]}")
        else:  # a new run: its loss before any step (fit evaluates after steps only)
            params = init_params(model, seed, (context,), dtype=dtype, backend=target)
            lines.first(*(estimate_loss(model, params, tokens, context=context,
                                        batch_size=batch_size, batches=eval_batches,
                                        seed=seed + 1, loss_fn=loss_fn)
                          for tokens in (data.train, data.val)))
        result = fit(model, train, loss="cross_entropy", optimizer=optimizer, steps=steps,
                     seed=seed, params=None if resume else params, validation_data=val,
                     eval_every=eval_every, eval_batches=eval_batches, backend=target,
                     dtype=dtype, progress=False, jit=jit, callbacks=[lines],
                     checkpoint_dir=checkpoint_dir, keep_checkpoints=keep_checkpoints,
                     resume=resume, checkpoint_metadata=record if checkpoint_dir else None)
        state, rows = result.state, result.history
        history = lines.history(rows)
        final = None
        if final_eval_batches and history["step"] and history["step"][-1] == steps:
            final = estimate_loss(model, state.params, data.val, context=context,
                                  batch_size=batch_size, batches=final_eval_batches,
                                  seed=seed + 1, model_state=state.model_state,
                                  loss_fn=loss_fn)
    new = [i for i, s in enumerate(rows.get("step", [])) if s > lines.start]
    return LanguageRun(model, state, data.tokenizer, context, history, final,
                       int(to_numpy(state.step)) - lines.start,
                       float(sum(rows["time"][i] for i in new)),
                       time.perf_counter() - started, target.name)


class LossLines(Callback):
    """The report lines of a language model's training, `step N: train loss ..., val loss
    ...`, one per row of fit's history, and the evaluation before the first step, which
    fit does not make: kept in fit's checkpoints (`state`) so a resumed run's curves start
    at step 0 too."""

    def __init__(self, say: Report) -> None:
        self.say = say
        self.initial: dict[str, float] | None = None
        self.start = 0  # the step this call started from (a resumed run's)

    def first(self, train_loss: float, val_loss: float) -> None:
        self.initial = {"train_loss": train_loss, "val_loss": val_loss}
        self._line(0, train_loss, val_loss)

    def on_logs(self, index: int, logs: dict[str, float], state: Any) -> None:
        self._line(int(logs["step"]), logs["loss"], logs["val_loss"])

    def _line(self, step: int, train_loss: float, val_loss: float) -> None:
        self.say(f"step {step:5d}: train loss {train_loss:.4f}, val loss {val_loss:.4f}")

    def state(self) -> dict[str, Any] | None:
        return {"initial": self.initial}

    def restore(self, saved: dict[str, Any]) -> None:
        self.initial = saved.get("initial")

    def history(self, rows: dict[str, list]) -> dict[str, list[float]]:
        """fit's rows as a language model's curves: step, train_loss, val_loss, from step
        0 (when the evaluation before the first step is known)."""
        head = [self.initial] if self.initial is not None else []
        return {"step": [0] * len(head) + [int(s) for s in rows.get("step", [])],
                "train_loss": [h["train_loss"] for h in head] + list(rows.get("loss", [])),
                "val_loss": [h["val_loss"] for h in head] + list(rows.get("val_loss", []))}


def _latest(checkpoint_dir: str | os.PathLike) -> tuple[int, Path] | None:
    """(step, path) of the newest readable checkpoint in the folder (the one fit resumes
    from), or None when there is none."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    for path in reversed(CheckpointManager(folder).checkpoints()):
        try:
            return int(checkpoint_info(path).step or 0), path
        except CheckpointError:
            continue  # fit skips it too, with a warning
    return None
