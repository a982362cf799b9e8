"""`xbackprop example NAME`: run a lesson, print what it learned, write its pictures."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

from .. import examples
from . import add_backend_option, output_folder, seed


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "example", help="run a lesson: worked examples, toy problems and real data, with pictures",
        description="Run one of xbackprop's examples: it prints what it learned and writes its "
        "pictures as PNG files. `xbackprop example --list` lists them.")
    parser.add_argument("--list", action="store_true", help="list the examples and exit")
    which = parser.add_subparsers(dest="example", metavar="NAME")
    for name in examples.NAMES:
        module = examples.load(name)
        one = which.add_parser(name, help=module.SUMMARY, description=module.__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
        add_backend_option(one)
        one.add_argument("--out", metavar="DIR", type=_folder,
                         help=f"folder for the pictures (default: ./{name})")
        one.add_argument("--seed", type=seed, default=0, help="random seed")
        one.add_argument("--quick", action="store_true",
                         help="a reduced size, for tests and the impatient")
        one.add_argument("--no-plots", action="store_true", help="print only, draw nothing")
        for flags, kwargs in getattr(module, "OPTIONS", ()):
            one.add_argument(*flags, **kwargs)
    parser.set_defaults(parser=parser)


def _folder(text: str) -> Path:
    if not text.strip():  # Path("") is the current folder: an unset variable, more likely
        raise argparse.ArgumentTypeError("a folder name, not an empty string")
    return Path(text)


COMMON = ("command", "example", "list", "backend", "out", "seed", "quick", "no_plots", "parser")


def run(args: argparse.Namespace) -> int:
    if args.list or args.example is None:
        if args.example is None and not args.list:
            args.parser.print_usage()
        width = max((len(n) for n in examples.NAMES), default=0)
        for name, summary in examples.summaries().items():
            print(f"{name:{width}s}  {summary}")
        return 0 if args.list else 2
    options = {k: v for k, v in vars(args).items() if k not in COMMON}
    if not args.no_plots and importlib.util.find_spec("matplotlib") is None:
        raise ValueError(f"the pictures of {args.example} need matplotlib, which is not "
                         "installed: pip install 'xbackprop[plot]', or pass --no-plots")
    out = None
    if not args.no_plots:  # checked before the run, not after it
        out = output_folder("--out" if args.out is not None else "the default folder",
                            args.out if args.out is not None else Path(args.example))
    result = examples.run(args.example, backend=args.backend, seed=args.seed,
                          quick=args.quick, progress=True, **options)
    print(result)
    if out is not None:
        paths = examples.draw(args.example, result, out)
        print(f"\n{len(paths)} picture{'s' * (len(paths) != 1)} in {out}/: "
              + ", ".join(p.name for p in paths))
    return 0
