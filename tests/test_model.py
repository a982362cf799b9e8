"""Models: Sequential chains layers forward and backward, its parameters are a pytree keyed
by layer, and `init_params` gives bit-identical float32 parameters on every backend for a
seed (float64 on request)."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.tree import tree_leaves, tree_paths


def mlp():
    return xb.Sequential([xb.Dense(5), xb.Tanh(), xb.Dense(4, weight_init="he_normal"),
                          xb.ReLU(), xb.Dense(3)])


pytestmark = pytest.mark.usefixtures("clean_backend_choice")


def test_params_are_keyed_by_layer():
    params = xb.init_params(mlp(), 0, (6,))
    assert [p for p, _ in tree_paths(params)] == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    assert params[1] == {} and params[3] == {}
    assert params[0]["W"].shape == (6, 5) and params[2]["W"].shape == (5, 4)
    assert params[4]["W"].shape == (4, 3) and params[4]["b"].shape == (3,)
    assert xb.count_params(params) == 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3
    assert mlp().output_shape((6,)) == (3,)
    assert xb.init_state(mlp(), (6,)) is None


def test_same_seed_bit_identical_float32_on_every_backend(backend):
    reference = xb.init_params(mlp(), 7, (6,), backend="numpy")
    params = xb.init_params(mlp(), 7, (6,), backend=backend)
    assert all(backend.is_array(p) for p in tree_leaves(params))
    for (path, a), b in zip(tree_paths(xb.to_numpy(params)), tree_leaves(reference)):
        assert a.dtype == np.float32, path
        np.testing.assert_array_equal(a, b, err_msg=path)
    other = xb.init_params(mlp(), 8, (6,), backend=backend)
    assert not np.array_equal(xb.to_numpy(other[0]["W"]), reference[0]["W"])


def test_init_params_casts_on_the_host_from_float64_draws():
    """float32 parameters are the float64 draws rounded once, on the host."""
    host = mlp().init(np.random.default_rng(3), (6,))
    params = xb.init_params(mlp(), 3, (6,))
    for a, b in zip(tree_leaves(params), tree_leaves(host)):
        np.testing.assert_array_equal(a, b.astype(np.float32))
    params64 = xb.init_params(mlp(), 3, (6,), dtype="float64")
    for a, b in zip(tree_leaves(params64), tree_leaves(host)):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(a, b)
    # a Generator works as a seed too
    from_rng = xb.init_params(mlp(), np.random.default_rng(3), (6,))
    for a, b in zip(tree_leaves(from_rng), tree_leaves(params)):
        np.testing.assert_array_equal(a, b)


def test_float64_on_jax_in_x64(jax_backend, x64):
    params = xb.init_params(mlp(), 1, (6,), dtype="float64", backend="jax")
    reference = xb.init_params(mlp(), 1, (6,), dtype="float64", backend="numpy")
    for a, b in zip(tree_leaves(params), tree_leaves(reference)):
        assert a.dtype == np.float64
        np.testing.assert_array_equal(np.asarray(a), b)


def test_float64_on_jax_without_x64_is_an_error(jax_backend):
    with pytest.raises(xb.DtypeError, match="jax_enable_x64"):
        xb.init_params(mlp(), 1, (6,), dtype="float64", backend="jax")


def test_only_float32_or_float64():
    with pytest.raises(xb.DtypeError, match="float16"):
        xb.init_params(mlp(), 0, (6,), dtype="float16")


def test_forward_chains_the_layers(backend):
    model = mlp()
    params = xb.init_params(model, 0, (6,), backend=backend)
    x = backend.asarray(np.random.default_rng(0).normal(size=(7, 6)), dtype="float32")
    y, caches = model.forward(params, x)
    assert len(caches) == 5 and y.shape == (7, 3)
    h = x
    for layer, p in zip(model.layers, params):
        h = layer(p, h)
    np.testing.assert_allclose(xb.to_numpy(y), xb.to_numpy(h), rtol=1e-6)
    np.testing.assert_allclose(xb.to_numpy(model(params, x)), xb.to_numpy(y), rtol=0)


def test_backward_walks_the_layers_in_reverse(backend):
    model = mlp()
    params = xb.init_params(model, 0, (6,), backend=backend)
    rng = np.random.default_rng(1)
    x = backend.asarray(rng.normal(size=(7, 6)), dtype="float32")
    dy = backend.asarray(rng.normal(size=(7, 3)), dtype="float32")
    _, caches = model.forward(params, x)
    dx, grads = model.backward(params, caches, dy)
    # by hand: each layer's backward on its own cache, last layer first
    d, expected = dy, [None] * 5
    for i in reversed(range(5)):
        d, expected[i] = model.layers[i].backward(params[i], caches[i], d)
    np.testing.assert_allclose(xb.to_numpy(dx), xb.to_numpy(d), rtol=1e-6)
    assert [p for p, _ in tree_paths(grads)] == [p for p, _ in tree_paths(params)]
    for a, b in zip(tree_leaves(grads), tree_leaves(expected)):
        np.testing.assert_allclose(xb.to_numpy(a), xb.to_numpy(b), rtol=1e-6)
    # param_grads: the same gradients, without dL/dx
    only = model.param_grads(params, caches, dy)
    for a, b in zip(tree_leaves(only), tree_leaves(grads)):
        np.testing.assert_allclose(xb.to_numpy(a), xb.to_numpy(b), rtol=1e-6)


def test_summary_lists_layers_shapes_and_counts():
    text = mlp().summary((6,))
    lines = text.splitlines()
    assert lines[0].split() == ["#", "layer", "output", "shape", "params"]
    assert "Dense(5)" in lines[1] and "(None, 5)" in lines[1] and lines[1].endswith("35")
    assert "Dense(4, weight_init='he_normal')" in lines[3]
    assert lines[-1].split() == ["total", str(35 + 24 + 15)]


def test_a_layer_class_instead_of_an_instance_is_a_clear_error():
    with pytest.raises(TypeError, match=r"item 1 is a type.*ReLU\(\)"):
        xb.Sequential([xb.Dense(3), xb.ReLU])


def test_params_for_another_model_are_a_clear_error():
    params = xb.init_params(mlp(), 0, (6,))
    with pytest.raises(ValueError, match="Sequential of 5 layers got parameters for 3"):
        mlp().forward(params[:3], np.ones((1, 6), np.float32))
    with pytest.raises(ValueError, match="init_params"):
        mlp().forward({"W": 1}, np.ones((1, 6), np.float32))


def test_wrong_input_width_names_the_layer():
    params = xb.init_params(mlp(), 0, (6,))
    with pytest.raises(ValueError, match=r"Dense\(5\) expects inputs of shape \(N, 6\)"):
        mlp().forward(params, np.ones((2, 5), np.float32))


def test_init_params_follows_the_current_backend(jax_backend):
    with xb.use_backend("jax"):
        params = xb.init_params(mlp(), 0, (6,))
    assert all(jax_backend.is_array(p) for p in tree_leaves(params))
    xb.set_backend("jax")
    assert all(jax_backend.is_array(p) for p in tree_leaves(xb.init_params(mlp(), 0, (6,))))


def test_model_under_jit_and_vmap_matches_eager(jax_backend):
    """The whole forward-loss-backward under `jax.jit`, and per-example under
    `jax.jit(jax.vmap(...))`, against the same code run eagerly (on NumPy, which runs the
    identical layer code; the layer tests compare against eager JAX)."""
    import jax

    model = mlp()
    params = xb.init_params(model, 0, (6,), backend="jax")
    host_params = xb.to_numpy(params)
    loss = xb.SoftmaxCrossEntropy()
    rng = np.random.default_rng(2)
    x_host = rng.normal(size=(8, 6)).astype(np.float32)
    y_host = rng.integers(0, 3, size=8)
    x, y = jax_backend.asarray(x_host), jax_backend.asarray(y_host)

    def f(params, x, y):
        return xb.loss_and_grads(model, loss, params, (x, y), xb.EVAL)[:2]

    value, grads = jax.jit(f)(params, x, y)
    e_value, e_grads = f(host_params, x_host, y_host)
    np.testing.assert_allclose(float(value), float(e_value), rtol=1e-5)
    for a, b in zip(tree_leaves(grads), tree_leaves(e_grads)):
        np.testing.assert_allclose(np.asarray(a), b, rtol=2e-5, atol=1e-6)
    # per-example losses and gradients: vmap over batches of one
    values, grads = jax.jit(jax.vmap(f, in_axes=(None, 0, 0)))(
        params, x.reshape(8, 1, 6), y.reshape(8, 1))
    assert values.shape == (8,) and grads[0]["W"].shape == (8, 6, 5)
    for i in range(8):
        v_i, g_i = f(host_params, x_host[i:i + 1], y_host[i:i + 1])
        np.testing.assert_allclose(float(values[i]), float(v_i), rtol=1e-5)
        for a, b in zip(tree_leaves(grads), tree_leaves(g_i)):
            np.testing.assert_allclose(np.asarray(a[i]), b, rtol=2e-5, atol=1e-6)
    # the mean loss is the mean of the per-example losses
    np.testing.assert_allclose(float(np.mean(values)), float(value), rtol=1e-5)
