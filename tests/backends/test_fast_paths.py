"""The speed primitives agree with the plain formulas: the backends' `sigmoid` (never
overflowing, never warning), `erf` (float64-accurate, the default against C's erf and every
backend against the default), NumPy's direct `sum`/`mean` (same values and dtypes as
np.sum/np.mean), and a train step that checks its arrays only at its boundary still
refuses arrays of another backend after its first call."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import backends


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_matches_the_formula_at_every_scale_without_warnings(backend, dtype, x64):
    x = np.array([-1000.0, -88.0, -30.0, -1.0, 0.0, 1e-3, 1.0, 30.0, 88.0, 1000.0], dtype)
    with np.errstate(over="ignore"):
        want = 1.0 / (1.0 + np.exp(-x.astype(np.float64)))  # float64 reference
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow warning would fail here
        got = backend.sigmoid(backend.asarray(x))
    got = backend.to_numpy(got)
    assert got.dtype == np.dtype(dtype)
    np.testing.assert_allclose(got, want, rtol=1e-6 if dtype == "float32" else 1e-14,
                               atol=1e-30)
    assert got[0] == 0.0 and got[-1] == 1.0 and got[4] == 0.5


def test_generic_erf_is_float64_accurate_against_c():
    """The default (series below 2.5, continued fraction above) over the real line, tiny
    arguments and the far tails included: within 2e-15 relative of C's erf."""
    x = np.concatenate([np.linspace(-8, 8, 20001), np.geomspace(1e-300, 1e-1, 300),
                        -np.geomspace(1e-300, 1e-1, 300), [0.0, 2.5, -2.5, 30.0, -30.0]])
    got = backends.Backend.erf(backends.get_backend("numpy"), x)
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(got, want, rtol=2e-15, atol=1e-300)
    assert got[-2] == 1.0 and got[-1] == -1.0 and np.isnan(backends.Backend.erf(
        backends.get_backend("numpy"), np.array([np.nan])))[0]


def test_every_backends_erf_matches_the_default(backend, x64):
    x = np.linspace(-7, 7, 2001)
    with backend.dtype_scope("float64"):
        got = backend.to_numpy(backend.erf(backend.asarray(x, dtype="float64")))
    want = np.array([math.erf(v) for v in x])
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-300)


@pytest.mark.parametrize("axis", [None, 0, 1, (0, 1)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_numpy_sum_and_mean_are_numpys(axis, keepdims):
    xp = xb.get_backend("numpy").xp
    rng = np.random.default_rng(0)
    for a in (rng.normal(size=(5, 3)).astype(np.float32), rng.integers(0, 9, (5, 3)),
              rng.normal(size=(5, 3))):
        for ours, theirs in ((xp.sum, np.sum), (xp.mean, np.mean)):
            got, want = ours(a, axis=axis, keepdims=keepdims), theirs(a, axis=axis,
                                                                       keepdims=keepdims)
            assert np.asarray(got).dtype == np.asarray(want).dtype, (ours, a.dtype)
            np.testing.assert_allclose(got, want, rtol=1e-6)


def test_a_trusted_step_still_refuses_another_backends_batch(jax_backend):
    model = xb.Sequential([xb.Dense(3), xb.Sigmoid(), xb.Dense(1)])
    opt = xb.optim.sgd(0.1)
    state = xb.TrainState.create(xb.init_params(model, 0, (2,)), opt)
    step = xb.make_train_step(model, "mse", opt, backend="numpy")
    x, y = np.ones((4, 2), np.float32), np.zeros((4, 1), np.float32)
    for _ in range(2):  # the first call checks everything, the second at the boundary
        state, _ = step(state, (x, y))
    assert not backends.is_trusted()  # the scope ends with the step
    with pytest.raises(backends.MixedBackendError, match="jax"):
        step(state, (jax_backend.asarray(x), y))
