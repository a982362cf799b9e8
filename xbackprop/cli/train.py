"""`xbackprop train JOB`: train a built-in model on data that ships with xbackprop.

Data parallel: `--devices N` splits each batch over N devices of one process (JAX);
`--coordinator HOST:PORT --num-processes N --process-id I` (or `--distributed`, where the
cluster says them: SLURM, Open MPI) joins N processes that train together, each on its own
slice of the data, and only process 0 prints.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import backends, optim
from ..checkpoint import FolderLock, save_model
from ..evaluate import evaluate
from ..fit import fit
from ..language import TEXT_JOBS, TextJob
from ..recipes import RECIPES, Recipe, get_recipe
from . import add_backend_option, checkpoints, count, output_file, seed, train_text


def add_parser(sub: argparse._SubParsersAction) -> None:
    jobs: list[Recipe | TextJob] = [*RECIPES.values(), *TEXT_JOBS.values()]
    train = sub.add_parser(
        "train", help="train a model on data that ships with xbackprop",
        description="Train a built-in model and print its train and test accuracy (a language "
        "model: its validation loss and a sample). Jobs: " +
        "; ".join(f"{r.name}: {r.description}" for r in jobs))
    train.add_argument("job", choices=sorted([*RECIPES, *TEXT_JOBS]), help="what to train")
    add_backend_option(train)
    train.add_argument("--epochs", type=count(0), help="passes over the training data")
    train.add_argument("--batch-size", type=count(1), help="samples per step")
    train.add_argument("--lr", type=float, help="learning rate")
    train.add_argument("--optimizer", choices=["sgd", "momentum", "nesterov", "adam", "adamw",
                                               "rmsprop", "adagrad"], help="update rule")
    train.add_argument("--seed", type=seed, default=0, help="seed for weights, split, shuffling")
    train.add_argument("--dtype", choices=["float32", "float64"],
                       help="floating dtype (default: float32; with --resume, the run's)")
    train.add_argument("--save", metavar="PATH",
                       help="save the trained model for `xbackprop predict` and "
                       "xbackprop.load_model (a text job's with its tokenizer, for `xbackprop "
                       "sample`; .safetensors added if the name has no suffix)")
    train.add_argument("--plot", metavar="PATH",
                       help="save the loss/accuracy curves as a PNG (.png added if missing)")
    train.add_argument("--no-jit", action="store_true", help="JAX: run the step op by op")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--checkpoint", metavar="DIR",
                       help="save checkpoints in DIR (every epoch, at the end, and on Ctrl-C)")
    train.add_argument("--checkpoint-every", metavar="N", type=count(1), default=1,
                       help="epochs between checkpoints (default 1)")
    train.add_argument("--resume", action="store_true",
                       help="continue the run whose checkpoints are in --checkpoint DIR "
                       "(--epochs counts the whole run)")
    train_text.add_options(train)
    par = train.add_argument_group(
        "data parallel (JAX)", "split each batch (--batch-size is the global batch) over "
        "devices, and over processes that each load their own slice of the data")
    par.add_argument("--devices", metavar="N|all", type=_devices,
                     help="split each batch over N devices (default: 1; with several "
                     "processes, all of them); on a CPU, XLA_FLAGS="
                     "--xla_force_host_platform_device_count=N makes N")
    par.add_argument("--coordinator", metavar="HOST:PORT",
                     help="process 0's address, the same for every process")
    par.add_argument("--num-processes", metavar="N", type=count(1), help="processes in the run")
    par.add_argument("--process-id", metavar="I", type=count(0), help="this process, 0 to N-1")
    par.add_argument("--distributed", action="store_true",
                     help="join a multi-process run, detecting the coordinator, the number "
                     "of processes and this one's id from the cluster (SLURM, Open MPI)")


def run(args: argparse.Namespace) -> int:
    if args.checkpoint is not None and not args.checkpoint.strip():  # it was ignored
        raise ValueError("--checkpoint needs a folder name, not an empty string")
    if args.resume and not args.checkpoint:
        raise ValueError("--resume continues the run in --checkpoint DIR; give the folder")
    if args.job in TEXT_JOBS:
        return train_text.run(args)
    train_text.refuse_text_options(args)
    with contextlib.ExitStack() as held:  # the checkpoint folder's lock, once taken
        return _run(args, held)


def _run(args: argparse.Namespace, held: contextlib.ExitStack) -> int:
    recipe = get_recipe(args.job)
    rank, processes = 0, 1
    place = (args.coordinator, args.num_processes, args.process_id)
    if args.distributed or any(v is not None for v in place):
        chosen = args.backend or os.environ.get(backends.ENV_VAR) or backends.BACKEND_NAMES[0]
        rank, processes = backends.initialize_distributed(chosen, *place)
    backend = backends.get_backend(args.backend)
    plot = plot_path(args.plot) if args.plot is not None else None  # before training
    save = model_path(args.save) if args.save is not None else None
    if args.checkpoint and rank == 0:
        # one writer per checkpoint folder (checkpoint/lock.py), held from before the checks
        # of --resume to the last save: a second run on the folder is refused before any work
        held.enter_context(FolderLock(args.checkpoint))
    devices = args.devices if args.devices is not None else "all" if processes > 1 else None
    if devices is not None:
        backend = backend.with_devices(devices)
    say = print if rank == 0 else _silent
    data = recipe.data(args.seed)
    if processes > 1:  # each process takes its own slice of the data
        data = _slice(data, rank, processes)
    model = recipe.build()
    loss = recipe.loss()
    name = args.optimizer or recipe.optimizer
    lr, lr_note = args.lr, ""
    if lr is None and name != recipe.optimizer:  # the job's rate suits its own rule only
        lr, lr_note = optim.DEFAULT_LR[name], f" (the default for {name}; --lr to change)"
    elif lr is None:
        lr = recipe.lr
    optimizer = optim.get_optimizer(name, lr)
    epochs = args.epochs if args.epochs is not None else recipe.epochs
    batch_size = args.batch_size if args.batch_size is not None else recipe.batch_size
    n_train, n_test = (int(backend.process_values(len(a)).sum())
                       for a in (data.x_train, data.x_test))
    resumed = checkpoints.plan(args.checkpoint, args.resume, epochs=epochs, n_train=n_train,
                               batch_size=batch_size, dtype=args.dtype, exact=processes == 1)
    dtype = args.dtype or (resumed.dtype if resumed and resumed.dtype else "float32")
    dtype_note = " (the run's)" if resumed and not args.dtype else ""
    say(f"xbackprop train {recipe.name}: {recipe.description}")
    say(f"backend {backend.name} ({backend.device}"
        f"{f', {processes} processes' if processes > 1 else ''}), {dtype}{dtype_note}, "
        f"{name} lr={lr}{lr_note}, {epochs} epochs, batch {batch_size}, seed {args.seed}; "
        f"{n_train} train / {n_test} test samples")
    say(model.summary(data.x_train.shape[1:]))
    if resumed is not None:
        say(f"resuming from {resumed.path}: {resumed.where()}, to epoch {epochs}")
    elif args.resume:
        say(f"--resume: {args.checkpoint} holds no checkpoint yet; starting a new run there")
    with backend.dtype_scope(dtype), backend.scope():  # JAX: 64-bit mode for this run
        t0 = time.perf_counter()
        try:
            result = fit(model, data.x_train, data.y_train, loss=loss, optimizer=optimizer,
                         epochs=epochs, batch_size=batch_size, seed=args.seed,
                         validation_data=(data.x_test, data.y_test), backend=backend,
                         dtype=dtype, progress=not args.quiet, jit=not args.no_jit,
                         checkpoint_dir=args.checkpoint,
                         checkpoint_every=args.checkpoint_every, resume=args.resume)
        except ValueError as e:  # a resume's refusal, in the command's words
            raise checkpoints.reworded(e, optimizer=name) from e
        seconds = time.perf_counter() - t0
        state = result.state
        train = evaluate(model, state.params, data.x_train, data.y_train, loss,
                         model_state=state.model_state)
        test = evaluate(model, state.params, data.x_test, data.y_test, loss,
                        model_state=state.model_state)
    for split, scores in [("train", train), ("test", test)]:
        line = f"{split:5s} loss {scores['loss']:.4f}"
        if "accuracy" in scores:
            line += f"  accuracy {scores['accuracy']:.4f}"
        say(line)
    say(_timing(seconds, result.history.get("time", []), -(-n_train // batch_size)))
    if args.checkpoint:
        say(f"checkpoints in {args.checkpoint} (resume with --resume)")
    if save and rank == 0:
        save_model(save, model, state.params, state.model_state, loss=loss,
                   input_shape=tuple(data.x_train.shape[1:]),
                   metadata={"job": recipe.name, "epochs": epochs, "seed": args.seed,
                             "dtype": dtype, "test": test})
        say(f"saved the model to {save} (xbackprop predict {save} FILE)")
    if plot and rank == 0:
        say(f"saved {result.history.plot(plot, title=f'xbackprop {recipe.name}')}")
    return 0


def plot_path(path: str) -> Path:
    """`--plot PATH` checked before any work: matplotlib installed, the folder there, a PNG
    name (".png" added to a name without a suffix)."""
    if importlib.util.find_spec("matplotlib") is None:
        raise ValueError("--plot needs matplotlib, which is not installed: pip install "
                         "'xbackprop[plot]' (or leave out --plot)")
    if not path.strip():
        raise ValueError("--plot needs a file name, not an empty string")
    file = Path(path)
    if file.suffix == "":
        file = file.with_name(file.name + ".png")
    elif file.suffix.lower() != ".png":
        raise ValueError(f"--plot {path}: the picture is a PNG; give a name ending in .png")
    if not file.parent.is_dir():
        raise ValueError(f"--plot {path}: the folder {file.parent} does not exist; create it "
                         "first")
    return file


def model_path(path: str) -> Path:
    """`--save PATH` checked before any work: a file name in a folder that exists
    (".safetensors" added to a name without a suffix)."""
    file = output_file("--save", path, example="model.safetensors")
    return file if file.suffix else file.with_name(file.name + ".safetensors")


def _devices(text: str) -> int | str:
    if text == "all":
        return text
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a number of devices >= 1 or 'all', not {text!r}")
    return n


def _silent(*args: object, **kwargs: object) -> None:
    """print, in every process but the first."""


def _slice(data: Any, rank: int, processes: int) -> Any:
    """Process `rank`'s contiguous slice of the train and test splits (as it would load
    only its own files of a data set too large for one host)."""
    def part(a: Any) -> Any:
        return np.array_split(a, processes)[rank]
    return type(data)(*(part(a) for a in data))


def _timing(seconds: float, epoch_times: list[float], steps_per_epoch: int) -> str:
    """Total time, and the time per step of the epochs after the first (which includes
    JAX's compilation): the figure to compare between backends."""
    line = f"trained in {seconds:.1f} s"
    if len(epoch_times) > 1:
        later = sorted(epoch_times[1:])[len(epoch_times[1:]) // 2]  # median epoch
        line += (f"; {1e3 * later / steps_per_epoch:.2f} ms per step after the first epoch, "
                 f"validation included (the first took {epoch_times[0]:.1f} s, with any "
                 "compilation)")
    return line
