"""How long JAX takes to compile an LSTM train step, and how big the program is, as the
sequence grows: the loop over time is `lax.scan` (the backend's `scan`), so neither should
grow with T.

    python -m benchmarks.scan_compile [--steps 64 256 1024] [--unrolled 64 256]

For each T: xbackprop's train step (LSTM(256) over T steps of 64 features, batch 32, the
last state into Dense(10), Adam; hand-written backward through time) is traced (`lower`)
and compiled by XLA, each timed; the program's size is the number of lines of its
optimised HLO. `--unrolled` repeats it with the generic Python-loop scan on JAX, which
writes every step into the program (what a layer without the primitive would compile):
that one grows with T. Seconds are the best of `--repeat` (fresh traces each time: no
cache is reused); the HLO sizes are exact.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import jax
import numpy as np

import xbackprop as xb
from xbackprop.backends import Backend

BATCH, FEATURES, HIDDEN, CLASSES = 32, 64, 256, 10


def measure(steps: int, unrolled: bool = False, hidden: int = HIDDEN) -> dict[str, Any]:
    """Trace and compile times (s) and HLO lines of one LSTM train step over `steps`."""
    backend = xb.get_backend("jax")
    model = xb.Sequential([xb.LSTM(hidden, return_sequences=False), xb.Dense(CLASSES)])
    optimizer = xb.optim.adam(1e-3)
    state = xb.TrainState.create(xb.init_params(model, 0, (steps, FEATURES), backend=backend),
                                 optimizer)
    rng = np.random.default_rng(0)
    batch = (rng.normal(size=(BATCH, steps, FEATURES)).astype(np.float32),
             rng.integers(0, CLASSES, BATCH).astype(np.int32))
    # the step uncompiled, jitted here whole (state in, state out) to lower and compile apart
    step = jax.jit(xb.make_train_step(model, "cross_entropy", optimizer, backend=backend,
                                      jit=False))
    original = type(backend).scan
    if unrolled:  # the generic Python loop: every step written into the program
        type(backend).scan = Backend.scan
    try:
        start = time.perf_counter()
        lowered = step.lower(state, batch)
        traced = time.perf_counter() - start
        start = time.perf_counter()
        compiled = lowered.compile()
        compile_s = time.perf_counter() - start
    finally:
        type(backend).scan = original
    state, loss = compiled(state, batch)
    assert np.isfinite(float(loss))
    return {"steps": steps, "unrolled": unrolled, "trace_s": traced, "compile_s": compile_s,
            "hlo_lines": len(compiled.as_text().splitlines())}


def best_of(repeat: int, steps: int, unrolled: bool, hidden: int = HIDDEN) -> dict[str, Any]:
    runs = [measure(steps, unrolled, hidden) for _ in range(repeat)]
    return {**runs[0], "trace_s": min(r["trace_s"] for r in runs),
            "compile_s": min(r["compile_s"] for r in runs)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scan_compile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", nargs="+", type=int, default=[64, 256, 1024])
    parser.add_argument("--unrolled", nargs="*", type=int, default=[8, 16, 32],
                        help="T for the unrolled comparison (none: skip it)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=HIDDEN, help="the LSTM's hidden size")
    args = parser.parse_args(argv)
    rows = [best_of(args.repeat, t, False, args.hidden) for t in args.steps]
    rows += [best_of(1, t, True, args.hidden) for t in args.unrolled]
    print(f"LSTM({args.hidden}) train step on JAX ({xb.get_backend('jax').device}), batch "
          f"{BATCH}, {FEATURES} features; best of {args.repeat} (unrolled: 1)\n")
    print("| loop over time | T | trace s | XLA compile s | HLO lines |\n|---|---:|---:|---:|---:|")
    for r in rows:
        kind = "Python loop (unrolled)" if r["unrolled"] else "lax.scan (Backend.scan)"
        print(f"| {kind} | {r['steps']} | {r['trace_s']:.2f} | {r['compile_s']:.2f} | "
              f"{r['hlo_lines']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
