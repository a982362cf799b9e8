"""Weight initialisers: the distributions their docstrings promise, drawn on the host."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import initializers as init

FAN_IN, FAN_OUT = 200, 300
SHAPE = (FAN_IN, FAN_OUT)


def draw(fn):
    out = fn(np.random.default_rng(0), SHAPE, FAN_IN, FAN_OUT)
    assert isinstance(out, np.ndarray) and out.shape == SHAPE and out.dtype == np.float64
    return out


@pytest.mark.parametrize("name, bound", [
    ("glorot_uniform", np.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("he_uniform", np.sqrt(6 / FAN_IN)),
])
def test_uniform_initialisers_fill_their_interval(name, bound):
    w = draw(init.get_initializer(name))
    assert np.abs(w).max() <= bound
    assert np.abs(w).max() > 0.99 * bound
    assert abs(w.mean()) < 0.01 * bound
    np.testing.assert_allclose(w.std(), bound / np.sqrt(3), rtol=0.02)


@pytest.mark.parametrize("name, std", [
    ("he_normal", np.sqrt(2 / FAN_IN)),
    ("lecun_normal", np.sqrt(1 / FAN_IN)),
])
def test_normal_initialisers_have_their_variance(name, std):
    w = draw(init.get_initializer(name))
    np.testing.assert_allclose(w.std(), std, rtol=0.02)
    assert abs(w.mean()) < 0.02 * std
    # normal, not uniform: about 4.6% beyond two standard deviations
    assert 0.04 < np.mean(np.abs(w) > 2 * std) < 0.052


def test_zeros_ones_constant():
    np.testing.assert_array_equal(draw(init.zeros), 0.0)
    np.testing.assert_array_equal(draw(init.ones), 1.0)
    np.testing.assert_array_equal(draw(init.constant(0.35)), 0.35)


def test_uniform_range():
    w = draw(init.uniform(-2.0, 3.0))
    assert w.min() >= -2.0 and w.max() < 3.0
    assert w.min() < -1.9 and w.max() > 2.9
    u = draw(init.INITIALIZERS["uniform"])
    assert u.min() >= 0.0 and u.max() < 1.0


def test_same_generator_state_same_numbers():
    a = init.he_normal(np.random.default_rng(5), (3, 4), 3, 4)
    b = init.he_normal(np.random.default_rng(5), (3, 4), 3, 4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, init.he_normal(np.random.default_rng(6), (3, 4), 3, 4))


def test_get_initializer_by_name_or_function():
    assert init.get_initializer("he_normal") is init.he_normal
    fn = init.constant(2.0)
    assert init.get_initializer(fn) is fn
    with pytest.raises(ValueError) as info:
        init.get_initializer("xavier")
    assert "'xavier'" in str(info.value) and "glorot_uniform" in str(info.value)


def test_dense_uses_its_initialisers():
    layer = xb.Dense(4, weight_init=init.constant(0.5), bias_init="ones")
    params = xb.init_params(layer, 0, (3,))
    np.testing.assert_array_equal(params["W"], np.full((3, 4), 0.5, np.float32))
    np.testing.assert_array_equal(params["b"], np.ones(4, np.float32))
    default = xb.init_params(xb.Dense(4), 0, (3,))
    np.testing.assert_array_equal(default["b"], 0.0)  # biases start at zero
    bound = np.sqrt(6 / 7)
    assert np.abs(default["W"]).max() <= bound and default["W"].std() > 0.1
    with pytest.raises(ValueError, match="unknown initializer"):
        xb.init_params(xb.Dense(4, weight_init="nope"), 0, (3,))


@pytest.mark.parametrize("shape", [(5, 5), (3, 7), (7, 3)])
def test_orthogonal_has_orthonormal_rows_or_columns(shape):
    w = init.get_initializer("orthogonal")(np.random.default_rng(0), shape, *shape)
    assert w.shape == shape
    small = min(shape)
    gram = w @ w.T if shape[0] <= shape[1] else w.T @ w
    np.testing.assert_allclose(gram, np.eye(small), atol=1e-12)
    other = init.orthogonal(np.random.default_rng(1), shape, *shape)
    assert not np.allclose(w, other)  # random, not a fixed matrix
