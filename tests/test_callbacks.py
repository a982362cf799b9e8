"""EarlyStopping: stops after `patience` epochs without improvement, restores the best
epoch's state, knows which way is better, and refuses a metric fit will not report."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import optim


def feed(stopper, values, state=None):
    """Call the callback with `values` of its metric, one per epoch, until it stops."""
    stopper.reset()
    for epoch, value in enumerate(values):
        if stopper(epoch, {stopper.monitor: value}, state or {"epoch": np.array(epoch)}):
            return epoch
    return None


def test_stops_after_patience_epochs_without_improvement():
    stopper = xb.EarlyStopping(patience=2)
    assert feed(stopper, [5.0, 4.0, 4.5, 4.2, 4.1, 3.0]) == 3
    assert (stopper.best, stopper.best_epoch, stopper.stopped_epoch) == (4.0, 1, 3)
    assert int(stopper.best_state["epoch"]) == 1  # a copy of the best epoch's state


def test_min_delta_and_direction():
    assert feed(xb.EarlyStopping(patience=2, min_delta=0.5), [5.0, 4.8, 4.7]) == 2
    up = xb.EarlyStopping("val_accuracy", patience=1)
    assert up.maximise and feed(up, [0.5, 0.6, 0.55, 0.58]) == 2
    assert xb.EarlyStopping("val_r2[1]").maximise
    assert not xb.EarlyStopping("val_rmse").maximise
    assert xb.EarlyStopping("val_rmse", mode="max").maximise
    assert feed(xb.EarlyStopping(patience=1), [1.0, 2.0]) == 1
    assert feed(xb.EarlyStopping(patience=2), [float("nan"), 1.0, 0.5]) is None


@pytest.mark.parametrize("kwargs, message", [
    ({"patience": 0}, "patience"), ({"mode": "up"}, "mode"), ({"min_delta": -1.0}, "min_delta")])
def test_bad_settings(kwargs, message):
    with pytest.raises(ValueError, match=message):
        xb.EarlyStopping(**kwargs)


def noisy_regression():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8)).astype(np.float32)
    y = (x[:, :1] + 0.5 * rng.normal(size=(64, 1))).astype(np.float32)
    xv = rng.normal(size=(64, 8)).astype(np.float32)
    yv = (xv[:, :1] + 0.5 * rng.normal(size=(64, 1))).astype(np.float32)
    return x, y, xv, yv


def test_fit_stops_early_and_returns_the_best_epoch(backend):
    """A wide network overfits 64 noisy samples: validation loss turns up, fit stops and
    hands back the parameters of the best validation epoch."""
    x, y, xv, yv = noisy_regression()
    net = xb.Sequential([xb.Dense(64), xb.Tanh(), xb.Dense(1)])
    stopper = xb.EarlyStopping(patience=3)
    result = xb.fit(net, x, y, loss="mse", optimizer=optim.adam(0.03), epochs=200,
                    batch_size=16, validation_data=(xv, yv), early_stopping=stopper,
                    backend=backend, progress=False)
    h = result.history
    assert stopper.stopped_epoch is not None and len(h["loss"]) == stopper.stopped_epoch + 1
    assert stopper.stopped_epoch - stopper.best_epoch == 3
    assert stopper.best == min(h["val_loss"])
    best = xb.evaluate(net, result.params, xv, yv, "mse")
    assert best["loss"] == pytest.approx(stopper.best, rel=1e-5)
    assert best["loss"] < h["val_loss"][-1]  # not the last epoch's parameters


def test_an_int_is_a_patience_on_val_loss_and_a_missing_metric_fails_before_training():
    x, y, xv, yv = noisy_regression()
    net = xb.Sequential([xb.Dense(1)])
    calls = []
    with pytest.raises(ValueError, match=r"monitors 'val_loss'.*validation_data"):
        xb.fit(net, x, y, loss="mse", optimizer=optim.sgd(0.1), epochs=3, early_stopping=2,
               callbacks=[lambda *a: calls.append(a)], progress=False)
    assert calls == []
    with pytest.raises(ValueError, match=r"'val_accuracy'.*choose one of"):
        xb.fit(net, x, y, loss="mse", optimizer=optim.sgd(0.1), epochs=3,
               validation_data=(xv, yv), early_stopping=xb.EarlyStopping("val_accuracy"),
               progress=False)
    result = xb.fit(net, x, y, loss="mse", optimizer=optim.sgd(0.01), epochs=3,
                    validation_data=(xv, yv), early_stopping=50, progress=False)
    assert len(result.history["loss"]) == 3  # patience not exhausted: ran to the end


def test_early_stopping_keeps_its_counters_in_plain_sight():
    stopper = xb.EarlyStopping(patience=3)
    feed(stopper, [5.0, 4.0, 4.5, 4.2])
    assert stopper.state() == {"best": 4.0, "best_epoch": 1, "wait": 2, "monitor": "val_loss",
                              "maximise": False}
    other = xb.EarlyStopping(patience=3)
    other.restore(stopper.state())
    assert (other.best, other.best_epoch, other.wait) == (4.0, 1, 2)
    assert other(4, {"val_loss": 4.3}, {}) is True and other.stopped_epoch == 4


def test_callbacks_are_objects_or_functions_and_nothing_else():
    class Counter(xb.Callback):
        def on_logs(self, index, logs, state):
            self.last = index

    counter = Counter()
    x, y, _, _ = noisy_regression()
    seen = []
    xb.fit(xb.Sequential([xb.Dense(1)]), x, y, loss="mse", optimizer=optim.sgd(0.1),
           epochs=3, callbacks=[counter, lambda epoch, logs, state: seen.append(epoch)],
           progress=False)
    assert counter.last == 2 and seen == [0, 1, 2]
    assert counter(7, {}, None) is None and counter.last == 7  # the function form
    with pytest.raises(TypeError, match=r"callbacks\[1\] is a str, not a callback"):
        xb.fit(xb.Sequential([xb.Dense(1)]), x, y, loss="mse", optimizer="sgd",
               callbacks=[counter, "early"], progress=False)
    with pytest.raises(TypeError, match=r"callbacks is a list of callbacks; pass "
                                        r"callbacks=\[cb\]"):
        xb.fit(xb.Sequential([xb.Dense(1)]), x, y, loss="mse", optimizer="sgd",
               callbacks=counter, progress=False)


def test_a_callback_of_another_class_in_its_place_is_not_restored(tmp_path):
    x, y, xv, yv = noisy_regression()

    class Keeps(xb.Callback):
        def __init__(self):
            self.value = None

        def state(self):
            return {"value": 1}

        def restore(self, saved):
            self.value = saved["value"]

    class Other(Keeps):
        pass

    settings = dict(loss="mse", optimizer=optim.sgd(0.1), epochs=4, progress=False)
    xb.fit(xb.Sequential([xb.Dense(1)]), x, y, max_steps=4, callbacks=[Keeps()],
           checkpoint_dir=tmp_path / "a", **settings)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    same, other = Keeps(), Other()
    with pytest.warns(UserWarning, match="callback Other is where the run had a Keeps; its "
                                         "state is not restored"):
        xb.fit(xb.Sequential([xb.Dense(1)]), x, y, resume=True, callbacks=[other],
               checkpoint_dir=tmp_path / "a", **settings)
    assert other.value is None
    xb.fit(xb.Sequential([xb.Dense(1)]), x, y, resume=True, callbacks=[same],
           checkpoint_dir=tmp_path / "b", **settings)
    assert same.value == 1
