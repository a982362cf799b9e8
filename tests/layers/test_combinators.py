"""Residual and Parallel: gradients proven against JAX with ReLU branches under every
combinator (Thinc's in-place `add` bug would show here), nested parameter names wherever
names appear, and clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.model import layer_name


def relu_models():
    """Every combinator with ReLU branches whose cached outputs a merge could overwrite."""
    return {
        "residual": xb.Sequential([xb.Dense(4), xb.Residual(xb.ReLU())]),
        "residual-block": xb.Residual(xb.Sequential([xb.Dense(4), xb.ReLU(), xb.Dense(4)])),
        "add": xb.Parallel([xb.ReLU(), xb.Sequential([xb.Dense(4), xb.ReLU()]), xb.Identity()],
                           merge="add"),
        "concat": xb.Parallel([xb.ReLU(), xb.Sequential([xb.Dense(3), xb.ReLU()])]),
        "sequential": xb.Sequential([xb.ReLU(), xb.Dense(4), xb.ReLU()]),
        "nested": xb.Sequential([xb.Dense(4), xb.Residual(xb.Parallel(
            [xb.ReLU(), xb.Sequential([xb.Dense(4), xb.ReLU()])], merge="add")), xb.Dense(2)]),
    }


@pytest.mark.parametrize("name", list(relu_models()))
def test_relu_branches_under_every_combinator_match_jax(name, backend, jax_backend):
    report = xb.check_layer(relu_models()[name], (3, 4), backend=backend, oracle="jax",
                            jit=False)
    assert report.ok, report
    assert report.rows[0].tensor == "x" and report.rows[0].max_abs < 1e-12


@dataclasses.dataclass(frozen=True)
class InPlaceAdd(xb.Parallel):
    """Thinc's `add`: the other branches added into the first branch's output in place."""

    def forward(self, params, x, ctx=xb.EVAL):
        outs, caches = [], []
        for layer, p in zip(self.layers, params):
            y, cache = layer.forward(p, x, ctx)
            outs.append(y)
            caches.append(cache)
        y = outs[0]
        for other in outs[1:]:
            y += other
        return y, (caches, None)


def test_the_checker_catches_thincs_in_place_add():
    """On NumPy the in-place sum overwrites the ReLU's cached output, so its mask is taken
    from the sum: the gradient the oracle computes differs. Ours does not."""
    x_shape = (5, 4)
    bad = xb.check_layer(InPlaceAdd([xb.ReLU(), xb.Dense(4)], merge="add"), x_shape,
                         backend="numpy", oracle="jax")
    assert not bad.ok and "x" in [r.tensor for r in bad.failures()]
    assert max(r.max_abs for r in bad.failures()) > 0.1
    good = xb.check_layer(xb.Parallel([xb.ReLU(), xb.Dense(4)], merge="add"), x_shape,
                          backend="numpy", oracle="jax")
    assert good.ok, good


def test_residual_is_x_plus_f_of_x_and_its_gradient_adds_both_paths():
    w = np.array([[2.0, 0.0], [0.0, -1.0]])
    model = xb.Residual(xb.Dense(2, use_bias=False))
    x = np.array([[1.0, 2.0]])
    y, cache = model.forward({"W": w}, x)
    np.testing.assert_array_equal(y, x + x @ w)
    dx, grads = model.backward({"W": w}, cache, np.ones((1, 2)))
    np.testing.assert_array_equal(dx, np.ones((1, 2)) + np.ones((1, 2)) @ w.T)
    assert set(grads) == {"W"}  # a Residual's parameters are its block's own


def test_parallel_concat_and_add_shapes():
    cat = xb.Parallel([xb.Dense(2), xb.Dense(3), xb.ReLU()])
    assert cat.output_shape((4,)) == (9,)
    along_time = xb.Parallel([xb.Identity(), xb.Identity()], axis=1)
    assert along_time.output_shape((5, 3)) == (10, 3)
    y, _ = along_time.forward([{}, {}], np.ones((2, 5, 3)))
    assert y.shape == (2, 10, 3)
    assert xb.Parallel([xb.Dense(3), xb.Dense(3)], merge="add").output_shape((4,)) == (3,)


def test_nested_names_in_reports_summary_freeze_and_layer_name():
    model = xb.Sequential([xb.Dense(4), xb.Residual(xb.Sequential([xb.Dense(4), xb.ReLU(),
                                                                   xb.Dense(4)])),
                           xb.Parallel([xb.Dense(2), xb.Dense(3)])])
    report = xb.check_model(model, (2, 3), backend="numpy", oracle="fd")
    assert [r.tensor for r in report.rows] == ["x", "0.W", "0.b", "1.0.W", "1.0.b", "1.2.W",
                                               "1.2.b", "2.0.W", "2.0.b", "2.1.W", "2.1.b"]
    summary = model.summary((3,))
    lines = summary.splitlines()
    assert any(line.split()[:2] == ["1.2", "Dense(4)"] for line in lines), summary
    assert any(line.split()[:2] == ["2.1", "Dense(3)"] for line in lines), summary
    assert lines[-1].split()[-1] == str(16 + 20 + 20 + 10 + 15)
    assert layer_name(model, "1.2.W") == "layer 1.2, Dense(4)"
    assert layer_name(model, "2.0.b") == "layer 2.0, Dense(2)"
    # freeze by nested path: the residual block's first layer keeps its weights
    params = xb.init_params(model, 0, (3,))
    opt = xb.optim.freeze(xb.optim.sgd(0.1), ["1.0.*"])
    state = opt.init(params)
    grads = xb.tree.tree_map(np.ones_like, params)
    new, _ = opt.update(params, grads, state)
    np.testing.assert_array_equal(new[1][0]["W"], params[1][0]["W"])
    assert not np.array_equal(new[1][2]["W"], params[1][2]["W"])
    with pytest.raises(ValueError, match=r"1\.0\.W"):  # the error lists the nested names
        xb.optim.freeze(xb.optim.sgd(0.1), ["9.*"]).init(params)


def test_explain_names_nested_parameters():
    model = xb.Sequential([xb.Dense(2), xb.Residual(xb.Sequential([xb.Dense(2), xb.Tanh()]))])
    params = xb.init_params(model, 0, (2,), dtype="float64")
    record = xb.explain(model, params, np.ones((1, 2)), np.zeros((1, 2)), "mse",
                        xb.optim.sgd(0.1))
    assert set(record.layers[1].grads) == {"0.W", "0.b"}
    assert "0.W[0, 0]" in str(record)


def test_config_and_checkpoint_round_trip(tmp_path):
    model = xb.Sequential([xb.Dense(4), xb.Residual(xb.Sequential([xb.LayerNorm(),
                                                                   xb.Dense(4)])),
                           xb.Parallel([xb.Dense(2), xb.ReLU()], merge="concat")])
    rebuilt = xb.config.from_config(xb.config.to_config(model))
    assert rebuilt == model and rebuilt is not model
    params = xb.init_params(model, 0, (4,))
    path = xb.save_model(tmp_path / "m.safetensors", model, params, input_shape=(4,))
    saved = xb.load_model(path)
    assert saved.model == model
    x = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(saved.model(saved.params, x), model(params, x))


def test_bad_combinations_say_what_is_wrong():
    with pytest.raises(TypeError, match=r"Residual\(Sequential"):
        xb.Residual([xb.Dense(2), xb.ReLU()])
    with pytest.raises(ValueError, match=r"x \+ f\(x\) needs f to keep the shape"):
        xb.init_params(xb.Residual(xb.Dense(3)), 0, (4,))
    with pytest.raises(ValueError, match="agree on every other axis"):
        xb.Parallel([xb.Identity(), xb.Dense(2)], axis=1).output_shape((2, 3))
    with pytest.raises(ValueError, match="different ranks"):
        xb.Parallel([xb.Identity(), xb.Flatten()]).output_shape((2, 3))
    with pytest.raises(ValueError, match="one output shape"):
        xb.Parallel([xb.Dense(2), xb.Dense(3)], merge="add").output_shape((4,))
    with pytest.raises(ValueError, match="merge is one of"):
        xb.Parallel([xb.Dense(2)], merge="mul")
    with pytest.raises(ValueError, match="batch axis"):
        xb.Parallel([xb.Dense(2)], axis=0)
    with pytest.raises(TypeError, match="branch 1 is a type"):
        xb.Parallel([xb.Dense(2), xb.ReLU])
