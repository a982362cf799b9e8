"""BatchNorm for (N, F) and (N, C, H, W): batch statistics in train mode, running statistics
in eval mode, and the running update carried through training by TrainState."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb


@pytest.mark.parametrize("shape,axes", [((16, 5), (0,)), ((4, 3, 5, 6), (0, 2, 3))])
def test_train_mode_normalises_each_feature_over_the_batch(backend, shape, axes):
    rng = np.random.default_rng(0)
    x = rng.normal(3.0, 2.0, size=shape)
    layer = xb.BatchNorm()
    params = xb.init_params(layer, 0, shape[1:], backend=backend, dtype="float32")
    y, _ = layer.forward(params, backend.asarray(x, dtype="float32"), xb.Context(train=True))
    y = xb.to_numpy(y)
    np.testing.assert_allclose(y.mean(axis=axes), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=axes), 1.0, rtol=1e-3)


def test_forward_matches_the_formula_with_gamma_and_beta(backend):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 3, 2, 2))
    gamma, beta = rng.normal(size=3), rng.normal(size=3)
    layer = xb.BatchNorm(eps=1e-3)
    params = xb.tree_to_backend({"gamma": gamma, "beta": beta}, backend, "float32")
    y = xb.to_numpy(layer(params, backend.asarray(x, dtype="float32"), xb.Context(train=True)))
    mean = x.mean(axis=(0, 2, 3), keepdims=True)
    var = x.var(axis=(0, 2, 3), keepdims=True)
    expected = gamma[None, :, None, None] * (x - mean) / np.sqrt(var + 1e-3) \
        + beta[None, :, None, None]
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_running_statistics_update_and_eval_mode(backend):
    rng = np.random.default_rng(2)
    x = rng.normal(1.0, 3.0, size=(10, 4))
    layer = xb.BatchNorm(momentum=0.8)
    params = xb.init_params(layer, 0, (4,), backend=backend, dtype="float32")
    state = xb.init_state(layer, (4,), backend=backend, dtype="float32")
    _, cache = layer.forward(params, backend.asarray(x, dtype="float32"),
                             xb.Context(train=True, state=state))
    new = xb.to_numpy(layer.next_state(state, cache))
    np.testing.assert_allclose(new["mean"], 0.2 * x.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(new["var"], 0.8 + 0.2 * x.var(axis=0, ddof=1), rtol=1e-5)
    y = xb.to_numpy(layer(params, backend.asarray(x, dtype="float32"),
                          xb.Context(train=False, state=xb.tree_to_backend(new, backend))))
    np.testing.assert_allclose(y, (x - new["mean"]) / np.sqrt(new["var"] + 1e-5), rtol=1e-4,
                               atol=1e-5)
    # eval mode leaves the state alone
    _, eval_cache = layer.forward(params, backend.asarray(x, dtype="float32"),
                                  xb.Context(train=False, state=state))
    assert layer.next_state(state, eval_cache) is state


def test_eval_without_state_is_a_clear_error():
    layer = xb.BatchNorm()
    params = xb.init_params(layer, 0, (3,))
    with pytest.raises(ValueError, match="init_state"):
        layer(params, np.zeros((2, 3), np.float32), xb.EVAL)


def test_fit_carries_running_statistics_in_the_train_state(backend):
    """After training, the model state holds running statistics close to the data's."""
    rng = np.random.default_rng(3)
    x = rng.normal(5.0, 2.0, size=(256, 3)).astype(np.float32)
    y = (x[:, 0] > 5.0).astype(np.int64)
    model = xb.Sequential([xb.BatchNorm(momentum=0.5), xb.Dense(2)])
    result = xb.fit(model, x, y, loss="cross_entropy", optimizer=xb.optim.sgd(0.1), epochs=3,
                    batch_size=64, backend=backend, progress=False)
    running = xb.to_numpy(result.state.model_state[0])
    np.testing.assert_allclose(running["mean"], x.mean(axis=0), atol=0.5)
    np.testing.assert_allclose(running["var"], x.var(axis=0), rtol=0.3)
    assert result.state.model_state[1] is None


def test_per_sample_shape_must_be_features_or_chw():
    with pytest.raises(ValueError, match=r"\(N, F\) or \(N, C, H, W\)"):
        xb.BatchNorm().init(np.random.default_rng(0), (3, 4))
