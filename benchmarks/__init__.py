"""xbackprop's benchmarks: pytest-benchmark suites (bench_*.py) and `python -m
benchmarks.compare`, which times every workload for xbackprop and its peers in one process
and prints the table in the README."""
