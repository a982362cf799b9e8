"""NumPy's BLAS as `xbackprop backends` reports it: the library's own answer read live (not a
constant), and the hint given only where OpenBLAS's kernels leave the CPU's AVX-512 unused."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from xbackprop import backends
from xbackprop.backends import _blas


def _info(kernels: str) -> backends.BlasInfo:
    return backends.BlasInfo(config="OpenBLAS 0.3.31 DYNAMIC_ARCH", kernels=kernels, threads=2)


def test_the_hint_is_given_only_where_avx512_goes_unused():
    assert _blas.kernel_hint(None, True, {}) is None                  # no OpenBLAS found
    assert _blas.kernel_hint(_info("Haswell"), False, {}) is None     # no AVX-512 to use
    assert _blas.kernel_hint(_info("SkylakeX"), True, {}) is None     # uses it already
    chosen = _blas.kernel_hint(_info("Haswell"), True, {})
    assert chosen is not None and "OPENBLAS_CORETYPE=SkylakeX" in chosen
    forced = _blas.kernel_hint(_info("Zen"), True, {"OPENBLAS_CORETYPE": "Zen"})
    assert forced is not None and "OPENBLAS_CORETYPE=Zen in the environment" in forced
    assert "Zen kernels" in forced and "OPENBLAS_L2_SIZE" in forced


def test_the_info_reads_short():
    assert str(_info("Haswell")) == "OpenBLAS 0.3.31, Haswell kernels, 2 thread(s)"


def test_the_kernels_are_openblas_own_answer():
    """Asked to run its Haswell kernels, OpenBLAS says so (a reading, not a guess)."""
    info = backends.numpy_blas()
    if info is None:
        pytest.skip("NumPy's BLAS here is not an OpenBLAS this can find (Linux only)")
    code = "from xbackprop import backends; print(backends.numpy_blas().kernels)"
    env = dict(os.environ, OPENBLAS_CORETYPE="Haswell")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "Haswell"
    assert info.threads >= 1 and "OpenBLAS" in info.config
