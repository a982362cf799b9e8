"""compare-optimizers: each rule at its own default rate learns the digits; SGD at Adam's
rate does not (the reason `train --optimizer` picks a rate per rule)."""

from __future__ import annotations

from xbackprop.examples import compare_optimizers


def test_default_rates_learn_and_adams_rate_stalls_sgd(lesson_backend, quick):
    result = quick("compare-optimizers", lesson_backend)
    labels = [label for label, _, _ in compare_optimizers.RUNS]
    assert list(result.histories) == labels
    for label in labels[:3]:
        assert result.histories[label]["val_accuracy"][-1] >= 0.85, label
    assert result.histories["sgd at Adam's rate"]["val_accuracy"][-1] < 0.5
    for h in result.histories.values():
        assert len(h["loss"]) == 3 and set(h) >= {"loss", "accuracy", "val_loss",
                                                    "val_accuracy"}


def test_report(quick):
    report = str(quick("compare-optimizers"))
    assert "sgd at Adam's rate  sgd" in report and "epochs to 0.9" in report
