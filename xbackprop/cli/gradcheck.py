"""`xbackprop gradcheck`: every built-in (or user-defined) layer and loss, on every backend,
against the gradient oracles; one line per check, the full table for each failure."""

from __future__ import annotations

import argparse
import sysconfig
import time
import traceback
from pathlib import Path

from .. import backends
from ..gradcheck import Case, GradReport, builtin_cases, layer_cases, loss_cases
from ..layers.base import layer_classes
from ..losses import loss_classes
from . import BACKEND_METAVAR, MODULE_FAILED, backend_choice, seed
from .user_module import load_user_module


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
    check.add_argument("--seed", type=seed, default=0, help="seed for shapes and values")
    check.add_argument("--module", metavar="FILE.py",
                       help="check the Layer and Loss classes defined in this file instead")
    check.add_argument("--verbose", "-v", action="store_true", help="print every table")


def _user_cases(path: str, seed: int) -> list[Case]:
    module = load_user_module(path)
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


def _where_in_user_code(error: BaseException | None) -> str:
    """" (my_layers.py, line 13, in backward)": the last frame of the error's traceback (or
    of its cause's) in a file of the user's, outside xbackprop and the installed libraries;
    "" if none."""
    paths = sysconfig.get_paths()
    skip = {Path(p).resolve() for p in (paths["stdlib"], paths["purelib"], paths["platlib"])}
    skip |= {Path(__file__).resolve().parents[1], Path(backends.__file__).resolve().parent}
    while error is not None:
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            file = Path(frame.filename).resolve()
            if file.is_file() and not skip & set(file.parents):
                return f" ({file.name}, line {frame.lineno}, in {frame.name})"
        error = error.__cause__
    return ""


def _summary(report: GradReport) -> str:
    worst = max(report.rows, key=lambda r: r.max_rel, default=None)
    detail = f"max rel err {worst.max_rel:.1e} ({worst.tensor}, {worst.oracle})" if worst else ""
    return f"{'ok  ' if report.ok else 'FAIL'}  {report.backend:5s}  {report.subject}  {detail}"


def run(args: argparse.Namespace) -> int:
    names = args.backend or backends.available_backends()
    chosen = [backends.get_backend(n) for n in names]  # a missing one is an error, not a skip
    cases = (_user_cases(args.module, args.seed) if args.module is not None else
             builtin_cases(args.seed))
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
            try:
                report = case.run(backend=backend, dtype=args.dtype, oracle=args.oracle,
                                  seed=args.seed)
            except backends.BackendError:  # the oracle or the backend cannot run: exit 2
                raise
            # any other error is the layer's own: that check fails, the rest run
            except Exception as e:  # noqa: BLE001
                print(f"FAIL  {backend.name:5s}  {case.describe()}  raised "
                      f"{type(e).__name__}: {e}{_where_in_user_code(e)}")
                failed += 1
                continue
            print(_summary(report))
            if args.verbose or not report.ok:
                print(report)
            failed += not report.ok
    total = len(cases) * len(chosen)
    print(f"{total - failed} passed, {failed} failed in {time.perf_counter() - t0:.1f} s")
    return 1 if failed else 0
