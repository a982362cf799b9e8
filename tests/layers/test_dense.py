"""Dense: y = x W + b with W[i, j] the weight from input i to output j; its backward as the
textbook writes it (dx = dy Wᵀ, dW = xᵀ dy, db = Σ dy); shape errors that say what to do;
and the same numbers under `jax.jit` and `jax.vmap` as eagerly."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb

RNG = np.random.default_rng(42)
X = RNG.normal(size=(5, 3))
W = RNG.normal(size=(3, 4))
B = RNG.normal(size=(4,))
DY = RNG.normal(size=(5, 4))


def on(backend, *arrays, dtype="float32"):
    return [backend.asarray(a, dtype=dtype) for a in arrays]


def test_init_shapes_and_output_shape():
    layer = xb.Dense(4)
    params = layer.init(np.random.default_rng(0), (3,))
    assert set(params) == {"W", "b"}
    assert params["W"].shape == (3, 4) and params["b"].shape == (4,)
    assert layer.output_shape((3,)) == (4,)
    assert set(xb.Dense(4, use_bias=False).init(np.random.default_rng(0), (3,))) == {"W"}


def test_forward_is_x_w_plus_b(backend):
    x, w, b = on(backend, X, W, B)
    y, cache = xb.Dense(4).forward({"W": w, "b": b}, x)
    assert backend.is_array(y) and backend.numpy_dtype(y.dtype) == np.float32 and y.shape == (5, 4)
    np.testing.assert_allclose(xb.to_numpy(y), X @ W + B, rtol=1e-5, atol=1e-5)


def test_weight_index_convention():
    """W[i, j] connects input i to output j: a single 1 at W[2, 0] copies input 2 to
    output 0."""
    w = np.zeros((3, 2))
    w[2, 0] = 1.0
    y = xb.Dense(2, use_bias=False)({"W": w}, np.array([[10.0, 20.0, 30.0]]))
    np.testing.assert_array_equal(y, [[30.0, 0.0]])


def test_forward_without_bias(backend):
    x, w = on(backend, X, W)
    y = xb.Dense(4, use_bias=False)({"W": w}, x)
    np.testing.assert_allclose(xb.to_numpy(y), X @ W, rtol=1e-5, atol=1e-5)


def test_backward_is_the_textbook_formula(backend):
    x, w, b, dy = on(backend, X, W, B, DY)
    layer = xb.Dense(4)
    params = {"W": w, "b": b}
    _, cache = layer.forward(params, x)
    dx, grads = layer.backward(params, cache, dy)
    assert set(grads) == {"W", "b"}
    np.testing.assert_allclose(xb.to_numpy(dx), DY @ W.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xb.to_numpy(grads["W"]), X.T @ DY, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xb.to_numpy(grads["b"]), DY.sum(axis=0), rtol=1e-5, atol=1e-5)
    for g in [dx, grads["W"], grads["b"]]:
        assert backend.is_array(g) and backend.numpy_dtype(g.dtype) == np.float32
    # param_grads gives the same gradients without dx
    only = layer.param_grads(params, cache, dy)
    for k in grads:
        np.testing.assert_array_equal(xb.to_numpy(only[k]), xb.to_numpy(grads[k]))


def test_backward_without_bias_has_only_w(backend):
    x, w, dy = on(backend, X, W, DY)
    layer = xb.Dense(4, use_bias=False)
    _, cache = layer.forward({"W": w}, x)
    _, grads = layer.backward({"W": w}, cache, dy)
    assert set(grads) == {"W"}


def test_float64_stays_float64():
    y, cache = xb.Dense(4).forward({"W": W, "b": B}, X)
    dx, grads = xb.Dense(4).backward({"W": W, "b": B}, cache, DY)
    assert y.dtype == dx.dtype == grads["W"].dtype == np.float64
    np.testing.assert_allclose(y, X @ W + B, rtol=1e-14)


def test_wrong_feature_count_says_what_was_expected():
    with pytest.raises(ValueError) as info:
        xb.Dense(4)({"W": W, "b": B}, np.ones((5, 2)))
    assert "(N, 3)" in str(info.value) and "(5, 2)" in str(info.value)
    assert "Dense(4)" in str(info.value)


def test_leading_axes_are_rows_of_one_product(backend):
    """x: (B, T, F) is projected position by position: the same as the (B·T, F) matrix, and
    the weight gradient sums over every leading axis."""
    rng = np.random.default_rng(3)
    x, dy = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 4))
    layer = xb.Dense(4)
    assert layer.output_shape((5, 3)) == (5, 4)
    assert layer.output_shape((1, 8, 8)) == (1, 8, 4)  # images: Flatten() first if meant
    w, b, xs, dys = on(backend, W, B, x, dy)
    y, cache = layer.forward({"W": w, "b": b}, xs)
    dx, grads = layer.backward({"W": w, "b": b}, cache, dys)
    assert y.shape == (2, 5, 4) and dx.shape == (2, 5, 3)
    tol = dict(rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xb.to_numpy(y), x @ W + B, **tol)
    np.testing.assert_allclose(xb.to_numpy(dx), dy @ W.T, **tol)
    np.testing.assert_allclose(xb.to_numpy(grads["W"]), x.reshape(-1, 3).T @ dy.reshape(-1, 4),
                               **tol)
    np.testing.assert_allclose(xb.to_numpy(grads["b"]), dy.sum(axis=(0, 1)), **tol)


def test_jit_and_vmap_give_the_eager_results(jax_backend):
    import jax

    layer = xb.Dense(4)
    x, w, b, dy = on(jax_backend, X, W, B, DY)
    params = {"W": w, "b": b}

    def fwd_bwd(params, x, dy):
        y, cache = layer.forward(params, x)
        dx, grads = layer.backward(params, cache, dy)
        return y, dx, grads

    eager = fwd_bwd(params, x, dy)
    jitted = jax.jit(fwd_bwd)(params, x, dy)
    for e, j in zip(jax.tree_util.tree_leaves(eager), jax.tree_util.tree_leaves(jitted)):
        np.testing.assert_allclose(np.asarray(j), np.asarray(e), rtol=1e-6, atol=1e-6)

    # vmap over a stack of 3 batches (each (5, 3)): the same as each batch on its own
    xs = jax_backend.asarray(np.stack([X, 2 * X, -X]), dtype="float32")
    dys = jax_backend.asarray(np.stack([DY, DY, 3 * DY]), dtype="float32")
    ys, dxs, gs = jax.vmap(fwd_bwd, in_axes=(None, 0, 0))(params, xs, dys)
    assert ys.shape == (3, 5, 4) and gs["W"].shape == (3, 3, 4)
    for i in range(3):
        y_i, dx_i, g_i = fwd_bwd(params, xs[i], dys[i])
        np.testing.assert_allclose(np.asarray(ys[i]), np.asarray(y_i), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(dxs[i]), np.asarray(dx_i), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(gs["W"][i]), np.asarray(g_i["W"]), rtol=1e-6,
                                   atol=1e-6)
        np.testing.assert_allclose(np.asarray(gs["b"][i]), np.asarray(g_i["b"]), rtol=1e-6,
                                   atol=1e-6)


def test_hyperparameters_are_a_frozen_dataclass():
    assert xb.Dense(4) == xb.Dense(4) and xb.Dense(4) != xb.Dense(5)
    with pytest.raises(AttributeError):
        xb.Dense(4).units = 5  # type: ignore[misc]
