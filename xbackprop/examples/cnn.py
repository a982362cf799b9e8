"""cnn: a small convolutional network on the 8x8 digits, with max and average pooling.

    (1, 8, 8) → conv 3x3, 8 filters → ReLU → max-pool 2x2   → (8, 4, 4)
              → conv 3x3, 16 filters → ReLU → avg-pool 2x2  → (16, 2, 2) → dense → 10 scores

trained with softmax cross-entropy and Adam (lr 0.003, batches of 32) for 20 epochs (3 with
--quick) on the 1,797 digits that ship with xbackprop. The pictures show the 8 learned 3x3
filters and what one test digit becomes after each layer (from `xb.explain`: the layers'
own outputs).

First, on a 4x4 example, where the two kinds of pooling send the gradient: max-pool gives
each window's upstream gradient to the one input that won the max (the others get 0),
average-pool shares it equally among the four.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

import xbackprop as xb

SUMMARY = "a CNN with max and average pooling on the digits: filters, feature maps, pool gradients"
GALLERY = "feature_maps.png"  # the picture the README shows

POOL_X = np.array([[1, 3, 2, 1],
                   [4, 2, 0, 1],
                   [1, 1, 5, 6],
                   [0, 2, 7, 3]], dtype=np.float32)
POOL_DY = np.array([[1, 2],
                    [3, 4]], dtype=np.float32)


def network() -> xb.Sequential:
    return xb.Sequential([xb.Conv2D(8, 3, padding=1), xb.ReLU(), xb.MaxPool2D(2),
                          xb.Conv2D(16, 3, padding=1), xb.ReLU(), xb.AvgPool2D(2),
                          xb.Flatten(), xb.Dense(10)])


def pooling_gradients(backend: str | None) -> dict[str, np.ndarray]:
    """POOL_X through MaxPool2D(2) and AvgPool2D(2), forward and backward with the upstream
    gradient POOL_DY: each layer's output and ∂L/∂x, from the layers' own passes."""
    b = xb.get_backend(backend)
    x = b.asarray(POOL_X[None, None])               # (N, C, H, W) = (1, 1, 4, 4)
    dy = b.asarray(POOL_DY[None, None])
    out = {}
    for name, layer in [("max", xb.MaxPool2D(2)), ("avg", xb.AvgPool2D(2))]:
        y, cache = layer.forward({}, x)
        dx, _ = layer.backward({}, cache, dy)
        out[f"{name} y"], out[f"{name} dx"] = xb.to_numpy(y)[0, 0], xb.to_numpy(dx)[0, 0]
    return out


@dataclasses.dataclass(frozen=True)
class Result:
    model: xb.Sequential
    params: Any                         # trained parameters (NumPy)
    history: dict[str, list[float]]
    test_accuracy: float
    pooling: dict[str, np.ndarray]      # "max y", "max dx", "avg y", "avg dx"
    stages: list[tuple[str, np.ndarray]]  # one test digit, layer by layer: (name, (C, H, W))
    digit: tuple[int, int]              # that digit's (label, prediction)
    backend: str

    def __str__(self) -> str:
        p = self.pooling

        def side_by_side(*blocks: tuple[str, np.ndarray]) -> str:
            """Matrices next to each other, each under its title."""
            columns = [[title] + ["  ".join(f"{v:4g}" for v in row) for row in m]
                       for title, m in blocks]
            widths = [max(len(line) for line in c) + 6 for c in columns]
            height = max(len(c) for c in columns)
            lines = [[(c[i] if i < len(c) else "").ljust(w) for c, w in zip(columns, widths)]
                     for i in range(height)]
            return "\n".join("  " + "".join(line).rstrip() for line in lines)

        summary = self.model.summary((1, 8, 8), self.params)
        label, prediction = self.digit
        return "\n\n".join([
            ("cnn: where pooling sends the gradient, on a 4x4 input x with 2x2 windows and "
             "upstream gradient dy"),
            side_by_side(("x", POOL_X), ("dy = ∂L/∂y (2x2)", POOL_DY)),
            side_by_side(("max-pool y", p["max y"]), ("max-pool ∂L/∂x", p["max dx"])),
            side_by_side(("avg-pool y", p["avg y"]), ("avg-pool ∂L/∂x", p["avg dx"])),
            ("max-pool: each window's dy goes to the one input that won the max, 0 "
             "elsewhere; avg-pool: dy / 4 to each of the four"),
            f"the network, trained {len(self.history['loss'])} epochs on {self.backend}:\n"
            + summary,
            (f"accuracy: training {self.history['accuracy'][-1]:.4f}, test "
             f"{self.test_accuracy:.4f}; the digit in the feature-map picture is a {label}, "
             f"predicted {prediction}"),
        ])


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False) -> Result:
    epochs = 3 if quick else 20
    data = xb.data.load_digits(seed=seed, flatten=False)     # x: (N, 1, 8, 8) in [0, 1]
    model = network()
    fitted = xb.fit(model, data.x_train, data.y_train, loss=xb.SoftmaxCrossEntropy(),
                    optimizer=xb.optim.adam(3e-3), epochs=epochs, batch_size=32, seed=seed,
                    backend=backend, progress="epochs" if progress else False,
                    validation_data=(data.x_test, data.y_test))
    history = dict(fitted.history)
    record = xb.explain(model, fitted.params, data.x_test[:1], data.y_test[:1],
                        xb.SoftmaxCrossEntropy(), train=False)
    stages = [("input", record.input[0])]
    stages += [(type(s.layer).__name__, s.y[0]) for s in record.layers if s.y.ndim == 4]
    digit = (int(data.y_test[0]), int(record.output[0].argmax()))
    return Result(model, xb.to_numpy(fitted.params), history, history["val_accuracy"][-1],
                  pooling_gradients(backend), stages, digit, xb.get_backend(backend).name)


def draw(result: Result, out: Path) -> list[Path]:
    p = result.pooling
    label, prediction = result.digit
    return [
        xb.plot.plot_filters(result.params[0]["W"], out / "filters.png",
                             title="cnn: the first layer's 3x3 filters, learned"),
        xb.plot.plot_feature_maps(result.stages, out / "feature_maps.png",
                                  title=f"cnn: one test digit ({label}, predicted "
                                        f"{prediction}) layer by layer"),
        xb.plot.plot_matrices({"input x": POOL_X, "upstream ∂L/∂y": POOL_DY,
                               "max-pool: ∂L/∂x": p["max dx"], "avg-pool: ∂L/∂x": p["avg dx"]},
                              out / "pooling_gradients.png", block=2,
                              title="cnn: where 2x2 pooling sends the gradient"),
        xb.plot.plot_history(result.history, out / "history.png", title="cnn: training"),
    ]
