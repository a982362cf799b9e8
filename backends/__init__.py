"""xbackprop's backend layer: NumPy (CPU), JAX (CPU/GPU, jit-compiled) and CuPy (NVIDIA GPU).

Installed as `xbackprop.backends`. Layer code never imports an array library: it asks
`backend_of(*its_arrays)` for the backend and uses its namespace `xp`. The current backend
(`get_backend()`) decides only where new arrays are created.

Importing this package imports NumPy only; JAX and CuPy are imported when chosen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import (
    Array,
    Backend,
    BackendError,
    BackendUnavailableError,
    DtypeError,
    MixedBackendError,
    UnknownBackendError,
)
from ._select import (
    BACKEND_NAMES,
    ENV_VAR,
    available_backends,
    backend_of,
    get_backend,
    owner_of,
    set_backend,
    use_backend,
)

__all__ = [
    "Array", "Backend", "BackendError", "BackendUnavailableError", "DtypeError",
    "MixedBackendError", "UnknownBackendError", "BACKEND_NAMES", "ENV_VAR",
    "available_backends", "backend_of", "get_backend", "owner_of", "set_backend",
    "use_backend", "to_numpy", "asarray", "tree_to_backend",
]


def to_numpy(tree: Any) -> Any:
    """Every array in `tree` (an array, or dicts/lists/tuples of them) as a NumPy array."""
    from xbackprop.tree import tree_map

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
    from xbackprop.tree import tree_map

    target = get_backend(backend)

    def one(x: Any) -> Any:
        if owner_of(x) is None and not isinstance(x, np.generic):
            return x
        cast = dtype if dtype is not None and np.dtype(x.dtype).kind == "f" else None
        return target.asarray(x, dtype=cast)

    return tree_map(one, tree)
