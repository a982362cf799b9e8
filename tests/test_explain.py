"""`xb.explain`: the record of one training step comes from the layers' own passes, its
gradients agree with JAX autodiff of the forward pass, its update is the optimizer's, and
it prints as tables with the names a tutorial uses."""

from __future__ import annotations

import dataclasses
import functools

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim

MLP = xb.Sequential([xb.Dense(4), xb.Tanh(), xb.Dense(3), xb.Sigmoid(), xb.Dense(2)])
CNN = xb.Sequential([xb.Conv2D(2, 3, padding=1), xb.ReLU(), xb.MaxPool2D(2), xb.Flatten(),
                     xb.Dense(3)])
CASES = {  # model, input shape, targets, loss
    "mlp-mse": (MLP, (5,), lambda r: r.normal(size=(3, 2)), xb.MSE("sum", scale=0.5)),
    "cnn-softmax": (CNN, (1, 4, 4), lambda r: np.array([0, 2, 1]), xb.SoftmaxCrossEntropy()),
}


def make_case(name, backend, dtype="float32"):
    model, shape, target, loss = CASES[name]
    rng = np.random.default_rng(7)
    params = xb.init_params(model, 1, shape, dtype=dtype, backend=backend)
    return model, params, rng.normal(size=(3, *shape)), target(rng), loss


@functools.cache
def jax_oracle(name):
    """∂L/∂params, ∂L/∂x and L of case `name` by jax.grad of the forward pass (not the
    hand-written backward), in float64."""
    import jax

    model, params, x, y, loss = make_case(name, "numpy")
    with jax.enable_x64(True):
        p = xb.tree_to_backend(params, "jax", dtype="float64")
        xj = xb.asarray(x, backend="jax", dtype="float64")
        yj = xb.asarray(y, backend="jax")

        def total(p, xj):
            return loss(model(p, xj, xb.Context(train=True)), yj)

        gp, gx = jax.jit(jax.grad(total, argnums=(0, 1)))(p, xj)
        return xb.to_numpy(gp), np.asarray(gx), float(total(p, xj))


@pytest.mark.parametrize("name", CASES)
def test_gradients_agree_with_jax_autodiff(backend, jax_backend, name):
    model, params, x, y, loss = make_case(name, backend)
    record = xb.explain(model, params, x, y, loss)
    grads, dx, value = jax_oracle(name)
    assert record.loss == pytest.approx(value, rel=1e-5)
    for mine, theirs in zip(record.grads, grads):
        assert set(mine) == set(theirs)
        for k in mine:
            np.testing.assert_allclose(mine[k], theirs[k], rtol=2e-4, atol=2e-5)
    np.testing.assert_allclose(record.layers[0].dx, dx, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("name", CASES)
def test_the_record_chains_the_layers_passes(backend, name):
    """Each layer's input is the previous layer's output, each layer's upstream gradient is
    what the next one sent down, and the ends are the model's output and the loss's
    gradient."""
    model, params, x, y, loss = make_case(name, backend)
    record = xb.explain(model, params, x, y, loss)
    assert len(record.layers) == len(model)
    for before, after in zip(record.layers, record.layers[1:]):
        np.testing.assert_array_equal(after.x, before.y)
        np.testing.assert_array_equal(before.dy, after.dx)
    np.testing.assert_allclose(record.output, xb.to_numpy(model(params, backend.asarray(
        x, dtype="float32"))), rtol=1e-6)
    np.testing.assert_array_equal(record.layers[-1].dy, record.dloss)
    np.testing.assert_allclose(record.input, x.astype(np.float32))
    assert record.backend == backend.name and record.dtype == "float32"


def test_a_dense_layers_gradients_are_its_cached_input_times_the_delta():
    """dL/dW = xᵀ δ and dL/db = Σ δ, with δ the Dense layer's upstream gradient."""
    model, params, x, y, loss = make_case("mlp-mse", "numpy", "float64")
    record = xb.explain(model, params, x, y, loss)
    for step in record.layers[::2]:
        np.testing.assert_allclose(step.grads["W"], step.x.T @ step.dy, rtol=1e-12)
        np.testing.assert_allclose(step.grads["b"], step.dy.sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("make", [lambda: optim.sgd(0.3), lambda: optim.adam(0.01),
                                  lambda: optim.freeze(optim.momentum(0.1), ["*.b"])])
def test_the_update_is_the_train_steps(backend, make):
    model, params, x, y, loss = make_case("mlp-mse", backend)
    before = xb.to_numpy(params)
    record = xb.explain(model, params, x, y, loss, make())
    opt = make()
    step = xb.make_train_step(model, loss, opt, backend=backend, jit=False)
    state, value = step(xb.TrainState.create(params, opt),
                        (backend.asarray(x, dtype="float32"), backend.asarray(y, dtype="float32")))
    assert record.loss == pytest.approx(float(value), rel=1e-6)
    for mine, theirs in zip(record.new_params, xb.to_numpy(state.params)):
        for k in mine:
            np.testing.assert_allclose(mine[k], theirs[k], rtol=1e-6, atol=1e-7)
    for step_record, old in zip(record.layers, before):
        for k in old:
            np.testing.assert_array_equal(step_record.params[k], old[k])  # params untouched
            np.testing.assert_allclose(step_record.updates[k],
                                       step_record.new_params[k] - old[k])
    np.testing.assert_array_equal(xb.to_numpy(params)[0]["W"], before[0]["W"])


def test_a_second_step_continues_from_the_optimizer_state(backend):
    """The record holds host copies, the optimizer state too; a second step takes them back
    and does what two train steps do."""
    model, params, x, y, loss = make_case("mlp-mse", backend)
    opt = optim.adam(0.05)
    first = xb.explain(model, params, x, y, loss, opt)
    assert all(isinstance(leaf, (np.ndarray, int)) for leaf in
               xb.tree.tree_leaves(first.opt_state))
    second = xb.explain(model, xb.tree_to_backend(first.new_params, backend), x, y, loss, opt,
                        opt_state=first.opt_state)
    assert int(second.opt_state.count) == 2
    assert second.loss < first.loss
    step = xb.make_train_step(model, loss, opt, backend=backend, jit=False)
    state = xb.TrainState.create(params, opt)
    batch = (backend.asarray(x, dtype="float32"), backend.asarray(y, dtype="float32"))
    for _ in range(2):
        state, _ = step(state, batch)
    for mine, theirs in zip(second.new_params, xb.to_numpy(state.params)):
        for k in mine:
            np.testing.assert_allclose(mine[k], theirs[k], rtol=1e-5, atol=1e-6)


def test_stochastic_and_stateful_layers_run_as_in_the_model(backend):
    """Dropout draws the same mask, BatchNorm uses batch statistics, as model.forward does."""
    model = xb.Sequential([xb.Dense(6), xb.BatchNorm(), xb.ReLU(), xb.Dropout(0.5),
                           xb.Dense(2)])
    params = xb.init_params(model, 0, (3,), backend=backend)
    x = np.random.default_rng(0).normal(size=(8, 3))
    record = xb.explain(model, params, x, np.zeros((8, 2)), "mse", seed=5)
    state = xb.init_state(model, (3,), backend=backend)
    ctx = xb.Context(train=True, key=xb.random.make_key(5, backend), state=state)
    expected = xb.to_numpy(model.forward(params, backend.asarray(x, dtype="float32"), ctx)[0])
    np.testing.assert_allclose(record.output, expected, rtol=1e-6)
    assert (record.layers[3].y == 0).any()   # dropout dropped something
    evaluated = xb.explain(model, params, x, np.zeros((8, 2)), "mse", train=False)
    np.testing.assert_array_equal(evaluated.layers[3].y, evaluated.layers[3].x)


def test_a_single_layer_is_a_model_of_one():
    layer = xb.Dense(2)
    params = xb.init_params(layer, 0, (3,))
    record = xb.explain(layer, params, np.ones((1, 3)), np.zeros((1, 2)), "mse",
                        optim.sgd(0.1))
    assert len(record.layers) == 1 and set(record.grads[0]) == {"W", "b"}


NAMES = {"input": ["i1", "i2"], "0": ["net_h1", "net_h2"], "1": ["h1", "h2"],
         "0.W": [["w1", "w3"], ["w2", "w4"]], "0.b": ["b1", "b1"], "loss": "E"}


def test_printed_tables_use_the_tutorials_names():
    model = xb.Sequential([xb.Dense(2), xb.Sigmoid()])
    params = [{"W": np.array([[0.15, 0.25], [0.2, 0.3]]), "b": np.array([0.35, 0.35])}, {}]
    record = xb.explain(model, params, [[0.05, 0.1]], [[0.01, 0.99]],
                        xb.MSE("sum", scale=0.5), optim.sgd(0.5), names=NAMES)
    text = record.format(precision=9)
    lines = text.splitlines()
    assert "E = " in lines[0] and "∂E/∂unit" in text and "∂E/∂param" in text
    row = next(line.split() for line in lines if "w1" in line.split())
    row = row[row.index("w1"):]
    grad = record.grads[0]["W"][0, 0]
    assert row == ["w1", "0.15", f"{grad:.9g}", f"{-0.5 * grad:.9g}", f"{0.15 - 0.5 * grad:.9g}"]
    h1 = next(line.split() for line in lines if "h1" in line.split()[:3] and "Sigmoid" in line)
    assert h1[-2] == f"{record.output[0, 0]:.9g}"
    assert record.label("0.W", (1, 0)) == "w2" and record.label("1", (1,)) == "h2"
    assert str(record) == record.format()


def test_default_names_samples_and_truncation():
    model, params, x, y, loss = make_case("cnn-softmax", "numpy")
    text = str(xb.explain(model, params, x, y, loss))
    assert "value [0]" in text and "value [2]" in text        # 3 samples: all shown
    assert "… 24 more" in text                                  # a 2x4x4 output, 8 rows shown
    assert "W[0, 0, 0, 0]" in text and "target" in text
    one = xb.explain(model, params, x, y, loss).format(samples=[1], max_rows=3)
    assert "value [0]" not in one and "… 13 more" in one


def test_bad_parameters_and_names():
    model, params, x, y, loss = make_case("mlp-mse", "numpy")
    with pytest.raises(ValueError, match="Sequential of 5 layers got parameters for 2"):
        xb.explain(model, params[:2], x, y, loss)
    record = xb.explain(model, params, x, y, loss, names={"0.W": [["a"]]})
    with pytest.raises(ValueError, match="names\\['0.W'\\] has shape \\(1, 1\\)"):
        str(record)


def test_compiled_and_op_by_op_steps_agree(jax_backend):
    model, params, x, y, loss = make_case("cnn-softmax", jax_backend)
    compiled = xb.explain(model, params, x, y, loss, optim.adam(0.01))
    eager = xb.explain(model, params, x, y, loss, optim.adam(0.01), jit=False)
    for a, b in zip(compiled.layers, eager.layers):
        np.testing.assert_allclose(a.y, b.y, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a.dx, b.dx, rtol=1e-5, atol=1e-6)
        for k in a.grads:
            np.testing.assert_allclose(a.new_params[k], b.new_params[k], rtol=1e-5, atol=1e-6)


def test_chain_rule_table_splits_every_weight():
    model = xb.Sequential([xb.Dense(3), xb.Tanh(), xb.Dense(2), xb.Sigmoid()])
    params = xb.init_params(model, 3, (2,), dtype="float64")
    record = xb.explain(model, params, [[0.3, -0.4]], [[0.0, 1.0]], "mse")
    rows = [line.split() for line in record.chain_rule(precision=12).splitlines()[2:]]
    assert len(rows) == 2 * 3 + 3 * 2           # one row per weight of both Dense layers
    for row in rows:
        upstream, local, delta, into, product, whole = map(float, row[-6:])
        assert upstream * local == pytest.approx(delta, rel=1e-9)
        assert delta * into == pytest.approx(product, rel=1e-9)
        assert product == pytest.approx(whole, rel=1e-9, abs=1e-15)


def test_chain_rule_needs_dense_then_an_elementwise_activation():
    for layers, match in [([xb.Dense(2), xb.Softmax()], "not an elementwise activation"),
                          ([xb.Sigmoid()], "no Dense layer")]:
        model = xb.Sequential(layers)
        record = xb.explain(model, xb.init_params(model, 0, (2,)), [[0.1, 0.2]],
                            [[1.0, 0.0]], "mse")
        with pytest.raises(ValueError, match=match):
            record.chain_rule()


@dataclasses.dataclass(frozen=True)
class Cube(xb.Layer):
    """y = x³, unit by unit: a new activation that says so itself (`elementwise`)."""

    elementwise = True

    def forward(self, params, x, ctx=xb.EVAL):
        return x * x * x, x

    def backward(self, params, x, dy):
        return 3 * x * x * dy, {}


def test_a_new_elementwise_activation_is_known_by_its_class_not_by_a_list():
    model = xb.Sequential([xb.Dense(2), Cube()])
    record = xb.explain(model, xb.init_params(model, 0, (2,)), [[0.1, 0.2]], [[1.0, 0.0]],
                        "mse")
    table = str(record.chain_rule())
    assert "w" in table or "0.W" in table
    assert [type(layer).elementwise for layer in (xb.Sigmoid(), xb.Tanh(), xb.ReLU(),
                                                  xb.LeakyReLU(), xb.Identity())] == [True] * 5
    assert not xb.Softmax.elementwise and not xb.Dense.elementwise


@pytest.mark.parametrize("name", ["numpy", "torch", "array_api_strict"])
def test_float64_targets_given_as_a_list_stay_float64(name):
    """Mazur's 2-2-2 step with its targets as a Python list, as the lesson writes them:
    PyTorch made the list float32 before the float64 conversion (0.99 became 0.99000001),
    and E came out 0.298371111 instead of 0.298371109."""
    try:
        backend = xb.get_backend(name)
    except xb.BackendUnavailableError as e:
        pytest.skip(f"backend {name}: {e}")
    model = xb.Sequential([xb.Dense(2), xb.Sigmoid(), xb.Dense(2), xb.Sigmoid()])
    params = [{"W": np.array([[0.15, 0.25], [0.20, 0.30]]), "b": np.array([0.35, 0.35])}, {},
              {"W": np.array([[0.40, 0.50], [0.45, 0.55]]), "b": np.array([0.60, 0.60])}, {}]
    record = xb.explain(model, xb.tree_to_backend(params, backend, dtype="float64"),
                        [[0.05, 0.10]], [[0.01, 0.99]], xb.MSE("sum", scale=0.5))
    assert record.target.dtype == np.float64 and record.target[0, 1] == 0.99
    assert f"{record.loss:.9f}" == "0.298371109"
    np.testing.assert_allclose(record.loss, 0.29837110876000257, rtol=1e-14)
