"""What `fit` costs on top of its train step: 10,000 full-batch XOR epochs, per backend.

    python -m benchmarks.fit_overhead [--epochs 10000] [--backends numpy jax torch]
                                      [--clock cpu] [--metrics [NAME ...]]

For each backend, in one process: `fit(model, x, y, epochs=E, batch_size=4)` (one step
per epoch: shuffling, the epoch's metrics, history and the stop checks every epoch, no
progress bar) against a bare Python loop over the same step (`make_train_step`) for E
steps, both from scratch (a new step, compiled on JAX: fit builds its own), and the plain
NumPy script (`benchmarks/impls/numpy_plain.py`) for scale. The ratio fit / bare loop is
what `fit` adds; the target is 1.3x. The best of `--repeat` runs is reported (the
machine's noise only ever adds time). `--clock cpu` reads this process's CPU time instead of
the wall clock: steadier on a busy machine (run it with one thread per library, as
`benchmarks.compare --clock cpu` says). `--metrics` times `fit(..., metrics=[...])`: those
metrics only, or with no names the loss alone (no regression sums per step).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np

import xbackprop as xb
from benchmarks.compare import load_average
from benchmarks.impls import make
from benchmarks.workloads import WORKLOADS, Unavailable

TARGET = 1.3
#: what the times are read from: the wall clock, or this process's CPU time (all threads)
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = CLOCKS["wall"]


def _model() -> xb.Sequential:
    return xb.Sequential([xb.Dense(4), xb.Sigmoid(), xb.Dense(1), xb.Sigmoid()])


def time_fit(backend: str, x: np.ndarray, y: np.ndarray, epochs: int,
             metrics: list[str] | None = None) -> float:
    """Seconds for `epochs` full-batch epochs through `fit`, from scratch: the parameters,
    the step and (on JAX) its compilation included, as in the bare loop."""
    start = _clock()
    result = xb.fit(_model(), x, y, epochs=epochs, loss="mse", optimizer=xb.optim.sgd(0.5),
                    batch_size=4, backend=backend, progress=False, metrics=metrics)
    seconds = _clock() - start
    assert result.history["loss"][-1] < result.history["loss"][0], "fit did not learn"
    return seconds


def time_loop(backend: str, x: np.ndarray, y: np.ndarray, epochs: int) -> float:
    """Seconds for `epochs` calls of the same step in a bare loop, from scratch: the
    parameters, the step and (on JAX) its compilation included, one sync at the end."""
    start = _clock()
    b = xb.get_backend(backend)
    model, opt = _model(), xb.optim.sgd(0.5)
    state = xb.TrainState.create(xb.init_params(model, 0, (2,), backend=b), opt)
    step = xb.make_train_step(model, "mse", opt, backend=b, donate=True)
    batch = (b.asarray(x), b.asarray(y))
    for _ in range(epochs):
        state, loss = step(state, batch)
    b.synchronize(loss)
    return _clock() - start


def time_plain(epochs: int) -> float:
    runner = make("xor", "numpy-plain")
    runner.step()
    start = _clock()
    for _ in range(epochs):
        runner.step()
    return _clock() - start


def _said(metrics: list[str] | None) -> str:
    return "all (the default)" if metrics is None else ", ".join(metrics) or "none (the loss)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--clock", choices=CLOCKS, default="wall",
                        help="wall (default), or cpu: this process's CPU time (a busy machine)")
    parser.add_argument("--metrics", nargs="*", metavar="NAME",
                        help="fit's metrics (default: all of MSE's); no names: the loss alone")
    parser.add_argument("--backends", nargs="+",
                        default=[b for b in ("numpy", "jax", "torch")
                                 if b in xb.available_backends()])
    args = parser.parse_args(argv)
    global _clock
    _clock = CLOCKS[args.clock]
    x, y = WORKLOADS["xor"].data()
    print(f"{args.epochs} full-batch XOR epochs (2-4-1 sigmoid, batch 4, SGD), best of "
          f"{args.repeat}, {args.clock} clock, metrics {_said(args.metrics)}, load average {load_average()}; target: fit within {TARGET}x the bare loop\n")
    plain = min(time_plain(args.epochs) for _ in range(args.repeat))
    print("| backend | fit s | bare loop s | fit / loop | fit / plain NumPy |")
    print("|---|---:|---:|---:|---:|")
    for backend in args.backends:
        try:
            fit_s = min(time_fit(backend, x, y, args.epochs, args.metrics)
                        for _ in range(args.repeat))
            loop_s = min(time_loop(backend, x, y, args.epochs) for _ in range(args.repeat))
        except (Unavailable, xb.BackendUnavailableError) as e:
            print(f"| {backend} | skipped: {e} | | | |")
            continue
        mark = "" if fit_s / loop_s <= TARGET else " (over target)"
        print(f"| {backend} | {fit_s:.3f} | {loop_s:.3f} | {fit_s / loop_s:.2f}x{mark} | "
              f"{fit_s / plain:.1f}x |")
    print(f"| plain NumPy script | | {plain:.3f} | | 1.0x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
