"""`Backend.scan`, the loop over time that recurrent layers run on: every backend's scan gives
what the generic Python loop gives (and what a plain NumPy loop gives), forwards and in
reverse, over pytrees; JAX's is one compiled loop whose program does not grow with T."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.backends import Backend


def _step(backend):
    """carry (h, count), x_t {"a": (B, F), "b": (B,)} -> y_t (h_t, b_t · 2): a small
    recurrence whose result depends on the order of the steps."""
    xp = backend.xp

    def fn(carry, x):
        h, count = carry
        h = xp.tanh(0.5 * h + x["a"] * xp.reshape(x["b"], (-1, 1)))
        return (h, count + 1.0), (h, 2.0 * x["b"])
    return fn


def _reference(a, b, h, reverse):
    hs = np.zeros_like(a)
    for t in (range(len(a) - 1, -1, -1) if reverse else range(len(a))):
        h = np.tanh(0.5 * h + a[t] * b[t][:, None])
        hs[t] = h
    return h, hs


@pytest.mark.parametrize("reverse", [False, True])
def test_scan_matches_the_generic_loop_and_numpy(backend, reverse):
    rng = np.random.default_rng(0)
    a, b, h0 = rng.normal(size=(5, 3, 4)), rng.normal(size=(5, 3)), rng.normal(size=(3, 4))
    xs = {"a": backend.asarray(a, dtype="float32"), "b": backend.asarray(b, dtype="float32")}
    carry = (backend.asarray(h0, dtype="float32"), backend.asarray(np.float32(0.0)))
    results = [backend.scan(_step(backend), carry, xs, reverse=reverse),
               Backend.scan(backend, _step(backend), carry, xs, reverse=reverse)]  # generic
    want_h, want_hs = _reference(a, b, h0, reverse)
    for (h, count), (hs, b2) in results:
        assert hs.shape == (5, 3, 4) and b2.shape == (5, 3)
        np.testing.assert_allclose(backend.to_numpy(h), want_h, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(backend.to_numpy(hs), want_hs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(backend.to_numpy(b2), 2 * b, rtol=1e-6)
        assert float(backend.to_numpy(count)) == 5.0
    # reverse changes the answer (the test would pass a scan that ignores it otherwise)
    other_h, _ = _reference(a, b, h0, not reverse)
    assert not np.allclose(want_h, other_h)


def test_scan_with_no_outputs_and_one_array(backend):
    xs = backend.asarray(np.arange(6.0).reshape(3, 2), dtype="float32")
    total, ys = backend.scan(lambda c, x: (c + x, None), backend.asarray(np.zeros(2, np.float32)),
                             xs)
    assert ys is None
    np.testing.assert_allclose(backend.to_numpy(total), [6.0, 9.0])
    # outputs as a tree (a dict holding a tuple) come back stacked in the same tree
    for run in (backend.scan, lambda *a, **k: Backend.scan(backend, *a, **k)):
        _, ys = run(lambda c, x: (c, {"x": x[0], "pair": (2 * x[0], c)}),
                    backend.asarray(np.float32(1.0)), [xs])
        assert set(ys) == {"x", "pair"} and ys["pair"][1].shape == (3,)
        np.testing.assert_allclose(backend.to_numpy(ys["pair"][0]),
                                   2 * np.arange(6.0).reshape(3, 2))


@pytest.mark.parametrize("scan", ["backend", "generic"])
def test_scan_refuses_an_empty_loop_and_ragged_time_axes(backend, scan):
    run = backend.scan if scan == "backend" else (
        lambda *a, **k: Backend.scan(backend, *a, **k))
    empty = backend.asarray(np.zeros((0, 2), np.float32))
    with pytest.raises(ValueError, match="length 0.*at least one step"):
        run(lambda c, x: (c, x), backend.asarray(np.float32(0)), empty)
    ragged = (backend.asarray(np.zeros((3, 2), np.float32)),
              backend.asarray(np.zeros((4, 2), np.float32)))
    with pytest.raises(ValueError, match=r"same leading \(time\) axis.*\(3, 2\), \(4, 2\)"):
        run(lambda c, x: (c, None), backend.asarray(np.float32(0)), ragged)
    with pytest.raises(ValueError, match="no arrays"):
        run(lambda c, x: (c, None), backend.asarray(np.float32(0)), ())


def test_jax_scan_is_one_loop_whatever_the_length(jax_backend):
    """Under jit the program holds one `scan` whose body is traced once: its size is the
    same for T = 4 and T = 400 (an unrolled loop would grow a hundredfold)."""
    import jax

    def program_size(length):
        xs = {"a": np.zeros((length, 3, 4), np.float32), "b": np.zeros((length, 3), np.float32)}
        carry = (np.zeros((3, 4), np.float32), np.float32(0))
        jaxpr = jax.make_jaxpr(lambda c, x: jax_backend.scan(_step(jax_backend), c, x))(carry,
                                                                                         xs)
        return len(str(jaxpr).splitlines()), [e.primitive.name for e in jaxpr.eqns]

    short, long = program_size(4), program_size(400)
    assert short == long
    assert "scan" in short[1]
