"""array-api-strict as a backend: it really refuses what the Array API standard (2023.12)
lacks, and a short training run of a CNN on it (every layer family, a loss, Adam with
weight decay, dropout's random bits) learns and gives NumPy's numbers. The gradient oracle,
every layer and every loss run on it through the `backend` fixture elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.tree import tree_leaves

strict_library = pytest.importorskip(
    "array_api_strict", reason="array-api-strict: not installed (pip install array-api-strict)")


@pytest.fixture
def strict():
    return xb.get_backend("array_api_strict")


def test_it_refuses_what_the_standard_lacks(strict):
    x = strict.asarray(np.array([[1.0, -2.0], [3.0, 4.0]]), dtype="float32")
    xp = strict.xp
    with pytest.raises(AttributeError):
        x.astype(xp.float64)                # the method: the standard has xp.astype
    with pytest.raises(TypeError):
        (x > 0) * x                         # bool arithmetic
    with pytest.raises(IndexError):
        x[0:1]                              # partial multi-axis indexing: x[0:1, ...]
    with pytest.raises((AttributeError, TypeError)):
        xp.maximum(x, 0)                    # scalars in functions: 2024.12, not 2023.12
    assert not hasattr(xp, "pad") and not hasattr(xp, "transpose")


def _cnn() -> xb.Sequential:
    return xb.Sequential([xb.Conv2D(3, 3, padding=1), xb.BatchNorm(), xb.ReLU(),
                          xb.MaxPool2D(2), xb.Conv2D(2, 2, stride=2), xb.Tanh(),
                          xb.Dropout(0.2), xb.Flatten(), xb.Dense(3)])


def _train(backend, steps: int) -> tuple[list[float], object]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(32, 1, 8, 8)).astype(np.float32)
    y = (x[:, 0, :4].mean(axis=(1, 2)) > 0).astype(np.int32) + (x[:, 0, 4:].mean(axis=(1, 2))
                                                                 > 0).astype(np.int32)
    model, opt = _cnn(), xb.optim.adamw(0.02, weight_decay=0.01)
    params = xb.init_params(model, 1, (1, 8, 8), backend=backend)
    state = xb.TrainState.create(params, opt, xb.init_state(model, (1, 8, 8), backend=backend),
                                 seed=3)
    step = xb.make_train_step(model, xb.SoftmaxCrossEntropy(), opt, backend=backend,
                              donate=True)
    losses = []
    for i in range(steps):
        rows = slice(8 * (i % 4), 8 * (i % 4) + 8)
        state, loss = step(state, (backend.asarray(x[rows]), backend.asarray(y[rows])))
        losses.append(float(loss))
    return losses, state


def test_a_short_training_run_learns_and_matches_numpy(strict):
    losses, state = _train(strict, 24)
    assert all(strict.is_array(p) for p in tree_leaves(state.params))
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    reference, numpy_state = _train(xb.get_backend("numpy"), 24)
    np.testing.assert_allclose(losses, reference, rtol=1e-5, atol=1e-6)
    for a, b in zip(tree_leaves(xb.to_numpy(state.params)), tree_leaves(numpy_state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
