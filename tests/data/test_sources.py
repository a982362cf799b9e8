"""ArraySource: random batches with replacement, a pure function of (seed, step)."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb


def test_batches_are_a_pure_function_of_seed_and_step():
    x = np.arange(50, dtype=np.float32).reshape(25, 2)
    y = np.arange(25)
    source = xb.data.ArraySource(x, y, batch_size=8, seed=4)
    xb0, yb0 = source(3)
    assert xb0.shape == (8, 2) and yb0.shape == (8,)
    np.testing.assert_array_equal(xb0[:, 0] // 2, yb0)  # rows and labels drawn together
    again = xb.data.ArraySource(x, y, batch_size=8, seed=4)(3)
    np.testing.assert_array_equal(again[0], xb0)
    assert not np.array_equal(source(4)[1], yb0)
    assert not np.array_equal(xb.data.ArraySource(x, y, 8, seed=5)(3)[1], yb0)
    drawn = np.concatenate([source(s)[1] for s in range(200)])
    assert set(drawn) == set(range(25))  # with replacement, over all of the data
    assert "25 samples" in repr(source)


@pytest.mark.parametrize("args, message", [
    ((np.zeros((3, 2)), np.zeros(4), 2), "x and y are arrays of as many samples"),
    ((np.zeros((0, 2)), np.zeros(0), 2), "no samples"),
    ((np.zeros((3, 2)), np.zeros(3), 0), "batch_size is a number of samples >= 1"),
    ((np.zeros((3, 2)), np.zeros(3), True), "batch_size is a number of samples >= 1"),
])
def test_bad_arguments(args, message):
    with pytest.raises(ValueError, match=message):
        xb.data.ArraySource(*args)
