"""Sampling from a language model, one token at a time (nanoGPT's `generate`).

    ids = xb.generate(model, params, tokenizer.encode("ROMEO:"), steps=500, top_k=40)
    print(tokenizer.decode(ids))

Each step runs the model (eval mode) on the last `context` tokens, takes the logits of
the last position, divides them by `temperature` (below 1: bolder, more likely tokens;
above 1: more varied), keeps the `top_k` largest if asked, turns them into probabilities
(softmax) and draws the next token from them. The draw happens on the host, in float64,
from a NumPy generator seeded by `seed`, so a seed gives the same text on every backend
(up to ties the backends' rounding breaks differently).

The model must be causal (a GPT, a recurrent net): the output at position t depends on
the inputs up to t only. Compiled backends (JAX) then run one fixed-size window, padded
after the last token (padding cannot reach back), so the model compiles once.

A recurrent net (`xb.language.char_rnn`) has no limit of its own (`max_positions` is
None): give `context`, the window length it was trained on, and each token is predicted
from the last `context` ones read from a zero state, as in training (`xbackprop sample`
does this with the context saved with the model). Without it every step rereads the whole
sequence from its start, a cost that grows with the length; compiled backends pad that
window to the next power of two (at least 16 tokens), so they compile a few times, not
once per token.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .backends import Backend, backend_of, get_backend, to_numpy
from .layers.base import Context, Layer
from .tree import tree_leaves

__all__ = ["generate", "sample_logits", "padded_length"]


def generate(model: Layer, params: Any, prompt_ids: Any, steps: int, temperature: float = 1.0,
             top_k: int | None = None, seed: int = 0, *, model_state: Any = None,
             context: int | None = None) -> np.ndarray:
    """`prompt_ids` followed by `steps` sampled token ids, as NumPy int64.

    prompt_ids: integer ids `(T0,)` (one sequence) or `(B, T0)` (B sequences sampled side
    by side); the result is `(T0 + steps,)` or `(B, T0 + steps)`. The model runs where
    its `params` are, on the last `context` tokens (default: the model's own limit,
    `model.max_positions`, e.g. its PositionEmbedding's max_len; no limit if it has none).
    A prompt longer than the context of a model with a limit of its own is an error (crop
    it yourself to say which part); a model with none (a recurrent net) reads the last
    `context` tokens of it, as of every longer sequence.
    """
    temperature, top_k = _check_sampling(temperature, top_k)
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 0:
        raise ValueError(f"generate: steps is the number of tokens to add, an int >= 0, not "
                         f"{steps!r}")
    ids, single = _prompt(prompt_ids)
    limit = model.max_positions if context is None else int(context)
    if limit is not None and limit < 1:
        raise ValueError(f"generate: context is a positive number of tokens, not {context!r}")
    if limit is not None and ids.shape[1] > limit and model.max_positions is not None:
        raise ValueError(
            f"generate: the prompt has {ids.shape[1]} tokens, more than the model's context of "
            f"{limit}: give at most {limit} (prompt[-{limit}:] keeps the last ones), or a "
            "model with a longer context")
    leaves = tree_leaves(params)
    backend = backend_of(*leaves) if leaves else get_backend(None)
    ctx = Context(train=False, state=model_state)
    rng = np.random.default_rng(seed)
    with backend.scope(), backend.numerics():
        # the step the backend compiles, on windows of one size where it compiles
        step = _window_step(model, backend, ctx)
        logits = step(params, ids if limit is None else ids[:, -limit:], limit)
        _check_vocabulary(ids, logits.shape[-1])
        out = [ids]
        for i in range(steps):
            token = sample_logits(logits, temperature, top_k, rng)
            out.append(token[:, None])
            if i + 1 == steps:
                break
            seq = np.concatenate(out, axis=1)
            window = seq if limit is None else seq[:, -limit:]
            logits = step(params, window, limit)
    result = np.concatenate(out, axis=1)
    return result[0] if single else result


def sample_logits(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                  rng: np.random.Generator | None = None) -> np.ndarray:
    """One token id per row of `logits: (B, V)`, drawn from softmax(logits / temperature)
    restricted to the `top_k` largest (all with None); float64 on the host."""
    temperature, top_k = _check_sampling(temperature, top_k)
    rng = rng if rng is not None else np.random.default_rng()
    z = np.asarray(logits, dtype=np.float64) / temperature
    if top_k is not None and top_k < z.shape[-1]:
        kth = np.partition(z, -top_k, axis=-1)[:, -top_k][:, None]   # the k-th largest
        z = np.where(z < kth, -np.inf, z)
    p = np.exp(z - z.max(axis=-1, keepdims=True))
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(len(z))[:, None] * cdf[:, -1:]                    # inverse CDF
    return np.minimum((cdf <= u).sum(axis=-1), z.shape[-1] - 1).astype(np.int64)


def _window_step(model: Layer, backend: Backend, ctx: Context) -> Any:
    """`(params, window: (B, t) host ids, limit) -> last position's logits (B, V)` on the
    host. Compiled backends pad the window to `limit` tokens (one shape, one compilation)
    and read position t - 1; the others run the window as it is."""
    def logits_of(params: Any, ids: Any) -> Any:
        return model.forward(params, ids, ctx)[0]

    if not backend.compiles:
        return lambda params, window, limit: _last_logits(
            logits_of(params, backend.asarray(window)), None)
    compiled = backend.compile(logits_of)

    def padded(params: Any, window: np.ndarray, limit: int | None) -> np.ndarray:
        t = window.shape[1]
        size = limit if limit is not None else padded_length(t)
        if t < size:   # causal: tokens after t - 1 cannot reach it
            window = np.concatenate([window, np.zeros((window.shape[0], size - t),
                                                      dtype=window.dtype)], axis=1)
        return _last_logits(compiled(params, window), t)
    return padded


def padded_length(t: int) -> int:
    """The window a compiled backend runs for `t` tokens of a model with no context limit:
    the next power of two, at least 16 (a few compilations over a long sample)."""
    return max(16, 1 << (t - 1).bit_length())


def _last_logits(logits: Any, t: int | None) -> np.ndarray:
    """The logits of position t - 1 (the last position with None) as float64 on the host."""
    if len(logits.shape) != 3:
        raise ValueError(f"generate: the model must map ids (B, T) to logits (B, T, vocab), but "
                         f"it gives shape {tuple(logits.shape)}")
    host = np.asarray(to_numpy(logits), dtype=np.float64)
    return host[:, -1 if t is None else t - 1, :]


def _check_vocabulary(ids: np.ndarray, vocab: int) -> None:
    """Prompt ids must be ids the model predicts, [0, vocab) (a compiled model would not
    say: XLA clamps an index out of range)."""
    bad = (ids < 0) | (ids >= vocab)
    if bad.any():
        b, t = (int(i) for i in np.argwhere(bad)[0])
        where = f"position {t}" if ids.shape[0] == 1 else f"position {t} of prompt {b}"
        raise ValueError(f"generate: token id {int(ids[b, t])} at {where} is outside the "
                         f"model's vocabulary of {vocab} ids [0, {vocab}): a prompt encoded by "
                         "another tokenizer? Encode it with the model's own.")


def _prompt(prompt_ids: Any) -> tuple[np.ndarray, bool]:
    """The prompt as (B, T0) int64 host ids, and whether it was one sequence (T0,)."""
    if isinstance(prompt_ids, str):
        raise TypeError("generate: the prompt is token ids, not text: encode it first, e.g. "
                        "tokenizer.encode('ROMEO:')")
    host = np.asarray(to_numpy(prompt_ids))
    if host.dtype.kind not in "iu":
        if host.dtype.kind == "f" and host.size and np.all(host == np.round(host)):
            hint = " (these are whole numbers: prompt.astype('int64'))"
        else:
            hint = ""
        raise TypeError(f"generate: the prompt is integer token ids, not {host.dtype} values"
                        f"{hint}")
    if host.ndim not in (1, 2):
        raise ValueError(f"generate: the prompt is ids (T0,) or a batch of them (B, T0), not "
                         f"shape {host.shape}")
    if host.shape[-1] == 0:
        raise ValueError("generate: the prompt is empty; give at least one token (a newline, "
                         "tokenizer.encode('\\n'), starts a fresh text)")
    return (host[None] if host.ndim == 1 else host).astype(np.int64), host.ndim == 1


def _check_sampling(temperature: Any, top_k: Any) -> tuple[float, int | None]:
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        t = math.nan
    if not (t > 0 and math.isfinite(t)):
        raise ValueError(f"temperature must be a positive number, not {temperature!r}: 1.0 "
                         "samples the model's own distribution, 0.8 plays safer, 1.2 takes more "
                         "risks (for the single most likely token, use top_k=1)")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1 (keep the k most likely tokens) or "
                             f"None (keep all), not {top_k!r}")
        top_k = int(top_k)
    return t, top_k
