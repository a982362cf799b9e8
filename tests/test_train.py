"""Training: the pure train step (the same numbers jitted or not), and `fit` around it —
mini-batches, reproducible shuffling, validation, history, progress bar, callbacks,
divergence, clear errors for bad data — plus `predict` and `evaluate`."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim
from xbackprop.tree import tree_leaves, tree_map, tree_paths

def blobs(n=96, seed=0):
    """Three well-separated Gaussian blobs in 4-d: (x float32 (n, 4), y int (n,))."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 3
    centres = np.array([[2.0, 0, 0, 0], [0, 2.0, 0, 0], [0, 0, 2.0, 0]])
    x = centres[y] + 0.5 * rng.normal(size=(n, 4))
    return x.astype(np.float32), y


X, Y = blobs()
XV, YV = blobs(48, seed=1)


def model():
    return xb.Sequential([xb.Dense(8), xb.ReLU(), xb.Dense(3)])


def host(tree):
    return xb.to_numpy(tree)


def assert_trees_equal(a, b):
    for (path, x), y in zip(tree_paths(host(a)), tree_leaves(host(b))):
        np.testing.assert_array_equal(x, y, err_msg=path)


# -- fit ------------------------------------------------------------------------------------

def test_fit_learns_with_mini_batches_and_validation(backend, capsys):
    result = xb.fit(model(), X, Y, loss=xb.SoftmaxCrossEntropy(), optimizer=optim.adam(0.05),
                    epochs=6, batch_size=32, seed=0, validation_data=(XV, YV),
                    backend=backend, progress=False)
    h = result.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "time"}
    assert all(len(v) == 6 for v in h.values())
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["accuracy"][-1] >= 0.95 and h["val_accuracy"][-1] >= 0.9
    assert all(isinstance(v, float) for v in h["loss"] + h["val_accuracy"])
    assert int(result.state.step) == 6 * 3  # 96 samples, batches of 32
    assert all(backend.is_array(p) for p in tree_leaves(result.params))
    assert result.params is result.state.params
    # the history's last validation scores are those of the final parameters
    scores = xb.evaluate(model(), result.params, XV, YV, xb.SoftmaxCrossEntropy())
    assert scores["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)
    assert scores["accuracy"] == h["val_accuracy"][-1]
    assert capsys.readouterr().err == ""  # progress=False prints nothing


def spy(record):
    """An identity layer that calls `record(x)` on every training forward pass."""
    class Spy(xb.Identity):
        abstract = True

        def forward(self, params, x, ctx=xb.EVAL):
            if ctx.train:
                record(x)
            return x, None

    return Spy()


def test_last_partial_batch_is_used():
    seen = []
    xb.fit(xb.Sequential([spy(lambda x: seen.append(x.shape[0])), xb.Dense(3)]), X[:70], Y[:70], loss="cross_entropy",
           optimizer=optim.sgd(0.1), epochs=2, batch_size=32, progress=False, jit=False)
    assert seen == [32, 32, 6, 32, 32, 6]


def test_shuffling_is_reproducible_for_a_seed():
    def run(seed, shuffle=True):
        return xb.fit(model(), X, Y, loss=xb.SoftmaxCrossEntropy(), optimizer=optim.sgd(0.1),
                      epochs=3, batch_size=16, seed=seed, shuffle=shuffle, progress=False)

    a, b = run(0), run(0)
    assert_trees_equal(a.params, b.params)
    assert a.history["loss"] == b.history["loss"]
    c = run(1)
    assert not np.array_equal(host(c.params)[0]["W"], host(a.params)[0]["W"])
    # same initial parameters (seed 0), batches in order: a different result from shuffling
    d = run(0, shuffle=False)
    assert not np.array_equal(host(d.params)[0]["W"], host(a.params)[0]["W"])
    assert run(0, shuffle=False).history["loss"] == d.history["loss"]


def test_each_epoch_sees_a_new_order():
    orders = []
    net = xb.Sequential([spy(lambda x: orders.append(np.array(x[:, 0]))), xb.Dense(3)])
    xb.fit(net, X[:8], Y[:8], loss="cross_entropy",
           optimizer=optim.sgd(0.0), epochs=2, batch_size=8, progress=False, jit=False)
    first, second = orders
    assert sorted(first) == sorted(second) == sorted(X[:8, 0])
    assert not np.array_equal(first, second)


def test_fit_never_changes_the_callers_params_or_state(backend):
    params = xb.init_params(model(), 3, (4,), backend=backend)
    before = host(params)
    result = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.momentum(0.1),
                    params=params, epochs=1, backend=backend, progress=False)
    assert_trees_equal(params, before)
    assert not np.array_equal(host(result.params)[0]["W"], before[0]["W"])
    # continue from a state: the state passed in is not consumed
    state = result.state
    kept = host(state)
    more = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.momentum(0.1),
                  state=state, epochs=1, progress=False)
    assert_trees_equal(state, kept)
    assert int(more.state.step) == 2 * int(state.step)


def test_fit_starts_from_given_params():
    params = xb.init_params(model(), 5, (4,))
    a = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), params=params,
               epochs=1, seed=9, progress=False)
    b = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), epochs=1,
               seed=9, progress=False)  # init from seed 9: a different start
    assert not np.array_equal(host(a.params)[0]["W"], host(b.params)[0]["W"])
    c = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), epochs=0,
               params=params, progress=False)
    assert_trees_equal(c.params, params)
    assert dict(c.history) == {}


def test_progress_bar_on_stderr(capsys):
    xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), epochs=2,
           batch_size=32, validation_data=(XV, YV), progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2  # one final line per epoch when stderr is not a terminal
    for epoch, line in enumerate(lines, 1):
        assert line.startswith(f"epoch {epoch}/2 ")
        assert "3/3" in line and "█" * 24 in line
        for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert f" {name} " in line
        assert "it/s]" in line


def test_callbacks_get_the_logs_and_can_stop_early():
    calls = []

    def stop_after_two(epoch, logs, state):
        calls.append((epoch, dict(logs), int(state.step)))
        return epoch == 1

    result = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), epochs=10,
                    batch_size=32, callbacks=[stop_after_two], progress=False)
    assert [c[0] for c in calls] == [0, 1]
    assert [c[2] for c in calls] == [3, 6]
    assert calls[1][1]["loss"] == result.history["loss"][1]
    assert len(result.history["loss"]) == 2 and int(result.state.step) == 6


def test_all_callbacks_run_and_none_return_means_continue():
    seen = []
    result = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), epochs=3,
                    callbacks=[lambda e, logs, s: seen.append(("a", e)),
                               lambda e, logs, s: seen.append(("b", e))], progress=False)
    assert len(result.history["loss"]) == 3
    assert {e for _, e in seen} == {0, 1, 2} and ("a", 2) in seen


def test_divergence_is_an_error(backend):
    x = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32) * 10
    y = x.sum(axis=1, keepdims=True)
    with np.errstate(all="ignore"), pytest.raises(xb.TrainingDivergedError) as info:
        xb.fit(xb.Sequential([xb.Dense(1)]), x, y, loss=xb.MSE(), optimizer=optim.sgd(1e6),
               epochs=5, batch_size=8, backend=backend, progress=False)
    assert "learning rate" in str(info.value) and "epoch 1" in str(info.value)
    assert isinstance(info.value, FloatingPointError)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="x has 96 samples but y has 95"):
        xb.fit(model(), X, Y[:-1], loss="cross_entropy", optimizer=optim.sgd(0.1),
               progress=False)
    with pytest.raises(ValueError, match=r"validation data: x has 48 samples but y has 47"):
        xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1),
               validation_data=(XV, YV[:-1]), progress=False)


def test_nan_in_x_is_an_error():
    x = X.copy()
    x[5, 2] = np.nan
    with pytest.raises(ValueError, match=r"1 NaN or infinite values \(first at index \(5, 2\)\)"):
        xb.fit(model(), x, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), progress=False)
    x[5, 2] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        xb.fit(model(), x, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), progress=False)


@pytest.mark.parametrize("bad", [3, -1, 10])
def test_out_of_range_labels_are_an_error(bad):
    y = Y.copy()
    y[7] = bad
    with pytest.raises(ValueError, match=r"labels must be in \[0, 3\)"):
        xb.fit(model(), X, y, loss="cross_entropy", optimizer=optim.sgd(0.1), progress=False)


def test_bad_batch_size_or_epochs():
    for kwargs in [{"batch_size": 0}, {"epochs": -1}]:
        with pytest.raises(ValueError, match="batch_size"):
            xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1),
                   progress=False, **kwargs)


def test_empty_data_is_an_error():
    with pytest.raises(ValueError, match="no samples"):
        xb.fit(model(), X[:0], Y[:0], loss="cross_entropy", optimizer=optim.sgd(0.1),
               progress=False)


def test_fit_accepts_arrays_of_another_backend(jax_backend):
    """JAX arrays in, NumPy training: data are data, moved where the model trains."""
    x, y = xb.asarray(X, backend="jax"), xb.asarray(Y, backend="jax")
    a = xb.fit(model(), x, y, loss="cross_entropy", optimizer=optim.sgd(0.1), epochs=1,
               backend="numpy", progress=False)
    b = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.sgd(0.1), epochs=1,
               backend="numpy", progress=False)
    assert_trees_equal(a.params, b.params)


def test_regression_reports_regression_metrics_not_accuracy():
    x = X[:, :2]
    y = (x[:, :1] - 2 * x[:, 1:]).astype(np.float32)
    result = xb.fit(xb.Sequential([xb.Dense(1)]), x, y, loss=xb.MSE(), optimizer=optim.sgd(0.05),
                    epochs=30, batch_size=32, progress=False, validation_data=(x, y))
    assert set(result.history) == {"loss", "mse", "rmse", "mae", "r2", "val_loss", "val_mse",
                                   "val_rmse", "val_mae", "val_r2", "time"}
    assert result.history["val_r2"][-1] > 0.999
    assert result.history["val_rmse"][-1] == pytest.approx(
        result.history["val_mse"][-1] ** 0.5, rel=1e-9)
    assert result.history["loss"][-1] < 1e-3
    w = host(result.params)[0]["W"][:, 0]
    np.testing.assert_allclose(w, [1.0, -2.0], atol=0.02)


def test_float64_training_stays_float64():
    result = xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.adam(0.01), epochs=1,
                    dtype="float64", progress=False)
    assert all(p.dtype == np.float64 for p in tree_leaves(result.params))
    assert all(s.dtype == np.float64 for s in tree_leaves(result.state.opt_state.slots))


# -- the train step -------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda: optim.sgd(0.1, weight_decay=1e-3),
    "nesterov": lambda: optim.nesterov(0.1),
    "adam+cosine": lambda: optim.adam(xb.schedules.cosine_decay(1e-2, 5)),
    "adamw": lambda: optim.adamw(1e-2),
    "rmsprop": lambda: optim.rmsprop(1e-2, momentum=0.9),
    "adagrad+step": lambda: optim.adagrad(xb.schedules.step_decay(0.1, 2)),
}


def test_no_float64_creeps_into_float32_training(backend):
    """After several steps of every optimizer (with schedules), every parameter, optimizer
    slot and loss is still float32, on every backend."""
    net = xb.Sequential([xb.Dense(8), xb.Sigmoid(), xb.Dense(3), xb.Softmax()])
    y_onehot = np.eye(3, dtype=np.float32)[Y[:32]]
    for i, (name, make) in enumerate(OPTIMIZERS.items()):
        opt = make()
        # integer labels (softmax cross-entropy) and float targets (MSE), in turn
        loss, target = (xb.SoftmaxCrossEntropy(), Y[:32]) if i % 2 else (xb.MSE(), y_onehot)
        params = xb.init_params(net, 0, (4,), backend=backend)
        state = xb.TrainState.create(params, opt)
        step = xb.make_train_step(net, loss, opt, backend=backend)  # jax.jit on JAX
        batch = (backend.asarray(X[:32]), backend.asarray(target))
        for _ in range(3):
            state, value = step(state, batch)
        where = f"{name}/{type(loss).__name__}"
        assert backend.numpy_dtype(value.dtype) == np.float32, where
        for path, leaf in tree_paths(state.params) + tree_paths(state.opt_state.slots):
            assert backend.is_array(leaf), (where, path)
            assert backend.numpy_dtype(leaf.dtype) == np.float32, (where, path, leaf.dtype)


def test_integer_targets_do_not_turn_float32_training_into_float64(backend):
    """XOR targets written as integers, MSE, Adam: one step keeps parameters, slots and the
    loss in float32 (NumPy would promote float32 - int64 to float64)."""
    net = xb.Sequential([xb.Dense(4), xb.Sigmoid(), xb.Dense(1), xb.Sigmoid()])
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)
    y = np.array([[0], [1], [1], [0]])
    opt = optim.adam(0.1)
    state = xb.TrainState.create(xb.init_params(net, 0, (2,), backend=backend), opt)
    step = xb.make_train_step(net, xb.MSE(), opt, backend=backend)
    state, value = step(state, (backend.asarray(x), backend.asarray(y)))
    assert backend.numpy_dtype(value.dtype) == np.float32
    for path, leaf in tree_paths(state.params) + tree_paths(state.opt_state.slots):
        assert backend.numpy_dtype(leaf.dtype) == np.float32, (path, leaf.dtype)


def test_no_float64_creeps_in_under_jax_x64_mode(jax_backend, x64):
    """64-bit mode on (as for float64 oracles) does not make float32 training float64."""
    result = xb.fit(model(), X, Y, loss="cross_entropy",
                    optimizer=optim.adam(xb.schedules.cosine_decay(0.01, 3)), epochs=1,
                    batch_size=32, backend="jax", progress=False)
    for path, leaf in tree_paths(result.state.params) + tree_paths(
            result.state.opt_state.slots):
        assert leaf.dtype == np.float32, (path, leaf.dtype)


def test_jitted_step_matches_the_unjitted_step(jax_backend):
    net = model()
    loss = xb.SoftmaxCrossEntropy()
    opt = optim.adam(0.05)
    params = xb.init_params(net, 0, (4,), backend="jax")
    jitted = xb.make_train_step(net, loss, opt, backend="jax", jit=True)
    eager = xb.make_train_step(net, loss, opt, backend="jax", jit=False)
    s1 = s2 = xb.TrainState.create(params, opt)
    for i in range(0, 96, 32):
        batch = (X[i:i + 32], Y[i:i + 32])
        s1, v1 = jitted(s1, batch)
        s2, v2 = eager(s2, tuple(map(jax_backend.asarray, batch)))
        assert float(v1) == pytest.approx(float(v2), rel=1e-5)
    for (path, a), b in zip(tree_paths(host(s1.params)), tree_leaves(host(s2.params))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=path)
    assert int(s1.step) == int(s2.step) == 3
    assert int(s1.opt_state.count) == 3


def test_step_is_pure_unless_donated():
    net = model()
    opt = optim.momentum(0.1)
    params = xb.init_params(net, 0, (4,))
    state = xb.TrainState.create(params, opt)
    kept = host(tree_map(np.copy, state))
    step = xb.make_train_step(net, "cross_entropy", opt, backend="numpy")
    new, _ = step(state, (X[:32], Y[:32]))
    assert_trees_equal(state, kept)
    assert not np.array_equal(host(new.params)[0]["W"], kept.params[0]["W"])
    donated = xb.make_train_step(net, "cross_entropy", opt, backend="numpy", donate=True)
    new2, _ = donated(state, (X[:32], Y[:32]))
    assert_trees_equal(new2.params, new.params)  # same numbers, written in place
    assert new2.params[0]["W"] is state.params[0]["W"]


def test_numpy_and_jax_training_agree(jax_backend):
    def run(backend):
        return xb.fit(model(), X, Y, loss="cross_entropy", optimizer=optim.adam(0.01),
                      epochs=3, batch_size=32, seed=4, backend=backend, progress=False)

    a, b = run("numpy"), run("jax")
    np.testing.assert_allclose(a.history["loss"], b.history["loss"], rtol=1e-5)
    for x, y in zip(tree_leaves(host(a.params)), tree_leaves(host(b.params))):
        np.testing.assert_allclose(x, y, rtol=1e-4, atol=1e-5)


# -- predict and evaluate ---------------------------------------------------------------------

def test_predict_and_evaluate_in_batches(backend):
    net = model()
    params = xb.init_params(net, 2, (4,), backend=backend)
    host_params = host(params)
    out = xb.predict(net, params, X, batch_size=40)  # batches of 40, 40 and 16
    assert backend.is_array(out) and out.shape == (96, 3)
    assert backend.numpy_dtype(out.dtype) == np.float32
    np.testing.assert_allclose(xb.to_numpy(out), net(host_params, X), rtol=1e-5, atol=1e-6)
    scores = xb.evaluate(net, params, X, Y, xb.SoftmaxCrossEntropy(), batch_size=40)
    logits = net(host_params, X)
    assert scores["loss"] == pytest.approx(float(xb.SoftmaxCrossEntropy()(logits, Y)),
                                           rel=1e-5)
    assert scores["accuracy"] == np.mean(logits.argmax(axis=1) == Y)
    total = xb.evaluate(net, params, X, Y, xb.SoftmaxCrossEntropy("sum"), batch_size=40)
    assert total["loss"] == pytest.approx(96 * scores["loss"], rel=1e-5)


def test_evaluate_binary_thresholds():
    """Accuracy for one output: probabilities split at 0.5, logits at 0."""
    x = np.array([[-2.0], [-0.5], [0.3], [3.0]], np.float32)
    y = np.array([[0.0], [1.0], [1.0], [1.0]], np.float32)
    net = xb.Sequential([xb.Dense(1, use_bias=False)])
    params = [{"W": np.ones((1, 1), np.float32)}]
    logits = xb.evaluate(net, params, x, y, xb.BinaryCrossEntropyWithLogits())
    assert logits["accuracy"] == 0.75  # -0.5 is below 0: the one mistake
    probs = xb.evaluate(xb.Sequential([xb.Dense(1, use_bias=False), xb.Sigmoid()]),
                        [{"W": np.ones((1, 1), np.float32)}, {}], x, y,
                        xb.BinaryCrossEntropy())
    assert probs["accuracy"] == 0.75
    assert "accuracy" not in xb.evaluate(net, params, x, y, xb.MSE())


def test_evaluate_regression_metrics_per_output(backend):
    """Two outputs: MSE, RMSE, MAE and R² per output and averaged, against NumPy float64,
    over batches whose last one is padded."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(70, 3)).astype(np.float32)
    y = np.stack([x @ [1.0, 2.0, 0.0], 10 + x @ [0.0, 1.0, -1.0]], axis=1).astype(np.float32)
    net = xb.Sequential([xb.Dense(2)])
    params = xb.init_params(net, 0, (3,), backend=backend)
    got = xb.evaluate(net, params, x, y, xb.MSE(), batch_size=32)
    pred = net(host(params), x).astype(np.float64)
    err = pred - y
    want = {"mse": (err ** 2).mean(0), "mae": np.abs(err).mean(0),
            "r2": 1 - (err ** 2).sum(0) / ((y - y.mean(0)) ** 2).sum(0)}
    want["rmse"] = np.sqrt(want["mse"])
    for name, per_output in want.items():
        assert got[name] == pytest.approx(per_output.mean(), rel=1e-4)
        for k in range(2):
            assert got[f"{name}[{k}]"] == pytest.approx(per_output[k], rel=1e-4)
    assert got["loss"] == pytest.approx(got["mse"], rel=1e-5)  # MSE's mean over elements


def test_evaluate_sees_every_sample_once_with_a_padded_last_batch(backend):
    net = model()
    params = xb.init_params(net, 1, (4,), backend=backend)
    full = xb.evaluate(net, params, X, Y, "cross_entropy", batch_size=96)
    for size in (7, 32, 95):
        batched = xb.evaluate(net, params, X, Y, "cross_entropy", batch_size=size)
        assert batched["accuracy"] == full["accuracy"]
        assert batched["loss"] == pytest.approx(full["loss"], rel=1e-5)


def test_history_append():
    h = xb.History()
    h.append({"loss": 1.0, "accuracy": 0.5})
    h.append({"loss": 0.5})
    assert h == {"loss": [1.0, 0.5], "accuracy": [0.5]}


def test_a_step_made_without_a_backend_compiles_for_the_state_it_is_given(jax_backend):
    """make_train_step without backend= on a JAX state is jitted (traced once, not run op by
    op, ~400x slower); the same step object then also runs a NumPy state."""
    import dataclasses

    traces = []

    @dataclasses.dataclass(frozen=True)
    class Counted(xb.Layer):
        def forward(self, params, x, ctx=xb.EVAL):
            traces.append(type(x).__module__)
            return x, None

        def backward(self, params, cache, dy):
            return dy, {}

    net = xb.Sequential([xb.Dense(3), Counted()])
    opt = xb.optim.sgd(0.1)
    step = xb.make_train_step(net, "cross_entropy", opt)
    batch = (X[:8], Y[:8])
    state = xb.TrainState.create(xb.init_params(net, 0, (4,), backend="jax"), opt)
    for _ in range(3):
        state, value = step(state, batch)
    assert len(traces) == 1 and xb.backend_of(value).name == "jax"
    numpy_state = xb.TrainState.create(xb.init_params(net, 0, (4,), backend="numpy"), opt)
    for _ in range(2):
        numpy_state, value = step(numpy_state, batch)
    assert len(traces) == 3 and isinstance(value, np.floating | np.ndarray)
    np.testing.assert_allclose(xb.to_numpy(state.params[0]["W"]),
                               xb.to_numpy(step(numpy_state, batch)[0].params[0]["W"]),
                               rtol=1e-5)
