"""`xbackprop gradcheck`: every built-in (or user-defined) layer and loss, on every backend,
against the gradient oracles; one line per check, the full table for each failure."""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import traceback
from pathlib import Path
from types import ModuleType

from .. import backends
from . import BACKEND_METAVAR, MODULE_FAILED, ModuleFailedError, backend_choice
from ..gradcheck import Case, GradReport, builtin_cases, layer_cases, loss_cases
from ..layers.base import layer_classes
from ..losses import loss_classes


def add_parser(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        "gradcheck", help="prove every hand-written gradient against JAX and finite differences",
        description="Check the backward pass of every built-in layer and loss (or of the layers "
        "in your own module) against an oracle, on every available backend, and print a table "
        f"per tensor. Exits 1 if any gradient is wrong, {MODULE_FAILED} if the --module file "
        "cannot be imported.")
    check.add_argument("--backend", action="append", type=backend_choice,
                       metavar=BACKEND_METAVAR,
                       help="backend to check (repeatable; default: every available one)")
    check.add_argument("--layer", action="append", metavar="NAME",
                       help="only this layer or loss class (repeatable)")
    check.add_argument("--dtype", choices=["float64", "float32"], default="float64",
                       help="dtype of the hand-written pass (oracles always run in float64)")
    check.add_argument("--oracle", choices=["auto", "jax", "fd", "both"], default="auto",
                       help="jax: jax.vjp; fd: finite differences; auto: jax if installed")
    check.add_argument("--seed", type=int, default=0, help="seed for shapes and values")
    check.add_argument("--module", metavar="FILE.py",
                       help="check the Layer and Loss classes defined in this file instead")
    check.add_argument("--verbose", "-v", action="store_true", help="print every table")


def load_module(path: str) -> ModuleType:
    """Import a user's Python file by path (it runs, as any import does: only your own)."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"--module {path}: no such file")
    name = f"xbackprop_user_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ValueError(f"--module {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as e:
        del sys.modules[name]
        raise ModuleFailedError(f"--module {path}: {_where_it_failed(e, file)}") from e
    return module


def _where_it_failed(error: Exception, file: Path) -> str:
    """"line 3: SyntaxError: invalid syntax" with the line, for the deepest line of `file`
    in the error (a syntax error's own line; else the traceback's last frame in the file)."""
    lineno, text = None, None
    if isinstance(error, SyntaxError) and error.filename and \
            Path(error.filename).resolve() == file.resolve():
        lineno, text = error.lineno, error.text
        message = f"{type(error).__name__}: {error.msg}"
    else:
        for frame in traceback.extract_tb(error.__traceback__):
            if Path(frame.filename).resolve() == file.resolve():
                lineno, text = frame.lineno, frame.line
        message = f"{type(error).__name__}: {error}"
    if lineno is None:
        return f"importing it failed: {message}"
    code = f"\n    {text.strip()}" if text and text.strip() else ""
    return f"line {lineno}: {message}{code}\n(fix the file, or run it with python to see the " \
        "whole traceback)"


def _user_cases(path: str, seed: int) -> list[Case]:
    module = load_module(path)
    layers = layer_classes(module.__name__)
    cases = layer_cases(layers, seed)
    losses = loss_classes(module.__name__)
    cases += [c for c in loss_cases(seed) if c.name in losses and c.subject.__module__ ==
              module.__name__]
    silent = sorted(set(layers) - {c.name for c in cases})
    if silent:
        raise ValueError(
            f"{path}: {', '.join(silent)} list no examples to check. Give each a classmethod "
            "`examples(cls, rng)` that yields (layer, input_shape_without_batch), or call "
            "xbackprop.check_layer(layer, input_shape) from Python.")
    if not cases:
        raise ValueError(f"{path} defines no xbackprop Layer or Loss subclasses")
    return cases


def _summary(report: GradReport) -> str:
    worst = max(report.rows, key=lambda r: r.max_rel, default=None)
    detail = f"max rel err {worst.max_rel:.1e} ({worst.tensor}, {worst.oracle})" if worst else ""
    return f"{'ok  ' if report.ok else 'FAIL'}  {report.backend:5s}  {report.subject}  {detail}"


def run(args: argparse.Namespace) -> int:
    names = args.backend or backends.available_backends()
    chosen = [backends.get_backend(n) for n in names]  # a missing one is an error, not a skip
    cases = _user_cases(args.module, args.seed) if args.module else builtin_cases(args.seed)
    if args.layer:
        known = {c.name for c in cases}
        unknown = sorted(set(args.layer) - known)
        if unknown:
            raise ValueError(f"--layer {', '.join(unknown)}: not found; choose from "
                             f"{', '.join(sorted(known))}")
        cases = [c for c in cases if c.name in args.layer]
    print(f"xbackprop gradcheck: {len(cases)} checks x {len(chosen)} backends "
          f"({', '.join(b.name for b in chosen)}), hand-written in {args.dtype}, "
          f"oracle {args.oracle}, seed {args.seed}")
    failed = 0
    t0 = time.perf_counter()
    for case in cases:
        for backend in chosen:
            report = case.run(backend=backend, dtype=args.dtype, oracle=args.oracle,
                              seed=args.seed)
            print(_summary(report))
            if args.verbose or not report.ok:
                print(report)
            failed += not report.ok
    total = len(cases) * len(chosen)
    print(f"{total - failed} passed, {failed} failed in {time.perf_counter() - t0:.1f} s")
    return 1 if failed else 0
