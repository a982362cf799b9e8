"""Toy 2-D classification sets, drawn from a seeded generator: the interleaved spiral arms
of CS231n's "Putting it together" notes and the half-moons of scikit-learn's `make_moons`,
generalised to any number of classes. The same seed gives the same points everywhere.

Both return `x: (N, 2)` points and `y: (N,)` integer labels, classes in equal numbers,
ordered by class (shuffle or split them with `train_test_split`).
"""

from __future__ import annotations

import numpy as np

from ..random import host_generator

__all__ = ["spiral", "moons"]


def _check(n_per_class: int, classes: int, noise: float) -> None:
    if n_per_class < 1 or classes < 1:
        raise ValueError(f"need at least one class and one point per class (got classes="
                         f"{classes}, n_per_class={n_per_class})")
    if not noise >= 0 or noise == float("inf"):  # (not >= also catches NaN)
        raise ValueError(f"noise is a standard deviation, a finite number >= 0 (got {noise})")


def spiral(n_per_class: int = 100, classes: int = 3, *, noise: float = 0.2, seed: int = 0,
           dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """`classes` spiral arms winding out of the origin, `n_per_class` points each.

    Arm k at radius r ∈ [0, 1] is at angle θ = (12 / classes)(k + r) + noise · N(0, 1), the
    point (r sin θ, r cos θ): the arms wind 12 radians between them and interleave, so no
    straight line separates them (three classes are CS231n's θ = 4 (k + r)).
    """
    _check(n_per_class, classes, noise)
    rng = host_generator(seed)
    r = np.linspace(0.0, 1.0, n_per_class)
    xs, ys = [], []
    for k in range(classes):
        theta = 12.0 / classes * (k + r) + noise * rng.standard_normal(n_per_class)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], axis=1))
        ys.append(np.full(n_per_class, k))
    return np.concatenate(xs).astype(dtype), np.concatenate(ys).astype(np.int64)


def moons(n_per_class: int = 100, classes: int = 2, *, noise: float = 0.1, seed: int = 0,
          dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    """Interleaved half circles of radius 1, `n_per_class` points each, plus Gaussian noise.

    Moon k is centred at (k, 0.5 · (k mod 2)): even moons are arches (cos t + k, sin t),
    odd ones cups (k - cos t, ½ - sin t), t ∈ [0, π]. Two classes are scikit-learn's
    `make_moons`; more continue the chain to the right.
    """
    _check(n_per_class, classes, noise)
    rng = host_generator(seed)
    t = np.linspace(0.0, np.pi, n_per_class)
    xs, ys = [], []
    for k in range(classes):
        if k % 2 == 0:
            points = np.stack([k + np.cos(t), np.sin(t)], axis=1)
        else:
            points = np.stack([k - np.cos(t), 0.5 - np.sin(t)], axis=1)
        xs.append(points + noise * rng.standard_normal(points.shape))
        ys.append(np.full(n_per_class, k))
    return np.concatenate(xs).astype(dtype), np.concatenate(ys).astype(np.int64)
