"""three-inputs: one sigmoid neuron with three inputs learns a rule from four examples.

The rule is "the output is the first input", from Milo Spencer-Harper's "How to build a
simple neural network in 9 lines of Python code" (2015, after Andrew Trask's 11-line
network): the training set

    inputs  0 0 1 | 1 1 1 | 1 0 1 | 0 1 1
    output    0   |   1   |   1   |   0

y = σ(w1 x1 + w2 x2 + w3 x3), no bias, weights drawn from [−1, 1); E = ½ Σ (t − y)²; gradient
descent with learning rate 1 on all four examples at once, 10,000 times (1,000 with
--quick). Then the neuron meets an input it has never seen, (1, 0, 0), and answers
0.9999371, as in the original (its weights end near 9.67, −0.21, −4.63 from any start).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

import xbackprop as xb
from xbackprop.explain import format_table

SUMMARY = "one sigmoid neuron learns 'output = first input' from 4 examples, then predicts"
GALLERY = "weights.png"  # the picture the README shows

X = np.array([[0, 0, 1], [1, 1, 1], [1, 0, 1], [0, 1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)
UNSEEN = np.array([[1, 0, 0]], dtype=np.float32)
LEARNING_RATE = 1.0


def network() -> xb.Sequential:
    return xb.Sequential([xb.Dense(1, use_bias=False,
                                   weight_init=xb.initializers.uniform(-1.0, 1.0)),
                          xb.Sigmoid()])


@dataclasses.dataclass(frozen=True)
class Result:
    weights: np.ndarray   # (epochs + 1, 3) w1, w2, w3 before training and after each epoch
    losses: np.ndarray    # (epochs,) E per epoch
    outputs: np.ndarray   # (4,) the trained neuron on the training inputs
    unseen: float         # its answer for (1, 0, 0)
    backend: str

    def __str__(self) -> str:
        w0, w = self.weights[0], self.weights[-1]
        rows = [[" ".join(f"{v:g}" for v in x), f"{t:g}", f"{y:.4f}"]
                for x, t, y in zip(X, Y[:, 0], self.outputs)]
        weights = [[f"w{i + 1}", f"{a:+.4f}", f"{b:+.4f}"] for i, (a, b) in enumerate(zip(w0, w))]
        return "\n\n".join([
            (f"three-inputs: y = σ(w1 x1 + w2 x2 + w3 x3), rule 'y = x1', SGD lr "
             f"{LEARNING_RATE:g}, {len(self.losses):,} epochs on {self.backend}"),
            "weights\n" + format_table(["", "start", "learned"], weights,
                                       numeric=lambda c: c > 0),
            "training set\n" + format_table(["x1 x2 x3", "target", "output"], rows,
                                            numeric=lambda c: c > 0),
            (f"E = ½ Σ (t − y)²: {self.losses[0]:.4f} at the start, {self.losses[-1]:.6f} "
             "at the end"),
            (f"new situation (1, 0, 0) -> {self.unseen:.8f}  (the rule says 1; the weight "
             f"of largest size is w{int(np.abs(w).argmax()) + 1})"),
        ])


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False) -> Result:
    epochs = 1000 if quick else 10_000
    model = network()
    weights: list[np.ndarray] = []

    def keep_weights(epoch: int, logs: dict, state: xb.TrainState) -> None:
        weights.append(np.array(xb.to_numpy(state.params[0]["W"])).ravel())  # a copy

    start = xb.init_params(model, seed, (3,), backend=backend)
    fitted = xb.fit(model, X, Y, loss=xb.MSE("sum", scale=0.5),
                    optimizer=xb.optim.sgd(LEARNING_RATE), epochs=epochs, batch_size=4,
                    shuffle=False, params=start, backend=backend, progress=progress,
                    callbacks=[keep_weights])
    losses = np.array(fitted.history["loss"])
    outputs = xb.to_numpy(xb.predict(model, fitted.params, X))[:, 0]
    unseen = float(xb.to_numpy(xb.predict(model, fitted.params, UNSEEN))[0, 0])
    first = np.array(xb.to_numpy(start[0]["W"])).ravel()
    return Result(np.stack([first, *weights]), losses, outputs, unseen,
                  xb.get_backend(backend).name)


def draw(result: Result, out: Path) -> list[Path]:
    epochs = np.arange(len(result.weights))
    curves = {f"w{i + 1}": result.weights[:, i] for i in range(3)}
    return [
        xb.plot.plot_curves(curves, out / "weights.png", x=epochs, xlabel="epoch",
                            ylabel="weight", title="three-inputs: the weights as they learn"),
        xb.plot.plot_curves({"E = ½ Σ (t − y)²": result.losses}, out / "learning_curve.png",
                            log=True, logx=True, xlabel="epoch", ylabel="error E",
                            title="three-inputs: the learning curve"),
    ]
