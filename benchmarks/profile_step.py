"""Where one implementation's train step spends its time: the profile behind a figure of
`benchmarks.compare`.

    python -m benchmarks.profile_step WORKLOAD IMPL [--steps 20] [--top 25] [--threads N]

Prints the Python-level profile (cProfile: calls and time per function, the arithmetic a
NumPy step runs counted in the layer function that calls it) and, for implementations on
PyTorch tensors, PyTorch's own per-operator profile (`torch.profiler`: time per aten
operator). Both are taken over `--steps` steps after a warm-up that includes compilation.
`--threads N` runs PyTorch's operators on N threads, so a profile on a busy machine can be
read one core at a time; for NumPy's BLAS set OPENBLAS_NUM_THREADS=N in the environment.

For instruction counts, which a busy machine does not disturb, run the same steps under
`valgrind --tool=callgrind` twice, with different step counts, and subtract.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys

from benchmarks.impls import IMPLS, make
from benchmarks.workloads import WORKLOADS


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=WORKLOADS)
    parser.add_argument("impl", choices=IMPLS)
    parser.add_argument("--steps", type=int, default=20, help="profiled steps (default 20)")
    parser.add_argument("--top", type=int, default=25, help="rows of each table")
    parser.add_argument("--threads", type=int, help="threads for PyTorch's operators")
    args = parser.parse_args(argv)
    if args.steps < 1 or (args.threads is not None and args.threads < 1):
        parser.error("--steps and --threads are at least 1")
    torch_impl = args.impl == "torch" or args.impl.startswith(("torch-", "xbackprop-torch"))
    runner = make(args.workload, args.impl)
    if torch_impl and args.threads is not None:
        import torch  # deferred: a heavy optional library

        torch.set_num_threads(args.threads)  # after make: the PyTorch peer sets its own
    for _ in range(5):
        runner.step()
    runner.sync()

    profile = cProfile.Profile()
    profile.enable()
    for _ in range(args.steps):
        runner.step()
    runner.sync()
    profile.disable()
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out)
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"{args.workload} / {args.impl}: {args.steps} steps, by time spent in each "
          f"function itself\n{out.getvalue()}")

    if torch_impl:
        from torch.profiler import ProfilerActivity, profile as torch_profile

        with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(args.steps):
                runner.step()
            runner.sync()
        print(f"{args.workload} / {args.impl}: PyTorch operators over {args.steps} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
    return 0


if __name__ == "__main__":
    sys.exit(main())
