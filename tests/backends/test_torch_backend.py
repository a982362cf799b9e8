"""The PyTorch backend: devices and their errors, arrays in and out, its own primitives against
the standard's defaults, layers making their arrays on its device, a training run that
gives NumPy's numbers, and the `train` command on it. The gradient oracle, every layer and
loss and the random bits run on it through the `backend` fixture elsewhere.

CUDA and MPS are not here: where PyTorch has no such device the tests check the error, and
the placement test runs on PyTorch's "meta" device (shapes only, no data), which fails the
same way a GPU does when an array is made on the CPU."""

from __future__ import annotations

import contextlib
import sys
import warnings

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.backends import Backend
from xbackprop.cli import main
from xbackprop.backends.torch_backend import INSTALL  # imports no torch
from xbackprop.tree import tree_leaves

# one way to install, the README's (and the backend's own error's)
torch = pytest.importorskip("torch", reason=f"PyTorch: not installed. {INSTALL}")
pytest.importorskip("array_api_compat", reason=f"array-api-compat: not installed. {INSTALL}")

from xbackprop.backends.torch_backend import TorchBackend  # noqa: E402


@pytest.fixture
def cpu() -> Backend:
    return xb.get_backend("torch:cpu")


def on_device(device: str) -> TorchBackend:
    """A CPU backend whose arrays go to `device` instead (a device `get_backend` refuses)."""
    backend = TorchBackend("cpu")
    backend._device, backend.device, backend.host_arrays = torch.device(device), device, False
    return backend


# -- devices -------------------------------------------------------------------------------

def test_the_default_is_cuda_else_the_cpu_never_mps():
    backend = xb.get_backend("torch")
    expected = f"cuda:{torch.cuda.current_device()}" if torch.cuda.is_available() else "cpu"
    assert backend.device == expected
    assert backend.host_arrays == (expected == "cpu")
    assert backend.inplace_updates and not backend.compiles and backend.counter(2) == 2


def test_cpu_by_name(cpu):
    assert cpu.device == "cpu" and cpu.host_arrays
    assert xb.get_backend("torch:cpu") is cpu
    x = cpu.asarray([1.0, 2.0], dtype="float32")
    assert x.device.type == "cpu" and xb.backend_of(x).name == "torch"


@pytest.mark.skipif(torch.cuda.is_available(), reason="PyTorch has a CUDA device here")
@pytest.mark.parametrize("spec", ["torch:cuda", "torch:cuda:1", "torch:1"])
def test_cuda_without_a_gpu_is_a_clear_error(spec):
    with pytest.raises(xb.BackendUnavailableError, match="no CUDA device") as info:
        xb.get_backend(spec)
    assert "'torch:cpu'" in str(info.value)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch has no CUDA device here")
def test_a_gpu_past_the_last_is_a_clear_error():
    count = torch.cuda.device_count()
    with pytest.raises(xb.BackendUnavailableError, match=f"'torch:cuda:{count - 1}'"):
        xb.get_backend(f"torch:cuda:{count}")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="PyTorch has an MPS device here")
def test_mps_without_an_apple_gpu_is_a_clear_error():
    with pytest.raises(xb.BackendUnavailableError, match="no Apple GPU"):
        xb.get_backend("torch:mps")


@pytest.mark.parametrize("spec", ["torch:tpu", "torch:banana", "torch:meta"])
def test_other_devices_are_refused(spec):
    with pytest.raises(xb.BackendUnavailableError, match="'cpu', 'cuda' and 'mps'|not a device"):
        xb.get_backend(spec)


def test_without_pytorch_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch raises ImportError
    with pytest.raises(xb.BackendUnavailableError, match="pip install") as info:
        TorchBackend()
    assert "download.pytorch.org/whl/cpu" in str(info.value)


def test_float64_is_refused_on_mps_only(cpu):
    assert cpu.check_dtype("float64") == np.float64
    mps = on_device("mps")
    assert mps.check_dtype("float32") == np.float32
    for refuse in (lambda: mps.check_dtype("float64"), lambda: mps.dtype_scope("float64"),
                   lambda: mps.asarray(np.ones(2), dtype="float64")):
        with pytest.raises(xb.DtypeError, match="MPS.*float32"):
            refuse()


# -- arrays in and out ---------------------------------------------------------------------

@pytest.mark.parametrize("dtype", ["float32", "float64", "int32", "int64", "uint32", "bool"])
def test_arrays_round_trip_exactly(cpu, dtype):
    host = (np.arange(12).reshape(3, 4) * 7919 % 13).astype(dtype)
    x = cpu.asarray(host)
    assert cpu.is_array(x) and not x.requires_grad
    assert cpu.numpy_dtype(x.dtype) == np.dtype(dtype)
    back = cpu.to_numpy(x)
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, host)


def test_asarray_casts_and_takes_any_backends_arrays(cpu, jax_backend):
    x = cpu.asarray([[1, 2], [3, 4]], dtype="float32")
    assert x.dtype == torch.float32
    from_jax = cpu.asarray(jax_backend.asarray(np.ones((2, 3), np.float32)))
    assert cpu.is_array(from_jax) and from_jax.shape == (2, 3)
    assert cpu.asarray(x) is x  # already here: no copy


def test_read_only_arrays_are_copied_without_a_warning(cpu):
    host = np.arange(4.0)
    host.flags.writeable = False  # as np.frombuffer and memory-mapped files give them
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = cpu.asarray(host)
    x += 1
    np.testing.assert_array_equal(host, [0, 1, 2, 3])


def test_tensors_that_need_gradients_come_in_and_out_as_values(cpu):
    w = torch.ones(3, requires_grad=True)
    np.testing.assert_array_equal(cpu.to_numpy(w * 2), [2, 2, 2])
    x = cpu.asarray(w)
    assert not x.requires_grad and x.data_ptr() == w.data_ptr()  # no copy
    params, _ = xb.optim.sgd(0.5).update({"w": x}, {"w": cpu.asarray([1.0, 1, 1])},
                                         xb.optim.sgd(0.5).init({"w": x}), inplace=True)
    np.testing.assert_array_equal(cpu.to_numpy(params["w"]), [0.5, 0.5, 0.5])


@pytest.mark.parametrize("widths", [((0, 0), (1, 2)), ((2, 0), (0, 0), (1, 1)),
                                    ((1, 1), (0, 3), (2, 0), (1, 1))])
@pytest.mark.parametrize("value", [0.0, -np.inf, 2.5])
def test_pad_is_the_standards_pad(cpu, widths, value):
    x = cpu.asarray(np.random.default_rng(0).normal(size=(2, 3, 4, 5)[:len(widths)]),
                    dtype="float32")
    ours = cpu.to_numpy(cpu.pad(x, widths, value))
    default = cpu.to_numpy(Backend.pad(cpu, x, widths, value))
    np.testing.assert_array_equal(ours, default)
    np.testing.assert_array_equal(ours, np.pad(cpu.to_numpy(x), widths, constant_values=value))


def test_synchronize_returns_its_argument(cpu):
    tree = {"a": cpu.asarray([1.0])}
    assert cpu.synchronize(tree) is tree


# -- placement -----------------------------------------------------------------------------

def _meta_step(backend: TorchBackend) -> list:
    """One train step of a CNN with every array-making layer (padding, pooling, dropout,
    batch norm, the loss) on `backend`, inside its scope as `make_train_step` runs it."""
    model = xb.Sequential([xb.Conv2D(4, 3, padding=1), xb.BatchNorm(), xb.ReLU(),
                           xb.MaxPool2D(2), xb.Dropout(0.5), xb.Flatten(), xb.Dense(3)])
    opt = xb.optim.adam(1e-3)
    with backend.scope():
        params = xb.init_params(model, 0, (1, 6, 6), backend=backend)
        state = xb.TrainState.create(params, opt, xb.init_state(model, (1, 6, 6),
                                                                backend=backend), seed=1)
    step = xb.make_train_step(model, xb.SoftmaxCrossEntropy(), opt, backend=backend)
    batch = (backend.asarray(np.ones((2, 1, 6, 6), np.float32)),
             backend.asarray(np.array([0, 2], np.int32)))
    state, loss = step(state, batch)
    return tree_leaves((state.params, state.opt_state, state.model_state, state.key, loss))


def test_layers_make_their_arrays_on_the_backends_device():
    leaves = _meta_step(on_device("meta"))
    assert leaves and {leaf.device.type for leaf in leaves if torch.is_tensor(leaf)} == {"meta"}


def test_the_placement_test_fails_where_arrays_are_made_on_the_cpu(monkeypatch):
    """Without the device scope, the first array a layer makes lands on the CPU and PyTorch
    refuses to mix it with the device's arrays: what the test above would catch."""
    backend = on_device("meta")
    monkeypatch.setattr(backend, "device_scope", contextlib.nullcontext)
    with pytest.raises(RuntimeError, match="device"):
        _meta_step(backend)


# -- training ------------------------------------------------------------------------------

def test_a_short_training_run_learns_and_matches_numpy(cpu, cnn_run_against_numpy):
    ours, theirs = cnn_run_against_numpy(cpu)
    # the first convolution's bias feeds batch norm, which subtracts it again: its gradient
    # is rounding noise (~1e-9) that Adam scales up to full steps, different noise from a
    # different summation order. Everything else follows NumPy.
    ours[0].pop("b"), theirs[0].pop("b")
    for a, b in zip(tree_leaves(ours), tree_leaves(theirs)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def _test_scores(out: str) -> tuple[float, float]:
    loss, _, accuracy = out.split("test  loss")[1].split()[:3]
    return float(loss), float(accuracy)


def test_train_digits_with_the_environment_variable(monkeypatch, capsys, clean_backend_choice):
    monkeypatch.setenv(xb.backends.ENV_VAR, "torch:cpu")
    assert main(["train", "digits", "--epochs", "2", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "backend torch (cpu), float32" in out
    loss, accuracy = _test_scores(out)
    assert accuracy >= 0.85, out
    # the same run on NumPy: the same numbers, to float32 rounding
    monkeypatch.setenv(xb.backends.ENV_VAR, "numpy")
    assert main(["train", "digits", "--epochs", "2", "--quiet"]) == 0
    numpy_loss, numpy_accuracy = _test_scores(capsys.readouterr().out)
    assert accuracy == numpy_accuracy and loss == pytest.approx(numpy_loss, abs=2e-4)
