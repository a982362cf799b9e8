"""Which backend runs: the registry, the selection rules and finding a backend from arrays.

Selection, strongest first: an explicit argument; `with use_backend(name):` (a context
variable, so it is per thread and restored on exit, also on error); `set_backend(name)`
(process-wide); the environment variable XBACKPROP_BACKEND, read when a backend is first
needed, not at import; the default "numpy". A bad choice is an error that names where it
came from; xbackprop never falls back to another backend.

A choice is a name, optionally with a device ("cupy:1", "jax:gpu:0"), or a configured
backend value (`get_backend("jax", mesh=mesh)`). One value is kept per name and device.

Detection from arrays follows einops: a backend is only asked about an array if its library
is already imported (an array of a library cannot exist before the library is), so asking
"whose array is this?" never imports JAX or CuPy. Ownership is a property of the type, so
it is cached per type and gives each library's default value; a configured value of the
same library that is current (`use_backend`, `set_backend`, a compiled step's scope) is
what `backend_of` answers instead.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import os
import sys
import threading
from types import TracebackType
from typing import Any

from ._base import (
    Backend,
    BackendUnavailableError,
    MixedBackendError,
    UnknownBackendError,
    checked,
    current,
)
from ._registry import BACKENDS

ENV_VAR = "XBACKPROP_BACKEND"

#: functions of the Array API standard that xbackprop's math needs and that older releases
#: of the libraries lack (NumPy < 2.1, CuPy < 14)
REQUIRED_FUNCTIONS = ("astype", "clip", "concat", "permute_dims", "take", "full", "stack")


def _load(entry: str) -> type[Backend]:
    module, _, cls = entry.partition(":")
    return getattr(importlib.import_module(f".{module}", __package__), cls)


_CLASSES: dict[str, type[Backend]] = {cls.name: cls for cls in map(_load, BACKENDS)}
BACKEND_NAMES: tuple[str, ...] = tuple(_CLASSES)
DEFAULT = BACKEND_NAMES[0]  # the first registered (NumPy)

_instances: dict[Any, Backend] = {}  # by choice: "numpy", "cupy:1", or (name, options)
_instances_lock = threading.Lock()
_process_choice: Backend | None = None


def _instance(spec: str, source: str | None, options: dict[str, Any] | None = None
              ) -> Backend:
    """The Backend value for a normalised choice `name[:device]` (and `options`), built on
    first use and kept while its options can be a dict key. `source` says where the choice
    came from, for the errors (None: nowhere, the backend was only asked about)."""
    key: Any = spec if not options else (spec, tuple(sorted(options.items())))
    try:
        backend = _instances.get(key)
    except TypeError:  # unhashable options (a mesh is hashable; a list is not): no caching
        key, backend = None, None
    if backend is not None:
        return backend
    name, _, device = spec.partition(":")
    cls = _CLASSES.get(name)
    if cls is None:
        raise UnknownBackendError(
            f"unknown backend {name!r}{f' (from {source})' if source else ''}; choose one of "
            f"{', '.join(map(repr, BACKEND_NAMES))}.")
    try:
        inspect.signature(cls).bind(device or None, **(options or {}))
    except TypeError as e:
        hint = ""
        if {"mesh", "devices", "data_axis"} & set(options or {}) and "mesh" not in \
                inspect.signature(cls).parameters:
            hint = (f" Backend {name!r} computes on one device; meshes and devices= are the "
                    "JAX backend's: get_backend('jax', mesh=mesh) or get_backend('jax', "
                    "devices=4).")
        raise UnknownBackendError(f"backend {name!r}{f' (from {source})' if source else ''} "
                                  f"takes no such options: {e}.{hint}") from None
    with _instances_lock:
        if key is not None and key in _instances:
            return _instances[key]
        try:
            backend = cls(device or None, **(options or {}))
            _check_namespace(backend)
        except BackendUnavailableError as e:
            if source is None:
                raise
            raise BackendUnavailableError(f"{e} (backend chosen by {source})") from e
        if key is not None:
            _instances[key] = backend
        return backend


def _check_namespace(backend: Backend) -> None:
    missing = [f for f in REQUIRED_FUNCTIONS if not hasattr(backend.xp, f)]
    if missing:
        xp = backend.xp
        raise BackendUnavailableError(
            f"backend {backend.name!r}: {getattr(xp, '__name__', xp)} "
            f"{getattr(xp, '__version__', '')} lacks {', '.join(missing)} of the Array API "
            "standard (2023.12), which xbackprop's layers use. Upgrade it (NumPy >= 2.1, "
            "CuPy >= 14).")


def backend_class(name: str) -> type[Backend]:
    """The registered Backend class called `name`, without making a value (nothing is
    imported or initialised)."""
    cls = _CLASSES.get(name)
    if cls is None:
        raise UnknownBackendError(f"unknown backend {name!r}; choose one of "
                                  f"{', '.join(map(repr, BACKEND_NAMES))}.")
    return cls


def normalise(name: str) -> str:
    if not isinstance(name, str):
        raise UnknownBackendError(
            f"a backend is named by a string such as 'numpy', not {type(name).__name__}.")
    return name.strip().lower()


def get_backend(name: str | Backend | None = None, **options: Any) -> Backend:
    """The backend to use: `name` if given, else the current choice (see module docstring).

    `name` may carry a device ("cupy:1", "jax:gpu:1", "jax:cpu"); `options` configure a
    value (`get_backend("jax", mesh=mesh)`); a Backend value is returned as it is.
    """
    if isinstance(name, Backend):
        if options:
            raise TypeError("get_backend: options configure a backend named by a string")
        return name
    if name is not None:
        return _instance(normalise(name), "the backend argument", options)
    if options:
        raise TypeError("get_backend: options need a backend name, e.g. "
                        "get_backend('jax', mesh=mesh)")
    chosen = current.get()
    if chosen is not None:
        return chosen
    if _process_choice is not None:
        return _process_choice
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return _instance(normalise(env), f"the environment variable {ENV_VAR}={env!r}")
    return _instance(DEFAULT, "the default")


def set_backend(name: str | Backend | None) -> Backend | None:
    """Choose the backend for the whole process (None: back to the env variable/default).
    Fails at once, not on first use, if the backend cannot run here."""
    global _process_choice
    if name is None:
        _process_choice = None
        return None
    backend = name if isinstance(name, Backend) else _instance(normalise(name),
                                                                "set_backend()")
    _process_choice = backend
    return backend


def use_backend(name: str | Backend) -> contextlib.AbstractContextManager[Backend]:
    """Use `name` (or a backend value) inside a `with` block, in this thread (and context)
    only; the previous choice comes back on exit, also when the block raises."""
    backend = name if isinstance(name, Backend) else _instance(normalise(name),
                                                                "use_backend()")
    return backend.scope()


def probe(name: str) -> Backend:
    """The backend `name` if it can run here; else the error that says why, as a listing
    shows it (`xbackprop backends`: nothing was chosen, so no "chosen by")."""
    return _instance(normalise(name), None)


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
    """The backend whose array `x` is (its library's default value), or None for non-arrays
    (Python and NumPy scalars count as nobody's: they mix with any backend's arrays).

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
    root = type(x).__module__.partition(".")[0]
    if root == "builtins":
        return None
    # the backends of the type's own library first; then, for array subclasses defined
    # elsewhere, every backend whose library is imported (and so whose arrays may exist)
    claiming = [cls for cls in _CLASSES.values() if root in cls.modules]
    imported = [cls for cls in _CLASSES.values()
                if cls not in claiming and any(m in sys.modules for m in cls.modules)]
    for cls in claiming + imported:
        try:
            backend = _instance(cls.name, "an array argument")
        except BackendUnavailableError:
            continue
        if backend.is_array(x):
            return backend
    return None


def backend_of(*arrays: Any, default: str | Backend | None = None) -> Backend:
    """The one backend that owns all the given arrays (non-arrays are ignored): the current
    backend value if it is of their library (a configured one: a device, a mesh), else the
    library's default value.

    Raises MixedBackendError naming both if arrays of two backends are mixed. With no arrays
    at all, returns `default` or the current backend.
    """
    known = checked.get()
    if known is not None:  # inside a step whose arrays were checked at its boundary
        return known
    found: Backend | None = None
    found_at = -1
    for i, x in enumerate(arrays):
        owner = _owner_by_type.get(type(x), _UNSEEN)
        if owner is _UNSEEN:
            owner = owner_of(x)
        if owner is None or owner is found:
            continue
        if found is not None:
            raise MixedBackendError(
                f"arrays of two backends in one call: argument {found_at} is a "
                f"{_type_name(arrays[found_at])} ({found.name}) and argument {i} is a "
                f"{_type_name(x)} ({owner.name}). Move them to one backend first, e.g. "
                f"xbackprop.asarray(x, backend={found.name!r}).")
        found, found_at = owner, i
    if found is None:
        return get_backend(default)
    chosen = current.get() or _process_choice
    if chosen is not None and chosen is not found and chosen.name == found.name:
        return chosen
    return found


_UNSEEN: Any = object()


def _type_name(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


class trusted:
    """`with trusted(backend):` the arrays of the code inside were checked at its boundary
    (they are all `backend`'s), so `backend_of` answers `backend` at once instead of looking
    at every array again, and layers skip their own checks of what they return. A train step
    enters it on its calls after the first, which runs with every check: per-call checks
    cost more than a tiny network's arithmetic."""

    __slots__ = ("backend", "token")

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def __enter__(self) -> Backend:
        self.token = checked.set(self.backend)
        return self.backend

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        checked.reset(self.token)


def is_trusted() -> bool:
    """True inside `trusted(...)`: arrays were checked at the boundary."""
    return checked.get() is not None
