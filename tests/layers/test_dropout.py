"""Dropout: identity in eval mode, inverted scaling in train mode, and the same mask from
the same key on every backend."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.random import make_key


def test_eval_mode_is_the_identity(backend):
    x = backend.asarray(np.random.default_rng(0).normal(size=(4, 5)), dtype="float32")
    y, cache = xb.Dropout(0.5).forward({}, x, xb.EVAL)
    assert y is x
    dy = backend.asarray(np.ones((4, 5)), dtype="float32")
    assert xb.Dropout(0.5).backward({}, cache, dy)[0] is dy


def test_train_mode_drops_about_rate_and_scales_survivors(backend):
    rate = 0.3
    x = backend.asarray(np.ones((200, 100)), dtype="float32")
    ctx = xb.Context(train=True, key=make_key(7, backend))
    y = xb.to_numpy(xb.Dropout(rate)(x=x, params={}, ctx=ctx))
    dropped = np.mean(y == 0)
    assert abs(dropped - rate) < 4 * np.sqrt(rate * (1 - rate) / y.size)
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / (1 - rate)], rtol=1e-6)
    assert backend.numpy_dtype(y.dtype) == np.float32
    assert abs(y.mean() - 1.0) < 0.02  # expectation preserved


def test_backward_uses_the_forward_mask(backend):
    x = backend.asarray(np.random.default_rng(1).normal(size=(6, 7)), dtype="float32")
    layer = xb.Dropout(0.5)
    y, cache = layer.forward({}, x, xb.Context(train=True, key=make_key(3, backend)))
    dx, _ = layer.backward({}, cache, backend.asarray(np.ones((6, 7)), dtype="float32"))
    np.testing.assert_array_equal(xb.to_numpy(dx) == 0, xb.to_numpy(y) == 0)


def test_same_key_same_mask_on_every_backend(jax_backend):
    masks = []
    for name in ["numpy", "jax"]:
        x = xb.asarray(np.ones((8, 9)), backend=name, dtype="float32")
        ctx = xb.Context(train=True, key=make_key(11, name))
        masks.append(xb.to_numpy(xb.Dropout(0.4)({}, x, ctx)))
    np.testing.assert_array_equal(masks[0], masks[1])
    other = xb.to_numpy(xb.Dropout(0.4)({}, xb.asarray(np.ones((8, 9)), dtype="float32"),
                                        xb.Context(train=True, key=make_key(12))))
    assert not np.array_equal(masks[0], other)


def test_dropout_under_jit_with_a_traced_key(jax_backend):
    import jax

    layer = xb.Dropout(0.5)
    x = xb.asarray(np.ones((5, 5)), backend="jax", dtype="float32")
    f = jax.jit(lambda k: layer({}, x, xb.Context(train=True, key=k)))
    key = make_key(5, "jax")
    np.testing.assert_array_equal(np.asarray(f(key)),
                                  xb.to_numpy(layer({}, x, xb.Context(train=True, key=key))))


def test_train_mode_without_a_key_says_what_to_do():
    with pytest.raises(ValueError, match="make_key"):
        xb.Dropout(0.5)({}, np.ones((2, 2), np.float32), xb.Context(train=True))


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5])
def test_rate_must_be_a_probability_below_one(rate):
    with pytest.raises(ValueError):
        xb.Dropout(rate)
