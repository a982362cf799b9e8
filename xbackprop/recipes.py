"""Named training jobs for `xbackprop train NAME`: a model, its data, its loss and the
defaults that reach the documented accuracy. Each is a few lines of the public API."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from .data import Dataset, load_digits, xor
from .layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sigmoid
from .losses import MSE, Loss, SoftmaxCrossEntropy
from .model import Sequential

__all__ = ["Recipe", "RECIPES", "get_recipe"]


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    build: Callable[[], Sequential]  # (the command prints its summary())
    data: Callable[[int], Dataset]  # seed -> train/test split
    loss: Callable[[], Loss]
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 32


def digits_mlp() -> Sequential:
    """64 -> 128 -> 64 -> 10, ReLU, He-initialised."""
    return Sequential([Dense(128, weight_init="he_normal"), ReLU(),
                       Dense(64, weight_init="he_normal"), ReLU(), Dense(10)])


def digits_cnn() -> Sequential:
    """(1, 8, 8) -> conv3x3(16)-ReLU-maxpool2 -> conv3x3(32)-ReLU-maxpool2 -> dense(10)."""
    return Sequential([Conv2D(16, 3, padding=1), ReLU(), MaxPool2D(2),
                       Conv2D(32, 3, padding=1), ReLU(), MaxPool2D(2),
                       Flatten(), Dense(10)])


def xor_mlp() -> Sequential:
    """2 -> 4 -> 1 sigmoid network."""
    return Sequential([Dense(4), Sigmoid(), Dense(1), Sigmoid()])


def _xor_data(seed: int) -> Dataset:
    x, y = xor()
    return Dataset(x, y, x, y)


RECIPES: dict[str, Recipe] = {r.name: r for r in [
    Recipe("digits", "dense network on the 8x8 handwritten digits (1,797 images, shipped)",
           digits_mlp, lambda seed: load_digits(seed=seed), SoftmaxCrossEntropy,
           optimizer="adam", lr=1e-3, epochs=30, batch_size=32),
    Recipe("digits-cnn", "small CNN (two conv-ReLU-maxpool blocks) on the 8x8 digits",
           digits_cnn, lambda seed: load_digits(seed=seed, flatten=False), SoftmaxCrossEntropy,
           optimizer="adam", lr=2e-3, epochs=30, batch_size=32),
    Recipe("xor", "2-4-1 sigmoid network on the four XOR points",
           xor_mlp, _xor_data, MSE, optimizer="sgd", lr=2.0, epochs=2000, batch_size=4),
]}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown training job {name!r}; choose one of {sorted(RECIPES)}"
                         ) from None
