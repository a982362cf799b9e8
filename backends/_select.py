"""Which backend runs: the registry, the selection rules and finding a backend from arrays.

Selection, strongest first: an explicit argument; `with use_backend(name):` (a context
variable, so it is per thread and restored on exit, also on error); `set_backend(name)`
(process-wide); the environment variable XBACKPROP_BACKEND, read when a backend is first
needed, not at import; the default "numpy". A bad choice is an error that names where it
came from; xbackprop never falls back to another backend.

Detection from arrays follows einops: a backend is only considered if its library is
already imported (an array of a library cannot exist before the library is), so asking
"whose array is this?" never imports JAX or CuPy.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ._base import Backend, BackendUnavailableError, MixedBackendError, UnknownBackendError

ENV_VAR = "XBACKPROP_BACKEND"
DEFAULT = "numpy"


def _numpy() -> Backend:
    from .numpy_backend import NumpyBackend

    return NumpyBackend()


def _jax() -> Backend:
    from .jax_backend import JaxBackend

    return JaxBackend()


def _cupy() -> Backend:
    from .cupy_backend import CupyBackend

    return CupyBackend()


#: name -> (factory, the module whose presence in sys.modules means its arrays may exist)
_REGISTRY: dict[str, tuple[Callable[[], Backend], str]] = {
    "numpy": (_numpy, "numpy"),
    "jax": (_jax, "jax"),
    "cupy": (_cupy, "cupy"),
}
BACKEND_NAMES: tuple[str, ...] = tuple(_REGISTRY)

_instances: dict[str, Backend] = {}
_instances_lock = threading.Lock()
_context_choice: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "xbackprop_backend", default=None)
_process_choice: str | None = None


def _instance(name: str, source: str) -> Backend:
    """The one Backend object for a normalised `name`, built on first use."""
    backend = _instances.get(name)
    if backend is not None:
        return backend
    if name not in _REGISTRY:
        raise UnknownBackendError(
            f"unknown backend {name!r} (from {source}); choose one of "
            f"{', '.join(map(repr, BACKEND_NAMES))}.")
    with _instances_lock:
        if name not in _instances:
            factory, _ = _REGISTRY[name]
            try:
                _instances[name] = factory()
            except BackendUnavailableError as e:
                raise BackendUnavailableError(f"{e} (backend chosen by {source})") from e
        return _instances[name]


def _normalise(name: str) -> str:
    if not isinstance(name, str):
        raise UnknownBackendError(
            f"a backend is named by a string such as 'numpy', not {type(name).__name__}.")
    return name.strip().lower()


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend to use: `name` if given, else the current choice (see module docstring)."""
    if isinstance(name, Backend):
        return name
    if name is not None:
        return _instance(_normalise(name), "the backend argument")
    chosen = _context_choice.get()
    if chosen is not None:
        return _instance(chosen, "use_backend()")
    if _process_choice is not None:
        return _instance(_process_choice, "set_backend()")
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return _instance(_normalise(env), f"the environment variable {ENV_VAR}={env!r}")
    return _instance(DEFAULT, "the default")


def set_backend(name: str | None) -> Backend | None:
    """Choose the backend for the whole process (None: back to the env variable/default).
    Fails at once, not on first use, if the backend cannot run here."""
    global _process_choice
    if name is None:
        _process_choice = None
        return None
    backend = _instance(_normalise(name), "set_backend()")
    _process_choice = backend.name
    return backend


@contextlib.contextmanager
def use_backend(name: str | Backend) -> Iterator[Backend]:
    """Use `name` inside a `with` block, in this thread (and context) only; the previous
    choice comes back on exit, also when the block raises."""
    backend = get_backend(name) if isinstance(name, Backend) else _instance(
        _normalise(name), "use_backend()")
    token = _context_choice.set(backend.name)
    try:
        yield backend
    finally:
        _context_choice.reset(token)


def available_backends() -> list[str]:
    """Names of the backends that can run here (library installed, device present).
    Tries each one, so it imports JAX and CuPy if they are installed."""
    names = []
    for name in BACKEND_NAMES:
        try:
            _instance(name, "available_backends()")
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


# -- whose array is this? ----------------------------------------------------------------

_owner_by_type: dict[type, Backend | None] = {}


def owner_of(x: Any) -> Backend | None:
    """The backend whose array `x` is, or None for non-arrays (Python and NumPy scalars
    count as nobody's: they mix with any backend's arrays without harm).

    Ownership is a property of the type, so the answer is cached per type: the hot path of
    every layer call is one dict lookup.
    """
    t = type(x)
    try:
        return _owner_by_type[t]
    except KeyError:
        owner = _find_owner(x)
        _owner_by_type[t] = owner
        return owner


def _find_owner(x: Any) -> Backend | None:
    if isinstance(x, np.ndarray):  # np.ndarray and subclasses such as np.memmap
        return _instance("numpy", "an array argument")
    for name, (_, module) in _REGISTRY.items():
        if module in sys.modules and name != "numpy" and _looks_like(name, x):
            backend = _instance(name, "an array argument")
            if backend.is_array(x):
                return backend
    return None


def _looks_like(name: str, x: Any) -> bool:
    """Cheap test, before building a backend object, that `x` belongs to library `name`."""
    return type(x).__module__.split(".")[0] in {"jax": ("jax", "jaxlib"),
                                                 "cupy": ("cupy",)}[name]


def backend_of(*arrays: Any, default: str | Backend | None = None) -> Backend:
    """The one backend that owns all the given arrays (non-arrays are ignored).

    Raises MixedBackendError naming both if arrays of two backends are mixed. With no arrays
    at all, returns `default` or the current backend.
    """
    found: Backend | None = None
    found_at = -1
    for i, x in enumerate(arrays):
        owner = _owner_by_type.get(type(x), _UNSEEN)
        if owner is _UNSEEN:
            owner = owner_of(x)
        if owner is None or owner is found or (found is not None and owner.name == found.name):
            continue
        if found is not None:
            raise MixedBackendError(
                f"arrays of two backends in one call: argument {found_at} is a "
                f"{_type_name(arrays[found_at])} ({found.name}) and argument {i} is a "
                f"{_type_name(x)} ({owner.name}). Move them to one backend first, e.g. "
                f"xbackprop.asarray(x, backend={found.name!r}).")
        found, found_at = owner, i
    return found if found is not None else get_backend(default)


_UNSEEN: Any = object()


def _type_name(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"
