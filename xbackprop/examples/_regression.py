"""The regression pipeline the table examples share (forest-fires, energy, a user's --csv):
a small ReLU network on standardised features and targets, early stopping on a validation
split of the training rows, then test RMSE, MAE and R² per output next to the mean
predictor's. Not an example itself: `forest_fires.py` and `energy.py` are."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

import xbackprop as xb
from xbackprop import plot

METRICS = ("rmse", "mae", "r2")
#: an output "beats" the mean predictor when its test RMSE is at least this much lower
CLEAR_WIN = 0.02


@dataclasses.dataclass
class RegressionResult:
    """What `train_regressor` learned; `str(result)` is the report."""

    name: str  # the example's name: the report's first word
    title: str
    table: xb.data.Table
    outputs: tuple[str, ...]  # the targets as predicted, e.g. "ln(area + 1)"
    settings: str
    stopping: xb.EarlyStopping
    history: xb.History
    scores: dict[str, float]  # the network's, on the test rows
    baseline: dict[str, float]  # the mean predictor's
    baseline_value: np.ndarray  # (K,) the mean of the training targets
    y_test: np.ndarray  # (N, K), in the targets' units
    predicted: np.ndarray  # (N, K)
    seconds: float
    caveat: str = ""

    def per_output(self, scores: dict[str, float], k: int) -> dict[str, float]:
        """{"rmse", "mae", "r2"} of output k."""
        if len(self.outputs) == 1:
            return {m: scores[m] for m in METRICS}
        return {m: scores[f"{m}[{k}]"] for m in METRICS}

    def beats_baseline(self, k: int) -> bool:
        net, base = self.per_output(self.scores, k), self.per_output(self.baseline, k)
        return net["rmse"] < (1 - CLEAR_WIN) * base["rmse"]

    def __str__(self) -> str:
        stop = self.stopping
        stopped = (f"stopped after epoch {stop.stopped_epoch + 1}" if stop.stopped_epoch
                   is not None else f"ran all {len(self.history['loss'])} epochs")
        lines = [f"{self.name}: {self.title}", str(self.table), self.settings,
                 (f"early stopping on the validation loss (patience {stop.patience}): {stopped};"
                  f" best epoch {'?' if stop.best_epoch is None else stop.best_epoch + 1}, "
                  "whose weights are kept"), "",
                 f"test rows ({len(self.y_test)}):"]
        width = max(14, *map(len, self.outputs))
        lines.append(f"  {'output':{width}s}  {'model':14s}  {'RMSE':>8s}  {'MAE':>8s}  "
                     f"{'R²':>7s}")
        for k, name in enumerate(self.outputs):
            for label, scores in (("network", self.scores), ("mean predictor", self.baseline)):
                s = self.per_output(scores, k)
                lines.append(f"  {name if label == 'network' else '':{width}s}  {label:14s}  "
                             f"{s['rmse']:8.4f}  {s['mae']:8.4f}  {s['r2']:7.3f}")
        lines.append("")
        for k, name in enumerate(self.outputs):
            net, base = self.per_output(self.scores, k), self.per_output(self.baseline, k)
            change = net["rmse"] / base["rmse"] - 1 if base["rmse"] > 0 else float("inf")
            if self.beats_baseline(k):
                lines.append(f"{name}: the network beats the mean predictor (RMSE {change:+.0%}"
                             f", R² {net['r2']:.3f}).")
            else:
                lines.append(f"{name}: the network does NOT beat the mean predictor (RMSE "
                             f"{change:+.0%}): it has learned little that carries over to "
                             "new rows." + (f" {self.caveat}" if self.caveat else ""))
        lines.append(f"trained in {self.seconds:.1f} s")
        return "\n".join(lines)


def train_regressor(table: xb.data.Table, *, name: str, title: str,
                    hidden: Sequence[int] = (16,), log_target: bool = False, epochs: int = 200,
                    patience: int = 10, lr: float = 1e-3, batch_size: int = 16, seed: int = 0,
                    backend: str | None = None, caveat: str = "", progress: bool = False
                    ) -> RegressionResult:
    """Fit Dense(h)-ReLU-...-Dense(K) with Adam on MSE to `table` (features already
    standardised), the targets first ln(y + 1)-transformed if `log_target`, then
    standardised with the training rows' statistics. A fifth of the training rows is held
    out for early stopping; the test rows are used only at the end."""
    if epochs < 1:
        raise ValueError(f"--epochs must be at least 1, not {epochs}")
    if table.classification:
        raise ValueError(f"{table.source}: the target {table.targets[0]!r} is text (class "
                         "labels); this example does regression: choose a numeric target")
    y_train, y_test = table.y_train.astype(np.float64), table.y_test.astype(np.float64)
    outputs = table.targets
    for k, target in enumerate(outputs):
        values = np.unique(y_train[:, k])
        if len(values) == 1:  # the mean predictor is exact: nothing to learn or compare
            raise ValueError(f"{table.source}: the target {target!r} is {values[0]:g} in every "
                             "training row, so there is nothing to predict; choose a target "
                             "that varies")
    if log_target:
        low = min(y_train.min(), y_test.min())
        if low <= -1:
            raise ValueError(f"{table.source}: ln(y + 1) needs targets above -1, but "
                             f"{', '.join(outputs)} reaches {low:g}; drop --log-target")
        y_train, y_test = np.log1p(y_train), np.log1p(y_test)
        outputs = tuple(f"ln({t} + 1)" for t in outputs)
    scaler = xb.data.Standardizer().fit(y_train)
    fit_part = xb.data.train_test_split(table.x_train, scaler.transform(y_train).astype(
        table.x_train.dtype), test_fraction=0.2, seed=seed)
    layers: list[xb.Layer] = []
    for units in hidden:
        layers += [xb.Dense(units, weight_init="he_normal"), xb.ReLU()]
    model = xb.Sequential([*layers, xb.Dense(len(outputs))])
    stopping = xb.EarlyStopping(monitor="val_loss", patience=patience, restore_best=True)
    t0 = time.perf_counter()
    fitted = xb.fit(model, fit_part.x_train, fit_part.y_train, loss=xb.MSE(),
                    optimizer=xb.optim.adam(lr), epochs=epochs, batch_size=batch_size,
                    seed=seed, backend=backend, progress=progress, early_stopping=stopping,
                    validation_data=(fit_part.x_test, fit_part.y_test))
    seconds = time.perf_counter() - t0
    predicted = scaler.inverse_transform(
        xb.to_numpy(xb.predict(model, fitted.params, table.x_test)).astype(np.float64))
    mean = y_train.mean(axis=0)
    used = xb.get_backend(backend)
    shape = "-".join(str(n) for n in (len(table.features), *hidden, len(outputs)))
    settings = (f"network {shape} ReLU, MSE on standardised targets, Adam lr {lr}, batch "
                f"{batch_size}; {len(fit_part.x_train)} rows to fit, {len(fit_part.x_test)} "
                f"to validate, seed {seed}; backend {used.name} ({used.device})")
    stopping.best_state = None  # the best weights are in `fitted`; keep device arrays out
    return RegressionResult(
        name, title, table, outputs, settings, stopping, fitted.history,
        xb.metrics.regression_scores(predicted, y_test),
        xb.metrics.regression_scores(np.broadcast_to(mean, y_test.shape), y_test), mean,
        y_test, predicted, seconds, caveat)


def draw_regression(result: RegressionResult, out: Path, name: str) -> list[Path]:
    """One predicted-vs-true picture per output, and the loss curves."""
    paths = []
    for k, output in enumerate(result.outputs):
        suffix = "" if len(result.outputs) == 1 else "_" + result.table.targets[k]
        paths.append(plot.plot_predicted_vs_true(
            result.y_test[:, k], result.predicted[:, k], out / f"predicted_vs_true{suffix}.png",
            name=output, baseline=float(result.baseline_value[k]),
            title=f"{name}: {output} on the {len(result.y_test)} test rows"))
    paths.append(plot.plot_history(result.history, out / "history.png",
                                   title=f"{name}: MSE per epoch (standardised)"))
    return paths


def csv_option(value: str) -> list[str]:
    """"a,b" -> ["a", "b"] for the --target and --features options."""
    return [v.strip() for v in value.split(",") if v.strip()]
