"""Helpers for the benchmark suite: build an implementation or skip with the reason (a peer
not installed, no GPU), check that it learns, time one step. Under the test command the
suite runs once each (`--benchmark-disable`) as a smoke test that every implementation
trains."""

from __future__ import annotations

import math

import pytest

from benchmarks.impls import make
from benchmarks.workloads import WORKLOADS, Runner, Unavailable


def build_or_skip(workload: str, impl: str) -> Runner:
    try:
        return make(workload, impl)
    except Unavailable as e:
        pytest.skip(str(e))


def check_learns(runner: Runner, steps: int = 5) -> None:
    """A broken implementation must not produce a timing: the loss is finite and falls."""
    runner.step()
    runner.sync()
    first = runner.loss()
    for _ in range(steps):
        runner.step()
    runner.sync()
    last = runner.loss()
    assert math.isfinite(first) and math.isfinite(last)
    assert last < first, f"loss did not fall: {first} -> {last}"


def time_step(benchmark, runner: Runner) -> None:
    """Time one step, synchronised, after a warm-up that includes any compilation."""
    def one() -> None:
        runner.step()
        runner.sync()

    one()
    benchmark.pedantic(one, rounds=benchmark_rounds(benchmark), iterations=1, warmup_rounds=2)


def benchmark_rounds(benchmark) -> int:
    return 1 if benchmark.disabled else 30


def bench_step(benchmark, workload: str, impl: str) -> None:
    """Build `impl` for `workload` (or skip with the reason), check that a train step
    learns, time a step."""
    runner = build_or_skip(workload, impl)
    if WORKLOADS[workload].kind == "train_step":
        check_learns(runner)
    time_step(benchmark, runner)
