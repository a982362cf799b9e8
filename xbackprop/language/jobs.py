"""Named text jobs for `xbackprop train NAME`: a language model, its data, its training
settings and the optimizer that reaches the documented loss, a few lines each.

A job builds its model from the vocabulary size and the `TextOptions` (the command line's
--layers, --heads, --width, --context, --cell, ...), and names the model options it reads
(`model_options`): the command refuses the others (`--heads` for a recurrent net), so
another model on the same data is one more entry here:

    TextJob("shakespeare-gru", "a GRU on Tiny Shakespeare", build=my_gru,
            optimizer=my_optimizer, describe=my_settings_line,
            model_options=("layers", "width", "context"),
            defaults=TextOptions(layers=2, width=256, lr=2e-3))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from ..data.text import TextData, load_tiny_shakespeare
from ..model import Sequential
from ..optim import Optimizer
from .gpt import gpt, gpt_optimizer
from .rnn import char_rnn, check_cell, rnn_optimizer

__all__ = ["TextOptions", "TextJob", "TEXT_JOBS", "get_text_job"]


@dataclasses.dataclass(frozen=True)
class TextOptions:
    """The size of a language model and how it trains (nanoGPT's names in comments)."""

    layers: int = 4           # n_layer
    heads: int = 4            # n_head
    width: int = 128          # n_embd
    context: int = 64         # block_size: the longest sequence the model reads
    dropout: float = 0.0
    batch_size: int = 12
    steps: int = 2000         # max_iters (= lr_decay_iters)
    lr: float = 1e-3          # learning_rate, the peak after the warm-up
    min_lr: float = 1e-4
    warmup: int = 100         # warmup_iters
    weight_decay: float = 0.1
    clip: float = 1.0         # grad_clip
    eval_every: int = 250     # eval_interval
    eval_batches: int = 20    # eval_iters
    final_eval_batches: int = 200  # the last evaluation: a steadier figure
    cell: str = "lstm"        # a recurrent net's cell: "rnn", "lstm" or "gru"

    def __post_init__(self) -> None:
        for name in ("layers", "heads", "width", "context", "batch_size", "steps",
                     "eval_every", "eval_batches", "final_eval_batches"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name.replace('_', '-')} must be an int >= 1, not {value!r}")
        if not 0 <= self.warmup < self.steps:
            raise ValueError(f"warmup must be in [0, steps), not {self.warmup} with "
                             f"{self.steps} steps")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), not {self.dropout!r}")
        if not self.lr > 0 or self.min_lr < 0:
            raise ValueError(f"lr must be > 0 and min-lr >= 0 (got {self.lr}, {self.min_lr})")
        check_cell(self.cell)


@dataclasses.dataclass(frozen=True)
class TextJob:
    """A language model to train: `build(vocab_size, options) -> model` (ids (B, T) ->
    logits (B, T, vocab)), `optimizer(options) -> Optimizer`, `data() -> TextData`;
    `describe(options)`: its settings in a line; `model_options`: the fields of
    `TextOptions` that `build` reads (the training ones, steps to clip, every job reads)."""

    name: str
    description: str
    build: Callable[[int, TextOptions], Sequential]  # (the command prints its summary())
    optimizer: Callable[[TextOptions], Optimizer]
    describe: Callable[[TextOptions], str]
    model_options: tuple[str, ...]
    data: Callable[[], TextData] = load_tiny_shakespeare
    defaults: TextOptions = TextOptions()
    #: the validation loss the defaults reach (the job's documented figure), or None
    target_val_loss: float | None = None


def _gpt(vocab_size: int, o: TextOptions) -> Sequential:
    return gpt(vocab_size, o.context, layers=o.layers, heads=o.heads, width=o.width,
               dropout=o.dropout)


def _gpt_optimizer(o: TextOptions) -> Optimizer:
    return gpt_optimizer(o.steps, lr=o.lr, min_lr=o.min_lr, warmup=o.warmup,
                         weight_decay=o.weight_decay, clip=o.clip)


def _gpt_settings(o: TextOptions) -> str:
    return (f"{o.layers} layers, {o.heads} heads, width {o.width}, context {o.context}; batch "
            f"{o.batch_size}, {o.steps} steps, AdamW lr {o.lr:g} -> {o.min_lr:g} (warm-up "
            f"{o.warmup}), weight decay {o.weight_decay:g}, clip {o.clip:g}")


def _rnn(vocab_size: int, o: TextOptions) -> Sequential:
    return char_rnn(vocab_size, o.cell, layers=o.layers, width=o.width, dropout=o.dropout)


def _rnn_optimizer(o: TextOptions) -> Optimizer:
    return rnn_optimizer(o.steps, lr=o.lr, min_lr=o.min_lr, warmup=o.warmup, clip=o.clip)


def _rnn_settings(o: TextOptions) -> str:
    return (f"{o.layers} {o.cell.upper()} layer{'s' * (o.layers != 1)} of {o.width} units, "
            f"context {o.context}; batch {o.batch_size}, {o.steps} steps, Adam lr {o.lr:g} -> "
            f"{o.min_lr:g} (warm-up {o.warmup}), clip {o.clip:g}"
            f"{f', dropout {o.dropout:g}' if o.dropout else ''}")


#: the recurrent net's defaults: an LSTM of 256 units over windows of 64 characters,
#: batches of 32, Adam 2e-3 decayed to 2e-4, gradients clipped to a norm of 1
RNN_DEFAULTS = TextOptions(cell="lstm", layers=1, width=256, context=64, batch_size=32,
                           steps=2000, lr=2e-3, min_lr=2e-4, warmup=0, weight_decay=0.0,
                           clip=1.0)

TEXT_JOBS: dict[str, TextJob] = {j.name: j for j in [
    TextJob("shakespeare-char",
            "a character-level GPT on Tiny Shakespeare (nanoGPT's 'baby' CPU configuration: "
            "4 layers, 4 heads, width 128, context 64)",
            _gpt, _gpt_optimizer, _gpt_settings,
            ("layers", "heads", "width", "context", "dropout"), target_val_loss=1.88),
    TextJob("shakespeare-rnn",
            "a character-level recurrent net on Tiny Shakespeare (char-rnn: --cell lstm, gru "
            "or rnn; 1 LSTM layer of 256 units, context 64, batch 32, Adam)",
            _rnn, _rnn_optimizer, _rnn_settings,
            ("cell", "layers", "width", "context", "dropout"), defaults=RNN_DEFAULTS),
]}


def get_text_job(name: str) -> TextJob:
    try:
        return TEXT_JOBS[name]
    except KeyError:
        raise ValueError(f"unknown text job {name!r}; choose one of "
                         f"{', '.join(sorted(TEXT_JOBS))}") from None
