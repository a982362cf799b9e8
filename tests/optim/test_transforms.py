"""Optimizers made from optimizers: gradient clipping (by global norm, by value) bounds what
the rule sees and composes with every rule (their trajectories against optax are in
test_rules.py); freezing keeps parameters bit-identical; bad limits are clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim
from xbackprop.tree import tree_leaves, tree_map

RNG = np.random.default_rng(7)
PARAMS = {"W": RNG.normal(size=(3, 4)), "b": RNG.normal(size=(4,))}
BIG = {"W": RNG.normal(size=(3, 4)) * 10, "b": RNG.normal(size=(4,)) * 10}  # norm ~ 40


class Recorder:
    """An optimizer that records the gradients it is given (and changes nothing)."""

    def __init__(self):
        self.seen = []
        self.opt = optim.Optimizer(lambda p: optim.OptState(0, {}), self.update)

    def update(self, params, grads, state, *, inplace=False):
        self.seen.append(tree_map(lambda g: np.array(xb.to_numpy(g)), grads))
        return params, state


def test_global_norm_is_the_norm_of_every_gradient_together(backend):
    grads = xb.tree_to_backend(BIG, backend, dtype="float64" if backend.name != "jax"
                               else "float32")
    want = np.sqrt(sum(np.sum(g * g) for g in tree_leaves(BIG)))
    np.testing.assert_allclose(float(xb.to_numpy(optim.global_norm(grads))), want, rtol=1e-6)


@pytest.mark.parametrize("scale", [10.0, 0.01], ids=["above", "below"])
def test_clip_by_global_norm_rescales_only_above_the_bound(backend, scale):
    grads = tree_map(lambda g: g * scale / 10, BIG)  # norm ~ 40 or ~ 0.04
    norm = np.sqrt(sum(np.sum(g * g) for g in tree_leaves(grads)))
    rec = Recorder()
    opt = optim.clip_by_global_norm(rec.opt, 1.0)
    params = xb.tree_to_backend(PARAMS, backend, dtype="float32")
    opt.update(params, xb.tree_to_backend(grads, backend, dtype="float32"), opt.init(params))
    seen = rec.seen[0]
    factor = min(1.0, 1.0 / norm)
    for k in grads:
        np.testing.assert_allclose(seen[k], grads[k] * factor, rtol=1e-5, atol=1e-7)
    got = np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in tree_leaves(seen)))
    np.testing.assert_allclose(got, min(norm, 1.0), rtol=1e-5)


def test_clip_by_value_bounds_each_element(backend):
    rec = Recorder()
    opt = optim.clip_by_value(rec.opt, 5.0)
    params = xb.tree_to_backend(PARAMS, backend, dtype="float32")
    opt.update(params, xb.tree_to_backend(BIG, backend, dtype="float32"), opt.init(params))
    for k in BIG:
        np.testing.assert_allclose(rec.seen[0][k], np.clip(BIG[k], -5, 5), rtol=1e-6)
    assert max(np.abs(g).max() for g in tree_leaves(rec.seen[0])) == 5.0


@pytest.mark.parametrize("name", sorted(optim.OPTIMIZERS))
@pytest.mark.parametrize("clip", [lambda o: optim.clip_by_global_norm(o, 1.0),
                                  lambda o: optim.clip_by_value(o, 0.5)],
                         ids=["global_norm", "value"])
def test_clipping_composes_with_every_rule(name, clip):
    """A clipped rule is the rule on clipped gradients, with the rule's own state (so a
    checkpoint of one is a checkpoint of the other), in place or not."""
    rule = optim.get_optimizer(name)
    clipped = clip(rule)
    grads = BIG
    bound = Recorder()
    clip(bound.opt).update(PARAMS, grads, None)
    p1, s1 = clipped.update(tree_map(np.copy, PARAMS), grads, clipped.init(PARAMS), inplace=True)
    p2, s2 = rule.update(tree_map(np.copy, PARAMS), bound.seen[0], rule.init(PARAMS))
    for a, b in zip(tree_leaves((p1, s1)), tree_leaves((p2, s2))):
        np.testing.assert_array_equal(a, b)
    assert tree_map(np.shape, clipped.init(PARAMS)) == tree_map(np.shape, rule.init(PARAMS))


def test_clipping_inside_a_jitted_train_step_matches_numpy(jax_backend):
    model = xb.Sequential([xb.Dense(8), xb.Tanh(), xb.Dense(3)])
    x = RNG.normal(size=(16, 5)).astype("float32") * 30   # large inputs: large gradients
    y = RNG.integers(0, 3, size=16)
    opt = optim.clip_by_global_norm(optim.adamw(1e-2, weight_decay=0.1,
                                                decay_mask=lambda path, p: p.ndim >= 2), 0.1)
    finals = []
    for backend in ("numpy", "jax"):
        state = xb.TrainState.create(xb.init_params(model, 0, (5,), backend=backend), opt)
        step = xb.make_train_step(model, xb.SoftmaxCrossEntropy(), opt)
        for _ in range(5):
            state, _ = step(state, (xb.asarray(x, backend=backend), xb.asarray(y, backend=backend)))
        finals.append(xb.to_numpy(state.params))
    for a, b in zip(tree_leaves(finals[0]), tree_leaves(finals[1])):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make", [optim.clip_by_global_norm, optim.clip_by_value])
@pytest.mark.parametrize("limit", [0, -1.0, float("nan"), float("inf"), "1", True])
def test_clipping_limits_must_be_positive_numbers(make, limit):
    with pytest.raises(ValueError, match=r"the limit is a finite number > 0, not"):
        make(optim.sgd(0.1), limit)


def test_decay_mask_must_return_a_bool():
    opt = optim.adamw(0.1, weight_decay=0.1, decay_mask=lambda path, p: path)
    with pytest.raises(TypeError, match=r"decay_mask\('W', \.\.\.\) returned 'W'; it must "
                                        r"return True"):
        opt.update(PARAMS, PARAMS, opt.init(PARAMS))
    with pytest.raises(TypeError, match="decay_mask is a function"):
        optim.adamw(0.1, decay_mask="*.W")


@pytest.mark.parametrize("wd", [-0.1, float("nan"), "0.1"])
def test_weight_decay_must_be_a_number_at_least_zero(wd):
    with pytest.raises(ValueError, match="weight_decay is a number >= 0"):
        optim.adamw(0.1, weight_decay=wd)


def test_decay_mask_leaves_unselected_parameters_undecayed():
    """With a zero gradient only the decay moves parameters: the masked-out bias stays."""
    zero = tree_map(np.zeros_like, PARAMS)
    for opt in (optim.adamw(0.1, weight_decay=0.5, decay_mask=lambda path, p: p.ndim >= 2),
                optim.sgd(0.1, weight_decay=0.5, decay_mask=lambda path, p: p.ndim >= 2)):
        new, _ = opt.update(PARAMS, zero, opt.init(PARAMS))
        np.testing.assert_array_equal(new["b"], PARAMS["b"])
        np.testing.assert_allclose(new["W"], PARAMS["W"] * (1 - 0.1 * 0.5))



# -- freezing -----------------------------------------------------------------------------

def _model_params(backend):
    model = xb.Sequential([xb.Dense(3), xb.ReLU(), xb.Dense(2)])
    return xb.init_params(model, 0, (4,), backend=backend, dtype="float32")


@pytest.mark.parametrize("make", [lambda: optim.sgd(0.5), lambda: optim.momentum(0.1),
                                  lambda: optim.adam(0.1),
                                  lambda: optim.sgd(0.1, weight_decay=0.5)],
                         ids=["sgd", "momentum", "adam", "sgd+wd"])
def test_freeze_keeps_matching_params_bit_identical(backend, make):
    params = _model_params(backend)
    params[0]["b"] = backend.asarray(np.full(3, 0.35), dtype="float32")  # non-zero, so that
    params[2]["b"] = backend.asarray(np.full(2, 0.6), dtype="float32")   # decay would move it
    before = xb.to_numpy(params)
    opt = optim.freeze(make(), ["*.b"])
    state = opt.init(params)
    rng = np.random.default_rng(1)
    for _ in range(5):
        grads = xb.tree_to_backend(tree_map(lambda p: rng.normal(size=p.shape), before),
                                   backend, dtype="float32")
        params, state = opt.update(params, grads, state, inplace=True)
    after = xb.to_numpy(params)
    for i in (0, 2):
        np.testing.assert_array_equal(after[i]["b"], before[i]["b"])
        assert after[i]["b"].dtype == np.float32
        assert not np.allclose(after[i]["W"], before[i]["W"])


def test_masked_with_a_predicate(backend):
    params = _model_params(backend)
    before = xb.to_numpy(params)
    opt = optim.masked(optim.sgd(0.1), lambda path: path.startswith("2."))
    grads = tree_map(lambda p: backend.xp.ones_like(p), params)
    new, _ = opt.update(params, grads, opt.init(params))
    after = xb.to_numpy(new)
    for k in ("W", "b"):
        np.testing.assert_array_equal(after[0][k], before[0][k])
        np.testing.assert_allclose(after[2][k], before[2][k] - 0.1, rtol=1e-6)


def test_freeze_under_jit(jax_backend):
    import jax

    params = _model_params("jax")
    opt = optim.freeze(optim.adam(0.1), ["0.*"])
    grads = tree_map(lambda p: jax.numpy.ones_like(p), params)
    new, _ = jax.jit(opt.update)(params, grads, opt.init(params))
    np.testing.assert_array_equal(np.asarray(new[0]["W"]), np.asarray(params[0]["W"]))
    assert not np.allclose(np.asarray(new[2]["W"]), np.asarray(params[2]["W"]))


