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


def test_a_short_training_run_learns_and_matches_numpy(strict, cnn_run_against_numpy):
    params, numpy_params = cnn_run_against_numpy(strict)
    for a, b in zip(tree_leaves(params), tree_leaves(numpy_params)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
