"""Training a language model on a token array, nanoGPT's way: steps over random windows,
the validation loss every `eval_every` steps, checkpoints that resume exactly.

    data = xb.data.load_tiny_shakespeare()
    model = gpt(data.tokenizer.vocab_size, context=64)
    run = train_language_model(model, data, steps=2000, context=64, batch_size=12,
                               optimizer=gpt_optimizer(2000), report=print)
    run.val_loss          # the last validation loss
    run.history           # {"step": [...], "train_loss": [...], "val_loss": [...]}

A step is `xb.make_train_step` (the whole step compiled on JAX) on the batch
`TokenWindows(data.train, context, batch_size, seed)(step)`, so the data a step sees
depends on the step alone and a resumed run sees what it would have seen. The validation
loss is the mean loss over the same `eval_batches` windows of the validation split every
time (nanoGPT's `estimate_loss`, with fixed windows, so the curve is not noise).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from ..backends import Backend, backend_of, get_backend, to_numpy
from ..checkpoint import CheckpointManager
from ..data.text import CharTokenizer, TextData, TokenWindows
from ..layers.base import Context, Layer
from ..losses import SoftmaxCrossEntropy, targets_checked
from ..model import init_params
from ..optim import Optimizer
from ..train import TrainState, make_train_step
from ..tree import tree_leaves

__all__ = ["LanguageRun", "train_language_model", "estimate_loss"]

Report = Callable[[str], Any]


@dataclasses.dataclass
class LanguageRun:
    """What `train_language_model` returns: the trained state (`state.params`), the curves,
    and the time the steps took (evaluations and checkpoints not counted)."""

    model: Layer
    state: TrainState
    tokenizer: CharTokenizer
    context: int
    history: dict[str, list[float]]   # at every evaluation: step, train_loss, val_loss
    losses: list[float]               # the training loss of every step of this call
    step_seconds: float               # time in train steps (compilation included)
    seconds: float                    # the whole call's wall time
    backend: str

    @property
    def params(self) -> Any:
        return self.state.params

    @property
    def val_loss(self) -> float:
        return self.history["val_loss"][-1] if self.history["val_loss"] else math.nan

    @property
    def ms_per_step(self) -> float:
        return 1e3 * self.step_seconds / max(len(self.losses), 1)


def estimate_loss(model: Layer, params: Any, tokens: np.ndarray, *, context: int,
                  batch_size: int, batches: int, seed: int = 0, model_state: Any = None,
                  loss_fn: Callable | None = None) -> float:
    """The mean loss (softmax cross-entropy per token, eval mode) over `batches` windows
    of `tokens`, drawn by `TokenWindows(tokens, context, batch_size, seed)` at steps 0, 1,
    ...: the same windows on every call. `loss_fn`: a compiled `(params, state, x, y) ->
    loss` to reuse (see `eval_loss_fn`)."""
    source = TokenWindows(tokens, context, batch_size, seed)
    leaves = tree_leaves(params)
    fn = loss_fn or eval_loss_fn(model, backend_of(*leaves) if leaves else get_backend(None))
    total = 0.0
    for i in range(batches):
        x, y = source(i)
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
                         jit: bool = True) -> LanguageRun:
    """Train `model` (ids `(B, context)` -> logits `(B, context, vocab)`) for `steps` steps
    on `data.train`, reporting the train and validation loss every `eval_every` steps and
    at the end (a line to `report` each time).

    The parameters are drawn from `seed` (so are the batches: `TokenWindows(..., seed)`).
    final_eval_batches: the windows of the last evaluation (default: `eval_batches`).
    checkpoint_dir: a checkpoint at every evaluation (the newest two and the best by
    validation loss are kept), with the tokenizer and `metadata` in its record; resume:
    continue from the newest one there, exactly where it stopped.
    """
    started = time.perf_counter()
    target = get_backend(backend)
    say = report or (lambda line: None)
    source = TokenWindows(data.train, context, batch_size, seed)
    manager = CheckpointManager(checkpoint_dir, keep=2, monitor="val_loss") \
        if checkpoint_dir else None
    history: dict[str, list[float]] = {"step": [], "train_loss": [], "val_loss": []}
    record = {"tokenizer": data.tokenizer.to_config(), "context": context,
              **(metadata or {})}
    with target.dtype_scope(dtype), target.scope():
        state = None
        if resume:
            if manager is None:
                raise ValueError("resume continues the run in a checkpoint folder: give "
                                 "checkpoint_dir")
            ckpt = manager.load_latest(target, model=model)
            if ckpt is not None:
                state = ckpt.state
                history = {k: list(ckpt.metadata.get("curves", {}).get(k, []))
                           for k in history}
                say(f"resuming at step {ckpt.step} from {ckpt.path}")
        if state is None:
            params = init_params(model, seed, (context,), dtype=dtype, backend=target)
            state = TrainState.create(params, optimizer, seed=seed)
        step_fn = make_train_step(model, "cross_entropy", optimizer, backend=target, jit=jit,
                                  donate=True)
        loss_fn = eval_loss_fn(model, target)

        def evaluate(state: TrainState, step: int, batches: int, recent: list[Any]) -> None:
            train_loss = float(np.mean([float(to_numpy(v)) for v in recent])) if recent \
                else estimate_loss(model, state.params, data.train, context=context,
                                   batch_size=batch_size, batches=batches, seed=seed + 1,
                                   model_state=state.model_state, loss_fn=loss_fn)
            val = estimate_loss(model, state.params, data.val, context=context,
                                batch_size=batch_size, batches=batches, seed=seed + 1,
                                model_state=state.model_state, loss_fn=loss_fn)
            history["step"].append(step)
            history["train_loss"].append(train_loss)
            history["val_loss"].append(val)
            say(f"step {step:5d}: train loss {train_loss:.4f}, val loss {val:.4f}")
            if manager is not None:
                manager.save(state, model=model, metrics={"val_loss": val},
                             metadata={**record, "curves": history}, input_shape=(context,))

        first = int(to_numpy(state.step))
        if first == 0 and not history["step"]:
            evaluate(state, 0, eval_batches, [])
        losses: list[Any] = []
        recent: list[Any] = []
        step_seconds = 0.0
        for step in range(first, steps):
            t0 = time.perf_counter()
            state, loss = step_fn(state, source(step))
            if target.compiles:
                target.synchronize(loss)
            step_seconds += time.perf_counter() - t0
            losses.append(loss)
            recent.append(loss)
            done = step + 1
            if done % eval_every == 0 or done == steps:
                last = done == steps
                batches = final_eval_batches if last and final_eval_batches else eval_batches
                value = float(to_numpy(loss))
                if not math.isfinite(value):
                    raise FloatingPointError(f"the training loss became {value} at step {done}: "
                                             "lower the learning rate")
                evaluate(state, done, batches, recent)
                recent = []
    return LanguageRun(model, state, data.tokenizer, context, history,
                       [float(to_numpy(v)) for v in losses], step_seconds,
                       time.perf_counter() - started, target.name)
