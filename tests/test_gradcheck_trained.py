"""`check_model` at a trained model's actual parameters, on a real batch and its targets
(rather than random ones): the given arrays are the ones checked, from any backend, and a
wrong gradient is still caught there."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xbackprop as xb


def _trained(backend):
    """A 64-16-10 ReLU network after a few epochs on the 8x8 digits, and a real batch."""
    data = xb.data.load_digits(seed=0)
    model = xb.Sequential([xb.Dense(16, weight_init="he_normal"), xb.ReLU(), xb.Dense(10)])
    result = xb.fit(model, data.x_train, data.y_train, loss=xb.SoftmaxCrossEntropy(),
                    optimizer=xb.optim.sgd(0.1), epochs=2, batch_size=64, backend=backend,
                    progress=False)
    return model, result.params, data.x_test[:8], data.y_test[:8]


def test_trained_model_at_its_weights_on_a_real_batch(backend):
    model, params, x, y = _trained(backend)
    report = xb.check_model(model, x=x, params=params, loss=xb.SoftmaxCrossEntropy(), target=y,
                            backend=backend, oracle="fd")
    assert report.ok, report
    assert "x: (8, 64) + SoftmaxCrossEntropy(" in report.subject
    assert report.subject.endswith("at the given params, x")
    assert [r.tensor for r in report.rows] == ["x", "0.W", "0.b", "2.W", "2.b"]


@dataclasses.dataclass(frozen=True)
class SpyDense(xb.Dense):
    """Remembers the weights and inputs of its forward passes."""

    seen: list = dataclasses.field(default_factory=list, compare=False, hash=False)

    def forward(self, params, x, ctx=xb.EVAL):
        self.seen.append((np.array(params["W"]), np.array(x)))
        return super().forward(params, x, ctx)


@dataclasses.dataclass(frozen=True)
class DoubledDense(xb.Dense):
    """A weight gradient twice too large."""

    def param_grads(self, params, cache, dy):
        grads = super().param_grads(params, cache, dy)
        return dict(grads, W=2 * grads["W"])


def test_the_given_arrays_are_the_ones_checked():
    spy = SpyDense(3)
    model = xb.Sequential([spy, xb.Tanh()])
    params = xb.init_params(model, 5, (4,), backend="numpy")
    x = np.arange(8.0).reshape(2, 4) / 8
    report = xb.check_model(model, x=x, params=params, backend="numpy", oracle="fd")
    assert report.ok, report
    weights, inputs = spy.seen[0]
    np.testing.assert_array_equal(weights, params[0]["W"].astype(np.float64))
    np.testing.assert_array_equal(inputs, x)


def test_a_wrong_gradient_is_caught_at_the_given_weights(jax_backend):
    model = xb.Sequential([DoubledDense(3), xb.Sigmoid(), xb.Dense(2)])
    params = xb.init_params(model, 1, (4,), backend="jax")  # parameters of another backend
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    report = xb.check_model(model, x=x, params=params, loss="mse", target=np.zeros((3, 2)),
                            backend="numpy", oracle="both")
    assert {r.tensor for r in report.failures()} == {"0.W"}


def test_shape_arguments_must_agree():
    model = xb.Sequential([xb.Dense(2)])
    with pytest.raises(ValueError, match=r"input_shape \(3, 4\) but x has shape \(2, 4\)"):
        xb.check_model(model, (3, 4), x=np.zeros((2, 4)))
    with pytest.raises(ValueError, match="needs input_shape .random inputs. or x .a real batch."):
        xb.check_model(model)
