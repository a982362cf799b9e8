"""A language model saved with its tokenizer, and loaded with it: the model's file is all
`xbackprop sample` needs.

The tokenizer's configuration goes into the file's JSON record (`metadata["tokenizer"]`),
beside the model's configuration and the context length; the arrays are the model's.
A checkpoint written while training (`train_language_model(checkpoint_dir=...)`) carries
the same record, so it loads here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from ..backends import Backend
from ..checkpoint import CheckpointError, checkpoint_info, load_model, save_model
from ..data.text import CharTokenizer
from ..layers.base import Layer

__all__ = ["LanguageModel", "save_language_model", "load_language_model"]


class LanguageModel(NamedTuple):
    model: Layer
    params: Any
    tokenizer: CharTokenizer
    context: int
    metadata: dict[str, Any]


def save_language_model(path: str | os.PathLike, run: Any = None, *, model: Layer | None = None,
                        params: Any = None, tokenizer: CharTokenizer | None = None,
                        context: int | None = None,
                        metadata: dict[str, Any] | None = None) -> Path:
    """Save a trained language model with its tokenizer (atomically): from a `LanguageRun`
    (`run`), or from `model`, `params`, `tokenizer` and `context` given one by one."""
    if run is not None:
        model, params = run.model, run.params
        tokenizer, context = run.tokenizer, run.context
    if model is None or params is None or tokenizer is None or context is None:
        raise ValueError("save_language_model needs a LanguageRun, or model, params, tokenizer "
                         "and context")
    record = {**(metadata or {}), "tokenizer": tokenizer.to_config(), "context": int(context)}
    return save_model(path, model, params, metadata=record, input_shape=(int(context),),
                      loss="cross_entropy")


def load_language_model(path: str | os.PathLike, backend: str | Backend | None = None, *,
                        dtype: Any = None) -> LanguageModel:
    """The model, its parameters (on `backend`), its tokenizer and its context length from
    a file of `save_language_model` or a language model's checkpoint."""
    info = checkpoint_info(path)
    config = info.metadata.get("tokenizer")
    if config is None:
        raise CheckpointError(
            f"{path} holds a model but no tokenizer, so its ids cannot be turned into text: "
            "save language models with xbackprop.language.save_language_model (or "
            "`xbackprop train shakespeare-char --save PATH`)")
    saved = load_model(path, backend, dtype=dtype)
    context = int(info.metadata.get("context") or (info.input_shape or (0,))[0])
    return LanguageModel(saved.model, saved.params, CharTokenizer.from_config(config), context,
                         info.metadata)
