"""`xbackprop backends`: every backend and whether it can run here (and why not)."""

from __future__ import annotations

import argparse

from .. import backends


def add_parser(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("backends", help="list the backends and whether they can run here")


def run(args: argparse.Namespace) -> int:
    for name in backends.BACKEND_NAMES:
        try:
            b = backends.get_backend(name)
            print(f"{name:6s} ok    {b.device}")
        except backends.BackendError as e:
            print(f"{name:6s} no    {e}")
    return 0
