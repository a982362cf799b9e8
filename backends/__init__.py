"""xbackprop's backend layer: NumPy (CPU), JAX (CPU/GPU, jit-compiled), CuPy (NVIDIA GPU) and
array-api-strict (the Array API standard alone, a conformance check).

Installed as `xbackprop.backends`. Layer code never imports an array library: it asks
`backend_of(*its_arrays)` for the backend and uses its namespace `xp` and primitives. The
current backend (`get_backend()`) decides where new arrays are created, and which
configured value (a device, a mesh) `backend_of` answers for its library's arrays.

A backend is one module here plus one line in `_registry.py` (see README, "Adding a
backend"). Importing this package imports NumPy only; the others are imported when chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from xbackprop.tree import tree_map

from ._base import (
    Array,
    Backend,
    BackendError,
    BackendUnavailableError,
    DtypeError,
    MixedBackendError,
    ShardingError,
    UnknownBackendError,
)
from ._blas import BlasInfo, blas_hint, numpy_blas
from ._select import (
    BACKEND_NAMES,
    ENV_VAR,
    available_backends,
    backend_class,
    backend_of,
    get_backend,
    is_trusted,
    normalise,
    owner_of,
    probe,
    set_backend,
    trusted,
    use_backend,
)

__all__ = [
    "Array", "Backend", "BackendError", "BackendUnavailableError", "DtypeError",
    "MixedBackendError", "ShardingError", "UnknownBackendError", "BACKEND_NAMES", "ENV_VAR",
    "available_backends", "backend_of", "get_backend", "owner_of", "probe", "set_backend",
    "use_backend", "trusted", "is_trusted", "to_numpy", "asarray", "tree_to_backend",
    "initialize_distributed", "BlasInfo", "numpy_blas", "blas_hint",
]


def to_numpy(tree: Any) -> Any:
    """Every array in `tree` (an array, or dicts/lists/tuples of them) as a NumPy array."""
    def one(x: Any) -> Any:
        owner = owner_of(x)
        return x if owner is None else owner.to_numpy(x)

    return tree_map(one, tree)


def asarray(x: Any, backend: str | Backend | None = None, dtype: Any = None) -> Array:
    """`x` as an array of `backend` (default: the current one), optionally cast to `dtype`."""
    return get_backend(backend).asarray(x, dtype=dtype)


def tree_to_backend(tree: Any, backend: str | Backend | None = None, dtype: Any = None) -> Any:
    """Every array in `tree` moved to `backend`, floating ones cast to `dtype` if given;
    other leaves (Python numbers, None, strings) are kept as they are."""
    target = get_backend(backend)

    def one(x: Any) -> Any:
        owner = owner_of(x)
        if owner is None and not isinstance(x, np.generic):
            return x
        kind = (x.dtype if owner is None else owner.numpy_dtype(x.dtype)).kind
        return target.asarray(x, dtype=dtype if dtype is not None and kind == "f" else None)

    return tree_map(one, tree)


def initialize_distributed(backend: str = "jax", coordinator_address: str | None = None,
                           num_processes: int | None = None, process_id: int | None = None
                           ) -> tuple[int, int]:
    """Join a run of several processes (one per host, or per GPU) that train together:
    `(process_index, process_count)`. Call it first, before any array is made.

    coordinator_address "HOST:PORT" (process 0's host, any free port), num_processes and
    process_id name this process's place; leave all three out where the cluster says them
    (SLURM, Open MPI, Kubernetes: JAX's auto-detection). Afterwards
    `get_backend("jax", devices="all")` spans every process's devices. Only JAX runs
    several processes; the others say what to use instead.
    """
    name = normalise(backend).partition(":")[0]
    return backend_class(name).initialize_distributed(coordinator_address, num_processes,
                                                      process_id)

