"""Which BLAS runs NumPy's matrix products here, and whether its kernels use the CPU's widest
vector instructions.

NumPy's wheels bundle OpenBLAS, which chooses its kernels for the CPU when NumPy loads it,
unless `OPENBLAS_CORETYPE` names them (read once, at that moment: it must be set before
Python starts). Some machines set it on purpose, because older OpenBLAS builds computed
wrong results or crashed on their processors: the 2-core AMD EPYC VM these figures come
from sets `OPENBLAS_CORETYPE=Haswell` (AVX2) on a CPU with AVX-512, where OpenBLAS 0.3.31
left to itself chooses its SkylakeX kernels (AVX-512). PyTorch's oneDNN kernels use
AVX-512 either way, so a NumPy-against-PyTorch ratio taken under the variable measures the
kernels' width, not the code. `xbackprop backends` prints the kernels NumPy runs and, where
they leave AVX-512 unused, says so.

Measured there, one thread, float32, three runs each: the LSTM benchmark's weight-gradient
product (256 × 2048) · (2048 × 1024) took 10.6-11.0 ms with the Haswell kernels and
5.8-6.3 ms with the SkylakeX ones; the MLP benchmark's (256 × 784) · (784 × 512) 2.0-2.1 ms
and 1.1 ms; the LSTM's per-step (32 × 256) · (256 × 1024) 192-200 µs and 158-169 µs. The
README's speed section has the whole steps.
"""

from __future__ import annotations

import ctypes
import dataclasses
import os
from typing import Any

import numpy  # noqa: F401 (loaded first: it loads the BLAS whose file numpy_blas finds)

__all__ = ["BlasInfo", "numpy_blas", "blas_hint", "kernel_hint"]

#: OpenBLAS's kernels for x86 CPUs with AVX2 but without AVX-512
AVX2_KERNELS = ("Haswell", "Zen")
#: the function that names the kernels, as each OpenBLAS build exports it (plain; the
#: 64-bit-integer builds NumPy bundles, with scipy-openblas's prefix and suffix)
_CORENAME = ("scipy_openblas_get_corename64_", "openblas_get_corename64_",
             "openblas_get_corename")
_CONFIG = ("scipy_openblas_get_config64_", "openblas_get_config64_", "openblas_get_config")
_THREADS = ("scipy_openblas_get_num_threads64_", "openblas_get_num_threads64_",
            "openblas_get_num_threads")


@dataclasses.dataclass(frozen=True)
class BlasInfo:
    """The BLAS library NumPy loaded: its `config` string (name, version, build options),
    the `kernels` it chose for this CPU and its `threads`."""

    config: str
    kernels: str
    threads: int

    def __str__(self) -> str:
        words = self.config.split()
        name = " ".join(words[:2]) if len(words) >= 2 else self.config
        return f"{name}, {self.kernels} kernels, {self.threads} thread(s)"


def numpy_blas() -> BlasInfo | None:
    """The OpenBLAS that NumPy loaded, or None where it is another BLAS or cannot be found
    (only Linux's /proc/self/maps is read for the library)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        if not os.path.isfile(path):
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        corename = _function(lib, _CORENAME, ctypes.c_char_p)
        if corename is None:
            continue
        config = _function(lib, _CONFIG, ctypes.c_char_p)
        threads = _function(lib, _THREADS, ctypes.c_int)
        return BlasInfo(config=(config() or b"OpenBLAS").decode(errors="replace"),
                        kernels=(corename() or b"unknown").decode(errors="replace"),
                        threads=int(threads()) if threads is not None else 1)
    return None


def _function(lib: ctypes.CDLL, names: tuple[str, ...], restype: Any) -> Any:
    """The first of `names` that `lib` exports, as a function of no arguments, or None."""
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = restype
            fn.argtypes = []
            return fn
    return None


def cpu_has_avx512() -> bool:
    """Whether this CPU has AVX-512 (its foundation instructions, `avx512f` among the flags
    of Linux's /proc/cpuinfo; False where that cannot be read)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return "avx512f" in line.split()
    except OSError:
        pass
    return False


def blas_hint() -> str | None:
    """`kernel_hint` for this process: NumPy's BLAS, this CPU and this environment."""
    return kernel_hint(numpy_blas(), cpu_has_avx512(), dict(os.environ))


def kernel_hint(info: BlasInfo | None, avx512: bool, environ: dict[str, str]) -> str | None:
    """What to know where OpenBLAS's kernels leave the CPU's AVX-512 unused, or None."""
    if info is None or not avx512 or info.kernels not in AVX2_KERNELS:
        return None
    forced = environ.get("OPENBLAS_CORETYPE")
    if forced:
        return (f"this CPU has AVX-512, but OPENBLAS_CORETYPE={forced} in the environment picks "
                f"OpenBLAS's {info.kernels} kernels (AVX2); a current OpenBLAS left to choose "
                "(the variable and OPENBLAS_L2_SIZE unset) ran NumPy's float32 products up "
                "to 1.8x faster on such a CPU (README, \"On the CPU\")")
    return (f"this CPU has AVX-512, which OpenBLAS's {info.kernels} kernels leave unused; "
            "OPENBLAS_CORETYPE=SkylakeX set before Python starts ran NumPy's float32 "
            "products up to 1.8x faster on such a CPU (README, \"On the CPU\")")
