"""`xbackprop sample MODEL`: text from a language model saved with its tokenizer.

    xbackprop sample gpt.safetensors --prompt "ROMEO:" --tokens 500 [--temperature 0.8]
                     [--top-k 40] [--seed 1] [--backend jax]

MODEL is a file of `xbackprop train shakespeare-char --save PATH` (or
`xbackprop.language.save_language_model`), or a checkpoint of such a run.
"""

from __future__ import annotations

import argparse
import sys

from .. import backends
from ..generate import generate
from ..language import load_language_model
from . import add_backend_option, count, seed


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate text from a saved language model",
                       description="Print the prompt and the text the model writes after it, "
                       "one character at a time.")
    p.add_argument("model", metavar="MODEL", help="a language model saved with --save")
    p.add_argument("--prompt", default="\n",
                   help="the text to continue (default: a newline, a fresh start)")
    p.add_argument("--tokens", type=count(0), default=500, metavar="N",
                   help="characters to generate (default 500)")
    p.add_argument("--temperature", type=float, default=1.0,
                   help="below 1: safer, more repetitive; above 1: wilder (default 1.0)")
    p.add_argument("--top-k", type=int, metavar="K",
                   help="sample only among the K most likely characters")
    p.add_argument("--seed", type=seed, default=0, help="seed of the draws (default 0)")
    add_backend_option(p)


def run(args: argparse.Namespace) -> int:
    backend = backends.get_backend(args.backend)
    with backend.scope():
        saved = load_language_model(args.model, backend)
        prompt = saved.tokenizer.encode(args.prompt)
        # the window is the context the model was trained on (a recurrent model has no
        # limit of its own, and reading ever longer windows would slow every step)
        ids = generate(saved.model, saved.params, prompt, args.tokens,
                       temperature=args.temperature, top_k=args.top_k, seed=args.seed,
                       context=saved.context)
    sys.stdout.write(saved.tokenizer.decode(ids))
    sys.stdout.write("\n")
    return 0
