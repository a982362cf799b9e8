"""The `xbackprop` command: a thin layer over the public API.

    xbackprop train digits [--backend jax] [--epochs 30] [--lr 0.001] ...
    xbackprop example --list | NAME [--backend B] [--out DIR] [--quick]
    xbackprop gradcheck [--backend numpy] [--layer Conv2D] [--module my_layers.py]
    xbackprop predict MODEL FILE [--backend jax] [--output predictions.csv]
    xbackprop backends
    xbackprop data list | path NAME | download mnist|fashion-mnist [--dir DIR]

Each command is a module of this package with `add_parser(subparsers)` and `run(args)`;
registering one is its module plus one entry in `COMMANDS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from .. import backends

#: command -> its module in this package, in the order `xbackprop --help` lists them
COMMANDS = {
    "train": "train",
    "example": "example",
    "gradcheck": "gradcheck",
    "predict": "predict",
    "backends": "list_backends",
    "data": "data",
}


def add_backend_option(p: argparse.ArgumentParser) -> None:
    """The `--backend` option every command that computes takes."""
    p.add_argument("--backend", choices=backends.BACKEND_NAMES, default=None,
                   help=f"array backend (default: ${backends.ENV_VAR}, else numpy)")


def _parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="xbackprop",
        description="Neural networks with hand-written backprop on NumPy, JAX and CuPy.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    modules = {}
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        module.add_parser(sub)
        modules[name] = module
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    parser, modules = _parser()
    args = parser.parse_args(argv)
    try:
        return modules[args.command].run(args)
    except (backends.BackendError, ValueError, FloatingPointError) as e:
        print(f"xbackprop: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print(f"\nxbackprop: interrupted{f' ({e})' if str(e) else ''}", file=sys.stderr)
        return INTERRUPTED


#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


def console() -> None:
    """The `xbackprop` command (and `python -m xbackprop`): `main`, then exit with its status.

    After Ctrl-C it exits at once, skipping the interpreter's teardown: an interrupt that
    lands outside the training loop (e.g. in JAX's compiler) can leave compiler threads
    working, and tearing the interpreter down under them crashed with a segmentation fault
    instead of status 130. Everything worth keeping has been written by then."""
    code = main()
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
