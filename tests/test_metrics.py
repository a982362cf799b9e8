"""Metrics: accuracy counts (arg-max against labels or one-hot rows; a threshold for one
output), and regression scores from per-batch statistics that combine exactly, checked
against the textbook formulas in float64."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.metrics import METRICS, batch_stats, classification_scores, correct_count, \
    reduce_stats, regression_scores, scores, stats_for


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


def test_a_mask_drops_padded_rows(backend):
    pred = backend.asarray([[0.1, 0.9], [2.0, 1.0], [0.0, 5.0]], dtype="float32")
    labels = backend.asarray(np.array([1, 0, 0]))
    assert int(correct_count(pred, labels)) == 2
    mask = backend.asarray(np.array([1, 1, 0]), dtype="float32")
    assert int(correct_count(pred, labels, mask=mask)) == 2
    assert int(correct_count(pred, labels, mask=backend.asarray(np.array([0, 1, 1]),
                                                                dtype="float32"))) == 1


def test_one_output_needs_every_element_right(backend):
    """(N, 2) binary targets with one threshold: a sample is right if both outputs are."""
    pred = backend.asarray([[0.9, 0.1], [0.9, 0.9]], dtype="float32")
    target = backend.asarray([[1.0, 0.0], [1.0, 0.0]], dtype="float32")
    assert int(correct_count(pred[:, :1], target[:, :1])) == 2


REG_PRED = np.array([[1.0, 10.0], [2.0, 20.0], [2.5, 33.0], [4.5, 41.0], [5.0, 47.0]])
REG_TRUE = np.array([[1.5, 11.0], [2.0, 19.0], [3.0, 30.0], [4.0, 40.0], [5.0, 52.0]])


def reference_regression(pred, true):
    err = pred - true
    mse = (err ** 2).mean(axis=0)
    r2 = 1 - (err ** 2).sum(axis=0) / ((true - true.mean(axis=0)) ** 2).sum(axis=0)
    return {"mse": mse, "rmse": np.sqrt(mse), "mae": np.abs(err).mean(axis=0), "r2": r2}


def test_regression_scores_per_output_and_averaged():
    got = regression_scores(REG_PRED, REG_TRUE)
    want = reference_regression(REG_PRED, REG_TRUE)
    for name, values in want.items():
        assert got[name] == pytest.approx(values.mean(), rel=1e-12)
        for k in range(2):
            assert got[f"{name}[{k}]"] == pytest.approx(values[k], rel=1e-12)
    one = regression_scores(REG_PRED[:, 0], REG_TRUE[:, 0])
    assert set(one) == {"mse", "rmse", "mae", "r2"}  # one output: no per-output keys
    assert one["r2"] == pytest.approx(want["r2"][0], rel=1e-12)


def test_batches_combine_to_the_whole(backend):
    """Statistics of batches of 2, 2 and 1 (the last padded to 2 and masked), computed on
    the backend and combined on the host, give the scores of all five at once."""
    batches = []
    for i in range(0, 5, 2):
        p, t = REG_PRED[i:i + 2], REG_TRUE[i:i + 2]
        mask = np.ones(2)
        if len(p) < 2:  # pad with junk that the mask must drop
            p, t, mask = (np.concatenate([p, [[1e6, -1e6]]]), np.concatenate([t, [[7.0, 7.0]]]),
                          np.array([1.0, 0.0]))
        batches.append(xb.to_numpy(batch_stats(backend.asarray(p, dtype="float32"),
                                               backend.asarray(t, dtype="float32"),
                                               "regression",
                                               mask=backend.asarray(mask, dtype="float32"))))
    got = scores(reduce_stats(batches), "regression")
    want = regression_scores(REG_PRED, REG_TRUE)
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-5), name


def test_runs_of_batches_reduce_at_once():
    """Many consecutive runs (the epochs of a training chunk) in one call give what each
    run gives alone."""
    rng = np.random.default_rng(1)
    batches = [batch_stats(rng.normal(size=(4, 2)), 5 + rng.normal(size=(4, 2)), "regression")
               for _ in range(7)]
    starts = [0, 3, 4]
    together = scores(reduce_stats(batches, starts), "regression")
    for run, (a, b) in enumerate(zip(starts, starts[1:] + [7])):
        alone = scores(reduce_stats(batches[a:b]), "regression")
        for name, value in alone.items():
            assert together[name][run] == pytest.approx(value, rel=1e-12), (run, name)


def test_r2_is_accurate_for_targets_far_from_zero():
    """Targets 1e6 + small values: summing y and y² would cancel catastrophically."""
    rng = np.random.default_rng(0)
    true = 1e6 + rng.normal(size=(400, 1))
    pred = true + 0.1 * rng.normal(size=(400, 1))
    batches = [batch_stats(pred[i:i + 64], true[i:i + 64], "regression")
               for i in range(0, 400, 64)]
    assert scores(reduce_stats(batches), "regression")["r2"] == pytest.approx(
        reference_regression(pred, true)["r2"][0], rel=1e-9)


def test_constant_target_has_no_r2_and_accuracy_counts():
    assert np.isnan(regression_scores(np.array([1.0, 2.0]), np.array([3.0, 3.0]))["r2"])
    got = classification_scores(np.array([[0.2, 0.8], [0.9, 0.1]]), np.array([1, 1]))
    assert got == {"accuracy": 0.5}
    with pytest.raises(ValueError, match="task must be one of"):
        batch_stats(np.zeros(2), np.zeros(2), "ranking")


def test_without_a_mask_the_sums_are_the_masked_ones_bit_for_bit(backend):
    """No mask takes the unweighted path (fewer passes): the numbers of a mask of ones,
    bit for bit."""
    rng = np.random.default_rng(5)
    p = backend.asarray(rng.normal(size=(37, 3)), dtype="float32")
    t = backend.asarray(rng.normal(loc=4.0, size=(37, 3)), dtype="float32")
    ones = backend.asarray(np.ones(37), dtype="float32")
    for task, target in (("regression", t), ("classification",
                                              backend.asarray(rng.integers(0, 3, 37)))):
        plain = xb.to_numpy(batch_stats(p, target, task))
        masked = xb.to_numpy(batch_stats(p, target, task, mask=ones))
        assert sorted(plain) == sorted(masked)
        for k in plain:
            np.testing.assert_array_equal(plain[k], masked[k], err_msg=k)


@pytest.mark.parametrize("task", ["regression", "classification"])
def test_asking_for_some_metrics_computes_only_their_sums(backend, task):
    """Each metric's sums alone give that metric as all the sums do; () gives the count."""
    rng = np.random.default_rng(6)
    p = backend.asarray(rng.normal(size=(20, 2)), dtype="float32")
    t = (backend.asarray(rng.normal(size=(20, 2)), dtype="float32") if task == "regression"
         else backend.asarray(rng.integers(0, 2, 20)))
    full = scores(xb.to_numpy(batch_stats(p, t, task)), task)
    assert set(batch_stats(p, t, task, stats=stats_for(task, ()))) == {"count"}
    for name in METRICS[task]:
        stats = stats_for(task, [name])
        some = xb.to_numpy(batch_stats(p, t, task, stats=stats))
        assert set(some) == {"count", *stats}
        assert scores(some, task)[name] == full[name]


def test_unknown_metric_names_are_errors_naming_the_task_s_metrics():
    with pytest.raises(ValueError, match=r"\['accuracy'\] are not metrics of a regression"):
        stats_for("regression", ["rmse", "accuracy"])
    with pytest.raises(ValueError, match="a list of metric names"):
        stats_for("classification", "accuracy")
    assert stats_for("regression", None) is None
