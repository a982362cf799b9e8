"""Weight initialisers: functions `(rng, shape, fan_in, fan_out) -> float64 NumPy array`.

They run on the host from a seeded `numpy.random.Generator`, so one seed gives the same
starting weights on every backend. Layers accept a name from `INITIALIZERS` or a callable.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Initializer = Callable[[np.random.Generator, tuple[int, ...], int, int], np.ndarray]

__all__ = ["INITIALIZERS", "get_initializer", "uniform", "normal", "constant"]


def glorot_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out)) (Glorot & Bengio, 2010)."""
    a = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-a, a, size=shape)


def he_normal(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 2 / fan_in), the variance that keeps ReLU activations stable (He et al., 2015)."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


def he_uniform(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """U(-a, a) with a = sqrt(6 / fan_in) (He et al., 2015)."""
    a = np.sqrt(6.0 / fan_in)
    return rng.uniform(-a, a, size=shape)


def lecun_normal(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """N(0, 1 / fan_in) (LeCun et al., 1998)."""
    return rng.normal(0.0, np.sqrt(1.0 / fan_in), size=shape)


def orthogonal(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    """A random orthogonal matrix (Saxe et al., 2014): Q of the QR decomposition of a Gaussian
    matrix, its columns' signs set by R's diagonal so Q is uniformly distributed. For a
    non-square shape the rows (if fewer) or the columns are orthonormal. Recurrent weights
    start so: h W_h keeps the length of h, so the gradient through many steps, a product of
    these matrices, starts neither vanishing nor exploding."""
    rows, cols = shape[0], int(np.prod(shape[1:]))
    q, r = np.linalg.qr(rng.normal(size=(max(rows, cols), min(rows, cols))))
    q = q * np.sign(np.diag(r))
    return (q if rows >= cols else q.T).reshape(shape)


def zeros(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    return np.zeros(shape)


def ones(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
    return np.ones(shape)


def uniform(low: float = 0.0, high: float = 1.0) -> Initializer:
    """U(low, high), e.g. the classic XOR tutorial's weights in [0, 1)."""
    def init(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
        return rng.uniform(low, high, size=shape)
    return init


def normal(mean: float = 0.0, std: float = 1.0) -> Initializer:
    """N(mean, std²), whatever the fans."""
    def init(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
        return rng.normal(mean, std, size=shape)
    return init


def constant(value: float) -> Initializer:
    def init(rng: np.random.Generator, shape, fan_in: int, fan_out: int) -> np.ndarray:
        return np.full(shape, float(value))
    return init


INITIALIZERS: dict[str, Initializer] = {
    "glorot_uniform": glorot_uniform,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "orthogonal": orthogonal,
    "uniform": uniform(0.0, 1.0),
    #: N(0, 0.02²): GPT-2's weights and embeddings (Radford et al., 2019; nanoGPT)
    "small_normal": normal(0.0, 0.02),
    "zeros": zeros,
    "ones": ones,
}


def get_initializer(init: str | Initializer) -> Initializer:
    if callable(init):
        return init
    try:
        return INITIALIZERS[init]
    except KeyError:
        raise ValueError(f"unknown initializer {init!r}; choose one of "
                         f"{sorted(INITIALIZERS)} or pass a function") from None
