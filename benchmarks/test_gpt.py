"""`python -m benchmarks.gpt` at a tiny size: every implementation builds the same model and
learns, the table and the ratios print, the memory figures come from their own processes."""

from __future__ import annotations

import pytest

from benchmarks import gpt

TINY = ["--layers", "1", "--heads", "2", "--width", "16", "--context", "8", "--batch", "2",
        "--repeat", "1", "--min-time", "0.01"]


def test_every_implementation_learns_and_the_ratios_print(capsys):
    assert gpt.main(TINY + ["--no-memory"]) == 0
    out = capsys.readouterr().out
    assert "| xbackprop-numpy | cpu |" in out
    assert "| xbackprop-numpy | torch |" in out or "- torch:" in out


def test_memory_of_numpy_in_its_own_process():
    mem = gpt.memory(["xbackprop-numpy"], gpt.Config(layers=1, heads=2, width=16, context=8,
                                                     batch=2))
    figures = mem["xbackprop-numpy"]
    assert figures["peak_mb"] >= 0 and figures["step_traced_mb"] > 0


def test_the_same_number_of_parameters_everywhere():
    import math

    import xbackprop as xb
    from xbackprop import language

    config = gpt.Config(layers=2, heads=2, width=16, context=8)
    counts = {"xbackprop": xb.count_params(xb.init_params(
        language.gpt(65, 8, 2, 2, 16), 0, (8,)))}
    try:
        counts["torch"] = sum(p.numel() for p in gpt.torch_model(config).parameters())
    except gpt.Unavailable:
        pass
    try:
        import jax

        leaves = jax.tree_util.tree_leaves(gpt.jax_model(config)[0])
        counts["jax-autodiff"] = sum(math.prod(p.shape) for p in leaves)
    except gpt.Unavailable:
        pass
    assert len(set(counts.values())) == 1, counts
