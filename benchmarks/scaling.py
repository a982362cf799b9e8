"""Data-parallel scaling: fit's time per step for the MLP and the CNN on 1, 2, 4 and 8
devices, the global batch fixed (each device runs batch / N rows of it).

    python -m benchmarks.scaling [--devices 1 2 4 8] [--workloads mlp cnn] [--epochs 6]
                                 [--steps 20] [--platform cpu|gpu] [--json out.json]

Each device count runs in its own process, since JAX fixes its devices when it starts. On
the CPU the host is split into N devices (XLA_FLAGS=--xla_force_host_platform_device_count
=N) that share the machine's cores: on a small machine the figures measure what splitting a
batch costs (N smaller products instead of one, the all-reduce of the gradients, dispatching
to N devices), not a speedup. On a GPU machine (`--platform gpu`) N is real GPUs.

The step is fit's own (`fit(..., devices=N)`; one device is the plain path, without a mesh,
what a user trains with there): the batch gathered by index on the devices,
padding, the statistics kept on the device until an epoch ends. Each epoch is reported (a
no-op callback), so its time is its own; the median of the epochs after the first (which
compiles) over the steps per epoch gives the time per step. A run whose loss does not fall
is an error, not a figure.

    mlp  784-512-512-10 ReLU, batch 256, Adam (the README's mlp workload)
    cnn  conv3x3(16)-ReLU-maxpool2, conv3x3(32)-ReLU-maxpool2, dense(10) on 1x28x28,
         batch 64, Adam (xbackprop.recipes.digits_cnn, the README's cnn workload)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

#: workload -> (global batch, input shape)
WORKLOADS = {"mlp": (256, (784,)), "cnn": (64, (1, 28, 28))}
IDLE_SECONDS = 1.0


def _model(workload: str) -> Any:
    import xbackprop as xb
    from xbackprop.recipes import digits_cnn

    if workload == "cnn":
        return digits_cnn()
    return xb.Sequential([xb.Dense(512, weight_init="he_normal"), xb.ReLU(),
                          xb.Dense(512, weight_init="he_normal"), xb.ReLU(), xb.Dense(10)])


def measure(workload: str, devices: int, platform_name: str, epochs: int, steps: int
            ) -> dict[str, Any]:
    """Train `workload` for `epochs` epochs of `steps` steps on `devices` devices; the time
    per step (ms) and what it ran on."""
    import numpy as np

    import xbackprop as xb

    batch, shape = WORKLOADS[workload]
    rng = np.random.default_rng(0)
    x = rng.random((batch * steps, *shape), dtype=np.float32)
    teacher = rng.normal(size=(int(np.prod(shape)), 10)).astype(np.float32)
    y = np.argmax(x.reshape(len(x), -1) @ teacher, axis=1)  # learnable labels
    backend = xb.get_backend(f"jax:{platform_name}")  # one device: the plain path, no mesh
    if devices > 1:
        backend = backend.with_devices(devices)
    result = xb.fit(_model(workload), x, y, loss="cross_entropy",
                    optimizer=xb.optim.adam(1e-3), epochs=epochs, batch_size=batch,
                    backend=backend, progress=False, callbacks=[lambda *_: None])
    losses, times = result.history["loss"], result.history["time"]
    if not losses[-1] < losses[0]:
        raise RuntimeError(f"{workload} on {devices} devices: the loss did not fall "
                           f"({losses[0]:.4f} -> {losses[-1]:.4f})")
    per_step = [t / steps for t in times[1:]]
    return {"workload": workload, "devices": devices, "device": backend.device,
            "batch": batch, "rows_per_device": -(-batch // devices),
            "ms_per_step": 1e3 * statistics.median(per_step),
            "ms_range": [1e3 * min(per_step), 1e3 * max(per_step)],
            "first_epoch_s": times[0]}


def _worker(args: argparse.Namespace) -> None:
    for workload in args.workloads:
        row = measure(workload, args.worker, args.platform, args.epochs, args.steps)
        print(json.dumps(row), flush=True)
        time.sleep(IDLE_SECONDS)


def run(devices: list[int], workloads: list[str], platform_name: str, epochs: int,
        steps: int) -> list[dict[str, Any]]:
    """Each device count in a fresh process; the rows it reports."""
    rows = []
    for n in devices:
        env = {k: v for k, v in os.environ.items() if k != "XBACKPROP_BACKEND"}
        if platform_name == "cpu":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                f" --xla_force_host_platform_device_count={n}").strip()
            env["JAX_PLATFORMS"] = "cpu"
        command = [sys.executable, "-m", "benchmarks.scaling", "--worker", str(n),
                   "--platform", platform_name, "--epochs", str(epochs), "--steps", str(steps),
                   "--workloads", *workloads]
        out = subprocess.run(command, capture_output=True, text=True, env=env)
        if out.returncode:
            raise RuntimeError(f"{n} devices failed:\n{out.stderr[-3000:]}")
        rows += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        time.sleep(IDLE_SECONDS)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    base = {r["workload"]: r["ms_per_step"] for r in rows if r["devices"] == 1}
    lines = ["| workload | devices | rows per device | ms per step (range) | vs 1 device |",
             "|---|---:|---:|---:|---:|"]
    for r in rows:
        low, high = r["ms_range"]
        ratio = base.get(r["workload"])
        ratio = f"{ratio / r['ms_per_step']:.2f}x" if ratio else "—"
        lines.append(f"| {r['workload']} (batch {r['batch']}) | {r['devices']} | "
                     f"{r['rows_per_device']} | {r['ms_per_step']:.2f} ({low:.2f}–{high:.2f}) "
                     f"| {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2, 4, 8])
    parser.add_argument("--workloads", nargs="+", choices=sorted(WORKLOADS),
                        default=["mlp", "cnn"])
    parser.add_argument("--platform", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--epochs", type=int, default=6, help="the first one compiles")
    parser.add_argument("--steps", type=int, default=20, help="steps per epoch")
    parser.add_argument("--json", metavar="PATH", help="also write the rows here")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.epochs < 2:
        parser.error("--epochs must be >= 2: the first epoch compiles and is not timed")
    if args.worker is not None:
        _worker(args)
        return
    import jax

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, JAX "
          f"{jax.__version__}, platform {args.platform}"
          + (f", load average {load[0]:.2f} at the start" if load else ""), flush=True)
    rows = run(args.devices, args.workloads, args.platform, args.epochs, args.steps)
    print(table(rows))
    if load is not None:
        print(f"load average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
