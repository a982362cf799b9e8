"""The energy example: both outputs reach the promised R² ≥ 0.95 on the test rows (the full
run; it takes about a second on NumPy), the same numbers come out on JAX, the report's
per-output figures are the metrics of the predictions it returns, and each output gets its
picture."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from tests.examples.conftest import check_png
from xbackprop import examples


@pytest.fixture(scope="module")
def full_run():
    return examples.run("energy", backend="numpy")


def test_both_loads_reach_r2_095_and_beat_the_mean_predictor(full_run):
    result = full_run
    assert result.outputs == ("heating_load", "cooling_load")
    for k in range(2):
        assert result.scores[f"r2[{k}]"] >= 0.95, result
        assert result.beats_baseline(k)
        assert result.baseline[f"r2[{k}]"] <= 0.01  # a constant explains nothing
    assert result.stopping.best_epoch is not None
    np.testing.assert_allclose(result.baseline_value,
                               result.table.y_train.astype(np.float64).mean(axis=0), rtol=1e-6)
    recomputed = xb.metrics.regression_scores(result.predicted, result.y_test)
    assert recomputed == pytest.approx(result.scores)
    report = str(result)
    assert "network 8-64-64-2 ReLU" in report
    for k, name in enumerate(result.outputs):
        s = result.per_output(result.scores, k)
        assert f"{name:14s}  network         {s['rmse']:8.4f}  {s['mae']:8.4f}  {s['r2']:7.3f}" \
            in report
        assert f"{name}: the network beats the mean predictor" in report


def test_quick_run_on_jax_matches_numpy(jax_backend):
    on_jax = examples.run("energy", backend="jax", quick=True)
    on_numpy = examples.run("energy", backend="numpy", quick=True)
    assert on_jax.stopping.best_epoch == on_numpy.stopping.best_epoch
    np.testing.assert_allclose(on_jax.predicted, on_numpy.predicted, rtol=1e-3, atol=1e-3)
    assert min(on_jax.scores["r2[0]"], on_jax.scores["r2[1]"]) >= 0.9


def test_a_picture_per_output(full_run, tmp_path):
    paths = examples.draw("energy", full_run, tmp_path)
    assert [p.name for p in paths] == ["predicted_vs_true_heating_load.png",
                                       "predicted_vs_true_cooling_load.png", "history.png"]
    for path in paths:
        check_png(path, (500, 400))
