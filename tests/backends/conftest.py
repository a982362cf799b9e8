"""Fixtures for the backend tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.tree import tree_leaves


def _cnn() -> xb.Sequential:
    """Every layer family: convolution, batch norm, activations, pooling, dropout, dense."""
    return xb.Sequential([xb.Conv2D(3, 3, padding=1), xb.BatchNorm(), xb.ReLU(),
                          xb.MaxPool2D(2), xb.Conv2D(2, 2, stride=2), xb.Tanh(),
                          xb.Dropout(0.2), xb.Flatten(), xb.Dense(3)])


def _train(backend: xb.Backend, steps: int) -> tuple[list[float], xb.TrainState]:
    """`steps` AdamW steps of a small CNN on 32 8x8 images, 8 per batch: (losses, state)."""
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


def _against_numpy(backend: xb.Backend, steps: int = 24) -> tuple[Any, Any]:
    """Train on `backend` and on NumPy: the run learns, on `backend`'s arrays, with NumPy's
    losses. Returns both final parameters (as NumPy arrays) to compare."""
    losses, state = _train(backend, steps)
    assert all(backend.is_array(p) for p in tree_leaves(state.params))
    assert np.mean(losses[-4:]) < 0.7 * np.mean(losses[:4])
    reference, numpy_state = _train(xb.get_backend("numpy"), steps)
    np.testing.assert_allclose(losses, reference, rtol=1e-5, atol=1e-6)
    return xb.to_numpy(state.params), numpy_state.params


@pytest.fixture
def cnn_run_against_numpy() -> Callable[..., tuple[Any, Any]]:
    """`run(backend, steps=24) -> (params, numpy_params)`: a short training run of a CNN
    with every layer family, a loss, AdamW and dropout's random bits, checked to learn and
    to give NumPy's losses; the final parameters of both come back to compare."""
    return _against_numpy
