"""Which backend runs: explicit argument > use_backend > set_backend > XBACKPROP_BACKEND >
numpy; and every bad choice is an error that names the choice, where it came from and the
fix, never a silent fall-back to another backend."""

from __future__ import annotations

import sys
import threading
import types

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import backends
from xbackprop.backends import _base, _select

ENV = backends.ENV_VAR

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


def test_env_var_name_and_names():
    assert ENV == "XBACKPROP_BACKEND"
    assert backends.BACKEND_NAMES == ("numpy", "jax", "cupy", "array_api_strict", "torch")


def test_default_is_numpy():
    b = xb.get_backend()
    assert b.name == "numpy" and b.xp.ndarray is np.ndarray and b.device == "cpu"
    assert b.xp.exp is np.exp and b.xp.sum is not np.sum  # faster reductions, same results
    assert isinstance(xb.init_params(xb.Dense(2), 0, (3,))["W"], np.ndarray)


def test_blank_env_var_means_the_default(monkeypatch):
    monkeypatch.setenv(ENV, "   ")
    assert xb.get_backend().name == "numpy"


def test_env_var_chooses_the_backend(monkeypatch, jax_backend):
    monkeypatch.setenv(ENV, "jax")
    assert xb.get_backend() is jax_backend
    monkeypatch.setenv(ENV, "  NumPy ")  # trimmed and case-insensitive
    assert xb.get_backend().name == "numpy"


def test_env_var_is_read_at_every_use_not_cached(monkeypatch, jax_backend):
    assert xb.get_backend().name == "numpy"
    monkeypatch.setenv(ENV, "jax")
    assert xb.get_backend().name == "jax"
    monkeypatch.delenv(ENV)
    assert xb.get_backend().name == "numpy"


def test_set_backend_beats_env_var(monkeypatch, jax_backend):
    monkeypatch.setenv(ENV, "jax")
    assert xb.set_backend("numpy").name == "numpy"
    assert xb.get_backend().name == "numpy"
    monkeypatch.setenv(ENV, "numpy")
    xb.set_backend("jax")
    assert xb.get_backend() is jax_backend


def test_set_backend_none_resets_to_env_then_default(monkeypatch, jax_backend):
    xb.set_backend("jax")
    assert xb.set_backend(None) is None
    assert xb.get_backend().name == "numpy"
    xb.set_backend("numpy")
    monkeypatch.setenv(ENV, "jax")
    assert xb.get_backend().name == "numpy"
    xb.set_backend(None)
    assert xb.get_backend().name == "jax"


def test_use_backend_beats_set_backend_and_env(monkeypatch, jax_backend):
    monkeypatch.setenv(ENV, "jax")
    xb.set_backend("jax")
    with xb.use_backend("numpy") as b:
        assert b.name == "numpy"
        assert xb.get_backend().name == "numpy"
    assert xb.get_backend().name == "jax"


def test_explicit_argument_beats_everything(monkeypatch, jax_backend):
    monkeypatch.setenv(ENV, "jax")
    xb.set_backend("jax")
    with xb.use_backend("jax"):
        assert xb.get_backend("numpy").name == "numpy"
        params = xb.init_params(xb.Dense(2), 0, (3,), backend="numpy")
        assert type(params["W"]) is np.ndarray
        assert type(xb.asarray([1.0, 2.0], backend="numpy")) is np.ndarray
        # ...while the block decides where new arrays go when nothing is said
        assert jax_backend.is_array(xb.init_params(xb.Dense(2), 0, (3,))["W"])
        assert jax_backend.is_array(xb.asarray([1.0, 2.0]))


def test_the_strongest_choice_wins_at_every_level(monkeypatch, jax_backend):
    """Each level set to a different backend than the one below it: the top one decides."""
    monkeypatch.setenv(ENV, "numpy")
    assert xb.get_backend().name == "numpy"           # env
    xb.set_backend("jax")
    assert xb.get_backend().name == "jax"             # set_backend > env
    with xb.use_backend("numpy"):
        assert xb.get_backend().name == "numpy"       # use_backend > set_backend
        assert xb.get_backend("jax").name == "jax"    # argument > use_backend


def test_backend_objects_are_singletons_and_pass_through(jax_backend):
    assert xb.get_backend("numpy") is xb.get_backend(" NUMPY ")
    b = xb.get_backend("numpy")
    assert xb.get_backend(b) is b
    with xb.use_backend(jax_backend) as chosen:
        assert chosen is jax_backend and xb.get_backend() is jax_backend
    assert "numpy" in repr(b) and "cpu" in repr(b)


def test_use_backend_restores_on_exit_and_nests(jax_backend):
    with xb.use_backend("jax"):
        with xb.use_backend("numpy"):
            assert xb.get_backend().name == "numpy"
        assert xb.get_backend().name == "jax"
    assert xb.get_backend().name == "numpy"


def test_use_backend_restores_on_exception(jax_backend):
    xb.set_backend("numpy")
    with pytest.raises(KeyError):
        with xb.use_backend("jax"):
            assert xb.get_backend().name == "jax"
            raise KeyError("boom")
    assert xb.get_backend().name == "numpy"
    assert _base.current.get() is None


def test_use_backend_is_per_thread(jax_backend):
    seen = {}

    def worker():
        seen["thread"] = xb.get_backend().name

    with xb.use_backend("jax"):
        t = threading.Thread(target=worker)
        t.start()
        t.join()
        seen["main"] = xb.get_backend().name
    assert seen == {"thread": "numpy", "main": "jax"}


def test_use_backend_in_a_thread_does_not_leak_to_main(jax_backend):
    inside, release = threading.Event(), threading.Event()
    seen = {}

    def worker():
        with xb.use_backend("jax"):
            seen["thread"] = xb.get_backend().name
            inside.set()
            release.wait(5)

    t = threading.Thread(target=worker)
    t.start()
    assert inside.wait(5)
    seen["main"] = xb.get_backend().name
    release.set()
    t.join()
    assert seen == {"thread": "jax", "main": "numpy"}


def test_set_backend_is_process_wide(jax_backend):
    xb.set_backend("jax")
    seen = {}
    t = threading.Thread(target=lambda: seen.setdefault("thread", xb.get_backend().name))
    t.start()
    t.join()
    assert seen["thread"] == "jax"


# -- errors ---------------------------------------------------------------------------

VALID_LIST = "'numpy', 'jax', 'cupy', 'array_api_strict', 'torch'"


def test_unknown_name_as_argument():
    with pytest.raises(backends.UnknownBackendError) as info:
        xb.get_backend("tensorflow")
    msg = str(info.value)
    assert "'tensorflow'" in msg and VALID_LIST in msg and "the backend argument" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, backends.BackendError)


def test_unknown_name_from_env_names_the_variable(monkeypatch):
    monkeypatch.setenv(ENV, "tensorflow")
    with pytest.raises(backends.UnknownBackendError) as info:
        xb.get_backend()
    msg = str(info.value)
    assert "environment variable XBACKPROP_BACKEND='tensorflow'" in msg
    assert VALID_LIST in msg
    # never a silent fall-back: asking again, or creating an array, still fails
    with pytest.raises(backends.UnknownBackendError):
        xb.init_params(xb.Dense(2), 0, (3,))
    with pytest.raises(backends.UnknownBackendError):
        xb.asarray([1.0])


def test_unknown_name_from_set_backend_fails_at_once_and_keeps_the_old_choice():
    xb.set_backend("numpy")
    with pytest.raises(backends.UnknownBackendError, match=r"set_backend\(\)") as info:
        xb.set_backend("tensorflow")
    assert VALID_LIST in str(info.value)
    assert _select._process_choice.name == "numpy"


def test_unknown_name_from_use_backend():
    with pytest.raises(backends.UnknownBackendError, match=r"'mxnet' \(from use_backend\(\)\)"):
        with xb.use_backend("mxnet"):
            pass  # pragma: no cover
    assert xb.get_backend().name == "numpy"


@pytest.mark.parametrize("bad", [3, 2.5, ["numpy"]])
def test_a_backend_is_named_by_a_string(bad):
    with pytest.raises(backends.UnknownBackendError, match="string"):
        xb.get_backend(bad)


@pytest.fixture
def without(monkeypatch):
    """`without("jax")`: make `import jax` fail and forget the built backend; both are
    restored after the test."""
    def hide(name: str) -> None:
        monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.delitem(_select._instances, name, raising=False)
    return hide


def test_missing_jax_names_the_pip_extra(without, monkeypatch):
    without("jax")
    with pytest.raises(backends.BackendUnavailableError) as info:
        xb.get_backend("jax")
    msg = str(info.value)
    assert "pip install 'xbackprop[jax]'" in msg and "the backend argument" in msg
    assert isinstance(info.value, ImportError)
    monkeypatch.setenv(ENV, "jax")
    with pytest.raises(backends.BackendUnavailableError,
                       match=r"environment variable XBACKPROP_BACKEND='jax'"):
        xb.get_backend()
    with pytest.raises(backends.BackendUnavailableError, match=r"set_backend\(\)"):
        xb.set_backend("jax")
    assert "jax" not in _select._instances and "jax" not in xb.available_backends()


def test_missing_cupy_names_the_pip_extras(without, monkeypatch):
    without("cupy")
    monkeypatch.setenv(ENV, "cupy")
    with pytest.raises(backends.BackendUnavailableError) as info:
        xb.get_backend()
    msg = str(info.value)
    assert "pip install 'xbackprop[cuda12]' or 'xbackprop[cuda13]'" in msg
    assert "environment variable XBACKPROP_BACKEND='cupy'" in msg
    with pytest.raises(backends.BackendUnavailableError, match=r"use_backend\(\)"):
        with xb.use_backend("cupy"):
            pass  # pragma: no cover


def _fake_cupy(device_count) -> types.ModuleType:
    """A stand-in `cupy` module whose CUDA runtime reports `device_count` devices, or raises
    it if it is an exception."""
    def get_device_count():
        if isinstance(device_count, BaseException):
            raise device_count
        return device_count

    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=types.SimpleNamespace(
        getDeviceCount=get_device_count))
    return fake


class CUDARuntimeError(RuntimeError):
    pass


def test_cupy_without_a_usable_device_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy",
                        _fake_cupy(CUDARuntimeError("cudaErrorNoDevice: no CUDA-capable device")))
    monkeypatch.delitem(_select._instances, "cupy", raising=False)
    with pytest.raises(backends.BackendUnavailableError) as info:
        xb.get_backend("cupy")
    msg = str(info.value)
    assert "no CUDA device is usable" in msg and "cudaErrorNoDevice" in msg
    assert "'numpy' or 'jax'" in msg  # says what to do instead
    assert "cupy" not in _select._instances
    assert "cupy" not in xb.available_backends()


def test_cupy_with_zero_devices_is_an_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(0))
    monkeypatch.delitem(_select._instances, "cupy", raising=False)
    monkeypatch.setenv(ENV, "cupy")
    with pytest.raises(backends.BackendUnavailableError) as info:
        xb.get_backend()
    msg = str(info.value)
    assert "found no CUDA device" in msg
    assert "environment variable XBACKPROP_BACKEND='cupy'" in msg
    # no silent fall-back to numpy for new arrays either
    with pytest.raises(backends.BackendUnavailableError):
        xb.init_params(xb.Dense(2), 0, (3,))


def test_available_backends_lists_exactly_those_that_work():
    names = xb.available_backends()
    assert names[0] == "numpy"
    for name in backends.BACKEND_NAMES:
        try:
            xb.get_backend(name)
            works = True
        except backends.BackendUnavailableError:
            works = False
        assert (name in names) == works
