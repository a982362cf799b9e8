"""Step bookkeeping: the primitives `fit`'s train step runs beside the model on every step,
mixed into `Backend`.

take_rows gathers a batch's rows from the data by index; all_finite is the finite check of
the loss and every gradient, one scalar tested once. On a tiny network these cost as much
as the model's own arithmetic, so a backend overrides one where its library has a cheaper
call (PyTorch: `index_select` for take_rows; for all_finite neither `Tensor.sum` directly
nor the multi-tensor `_foreach_norm` measured faster than the generic sums), and
tests/backends/test_primitives.py checks each against these generic versions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Array = Any  # an array of some backend

__all__ = ["StepPrimitives"]


class StepPrimitives:
    """The step primitives of `Backend` (backends/_base.py), which supplies `xp`."""

    xp: Any

    def take_rows(self, x: Array, indices: Array) -> Array:
        """`x[indices]` along the first axis (`indices: (M,)` integers): a batch's rows
        gathered from the data, once per `fit` step."""
        return self.xp.take(x, indices, axis=0)

    def all_finite(self, value: Array, leaves: Sequence[Array]) -> Array:
        """True (a 0-d array) when `value` and every element of every array in `leaves` are
        finite. One scalar tested once: value + Σ of each leaf's sum, finite exactly when
        every element is (or when the sum overflows, which a usable gradient never does).
        Each leaf is still read once: one reduction over all of them would need them in one
        buffer, and gathering them there is a copy, a pass more."""
        xp, total = self.xp, value
        for leaf in leaves:
            total = total + xp.sum(leaf)
        return xp.isfinite(total)
