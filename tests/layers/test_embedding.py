"""Embedding and PositionEmbedding: rows looked up, repeated ids' gradients added (the
backend's index_add, on every backend, against its generic one-hot path), and the errors
for ids and lengths a model cannot take."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.backends import Backend

W = np.arange(12.0).reshape(4, 3)


def test_lookup_and_scatter_add_of_repeated_ids(backend):
    ids = backend.asarray(np.array([[1, 3, 1], [0, 1, 2]]))
    layer = xb.Embedding(4, 3)
    params = {"W": backend.asarray(W, dtype="float32")}
    y, cache = layer.forward(params, ids)
    np.testing.assert_array_equal(xb.to_numpy(y), W[[[1, 3, 1], [0, 1, 2]]])
    dy = np.arange(18.0).reshape(2, 3, 3)
    dx, grads = layer.backward(params, cache, backend.asarray(dy, dtype="float32"))
    assert dx is None  # integer ids get no gradient
    expected = np.zeros((4, 3))
    expected[1] = dy[0, 0] + dy[0, 2] + dy[1, 1]   # id 1 appears three times
    expected[3] = dy[0, 1]
    expected[0] = dy[1, 0]
    expected[2] = dy[1, 2]
    np.testing.assert_array_equal(xb.to_numpy(grads["W"]), expected)


def test_index_add_primitive_matches_the_generic_one_hot_path(backend):
    rng = np.random.default_rng(0)
    indices = rng.integers(0, 5, size=40)
    values = rng.normal(size=(40, 2, 3))
    target = rng.normal(size=(5, 2, 3))
    with backend.dtype_scope("float64"):
        # (NumPy adds in place: each call gets its own copy of the target)
        got = backend.index_add(backend.asarray(target.copy(), dtype="float64"),
                                backend.asarray(indices), backend.asarray(values, dtype="float64"))
        generic = Backend.index_add(backend, backend.asarray(target.copy(), dtype="float64"),
                                    backend.asarray(indices),
                                    backend.asarray(values, dtype="float64"))
    expected = target.copy()
    np.add.at(expected, indices, values)
    np.testing.assert_allclose(xb.to_numpy(got), expected, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(xb.to_numpy(generic), expected, rtol=1e-13, atol=1e-13)


def test_id_out_of_range_names_the_id_its_position_and_the_vocabulary():
    layer = xb.Embedding(65, 8)
    params = xb.init_params(layer, 0, (4,))
    ids = np.array([[1, 2, 3, 4], [5, 70, 6, 7]])
    with pytest.raises(ValueError, match=r"token id 70 at position \(1, 1\).*vocabulary of 65 "
                                         r"ids \[0, 65\)") as info:
        layer(params, ids)
    assert "vocab_size" in str(info.value)  # the fix
    with pytest.raises(ValueError, match="token id -1"):
        layer(params, np.array([[0, -1]]))


def test_float_ids_are_refused_with_the_fix():
    layer = xb.Embedding(5, 2)
    params = xb.init_params(layer, 0, (3,))
    with pytest.raises(TypeError, match=r"token ids must be integers.*float64.*astype\('int64'\)"):
        layer(params, np.array([[0.0, 1.0, 2.0]]))


def test_ids_are_checked_on_a_device_backend_too(jax_backend):
    layer = xb.Embedding(3, 2)
    params = xb.init_params(layer, 0, (2,), backend=jax_backend)
    with pytest.raises(ValueError, match="token id 3"):
        layer(params, jax_backend.asarray(np.array([[0, 3]])))


def test_position_embedding_adds_a_vector_per_position(backend):
    layer = xb.PositionEmbedding(5, 2)
    p = np.arange(10.0).reshape(5, 2)
    x = np.ones((2, 3, 2))
    with backend.dtype_scope("float64"):
        params = {"P": backend.asarray(p, dtype="float64")}
        y, cache = layer.forward(params, backend.asarray(x, dtype="float64"))
        dy = np.arange(12.0).reshape(2, 3, 2)
        dx, grads = layer.backward(params, cache, backend.asarray(dy, dtype="float64"))
    np.testing.assert_array_equal(xb.to_numpy(y), x + p[:3])
    np.testing.assert_array_equal(xb.to_numpy(dx), dy)
    expected = np.zeros((5, 2))
    expected[:3] = dy.sum(axis=0)     # positions 3, 4 were not used: zero gradient
    np.testing.assert_array_equal(xb.to_numpy(grads["P"]), expected)
    assert layer.max_positions == 5


def test_sequence_longer_than_max_len_is_a_clear_error():
    layer = xb.PositionEmbedding(4, 2)
    with pytest.raises(ValueError, match=r"6 positions, more than max_len 4: crop it"):
        layer({"P": np.zeros((4, 2))}, np.zeros((1, 6, 2)))
    with pytest.raises(ValueError, match="more than max_len 4"):
        xb.init_params(xb.Sequential([xb.Embedding(3, 2), layer]), 0, (6,))


def test_bad_settings():
    with pytest.raises(ValueError, match="vocab"):
        xb.Embedding(0, 3)
    with pytest.raises(ValueError, match="dim"):
        xb.PositionEmbedding(4, 2.5)
