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


@pytest.mark.parametrize("shape", [(7, 3), (5, 2, 3, 2)])
def test_a_mask_gives_the_statistics_and_gradients_of_the_real_samples(backend, shape):
    """Train mode on a batch padded with junk rows and masked equals train mode on the real
    rows alone: outputs, parameter gradients, input gradients (zero for the padding) and the
    running-statistics update."""
    rng = np.random.default_rng(3)
    mask = np.ones(shape[0])
    mask[[1, shape[0] - 1]] = 0
    real = mask == 1
    x = rng.normal(2.0, 3.0, size=shape)
    x[~real] = 1e3 * rng.normal(size=x[~real].shape)  # junk that must not leak in
    dy = rng.normal(size=shape)  # the padded rows' dy must be ignored
    layer = xb.BatchNorm(momentum=0.5)
    params = xb.tree_to_backend({"gamma": rng.normal(size=shape[1]),
                                 "beta": rng.normal(size=shape[1])}, backend, "float32")
    dt = params["gamma"].dtype
    state = {"mean": backend.asarray(np.zeros(shape[1]), dtype=dt),
             "var": backend.asarray(np.ones(shape[1]), dtype=dt)}

    def run(x, dy, mask):
        ctx = xb.Context(train=True, state=state,
                         mask=None if mask is None else backend.asarray(mask, dtype=dt))
        y, cache = layer.forward(params, backend.asarray(x, dtype=dt), ctx)
        dx, grads = layer.backward(params, cache, backend.asarray(dy, dtype=dt))
        return xb.to_numpy((y, dx, grads, layer.next_state(state, cache)))

    y, dx, grads, new_state = run(x, dy, mask)
    y_r, dx_r, grads_r, state_r = run(x[real], dy[real], None)
    assert np.isfinite(y).all()
    tol = dict(rtol=2e-5, atol=2e-5)
    np.testing.assert_allclose(y[real], y_r, **tol)
    np.testing.assert_allclose(dx[real], dx_r, **tol)
    np.testing.assert_array_equal(dx[~real], 0.0)
    for name in ("gamma", "beta"):
        np.testing.assert_allclose(grads[name], grads_r[name], **tol)
    for name in ("mean", "var"):
        np.testing.assert_allclose(new_state[name], state_r[name], **tol)


def test_masked_batch_norm_gradients_against_the_oracle(backend):
    """The masked train-mode backward against jax.vjp / finite differences."""
    rng = np.random.default_rng(4)
    mask = np.array([1.0, 0.0, 1.0, 1.0, 0.0, 1.0])
    layer = xb.BatchNorm()

    def forward(x, gamma, beta):
        xp = xb.backend_of(x).xp
        ctx = xb.Context(train=True, mask=xp.asarray(mask, dtype=x.dtype))
        return layer.forward({"gamma": gamma, "beta": beta}, x, ctx)

    def backward(cache, dy):
        dx, grads = layer.backward(cache[0], cache[1], dy)
        return {"x": dx, **grads}

    def forward_keeping_params(x, gamma, beta):
        # the padded rows' outputs are unused downstream (a masked loss ignores them): the
        # checked function zeroes them, so its exact VJP is what the layer must compute
        y, cache = forward(x, gamma, beta)
        return y * xb.backend_of(y).xp.asarray(mask[:, None], dtype=y.dtype), (
            {"gamma": gamma, "beta": beta}, cache)

    inputs = {"x": rng.normal(size=(6, 3)), "gamma": rng.normal(size=3),
              "beta": rng.normal(size=3)}
    report = xb.check_function(forward_keeping_params, backward, inputs, backend=backend)
    assert report.ok, report


def test_layer_norm_normalises_each_sample_over_its_last_axis(backend):
    rng = np.random.default_rng(5)
    x = rng.normal(2.0, 3.0, size=(2, 5, 8))
    gamma, beta = rng.normal(size=8), rng.normal(size=8)
    layer = xb.LayerNorm()
    with backend.dtype_scope("float64"):
        params = xb.tree_to_backend({"gamma": gamma, "beta": beta}, backend, "float64")
        y = xb.to_numpy(layer(params, backend.asarray(x, dtype="float64")))
        plain = xb.to_numpy(xb.LayerNorm(scale=False, shift=False)(
            {}, backend.asarray(x, dtype="float64")))
    x_hat = (x - x.mean(axis=-1, keepdims=True)) / np.sqrt(x.var(axis=-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(y, gamma * x_hat + beta, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(plain.mean(axis=-1), 0.0, atol=1e-12)
    np.testing.assert_allclose(plain.var(axis=-1), 1.0, rtol=1e-5)  # (ε = 1e-5)
    # train and eval mode are the same: no batch statistics, no state
    assert layer.init_state((8,)) is None
    assert set(xb.LayerNorm(shift=False).init(rng, (8,))) == {"gamma"}
    with pytest.raises(ValueError, match="eps must be positive"):
        xb.LayerNorm(eps=0)
