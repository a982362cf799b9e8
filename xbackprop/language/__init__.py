"""Language models: a GPT built from the layers, its training on a token array, the named
text jobs of `xbackprop train`, and models saved with their tokenizer.

    from xbackprop import language
    data = xb.data.load_tiny_shakespeare()
    model = language.gpt(data.tokenizer.vocab_size, context=64)
    run = language.train_language_model(model, data, steps=2000, context=64, batch_size=12,
                                        optimizer=language.gpt_optimizer(2000), report=print)
    language.save_language_model("gpt.safetensors", run)
    model, params, tokenizer = language.load_language_model("gpt.safetensors")

Sampling is `xb.generate` (xbackprop/generate.py).
"""

from .gpt import decays, gpt, gpt_optimizer
from .jobs import TEXT_JOBS, TextJob, TextOptions, get_text_job
from .saved import LanguageModel, load_language_model, save_language_model
from .train import LanguageRun, estimate_loss, train_language_model

__all__ = ["gpt", "gpt_optimizer", "decays", "TextJob", "TextOptions", "TEXT_JOBS",
           "get_text_job", "LanguageRun", "train_language_model", "estimate_loss",
           "LanguageModel", "save_language_model", "load_language_model"]
