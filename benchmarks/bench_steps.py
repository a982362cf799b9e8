"""Every workload on every implementation, timed side by side under pytest-benchmark (one
group per workload): `pytest benchmarks --benchmark-enable -n 0` (one process: timings
want the machine to themselves). Under the test command each runs once
(`--benchmark-disable`), a smoke test that every implementation here trains."""

from __future__ import annotations

import pytest

from benchmarks.conftest import bench_step
from benchmarks.impls import IMPLS
from benchmarks.workloads import WORKLOADS


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_step(benchmark, workload, impl):
    benchmark.group = workload
    bench_step(benchmark, workload, impl)
