"""Arrays and backends: whose array is this, moving arrays and trees between backends, dtype
rules, and the error for arrays of two backends in one call."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import NamedTuple

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import backends
from xbackprop.backends import owner_of


pytestmark = pytest.mark.usefixtures("clean_backend_choice")


class Pair(NamedTuple):
    first: object
    second: object


# -- detection ----------------------------------------------------------------------------

def test_owner_of_arrays_of_every_backend(backend):
    a = backend.asarray(np.arange(3.0), dtype="float32")
    assert owner_of(a) is backend
    assert backend.is_array(a)
    assert xb.backend_of(a) is backend
    assert xb.backend_of(1.0, a, None, 3) is backend  # non-arrays are ignored


def test_non_arrays_belong_to_nobody():
    for x in [1, 2.5, True, None, "s", [1.0, 2.0], (1,), np.float32(1.0), np.int64(3)]:
        assert owner_of(x) is None, x


def test_numpy_subclasses_are_numpy(tmp_path):
    mm = np.memmap(tmp_path / "m.bin", dtype=np.float32, mode="w+", shape=(3,))
    assert owner_of(mm).name == "numpy"
    assert owner_of(np.ma.masked_array([1.0, 2.0])).name == "numpy"


def test_backend_of_without_arrays_is_the_default_or_current(jax_backend):
    assert xb.backend_of().name == "numpy"
    assert xb.backend_of(1.0, np.float32(2)).name == "numpy"
    assert xb.backend_of(default="jax") is jax_backend
    assert xb.backend_of(np.ones(2), default="jax").name == "numpy"  # arrays decide
    with xb.use_backend("jax"):
        assert xb.backend_of(2.0) is jax_backend


def test_jax_tracers_are_jax_arrays(jax_backend):
    import jax

    seen = []

    def f(x):
        seen.append(xb.backend_of(x, 2.0))
        return x * 2

    jax.jit(f)(jax_backend.asarray(np.ones(3), dtype="float32"))
    jax.vmap(f)(jax_backend.asarray(np.ones((2, 3)), dtype="float32"))
    jax.grad(lambda x: f(x).sum())(jax_backend.asarray(np.ones(3), dtype="float32"))
    assert seen == [jax_backend] * 3


def test_mixed_numpy_and_jax_is_an_error_naming_both(jax_backend):
    a = np.ones(3, np.float32)
    b = jax_backend.asarray(np.ones(3), dtype="float32")
    with pytest.raises(xb.MixedBackendError) as info:
        xb.backend_of(a, b)
    msg = str(info.value)
    assert "argument 0 is a numpy.ndarray (numpy)" in msg
    assert "argument 1 is a jaxlib" in msg and "(jax)" in msg
    assert "xbackprop.asarray(x, backend='numpy')" in msg
    assert isinstance(info.value, TypeError)
    with pytest.raises(xb.MixedBackendError, match=r"argument 1 is a numpy.ndarray"):
        xb.backend_of(b, a)
    # ignored non-arrays in between do not hide the clash
    with pytest.raises(xb.MixedBackendError, match="argument 2"):
        xb.backend_of(a, 1.0, b)


def test_mixed_numpy_array_and_jax_tracer_is_an_error(jax_backend):
    import jax

    host = np.ones(3, np.float32)
    with pytest.raises(xb.MixedBackendError, match=r"numpy.*jax"):
        jax.jit(lambda x: xb.backend_of(host, x) and x)(jax_backend.asarray(np.ones(3)))


def test_dense_with_numpy_params_and_jax_input_is_an_error(jax_backend):
    layer = xb.Dense(2)
    params = xb.init_params(layer, 0, (3,), backend="numpy")
    x = jax_backend.asarray(np.ones((4, 3)), dtype="float32")
    with pytest.raises(xb.MixedBackendError) as info:
        layer.forward(params, x)
    msg = str(info.value)
    assert "numpy" in msg and "jax" in msg
    # and the other way round
    with pytest.raises(xb.MixedBackendError):
        layer.forward(xb.tree_to_backend(params, "jax"), np.ones((4, 3), np.float32))


def test_loss_with_arrays_of_two_backends_is_an_error(jax_backend):
    pred = np.zeros((2, 1), np.float32)
    target = jax_backend.asarray(np.zeros((2, 1)), dtype="float32")
    for loss in [xb.MSE(), xb.BinaryCrossEntropyWithLogits()]:
        with pytest.raises(xb.MixedBackendError):
            loss(pred, target)


def test_optimizer_with_params_and_grads_of_two_backends_is_an_error(jax_backend):
    """An update must not silently move the parameters to the gradients' backend."""
    opt = xb.optim.sgd(0.1)
    params = {"W": np.ones((2, 2), np.float32)}
    grads = {"W": jax_backend.asarray(np.ones((2, 2)), dtype="float32")}
    with pytest.raises(xb.MixedBackendError):
        opt.update(params, grads, opt.init(params))


def test_finding_owners_does_not_import_jax_or_cupy():
    code = textwrap.dedent("""
        import sys
        import numpy as np
        import xbackprop as xb
        from xbackprop.backends import owner_of
        assert xb.backend_of(np.ones(2), 1.0).name == "numpy"
        assert owner_of(object()) is None and owner_of(np.float32(1)) is None
        xb.to_numpy({"a": np.ones(2), "b": 3})
        for mod in ("jax", "cupy"):
            assert mod not in sys.modules, mod
        print("ok")
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=_clean_env())
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def _clean_env() -> dict:
    import os

    env = dict(os.environ)
    env.pop(backends.ENV_VAR, None)
    return env


# -- moving arrays ----------------------------------------------------------------------

def test_asarray_onto_each_backend(backend):
    host = np.arange(6, dtype=np.float64).reshape(2, 3) / 7
    a = xb.asarray(host, backend=backend, dtype="float32")
    assert backend.is_array(a) and backend.numpy_dtype(a.dtype) == np.float32 and a.shape == (2, 3)
    np.testing.assert_array_equal(xb.to_numpy(a), host.astype(np.float32))
    # from Python lists and numbers
    assert backend.is_array(xb.asarray([[1, 2]], backend=backend.name))
    assert xb.to_numpy(xb.asarray(2.5, backend=backend, dtype="float32")) == np.float32(2.5)


def test_asarray_uses_the_current_backend(jax_backend):
    with xb.use_backend("jax"):
        assert jax_backend.is_array(xb.asarray(np.ones(2), dtype="float32"))
    assert type(xb.asarray(np.ones(2))) is np.ndarray


def test_asarray_is_a_no_op_for_an_array_already_there():
    a = np.ones(3, np.float32)
    assert xb.asarray(a, backend="numpy") is a


def test_arrays_move_between_numpy_and_jax_bit_exactly(jax_backend):
    host = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    on_jax = xb.asarray(host, backend="jax")
    assert jax_backend.is_array(on_jax)
    back = xb.asarray(on_jax, backend="numpy")
    assert type(back) is np.ndarray
    np.testing.assert_array_equal(back, host)
    np.testing.assert_array_equal(xb.to_numpy(on_jax), host)


def test_asarray_rejects_dtypes_models_do_not_compute_in(backend):
    with pytest.raises(xb.DtypeError, match="float16"):
        xb.asarray(np.ones(2), backend=backend, dtype="float16")
    # integer dtypes (labels) are fine
    assert backend.numpy_dtype(xb.asarray([1, 2], backend=backend, dtype="int32").dtype) == np.int32


def test_float64_on_jax_without_x64_is_an_error(jax_backend):
    if jax_backend.x64_enabled():
        pytest.skip("JAX 64-bit mode is on globally in this process")
    with pytest.raises(xb.DtypeError, match="jax_enable_x64") as info:
        xb.asarray(np.ones(2), backend="jax", dtype="float64")
    assert isinstance(info.value, TypeError)
    with pytest.raises(xb.DtypeError, match="64-bit mode"):
        xb.tree_to_backend({"w": np.ones(2)}, "jax", dtype="float64")
    with pytest.raises(xb.DtypeError):
        xb.init_params(xb.Dense(2), 0, (3,), dtype="float64", backend="jax")


def test_float64_on_jax_inside_x64_mode(jax_backend, x64):
    host = np.array([1 / 3, 2 / 3])
    a = xb.asarray(host, backend="jax", dtype="float64")
    assert a.dtype == np.float64
    np.testing.assert_array_equal(xb.to_numpy(a), host)  # no round trip through float32
    params = xb.init_params(xb.Dense(2), 0, (3,), dtype="float64", backend="jax")
    assert params["W"].dtype == np.float64


def test_float64_on_request(backend):
    import contextlib

    scope = contextlib.nullcontext()
    if backend.name == "jax":
        import jax

        scope = jax.enable_x64(True)
    with scope:
        a = xb.asarray([1 / 3], backend=backend, dtype="float64")
        assert backend.numpy_dtype(a.dtype) == np.float64
        assert xb.to_numpy(a)[0] == 1 / 3


def test_to_numpy_on_trees(backend):
    tree = {
        "w": backend.asarray(np.ones((2, 2)), dtype="float32"),
        "list": [backend.asarray(np.arange(3), dtype="int32"), 1.5, None, "name"],
        "pair": Pair(backend.asarray(np.zeros(1), dtype="float32"), (2, np.float32(3))),
    }
    out = xb.to_numpy(tree)
    assert type(out["w"]) is np.ndarray and out["w"].dtype == np.float32
    assert type(out["list"][0]) is np.ndarray and out["list"][0].dtype == np.int32
    assert out["list"][1:] == [1.5, None, "name"]
    assert isinstance(out["pair"], Pair) and type(out["pair"].first) is np.ndarray
    assert out["pair"].second == (2, np.float32(3))
    np.testing.assert_array_equal(out["list"][0], [0, 1, 2])
    assert type(xb.to_numpy(backend.asarray([1.0]))) is np.ndarray  # a bare array


def test_tree_to_backend_casts_floats_and_keeps_the_rest(backend):
    tree = {
        "W": np.random.default_rng(1).normal(size=(3, 2)),  # float64
        "labels": np.array([0, 2, 1], dtype=np.int32),
        "flags": np.array([True, False]),
        "scale": np.float64(0.5),  # a NumPy scalar is moved (and cast)
        "lr": 0.25,  # a Python number is kept
        "name": "dense",
        "nothing": None,
        "nested": [np.ones(2, np.float32), (np.zeros(1),)],
    }
    out = xb.tree_to_backend(tree, backend, dtype="float32")
    assert backend.is_array(out["W"]) and backend.numpy_dtype(out["W"].dtype) == np.float32
    np.testing.assert_array_equal(xb.to_numpy(out["W"]), tree["W"].astype(np.float32))
    assert backend.is_array(out["labels"]) and backend.numpy_dtype(out["labels"].dtype) == np.int32
    np.testing.assert_array_equal(xb.to_numpy(out["labels"]), [0, 2, 1])
    assert backend.numpy_dtype(out["flags"].dtype) == np.bool_
    assert backend.is_array(out["scale"]) and backend.numpy_dtype(out["scale"].dtype) == np.float32
    assert out["lr"] == 0.25 and type(out["lr"]) is float
    assert out["name"] == "dense" and out["nothing"] is None
    assert backend.is_array(out["nested"][1][0]) and isinstance(out["nested"][1], tuple)
    assert backend.numpy_dtype(out["nested"][1][0].dtype) == np.float32


def test_tree_to_backend_without_dtype_keeps_float32(backend):
    out = xb.tree_to_backend([np.ones(2, np.float32)], backend.name)
    assert backend.is_array(out[0]) and backend.numpy_dtype(out[0].dtype) == np.float32


def test_tree_to_backend_between_backends(jax_backend):
    params = xb.init_params(xb.Dense(3), 4, (2,), backend="jax")
    moved = xb.tree_to_backend(params, "numpy")
    assert all(type(v) is np.ndarray for v in moved.values())
    for k in params:
        np.testing.assert_array_equal(moved[k], np.asarray(params[k]))


def test_tree_to_backend_float64_on_jax_in_x64(jax_backend, x64):
    out = xb.tree_to_backend({"w": np.ones(2, np.float32), "i": np.arange(2)}, "jax",
                             dtype="float64")
    assert out["w"].dtype == np.float64
    assert np.dtype(out["i"].dtype).kind == "i"
