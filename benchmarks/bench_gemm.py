"""The GEMM limit: a 1024x1024 float32 matrix product on each backend and peer, the yardstick
for the MLP step's achieved GFLOP/s."""

from __future__ import annotations

import pytest

from benchmarks.conftest import build_or_skip, time_step
from benchmarks.workloads import IMPLS


@pytest.mark.benchmark(group="gemm")
@pytest.mark.parametrize("impl", IMPLS)
def test_gemm(benchmark, impl):
    time_step(benchmark, build_or_skip("gemm", impl))

