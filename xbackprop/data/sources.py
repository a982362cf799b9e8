"""Batch sources made of arrays: what `fit(model, source, steps=N)` trains from."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ArraySource"]


class ArraySource:
    """`source(step) -> (x_batch, y_batch)`: `batch_size` samples of (x, y) drawn at random
    with replacement, from a generator seeded by (seed, step) — pure in the step, so a
    resumed run gets the very batches of the run it continues, and `source(i)` for
    i in range(n) is a fixed validation set.

        train = xb.data.ArraySource(x_train, y_train, batch_size=64, seed=0)
        val = xb.data.ArraySource(x_val, y_val, batch_size=64, seed=1)
        xb.fit(model, train, steps=2000, eval_every=250, validation_data=val,
               eval_batches=20, loss=..., optimizer=...)

    x: (N, ...) and y: (N, ...) on the host (NumPy: they are copied there once).
    """

    def __init__(self, x: Any, y: Any, batch_size: int, seed: int = 0) -> None:
        self.x, self.y = np.asarray(x), np.asarray(y)
        if self.x.ndim == 0 or self.y.ndim == 0 or len(self.x) != len(self.y):
            raise ValueError(f"ArraySource: x and y are arrays of as many samples, not shapes "
                             f"{self.x.shape} and {self.y.shape}")
        if len(self.x) == 0:
            raise ValueError("ArraySource: x and y have no samples")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or \
                batch_size < 1:
            raise ValueError(f"ArraySource: batch_size is a number of samples >= 1, not "
                             f"{batch_size!r}")
        self.batch_size, self.seed = int(batch_size), seed

    def __repr__(self) -> str:
        return (f"ArraySource({len(self.x)} samples of x {self.x.shape[1:]} and y "
                f"{self.y.shape[1:]}, batch_size={self.batch_size}, seed={self.seed})")

    def __call__(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, int(step)])
        idx = rng.integers(0, len(self.x), size=self.batch_size)
        return self.x[idx], self.y[idx]
