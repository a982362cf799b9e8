"""Accuracy counts: arg-max against labels or one-hot rows; a threshold for one output."""

from __future__ import annotations

import numpy as np

from xbackprop.metrics import correct_count


def test_argmax_against_labels_and_one_hot(backend):
    pred = backend.asarray([[0.1, 0.9, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 5.0]], dtype="float32")
    labels = backend.asarray(np.array([1, 2, 2]))
    assert int(correct_count(pred, labels)) == 2
    one_hot = backend.asarray(np.eye(3)[[1, 2, 2]], dtype="float32")
    assert int(correct_count(pred, one_hot)) == 2


def test_threshold_for_one_output(backend):
    pred = backend.asarray([[0.2], [0.7], [0.5], [0.9]], dtype="float32")
    target = backend.asarray([[0.0], [1.0], [1.0], [0.0]], dtype="float32")
    assert int(correct_count(pred, target)) == 2  # 0.5 is not above 0.5
    assert int(correct_count(pred, target, threshold=0.4)) == 3
    flat = backend.asarray([-1.0, 2.0], dtype="float32")
    assert int(correct_count(flat, backend.asarray([0.0, 1.0], dtype="float32"), 0.0)) == 2
