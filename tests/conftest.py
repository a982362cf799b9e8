"""Shared fixtures. `backend` runs a test once per backend; a backend that cannot run here is
skipped with the reason printed (pytest -ra shows it), never silently replaced."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from xbackprop import backends

# Tests never inherit a backend choice from the shell that runs them.
os.environ.pop(backends.ENV_VAR, None)

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "not_on(*backends, reason): the `backend` fixture skips these backends "
        "for the marked tests, printing the reason")


def _backend_or_skip(name: str) -> backends.Backend:
    try:
        return backends.get_backend(name)
    except backends.BackendUnavailableError as e:
        pytest.skip(f"backend {name}: {e}")


@pytest.fixture(params=backends.BACKEND_NAMES)
def backend(request: pytest.FixtureRequest) -> Iterator[backends.Backend]:
    """Each registered backend in turn; skipped with the reason where unavailable. Eager code
    in the test computes as compiled steps do (JAX on a GPU: full float32).

    Tests marked `pytest.mark.not_on("array_api_strict", reason="...")` are skipped on the
    backends named, with the reason (code under test that still needs more than the Array
    API standard says so this way).
    """
    for marker in request.node.iter_markers("not_on"):
        if request.param in marker.args:
            pytest.skip(f"backend {request.param}: {marker.kwargs['reason']}")
    backend = _backend_or_skip(request.param)
    with backend.numerics():
        yield backend


@pytest.fixture
def jax_backend() -> backends.Backend:
    """The JAX backend (the gradient oracle), or a skip with the reason."""
    return _backend_or_skip("jax")


@pytest.fixture
def x64():
    """JAX 64-bit mode inside the test only (float64 oracles); restored afterwards."""
    jax = pytest.importorskip("jax", reason="JAX: not installed (pip install 'xbackprop[jax]')")
    with jax.enable_x64(True):
        yield


@pytest.fixture
def clean_backend_choice(monkeypatch):
    """No process-wide backend choice and no env variable, before and after the test."""
    monkeypatch.delenv(backends.ENV_VAR, raising=False)
    backends.set_backend(None)
    yield
    backends.set_backend(None)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Callable[..., Path]]:
    """A factory for small file systems, to test full disks and read-only folders for real:
    `small_disk("64k")` mounts a tmpfs of that size on a new folder under tmp_path and
    returns the folder; `small_disk(readonly=True)` mounts it read-only (chmod would not
    do: root ignores it). Unmounted after the test. Skipped, with the reason, where this
    process cannot mount one (not root, or a container without the permission)."""
    mounted: list[Path] = []

    def mount(size: str = "64k", readonly: bool = False) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        options = f"size={size}" + (",ro" if readonly else "")
        if shutil.which("mount") is None:
            pytest.skip("a small disk needs the mount command, which is not installed")
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if done.returncode != 0:
            why = done.stderr.strip() or f"mount exited with status {done.returncode}"
            pytest.skip(f"cannot mount a small tmpfs here ({why}); it needs root and the "
                        "permission to mount")
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
