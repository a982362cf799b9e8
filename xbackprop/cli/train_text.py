"""`xbackprop train <text job>` (shakespeare-char, shakespeare-rnn): train a language model,
print the validation loss every --eval-every steps and at the end (`val loss 1.8xxx`), then
a sample.

A thin layer over `xbackprop.language`: the job (`TEXT_JOBS`) builds the model and its
optimizer from `TextOptions`, `train_language_model` trains it (through `fit`), `generate`
samples it. A model option the job's model does not read (`--heads` for the recurrent net,
`--cell` for the GPT) is an error, as the text options are for the other jobs.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from .. import backends
from ..generate import generate
from ..language import (
    TEXT_JOBS,
    TextJob,
    TextOptions,
    get_text_job,
    save_language_model,
    train_language_model,
)
from ..model import count_params, init_params
from ..plot import plot_curves
from . import count

#: option -> TextOptions field, for the options only text jobs take
TEXT_OPTIONS = {"layers": int, "heads": int, "width": int, "context": int, "steps": int,
                "dropout": float, "eval_every": int, "eval_batches": int, "warmup": int,
                "min_lr": float, "cell": str}
#: the options that size a model (a job reads some of them: its `model_options`)
MODEL_OPTIONS = ("cell", "layers", "heads", "width", "context", "dropout")


def add_options(train: argparse.ArgumentParser) -> None:
    """The options of text jobs (shakespeare-char, shakespeare-rnn) on `xbackprop train`'s
    parser."""
    group = train.add_argument_group(
        f"text jobs ({', '.join(sorted(TEXT_JOBS))})",
        "a language model trained for --steps steps on random windows of the text; "
        "--batch-size, --lr, --seed, --dtype, --checkpoint and --resume apply too. "
        "Defaults: the GPT's, then the recurrent net's")
    group.add_argument("--steps", type=count(1), help="training steps (default 2000)")
    group.add_argument("--cell", metavar="{lstm,gru,rnn}",
                       help="shakespeare-rnn: the recurrent cell (default lstm)")
    group.add_argument("--layers", type=count(1),
                       help="transformer blocks, or recurrent layers (default 4; 1)")
    group.add_argument("--heads", type=count(1),
                       help="shakespeare-char: attention heads per block (default 4)")
    group.add_argument("--width", type=count(1),
                       help="features per token, or hidden units (default 128; 256)")
    group.add_argument("--context", type=count(1),
                       help="tokens the model reads (default 64)")
    group.add_argument("--dropout", type=float, help="dropout rate (default 0)")
    group.add_argument("--warmup", type=count(0),
                       help="learning-rate warm-up steps (default 100; 0)")
    group.add_argument("--min-lr", type=float,
                       help="learning rate at the end (default 1e-4; 2e-4)")
    group.add_argument("--eval-every", type=count(1),
                       help="steps between validation losses (default 250)")
    group.add_argument("--eval-batches", type=count(1),
                       help="validation batches per evaluation (default 20; 200 at the end)")
    group.add_argument("--sample-tokens", type=count(0), default=500, metavar="N",
                       help="characters of the sample printed at the end (default 500; 0: "
                       "none)")


def refuse_text_options(args: argparse.Namespace) -> None:
    """A job that is not a text job given options only text jobs take: an error, not
    options silently ignored."""
    given = [name for name in TEXT_OPTIONS if getattr(args, name, None) is not None]
    if given:
        raise ValueError(f"{_flags(given)} {'is' if len(given) == 1 else 'are'} for "
                         f"{_takers(given)}, not {args.job}")


def refuse_model_options(args: argparse.Namespace, job: TextJob) -> None:
    """Model options the job's model does not read: an error naming the jobs that take
    them, not options silently ignored."""
    given = [name for name in MODEL_OPTIONS
             if getattr(args, name, None) is not None and name not in job.model_options]
    if given:
        raise ValueError(f"{_flags(given)} {'is' if len(given) == 1 else 'are'} for "
                         f"{_takers(given)}, not {job.name} (its model takes "
                         f"{_flags(job.model_options)})")


def _flags(names: Any) -> str:
    return ", ".join(f"--{name.replace('_', '-')}" for name in names)


def _takers(names: list[str]) -> str:
    """The text jobs whose model reads all of `names` ("the text jobs (a, b)" for all of
    them, or where none reads them all)."""
    jobs = sorted(j.name for j in TEXT_JOBS.values()
                  if all(n in j.model_options for n in names if n in MODEL_OPTIONS))
    if 0 < len(jobs) < len(TEXT_JOBS):
        return ", ".join(jobs)
    return f"the text jobs ({', '.join(sorted(TEXT_JOBS))})"


def options_of(args: argparse.Namespace, defaults: TextOptions) -> TextOptions:
    given = {name: getattr(args, name) for name in TEXT_OPTIONS
             if getattr(args, name, None) is not None}
    if args.batch_size is not None:
        given["batch_size"] = args.batch_size
    if args.lr is not None:
        given["lr"] = args.lr
    return dataclasses.replace(defaults, **given)


def run(args: argparse.Namespace) -> int:
    job = get_text_job(args.job)
    if args.epochs is not None or args.optimizer is not None or args.devices is not None:
        raise ValueError(f"{job.name} trains for --steps steps with its own optimizer on one "
                         "device: --epochs, --optimizer and --devices are for the other jobs")
    refuse_model_options(args, job)
    options = options_of(args, job.defaults)
    backend = backends.get_backend(args.backend)
    from .train import model_path, plot_path  # (train.py dispatches text jobs here: a cycle)

    plot = plot_path(args.plot) if args.plot else None  # before training, not after
    save = model_path(args.save) if args.save is not None else None
    data = job.data()
    model = job.build(data.tokenizer.vocab_size, options)
    optimizer = job.optimizer(options)
    say = print
    say(f"xbackprop train {job.name}: {job.description}")
    say(f"backend {backend.name} ({backend.device}), {args.dtype}; {job.describe(options)}; "
        f"seed {args.seed}")
    say(f"{len(data.train):,} training and {len(data.val):,} validation characters, "
        f"{data.tokenizer.vocab_size} distinct")
    host = init_params(model, args.seed, (options.context,), backend="numpy")
    say(model.summary((options.context,), host))
    say(f"{count_params(host) / 1e6:.2f}M parameters")
    run_ = train_language_model(
        model, data, steps=options.steps, context=options.context,
        batch_size=options.batch_size, optimizer=optimizer, seed=args.seed,
        eval_every=options.eval_every, eval_batches=options.eval_batches,
        final_eval_batches=options.final_eval_batches, backend=backend, dtype=args.dtype,
        report=None if args.quiet else say, checkpoint_dir=args.checkpoint,
        resume=args.resume, metadata={"job": job.name, "options": dataclasses.asdict(options)},
        jit=not args.no_jit)
    say(f"val loss {run_.val_loss:.4f}")
    say(f"trained in {run_.seconds:.1f} s ({run_.ms_per_step:.1f} ms per step over "
        f"{run_.steps} steps, compilation included; evaluations take the rest)")
    if save:
        record = {"job": job.name, "options": dataclasses.asdict(options),
                  "curves": run_.history}
        say(f"saved {save_language_model(save, run_, metadata=record)} (xbackprop sample "
            "PATH)")
    if args.checkpoint:
        say(f"checkpoints in {args.checkpoint} (resume with --resume)")
    if plot:
        curves = {"train": run_.history["train_loss"], "validation": run_.history["val_loss"]}
        saved = plot_curves(curves, plot, x=run_.history["step"], title=job.name,
                            ylabel="loss (cross-entropy per character)")
        say(f"saved {saved}")
    if args.sample_tokens:
        ids = generate(model, run_.params, data.tokenizer.encode("\n"), args.sample_tokens,
                       seed=args.seed, context=options.context)  # the windows it learned on
        say(f"sample ({args.sample_tokens} characters, temperature 1, seed {args.seed}):")
        say(data.tokenizer.decode(ids[1:]))
    return 0
