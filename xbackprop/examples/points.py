"""points: classify the colour of points in the plane, as TensorFlow Playground does.

The data: three interleaved spiral arms (or, with --data moons, three half-moons), 150
points per colour with Gaussian noise, from `xb.data.spiral` / `xb.data.moons`, seeded; a
quarter held out for testing. The network: 2 → 32 tanh → 32 tanh → 3 class scores,
softmax cross-entropy, Adam (lr 0.01), mini-batches of 32, 300 epochs (100 with --quick).

No straight line separates the arms; two hidden layers bend the plane until the colours
fall into their own regions, as the picture shows.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb

SUMMARY = "classify coloured 2-D points (spiral or moons, 3 classes): decision regions"
GALLERY = "decision_regions.png"  # the picture the README shows
OPTIONS = [
    (("--data",), {"choices": ["spiral", "moons"], "default": "spiral",
                   "help": "the point set (default spiral)"}),
    (("--noise",), {"type": float, "help": "standard deviation of the noise (default 0.2 "
                                           "for the spiral, 0.15 for the moons)"}),
]

CLASSES = 3
POINTS_PER_CLASS = 150
NOISE = {"spiral": 0.2, "moons": 0.15}


def network(hidden: tuple[int, ...] = (32, 32)) -> xb.Sequential:
    """2 → tanh layers of `hidden` units → one score per class."""
    layers: list[xb.Layer] = []
    for units in hidden:
        layers += [xb.Dense(units), xb.Tanh()]
    return xb.Sequential([*layers, xb.Dense(CLASSES)])


@dataclasses.dataclass(frozen=True)
class Trained:
    """A network trained on a point set: what `points` and `network-view` share."""

    model: xb.Sequential
    params: Any              # NumPy
    data: xb.data.Dataset
    losses: np.ndarray       # (epochs,)
    train_accuracy: float
    test_accuracy: float
    backend: str
    name: str                # "spiral" or "moons"


def train(*, data: str = "spiral", noise: float | None = None, hidden: tuple[int, ...] = (32, 32),
          epochs: int = 300, seed: int = 0, backend: str | None = None,
          progress: bool = False) -> Trained:
    """Make the point set from `seed`, split it, and train `network(hidden)` on it."""
    make = {"spiral": xb.data.spiral, "moons": xb.data.moons}[data]
    x, y = make(POINTS_PER_CLASS, CLASSES, noise=NOISE[data] if noise is None else noise,
                seed=seed)
    dataset = xb.data.train_test_split(x, y, test_fraction=0.25, seed=seed)
    model = network(hidden)
    fitted = xb.fit(model, dataset.x_train, dataset.y_train, loss=xb.SoftmaxCrossEntropy(),
                    optimizer=xb.optim.adam(0.01), epochs=epochs, batch_size=32, seed=seed,
                    backend=backend, progress="epochs" if progress else False,
                    validation_data=(dataset.x_test, dataset.y_test))
    history = fitted.history
    return Trained(model, xb.to_numpy(fitted.params), dataset, np.array(history["loss"]),
                   history["accuracy"][-1], history["val_accuracy"][-1],
                   xb.get_backend(backend).name, data)


@dataclasses.dataclass(frozen=True)
class Result:
    trained: Trained

    def __str__(self) -> str:
        t = self.trained
        d = t.data
        return "\n".join([
            (f"points: {t.name}, {CLASSES} classes, {len(d.x_train)} training and "
             f"{len(d.x_test)} test points"),
            (f"network {' → '.join(_shape(t.model))}, trained {len(t.losses)} epochs on "
             f"{t.backend} (Adam lr 0.01, batches of 32)"),
            (f"cross-entropy {t.losses[0]:.4f} in the first epoch, {t.losses[-1]:.4f} in "
             "the last"),
            f"accuracy: training {t.train_accuracy:.3f}, test {t.test_accuracy:.3f}",
        ])


def _shape(model: xb.Sequential) -> list[str]:
    """["2", "32 Tanh", "32 Tanh", "3"] for the network of this module."""
    parts = ["2"]
    for layer in model.layers:
        if isinstance(layer, xb.Dense):
            parts.append(str(layer.units))
        else:
            parts[-1] += f" {type(layer).__name__.lower()}"
    return parts


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, data: str = "spiral", noise: float | None = None) -> Result:
    return Result(train(data=data, noise=noise, epochs=100 if quick else 300, seed=seed,
                        backend=backend, progress=progress))


def predictor(trained: Trained) -> Any:
    """points (M, 2) -> class scores (M, 3), on NumPy, for the pictures."""
    params = xb.tree_to_backend(trained.params, "numpy")
    return lambda points: xb.predict(trained.model, params, points)


def draw(result: Result, out: Path) -> list[Path]:
    t = result.trained
    x = np.concatenate([t.data.x_train, t.data.x_test])
    y = np.concatenate([t.data.y_train, t.data.y_test])
    return [xb.plot.plot_decision_regions(
        predictor(t), x, y, out / "decision_regions.png", history=t.losses,
        class_names=[f"colour {k}" for k in range(CLASSES)],
        title=f"points: {t.name}, test accuracy {t.test_accuracy:.3f}")]
