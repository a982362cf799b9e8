"""shakespeare-char: a character-level GPT, built from xbackprop's layers, learns to write
like Tiny Shakespeare (nanoGPT's "baby" configuration: 4 blocks of 4 heads, width 128,
context 64; a smaller one for --quick).

    ids (B, T) → Embedding + PositionEmbedding → 4 × [ x + Attention(LN(x)),
                                                        x + MLP(LN(x)) ]
               → LN → Dense → logits (B, T, 65)

Every position predicts the next character; the loss is the cross-entropy of that
prediction, averaged over the positions (4.17 = ln 65 for a model that knows nothing).
The lesson prints the data and one training window, the model layer by layer with its
parameter counts, a sample before training, the learning curves, a sample after, and
draws: the train and validation loss, every head's attention weights over one line of
text (row t: how much position t takes from each earlier position s ≤ t), and the
learned character embeddings projected to 2-D (their two principal components).

What to look for, after the full 2,000 steps (val loss 1.86): in block 1, heads that read
the character just before (the line under the diagonal) and ones that spread over the last
few; deeper, heads that go back to the start of the word (a column at each space); among
the embeddings, the vowels together (a e i o u beside A E I O U), most letters next to
their capitals, the punctuation apart. The quick run only begins to sort them.

--model PATH shows a model trained and saved before (`xbackprop train shakespeare-char
--save PATH`) instead of training one.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb
from xbackprop import language

SUMMARY = "a character-level GPT on Tiny Shakespeare: attention, embeddings, samples, curves"
GALLERY = "attention.png"  # the picture the README shows
OPTIONS = [
    (("--steps",), {"type": int, "metavar": "N",
                    "help": "training steps (default 2000; 60 with --quick)"}),
    (("--model",), {"metavar": "PATH",
                    "help": "a trained model saved with --save, shown instead of training"}),
]

LINE = "ROMEO:\nBut soft, what light"  # the attention picture's text (short: readable)
SAMPLE_CHARS = 300


@dataclasses.dataclass(frozen=True)
class Result:
    options: language.TextOptions
    summary: str                               # the model, layer by layer
    parameters: int
    window: tuple[str, str]                    # one training pair: x's text and y's
    before: str                                # a sample from the untrained model
    after: str                                 # and from the trained one
    history: dict[str, list[float]]            # step, train_loss, val_loss
    val_loss: float
    seconds: float                             # training time (0 with --model)
    line: str                                  # the text of the attention picture
    attention: list[tuple[str, np.ndarray]]    # (block name, (heads, T, T)) per block
    characters: str                            # the vocabulary, in id order
    embedding_2d: np.ndarray                   # (vocab, 2): the embeddings' principal axes
    backend: str

    def __str__(self) -> str:
        o = self.options
        x, y = self.window
        curve = "\n".join(f"  step {int(s):5d}  train {t:.4f}  validation {v:.4f}"
                          for s, t, v in zip(self.history["step"], self.history["train_loss"],
                                             self.history["val_loss"]))
        trained = (f"trained {int(self.history['step'][-1])} steps on {self.backend} in "
                   f"{self.seconds:.1f} s" if self.seconds else "trained before (--model)")
        return "\n\n".join([
            (f"shakespeare-char: a GPT of {o.layers} blocks, {o.heads} heads, width "
             f"{o.width}, context {o.context}, on {len(self.characters)} distinct characters"),
            (f"one training window (x) and its targets (y: the next character at every "
             f"position):\n  x = {x!r}\n  y = {y!r}"),
            f"the model, layer by layer ({self.parameters:,} parameters):\n{self.summary}",
            f"before training (random weights: any character, in any order):\n{self.before}",
            (f"learning curves (cross-entropy per character; ln {len(self.characters)} = "
             f"{np.log(len(self.characters)):.2f} knows nothing):\n{curve}"),
            f"{trained}; val loss {self.val_loss:.4f}",
            f"after training:\n{self.after}",
        ])


def attention_maps(model: xb.Sequential, params: Any, ids: np.ndarray
                   ) -> list[tuple[str, np.ndarray]]:
    """Every CausalSelfAttention's weights for `ids: (1, T)`, `(heads, T, T)` each, from the
    model's own forward pass: the input each block's attention sees is LN(x) of that block's
    x, so the blocks are walked as the model runs them."""
    maps: list[tuple[str, np.ndarray]] = []
    for i, layer, x, _, _ in model.forward_layers(params, ids):
        block = layer.layer if isinstance(layer, xb.Residual) else None
        if isinstance(block, xb.Sequential):
            h = x
            for sub, p in zip(block.layers, params[i]):
                if isinstance(sub, xb.CausalSelfAttention):
                    maps.append((f"block {len(maps) + 1} (layer {i})",
                                 xb.to_numpy(sub.attention_weights(p, h))[0]))
                h = sub(p, h)
    return maps


def principal_axes(w: np.ndarray) -> np.ndarray:
    """The rows of `w` (vocab, dim) on their two principal axes (vocab, 2)."""
    centred = w - w.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, steps: int | None = None, model: str | None = None) -> Result:
    data = xb.data.load_tiny_shakespeare()
    tokenizer = data.tokenizer
    if quick:
        options = language.TextOptions(layers=2, heads=2, width=32, context=32, steps=60,
                                       warmup=10, lr=3e-3, eval_every=20, eval_batches=4,
                                       final_eval_batches=4)
    else:
        options = language.TextOptions()
    if steps is not None:
        options = dataclasses.replace(options, steps=steps,
                                      warmup=min(options.warmup, max(steps // 10, 0)),
                                      eval_every=min(options.eval_every, steps))
    target = xb.get_backend(backend)
    seconds = 0.0
    if model is not None:
        saved = language.load_language_model(model, target)
        if not isinstance(saved.model, xb.Sequential):
            raise ValueError(f"{model} holds a {type(saved.model).__name__}; the lesson shows a "
                             "GPT, a Sequential (xbackprop train shakespeare-char --save FILE)")
        net, params = saved.model, saved.params
        o = saved.metadata.get("options", {})
        known = {f.name for f in dataclasses.fields(language.TextOptions)}
        options = dataclasses.replace(options, **{k: v for k, v in o.items() if k in known})
        history = {k: list(v) for k, v in saved.metadata.get("curves", {}).items()} or \
            {"step": [], "train_loss": [], "val_loss": []}
        val_loss = language.estimate_loss(net, params, data.val, context=options.context,
                                          batch_size=options.batch_size,
                                          batches=options.final_eval_batches, seed=seed + 1)
    else:
        net = language.gpt(tokenizer.vocab_size, options.context, options.layers,
                           options.heads, options.width)
        trained = language.train_language_model(
            net, data, steps=options.steps, context=options.context,
            batch_size=options.batch_size,
            optimizer=language.gpt_optimizer(options.steps, lr=options.lr,
                                             min_lr=options.min_lr, warmup=options.warmup),
            seed=seed, eval_every=options.eval_every, eval_batches=options.eval_batches,
            final_eval_batches=options.final_eval_batches, backend=target,
            report=(lambda line: print(line, file=sys.stderr)) if progress else None)
        params, history, val_loss, seconds = (trained.params, trained.history,
                                              trained.val_loss, trained.seconds)
    fresh = xb.init_params(net, seed + 7, (options.context,), backend=target)
    newline = tokenizer.encode("\n")
    before = tokenizer.decode(xb.generate(net, fresh, newline, SAMPLE_CHARS, seed=seed)[1:])
    after = tokenizer.decode(xb.generate(net, params, newline, SAMPLE_CHARS, seed=seed)[1:])
    line = LINE[:options.context]
    maps = attention_maps(net, params, target.asarray(tokenizer.encode(line)[None]))
    x, y = xb.data.TokenWindows(data.train, options.context, 1, seed)(0)
    host = xb.to_numpy(params)
    return Result(options, net.summary((options.context,), host), xb.count_params(host),
                  (tokenizer.decode(x[0]), tokenizer.decode(y[0])), before, after,
                  {k: [float(v) for v in vs] for k, vs in history.items()}, float(val_loss),
                  seconds, line, maps, tokenizer.chars, principal_axes(host[0]["W"]),
                  target.name)


def draw(result: Result, out: Path) -> list[Path]:
    h = result.history
    return [
        xb.plot.plot_curves({"training batches (mean since the point before)": h["train_loss"],
                             "validation (the same windows each time)": h["val_loss"]},
                            out / "loss.png", x=h["step"],
                            ylabel="loss (cross-entropy per character)",
                            title=f"shakespeare-char: learning curves (val loss "
                                  f"{result.val_loss:.3f})"),
        xb.plot.plot_attention(result.attention, list(result.line), out / "attention.png",
                               title="shakespeare-char: what each position attends to, "
                                     "head by head"),
        xb.plot.plot_embeddings(result.embedding_2d, list(result.characters),
                                out / "embeddings.png",
                                title="shakespeare-char: the learned character embeddings "
                                      "(two principal axes)"),
    ]
