"""The `cnn` workload (see benchmarks/workloads.py): one train step, xbackprop on each
backend beside its peers, in the same process."""

from __future__ import annotations

import pytest

from benchmarks.conftest import bench_train_step
from benchmarks.workloads import IMPLS


@pytest.mark.benchmark(group="cnn")
@pytest.mark.parametrize("impl", IMPLS)
def test_cnn(benchmark, impl):
    bench_train_step(benchmark, "cnn", impl)
