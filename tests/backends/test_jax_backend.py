"""The JAX backend's numerics: full float32 matrix products on GPUs, scoped, never global.

XLA:CPU always multiplies float32 in full precision, so the backend only scopes the
precision on GPUs; here we pretend to be on one and read the precision JAX traced."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def gpu_like(jax_backend, monkeypatch):
    """The JAX backend as it behaves on a GPU (precision scoped), on whatever device runs."""
    monkeypatch.setattr(jax_backend, "_cpu", False)
    return jax_backend


def _lowered(fn, *args) -> str:
    return fn.lower(*args).as_text()


def test_compiled_functions_ask_for_full_float32_products(gpu_like):
    import jax

    a = np.ones((4, 3), np.float32)
    before = jax.config.jax_default_matmul_precision
    text = _lowered(gpu_like.compile(lambda u, v: u @ v), a, a.T)
    assert "HIGHEST" in text  # precision = [HIGHEST, HIGHEST] on the dot_general
    assert jax.config.jax_default_matmul_precision == before  # nothing global changed
    plain = _lowered(jax.jit(lambda u, v: u @ v), a, a.T)
    assert "HIGHEST" not in plain  # the user's own JAX code keeps JAX's default


def test_default_precision_can_be_chosen(gpu_like, monkeypatch):
    monkeypatch.setattr(gpu_like, "matmul_precision", "default")
    a = np.ones((4, 3), np.float32)
    assert "HIGHEST" not in _lowered(gpu_like.compile(lambda u, v: u @ v), a, a.T)


def test_numerics_scope_is_restored_on_exit_and_on_error(gpu_like):
    import jax

    before = jax.config.jax_default_matmul_precision
    with gpu_like.numerics():
        assert jax.config.jax_default_matmul_precision == "float32"
    assert jax.config.jax_default_matmul_precision == before
    with pytest.raises(RuntimeError), gpu_like.numerics():
        raise RuntimeError("boom")
    assert jax.config.jax_default_matmul_precision == before


def test_numerics_changes_nothing_on_cpu(jax_backend):
    import jax

    if jax.devices()[0].platform != "cpu":
        pytest.skip("JAX: runs on a GPU here; the CPU case does not apply")
    before = jax.config.jax_default_matmul_precision
    with jax_backend.numerics():
        assert jax.config.jax_default_matmul_precision == before


# Over a mesh of CPU devices a compiled call returns only when its results are ready: with
# calls queued ahead XLA:CPU could start a device's part of a later call first and deadlock
# the all-reduce (`--devices 3` of 4 host devices aborted in 3 of 11 runs of train digits).
ONE_AT_A_TIME = """
import sys, time
import numpy as np
import jax
import xbackprop as xb

dp = xb.get_backend("jax", devices=3)  # of the 4 host devices: the case that deadlocked

def step(w, x):
    h = dp.xp.tanh(x @ w)
    return w - 0.01 * (x.T @ h) / x.shape[0], dp.xp.sum(h)  # sums over the split batch

fn = dp.compile(step, in_shardings=("replicated", "batch"))
w = dp.put(np.full((16, 8), 0.01, np.float32), "replicated")
x = dp.put(np.ones((33, 16), np.float32), "batch")
assert "all-reduce" in fn.lower(w, x).compile().as_text()  # still the jitted function
for i in range(int(sys.argv[1])):
    w, s = fn(w, x)
    assert w.is_ready() and s.is_ready(), i  # nothing left queued behind the call
one = xb.get_backend("jax")
assert type(one.compile(step)) is type(jax.jit(step)), "one device: the plain jitted function"
print("ok")
"""


def test_compiled_calls_over_cpu_devices_wait_for_their_results(jax_backend):
    import os
    import subprocess
    import sys

    env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS=(
        "--xla_force_host_platform_device_count=4 "
        "--xla_cpu_collective_call_terminate_timeout_seconds=20"))  # a deadlock fails in 20 s
    env.pop("XBACKPROP_BACKEND", None)
    done = subprocess.run([sys.executable, "-c", ONE_AT_A_TIME, "300"], capture_output=True,
                          text=True, env=env, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]
