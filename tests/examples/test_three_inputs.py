"""three-inputs: the neuron learns 'output = first input' and generalises to (1, 0, 0)."""

from __future__ import annotations

import numpy as np
import pytest


def test_learns_the_rule_and_predicts_the_unseen_input(lesson_backend, quick):
    result = quick("three-inputs", lesson_backend)
    np.testing.assert_allclose(result.outputs, [0, 1, 1, 0], atol=0.05)
    assert result.unseen > 0.99
    w1, w2, w3 = result.weights[-1]
    assert w1 > 4 and w3 < -1 and abs(w2) < 1     # x1 decides; x3 (always 1) pulls down
    assert result.weights.shape == (1001, 3) and result.losses[-1] < result.losses[0] / 50


def test_full_run_reaches_the_classic_answer():
    """10,000 steps: (1, 0, 0) -> 0.99993704 in the original nine-line program."""
    from xbackprop.examples import three_inputs

    result = three_inputs.run()
    assert result.unseen == pytest.approx(0.99993704, abs=2e-6)
    np.testing.assert_allclose(result.weights[-1], [9.6730, -0.2078, -4.6296], atol=0.01)


def test_numpy_and_jax_agree(jax_backend, quick):
    np.testing.assert_allclose(quick("three-inputs", "numpy").weights,
                               quick("three-inputs", "jax").weights, rtol=1e-4, atol=1e-5)


def test_report(quick):
    report = str(quick("three-inputs"))
    assert "new situation (1, 0, 0) -> 0.99" in report and "largest size is w1" in report
