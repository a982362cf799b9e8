"""Optimizer rules: every update rule, and the rules with clipping, decay masks and
schedules, against optax for 50 steps on the same gradient sequence, on every backend, in
float32 (and float64); weight decay; schedules inside an optimizer under `jax.jit`; in-place
updates give the same bits."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim, schedules
from xbackprop.tree import tree_leaves, tree_map, tree_paths

optax = pytest.importorskip("optax", reason="optax is the reference (pip install optax)")

STEPS = 50
_rng = np.random.default_rng(2024)
P0 = {"dense": {"W": _rng.normal(size=(3, 4)), "b": _rng.normal(size=(4,))},
      "extra": [_rng.normal(size=(5,))]}
# gradients of varying scale, some tiny, so that eps and the bias corrections matter
GRADS = [tree_map(lambda p: _rng.normal(size=p.shape) * _rng.choice([1e-3, 0.1, 1.0, 3.0]), P0)
         for _ in range(STEPS)]



def MATRICES(path, p):
    return len(p.shape) >= 2


def optax_matrices(params):
    return tree_map(lambda p: p.ndim >= 2, params)


# name -> (xbackprop optimizer, the optax optimizer that does the same)
CASES = {
    "sgd": (lambda: optim.sgd(0.1), lambda: optax.sgd(0.1)),
    "momentum": (lambda: optim.momentum(0.05, 0.9), lambda: optax.sgd(0.05, momentum=0.9)),
    "sgd(momentum=0.8)": (lambda: optim.sgd(0.05, momentum=0.8),
                          lambda: optax.sgd(0.05, momentum=0.8)),
    "nesterov": (lambda: optim.nesterov(0.05, 0.9),
                 lambda: optax.sgd(0.05, momentum=0.9, nesterov=True)),
    "sgd+wd": (lambda: optim.sgd(0.1, weight_decay=0.01),
               lambda: optax.chain(optax.add_decayed_weights(0.01), optax.sgd(0.1))),
    "nesterov+wd": (lambda: optim.nesterov(0.05, 0.9, weight_decay=0.02),
                    lambda: optax.chain(optax.add_decayed_weights(0.02),
                                        optax.sgd(0.05, momentum=0.9, nesterov=True))),
    "adam": (lambda: optim.adam(1e-2), lambda: optax.adam(1e-2)),
    "adam(b1,b2,eps)": (lambda: optim.adam(3e-2, b1=0.8, b2=0.95, eps=1e-4),
                        lambda: optax.adam(3e-2, b1=0.8, b2=0.95, eps=1e-4)),
    "adam+L2": (lambda: optim.adam(1e-2, weight_decay=0.1),
                lambda: optax.chain(optax.add_decayed_weights(0.1), optax.adam(1e-2))),
    "adamw": (lambda: optim.adamw(1e-2, 0.9, 0.99, 1e-6, weight_decay=0.05),
              lambda: optax.adamw(1e-2, b1=0.9, b2=0.99, eps=1e-6, weight_decay=0.05)),
    "adamw-default": (lambda: optim.adamw(1e-2),
                      lambda: optax.adamw(1e-2, weight_decay=1e-4)),
    "rmsprop": (lambda: optim.rmsprop(1e-2, decay=0.9, eps=1e-8),
                lambda: optax.rmsprop(1e-2, decay=0.9, eps=1e-8, eps_in_sqrt=False)),
    "rmsprop+momentum": (lambda: optim.rmsprop(1e-2, decay=0.95, eps=1e-6, momentum=0.9),
                         lambda: optax.rmsprop(1e-2, decay=0.95, eps=1e-6, eps_in_sqrt=False,
                                               momentum=0.9)),
    "rmsprop+wd": (lambda: optim.rmsprop(1e-2, weight_decay=0.01),
                   lambda: optax.chain(optax.add_decayed_weights(0.01),
                                       optax.rmsprop(1e-2, decay=0.9, eps=1e-8,
                                                     eps_in_sqrt=False))),
    "adagrad": (lambda: optim.adagrad(0.1, initial_accumulator=0.1, eps=1e-7),
                lambda: optax.adagrad(0.1, initial_accumulator_value=0.1, eps=1e-7)),
    "adagrad(acc=0.5)": (lambda: optim.adagrad(0.05, initial_accumulator=0.5, eps=1e-6),
                         lambda: optax.adagrad(0.05, initial_accumulator_value=0.5, eps=1e-6)),
    "adam+cosine": (lambda: optim.adam(schedules.cosine_decay(2e-2, 30, alpha=0.1)),
                    lambda: optax.adam(optax.cosine_decay_schedule(2e-2, 30, alpha=0.1))),
    "sgd+step": (lambda: optim.sgd(schedules.step_decay(0.1, 10, 0.5)),
                 lambda: optax.sgd(optax.exponential_decay(0.1, 10, 0.5, staircase=True))),
    "momentum+cosine": (lambda: optim.momentum(schedules.cosine_decay(0.05, 40), 0.9),
                        lambda: optax.sgd(optax.cosine_decay_schedule(0.05, 40), momentum=0.9)),
    "adamw+warmup_cosine": (lambda: optim.adamw(schedules.warmup_cosine(2e-2, 10, 40, 1e-3),
                                                weight_decay=0.1),
                            lambda: optax.adamw(optax.warmup_cosine_decay_schedule(
                                0.0, 2e-2, 10, 40, 1e-3), weight_decay=0.1)),
    # weight decay on the parameters a mask selects: matrices, not biases (nanoGPT's rule)
    "adamw+mask": (lambda: optim.adamw(1e-2, weight_decay=0.5, decay_mask=MATRICES),
                   lambda: optax.adamw(1e-2, weight_decay=0.5, mask=optax_matrices)),
    "sgd+wd+mask": (lambda: optim.sgd(0.1, weight_decay=0.3, decay_mask=MATRICES),
                    lambda: optax.chain(optax.add_decayed_weights(0.3, mask=optax_matrices),
                                        optax.sgd(0.1))),
    # gradient clipping, composed with a rule (the gradients' global norm runs from ~0.005
    # to ~14, so both sides of the bound are taken)
    "adam+clip_norm": (lambda: optim.clip_by_global_norm(optim.adam(1e-2), 1.0),
                       lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adam(1e-2))),
    "momentum+clip_value": (lambda: optim.clip_by_value(optim.momentum(0.05, 0.9), 0.5),
                            lambda: optax.chain(optax.clip(0.5),
                                                optax.sgd(0.05, momentum=0.9))),
    # nanoGPT's recipe: clip 1.0, AdamW (0.9, 0.99), decay 0.1 on matrices, warm-up + cosine
    "nanogpt": (lambda: optim.clip_by_global_norm(
        optim.adamw(schedules.warmup_cosine(1e-2, 5, 40, 1e-3), b2=0.99, weight_decay=0.1,
                    decay_mask=MATRICES), 1.0),
                lambda: optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(
                    optax.warmup_cosine_decay_schedule(0.0, 1e-2, 5, 40, 1e-3), b2=0.99,
                    weight_decay=0.1, mask=optax_matrices))),
}

# optax.exponential_decay and its linear warm-up return a float32 rate even in 64-bit mode,
# so their float64 references are only as exact as float32's
F64_TOL = {name: {"rtol": 1e-7, "atol": 1e-8}
           for name in ("sgd+step", "adamw+warmup_cosine", "nanogpt")}

_reference_cache: dict[str, list] = {}


def optax_trajectory(name: str) -> list:
    """The parameters after every step, by optax in float64 (as NumPy trees)."""
    if name not in _reference_cache:
        import jax

        with jax.enable_x64(True):
            tx = CASES[name][1]()

            @jax.jit
            def step(params, state, grads):
                updates, state = tx.update(grads, state, params)
                return optax.apply_updates(params, updates), state

            params = tree_map(lambda p: jax.numpy.asarray(p, dtype=np.float64), P0)
            state = tx.init(params)
            out = []
            for g in GRADS:
                params, state = step(params, state, g)
                out.append(tree_map(np.asarray, params))
        _reference_cache[name] = out
    return _reference_cache[name]


_grads_cache: dict = {}


def grads_on(backend, dtype) -> list:
    key = (xb.get_backend(backend).name, dtype)
    if key not in _grads_cache:
        _grads_cache[key] = [xb.tree_to_backend(g, backend, dtype=dtype) for g in GRADS]
    return _grads_cache[key]


def xb_trajectory(opt, backend, dtype, inplace=False):
    params = xb.tree_to_backend(P0, backend, dtype=dtype)
    state = opt.init(params)
    out = []
    for g in grads_on(backend, dtype):
        params, state = opt.update(params, g, state, inplace=inplace)
        out.append(tree_map(lambda a: np.array(xb.to_numpy(a)), params))  # a copy
    return out, params, state


def assert_trajectories_close(ours, theirs, rtol, atol):
    assert len(ours) == len(theirs) == STEPS
    for step, (a, b) in enumerate(zip(ours, theirs)):
        for (path, x), y in zip(tree_paths(a), tree_leaves(b)):
            np.testing.assert_allclose(x, y, rtol=rtol, atol=atol,
                                       err_msg=f"step {step + 1}, parameter {path}")


@pytest.mark.parametrize("name", list(CASES))
def test_matches_optax_float32(backend, jax_backend, name):
    ours, params, state = xb_trajectory(CASES[name][0](), backend, "float32")
    assert_trajectories_close(ours, optax_trajectory(name), rtol=2e-6, atol=2e-6)
    # float32 in, float32 out: no float64 creeps into parameters or slots
    for leaf in tree_leaves(params) + tree_leaves(state.slots):
        assert backend.is_array(leaf) and backend.numpy_dtype(leaf.dtype) == np.float32
    assert int(state.count) == STEPS


@pytest.mark.parametrize("name", list(CASES))
def test_matches_optax_float64_numpy(jax_backend, name):
    ours, params, _ = xb_trajectory(CASES[name][0](), "numpy", "float64")
    assert_trajectories_close(ours, optax_trajectory(name),
                              **F64_TOL.get(name, {"rtol": 1e-10, "atol": 1e-12}))
    assert all(p.dtype == np.float64 for p in tree_leaves(params))


@pytest.mark.parametrize("name", ["sgd", "nesterov+wd", "adamw", "rmsprop+momentum",
                                  "adagrad", "adam+cosine", "sgd+step", "nanogpt"])
def test_matches_optax_float64_jax(jax_backend, x64, name):
    ours, params, _ = xb_trajectory(CASES[name][0](), "jax", "float64")
    assert_trajectories_close(ours, optax_trajectory(name),
                              **F64_TOL.get(name, {"rtol": 1e-10, "atol": 1e-12}))
    assert all(p.dtype == np.float64 for p in tree_leaves(params))


@pytest.mark.parametrize("name", ["momentum", "nesterov+wd", "adam+L2", "adamw", "rmsprop",
                                  "rmsprop+momentum", "adagrad", "adam+cosine", "adamw+mask",
                                  "momentum+clip_value", "nanogpt"])
def test_in_place_updates_give_the_same_bits(backend, name):
    """inplace=True (what a train step with donated state does on NumPy and CuPy) writes into
    the given buffers and gives exactly the numbers of the pure update, fused CuPy kernels
    included (JAX ignores it)."""
    make = CASES[name][0]
    pure, _, _ = xb_trajectory(make(), backend, "float32")
    inplace, _, _ = xb_trajectory(make(), backend, "float32", inplace=True)
    for a, b in zip(pure, inplace):
        for x, y in zip(tree_leaves(a), tree_leaves(b)):
            np.testing.assert_array_equal(x, y)
    if not backend.inplace_updates:
        return
    opt = make()
    params = xb.tree_to_backend(P0, backend, dtype="float32")
    state = opt.init(params)
    new, new_state = opt.update(params, xb.tree_to_backend(GRADS[0], backend, dtype="float32"),
                                state, inplace=True)
    assert new["dense"]["W"] is params["dense"]["W"]  # really in place
    for slot in new_state.slots:
        assert new_state.slots[slot]["dense"]["W"] is state.slots[slot]["dense"]["W"]


def test_pure_update_leaves_its_inputs_alone(backend):
    opt = optim.adam(0.1)
    params = xb.tree_to_backend(P0, backend, dtype="float32")
    before = xb.to_numpy(params)
    state = opt.init(params)
    opt.update(params, xb.tree_to_backend(GRADS[0], backend, dtype="float32"), state)
    for a, b in zip(tree_leaves(xb.to_numpy(params)), tree_leaves(before)):
        np.testing.assert_array_equal(a, b)
    for leaf in tree_leaves(state.slots):
        np.testing.assert_array_equal(xb.to_numpy(leaf), 0.0)


def test_jitted_update_with_schedule_matches_optax(jax_backend):
    """A schedule evaluated on the traced step count inside `jax.jit`."""
    import jax

    for name in ["adam+cosine", "sgd+step", "momentum+cosine", "nanogpt"]:
        opt = CASES[name][0]()
        update = jax.jit(opt.update)
        params = xb.tree_to_backend(P0, "jax", dtype="float32")
        state = opt.init(params)
        ours = []
        for g in GRADS:
            params, state = update(params, xb.tree_to_backend(g, "jax", dtype="float32"), state)
            ours.append(xb.to_numpy(params))
        assert_trajectories_close(ours, optax_trajectory(name), rtol=2e-6, atol=2e-6)
        assert state.count.dtype == np.int32 and int(state.count) == STEPS


def test_state_layout():
    params = {"W": np.ones((2, 2), np.float32)}
    assert optim.sgd(0.1).init(params).slots == {}
    assert set(optim.momentum(0.1).init(params).slots) == {"trace"}
    assert set(optim.adam().init(params).slots) == {"mu", "nu"}
    assert set(optim.rmsprop().init(params).slots) == {"nu"}
    assert set(optim.rmsprop(momentum=0.5).init(params).slots) == {"nu", "trace"}
    acc = optim.adagrad(initial_accumulator=0.25).init(params).slots["sum"]["W"]
    np.testing.assert_array_equal(acc, np.full((2, 2), 0.25, np.float32))
    assert acc.dtype == np.float32
    assert optim.adam().init(params).count == 0


def test_jax_state_count_is_an_int32_array(jax_backend):
    state = optim.adam().init(xb.tree_to_backend({"W": np.ones(2)}, "jax"))
    assert jax_backend.is_array(state.count) and state.count.dtype == np.int32


def test_adam_first_step_is_lr_times_sign():
    """With bias correction, Adam's first step is lr · g / (|g| + eps) ≈ lr · sign(g)."""
    opt = optim.adam(0.1)
    p = np.zeros(3, np.float64)
    g = np.array([2.0, -0.5, 1e-3])
    new, _ = opt.update({"p": p}, {"p": g}, opt.init({"p": p}))
    np.testing.assert_allclose(new["p"], -0.1 * np.sign(g), rtol=1e-5)


def test_decoupled_weight_decay_shrinks_parameters_with_zero_gradient():
    p = {"w": np.array([1.0, -2.0])}
    zero = {"w": np.zeros(2)}
    new, _ = optim.adamw(0.1, weight_decay=0.5).update(p, zero, optim.adamw().init(p))
    np.testing.assert_allclose(new["w"], p["w"] * (1 - 0.1 * 0.5))
    new, _ = optim.sgd(0.1, weight_decay=0.5).update(p, zero, optim.sgd().init(p))
    np.testing.assert_allclose(new["w"], p["w"] * (1 - 0.1 * 0.5))


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
def test_python_floats_as_parameters_update_as_float64_arrays_do(name):
    """A toy function's parameters may be plain Python floats (x, y of a 2-d landscape): every
    optimizer moves them exactly as it moves 0-d float64 arrays (which the optax comparison
    above proves right)."""
    opt = optim.OPTIMIZERS[name](0.1)
    floats, arrays = {"x": 1.5, "y": -0.5}, {"x": np.float64(1.5), "y": np.float64(-0.5)}
    floats_state, arrays_state = opt.init(floats), opt.init(arrays)
    for g in ([0.3, -2.0], [1.0, 0.25], [-0.5, 0.5]):
        floats, floats_state = opt.update(floats, dict(zip("xy", g)), floats_state)
        arrays, arrays_state = opt.update(arrays, {k: np.float64(v) for k, v in zip("xy", g)},
                                          arrays_state)
    assert floats == arrays and floats != {"x": 1.5, "y": -0.5}


def test_optimizers_by_name_take_the_learning_rate_that_suits_them():
    for name, factory in optim.OPTIMIZERS.items():
        by_name, default = optim.get_optimizer(name), factory(optim.DEFAULT_LR[name])
        params = {"w": np.array([1.0, -2.0])}
        grads = {"w": np.array([0.5, 0.5])}
        got = by_name.update(params, grads, by_name.init(params))[0]["w"]
        want = default.update(params, grads, default.init(params))[0]["w"]
        np.testing.assert_array_equal(got, want, err_msg=name)
    assert optim.get_optimizer(" Adam ", 0.5).update(
        {"w": np.ones(1)}, {"w": np.ones(1)}, optim.adam().init({"w": np.ones(1)}))[0]["w"] < 0.6


# -- errors -------------------------------------------------------------------------------

def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="momentum"):
        optim.sgd(0.1, nesterov=True)


@pytest.mark.parametrize("lr", [-0.1, float("nan"), float("inf"), "0.1"])
def test_bad_learning_rates(lr):
    with pytest.raises(ValueError, match="learning rate"):
        optim.adam(lr)


@pytest.mark.parametrize("grads", [
    {"W": np.ones(2)},                           # a parameter missing
    {"W": np.ones(2), "c": np.ones(1)},          # a wrong name
    {"W": np.ones(2), "b": np.ones(1), "c": np.ones(1)},
], ids=["missing", "renamed", "extra"])
def test_gradients_must_have_the_structure_of_the_parameters(grads):
    for opt in [optim.sgd(0.1), optim.adam()]:
        params = {"W": np.ones(2), "b": np.ones(1)}
        with pytest.raises(ValueError, match="structure of the parameters"):
            opt.update(params, grads, opt.init(params))


def test_gradients_of_a_model_with_a_layer_missing():
    params = [{"W": np.ones(2)}, {}, {"W": np.ones(2)}]
    opt = optim.momentum(0.1)
    with pytest.raises(ValueError, match="structure of the parameters"):
        opt.update(params, [{"W": np.ones(2)}, {}], opt.init(params))


def test_get_optimizer_by_name():
    assert set(optim.OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adam", "adamw",
                                     "rmsprop", "adagrad"}
    opt = optim.get_optimizer("momentum", 0.1)
    p = {"w": np.zeros(1)}
    new, state = opt.update(p, {"w": np.ones(1)}, opt.init(p))
    np.testing.assert_allclose(new["w"], [-0.1])
    assert "trace" in state.slots
    with pytest.raises(ValueError, match=r"unknown optimizer 'lbfgs'.*adam"):
        optim.get_optimizer("lbfgs", 0.1)


def test_no_parameters_is_fine():
    opt = optim.adam()
    new, state = opt.update([{}, {}], [{}, {}], opt.init([{}, {}]))
    assert new == [{}, {}] and state.count == 1
