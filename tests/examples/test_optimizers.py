"""optimizers: the hand-written gradients pass the check, every rule goes downhill on both
functions, NumPy and JAX take the same paths, and the full run reaches Rosenbrock's
minimum with momentum, Nesterov and Adam."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.examples import optimizers


def test_gradients_pass_the_check(lesson_backend, quick):
    checks = quick("optimizers", lesson_backend).checks
    assert set(checks) == {"bowl", "rosenbrock"}
    assert all(report.ok for report in checks.values())


def test_every_rule_goes_downhill(lesson_backend, quick):
    result = quick("optimizers", lesson_backend)
    assert result.steps == 300
    for name, paths in result.paths.items():
        assert set(paths) == {"sgd", "momentum", "nesterov", "adam", "rmsprop", "adagrad"}
        for rule, path in paths.items():
            assert path.points.shape == (301, 2)
            np.testing.assert_allclose(path.points[0], optimizers.START)
            f = optimizers.SURFACES[name].f
            np.testing.assert_allclose(path.values, [f(p) for p in path.points.astype(float)],
                                       rtol=1e-4, atol=1e-6)
            assert path.value < path.values[0] / (100 if name == "bowl" else 2), (name, rule)
    assert result.paths["rosenbrock"]["nesterov"].value < 0.1


def test_numpy_and_jax_take_the_same_paths(jax_backend, quick):
    """Step for step in float32; on Rosenbrock for the first 50 steps only, since SGD's
    zigzag across the steep valley amplifies float32 rounding differences later on."""
    for name in optimizers.SURFACES:
        steps = 301 if name == "bowl" else 51
        for rule in optimizers.RULES:
            a = quick("optimizers", "numpy").paths[name][rule].points[:steps]
            b = quick("optimizers", "jax").paths[name][rule].points[:steps]
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4, err_msg=f"{name} {rule}")


def test_full_run_finds_rosenbrocks_minimum():
    result = optimizers.run(backend="numpy")
    assert result.steps == 2000
    for rule in ["momentum", "nesterov", "adam"]:
        path = result.paths["rosenbrock"][rule]
        assert path.value < 1e-6, rule
        np.testing.assert_allclose(path.x, [1, 1], atol=1e-3)
    sgd = result.paths["rosenbrock"]["sgd"]
    assert 1e-3 < sgd.value < 0.1  # still crawling along the valley


def test_report_has_a_table_per_function(quick):
    report = str(quick("optimizers"))
    assert "bowl: f(x, y) = x² + y²" in report and "rosenbrock: f(x, y) = (1 − x)²" in report
    assert report.count("adagrad") == 2 and "f after 300" in report
    assert "-0.0000" not in report


def test_steps_option(quick):
    assert quick("optimizers", steps=5).steps == 5


@pytest.mark.parametrize("name", list(optimizers.SURFACES))
def test_gradients_are_right_by_finite_differences(name):
    s = optimizers.SURFACES[name]
    p, h = np.array([0.3, -0.7]), 1e-6
    numeric = [(s.f(p + h * e) - s.f(p - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(s.grad(p), numeric, rtol=1e-6)
