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
