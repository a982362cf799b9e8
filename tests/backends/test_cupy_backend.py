"""CuPy's fused optimizer kernels: each one, by the name of the rule it fuses, gives the bits
of that rule run op by op (every optimizer built on the rule, with and without weight
decay). Needs CuPy and a CUDA device; skipped with the reason elsewhere."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim
from xbackprop.backends.cupy_backend import FUSED_RULES
from xbackprop.tree import tree_leaves, tree_map

#: rule name -> the optimizers that run it
USERS = {
    "adam": [lambda: optim.adam(1e-2), lambda: optim.adam(3e-2, b1=0.8, b2=0.95, eps=1e-4),
             lambda: optim.adam(1e-2, weight_decay=0.1),
             lambda: optim.adamw(1e-2, weight_decay=0.05)],
}


def test_every_fused_rule_is_tested():
    assert set(USERS) == set(FUSED_RULES)


@pytest.fixture
def cupy_backend():
    try:
        return xb.get_backend("cupy")
    except xb.BackendUnavailableError as e:
        pytest.skip(f"backend cupy: {e}")


@pytest.mark.parametrize("rule", sorted(FUSED_RULES))
def test_fused_kernel_matches_the_rule_op_by_op(cupy_backend, monkeypatch, rule):
    assert cupy_backend.fused_update(rule) is not None
    rng = np.random.default_rng(0)
    p0 = {"W": rng.normal(size=(33, 17)), "b": rng.normal(size=(17,))}
    grads = [tree_map(lambda p: rng.normal(size=p.shape) * rng.choice([1e-3, 1.0]), p0)
             for _ in range(20)]

    def run(make, fused: bool) -> list:
        if not fused:  # the same in-place update, without the kernel
            monkeypatch.setattr(cupy_backend, "fused_update", lambda name: None)
        opt = make()
        params = xb.tree_to_backend(p0, cupy_backend, dtype="float32")
        state = opt.init(params)
        for g in grads:
            params, state = opt.update(params, xb.tree_to_backend(g, cupy_backend,
                                                                  dtype="float32"),
                                       state, inplace=True)
        monkeypatch.undo()
        return tree_leaves(xb.to_numpy((params, state.slots)))

    for make in USERS[rule]:
        for a, b in zip(run(make, fused=True), run(make, fused=False)):
            np.testing.assert_array_equal(a, b)
