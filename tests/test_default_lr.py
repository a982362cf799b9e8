"""`xb.optim.DEFAULT_LR` and `xbackprop train --optimizer X` without `--lr`: a rate that suits
X, said out loud, and good enough to learn the digits with every rule."""

from __future__ import annotations

import re

import pytest

from xbackprop import optim
from xbackprop.cli import main


def test_every_optimizer_has_a_default_rate():
    assert set(optim.DEFAULT_LR) == set(optim.OPTIMIZERS)
    assert all(isinstance(lr, float) and 0 < lr < 1 for lr in optim.DEFAULT_LR.values())


@pytest.mark.parametrize("name", sorted(set(optim.OPTIMIZERS) - {"adam"}))
def test_another_rule_without_lr_uses_its_default_and_learns(name, capsys):
    """Before the table, `--optimizer sgd` kept Adam's 0.001: test accuracy 0.67, not 0.96."""
    assert main(["train", "digits", "--optimizer", name, "--quiet", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    lr = optim.DEFAULT_LR[name]
    assert f"{name} lr={lr} (the default for {name}; --lr to change)," in out
    accuracy = float(re.search(r"test  loss \S+  accuracy (\S+)", out).group(1))
    assert accuracy >= 0.95, out


@pytest.mark.parametrize("argv, expected", [
    (["digits", "--optimizer", "adam"], "adam lr=0.001, "),           # the job's own rule
    (["xor", "--optimizer", "sgd"], "sgd lr=2.0, "),                   # keeps the job's rate
    (["digits", "--optimizer", "sgd", "--lr", "0.02"], "sgd lr=0.02, "),  # asked for
])
def test_the_jobs_rate_or_the_one_asked_for_needs_no_note(argv, expected, capsys):
    assert main(["train", *argv, "--epochs", "1", "--quiet", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert expected in out and "the default for" not in out
