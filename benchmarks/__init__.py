"""xbackprop's benchmarks: the workloads (workloads.py), one module per implementation
(impls/), the pytest-benchmark suite (bench_steps.py) and `python -m benchmarks.compare`,
which times every workload for xbackprop and its peers in one process and prints the table
in the README."""
