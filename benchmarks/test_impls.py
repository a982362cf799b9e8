"""The implementations' registry: every module builds every kind of workload, names are
unique, errors name the choices, and every implementation of a workload trains the same
model (the same number of parameters)."""

from __future__ import annotations

import math

import pytest

from benchmarks import impls
from benchmarks.impls import jax_autodiff, numpy_plain, pytorch, xbackprop
from benchmarks.workloads import LSTM_SIZES, WORKLOADS

TRAINED = [name for name, w in WORKLOADS.items() if w.kind == "train_step"]
#: parameters a PyTorch model has beyond the others': nn.LSTM keeps two bias vectors, b_ih
#: and b_hh (4·hidden each), of which only the sum counts (the others keep that sum)
TORCH_EXTRA = {"lstm": 4 * LSTM_SIZES["hidden"]}


def test_every_module_builds_every_kind_of_workload():
    from benchmarks import gpt

    kinds = {w.kind for w in WORKLOADS.values()} - {"gpt"}  # gpt.py builds those, per library
    assert set(gpt.BUILDERS) <= set(impls.IMPLS)
    for module in impls.MODULES:
        assert module.IMPLS, module
        for kind in kinds:
            assert callable(getattr(module, kind)), (module, kind)
    names = [name for module in impls.MODULES for name in module.IMPLS]
    assert len(names) == len(set(names)) == len(impls.IMPLS)


def test_xbackprop_runs_on_every_backend_beside_its_peer():
    from xbackprop.backends import BACKEND_NAMES

    assert {"xbackprop-torch", "xbackprop-torch-cuda", "torch", "torch-cuda"} <= set(impls.IMPLS)
    served = {spec.partition(":")[0] for spec in xbackprop.IMPLS.values()}
    assert served == set(BACKEND_NAMES) - {"array_api_strict"}  # a conformance check, not fast


def test_unknown_names_are_errors_that_list_the_choices():
    with pytest.raises(ValueError, match="unknown workload 'rnn'.*'mlp'"):
        impls.make("rnn", "numpy-plain")
    with pytest.raises(ValueError, match="unknown implementation 'tf'.*'xbackprop-numpy'"):
        impls.make("mlp", "tf")


def _counts(workload: str) -> dict[str, int]:
    """Parameter count of `workload`'s model in every implementation installed here."""
    import xbackprop as xb

    x, _ = WORKLOADS[workload].data()
    params = xb.init_params(xbackprop.model(workload), 0, x.shape[1:], backend="numpy")
    counts = {"xbackprop": sum(p.size for p in xb.tree.tree_leaves(params))}
    counts["numpy-plain"] = sum(p.size for p in numpy_plain.MODELS[workload](0.1).params)
    try:
        import torch
        counts["torch"] = sum(p.numel() for p in pytorch.MODELS[workload](torch.nn).parameters())
        counts["torch"] -= TORCH_EXTRA.get(workload, 0)
    except ImportError:
        pass
    try:
        import jax
        import jax.numpy as jnp
        leaves = jax.tree_util.tree_leaves(jax_autodiff.MODELS[workload](jax, jnp)[0])
        counts["jax-autodiff"] = sum(math.prod(p.shape) for p in leaves)
    except ImportError:
        pass
    return counts


@pytest.mark.parametrize("workload", TRAINED)
def test_every_implementation_trains_the_same_model(workload):
    counts = _counts(workload)
    assert len(set(counts.values())) == 1, counts
