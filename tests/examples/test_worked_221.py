"""worked-221 reaches the tutorial's numbers, on NumPy and JAX, and every gradient it prints
agrees with the tutorial's hand formulas and with finite differences of the error."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.examples import worked_221


def sigmoid(a):
    return 1 / (1 + np.exp(-a))


def error(w_hidden, w_output):
    """E = ½ (t − y5)², in plain NumPy float64."""
    y = sigmoid(sigmoid(np.array(worked_221.X) @ w_hidden) @ w_output)
    return 0.5 * float((worked_221.TARGET[0][0] - y[0, 0]) ** 2)


def test_forward_values_are_the_tutorials(lesson_backend, quick):
    r = quick("worked-221", lesson_backend).record
    assert r.dtype == "float64" and r.backend == lesson_backend
    np.testing.assert_allclose(r.layers[0].y[0], [0.21, 0.315], rtol=1e-12)     # a3, a4
    np.testing.assert_allclose(r.layers[1].y[0], [0.5523, 0.5781], atol=5e-5)    # y3, y4
    assert r.output[0, 0] == pytest.approx(0.6651, abs=5e-5)                     # y5
    assert quick("worked-221", lesson_backend).error == pytest.approx(-0.1651, abs=5e-5)


def test_deltas_and_updates_follow_the_hand_formulas(lesson_backend, quick):
    """δ5 = (y5 − t) y5 (1 − y5), δj = δ5 w_j5 y_j (1 − y_j), w ← w − η δ y."""
    r = quick("worked-221", lesson_backend).record
    y3, y4 = r.layers[1].y[0]
    y5, t = r.output[0, 0], 0.5
    d5 = (y5 - t) * y5 * (1 - y5)
    d3, d4 = d5 * 0.3 * y3 * (1 - y3), d5 * 0.9 * y4 * (1 - y4)
    np.testing.assert_allclose(r.layers[2].dy[0], [d5], rtol=1e-12)              # δ5
    np.testing.assert_allclose(r.layers[0].dy[0], [d3, d4], rtol=1e-12)          # δ3, δ4
    x1, x2 = 0.35, 0.7
    np.testing.assert_allclose(r.new_params[0]["W"], [[0.2 - d3 * x1, 0.3 - d4 * x1],
                                                      [0.2 - d3 * x2, 0.3 - d4 * x2]],
                               rtol=1e-12)
    np.testing.assert_allclose(r.new_params[2]["W"], [[0.3 - d5 * y3], [0.9 - d5 * y4]],
                               rtol=1e-12)


def test_gradients_match_finite_differences(lesson_backend, quick):
    r = quick("worked-221", lesson_backend).record
    wh, wo = np.array(worked_221.W_HIDDEN), np.array(worked_221.W_OUTPUT)
    h = 1e-6
    for key, w in [(0, wh), (2, wo)]:
        for index in np.ndindex(*w.shape):
            plus, minus = w.copy(), w.copy()
            plus[index] += h
            minus[index] -= h
            args = [(plus, wo), (minus, wo)] if key == 0 else [(wh, plus), (wh, minus)]
            numeric = (error(*args[0]) - error(*args[1])) / (2 * h)
            assert r.grads[key]["W"][index] == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def test_the_step_lowers_the_error(lesson_backend, quick):
    result = quick("worked-221", lesson_backend)
    assert result.error_after < result.record.loss
    assert result.error_after == pytest.approx(
        error(result.record.new_params[0]["W"], result.record.new_params[2]["W"]), rel=1e-12)
    assert result.output_after == pytest.approx(0.6596, abs=1e-4)


def test_report_uses_the_tutorials_names(quick):
    report = str(quick("worked-221"))
    for name in ["x1", "a3", "y3", "y4", "a5", "y5", "w13", "w23", "w14", "w24", "w35", "w45",
                 "δ = ∂E/∂net", "t − y5 = 0.5 − 0.665074 = -0.165074"]:
        assert name in report, name
