"""quadratic: the ReLU network fits y = x² + 2x − 3 with R² ≥ 0.99, on the training points
and halfway between them."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.examples import quadratic


def test_the_data_is_the_tutorials():
    x = np.arange(-7, 5, 0.05)
    assert len(x) == 240 and x[0] == -7 and x[-1] < 5
    np.testing.assert_allclose(quadratic.f(np.array([-1.0, 0.0, 1.0])), [-4, -3, 0])


def test_fit_reaches_r2_099(lesson_backend, quick):
    result = quick("quadratic", lesson_backend)
    assert result.train["r2"] >= 0.99 and result.between["r2"] >= 0.99
    assert result.train["rmse"] < 1.0
    assert len(result.losses) == 300 and result.losses[-1] < result.losses[0] / 100
    report = str(result)
    assert f"{result.train['r2']:.5f}" in report and "halfway between them" in report


def test_r2_and_rmse_are_the_textbook_formulas(quick):
    """R² = 1 − SS_res / SS_tot and RMSE = √mean((ŷ − y)²), from the trained network's own
    predictions."""
    import xbackprop as xb

    result = quick("quadratic")
    pred = xb.to_numpy(xb.predict(result.model, xb.tree_to_backend(result.params, "numpy"),
                                  result.x)).astype(np.float64)
    residual = np.sum((pred - result.y) ** 2)
    expected_r2 = 1 - residual / np.sum((result.y - result.y.mean()) ** 2)
    assert result.train["r2"] == pytest.approx(expected_r2, abs=1e-9)
    assert result.train["rmse"] == pytest.approx(np.sqrt(residual / len(pred)), rel=1e-6)
