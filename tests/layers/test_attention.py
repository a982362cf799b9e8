"""CausalSelfAttention: the forward pass against a direct NumPy transcription of the
formulas (softmax of masked scaled scores, weighted values, heads side by side), causality,
dropout of the weights, and the error for heads that do not divide the width. Its gradients
are proven by the oracle (tests/test_gradcheck.py), here also at a GPT-like size."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb


def reference(params, x, heads):
    """Attention written out with loops over batch and heads, in float64."""
    b, t, c = x.shape
    d = c // heads
    qkv = x @ params["W_qkv"] + params["b_qkv"]
    y = np.zeros((b, t, c))
    for n in range(b):
        for h in range(heads):
            q = qkv[n, :, h * d:(h + 1) * d]
            k = qkv[n, :, c + h * d:c + (h + 1) * d]
            v = qkv[n, :, 2 * c + h * d:2 * c + (h + 1) * d]
            for i in range(t):
                scores = np.array([q[i] @ k[j] / np.sqrt(d) for j in range(i + 1)])
                w = np.exp(scores - scores.max())
                w /= w.sum()
                y[n, i, h * d:(h + 1) * d] = w @ v[:i + 1]
    return y @ params["W_out"] + params["b_out"]


def test_forward_matches_the_formulas(backend):
    layer = xb.CausalSelfAttention(2)
    rng = np.random.default_rng(0)
    params = {k: v + 0.3 * rng.normal(size=v.shape)
              for k, v in layer.init(rng, (5, 6)).items()}
    x = rng.normal(size=(3, 5, 6))
    with backend.dtype_scope("float64"):
        y = layer(xb.tree_to_backend(params, backend, "float64"),
                  backend.asarray(x, dtype="float64"))
    np.testing.assert_allclose(xb.to_numpy(y), reference(params, x, 2), rtol=1e-10,
                               atol=1e-12)


def test_no_position_sees_the_future():
    layer = xb.CausalSelfAttention(2)
    params = xb.init_params(layer, 0, (6, 4), dtype="float64")
    x = np.random.default_rng(1).normal(size=(1, 6, 4))
    changed = x.copy()
    changed[:, 4:] += 10.0                        # change positions 4 and 5 only
    y, y2 = layer(params, x), layer(params, changed)
    np.testing.assert_array_equal(y[:, :4], y2[:, :4])
    assert not np.allclose(y[:, 4:], y2[:, 4:])
    weights = layer.attention_weights(params, x)  # (B, H, T, T)
    assert weights.shape == (1, 2, 6, 6)
    np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-12)
    assert np.all(np.triu(weights[0, 0], k=1) == 0.0)


def test_dropout_acts_in_train_mode_only():
    layer = xb.CausalSelfAttention(1, dropout=0.5)
    params = xb.init_params(layer, 0, (4, 2), dtype="float64")
    x = np.random.default_rng(2).normal(size=(2, 4, 2))
    eval_y = layer(params, x)
    np.testing.assert_array_equal(eval_y, xb.CausalSelfAttention(1)(params, x))
    key = xb.random.make_key(0)
    train_y = layer(params, x, xb.Context(train=True, key=key))
    assert not np.allclose(train_y, eval_y)
    assert layer.stochastic and not xb.CausalSelfAttention(1).stochastic
    with pytest.raises(ValueError, match="needs randomness"):
        layer(params, x, xb.Context(train=True))


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match=r"3 heads do not divide the width 8.*\[1, 2, 4, 8\]"):
        xb.init_params(xb.CausalSelfAttention(3), 0, (5, 8))
    with pytest.raises(ValueError, match="3 heads do not divide the width 8"):
        xb.CausalSelfAttention(3)({"W_qkv": np.zeros((8, 24)), "W_out": np.zeros((8, 8)),
                                   "b_qkv": np.zeros(24), "b_out": np.zeros(8)},
                                  np.zeros((1, 5, 8)))
    with pytest.raises(ValueError, match="heads is a positive int"):
        xb.CausalSelfAttention(0)
    with pytest.raises(ValueError, match=r"sequences x: \(B, T, C\)"):
        xb.init_params(xb.CausalSelfAttention(2), 0, (8,))


def test_gradients_at_a_gpt_like_size(jax_backend):
    """Four heads of eight features over sixteen positions, every tensor against jax.vjp."""
    report = xb.check_layer(xb.CausalSelfAttention(4), (2, 16, 32), backend="numpy",
                            oracle="jax")
    assert report.ok, report
    assert [r.tensor for r in report.rows] == ["x", "W_out", "W_qkv", "b_out", "b_qkv"]
