"""The toy 2-D sets: their geometry, their labels and their seeding."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb


@pytest.mark.parametrize("make", [xb.data.spiral, xb.data.moons])
@pytest.mark.parametrize("classes", [2, 3, 5])
def test_shapes_labels_and_dtypes(make, classes):
    x, y = make(40, classes, seed=1)
    assert x.shape == (40 * classes, 2) and x.dtype == np.float32
    assert y.shape == (40 * classes,) and y.dtype.kind == "i"
    np.testing.assert_array_equal(np.bincount(y), [40] * classes)
    assert np.isfinite(x).all()
    assert make(3, classes, dtype="float64")[0].dtype == np.float64


@pytest.mark.parametrize("make", [xb.data.spiral, xb.data.moons])
def test_seeded(make):
    a, b, c = make(seed=3)[0], make(seed=3)[0], make(seed=4)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_spiral_without_noise_lies_on_the_arms():
    """Arm k: radius r from 0 to 1 at angle θ = 4 (k + r) for three classes."""
    x, y = xb.data.spiral(50, 3, noise=0.0, dtype="float64")
    r = np.linspace(0, 1, 50)
    for k in range(3):
        arm = x[y == k]
        np.testing.assert_allclose(np.hypot(arm[:, 0], arm[:, 1]), r, atol=1e-12)
        theta = 4 * (k + r)
        np.testing.assert_allclose(arm, np.stack([r * np.sin(theta), r * np.cos(theta)], 1),
                                   atol=1e-12)


def test_moons_without_noise_are_half_circles():
    """Two classes are scikit-learn's make_moons: an arch about (0, 0), a cup about (1, ½);
    the third moon is an arch about (2, 0)."""
    x, y = xb.data.moons(30, 3, noise=0.0, dtype="float64")
    for k, (cx, cy, up) in enumerate([(0, 0, True), (1, 0.5, False), (2, 0, True)]):
        moon = x[y == k]
        np.testing.assert_allclose(np.hypot(moon[:, 0] - cx, moon[:, 1] - cy), 1, atol=1e-12)
        assert ((moon[:, 1] >= cy - 1e-12) if up else (moon[:, 1] <= cy + 1e-12)).all()
    t = np.linspace(0, np.pi, 30)
    np.testing.assert_allclose(x[y == 1], np.stack([1 - np.cos(t), 0.5 - np.sin(t)], 1))


def test_noise_is_its_standard_deviation():
    clean = xb.data.moons(2000, 2, noise=0.0, dtype="float64")[0]
    noisy = xb.data.moons(2000, 2, noise=0.3, seed=0, dtype="float64")[0]
    assert np.std(noisy - clean) == pytest.approx(0.3, rel=0.05)


@pytest.mark.parametrize("kwargs, match", [({"n_per_class": 0}, "at least one"),
                                           ({"classes": 0}, "at least one"),
                                           ({"noise": -0.1}, r"finite number >= 0 \(got -0.1\)"),
                                           ({"noise": float("nan")}, r">= 0 \(got nan\)")])
@pytest.mark.parametrize("make", [xb.data.spiral, xb.data.moons])
def test_bad_arguments(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)
