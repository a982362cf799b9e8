"""Property tests (hypothesis): for every layer and loss in the registries, on every backend,
random shapes, batch sizes and values of every scale give finite outputs and hand-written
gradients that match the oracle (jax.vjp in float64, or finite differences without JAX);
and every loss stays finite and right at logits of ±1e4, against float64 NumPy formulas
written independently here.

Kept to about a minute in all: few examples per backend, shapes small, `deadline=None`
(the first example of a shape compiles on JAX).
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import xbackprop as xb
from xbackprop.gradcheck import _train_differs
from xbackprop.layers.base import Context, layer_classes
from xbackprop.losses import loss_classes
from xbackprop.random import make_key

LAYERS = layer_classes()
LOSSES = loss_classes()
ORACLE = "jax" if importlib.util.find_spec("jax") else "fd"
# backend fixtures are stateless values: reusing one across examples is safe
SETTINGS = dict(deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


@settings(max_examples=12, **SETTINGS)
@given(data=st.data())
def test_every_layer_at_random_shapes_batches_and_scales(backend, data):
    name = data.draw(st.sampled_from(sorted(LAYERS)), label="layer")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    examples = list(LAYERS[name].examples(np.random.default_rng(seed)))
    layer, shape = data.draw(st.sampled_from(examples), label="example")
    batch = data.draw(st.integers(1, 5), label="batch")
    scale = data.draw(st.sampled_from([1e-3, 0.3, 1.0, 10.0, 100.0]), label="scale")
    train = data.draw(st.booleans(), label="train") and _train_differs(layer, shape)
    x = layer.random_input(np.random.default_rng(seed), (batch, *shape))
    ids = x.dtype.kind in "iu"  # token ids: valid ids, no scale, kept integers
    x = x if ids else x * scale

    # the training dtype: finite outputs on this backend
    params = xb.init_params(layer, seed, shape, backend=backend)
    state = xb.init_state(layer, shape, backend=backend)
    ctx = Context(train=train, key=make_key(seed, backend), state=state) if train else \
        Context(state=state)
    y = xb.to_numpy(layer(params, backend.asarray(x, dtype=None if ids else "float32"), ctx))
    assert np.isfinite(y).all(), (layer, shape, batch, scale)

    # the hand-written backward in float64 against the oracle, at these very inputs
    report = xb.check_model(layer, x=x, backend=backend, oracle=ORACLE, train=train, seed=seed)
    assert report.ok, report


@settings(max_examples=8, **SETTINGS)
@given(data=st.data())
def test_every_loss_at_random_shapes_and_scales(backend, data):
    name = data.draw(st.sampled_from(sorted(LOSSES)), label="loss")
    seed = data.draw(st.integers(0, 2**16), label="seed")
    rng = np.random.default_rng(seed)
    loss, shape, maker = data.draw(st.sampled_from(list(LOSSES[name].examples(rng))),
                                   label="example")
    batch = data.draw(st.integers(1, 6), label="batch")
    shape = (batch, *shape[1:])
    target = maker(rng, shape)
    low, high = loss.pred_range or (None, None)
    if low is None:
        scale = data.draw(st.sampled_from([1e-3, 1.0, 30.0]), label="scale")
        pred = rng.normal(size=shape) * scale
    else:
        pred = rng.uniform(low, high, size=shape)
    value = xb.to_numpy(loss(backend.asarray(pred, dtype="float32"),
                             backend.asarray(target, dtype=None if np.asarray(target).dtype.kind
                                             == "i" else "float32")))
    assert np.isfinite(value), (loss, shape)
    report = xb.check_loss(loss, shape, target, backend=backend, oracle=ORACLE, seed=seed)
    assert report.ok, report


# -- logits of ±1e4 -------------------------------------------------------------------------

def _logsumexp(z: np.ndarray) -> np.ndarray:
    top = z.max(axis=1, keepdims=True)
    return (top + np.log(np.exp(z - top).sum(axis=1, keepdims=True)))[:, 0]


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _reference(name: str, z: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-item loss and dL/dz of the sum, in float64, by the textbook stable formulas."""
    if name == "SoftmaxCrossEntropy":
        onehot = np.eye(z.shape[1])[t]
        return _logsumexp(z) - (onehot * z).sum(axis=1), _softmax(z) - onehot
    if name == "BinaryCrossEntropyWithLogits":
        value = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        return value, 0.5 * (1 + np.tanh(z / 2)) - t      # σ(z) without overflow
    if name == "MSE":
        return (z - t) ** 2, 2 * (z - t)
    raise AssertionError(name)


EXTREME = st.sampled_from([-1e4, -30.0, -1.0, 0.0, 2.5, 1e4])


@settings(max_examples=10, **SETTINGS)
@given(data=st.data())
def test_losses_stay_finite_and_right_at_logits_of_1e4(backend, data):
    """Logits mixing ±1e4 with ordinary values, float32 on the backend: the loss and its
    gradient are finite and equal the float64 reference (relative to their size)."""
    name = data.draw(st.sampled_from(["SoftmaxCrossEntropy", "BinaryCrossEntropyWithLogits",
                                      "MSE"]), label="loss")
    n = data.draw(st.integers(1, 4), label="batch")
    k = data.draw(st.integers(2, 4), label="classes")
    z = np.array(data.draw(st.lists(EXTREME, min_size=n * k, max_size=n * k)),
                 dtype=np.float64).reshape(n, k)
    rng = np.random.default_rng(n * 10 + k)
    if name == "SoftmaxCrossEntropy":
        t = rng.integers(0, k, size=n)
        target = backend.asarray(t)
    else:
        t = (rng.uniform(size=(n, k)) > 0.5).astype(np.float64)
        target = backend.asarray(t, dtype="float32")
    loss = LOSSES[name]("sum")
    value, cache = loss.forward(backend.asarray(z, dtype="float32"), target)
    grad = xb.to_numpy(loss.backward(cache))
    want_value, want_grad = _reference(name, z, t)
    assert np.isfinite(float(value)) and np.isfinite(grad).all()
    assert float(value) == pytest.approx(want_value.sum(), rel=1e-5, abs=1e-3)
    np.testing.assert_allclose(grad, want_grad, rtol=1e-5, atol=1e-5 * max(1.0, abs(z).max()
                                                                           if name == "MSE"
                                                                           else 1.0))


@settings(max_examples=6, **SETTINGS)
@given(p=st.lists(st.sampled_from([0.0, 1e-30, 0.3, 1 - 1e-7, 1.0]), min_size=1, max_size=6))
def test_bce_on_probabilities_of_0_and_1_stays_finite(backend, p):
    """Probabilities of exactly 0 and 1 (σ(±1e4) in float32): the logs are floored at -100,
    so the loss is at most 100 per item and the gradient finite."""
    probs = np.array(p)[:, None]
    t = (np.arange(len(p)) % 2).astype(np.float64)[:, None]
    loss = xb.BinaryCrossEntropy("sum")
    value, cache = loss.forward(backend.asarray(probs, dtype="float32"),
                                backend.asarray(t, dtype="float32"))
    grad = xb.to_numpy(loss.backward(cache))
    assert np.isfinite(float(value)) and 0 <= float(value) <= 100 * len(p) + 1e-3
    assert np.isfinite(grad).all()
