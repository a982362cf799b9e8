"""xor learns exclusive or on NumPy and JAX, the same way on both."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.examples import xor


def test_quick_run_solves_xor(lesson_backend, quick):
    result = quick("xor", lesson_backend)
    assert result.solved
    np.testing.assert_allclose(result.output, result.target, atol=0.15)
    assert len(result.losses) == 2000
    assert result.losses[-1] < result.losses[0] / 20
    report = str(result)
    assert "solved" in report and report.count("\n   ") >= 4


def test_numpy_and_jax_take_the_same_path(jax_backend, quick):
    np.testing.assert_allclose(quick("xor", "numpy").losses, quick("xor", "jax").losses,
                               rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_other_starting_weights_also_solve_it(seed):
    assert xor.run(seed=seed, quick=True).solved


def test_the_starting_weights_are_the_tutorials(quick):
    """Uniform in [0, 1) and zero biases: before training every output sits above 0.5, so
    XOR is not solved by luck."""
    import xbackprop as xb

    params = xb.init_params(xor.network(), 0, (2,))
    first = xb.to_numpy(params)
    assert (first[0]["W"] >= 0).all() and (first[0]["W"] < 1).all()
    assert not first[0]["b"].any() and not first[2]["b"].any()
    out = xb.to_numpy(xb.predict(xor.network(), params, quick("xor").x))
    assert (out > 0.5).all()
