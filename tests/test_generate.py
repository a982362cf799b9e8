"""xb.generate: the same text from a seed on every backend, cropping to the context,
temperature and top-k as their definitions say, and clear errors for bad prompts and
settings."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.generate import sample_logits

V, T = 7, 5


def tiny_gpt():
    return xb.language.gpt(V, T, layers=1, heads=2, width=8)


@pytest.fixture(scope="module")
def host_params():
    return xb.init_params(tiny_gpt(), 3, (T,), backend="numpy")


def test_same_tokens_on_every_backend_and_longer_than_the_context(backend, host_params):
    model = tiny_gpt()
    params = xb.tree_to_backend(host_params, backend)
    out = xb.generate(model, params, np.array([1, 2]), steps=3 * T, seed=4)
    reference = xb.generate(model, host_params, np.array([1, 2]), steps=3 * T, seed=4)
    assert out.shape == (2 + 3 * T,) and out.dtype == np.int64
    np.testing.assert_array_equal(out[:2], [1, 2])
    np.testing.assert_array_equal(out, reference)
    assert out.min() >= 0 and out.max() < V


def test_the_window_is_the_last_context_tokens(host_params):
    """Past the context, each token comes from the last T tokens: the same as running the
    model on seq[-T:] by hand (top_k=1: the most likely token, no randomness)."""
    model = tiny_gpt()
    out = xb.generate(model, host_params, np.array([3, 1, 4]), 2 * T, top_k=1)
    seq = [3, 1, 4]
    for _ in range(2 * T):
        window = np.array(seq[-T:])[None]
        seq.append(int(model(host_params, window)[0, -1].argmax()))
    np.testing.assert_array_equal(out, seq)


def test_top_k_1_is_the_arg_max_and_a_batch_samples_side_by_side(host_params):
    model = tiny_gpt()
    prompts = np.array([[1, 2, 3], [4, 5, 6]])
    out = xb.generate(model, host_params, prompts, 1, top_k=1)
    logits = model(host_params, prompts)[:, -1, :]
    np.testing.assert_array_equal(out[:, -1], logits.argmax(axis=-1))
    assert out.shape == (2, 4)


def test_sampling_follows_temperature_and_top_k():
    logits = np.log(np.array([[0.5, 0.3, 0.2]]))
    rng = np.random.default_rng(0)
    draws = np.array([sample_logits(logits, 1.0, None, rng)[0] for _ in range(20000)])
    np.testing.assert_allclose(np.bincount(draws, minlength=3) / 20000, [0.5, 0.3, 0.2],
                               atol=0.015)
    draws = np.array([sample_logits(logits, 1.0, 2, rng)[0] for _ in range(5000)])
    assert set(draws) == {0, 1}                           # the least likely is cut
    cold = np.array([sample_logits(logits, 0.1, None, rng)[0] for _ in range(2000)])
    assert (cold == 0).mean() > 0.99                     # temperature → 0: the arg-max


@pytest.mark.parametrize("kwargs,message", [
    ({"temperature": 0.0}, r"temperature must be a positive number, not 0\.0"),
    ({"temperature": -1}, "temperature must be a positive number"),
    ({"top_k": 0}, r"top_k must be an int >= 1 .* not 0"),
    ({"top_k": 2.5}, "top_k must be an int"),
    ({"steps": -1}, "steps is the number of tokens to add"),
])
def test_bad_settings(host_params, kwargs, message):
    args = {"steps": 2, **kwargs}
    with pytest.raises(ValueError, match=message):
        xb.generate(tiny_gpt(), host_params, np.array([1]), **args)


def test_bad_prompts(host_params):
    model = tiny_gpt()
    with pytest.raises(ValueError, match=r"the prompt has 6 tokens, more than the model's "
                                         r"context of 5: give at most 5 \(prompt\[-5:\]"):
        xb.generate(model, host_params, np.arange(6) % V, 1)
    with pytest.raises(TypeError, match=r"integer token ids, not float64.*astype"):
        xb.generate(model, host_params, np.array([1.0, 2.0]), 1)
    with pytest.raises(TypeError, match="encode it first"):
        xb.generate(model, host_params, "ROMEO:", 1)
    with pytest.raises(ValueError, match="the prompt is empty"):
        xb.generate(model, host_params, np.array([], dtype=np.int64), 1)
    with pytest.raises(ValueError, match=r"token id 9 at position \(0, 1\).* vocabulary of 7"):
        xb.generate(model, host_params, np.array([1, 9]), 1)


def test_out_of_vocabulary_prompt_on_a_compiled_backend(jax_backend, host_params):
    """JAX would clamp the id inside the compiled step; generate says what is wrong."""
    params = xb.tree_to_backend(host_params, jax_backend)
    with pytest.raises(ValueError, match=r"token id 7 at position 0 .* vocabulary of 7 ids"):
        xb.generate(tiny_gpt(), params, np.array([7, 1]), 1)


def test_a_prompt_with_characters_the_tokenizer_never_saw():
    tokenizer = xb.data.CharTokenizer.from_text("abc ")
    with pytest.raises(ValueError, match=r"never saw: 'z'"):
        tokenizer.encode("a z")
