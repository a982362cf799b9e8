"""points: the network learns the colours of the spiral (and the moons)."""

from __future__ import annotations

import numpy as np


def test_spiral_is_learned(lesson_backend, quick):
    t = quick("points", lesson_backend).trained
    assert t.name == "spiral" and t.test_accuracy >= 0.9 and t.train_accuracy >= 0.9
    assert len(t.data.x_train) + len(t.data.x_test) == 450
    np.testing.assert_array_equal(np.bincount(np.concatenate([t.data.y_train,
                                                              t.data.y_test])), [150] * 3)
    assert t.losses[-1] < t.losses[0] / 5
    assert f"test {t.test_accuracy:.3f}" in str(quick("points", lesson_backend))


def test_moons_are_learned(quick):
    t = quick("points", data="moons").trained
    assert t.name == "moons" and t.test_accuracy >= 0.9


def test_the_point_set_follows_the_seed(quick):
    from xbackprop.examples import points

    other = points.train(epochs=1, seed=1)
    assert not np.array_equal(other.data.x_train, quick("points").trained.data.x_train)
