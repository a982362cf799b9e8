"""The implementations timed side by side, one module each: xbackprop on every backend,
PyTorch eager, JAX autodiff with optax under `jax.jit`, and plain hand-written NumPy.

A module declares `IMPLS` (the implementation names it serves, each with its setting: a
backend, a device) and one builder per kind of workload, `train_step(workload, setting)`
and `matmul(workload, setting)`, returning a `Runner` or raising `Unavailable` with the
reason and the fix. Modules import their library only when a runner is built.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from benchmarks.workloads import WORKLOADS, Runner, Unavailable

from . import jax_autodiff, numpy_plain, pytorch, xbackprop

MODULES: tuple[ModuleType, ...] = (xbackprop, pytorch, jax_autodiff, numpy_plain)
#: implementation name -> (its module, its setting)
REGISTRY: dict[str, tuple[ModuleType, Any]] = {
    name: (module, setting) for module in MODULES for name, setting in module.IMPLS.items()}
IMPLS: tuple[str, ...] = tuple(REGISTRY)


def make(workload: str, impl: str) -> Runner:
    """Build `impl` for `workload`, ready to time (or raise `Unavailable`)."""
    if workload not in WORKLOADS:
        raise ValueError(f"unknown workload {workload!r}; choose from {tuple(WORKLOADS)}")
    if impl not in REGISTRY:
        raise ValueError(f"unknown implementation {impl!r}; choose from {IMPLS}")
    module, setting = REGISTRY[impl]
    spec = WORKLOADS[workload]
    if spec.kind == "gpt":
        from benchmarks import gpt  # local: gpt.py imports the workloads, as this does

        if impl not in gpt.BUILDERS:
            raise Unavailable(f"the GPT step has no {impl} implementation; it has "
                              f"{', '.join(gpt.BUILDERS)}")
        return gpt.BUILDERS[impl](gpt.Config())
    return getattr(module, spec.kind)(spec, setting)
