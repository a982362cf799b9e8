"""Checks for the numbers that configure layers and losses, at construction.

A layer's settings are read long after it is made (inside a compiled step, in a saved
model's JSON), so a wrong one must fail where it is written: `LeakyReLU("abc")` and
`LeakyReLU(nan)` would otherwise compute garbage or fail deep inside a pass, and a bool
would pass for 0 or 1. NumPy's scalars (`np.int64(3)`, `np.float32(0.5)`) are numbers like
any other and come back as Python's, so configurations stay plain JSON.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

__all__ = ["integer", "real"]


def integer(owner: str, name: str, value: Any, minimum: int | None = None) -> int:
    """`value` as a Python int: any integral number but a bool, at least `minimum`; else a
    ValueError naming `owner` (the class) and `name` (the argument)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        # ValueError, not TypeError: callers and the tests expect one type for every bad setting
        raise ValueError(f"{owner}: {name} must be an int, not {value!r}")  # noqa: TRY004
    if minimum is not None and value < minimum:
        raise ValueError(f"{owner}: {name} must be at least {minimum}, not {value!r}")
    return int(value)


def real(owner: str, name: str, value: Any, low: float | None = None,
         high: float | None = None, *, high_open: bool = False, low_open: bool = False
         ) -> float:
    """`value` as a Python float: a finite real number but a bool, in [low, high] (an end
    left out with `low_open` / `high_open`); else a ValueError naming owner and name."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not math.isfinite(value):
        raise ValueError(f"{owner}: {name} must be a finite number, not {value!r}")
    value = float(value)
    below = low is not None and (value <= low if low_open else value < low)
    above = high is not None and (value >= high if high_open else value > high)
    if below or above:
        left = "(-inf" if low is None else f"{'(' if low_open else '['}{low}"
        right = "inf)" if high is None else f"{high}{')' if high_open else ']'}"
        raise ValueError(f"{owner}: {name} must be in {left}, {right}, not {value!r}")
    return value
