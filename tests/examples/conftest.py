"""Shared checks for the examples' tests: a picture is a real PNG of the expected size that
is not blank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def check_png(path: str | Path, min_size: tuple[int, int] = (300, 200)) -> np.ndarray:
    """Assert that `path` is a PNG at least `min_size` (width, height) pixels whose pixels are
    not all one colour (a blank or failed figure), and return its pixels (H, W, channels)."""
    image = pytest.importorskip("matplotlib.image", reason="matplotlib: pip install "
                                "'xbackprop[plot]'")
    path = Path(path)
    assert path.is_file(), f"{path} was not written"
    assert path.read_bytes()[:8] == PNG_SIGNATURE, f"{path} is not a PNG file"
    pixels = image.imread(path)
    height, width = pixels.shape[:2]
    assert width >= min_size[0] and height >= min_size[1], (
        f"{path} is {width}x{height}, smaller than {min_size[0]}x{min_size[1]}")
    colours = np.unique(pixels.reshape(-1, pixels.shape[-1]), axis=0)
    assert len(colours) > 16, f"{path} has only {len(colours)} colours: a blank picture?"
    return pixels
