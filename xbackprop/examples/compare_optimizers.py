"""compare-optimizers: SGD, momentum and Adam train the same network on the digits.

The network: 64 pixels → 128 ReLU → 64 ReLU → 10 scores (He-initialised), softmax
cross-entropy, mini-batches of 32, 20 epochs (3 with --quick), from the same starting
weights and in the same batch order for every optimizer. Each uses the learning rate that
suits it (`xb.optim.DEFAULT_LR`, what `xbackprop train --optimizer X` uses without --lr):
SGD 0.1; momentum 0.01, whose steps with μ = 0.9 add up to about 0.01 / (1 − μ) = 0.1 times
the gradient; Adam 0.001, which scales each weight's step by its gradient history. With a
rate that suits it, each gets there; a fourth run, SGD at Adam's rate, shows what a rate
that does not suit the rule costs.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import xbackprop as xb
from xbackprop.explain import format_table
from xbackprop.progress import ProgressBar

SUMMARY = "SGD, momentum and Adam on the digits: overlaid loss and accuracy curves"
GALLERY = "curves.png"  # the picture the README shows

#: (label, update rule, learning rate), in the order they are drawn
RUNS = [(rule, rule, xb.optim.DEFAULT_LR[rule]) for rule in ("sgd", "momentum", "adam")]
RUNS.append(("sgd at Adam's rate", "sgd", xb.optim.DEFAULT_LR["adam"]))


def network() -> xb.Sequential:
    return xb.Sequential([xb.Dense(128, weight_init="he_normal"), xb.ReLU(),
                          xb.Dense(64, weight_init="he_normal"), xb.ReLU(), xb.Dense(10)])


@dataclasses.dataclass(frozen=True)
class Result:
    histories: dict[str, dict[str, list[float]]]  # run label -> fit history
    seconds: dict[str, float]                     # run label -> training time
    backend: str

    def __str__(self) -> str:
        rows = []
        for label, rule, lr in RUNS:
            h = self.histories[label]
            reached = next((i + 1 for i, a in enumerate(h["val_accuracy"]) if a >= 0.9), None)
            rows.append([label, rule, f"{lr:g}", f"{h['loss'][-1]:.4f}",
                         f"{h['val_accuracy'][-1]:.4f}", f"{max(h['val_accuracy']):.4f}",
                         "-" if reached is None else str(reached), f"{self.seconds[label]:.1f}"])
        epochs = len(next(iter(self.histories.values()))["loss"])
        return (f"compare-optimizers: 64-128-64-10 ReLU on the digits, {epochs} epochs, batches "
                f"of 32, on {self.backend}\n\n" + format_table(
                    ["run", "rule", "lr", "train loss", "test accuracy", "best", "epochs to 0.9",
                     "seconds"], rows, numeric=lambda c: c >= 2))


def _shown_on(bar: ProgressBar) -> Callable[[int, dict, Any], None]:
    """A fit callback that shows each epoch's loss and validation accuracy on `bar`."""
    def show(epoch: int, logs: dict, state: Any) -> None:
        bar.update(loss=logs["loss"], val_accuracy=logs["val_accuracy"])
    return show


def run(*, backend: str | None = None, seed: int = 0, quick: bool = False,
        progress: bool = False) -> Result:
    epochs = 3 if quick else 20
    data = xb.data.load_digits(seed=seed)
    model = network()
    start = xb.init_params(model, seed, (64,), backend=backend)  # the same for everyone
    histories, seconds = {}, {}
    for label, rule, lr in RUNS:
        bar = ProgressBar(epochs, label, enabled=progress)
        t0 = time.perf_counter()
        fitted = xb.fit(model, data.x_train, data.y_train, loss=xb.SoftmaxCrossEntropy(),
                        optimizer=xb.optim.get_optimizer(rule, lr),
                        epochs=epochs, batch_size=32, seed=seed, params=start,
                        backend=backend, progress=False,
                        validation_data=(data.x_test, data.y_test),
                        callbacks=[_shown_on(bar)])
        seconds[label] = time.perf_counter() - t0
        histories[label] = {k: list(map(float, v)) for k, v in fitted.history.items()}
        bar.close(loss=histories[label]["loss"][-1],
                  val_accuracy=histories[label]["val_accuracy"][-1])
    return Result(histories, seconds, xb.get_backend(backend).name)


def draw(result: Result, out: Path) -> list[Path]:
    labelled = {f"{label} (lr {lr:g})" if label == rule else f"{label} ({lr:g})":
                result.histories[label] for label, rule, lr in RUNS}
    return [xb.plot.plot_histories(labelled, out / "curves.png",
                                   metrics=("loss", "val_loss", "val_accuracy"),
                                   title="compare-optimizers: one network on the digits, "
                                         "three update rules (and SGD at Adam's rate)")]

