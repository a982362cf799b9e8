"""The forest-fires example: ln(area + 1) with early stopping, reported next to the mean
predictor with a verdict that matches the numbers (and says the data set is hard when the
network loses); and the same pipeline on a user's CSV through --csv/--target, where a
learnable table is learned, several targets get a picture each, and misuse is a clear error."""

from __future__ import annotations

import re

import numpy as np
import pytest

import xbackprop as xb
from tests.examples.conftest import check_png
from xbackprop import examples
from xbackprop.cli import main


@pytest.mark.parametrize("name", ["numpy", "jax"])
def test_quick_run_reports_honestly_and_draws(name, tmp_path, request):
    if name == "jax":
        request.getfixturevalue("jax_backend")
    result = examples.run("forest-fires", backend=name, quick=True)
    assert result.outputs == ("ln(area + 1)",)
    assert result.table.features == xb.data.shipped.FOREST_FIRES_FEATURES
    assert result.y_test.min() == 0 and result.y_test.max() < np.log1p(1100)  # ln scale
    stop = result.stopping
    assert stop.best_epoch is not None and stop.best_epoch < 15  # a handful of epochs
    assert len(result.history["val_loss"]) == (stop.stopped_epoch or 29) + 1
    assert min(result.history["val_loss"]) == result.history["val_loss"][stop.best_epoch]
    assert xb.metrics.regression_scores(result.predicted, result.y_test) == pytest.approx(
        result.scores)
    report = str(result)
    verdict = [line for line in report.splitlines() if line.startswith("ln(area + 1): the ")]
    assert len(verdict) == 1
    if result.beats_baseline(0):
        assert "beats the mean predictor" in verdict[0]
    else:
        assert "does NOT beat the mean predictor" in verdict[0]
        assert "This data set is hard" in verdict[0]
    paths = examples.draw("forest-fires", result, tmp_path)
    assert [p.name for p in paths] == ["predicted_vs_true.png", "history.png"]
    for path in paths:
        check_png(path, (500, 400))


def _learnable_csv(path, rows=300, seed=0):
    """y = 3·a - 2·b + (5 if kind is 'x') + noise, z = a·b: learnable from a, b and kind."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=rows), rng.uniform(-1, 1, size=rows)
    kind = rng.choice(["x", "y"], size=rows)
    y = 3 * a - 2 * b + 5 * (kind == "x") + 0.1 * rng.normal(size=rows) + 100
    z = a * b
    lines = ["a,b,kind,y,z"] + [f"{a[i]:.4f},{b[i]:.4f},{kind[i]},{y[i]:.4f},{z[i]:.4f}"
                                for i in range(rows)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_own_csv_through_the_command_line(tmp_path, capsys):
    table = _learnable_csv(tmp_path / "mine.csv")
    out = tmp_path / "pics"
    assert main(["example", "forest-fires", "--csv", str(table), "--target", "y,z",
                 "--features", "a,b,kind", "--hidden", "32", "--epochs", "150",
                 "--out", str(out)]) == 0
    report = capsys.readouterr().out
    assert "mine.csv: y, z from 4 features" in report
    assert "one-hot: kind (2 values: x, y) -> 2 columns" in report
    assert "y: the network beats the mean predictor" in report
    assert "z: the network beats the mean predictor" in report
    assert "This data set is hard" not in report
    r2 = float(report.split("y: the network beats the mean predictor (RMSE ")[1]
               .split("R² ")[1].split(")")[0])
    assert r2 > 0.9
    for name in ["predicted_vs_true_y.png", "predicted_vs_true_z.png", "history.png"]:
        check_png(out / name, (500, 400))


@pytest.mark.parametrize("args, message", [
    (["--csv", "{csv}"], "--csv needs --target COL"),
    (["--target", "y"], "--target needs --csv FILE"),
    (["--csv", "{csv}", "--target", "kind"], "'kind' is text .class labels.; this example "
                                             "does regression"),
    (["--csv", "{csv}", "--target", "a", "--log-target"], r"ln\(y \+ 1\) needs targets above "
                                                          "-1"),
    (["--csv", "{csv}", "--target", "price"], "no column 'price'"),
])
def test_misuse_is_a_clear_error(tmp_path, capsys, args, message):
    table = _learnable_csv(tmp_path / "mine.csv", rows=40)
    argv = ["example", "forest-fires", "--quick", "--no-plots",
            *[a.format(csv=table) for a in args]]
    assert main(argv) == 2
    assert re.search(message, capsys.readouterr().err)


def test_a_constant_target_is_an_error_not_a_division_by_zero(tmp_path, capsys):
    """A target that never varies: the mean predictor is exact, and comparing with it
    divided by its RMSE of 0 (ZeroDivisionError after the training)."""
    lines = ["a,b,y"] + [f"{i},{i * 2 % 7},5" for i in range(40)]
    (tmp_path / "flat.csv").write_text("\n".join(lines) + "\n")
    assert main(["example", "forest-fires", "--quick", "--no-plots", "--csv",
                 str(tmp_path / "flat.csv"), "--target", "y"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("xbackprop: error: flat.csv: the target 'y' is 5 in every "
                                   "training row, so there is nothing to predict; choose a "
                                   "target that varies")
    assert "Traceback" not in captured.err
