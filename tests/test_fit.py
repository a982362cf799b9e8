"""The fit loop: the data order is a function of the step (so a continued run is the same
run), padded last batches on JAX (one compilation, the same numbers as NumPy's unpadded
ones), non-finite losses stopped at the exact step with the culprit named (or skipped and
counted), and one progress bar over the epochs for full-batch training."""

from __future__ import annotations

import io

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim
from xbackprop.batching import DataOrder
from xbackprop.tree import tree_leaves, tree_paths

RNG = np.random.default_rng(0)
X = RNG.normal(size=(70, 5)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)  # 3 classes


def net():
    """Dropout and BatchNorm: randomness from the step, statistics that see the batch. (No
    bias before BatchNorm: its gradient is zero up to rounding, which Adam would amplify
    into steps of size lr, so two backends' rounding would decide it.)"""
    return xb.Sequential([xb.Dense(16, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                          xb.Dropout(0.3), xb.Dense(3)])


def run(backend, **kwargs):
    settings = dict(loss="cross_entropy", optimizer=optim.adam(0.01), batch_size=32, seed=3,
                    backend=backend, progress=False)
    return xb.fit(net(), X, Y, **{**settings, **kwargs})


def leaves(tree):
    return [np.asarray(a) for a in tree_leaves(xb.to_numpy(tree))]


def test_data_order_is_a_function_of_the_step():
    order = DataOrder(70, 32, seed=3, shuffle=True)
    assert order.steps_per_epoch == 3
    first = np.concatenate([order.indices(s) for s in range(3)])
    assert sorted(first) == list(range(70)) and len(order.indices(2)) == 6
    assert not np.array_equal(order.epoch(0), order.epoch(1))
    again = DataOrder(70, 32, seed=3, shuffle=True)
    np.testing.assert_array_equal(again.indices(4), order.indices(4))  # no hidden state
    tiny = DataOrder(4, 4, seed=0, shuffle=True)  # blocks of 64 epochs from one generator
    epochs = [tiny.epoch(e) for e in range(130)]
    assert all(sorted(e) == [0, 1, 2, 3] for e in epochs)
    assert len({tuple(e) for e in epochs}) > 10
    np.testing.assert_array_equal(DataOrder(4, 4, seed=0, shuffle=True).epoch(129), epochs[129])


@pytest.mark.parametrize("split", [1, 2])
def test_continuing_from_a_state_is_the_same_run(backend, split):
    """3 epochs at once, or `split` epochs then the rest from the returned state: the same
    parameters, optimizer state, BatchNorm statistics and history (dropout included)."""
    straight = run(backend, epochs=3)
    first = run(backend, epochs=split)
    rest = run(backend, epochs=3 - split, state=first.state)
    exact = backend.name == "numpy"
    for a, b in zip(leaves(straight.state), leaves(rest.state)):
        if exact:
            np.testing.assert_array_equal(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    joined = first.history["loss"] + rest.history["loss"]
    np.testing.assert_allclose(joined, straight.history["loss"], rtol=0 if exact else 1e-6)
    assert int(rest.state.step) == int(straight.state.step) == 9


def test_max_steps_stops_mid_epoch_and_the_rest_continues_exactly():
    straight = run("numpy", epochs=2)
    part = run("numpy", epochs=2, max_steps=4)  # one epoch and one batch of the second
    assert int(part.state.step) == 4 and len(part.history["loss"]) == 1
    rest = run("numpy", epochs=1, state=part.state)  # the second epoch, which it is in
    assert int(rest.state.step) == 6
    for a, b in zip(leaves(straight.params), leaves(rest.params)):
        np.testing.assert_array_equal(a, b)


def test_jax_pads_the_last_batch_compiles_once_and_agrees_with_numpy(jax_backend):
    """70 samples in batches of 32: NumPy trains on 32, 32 and 6; JAX pads the 6 to 32 and
    masks them, compiling one step. Loss, BatchNorm and dropout ignore the padding, so the
    two agree."""
    shapes = []

    class Spy(xb.Identity):
        abstract = True

        def forward(self, params, x, ctx=xb.EVAL):
            if ctx.train:
                shapes.append(tuple(x.shape))  # on JAX: once per compilation
            return x, None

    model = xb.Sequential([Spy(), *net().layers])
    settings = dict(loss="cross_entropy", optimizer=optim.adam(0.01), epochs=3, batch_size=32,
                    seed=3, progress=False, validation_data=(X[:50], Y[:50]))
    jax_run = xb.fit(model, X, Y, backend="jax", **settings)
    assert shapes == [(32, 5)]
    shapes.clear()
    numpy_run = xb.fit(model, X, Y, backend="numpy", **settings)
    assert shapes == [(32, 5), (32, 5), (6, 5)] * 3
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        np.testing.assert_allclose(jax_run.history[name], numpy_run.history[name], rtol=2e-5,
                                   err_msg=name)
    for (path, a), b in zip(tree_paths(xb.to_numpy(jax_run.state)), leaves(numpy_run.state)):
        np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6, err_msg=path)


def test_history_loss_is_the_mean_over_samples_not_over_batches():
    """The epoch's loss weighs the last, small batch by its size."""
    losses = []

    def record(epoch, logs, state):
        losses.append(logs["loss"])

    model = xb.Sequential([xb.Dense(3)])
    params = xb.init_params(model, 0, (5,))
    result = xb.fit(model, X, Y, loss="cross_entropy", optimizer=optim.sgd(0.0), epochs=1,
                    batch_size=32, params=params, progress=False, callbacks=[record])
    full = xb.evaluate(model, params, X, Y, "cross_entropy")  # lr 0: the same parameters
    assert result.history["loss"][0] == pytest.approx(full["loss"], rel=1e-6)
    assert result.history["accuracy"][0] == pytest.approx(full["accuracy"])


def test_metrics_choose_the_history_s_columns_and_change_no_number(backend):
    """metrics=() records the loss alone, ["rmse", "r2"] those two (per output too, and on
    the validation data); the loss and the chosen metrics are the default run's, bit for
    bit, and the parameters too."""
    y = np.stack([X[:, 0] + X[:, 1], X[:, 2] - 3.0], axis=1).astype(np.float32)
    model = xb.Sequential([xb.Dense(8), xb.ReLU(), xb.Dense(2)])

    def fit(**kwargs):
        return xb.fit(model, X, y, loss="mse", optimizer=optim.adam(0.01), epochs=3,
                      batch_size=32, backend=backend, progress=False,
                      validation_data=(X[:20], y[:20]), **kwargs)

    full = fit()
    bare = fit(metrics=())
    assert [k for k in bare.history if k != "time"] == ["loss", "val_loss"]
    some = fit(metrics=["rmse", "r2"])
    assert [k for k in some.history if k != "time"] == [
        "loss", "rmse", "r2", "rmse[0]", "rmse[1]", "r2[0]", "r2[1]", "val_loss", "val_rmse",
        "val_r2", "val_rmse[0]", "val_rmse[1]", "val_r2[0]", "val_r2[1]"]
    for result in (bare, some):
        for k, v in result.history.items():
            if k != "time":
                assert v == full.history[k], k
        for a, b in zip(leaves(result.params), leaves(full.params)):
            np.testing.assert_array_equal(a, b)


def test_metrics_that_the_loss_has_not_are_an_error_before_training():
    with pytest.raises(ValueError, match=r"fit: metrics: \['mse'\] are not metrics of a "
                                         r"classification loss; its metrics are \['accuracy'\]"):
        run("numpy", metrics=["mse"])
    with pytest.raises(ValueError, match="monitor"):  # early stopping on what is not there
        run("numpy", metrics=(), early_stopping=xb.EarlyStopping(monitor="accuracy"))


def test_a_run_resumes_with_the_metrics_it_was_started_with(tmp_path):
    """The metrics fix the rows' columns: a checkpoint says which, and resuming with others
    is an error naming them."""
    run("numpy", epochs=1, metrics=(), checkpoint_dir=tmp_path)
    with pytest.raises(ValueError, match=r"recorded only some metrics .* the metrics= it"):
        run("numpy", epochs=2, checkpoint_dir=tmp_path, resume=True)
    with pytest.raises(ValueError, match=r"metrics \[\] then, \['accuracy'\] now"):
        run("numpy", epochs=2, metrics=["accuracy"], checkpoint_dir=tmp_path, resume=True)
    result = run("numpy", epochs=2, metrics=(), checkpoint_dir=tmp_path, resume=True)
    assert [k for k in result.history if k != "time"] == ["loss"]
    assert len(result.history["loss"]) == 2


# -- non-finite values ----------------------------------------------------------------------

def exploding(backend, **kwargs):
    """Linear regression with a learning rate that makes the weights blow up within a few
    steps."""
    rng = np.random.default_rng(1)
    x = (10 * rng.normal(size=(64, 4))).astype(np.float32)
    y = x.sum(axis=1, keepdims=True)
    model = xb.Sequential([xb.Dense(8), xb.ReLU(), xb.Dense(1)])
    with np.errstate(all="ignore"):
        return xb.fit(model, x, y, loss="mse", optimizer=optim.sgd(3.0), epochs=20,
                      batch_size=16, backend=backend, progress=False, **kwargs)


def test_divergence_names_the_step_the_epoch_and_the_layer(backend):
    with pytest.raises(xb.TrainingDivergedError) as info:
        exploding(backend)
    error = info.value
    message = str(error)
    assert f"at step {error.step + 1} (epoch {error.step // 4 + 1}, batch " in message
    assert "of 4)" in message and "NaN or infinite" in message
    assert "The first non-finite value is the loss, MSE(), which overflowed" in message, message
    assert "learning rate" in message and "on_nonfinite='skip'" in message
    # the state is the last good one: finite, and at the step before the bad one
    assert all(np.isfinite(a).all() for a in leaves(error.state.params))
    assert int(error.state.step) == error.step
    assert len(error.history.get("loss", [])) == error.step // 4  # the epochs before


def test_jax_finds_the_same_step_and_state_as_numpy(jax_backend):
    errors = {}
    for name in ("numpy", "jax"):
        with pytest.raises(xb.TrainingDivergedError) as info:
            exploding(name)
        errors[name] = info.value
    assert errors["numpy"].step == errors["jax"].step
    for a, b in zip(leaves(errors["numpy"].state.params), leaves(errors["jax"].state.params)):
        np.testing.assert_allclose(a, b, rtol=1e-3)


class NanWhenLarge(xb.Identity):
    """y = x, but NaN for samples whose first feature exceeds 50 (a poisoned sample)."""

    abstract = True

    def forward(self, params, x, ctx=xb.EVAL):
        xp = xb.backend_of(x).xp
        poisoned = x[:, :1] > 50
        return xp.where(poisoned, xp.asarray(float("nan"), dtype=x.dtype), x), poisoned

    def backward(self, params, cache, dy):
        return xb.backend_of(dy).xp.where(cache, 0.0 * dy, dy), {}


def poisoned_data():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 3)).astype(np.float32)
    x[13, 0] = 99.0  # one sample poisons its batch
    return x, (x[:, 1:2] - x[:, 2:3]).astype(np.float32)


def test_a_nan_from_one_layer_is_blamed_on_that_layer(backend):
    x, y = poisoned_data()
    model = xb.Sequential([xb.Dense(3), NanWhenLarge(), xb.Dense(1)])
    with pytest.raises(xb.TrainingDivergedError, match=r"the output of layer 1, NanWhenLarge"):
        xb.fit(model, x, y, loss="mse", optimizer=optim.sgd(0.01), epochs=2, batch_size=8,
               backend=backend, shuffle=False, progress=False)


def test_skip_mode_skips_and_counts_the_poisoned_batches(backend):
    x, y = poisoned_data()
    model = xb.Sequential([NanWhenLarge(), xb.Dense(1)])
    with pytest.warns(RuntimeWarning, match="skipped 3 batches"):
        result = xb.fit(model, x, y, loss="mse", optimizer=optim.sgd(0.05), epochs=3,
                        batch_size=8, backend=backend, progress=False, on_nonfinite="skip")
    assert result.history["skipped"] == [1, 1, 1]  # the batch holding sample 13, each epoch
    assert int(result.state.step) == 15  # skipped steps still advance the data order
    assert all(np.isfinite(a).all() for a in leaves(result.params))
    clean = xb.evaluate(model, result.params, np.delete(x, 13, 0), np.delete(y, 13, 0), "mse")
    assert clean["loss"] < 0.5 * xb.evaluate(model, xb.init_params(model, 0, (3,)),
                                             np.delete(x, 13, 0), np.delete(y, 13, 0),
                                             "mse")["loss"]


def test_nan_targets_are_refused_before_training():
    x, y = poisoned_data()
    y[5, 0] = np.nan
    with pytest.raises(ValueError, match=r"training data: y has 1 NaN or infinite values "
                                         r"\(first at index \(5, 0\)\); clean the data"):
        xb.fit(xb.Sequential([xb.Dense(1)]), x, y, loss="mse", optimizer=optim.sgd(0.1),
               progress=False)


# -- progress and logging -------------------------------------------------------------------

def test_full_batch_training_shows_one_bar_over_the_epochs(capsys):
    x, y = xb.data.xor()
    xb.fit(xb.Sequential([xb.Dense(4), xb.Sigmoid(), xb.Dense(1), xb.Sigmoid()]), x, y,
           loss="mse", optimizer=optim.sgd(2.0), epochs=10_000, batch_size=4)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("epochs ")
    assert "10000/10000" in lines[0] and " loss " in lines[0]


def test_log_every_prints_a_line_every_k_epochs(capsys):
    x, y = xb.data.xor()
    xb.fit(xb.Sequential([xb.Dense(4), xb.Sigmoid(), xb.Dense(1), xb.Sigmoid()]), x, y,
           loss="mse", optimizer=optim.sgd(2.0), epochs=1000, batch_size=4, progress=False,
           log_every=250)
    lines = capsys.readouterr().err.strip().splitlines()
    assert [ln.split()[1] for ln in lines] == ["250/1000", "500/1000", "750/1000",
                                               "1000/1000"]
    assert all(" loss " in ln for ln in lines)


def test_per_epoch_bars_with_several_steps(capsys):
    run("numpy", epochs=2, progress=True, log_every=1)
    lines = capsys.readouterr().err.strip().splitlines()
    bars = [ln for ln in lines if ln.startswith("epoch ") and "█" in ln]
    logs = [ln for ln in lines if ln.startswith("epoch ") and "█" not in ln]
    assert [b.split()[1] for b in bars] == ["1/2", "2/2"] and "3/3" in bars[0]
    assert [ln.split()[1] for ln in logs] == ["1/2", "2/2"]


def test_bar_on_a_terminal_redraws_in_place():
    from xbackprop.progress import ProgressBar

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    out = Terminal()
    bar = ProgressBar(3, "epochs", file=out, min_interval=0.0)
    bar.update(loss=1.0)
    bar.write("epoch 1/3  loss 1.0000")
    bar.update(loss=0.5)
    bar.close(loss=0.25)
    text = out.getvalue()
    assert text.count("\r\033[K") >= 3 and "epoch 1/3  loss 1.0000\n" in text
    assert text.endswith("\n") and "loss 0.2500" in text.splitlines()[-1]


@pytest.mark.parametrize("kwargs, message", [
    ({"log_every": 0}, "log_every"), ({"max_steps": -1}, "max_steps"),
    ({"on_nonfinite": "ignore"}, "on_nonfinite"), ({"progress": "bars"}, "progress"),
    ({"batch_size": 2.5}, "batch_size")])
def test_bad_settings_are_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        run("numpy", epochs=1, **kwargs)
