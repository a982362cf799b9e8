"""The `xbackprop` command: a thin layer over the public API.

    xbackprop train digits [--backend jax] [--epochs 30] [--save digits.safetensors] ...
    xbackprop example --list | NAME [--backend B] [--out DIR] [--quick]
    xbackprop gradcheck [--backend numpy] [--layer Conv2D] [--module my_layers.py]
    xbackprop predict MODEL FILE [--backend jax] [--output predictions.csv]
    xbackprop sample MODEL [--prompt "ROMEO:"] [--tokens 500] [--temperature 0.8] [--top-k 40]
    xbackprop backends
    xbackprop data list | path NAME | download mnist|fashion-mnist [--dir DIR]

Each command is a module of this package with `add_parser(subparsers)` and `run(args)`;
registering one is its module plus one entry in `COMMANDS`. `user_module` loads the
`--module FILE.py` of gradcheck and predict. Here: the errors every command shares (an
OSError is one line naming the file: `fserrors`) and the option types and checks they use.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy

from .. import backends, fserrors
from ..interrupt import exit_at_once
from ..version import __version__

#: command -> its module in this package, in the order `xbackprop --help` lists them
COMMANDS = {
    "train": "train",
    "example": "example",
    "gradcheck": "gradcheck",
    "predict": "predict",
    "sample": "sample",
    "backends": "list_backends",
    "data": "data",
}


def backend_choice(text: str) -> str:
    """An argparse type for a backend name: any case and surrounding spaces, as the
    environment variable takes it, optionally with a device ("jax:cpu", "cupy:1")."""
    name = text.strip().lower()
    if name.partition(":")[0] not in backends.BACKEND_NAMES:
        raise argparse.ArgumentTypeError(
            f"invalid choice: {text!r} (choose from "
            f"{', '.join(map(repr, backends.BACKEND_NAMES))}, optionally with a device: "
            "'jax:cpu', 'cupy:1')")
    return name


def count(minimum: int) -> Callable[[str], int]:
    """An argparse type for a whole number of something, at least `minimum` (epochs,
    samples per batch, retries): `--epochs -3` is refused before any work, naming the
    option."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"a whole number >= {minimum}, not {text!r}"
                                             ) from None
        if n < minimum:
            raise argparse.ArgumentTypeError(f"a whole number >= {minimum}, not {n}")
        return n
    parse.__name__ = "count"  # argparse names the type in some messages
    return parse


def seed(text: str) -> int:
    """An argparse type for a random seed: a whole number in [0, 2**64)."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n < 2**64:
        raise argparse.ArgumentTypeError(f"a seed is a whole number from 0 to 2**64 - 1, not "
                                         f"{text!r}")
    return n


BACKEND_METAVAR = "{" + ",".join(backends.BACKEND_NAMES) + "}"


def add_backend_option(p: argparse.ArgumentParser) -> None:
    """The `--backend` option every command that computes takes."""
    p.add_argument("--backend", type=backend_choice, default=None, metavar=BACKEND_METAVAR,
                   help=f"array backend (default: ${backends.ENV_VAR}, else numpy)")


def output_file(option: str, path: str, example: str = "out.csv") -> Path:
    """The file `option` names for the command to write, checked before any work: a name
    that is not empty and not a folder, in a folder that exists. (Whether the folder takes
    the write shows when it is written: a full disk or a read-only folder is then an error
    naming the file, and an earlier file of that name stays as it was.)"""
    if not path.strip():
        raise ValueError(f"{option} needs a file name, not an empty string")
    file = Path(path)
    if file.is_dir():
        raise ValueError(f"{option} {path} is a folder; give a file name, e.g. "
                         f"{file / example}")
    folder = file.parent
    if not folder.exists():
        raise ValueError(f"{option} {path}: the folder {folder} does not exist; create it "
                         "first")
    if not folder.is_dir():
        raise ValueError(f"{option} {path}: {folder} is a file, not a folder")
    return file


def output_folder(option: str, path: Path) -> Path:
    """The folder `option` names for the command to write files into, checked before any
    work: not an existing file (the folder is made when the files are written)."""
    if not str(path).strip():
        raise ValueError(f"{option} needs a folder name, not an empty string")
    for part in (path, *path.parents):
        if part.exists():
            if not part.is_dir():
                where = f"{path} is" if part == path else f"{path}: {part} is"
                raise ValueError(f"{option} {where} a file, not a folder; give a folder "
                                 "(it is made if missing)")
            break
    return path


class ModuleFailedError(Exception):
    """A user's Python file (`--module FILE.py`) raised while it was imported: a syntax
    error, a missing import, any exception. The message names the file and the line."""


#: exit statuses besides 0 (success) and 1 (gradcheck: a gradient is wrong)
USAGE_ERROR = 2  # a bad argument, file or value: the message says which
MODULE_FAILED = 3  # --module FILE.py cannot be imported
BROKEN_PIPE = 141  # 128 + SIGPIPE: the reader of the output went away (`| head`)


def _parser() -> tuple[argparse.ArgumentParser, dict]:
    parser = argparse.ArgumentParser(
        prog="xbackprop",
        description="Neural networks with hand-written backprop on NumPy, JAX, CuPy and "
        "PyTorch.",
        epilog=f"Exit status: 0 done; 1 gradcheck found a wrong gradient; {USAGE_ERROR} an "
        f"error (the message says what to do: a bad option or file, a full disk, a failed "
        f"download); {MODULE_FAILED} a --module file failed to "
        f"import; {BROKEN_PIPE} the output's reader closed it (| head); {INTERRUPTED} Ctrl-C.")
    parser.add_argument("--version", action="version",
                        version=f"xbackprop {__version__} (Python {sys.version.split()[0]}, "
                        f"NumPy {numpy.__version__})")
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
        with warnings.catch_warnings():  # a warning is one line too, as the errors are
            warnings.showwarning = _show_warning
            code = modules[args.command].run(args)
        sys.stdout.flush()  # a reader that went away shows here, not in the exit's flush
        return code
    except BrokenPipeError:
        # `xbackprop ... | head`: the reader has had enough. Stop quietly, and keep the
        # interpreter's last flush from failing on the closed pipe too.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except ModuleFailedError as e:
        print(f"xbackprop: error: {e}", file=sys.stderr)
        return MODULE_FAILED
    except (backends.BackendError, ValueError, FloatingPointError, ImportError) as e:
        print(f"xbackprop: error: {e}", file=sys.stderr)
        return USAGE_ERROR
    except OSError as e:  # a full disk, a read-only folder, a file where a folder should be
        print(f"xbackprop: error: {fserrors.describe(e)}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt as e:
        print(f"\nxbackprop: interrupted{f' ({e})' if str(e) else ''}", file=sys.stderr)
        return INTERRUPTED


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: Any = None, line: str | None = None) -> None:
    """xbackprop's warnings (UserWarning: a skipped checkpoint, a file loaded unchecked) as
    `xbackprop: warning: ...`, without the source line of the library that warned; others
    as Python shows them."""
    if issubclass(category, UserWarning):
        print(f"xbackprop: warning: {message}", file=file or sys.stderr)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


_PYTHON_SHOWWARNING = warnings.showwarning

#: the exit status of a command stopped by Ctrl-C (128 + SIGINT, as shells report it)
INTERRUPTED = 130


def console() -> None:
    """The `xbackprop` command (and `python -m xbackprop`): `main`, then exit with its status.

    After Ctrl-C it exits at once, skipping the interpreter's teardown: an interrupt that
    lands outside the training loop (e.g. in JAX's compiler) can leave compiler threads
    working, and tearing the interpreter down under them crashed with a segmentation fault
    instead of status 130. Everything worth keeping has been written by then. Outside
    training (importing, compiling) Ctrl-C exits with 130 at once
    (`interrupt.exit_at_once`)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, exit_at_once)
    code = main()
    if code == INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
