"""What a backend says it can do, by name: in-place updates, compiled steps (and the step
counter they need), arrays in host memory, strided views."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim

# name -> (inplace_updates, compiles, host_arrays, strided_views); host_arrays None: True
# on the CPU only
EXPECTED = {
    "numpy": (True, False, True, True),
    "jax": (False, True, False, False),
    "cupy": (True, False, False, False),
    "array_api_strict": (True, False, True, False),
    "torch": (True, False, None, True),
}


def test_capabilities(backend):
    got = (backend.inplace_updates, backend.compiles, backend.host_arrays,
           backend.strided_views)
    inplace, compiles, host, views = EXPECTED[backend.name]
    assert got == (inplace, compiles, backend.device == "cpu" if host is None else host, views)


def test_the_step_counter_suits_compiled_steps(backend):
    count = backend.counter(3)
    if backend.compiles:  # an array, so a new value does not recompile the step
        assert backend.is_array(count) and backend.numpy_dtype(count.dtype) == np.int32
    else:
        assert type(count) is int
    assert int(count) == 3
    state = optim.adam().init({"w": backend.asarray(np.ones(2), dtype="float32")})
    assert type(state.count) is type(backend.counter(0)) and int(state.count) == 0


def test_updates_are_in_place_exactly_where_the_backend_says(backend):
    opt = optim.sgd(0.5)
    params = {"w": backend.asarray(np.ones(3), dtype="float32")}
    new, _ = opt.update(params, {"w": backend.asarray(np.ones(3), dtype="float32")},
                        opt.init(params), inplace=True)
    assert (new["w"] is params["w"]) == backend.inplace_updates
    np.testing.assert_array_equal(xb.to_numpy(new["w"]), [0.5, 0.5, 0.5])


def test_dtypes_translate_both_ways(backend):
    for name in ("float32", "float64", "int32", "uint32", "bool"):
        native = backend.xp_dtype(name)
        assert backend.numpy_dtype(native) == np.dtype(name)
        assert backend.numpy_dtype(name) == np.dtype(name)
