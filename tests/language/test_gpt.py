"""The GPT of xbackprop.language: its shape and parameters, nanoGPT's optimizer (decay on
matrices only, warm-up + cosine, clipping), a short training run that learns and resumes
exactly, a model saved with its tokenizer, and check_model at trained weights."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import language
from xbackprop.data.text import split_text

TEXT = "to be, or not to be: that is the question. " * 40


@pytest.fixture(scope="module")
def data():
    return split_text(TEXT, 0.2)


def tiny(vocab):
    return language.gpt(vocab, 8, layers=1, heads=2, width=8)


def test_gpt_maps_ids_to_logits_and_counts_like_nanogpt():
    model = language.gpt(65, 64)  # the baby configuration
    params = xb.init_params(model, 0, (64,), backend="numpy")
    # nanoGPT (bias=False) has 0.80M without its tied head: ours adds the 65·128 head
    assert xb.count_params(params) == 812_416
    assert model.max_positions == 64
    logits = tiny(11)(xb.init_params(tiny(11), 0, (8,)), np.zeros((2, 5), np.int64))
    assert logits.shape == (2, 5, 11)
    with pytest.raises(ValueError, match="3 heads do not divide the width 128"):
        language.gpt(65, 64, heads=3)


def test_optimizer_decays_matrices_only_and_follows_the_schedule():
    model = tiny(5)
    params = xb.init_params(model, 0, (8,), dtype="float64")
    decayed = [path for path, p in xb.tree.tree_paths(params) if language.decays(path, p)]
    assert "0.W" in decayed and "2.1.W_qkv" in decayed           # embeddings, projections
    assert not any(path.endswith("gamma") for path in decayed)    # not the norms' scales
    opt = language.gpt_optimizer(100, lr=1e-2, min_lr=1e-3, warmup=10, clip=None)
    zero = xb.tree.tree_map(np.zeros_like, params)
    new, _ = opt.update(params, zero, opt.init(params))
    # with zero gradients only the decay moves anything, and only the decayed matrices;
    # the first step's rate is the warm-up's first: 0
    np.testing.assert_array_equal(new[0]["W"], params[0]["W"])
    state = opt.init(params)
    for _ in range(5):
        new, state = opt.update(new, zero, state)
    assert not np.array_equal(new[0]["W"], params[0]["W"])
    np.testing.assert_array_equal(new[2][0]["gamma"], params[2][0]["gamma"])


def test_training_learns_and_resumes_exactly(data, tmp_path):
    vocab = data.tokenizer.vocab_size
    common = dict(context=8, batch_size=4, seed=1, eval_every=10, eval_batches=2)
    run = language.train_language_model(tiny(vocab), data, steps=30,
                                        optimizer=language.gpt_optimizer(30, lr=1e-2, warmup=3),
                                        **common)
    assert run.history["step"] == [0, 10, 20, 30]
    assert run.history["val_loss"][-1] < run.history["val_loss"][0] - 0.3
    # the same run in two halves, through a checkpoint
    folder = tmp_path / "ckpt"
    first = language.train_language_model(tiny(vocab), data, steps=30,
                                          optimizer=language.gpt_optimizer(30, lr=1e-2,
                                                                           warmup=3),
                                          checkpoint_dir=str(folder), **common)
    assert first.val_loss == run.val_loss
    # stop after 20 of the 30 steps (same schedule), then resume from the checkpoint
    resumed_dir = tmp_path / "resumed"
    partial = language.train_language_model(
        tiny(vocab), data, steps=20, optimizer=language.gpt_optimizer(30, lr=1e-2, warmup=3),
        checkpoint_dir=str(resumed_dir), **common)
    assert partial.history["step"][-1] == 20
    lines = []
    resumed = language.train_language_model(
        tiny(vocab), data, steps=30, optimizer=language.gpt_optimizer(30, lr=1e-2, warmup=3),
        checkpoint_dir=str(resumed_dir), resume=True, report=lines.append, **common)
    assert any("resuming at step 20" in line for line in lines)
    assert resumed.history["step"] == run.history["step"]
    np.testing.assert_allclose(resumed.history["val_loss"], run.history["val_loss"],
                               rtol=1e-6)
    for (path, a), (_, b) in zip(xb.tree.tree_paths(resumed.params),
                                 xb.tree.tree_paths(run.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7, err_msg=path)


def test_saved_with_its_tokenizer_and_checked_at_trained_weights(data, tmp_path, jax_backend):
    vocab = data.tokenizer.vocab_size
    run = language.train_language_model(tiny(vocab), data, steps=20, context=8, batch_size=4,
                                        optimizer=language.gpt_optimizer(20, lr=1e-2,
                                                                         warmup=2),
                                        eval_every=20, eval_batches=1)
    path = language.save_language_model(tmp_path / "gpt.safetensors", run)
    saved = language.load_language_model(path)
    assert saved.tokenizer == data.tokenizer and saved.context == 8
    assert saved.model == run.model
    x, y = xb.data.TokenWindows(data.val, 8, 3, seed=5)(0)
    np.testing.assert_array_equal(saved.model(saved.params, x), run.model(run.params, x))
    for backend in ("numpy", "jax"):   # the trained GPT, a real batch, every tensor
        report = xb.check_model(saved.model, x=x, target=y, loss="cross_entropy",
                                params=saved.params, backend=backend, oracle="jax")
        assert report.ok, report
        assert len(report.rows) == len(xb.tree.tree_paths(saved.params))  # no row for ids
    with pytest.raises(xb.CheckpointError, match="no tokenizer"):
        xb.save_model(tmp_path / "plain.safetensors", run.model, run.params)
        language.load_language_model(tmp_path / "plain.safetensors")
