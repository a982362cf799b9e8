"""`python -m benchmarks.fit_overhead` end to end, a few epochs: one row per backend asked
for, with fit's time, the bare loop's and their ratio."""

from __future__ import annotations

import re

import pytest

from benchmarks import fit_overhead


def test_prints_one_row_per_backend_with_the_ratio(capsys):
    pytest.importorskip("jax", reason="the JAX row needs jax: pip install -e '.[jax]'")
    assert fit_overhead.main(["--epochs", "200", "--repeat", "1",
                              "--backends", "numpy", "jax"]) == 0
    text = capsys.readouterr().out
    for backend in ("numpy", "jax"):
        row = re.search(rf"^\| {backend} \| ([\d.]+) \| ([\d.]+) \| ([\d.]+)x", text, re.M)
        assert row, text
        fit_s, loop_s, ratio = map(float, row.groups())
        assert fit_s > 0 and loop_s > 0 and ratio > 0  # (seconds are printed rounded)
    assert "| plain NumPy script |" in text
