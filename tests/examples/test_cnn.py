"""cnn: max-pool and avg-pool route the 4x4 example's gradient as the rules say, the
network learns the digits, and the feature maps are the layers' own outputs."""

from __future__ import annotations

import numpy as np


def test_pooling_gradients(lesson_backend, quick):
    p = quick("cnn", lesson_backend).pooling
    np.testing.assert_array_equal(p["max y"], [[4, 2], [2, 7]])
    np.testing.assert_array_equal(p["max dx"], [[0, 0, 2, 0], [1, 0, 0, 0],
                                                [0, 0, 0, 0], [0, 3, 4, 0]])
    np.testing.assert_allclose(p["avg y"], [[2.5, 1.0], [1.0, 5.25]])
    np.testing.assert_allclose(p["avg dx"], np.kron([[1, 2], [3, 4]], np.ones((2, 2))) / 4)


def test_learns_the_digits(lesson_backend, quick):
    result = quick("cnn", lesson_backend)
    assert len(result.history["loss"]) == 3 and result.test_accuracy >= 0.75
    assert result.history["loss"][-1] < result.history["loss"][0]


def test_feature_maps_are_each_layers_output(quick):
    names = [name for name, _ in quick("cnn").stages]
    maps = [m for _, m in quick("cnn").stages]
    assert names == ["input", "Conv2D", "ReLU", "MaxPool2D", "Conv2D", "ReLU", "AvgPool2D"]
    assert [m.shape for m in maps] == [(1, 8, 8), (8, 8, 8), (8, 8, 8), (8, 4, 4),
                                       (16, 4, 4), (16, 4, 4), (16, 2, 2)]
    np.testing.assert_array_equal(maps[2], np.maximum(maps[1], 0))
    windows = maps[2].reshape(8, 4, 2, 4, 2)
    np.testing.assert_array_equal(maps[3], windows.max(axis=(2, 4)))
    np.testing.assert_allclose(maps[6], maps[5].reshape(16, 2, 2, 2, 2).mean(axis=(2, 4)),
                               rtol=1e-6)


def test_report_prints_the_4x4_example(quick):
    report = str(quick("cnn"))
    assert "max-pool ∂L/∂x" in report and "avg-pool ∂L/∂x" in report
    assert "0.25  0.25   0.5   0.5" in report and "test" in report
