"""`python -m benchmarks.scan_compile` end to end at a tiny size (that the program does not grow
with T is tested in tests/backends/test_scan.py, on the jaxpr): a row per loop and T."""

from __future__ import annotations

import re

import pytest

from benchmarks import scan_compile


def test_prints_a_row_per_loop_and_length(capsys):
    pytest.importorskip("jax", reason="the compile times are JAX's: pip install -e '.[jax]'")
    assert scan_compile.main(["--steps", "3", "--unrolled", "2", "--repeat", "1",
                              "--hidden", "2"]) == 0
    text = capsys.readouterr().out
    rows = re.findall(r"^\| (lax.scan|Python loop)[^|]*\| (\d+) \| ([\d.]+) \| ([\d.]+) \| "
                      r"(\d+) \|$", text, re.M)
    assert [(kind, int(t)) for kind, t, *_ in rows] == [("lax.scan", 3), ("Python loop", 2)]
    assert all(float(compile_s) > 0 and int(lines) > 100 for *_, compile_s, lines in rows)
