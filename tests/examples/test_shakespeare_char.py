"""shakespeare-char: the quick GPT learns (its validation loss falls from ln 65), the report
shows the model layer by layer and samples before and after, and the pictures' data are the
model's own: attention rows that sum to 1 over the past, embeddings of every character."""

from __future__ import annotations

import numpy as np


def test_learns_and_reports(lesson_backend, quick):
    result = quick("shakespeare-char", lesson_backend)
    losses = result.history["val_loss"]
    assert abs(losses[0] - np.log(65)) < 0.1          # an untrained model knows nothing
    assert losses[-1] < losses[0] - 0.8
    report = str(result)
    assert "2.1    CausalSelfAttention(2, use_bias=False)" in report
    assert "before training" in report and "after training" in report
    assert len(result.after) == len(result.before) == 300
    x, y = result.window
    assert x[1:] == y[:-1]                            # y is x one character further on


def test_attention_and_embeddings_are_the_models(quick):
    result = quick("shakespeare-char")
    assert [name for name, _ in result.attention] == ["block 1 (layer 2)", "block 2 (layer 4)"]
    t = len(result.line)
    for _, weights in result.attention:
        assert weights.shape == (2, t, t)
        np.testing.assert_allclose(weights.sum(axis=-1), 1.0, rtol=1e-5)
        assert np.all(np.triu(weights, k=1) == 0.0)   # nothing from the future
    assert result.embedding_2d.shape == (65, 2) and len(result.characters) == 65
