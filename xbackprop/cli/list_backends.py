"""`xbackprop backends`: every backend and whether it can run here (and why not); for NumPy,
the BLAS its products run on and the kernels it chose for this CPU."""

from __future__ import annotations

import argparse

from .. import backends


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("backends", help="list the backends and whether they can run here")


def run(args: argparse.Namespace) -> int:
    width = max(map(len, backends.BACKEND_NAMES))
    for name in backends.BACKEND_NAMES:
        try:
            b = backends.probe(name)
            blas = backends.numpy_blas() if name == "numpy" else None
            print(f"{name:{width}s} ok    {b.device}" + (f" ({blas})" if blas else ""))
            hint = backends.blas_hint() if name == "numpy" else None
            if hint:
                print(f"{'':{width}s}       {hint}")
        except backends.BackendError as e:
            print(f"{name:{width}s} no    {e}")
    return 0
