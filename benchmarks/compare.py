"""Time every workload for xbackprop and its peers in one process and print one table.

    python -m benchmarks.compare [--workloads mlp cnn xor lstm gpt gemm] [--impls ...] [--repeat 7]
                                 [--rounds 1] [--json /tmp/xbackprop-bench.json]

Each implementation is warmed up (JIT compilation excluded) and checked to learn, then
timed in `--repeat` rounds of enough synchronised steps to last `--min-time`; the median
round gives the time per step. Implementations are timed one after the other with an idle
pause between them, not interleaved: NumPy's OpenBLAS, PyTorch's OpenMP and XLA's thread
pools each keep their threads spinning for a while after a call, and interleaving them on
a small machine measured the contention (a CNN step at 20x its real time), not the code.

On a shared machine, `--rounds R` times everything R times over: each ratio is taken
within a round (the two implementations timed minutes apart at most) and reported as the
median with its range over the rounds; `--clock cpu` reads CPU time instead of the wall
clock (for one-thread runs). The machine's load average is printed with the table, at the
start and at the end.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from benchmarks.conftest import check_learns
from benchmarks.impls import IMPLS, make
from benchmarks.workloads import GEMM_N, TARGETS, WORKLOADS, Runner, Unavailable, mlp_flops
from xbackprop import backends
from xbackprop.atomic import atomic_write

IDLE_SECONDS = 0.5
#: what a step's time is read from: the wall clock, or this process's CPU time (every thread's)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def _per_step(runner: Runner, steps: int) -> float:
    start = _clock()
    for _ in range(steps):
        runner.step()
    runner.sync()
    return (_clock() - start) / steps


def time_workload(workload: str, impls: list[str], repeat: int, min_time: float,
                  rounds: int = 1) -> dict[str, dict[str, Any]]:
    """Per implementation: `ms` (the median over rounds of each round's median step),
    `best_ms`, and `rounds_ms` (each round's median); or `skipped` with the reason."""
    runners: dict[str, Runner] = {}
    results: dict[str, dict[str, Any]] = {}
    for impl in impls:
        try:
            runner = make(workload, impl)
            if WORKLOADS[workload].kind != "matmul":
                check_learns(runner)  # also the warm-up: compilation, first allocations
        except Unavailable as e:
            results[impl] = {"skipped": str(e)}
            continue
        runners[impl] = runner
        _per_step(runner, 3)  # (the GEMM's warm-up)
        one = _per_step(runner, 3)  # calibrate
        results[impl] = {"device": runner.device,
                         "steps": max(1, math.ceil(min_time / max(one, 1e-6)))}
    for _ in range(rounds):
        for impl, runner in runners.items():
            time.sleep(IDLE_SECONDS)  # let the previous library's worker threads go to sleep
            _per_step(runner, results[impl]["steps"])
            times = [_per_step(runner, results[impl]["steps"]) for _ in range(repeat)]
            results[impl].setdefault("rounds_ms", []).append(1e3 * statistics.median(times))
            results[impl]["best_ms"] = min(results[impl].get("best_ms", math.inf),
                                           1e3 * min(times))
    for impl in runners:
        results[impl]["ms"] = statistics.median(results[impl]["rounds_ms"])
    return results


def peak_memory_mb(workload: str, impl: str) -> float | None:
    """Peak traced host memory (MB) of one step above what lives between steps."""
    try:
        runner = make(workload, impl)
    except Unavailable:
        return None
    runner.step()
    runner.step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        runner.step()
        return (tracemalloc.get_traced_memory()[1] - base) / 1e6
    finally:
        tracemalloc.stop()


def load_average() -> str:
    """The 1, 5 and 15-minute load averages ("?" where the system has none)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def machine() -> dict[str, str]:
    info = {"python": platform.python_version(), "platform": platform.platform(),
            "cores": str(os.cpu_count())}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "?"
    for name in ["numpy", "jax", "torch", "array_api_compat", "cupy"]:
        module = sys.modules.get(name)
        if module is not None:
            info[name] = getattr(module, "__version__", "?")
    blas = backends.numpy_blas()  # NumPy's products: the kernels OpenBLAS runs
    if blas is not None:
        info["numpy blas"] = str(blas)
        forced = os.environ.get("OPENBLAS_CORETYPE")
        if forced:
            info["numpy blas"] += f" (OPENBLAS_CORETYPE={forced})"
    if "jax" in sys.modules:
        info["jax devices"] = ", ".join(str(d) for d in sys.modules["jax"].devices())
    return info


def ratios(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each target's ratio, taken round by round: the median over rounds, and its range."""
    rows = []
    for workload, pairs in TARGETS.items():
        for ours, peer, target in pairs:
            a = results.get(workload, {}).get(ours, {}).get("rounds_ms")
            b = results.get(workload, {}).get(peer, {}).get("rounds_ms")
            if a is not None and b is not None:
                each = [x / y for x, y in zip(a, b)]
                ratio = statistics.median(each)
                rows.append({"workload": workload, "xbackprop": ours, "peer": peer,
                             "ratio": ratio, "low": min(each), "high": max(each),
                             "target": target, "met": ratio <= target})
    return rows


def gemm_fractions(results: dict[str, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """The MLP step's GFLOP/s as a fraction of the same backend's 1024^3 GEMM."""
    rows = []
    for impl in IMPLS:
        mlp = results.get("mlp", {}).get(impl, {}).get("best_ms")
        gemm = results.get("gemm", {}).get(impl, {}).get("best_ms")
        if mlp and gemm:
            achieved = mlp_flops() / (mlp * 1e6)
            peak = 2 * GEMM_N ** 3 / (gemm * 1e6)
            rows.append({"impl": impl, "mlp_gflops": achieved, "gemm_gflops": peak,
                         "fraction": achieved / peak})
    return rows


def render(report: dict[str, Any]) -> str:
    lines = ["Machine: " + ", ".join(f"{k} {v}" for k, v in report["machine"].items()),
             f"Load average (1, 5, 15 min): {report['load']['start']} at the start, "
             f"{report['load']['end']} at the end; {report['rounds']} round(s), "
             f"{report['clock']} clock", ""]
    lines += ["| workload | implementation | device | ms / step |", "|---|---|---|---:|"]
    for workload, results in report["results"].items():
        for impl, r in results.items():
            if "ms" in r:
                lines.append(f"| {workload} | {impl} | {r['device']} | {r['ms']:.3f} |")
    lines += ["", "| workload | xbackprop | peer | ratio | range over rounds | target | met |",
              "|---|---|---|---:|---:|---:|:---:|"]
    for r in report["ratios"]:
        lines.append(f"| {r['workload']} | {r['xbackprop']} | {r['peer']} | {r['ratio']:.2f}x "
                     f"| {r['low']:.2f}-{r['high']:.2f}x | <= {r['target']:.2f}x "
                     f"| {'yes' if r['met'] else 'no'} |")
    if report["gemm"]:
        lines += ["", "| implementation | MLP GFLOP/s | GEMM GFLOP/s | fraction (target >= 0.70) |",
                  "|---|---:|---:|---:|"]
        for r in report["gemm"]:
            lines.append(f"| {r['impl']} | {r['mlp_gflops']:.1f} | {r['gemm_gflops']:.1f} | "
                         f"{r['fraction']:.2f} |")
    mem = report.get("memory_mb", {})
    if mem:
        lines += ["", "Peak host memory of one MLP step (tracemalloc, target xbackprop <= 1.5x "
                  "plain): " + ", ".join(f"{k} {v:.1f} MB" for k, v in mem.items()
                                         if v is not None)]
    skipped = [f"{w}/{i}: {r['skipped']}" for w, res in report["results"].items()
               for i, r in res.items() if "skipped" in r]
    if skipped:
        lines += ["", "Skipped:"] + [f"- {s}" for s in skipped]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.compare", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", nargs="+", choices=WORKLOADS, default=list(WORKLOADS))
    parser.add_argument("--impls", nargs="+", choices=IMPLS, default=list(IMPLS))
    parser.add_argument("--repeat", type=int, default=7, help="timed rounds per implementation")
    parser.add_argument("--rounds", type=int, default=1,
                        help="time everything this many times over; ratios are taken within "
                             "each and reported as the median and range (a shared machine)")
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall (default), or cpu: this process's CPU time, steadier on a "
                             "busy machine when every library runs one thread "
                             "(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 XBACKPROP_NUMPY_"
                             "THREADS=1, and XLA_FLAGS for JAX), but counting the time "
                             "waiting threads spin where they run several")
    parser.add_argument("--min-time", type=float, default=0.25,
                        help="seconds each timed round lasts at least")
    parser.add_argument("--json", metavar="PATH", type=Path,
                        help="also write the results as JSON to PATH (a path outside the "
                             "checkout, e.g. /tmp/xbackprop-bench.json)")
    args = parser.parse_args(argv)
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json {args.json}: the folder {args.json.parent} does not exist")

    if args.rounds < 1 or args.repeat < 1:
        parser.error("--rounds and --repeat are at least 1")
    global _clock
    _clock = CLOCKS[args.clock]
    load = {"start": load_average()}
    results = {}
    for workload in args.workloads:
        print(f"timing {workload} ...", file=sys.stderr, flush=True)
        results[workload] = time_workload(workload, args.impls, args.repeat, args.min_time,
                                          args.rounds)
    load["end"] = load_average()
    memory = {}
    if "mlp" in args.workloads:
        memory = {impl: peak_memory_mb("mlp", impl) for impl in ["xbackprop-numpy", "numpy-plain"]
                  if impl in args.impls}
    report = {"machine": machine(), "load": load, "rounds": args.rounds,
              "clock": args.clock, "results": results,
              "ratios": ratios(results), "gemm": gemm_fractions(results), "memory_mb": memory}
    print(render(report))
    if args.json is not None:
        with atomic_write(args.json) as f:
            f.write(json.dumps(report, indent=2).encode())
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
