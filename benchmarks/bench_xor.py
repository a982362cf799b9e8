"""The `xor` workload (see benchmarks/workloads.py): one train step, xbackprop on each
backend beside its peers, in the same process."""

from __future__ import annotations

import pytest

from benchmarks.conftest import bench_train_step
from benchmarks.workloads import IMPLS


@pytest.mark.benchmark(group="xor")
@pytest.mark.parametrize("impl", IMPLS)
def test_xor(benchmark, impl):
    bench_train_step(benchmark, "xor", impl)
