"""Learning-rate schedules against optax's, on Python ints, NumPy integers and traced JAX
integers under `jax.jit`."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xbackprop import schedules

optax = pytest.importorskip("optax", reason="optax is the reference (pip install optax)")

STEPS = list(range(0, 130, 1))


def test_constant():
    s = schedules.constant(0.3)
    assert [s(t) for t in (0, 1, 10**6)] == [0.3, 0.3, 0.3]


@pytest.mark.parametrize("lr, step_size, gamma", [(0.1, 10, 0.5), (1.0, 1, 0.9),
                                                  (0.02, 37, 0.1)])
def test_step_decay_matches_optax_staircase(lr, step_size, gamma):
    ours = schedules.step_decay(lr, step_size, gamma)
    theirs = optax.exponential_decay(lr, step_size, gamma, staircase=True)
    got = np.array([ours(t) for t in STEPS])
    # optax computes gamma ** k in float32 (about 4e-6 off after 40 decays)
    np.testing.assert_allclose(got, [float(theirs(t)) for t in STEPS], rtol=1e-5)
    # exact in float64 against the formula
    np.testing.assert_allclose(got, [lr * gamma ** (t // step_size) for t in STEPS], rtol=1e-15)
    assert ours(step_size - 1) == lr and ours(step_size) == pytest.approx(lr * gamma)


@pytest.mark.parametrize("lr, decay_steps, alpha", [(0.1, 100, 0.0), (2e-2, 30, 0.1),
                                                    (1.0, 7, 0.5)])
def test_cosine_decay_matches_optax(lr, decay_steps, alpha):
    import jax

    ours = schedules.cosine_decay(lr, decay_steps, alpha)
    theirs = optax.cosine_decay_schedule(lr, decay_steps, alpha=alpha)
    got = np.array([ours(t) for t in STEPS])
    with jax.enable_x64(True):  # optax in float64, so that the comparison can be tight
        expected = [float(theirs(t)) for t in STEPS]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert ours(0) == lr
    assert ours(decay_steps) == pytest.approx(alpha * lr, abs=1e-15)
    assert ours(10 * decay_steps) == ours(decay_steps)  # flat after the decay
    assert ours(decay_steps // 2) < lr


@pytest.mark.parametrize("peak, warmup, decay, end, init", [(1e-3, 100, 2000, 1e-4, 0.0),
                                                           (0.1, 10, 40, 0.0, 0.01),
                                                           (1.0, 0, 7, 0.5, 0.0)])
def test_warmup_cosine_matches_optax(peak, warmup, decay, end, init):
    """Linear warm-up, then cosine decay to `end` (nanoGPT's 1e-3 -> 1e-4 after 100 steps
    of warm-up first): optax's warmup_cosine_decay_schedule, which computes in float32."""
    ours = schedules.warmup_cosine(peak, warmup, decay, end, init)
    theirs = optax.warmup_cosine_decay_schedule(init, peak, warmup, decay, end)
    steps = sorted(set(STEPS) | {warmup - 1, warmup, warmup + 1, decay - 1, decay, 3 * decay})
    steps = [t for t in steps if t >= 0]
    got = np.array([ours(t) for t in steps])
    np.testing.assert_allclose(got, [float(theirs(t)) for t in steps], rtol=2e-6, atol=1e-9)
    assert ours(0) == (init if warmup else peak) and ours(warmup) == pytest.approx(peak)
    assert ours(decay) == pytest.approx(end) and ours(10 * decay) == ours(decay)
    for t in (0, warmup, decay // 2, decay + 3):  # NumPy integers take the array path
        assert float(ours(np.int64(t))) == pytest.approx(ours(t), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("args, match", [((1e-3, 100, 100), "0 <= warmup_steps < decay_steps"),
                                         ((1e-3, -1, 10), "0 <= warmup_steps < decay_steps"),
                                         ((0.0, 1, 10), "peak must be > 0"),
                                         ((1e-3, 1, 10, -1.0), "init, end >= 0")])
def test_warmup_cosine_bad_settings(args, match):
    with pytest.raises(ValueError, match=match):
        schedules.warmup_cosine(*args)


def test_cosine_decay_on_numpy_integers():
    s = schedules.cosine_decay(0.1, 50)
    for t in (0, 13, 50, 80):
        assert float(s(np.int64(t))) == pytest.approx(s(t), rel=1e-12)
        assert float(s(np.int32(t))) == pytest.approx(s(t), rel=1e-12)


def test_schedules_on_traced_steps_under_jit(jax_backend):
    import jax
    import jax.numpy as jnp

    for ours, theirs in [
        (schedules.cosine_decay(0.1, 40, 0.05), optax.cosine_decay_schedule(0.1, 40, 0.05)),
        (schedules.step_decay(0.1, 10, 0.5), optax.exponential_decay(0.1, 10, 0.5,
                                                                     staircase=True)),
        (schedules.constant(0.1), optax.constant_schedule(0.1)),
        (schedules.warmup_cosine(0.1, 10, 50, 0.01),
         optax.warmup_cosine_decay_schedule(0.0, 0.1, 10, 50, 0.01)),
    ]:
        f = jax.jit(lambda t, ours=ours: jnp.asarray(ours(t), dtype=jnp.float32))
        got = np.array([float(f(jnp.int32(t))) for t in range(0, 60, 7)])
        np.testing.assert_allclose(got, [float(theirs(t)) for t in range(0, 60, 7)], rtol=2e-6,
                                   atol=1e-9)
        # the optimizer feeds a float32 count: same values
        got_f = np.array([float(f(jnp.float32(t))) for t in range(0, 60, 7)])
        np.testing.assert_allclose(got_f, got, rtol=1e-6)


@pytest.mark.parametrize("bad", [lambda: schedules.step_decay(0.1, 0),
                                 lambda: schedules.cosine_decay(0.1, 0),
                                 lambda: schedules.cosine_decay(0.1, -5)])
def test_non_positive_periods_are_errors(bad):
    with pytest.raises(ValueError, match="positive"):
        bad()


def test_as_schedule():
    s = schedules.as_schedule(0.5)
    assert s(0) == 0.5 and s(99) == 0.5 and isinstance(s(3), float)
    assert schedules.as_schedule(2)(0) == 2.0
    f = schedules.cosine_decay(1.0, 10)
    assert schedules.as_schedule(f) is f
    for bad in (-1.0, math.nan, math.inf, "0.1", None):
        with pytest.raises(ValueError, match="learning rate"):
            schedules.as_schedule(bad)
