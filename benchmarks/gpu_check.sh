#!/usr/bin/env bash
# The GPU checks, in one command, for a machine with an NVIDIA GPU and CuPy, JAX (CUDA),
# PyTorch (CUDA), optax, pytest, pytest-xdist and hypothesis already installed (no network
# needed; the torch backend also needs array-api-compat): install xbackprop without
# dependencies, train on CuPy, JAX and PyTorch, time every benchmark, run the whole test
# suite. Logs go to $OUT (default ./gpu-results).
#
#   bash benchmarks/gpu_check.sh                 # everything
#   STAGE=test bash benchmarks/gpu_check.sh      # one stage: train, bench or test
set -u
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 XLA_PYTHON_CLIENT_PREALLOCATE=false  # 8 test workers share the GPU
OUT=${OUT:-gpu-results}
STAGE=${STAGE:-all}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
python3 -c "import cupy, jax, torch, numpy; print('cupy', cupy.__version__, 'jax', jax.__version__, \
jax.devices(), 'torch', torch.__version__, 'numpy', numpy.__version__)"
python3 -m pip install -q --no-deps --no-build-isolation --no-index -e . > "$OUT/install.log" 2>&1 \
    || { echo "install failed"; tail -20 "$OUT/install.log"; exit 1; }
python3 -m xbackprop backends
if [[ $STAGE == all || $STAGE == train ]]; then
    for job in digits digits-cnn; do
        for backend in cupy jax torch; do
            echo "== train $job --backend $backend"
            timeout 150 python3 -m xbackprop train "$job" --backend "$backend" --quiet | tail -3
        done
    done
fi
if [[ $STAGE == all || $STAGE == bench ]]; then
    echo "== benchmarks"
    timeout 300 python3 -m benchmarks.compare --json "$OUT/bench.json" 2>&1 | tee "$OUT/bench.log"
fi
if [[ $STAGE == all || $STAGE == test ]]; then
    echo "== tests"
    timeout 400 python3 -m pytest -q -n 8 -p no:cacheprovider > "$OUT/pytest.log" 2>&1
    echo "pytest exit code $?"
    grep -E "FAILED|ERROR|passed|failed" "$OUT/pytest.log" | tail -40
fi
