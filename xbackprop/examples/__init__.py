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
    GALLERY: str                  the file name of the picture the README's gallery shows

Registering an example is its module plus its name in `NAMES`. Importing an example
imports NumPy and xbackprop only: matplotlib when it draws, JAX when it runs on JAX.
"""

from __future__ import annotations

import importlib
import io
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

from .. import fserrors
from ..atomic import atomic_write

__all__ = ["NAMES", "load", "summaries", "run", "draw", "write_gallery", "shrink_png"]

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
    "mnist", "forest-fires", "energy",  # real data
    "shakespeare-char",  # a language model
    "char-rnn",
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
    with fserrors.operation("create the folder", folder):
        folder.mkdir(parents=True, exist_ok=True)
    return [Path(p) for p in load(name).draw(result, folder)]


def write_gallery(folder: str | Path, names: tuple[str, ...] | None = None,
                  max_bytes: int = 60_000) -> list[Path]:
    """The README's gallery: run each example at full size on NumPy and save the picture
    its module names in `GALLERY` as `folder/NAME.png`, shrunk to at most `max_bytes`.
    For maintainers (it takes a few minutes):

        python -c "import xbackprop.examples as e; e.write_gallery('xbackprop/examples/gallery')"
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names or NAMES:
        module = load(name)
        with tempfile.TemporaryDirectory() as scratch:
            result = module.run(backend="numpy")
            draw(name, result, scratch)
            written.append(shrink_png(Path(scratch) / module.GALLERY, folder / f"{name}.png",
                                      max_bytes))
    return written


def shrink_png(source: str | Path, target: str | Path, max_bytes: int = 60_000) -> Path:
    """Save `source` as a palette PNG at `target`, narrower and with fewer colours until it
    is at most `max_bytes` (Pillow, which matplotlib installs); atomically."""
    from PIL import Image  # deferred: PIL comes with matplotlib (the plot extra), optional

    image = Image.open(source).convert("RGB")
    for width, colours in [(900, 256), (900, 128), (800, 128), (720, 64), (640, 48),
                           (560, 32), (480, 16)]:
        scaled = image if image.width <= width else image.resize(
            (width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
        palette = scaled.quantize(colors=colours, method=Image.Quantize.FASTOCTREE,
                                  dither=Image.Dither.NONE)
        buffer = io.BytesIO()
        palette.save(buffer, "PNG", optimize=True)
        if buffer.tell() <= max_bytes:
            break
    else:
        raise ValueError(f"{source} does not shrink below {max_bytes} bytes")
    with atomic_write(target) as f:
        f.write(buffer.getvalue())
    return Path(target)
