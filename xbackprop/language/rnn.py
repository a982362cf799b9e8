"""A character-level recurrent language model (Karpathy's char-rnn, 2015) built from
xbackprop's layers, and the optimizer it trains with.

    model = char_rnn(vocab_size=65, cell="lstm", layers=1, width=256)
    optimizer = rnn_optimizer(steps=2000)

The model maps token ids `(B, T)` to logits `(B, T, vocab)`: an embedding of each
character (`width` features), `layers` recurrent layers of `width` hidden units each (RNN,
LSTM or GRU; every step's hidden state goes on to the next layer), and a linear head over
the hidden state at every position. Each window starts from a zero state (the layers are
not stateful), so the model reads exactly what it is trained on: `context` characters and
no more; `xb.generate(..., context=context)` samples it the same way. It has no position
embedding and so no limit of its own on the length it reads (`max_positions` is None).
"""

from __future__ import annotations

from collections.abc import Callable

from ..layers import GRU, LSTM, RNN, Dense, Dropout, Embedding, Layer
from ..model import Sequential
from ..optim import Optimizer, adam, clip_by_global_norm
from ..schedules import warmup_cosine

__all__ = ["CELLS", "char_rnn", "rnn_optimizer"]

#: the recurrent cells by the name the command takes (`--cell`): hidden units -> a layer
CELLS: dict[str, Callable[[int], Layer]] = {"rnn": RNN, "lstm": LSTM, "gru": GRU}


def check_cell(cell: str) -> str:
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {', '.join(sorted(CELLS))} (a tanh RNN, an "
                         f"LSTM or a GRU), not {cell!r}")
    return cell


def char_rnn(vocab_size: int, cell: str = "lstm", layers: int = 1, width: int = 256,
             dropout: float = 0.0) -> Sequential:
    """ids `(B, T)` -> logits `(B, T, vocab_size)` through `layers` recurrent layers of
    `width` units (`cell`: "rnn", "lstm" or "gru"); `dropout` between the layers and
    before the head (char-rnn's place for it)."""
    make = CELLS[check_cell(cell)]
    drop: list[Layer] = [Dropout(dropout)] if dropout else []
    stack: list[Layer] = []
    for _ in range(layers):
        stack += [make(width), *drop]          # h_t of every step, (B, T, width)
    return Sequential([
        Embedding(vocab_size, width),          # each character as a vector
        *stack,
        Dense(vocab_size),                     # next-character logits at every position
    ])


def rnn_optimizer(steps: int, lr: float = 2e-3, min_lr: float = 2e-4, warmup: int = 0,
                  clip: float | None = 1.0) -> Optimizer:
    """Adam at `lr`, decayed along a cosine to `min_lr` at `steps` (after a linear warm-up
    over `warmup` steps, none by default), gradients clipped to a global norm of `clip`
    (None: no clipping): recurrent nets' gradients can explode through time, and clipping
    keeps one such batch from undoing the training."""
    optimizer = adam(warmup_cosine(lr, warmup, steps, end=min_lr))
    return optimizer if clip is None else clip_by_global_norm(optimizer, clip)
