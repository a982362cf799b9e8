"""worked-222 reproduces Matt Mazur's worked example to the printed digits on NumPy and JAX,
splits each gradient into the chain rule's factors, and trains to his 10,000-step error."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.examples import worked_222


def test_forward_pass_and_error(lesson_backend, quick):
    r = quick("worked-222", lesson_backend).record
    assert r.dtype == "float64"
    np.testing.assert_allclose(r.layers[0].y[0], [0.3775, 0.3925], rtol=1e-12)   # net_h1, net_h2
    np.testing.assert_allclose(r.layers[1].y[0], [0.593269992, 0.596884378], atol=1e-9)
    np.testing.assert_allclose(r.output[0], [0.75136507, 0.772928465], atol=1e-8)
    assert r.loss == pytest.approx(0.298371109, abs=1e-9)


def test_chain_rule_factors_of_w5(lesson_backend, quick):
    """∂E/∂w5 = ∂E/∂out_o1 × ∂out_o1/∂net_o1 × ∂net_o1/∂w5 = 0.74136507 × 0.186815602 ×
    0.593269992 = 0.082167041, each factor read from the layers' passes."""
    r = quick("worked-222", lesson_backend).record
    upstream = r.layers[3].dy[0, 0]
    local = r.layers[3].dx[0, 0] / upstream
    into = r.layers[2].x[0, 0]
    assert upstream == pytest.approx(0.74136507, abs=1e-8)
    assert local == pytest.approx(0.186815602, abs=1e-9)
    assert into == pytest.approx(0.593269992, abs=1e-9)
    assert r.grads[2]["W"][0, 0] == pytest.approx(0.082167041, abs=1e-9)
    assert upstream * local * into == pytest.approx(r.grads[2]["W"][0, 0], rel=1e-12)
    row = next(line for line in r.chain_rule(precision=9).splitlines()
               if line.split()[:1] == ["w5"])
    assert row.split() == ["w5", "0.74136507", "0.186815602", "0.138498562", "0.593269992",
                           "0.0821670406", "0.0821670406"]


def test_updated_weights(lesson_backend, quick):
    r = quick("worked-222", lesson_backend).record
    (w1, w3), (w2, w4) = r.new_params[0]["W"]
    (w5, w7), (w6, w8) = r.new_params[2]["W"]
    np.testing.assert_allclose([w1, w2, w3, w4],
                               [0.149780716, 0.19956143, 0.24975114, 0.29950229], atol=1e-8)
    np.testing.assert_allclose([w5, w6, w7, w8],
                               [0.35891648, 0.408666186, 0.511301270, 0.561370121], atol=1e-8)
    np.testing.assert_array_equal(r.new_params[0]["b"], [0.35, 0.35])   # biases stay fixed


def test_ten_thousand_steps(lesson_backend, quick):
    """E after 10,000 updates is 3.5102e-05; the error the 10,000th step computes (before
    its update) is Mazur's 0.0000351085."""
    result = quick("worked-222", lesson_backend, steps=10_000)
    assert result.steps == 10_000
    assert result.final_error == pytest.approx(3.5102e-05, rel=1e-4)
    assert result.errors[-1] == pytest.approx(3.51085e-05, rel=1e-5)
    assert result.errors[0] == pytest.approx(0.298371109, abs=1e-9)
    assert (np.diff(result.errors) < 0).all()              # it falls at every step
    np.testing.assert_allclose(result.final_output, [0.0159, 0.9841], atol=1e-4)


def test_quick_runs_a_thousand_steps_and_says_so(quick):
    result = quick("worked-222")
    assert result.steps == 1000
    report = str(result)
    assert "after 1,000 steps: E = " in report and "   1,000  " in report
    assert "0.0821670406" in report and "w8" in report


def test_steps_must_be_positive():
    with pytest.raises(ValueError, match="--steps must be at least 1"):
        worked_222.run(steps=0)
