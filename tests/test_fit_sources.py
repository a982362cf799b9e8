"""fit from a batch source, counted in steps: a function of the step or any iterable trains
as arrays do, with a row of history per evaluation; a resumed run from a function is the
same run bit for bit on NumPy (an iterable's says it starts over); validation from a source
uses the same batches every time; the NaN guard replays a source's steps; integer inputs
stay integers; progress shows steps, loss and the last validation figures; and each bad
batch is an error naming its step, with the newest checkpoint untouched."""

from __future__ import annotations

import dataclasses
import io
import itertools
from contextlib import redirect_stderr

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import SourceError
from xbackprop.tree import tree_leaves


def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 0)
    return x, y


X, Y = data()
SOURCE = xb.data.ArraySource(X, Y, batch_size=16, seed=0)


def model():
    return xb.Sequential([xb.Dense(16, use_bias=False), xb.BatchNorm(), xb.ReLU(),
                          xb.Dropout(0.2), xb.Dense(3)])


def train(source, **kwargs):
    settings = dict(loss="cross_entropy", optimizer=xb.optim.adam(0.01), seed=3,
                    progress=False)
    return xb.fit(model(), source, **{**settings, **kwargs})


def same_state(a, b, exact=True):
    for u, v in zip(tree_leaves(xb.to_numpy(a.state)), tree_leaves(xb.to_numpy(b.state))):
        if exact:
            np.testing.assert_array_equal(u, v)
        else:
            np.testing.assert_allclose(u, v, rtol=1e-5, atol=1e-6)


def without_time(history):
    return {k: v for k, v in history.items() if k != "time"}


def test_a_source_function_trains_with_a_row_per_evaluation():
    result = train(SOURCE, steps=250, eval_every=100, validation_data=(X, Y))
    h = result.history
    assert h["step"] == [100, 200, 250]  # every 100 steps, and at the end
    assert list(h) == ["step", "loss", "accuracy", "val_loss", "val_accuracy", "time"]
    assert h["loss"][-1] < h["loss"][0] and h["val_accuracy"][-1] > 0.8
    assert int(result.state.step) == 250
    scores = xb.evaluate(result.state and model(), result.params, X, Y, "cross_entropy",
                         model_state=result.state.model_state)
    assert scores["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)


def test_an_iterable_trains_exactly_as_the_function_it_iterates():
    batches = (SOURCE(step) for step in itertools.count())
    a, b = train(SOURCE, steps=60, eval_every=25), train(batches, steps=60, eval_every=25)
    same_state(a, b)
    assert without_time(a.history) == without_time(b.history)
    c = train([SOURCE(step) for step in range(60)], steps=60, eval_every=25)  # a list too
    same_state(a, c)


def test_every_backend_trains_from_a_source_as_numpy_does(backend):
    numpy = train(SOURCE, steps=12, eval_every=5, backend="numpy")
    other = train(SOURCE, steps=12, eval_every=5, backend=backend)
    same_state(numpy, other, exact=backend.name == "numpy")
    np.testing.assert_allclose(other.history["loss"], numpy.history["loss"], rtol=1e-5)


def test_arrays_counted_in_steps_have_a_row_per_epoch_or_per_eval_every():
    by_epochs = xb.fit(model(), X, Y, loss="cross_entropy", optimizer="adam", epochs=3,
                       batch_size=32, progress=False)
    by_steps = xb.fit(model(), X, Y, loss="cross_entropy", optimizer="adam", steps=12,
                      batch_size=32, progress=False)  # 4 steps an epoch
    same_state(by_epochs, by_steps)
    assert by_steps.history["step"] == [4, 8, 12]
    assert by_steps.history["loss"] == by_epochs.history["loss"]
    every5 = xb.fit(model(), X, Y, loss="cross_entropy", optimizer="adam", steps=12,
                    batch_size=32, eval_every=5, progress=False)
    assert every5.history["step"] == [5, 10, 12]


@pytest.mark.parametrize("cut", [30, 42])  # at an evaluation, and between two
def test_a_run_from_a_source_function_resumes_bit_for_bit(tmp_path, cut):
    calls = []

    class StepCounter(xb.Callback):
        """Counts steps and rows; its count is its state, kept by fit's checkpoints."""

        def __init__(self):
            self.steps = self.rows = 0

        def on_step(self, step, state):
            self.steps += 1

        def on_logs(self, index, logs, state):
            self.rows += 1
            calls.append(index)

        def state(self):
            return {"steps": self.steps, "rows": self.rows}

        def restore(self, saved):
            self.steps, self.rows = saved["steps"], saved["rows"]

    settings = dict(steps=90, eval_every=15, validation_data=(X[:40], Y[:40]))
    straight, counter = xb.EarlyStopping(patience=50), StepCounter()
    a = train(SOURCE, early_stopping=straight, callbacks=[counter], **settings)
    train(SOURCE, max_steps=cut, checkpoint_dir=tmp_path, callbacks=[StepCounter()],
          early_stopping=xb.EarlyStopping(patience=50), **settings)
    resumed, counter2 = xb.EarlyStopping(patience=50), StepCounter()
    b = train(SOURCE, checkpoint_dir=tmp_path, resume=True, early_stopping=resumed,
              callbacks=[counter2], **settings)
    same_state(a, b)
    assert without_time(a.history) == without_time(b.history)
    assert (counter2.steps, counter2.rows) == (counter.steps, counter.rows) == (90, 6)
    assert (resumed.best, resumed.best_epoch, resumed.wait) == (straight.best,
                                                               straight.best_epoch, straight.wait)
    ckpt = xb.CheckpointManager(tmp_path).load_latest()
    assert ckpt.metadata["fit"] == {"source": "callable", "steps": 90, "eval_every": 15,
                                    "validation": True}
    assert ckpt.metadata["callbacks"][0] == {"class": "StepCounter",
                                             "state": {"steps": 90, "rows": 6}}


def test_an_iterable_source_resumes_everything_but_its_position_and_says_so(tmp_path):
    def batches():
        return (SOURCE(step) for step in itertools.count())

    train(batches(), steps=40, eval_every=10, max_steps=20, checkpoint_dir=tmp_path)
    with pytest.warns(UserWarning, match="fit resumes at step 20, but its source is an "
                      "iterable, whose position cannot be restored: its batches start again "
                      "from its beginning"):
        resumed = train(batches(), steps=40, eval_every=10, checkpoint_dir=tmp_path,
                        resume=True)
    assert int(resumed.state.step) == 40 and resumed.history["step"] == [10, 20, 30, 40]
    again = train(batches(), steps=40, eval_every=10)  # step 20 trained on batch 0 instead
    assert resumed.history["loss"][:2] == again.history["loss"][:2]
    assert resumed.history["loss"][2:] != again.history["loss"][2:]


def test_validation_from_a_source_takes_the_same_batches_every_time():
    asked = []
    val_source = xb.data.ArraySource(X, Y, 20, seed=9)

    def val(i):
        asked.append(i)
        return val_source(i)

    result = train(SOURCE, steps=30, eval_every=10, validation_data=val, eval_batches=3)
    assert asked == [0, 1, 2]  # asked once, checked once, evaluated at every row
    x_val = np.concatenate([val_source(i)[0] for i in range(3)])
    y_val = np.concatenate([val_source(i)[1] for i in range(3)])
    end = xb.evaluate(model(), result.params, x_val, y_val, "cross_entropy",
                      model_state=result.state.model_state)
    assert end["loss"] == pytest.approx(result.history["val_loss"][-1], rel=1e-6)
    listed = train(SOURCE, steps=30, eval_every=10, eval_batches=3,
                   validation_data=[val_source(i) for i in range(5)])
    assert listed.history["val_loss"] == result.history["val_loss"]


@pytest.mark.parametrize("kwargs, message", [
    (dict(validation_data=(SOURCE(i) for i in range(3))), "an iterator .* gives its batches "
     "once; validation needs the same batches every time"),
    (dict(validation_data=SOURCE), r"a validation source val\(i\) needs eval_batches=N"),
    (dict(validation_data=SOURCE, eval_batches=0), "eval_batches is a count >= 1"),
    (dict(epochs=3), "a batch source has no epochs: count in steps"),
    (dict(batch_size=16), "a source's batches set the batch size"),
    (dict(progress="epochs"), "counting in steps there is one bar over the steps"),
])
def test_settings_that_do_not_fit_a_source(kwargs, message):
    with pytest.raises(ValueError, match=message):
        train(SOURCE, **{"steps": 10, **kwargs})


def test_settings_that_do_not_fit_arrays():
    with pytest.raises(ValueError, match=r"fit counts in epochs or in steps, not both: "
                                         r"epochs=3 and steps=10 were given; pass one"):
        xb.fit(model(), X, Y, loss="cross_entropy", optimizer="adam", epochs=3, steps=10)
    with pytest.raises(ValueError, match=r"eval_every is the steps between rows of the "
                                         r"history when training is counted in steps"):
        xb.fit(model(), X, Y, loss="cross_entropy", optimizer="adam", eval_every=3)
    with pytest.raises(ValueError, match=r"fit\(model, source\) counts in steps: pass steps=N"):
        train(SOURCE)
    with pytest.raises(ValueError, match=r"y is missing for x of type ndarray.*batch source"):
        xb.fit(model(), X, loss="cross_entropy", optimizer="adam")


def broken_at(step, change):
    def source(s):
        x, y = SOURCE(s)
        return change(x, y) if s == step else (x, y)
    return source


BAD_BATCHES = {
    "not a pair": (broken_at(7, lambda x, y: x), 7,
                   "step 7: a batch is a pair \\(x_batch, y_batch\\), but the source gave an "
                   "ndarray"),
    "three things": (broken_at(7, lambda x, y: (x, y, y)), 7, "gave a tuple of 3"),
    "a dict": (broken_at(7, lambda x, y: {"x": x}), 7, "gave a dict"),
    "text": (broken_at(7, lambda x, y: (x.astype(str), y)), 7, "x holds text"),
    "other samples": (broken_at(7, lambda x, y: (x[:, :3], y)), 7,
                      r"step 7: the batch has x of shape \(16, 3\) and y of shape \(16,\), but "
                      r"the first batch's samples were x \(5,\) and y \(\): every batch must "
                      "have samples of one shape"),
    "more samples": (broken_at(7, lambda x, y: (np.concatenate([x, x]), np.concatenate([y, y]))),
                     7, "the batch has 32 samples, more than the first batch's 16"),
    "a NaN": (broken_at(7, lambda x, y: (np.where(np.eye(16, 5) > 0, np.nan, x)[::-1], y)), 7,
              r"step 7: x has 5 NaN or infinite values \(first at index \(11, 4\)\)"),
    "fewer targets": (broken_at(7, lambda x, y: (x, y[:9])), 7,
                      "x has 16 samples but y has 9"),
}


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_a_bad_batch_is_an_error_naming_its_step_and_the_newest_checkpoint_stays(case,
                                                                              tmp_path):
    source, step, message = BAD_BATCHES[case]
    with pytest.raises(SourceError, match=message) as info:
        train(source, steps=20, eval_every=3, checkpoint_dir=tmp_path)
    assert info.value.step == step
    newest = xb.CheckpointManager(tmp_path).latest()
    assert newest.name == "ckpt-000000006.safetensors"  # the row before the bad step
    assert f"nothing was trained on this batch. The newest checkpoint, {newest}, is as it " \
           "was: resume=True goes on from it" in str(info.value)
    assert int(xb.load_checkpoint(newest).step) == 6


def test_a_label_outside_the_classes_at_step_5000_names_the_step():
    tiny = xb.Sequential([xb.Dense(3)])
    source = broken_at(5000, lambda x, y: (x, np.where(y == 2, 7, y)))
    with pytest.raises(SourceError, match=r"the source, step 5000: SoftmaxCrossEntropy: labels "
                                         r"run from 0 to 7 .*labels must be in \[0, 3\)"):
        xb.fit(tiny, source, steps=6000, eval_every=1000, loss="cross_entropy",
               optimizer="sgd", progress=False)


def test_an_iterable_that_runs_dry_before_the_steps_names_the_step():
    with pytest.raises(SourceError, match=r"the source ran dry at step 4: the iterable ended "
                                         r"after giving the batches of the steps before"):
        train(iter([SOURCE(i) for i in range(4)]), steps=10)


def test_the_first_batch_is_checked_before_training():
    with pytest.raises(SourceError, match="step 0: a batch is a pair"):
        train(lambda step: "text", steps=10)
    with pytest.raises(ValueError, match="y is missing for x of type float; give the targets, "
                                         "or train from a batch source"):
        xb.fit(model(), 3.0, loss="cross_entropy", optimizer="adam", steps=3)


@pytest.mark.parametrize("iterable", [False, True])
def test_the_nan_guard_replays_a_sources_steps(jax_backend, iterable):
    """On JAX the flags are read in bulk: the steps since the last read are replayed (from
    the function again, or from the batches kept of an iterable) to name the step."""
    net = xb.Sequential([xb.Dense(8), xb.Tanh(), xb.Dense(1)])
    rng = np.random.default_rng(1)
    x = rng.normal(size=(64, 5)).astype(np.float32)
    y = x[:, :1].astype(np.float32)
    regression = xb.data.ArraySource(x, y, 8)

    def source(step):
        xs, ys = regression(step)
        return (xs, ys * np.float32(1e20)) if step == 13 else (xs, ys)  # its loss overflows

    feed = (source(s) for s in itertools.count()) if iterable else source
    with pytest.raises(xb.TrainingDivergedError, match=r"training stopped at step 14: its loss "
                                                       r"or gradients are NaN or infinite"):
        try:
            xb.fit(net, feed, steps=40, eval_every=20, loss="mse", optimizer="sgd",
                   backend="jax", progress=False)
        except xb.TrainingDivergedError as e:
            assert int(e.state.step) == 13 and e.step == 13
            raise


@dataclasses.dataclass(frozen=True)
class Lookup(xb.Layer):
    """A table lookup: y = W[x] for integer ids x: (N, T) -> (N, T, D)."""

    vocabulary: int = 6
    width: int = 3
    integer_inputs = True

    def init(self, rng, in_shape):
        return {"W": rng.normal(size=(self.vocabulary, self.width))}

    def forward(self, params, x, ctx=xb.EVAL):
        backend = xb.backend_of(x, params["W"])
        assert backend.numpy_dtype(x.dtype).kind == "i", x.dtype  # ids, never floats
        return backend.xp.take(params["W"], xb.backend_of(x).xp.reshape(x, (-1,)),
                               axis=0).reshape(*x.shape, self.width), x

    def backward(self, params, x, dy):
        xp = xb.backend_of(dy).xp
        onehot = xp.astype(xp.reshape(x, (-1, 1)) == xp.arange(self.vocabulary), dy.dtype)
        return None, {"W": onehot.T @ xp.reshape(dy, (-1, self.width))}

    def output_shape(self, in_shape):
        return (*in_shape, self.width)


def test_integer_inputs_stay_integers():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 6, size=(64, 4))
    labels = (ids[:, 0] % 3).astype(np.int64)
    net = xb.Sequential([Lookup(), xb.Flatten(), xb.Dense(3)])
    assert net.integer_inputs
    source = xb.data.ArraySource(ids, labels, 16)
    result = xb.fit(net, source, steps=60, eval_every=30, validation_data=(ids, labels),
                    loss="cross_entropy", optimizer=xb.optim.adam(0.05), progress=False)
    assert result.history["accuracy"][-1] > 0.9
    arrays = xb.fit(net, ids, labels, epochs=2, loss="cross_entropy", optimizer="adam",
                    progress=False)
    assert len(arrays.history["loss"]) == 2
    assert xb.predict(net, result.params, ids[:5]).shape == (5, 3)
    with pytest.raises(SourceError, match="the model takes integer ids"):
        xb.fit(net, lambda s: (ids[:4].astype(np.float32), labels[:4]), steps=2,
               loss="cross_entropy", optimizer="adam", progress=False)


def test_progress_shows_steps_loss_and_the_last_validation_figures():
    err = io.StringIO()
    with redirect_stderr(err):
        train(SOURCE, steps=30, eval_every=10, validation_data=(X, Y), progress=True)
    lines = err.getvalue().splitlines()
    assert [line.split("  ")[0] for line in lines[:3]] == ["step 10/30", "step 20/30",
                                                            "step 30/30"]
    assert "loss " in lines[0] and "val_loss " in lines[0] and "val_accuracy" in lines[0]
    assert lines[-1].startswith("step ") and "30/30" in lines[-1] and "val_loss" in lines[-1]


def test_a_callback_acts_after_every_step_and_may_stop():
    seen = []

    class StopAt(xb.Callback):
        def on_step(self, step, state):
            seen.append((step, int(state.step)))
            return step == 23

    result = train(SOURCE, steps=50, eval_every=10, callbacks=[StopAt()])
    assert seen == [(s, s) for s in range(1, 24)]
    assert result.history["step"] == [10, 20, 23] and int(result.state.step) == 23


def test_checkpoints_of_a_source_run_are_written_every_k_evaluations(tmp_path):
    train(SOURCE, steps=50, eval_every=10, checkpoint_dir=tmp_path, checkpoint_every=2,
          keep_checkpoints=5)
    names = [p.name for p in xb.CheckpointManager(tmp_path).checkpoints()]
    assert names == [f"ckpt-{s:09d}.safetensors" for s in (20, 40, 50)]
