"""Activations: each forward against its formula in NumPy float64, its backward against the
derivative the docstring states, no overflow at extreme inputs, and the same numbers under
`jax.jit` and `jax.vmap` as eagerly."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xbackprop as xb

X = np.random.default_rng(3).normal(scale=3.0, size=(4, 6))
DY = np.random.default_rng(4).normal(size=(4, 6))


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_phi(x):
    """The standard normal distribution function from the C library's erf."""
    return 0.5 * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


GELU_C = math.sqrt(2 / math.pi)


def test_gelu_tanh_is_within_1e_3_of_the_exact_form():
    x = np.linspace(-6, 6, 1001)
    exact = xb.GELU("none")({}, x)
    np.testing.assert_allclose(xb.GELU("tanh")({}, x), exact, atol=1e-3)
    # (for x < 0, Φ(x) = ½ (1 + erf) loses digits to cancellation: 1e-15 absolute)
    np.testing.assert_allclose(exact, x * np_phi(x), rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="'tanh' or 'none'"):
        xb.GELU("erf")


def np_softmax(x, axis=-1):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


# layer, forward formula, derivative dy/dx as a function of (x, y), for elementwise ones
ELEMENTWISE = {
    "Identity": (xb.Identity(), lambda x: x, lambda x, y: np.ones_like(x)),
    "Sigmoid": (xb.Sigmoid(), np_sigmoid, lambda x, y: y * (1 - y)),
    "Tanh": (xb.Tanh(), np.tanh, lambda x, y: 1 - y * y),
    "ReLU": (xb.ReLU(), lambda x: np.maximum(x, 0), lambda x, y: (x > 0) * 1.0),
    "LeakyReLU": (xb.LeakyReLU(), lambda x: np.where(x > 0, x, 0.01 * x),
                  lambda x, y: np.where(x > 0, 1.0, 0.01)),
    "LeakyReLU(0.2)": (xb.LeakyReLU(0.2), lambda x: np.where(x > 0, x, 0.2 * x),
                       lambda x, y: np.where(x > 0, 1.0, 0.2)),
    # GELU: x Φ(x), Φ from C's erf; its tanh approximation as GPT-2 writes it
    "GELU(none)": (xb.GELU("none"), lambda x: x * np_phi(x),
                   lambda x, y: np_phi(x) + x * np.exp(-x * x / 2) / np.sqrt(2 * np.pi)),
    "GELU(tanh)": (xb.GELU(), lambda x: 0.5 * x * (1 + np.tanh(GELU_C * (x + 0.044715 * x**3))),
                   lambda x, y: 0.5 * (1 + np.tanh(GELU_C * (x + 0.044715 * x**3)))
                   + 0.5 * x * (1 - np.tanh(GELU_C * (x + 0.044715 * x**3)) ** 2)
                   * GELU_C * (1 + 3 * 0.044715 * x**2)),
}


@pytest.mark.parametrize("name", list(ELEMENTWISE))
def test_elementwise_forward_and_backward(backend, name):
    layer, f, df = ELEMENTWISE[name]
    x, dy = backend.asarray(X, dtype="float32"), backend.asarray(DY, dtype="float32")
    y, cache = layer.forward({}, x)
    dx, grads = layer.backward({}, cache, dy)
    assert grads == {}
    assert backend.is_array(y) and backend.numpy_dtype(y.dtype) == np.float32 and y.shape == X.shape
    assert backend.is_array(dx) and backend.numpy_dtype(dx.dtype) == np.float32
    y64 = f(X)
    np.testing.assert_allclose(xb.to_numpy(y), y64, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(xb.to_numpy(dx), DY * df(X, y64), rtol=1e-5, atol=1e-6)
    assert layer.output_shape((6,)) == (6,) and layer.init(np.random.default_rng(0), (6,)) == {}


def test_relu_gradient_at_zero_is_zero(backend):
    x = backend.asarray([[-1.0, 0.0, 2.0]], dtype="float32")
    _, cache = xb.ReLU().forward({}, x)
    dx, _ = xb.ReLU().backward({}, cache, backend.asarray([[5.0, 5.0, 5.0]], dtype="float32"))
    np.testing.assert_array_equal(xb.to_numpy(dx), [[0.0, 0.0, 5.0]])


@pytest.mark.parametrize("axis", [-1, 0])
def test_softmax_forward_and_backward(backend, axis):
    layer = xb.Softmax(axis=axis)
    x, dy = backend.asarray(X, dtype="float32"), backend.asarray(DY, dtype="float32")
    y, cache = layer.forward({}, x)
    y64 = np_softmax(X, axis)
    np.testing.assert_allclose(xb.to_numpy(y), y64, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(xb.to_numpy(y).sum(axis=axis), 1.0, rtol=1e-6)
    dx, _ = layer.backward({}, cache, dy)
    # dx_i = Σ_j dy_j ∂y_j/∂x_i with ∂y_j/∂x_i = y_j (δ_ij - y_i): the Jacobian, by hand
    expected = y64 * (DY - (DY * y64).sum(axis=axis, keepdims=True))
    np.testing.assert_allclose(xb.to_numpy(dx), expected, rtol=1e-5, atol=1e-6)


def test_softmax_jacobian_rows_on_one_sample():
    """The backward of a one-hot dy is a row of the explicit softmax Jacobian."""
    x = np.array([[0.5, -1.0, 2.0]])
    y, cache = xb.Softmax().forward({}, x)
    jac = np.diag(y[0]) - np.outer(y[0], y[0])
    for j in range(3):
        dy = np.zeros((1, 3))
        dy[0, j] = 1.0
        dx, _ = xb.Softmax().backward({}, cache, dy)
        np.testing.assert_allclose(dx[0], jac[j], rtol=1e-12, atol=1e-15)


def test_sigmoid_never_overflows():
    x = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # e^1000 would raise
        y = xb.Sigmoid()({}, x)
    assert y[0] == 0.0 and y[-1] == 1.0 and y[2] == 0.5
    np.testing.assert_allclose(y[1], np.exp(-50) / (1 + np.exp(-50)), rtol=1e-14)
    np.testing.assert_allclose(y[3], 1 / (1 + np.exp(-50)), rtol=1e-15)
    y32 = xb.Sigmoid()({}, x.astype(np.float32))
    assert np.isfinite(y32).all() and y32.dtype == np.float32


def test_extreme_inputs_stay_finite(backend):
    x = backend.asarray([[-1e4, -20.0, 0.0, 20.0, 1e4]], dtype="float32")
    dy = backend.asarray(np.ones((1, 5)), dtype="float32")
    for layer in [xb.Sigmoid(), xb.Tanh(), xb.Softmax(), xb.ReLU(), xb.LeakyReLU()]:
        y, cache = layer.forward({}, x)
        dx, _ = layer.backward({}, cache, dy)
        assert np.isfinite(xb.to_numpy(y)).all(), layer
        assert np.isfinite(xb.to_numpy(dx)).all(), layer
    y = xb.to_numpy(xb.Softmax()({}, x))
    np.testing.assert_array_equal(y, [[0, 0, 0, 0, 1]])


@pytest.mark.parametrize("layer", [xb.Sigmoid(), xb.Tanh(), xb.ReLU(), xb.LeakyReLU(0.1),
                                   xb.Softmax(), xb.Identity()], ids=lambda layer: repr(layer))
def test_jit_and_vmap_give_the_eager_results(jax_backend, layer):
    import jax

    def fwd_bwd(x, dy):
        y, cache = layer.forward({}, x)
        return y, layer.backward({}, cache, dy)[0]

    x = jax_backend.asarray(X, dtype="float32")
    dy = jax_backend.asarray(DY, dtype="float32")
    y, dx = fwd_bwd(x, dy)
    for got in [jax.jit(fwd_bwd)(x, dy), jax.vmap(fwd_bwd)(x, dy)]:
        np.testing.assert_allclose(np.asarray(got[0]), np.asarray(y), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.asarray(got[1]), np.asarray(dx), rtol=1e-6, atol=1e-7)
