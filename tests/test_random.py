"""Counter-based random numbers: the same bits from the same key on every backend, no
hidden state, usable under `jax.jit`."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.random import bernoulli, fold_in, make_key, uniform


def test_make_key_splits_the_seed_into_two_uint32_words(backend):
    key = make_key(2**40 + 5, backend)
    assert backend.is_array(key) and backend.numpy_dtype(key.dtype) == np.uint32 and key.shape == (2,)
    np.testing.assert_array_equal(xb.to_numpy(key), [5, 2**8])
    np.testing.assert_array_equal(xb.to_numpy(make_key(2**64 - 1, backend)),
                                  [2**32 - 1, 2**32 - 1])


@pytest.mark.parametrize("seed", [-1, 2**64])
def test_make_key_rejects_seeds_out_of_range(seed):
    with pytest.raises(ValueError, match="seed"):
        make_key(seed)


def test_make_key_uses_the_current_backend(jax_backend):
    with xb.use_backend("jax"):
        assert jax_backend.is_array(make_key(1))


def _reference(seed: int, shape=(7, 13)):
    key = make_key(seed, "numpy")
    return key, uniform(key, shape), bernoulli(key, 0.3, shape), fold_in(key, 17)


def test_same_bits_on_every_backend(backend):
    key_np, u_np, b_np, f_np = _reference(123)
    key = make_key(123, backend)
    np.testing.assert_array_equal(xb.to_numpy(uniform(key, (7, 13))), u_np)
    np.testing.assert_array_equal(xb.to_numpy(bernoulli(key, 0.3, (7, 13))), b_np)
    np.testing.assert_array_equal(xb.to_numpy(fold_in(key, 17)), f_np)
    assert xb.to_numpy(fold_in(key, 17)).dtype == np.uint32


def test_uniform_is_in_the_unit_interval_with_24_bits(backend):
    u = xb.to_numpy(uniform(make_key(0, backend), (200_000,)))
    assert u.dtype == np.float32 and u.shape == (200_000,)
    assert u.min() >= 0.0 and u.max() < 1.0
    np.testing.assert_array_equal(u * 2**24, np.floor(u * 2**24))  # multiples of 2**-24
    counts = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    np.testing.assert_allclose(counts, 0.1, atol=0.004)
    # consecutive draws are not correlated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 0.01


def test_uniform_is_a_pure_function_of_key_and_shape(backend):
    key = make_key(5, backend)
    a = xb.to_numpy(uniform(key, (4, 6)))
    np.testing.assert_array_equal(a, xb.to_numpy(uniform(key, (4, 6))))
    np.testing.assert_array_equal(a.ravel(), xb.to_numpy(uniform(key, (24,))))
    assert not np.array_equal(a, xb.to_numpy(uniform(make_key(6, backend), (4, 6))))
    # the high word of the seed matters too
    assert not np.array_equal(a, xb.to_numpy(uniform(make_key(5 + 2**32, backend), (4, 6))))


def test_uniform_float64_on_numpy():
    u = uniform(make_key(1), (10,), dtype="float64")
    assert u.dtype == np.float64
    np.testing.assert_array_equal(u, uniform(make_key(1), (10,)).astype(np.float64))


@pytest.mark.parametrize("p", [0.0, 0.1, 0.5, 0.9, 1.0])
def test_bernoulli_probability(backend, p):
    b = xb.to_numpy(bernoulli(make_key(9, backend), p, (100_000,)))
    assert b.dtype == np.bool_
    if p in (0.0, 1.0):
        assert b.all() == bool(p) and b.any() == bool(p)
    else:
        assert abs(b.mean() - p) < 4 * np.sqrt(p * (1 - p) / b.size)


def test_fold_in_derives_distinct_keys(backend):
    key = make_key(3, backend)
    derived = {tuple(xb.to_numpy(fold_in(key, i)).tolist()) for i in range(32)}
    assert len(derived) == 32
    assert tuple(xb.to_numpy(key).tolist()) not in derived
    np.testing.assert_array_equal(xb.to_numpy(fold_in(key, 4)), xb.to_numpy(fold_in(key, 4)))
    # an integer array gives the same key as the same Python int
    np.testing.assert_array_equal(
        xb.to_numpy(fold_in(key, backend.asarray(np.int32(4)))), xb.to_numpy(fold_in(key, 4)))
    # derived keys give different streams
    a = xb.to_numpy(uniform(fold_in(key, 0), (50,)))
    b = xb.to_numpy(uniform(fold_in(key, 1), (50,)))
    assert not np.array_equal(a, b)


def test_under_jit_with_traced_key_and_data(jax_backend):
    import jax
    import jax.numpy as jnp

    key = make_key(77, "jax")

    @jax.jit
    def draw(k, step):
        k = fold_in(k, step)
        return uniform(k, (3, 5)), bernoulli(k, 0.25, (3, 5))

    u, b = draw(key, jnp.int32(12))
    eager_key = fold_in(make_key(77, "numpy"), 12)
    np.testing.assert_array_equal(np.asarray(u), uniform(eager_key, (3, 5)))
    np.testing.assert_array_equal(np.asarray(b), bernoulli(eager_key, 0.25, (3, 5)))
