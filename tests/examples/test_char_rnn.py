"""char-rnn: min-char-rnn's recipe trains, samples and reports on NumPy and JAX alike; the
gradient followed back through time vanishes faster in the vanilla RNN than in the LSTM;
the watched cell is the one asked for."""

from __future__ import annotations

import math

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.examples import char_rnn


def test_quick_run_learns_and_reports(lesson_backend, quick):
    result = quick("char-rnn", lesson_backend)
    assert set(result.runs) == {"rnn", "lstm", "gru"} and result.cell == "rnn"
    for run in result.runs.values():
        assert run.losses.shape == run.smooth.shape == (char_rnn.QUICK["steps"],)
        # from a uniform guess (25 · ln 65 = 104.4) the loss of a chunk falls
        assert run.losses[0] == pytest.approx(25 * math.log(65), rel=0.01)
        assert run.losses[-20:].mean() < run.losses[:5].mean() - 3
    watched = result.runs["rnn"]
    assert [s[0] for s in watched.samples] == [0, 40]
    assert all(len(text) == char_rnn.QUICK["sample"] for _, _, text in watched.samples)
    report = str(result)
    assert "learning to spell (RNN)" in report and "step 40: smoothed loss" in report
    assert "LSTM" in report and "GRU" in report and "k = 10" in report


def test_the_rnns_gradient_vanishes_faster_than_the_lstms(quick):
    """At min-char-rnn's initialisation (weights of 0.01) the RNN's ∂L/∂h_t shrinks by
    orders of magnitude per step; the LSTM's cell carries it back by the forget gate."""
    through = quick("char-rnn").through_time
    rnn, lstm = through["RNN"]["at initialisation"], through["LSTM"]["at initialisation"]
    assert rnn.shape == lstm.shape == (char_rnn.QUICK["through_time"],)
    assert np.all(np.isfinite(rnn)) and np.all(rnn >= 0) and rnn[-1] > 0
    k = 10
    assert rnn[-1 - k] / rnn[-1] < 1e-6 < lstm[-1 - k] / lstm[-1]
    assert np.all(np.diff(rnn) > 0)  # monotone: farther back, smaller


def test_numpy_and_jax_train_alike(jax_backend, quick):
    np.testing.assert_allclose(quick("char-rnn", "jax").runs["lstm"].losses[:20],
                               quick("char-rnn").runs["lstm"].losses[:20], rtol=1e-3)


def test_activations_are_the_watched_cells_over_the_line(quick):
    result = quick("char-rnn")
    assert len(result.line) == char_rnn.QUICK["line"]
    units = [u for u, _, _ in result.units]
    assert 3 <= len(units) == len(set(units)) <= len(char_rnn.FEATURES)
    assert result.activations.shape == (len(result.line), len(units))
    assert np.abs(result.activations).max() <= 1.0  # tanh units
    assert all(-1 <= r <= 1 for _, _, r in result.units)
    assert "follows a space" in str(result) or "follows" in str(result)


def test_tracking_units_finds_the_unit_that_follows_a_feature():
    text = "to be, or not to be: that is the question\n" * 3
    rng = np.random.default_rng(0)
    activations = rng.normal(size=(len(text), 5)) * 0.1
    activations[:, 3] += np.array([c == " " for c in text])        # unit 3 lights at spaces
    found = {what: (unit, r) for unit, what, r in char_rnn.tracking_units(text, activations)}
    assert found["a space"][0] == 3 and found["a space"][1] > 0.9
    assert "a capital" not in found                                 # no capital in the text


def test_watch_another_cell():
    result = char_rnn.run(quick=True, cell="gru", steps=4, every=2)
    assert result.cell == "gru" and [s[0] for s in result.runs["gru"].samples] == [0, 2]
    assert "learning to spell (GRU)" in str(result)
    with pytest.raises(ValueError, match="cell is one of gru, lstm, rnn, not 'tcn'"):
        char_rnn.run(quick=True, cell="tcn")


def test_the_network_is_min_char_rnns():
    model = char_rnn.network("rnn", 65, 100)
    params = xb.init_params(model, 0, (25, 65), dtype="float64")
    assert params[0]["W_x"].shape == (65, 100) and params[0]["W_h"].shape == (100, 100)
    assert params[1]["W"].shape == (100, 65)
    for w in (params[0]["W_x"], params[0]["W_h"], params[1]["W"]):
        assert abs(w.std() - 0.01) < 0.001          # randn * 0.01
    assert not params[0]["b"].any() and not params[1]["b"].any()
    assert model.layers[0].stateful and model.layers[0].batch_size == 1
