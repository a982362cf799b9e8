"""network-view: look inside a trained network, every unit at once, in parallel coordinates.

A 2 → 8 tanh → 8 tanh → 3 network learns the three spiral arms of `points` (or the moons,
with --data moons). Then every point goes through it once more, and each layer's output is
taken from the record of that pass (`xb.explain`, the layers' own forward outputs). The
picture has one vertical axis per unit, grouped by layer from input to output, and one
line per point following its activations, coloured by its class.

At the input the colours are tangled together; layer by layer they separate, until at the
output each colour scores highest on its own unit. The printed table measures it: the
share of the activations' variance that lies between the class means (0: the classes sit
on top of each other, 1: each class is a single point).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

import xbackprop as xb
from xbackprop.explain import format_table

from .points import CLASSES, Trained, train

SUMMARY = "parallel coordinates of a trained network: every unit, every point, by class"
GALLERY = "parallel_coordinates.png"  # the picture the README shows
OPTIONS = [(("--data",), {"choices": ["spiral", "moons"], "default": "spiral",
                          "help": "the point set (default spiral)"})]

HIDDEN = (8, 8)


def linear_probe(activations: np.ndarray, labels: np.ndarray, backend: str | None) -> float:
    """How linearly separable the classes are in these activations: the training accuracy
    of a softmax regression (one Dense layer) fitted to them, full batch, Adam, 300 steps
    (a "linear classifier probe", Alain & Bengio, 2016)."""
    probe = xb.Sequential([xb.Dense(CLASSES)])
    fitted = xb.fit(probe, activations, labels, loss=xb.SoftmaxCrossEntropy(),
                    optimizer=xb.optim.adam(0.05), epochs=300, batch_size=len(labels),
                    shuffle=False, backend=backend, progress=False)
    return fitted.history["accuracy"][-1]


@dataclasses.dataclass(frozen=True)
class Result:
    trained: Trained
    layers: list[tuple[str, np.ndarray]]   # (name, activations (N, units)), input to output
    labels: np.ndarray                     # (N,)
    probes: list[float]                    # linear-probe accuracy of each layer's activations

    def __str__(self) -> str:
        t = self.trained
        rows = [[name, str(a.shape[1]), f"{probe:.3f}"]
                for (name, a), probe in zip(self.layers, self.probes)]
        return "\n\n".join([
            (f"network-view: 2 → {' → '.join(f'{h} tanh' for h in HIDDEN)} → {CLASSES} "
             f"on the {t.name} ({len(self.labels)} points), trained {len(t.losses)} epochs "
             f"on {t.backend}; test accuracy {t.test_accuracy:.3f}"),
            "how well one straight cut per class separates the colours, layer by layer (the "
            "accuracy of a\nlinear classifier fitted to that layer's activations)\n"
            + format_table(["layer", "units", "linear probe"], rows),
        ])


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False, data: str = "spiral") -> Result:
    trained = train(data=data, hidden=HIDDEN, epochs=100 if quick else 300, seed=seed,
                    backend=backend, progress=progress)
    d = trained.data
    x, labels = np.concatenate([d.x_train, d.x_test]), np.concatenate([d.y_train, d.y_test])
    params = xb.tree_to_backend(trained.params, backend)
    record = xb.explain(trained.model, params, x, labels, xb.SoftmaxCrossEntropy(), train=False)
    layers = [("input", record.input)]
    for step in record.layers:
        if isinstance(step.layer, xb.Tanh):
            layers.append((f"hidden {len(layers)} (tanh)", step.y))
    layers.append(("output scores", record.output))
    probes = [linear_probe(a, labels, backend) for _, a in layers]
    return Result(trained, layers, labels, probes)


def draw(result: Result, out: Path) -> list[Path]:
    unit_names = [[f"x{i + 1}" for i in range(2)]]
    unit_names += [[f"h{b}.{u + 1}" for u in range(a.shape[1])]
                   for b, (_, a) in enumerate(result.layers[1:-1], start=1)]
    unit_names += [[f"class {k}" for k in range(CLASSES)]]
    return [xb.plot.plot_parallel_coordinates(
        result.layers, result.labels, out / "parallel_coordinates.png",
        unit_names=unit_names, class_names=[f"colour {k}" for k in range(CLASSES)],
        title=f"network-view: every point through the trained network ({result.trained.name})")]
