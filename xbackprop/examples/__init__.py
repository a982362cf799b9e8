"""Lessons to run and read: `xbackprop example NAME`, or from Python

    from xbackprop import examples
    result = examples.run("xor", backend="jax", quick=True)   # the numbers
    print(result)                                            # the report the command prints
    examples.draw("xor", result, "xor/")                     # its pictures, as PNG files

Each example is one short module here (`worked-221` lives in `worked_221.py`), written with
the public API only, so it doubles as documentation. A module defines

    SUMMARY: str                  one line for `xbackprop example --list`
    run(*, backend=None, seed=0, quick=False, progress=False, **options) -> result
        computes and trains, prints nothing, returns its numbers: an object whose str()
        is the report (tables of what it learned); `quick` is a reduced size for tests;
        `progress` shows a progress bar on stderr while it trains (the command's choice)
    draw(result, out: Path) -> list[Path]
        writes its pictures (PNG, through `xbackprop.plot`) into the folder `out`
    OPTIONS: list of (flags, argparse keyword arguments), optional
        the example's own command-line options, passed to `run` as keywords

Registering an example is its module plus its name in `NAMES`. Importing an example
imports NumPy and xbackprop only: matplotlib when it draws, JAX when it runs on JAX.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["NAMES", "load", "summaries", "run", "draw"]

#: every example, in the order `xbackprop example --list` shows them
NAMES: tuple[str, ...] = (
    "worked-221",
    "worked-222",
    "xor",
    "three-inputs",
    "quadratic",
    "optimizers",
    "points",
    "network-view",
    "cnn",
    "compare-optimizers",
)


def load(name: str) -> ModuleType:
    """The module of example `name` (an error listing the examples if there is none)."""
    if name not in NAMES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(NAMES)} "
                         "(xbackprop example --list)")
    return importlib.import_module(f"{__name__}.{name.replace('-', '_')}")


def summaries() -> dict[str, str]:
    """name -> one-line summary, for every example."""
    return {name: load(name).SUMMARY for name in NAMES}


def run(name: str, **kwargs: Any) -> Any:
    """Run example `name` (see the module docstring for the keywords) and return its result."""
    return load(name).run(**kwargs)


def draw(name: str, result: Any, out: str | Path) -> list[Path]:
    """Write the pictures of example `name`'s `result` into the folder `out` (made if
    missing); returns the paths of the PNG files."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in load(name).draw(result, folder)]
