"""The recurrent language model of xbackprop.language (char-rnn): its shape, its cells, its
optimizer's clipping, and a short run through train_language_model that learns, saves with
its tokenizer and samples."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import language
from xbackprop.data.text import split_text

TEXT = "to be, or not to be: that is the question. " * 40


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru"])
def test_ids_to_logits_at_every_position_with_no_position_limit(cell):
    model = language.char_rnn(11, cell, layers=2, width=6)
    params = xb.init_params(model, 0, (5,), backend="numpy")
    gates = {"rnn": 1, "lstm": 4, "gru": 3}[cell]
    assert params[1]["W_h"].shape == (6, gates * 6) and params[2]["W_x"].shape == (6, gates * 6)
    assert model.max_positions is None
    ids = np.array([[1, 2, 3, 4, 5, 6, 7]])             # longer than the 5 it was made for
    logits = model(params, ids)
    assert logits.shape == (1, 7, 11)
    # causal: the logits at t do not change when a later token does
    other = ids.copy()
    other[0, -1] = 0
    np.testing.assert_array_equal(model(params, other)[0, :-1], logits[0, :-1])
    assert model.integer_inputs                          # fit keeps the ids integers


def test_bad_cell_and_dropout_between_layers():
    with pytest.raises(ValueError, match=r"cell must be one of gru, lstm, rnn .* not 'cnn'"):
        language.char_rnn(5, "cnn")
    with pytest.raises(ValueError, match="cell must be one of"):
        language.TextOptions(cell="LSTM ")
    names = [type(layer).__name__ for layer in language.char_rnn(5, "gru", 2, 4, 0.1).layers]
    assert names == ["Embedding", "GRU", "Dropout", "GRU", "Dropout", "Dense"]


def test_the_optimizer_clips_the_global_norm():
    params = {"W": np.ones((2, 2))}
    huge = {"W": np.full((2, 2), 1e6)}
    clipped = {"W": np.full((2, 2), 0.5)}               # norm 1: the huge gradient scaled
    opt, plain = language.rnn_optimizer(10, lr=0.1, clip=1.0), language.rnn_optimizer(
        10, lr=0.1, clip=None)
    a, _ = opt.update(params, huge, opt.init(params))
    b, _ = plain.update(params, clipped, plain.init(params))
    np.testing.assert_allclose(a["W"], b["W"], rtol=1e-12)


def test_trains_through_fit_saves_and_samples(tmp_path):
    data = split_text(TEXT, 0.2)
    model = language.char_rnn(data.tokenizer.vocab_size, "lstm", layers=1, width=16)
    run = language.train_language_model(model, data, steps=40, context=8, batch_size=8,
                                        optimizer=language.rnn_optimizer(40, lr=1e-2),
                                        eval_every=20, eval_batches=2, seed=0)
    assert run.history["step"] == [0, 20, 40]
    assert run.val_loss < run.history["val_loss"][0] - 0.3   # from ln 16 = 2.77
    path = language.save_language_model(tmp_path / "rnn.safetensors", run)
    saved = language.load_language_model(path)
    assert saved.model == model and saved.context == 8
    ids = xb.generate(saved.model, saved.params, data.tokenizer.encode("to be"), 30,
                      top_k=1, context=saved.context)
    text = data.tokenizer.decode(ids)
    assert text.startswith("to be") and len(text) == 35
