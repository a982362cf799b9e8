"""Every example's --quick report (and the histories behind it) is what it was before the
training wing was restructured (issue 19), bit for bit on NumPy: the figures recorded by
`python -m tests.recorded.figures --write`."""

from __future__ import annotations

import json

import pytest

from tests.data.conftest import shared_mnist
from tests.recorded import figures as F
from xbackprop import examples

RECORDED = json.loads(F.FIGURES.read_text())["examples"]


#: lessons written after the figures were recorded: nothing of theirs existed to keep
NEWER = ("shakespeare-char", "char-rnn")


def test_every_lesson_is_recorded_or_newer():
    assert set(examples.NAMES) == {k for k in RECORDED if k != "mnist (real)"} | set(NEWER)


@pytest.mark.parametrize("name", [n for n in examples.NAMES if n not in NEWER])
def test_the_report_is_the_recorded_one(name, quick):
    key = "mnist (real)" if name == "mnist" and shared_mnist() is not None else name
    now = json.loads(json.dumps(F.example_figures(quick(name))))
    diffs = F.differences(RECORDED[key], now)
    assert not diffs, "\n".join(diffs)
    assert now.keys() == RECORDED[key].keys()
