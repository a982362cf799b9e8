"""A GPT (Radford et al., 2018, 2019) built from xbackprop's layers, as nanoGPT builds it, and
the optimizer nanoGPT trains it with.

    model = gpt(vocab_size=65, context=64, layers=4, heads=4, width=128)
    optimizer = gpt_optimizer(steps=2000)

The model maps token ids `(B, T)` to logits `(B, T, vocab)`: a token embedding plus a
position embedding, `layers` pre-norm transformer blocks (each `x + attention(LN(x))`
then `x + MLP(LN(x))`, the MLP 4x as wide with a GELU), a final LayerNorm and a linear
head. Weights, embeddings included, start at N(0, 0.02²) and biases at 0, as in GPT-2.
Unlike nanoGPT the head is not tied to the token embedding (xbackprop's parameters are a
tree, not shared objects): 65 · width more parameters for Tiny Shakespeare.
"""

from __future__ import annotations

from ..layers import (
    GELU,
    CausalSelfAttention,
    Dense,
    Dropout,
    Embedding,
    Layer,
    LayerNorm,
    PositionEmbedding,
    Residual,
)
from ..model import Sequential
from ..optim import Optimizer, adamw, clip_by_global_norm
from ..schedules import warmup_cosine

__all__ = ["gpt", "gpt_optimizer", "decays"]


def gpt(vocab_size: int, context: int, layers: int = 4, heads: int = 4, width: int = 128,
        dropout: float = 0.0, bias: bool = False) -> Sequential:
    """nanoGPT's model: ids `(B, T ≤ context)` -> logits `(B, T, vocab_size)`.

    `dropout` as nanoGPT applies it (after the embeddings, on the attention weights, after
    each block's output projection); `bias=False` (nanoGPT's default) leaves out the biases
    of the projections and the shifts of the LayerNorms."""
    if width % heads:
        raise ValueError(f"gpt: {heads} heads do not divide the width {width} (each head takes "
                         f"width / heads features): choose a width that is a multiple of "
                         f"{heads}, or heads among "
                         f"{[h for h in range(1, width + 1) if width % h == 0]}")

    def drop() -> list[Layer]:
        return [Dropout(dropout)] if dropout else []

    def block() -> list[Layer]:
        return [
            Residual(Sequential([LayerNorm(shift=bias),
                                 CausalSelfAttention(heads, dropout, use_bias=bias), *drop()])),
            Residual(Sequential([LayerNorm(shift=bias),
                                 Dense(4 * width, use_bias=bias, weight_init="small_normal"),
                                 GELU(),
                                 Dense(width, use_bias=bias, weight_init="small_normal"),
                                 *drop()])),
        ]

    return Sequential([
        Embedding(vocab_size, width),                    # what each token is
        PositionEmbedding(context, width),               # where it is
        *drop(),
        *[layer for _ in range(layers) for layer in block()],
        LayerNorm(shift=bias),
        Dense(vocab_size, use_bias=bias, weight_init="small_normal"),  # next-token logits
    ])


def decays(path: str, param: object) -> bool:
    """nanoGPT's weight-decay rule: decay the matrices (projections and embeddings), not the
    biases and LayerNorm scales (`decay_mask` of the optimizers)."""
    return len(getattr(param, "shape", ())) >= 2


def gpt_optimizer(steps: int, lr: float = 1e-3, min_lr: float = 1e-4, warmup: int = 100,
                  weight_decay: float = 0.1, betas: tuple[float, float] = (0.9, 0.99),
                  clip: float | None = 1.0) -> Optimizer:
    """nanoGPT's shakespeare_char training: AdamW (β = (0.9, 0.99), weight decay 0.1 on the
    matrices only), a linear warm-up over `warmup` steps to `lr` and a cosine decay to
    `min_lr` at `steps`, gradients clipped to a global norm of `clip` (None: no clipping)."""
    schedule = warmup_cosine(lr, warmup, steps, end=min_lr)
    optimizer = adamw(schedule, b1=betas[0], b2=betas[1], weight_decay=weight_decay,
                      decay_mask=decays)
    return optimizer if clip is None else clip_by_global_norm(optimizer, clip)
