"""train_language_model over fit: the same steps on the same windows as a hand-written loop
of `make_train_step` (what it was before fit carried it), validation on the same windows at
every evaluation, the last evaluation over more windows, fit's checkpoints that
`load_language_model` reads (the tokenizer and the context in their record), fit's NaN
guard."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import language
from xbackprop.data.text import split_text

TEXT = "to be, or not to be: that is the question. " * 40
SETTINGS = dict(context=8, batch_size=4, seed=1, eval_every=5, eval_batches=2)


@pytest.fixture(scope="module")
def data():
    return split_text(TEXT, 0.2)


def tiny(vocab):
    return language.gpt(vocab, 8, layers=1, heads=2, width=8)


def optimizer():
    return language.gpt_optimizer(10, lr=1e-2, warmup=2)


def test_the_steps_and_windows_of_a_hand_written_loop(data, backend):
    model = tiny(data.tokenizer.vocab_size)
    run = language.train_language_model(model, data, steps=10, optimizer=optimizer(),
                                        backend=backend, **SETTINGS)
    # by hand: the parameters from the seed, each step on TokenWindows(train, ..., seed)(step)
    state = xb.TrainState.create(xb.init_params(model, 1, (8,), backend=backend),
                                 optimizer(), seed=1)
    step = xb.make_train_step(model, "cross_entropy", optimizer(), backend=backend)
    windows = xb.data.TokenWindows(data.train, 8, 4, seed=1)
    losses = []
    for s in range(10):
        state, loss = step(state, tuple(backend.asarray(a) for a in windows(s)))
        losses.append(float(xb.to_numpy(loss)))
    exact = backend.name == "numpy"   # the same operations in the same order
    for (path, a), (_, b) in zip(xb.tree.tree_paths(xb.to_numpy(run.params)),
                                 xb.tree.tree_paths(xb.to_numpy(state.params))):
        if exact:
            np.testing.assert_array_equal(a, b, err_msg=path)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=path)
    assert run.history["step"] == [0, 5, 10] and run.steps == 10
    # a row's train loss: the mean of the steps' since the row before
    np.testing.assert_allclose(run.history["train_loss"][1:],
                               [np.mean(losses[:5]), np.mean(losses[5:])], rtol=1e-5)
    # validation: the first eval_batches windows of TokenWindows(val, ..., seed + 1), each time
    val = language.estimate_loss(model, run.params, data.val, context=8, batch_size=4,
                                 batches=2, seed=2)
    np.testing.assert_allclose(run.history["val_loss"][-1], val, rtol=1e-5)
    assert run.val_loss == run.history["val_loss"][-1]    # no final_eval_batches


def test_the_last_evaluation_over_more_windows(data):
    model = tiny(data.tokenizer.vocab_size)
    lines = []
    run = language.train_language_model(model, data, steps=10, optimizer=optimizer(),
                                        final_eval_batches=6, report=lines.append, **SETTINGS)
    more = language.estimate_loss(model, run.params, data.val, context=8, batch_size=4,
                                  batches=6, seed=2)
    assert run.final_val_loss == more == run.val_loss
    assert run.history["val_loss"][-1] != more            # the row's: 2 windows
    assert [line.split(":")[0] for line in lines] == ["step     0", "step     5", "step    10"]


def test_checkpoints_are_fits_and_sample_like_a_saved_model(data, tmp_path):
    model = tiny(data.tokenizer.vocab_size)
    folder = tmp_path / "run"
    run = language.train_language_model(model, data, steps=10, optimizer=optimizer(),
                                        checkpoint_dir=str(folder),
                                        metadata={"job": "tiny"}, **SETTINGS)
    latest = xb.CheckpointManager(folder).latest()
    assert latest.name == "ckpt-000000010.safetensors"
    info = xb.checkpoint_info(latest)
    assert info.metadata["fit"]["source"] == "callable"   # fit's record
    assert info.metadata["job"] == "tiny"
    saved = language.load_language_model(latest)
    assert saved.tokenizer == data.tokenizer and saved.context == 8
    for (path, a), (_, b) in zip(xb.tree.tree_paths(saved.params),
                                 xb.tree.tree_paths(xb.to_numpy(run.params))):
        np.testing.assert_array_equal(a, b, err_msg=path)
    ids = xb.generate(saved.model, saved.params, data.tokenizer.encode("to"), 10,
                      context=saved.context)
    assert len(data.tokenizer.decode(ids)) == 12
    # a resumed run keeps the evaluation before the first step (in the callback's state)
    lines = []
    more = language.train_language_model(model, data, steps=15, optimizer=optimizer(),
                                         checkpoint_dir=str(folder), resume=True,
                                         report=lines.append, **SETTINGS)
    assert lines[0] == f"resuming at step 10 from {latest}"
    assert more.history["step"] == [0, 5, 10, 15] and more.steps == 5
    assert more.history["val_loss"][:3] == run.history["val_loss"]
    with pytest.raises(ValueError, match="already holds checkpoints"):
        language.train_language_model(model, data, steps=10, optimizer=optimizer(),
                                      checkpoint_dir=str(folder), **SETTINGS)


def test_a_diverging_run_stops_with_fits_error(data):
    wild = xb.optim.sgd(1e30)
    with pytest.raises(xb.TrainingDivergedError, match="step"):
        language.train_language_model(tiny(data.tokenizer.vocab_size), data, steps=10,
                                      optimizer=wild, **SETTINGS)
