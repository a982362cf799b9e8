"""Pooling forward passes against independent references (jax.lax.reduce_window and plain
loops), arg-max routing, and shapes for windows that overlap or do not tile the input."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb

CONFIGS = [
    dict(kernel_size=2),                              # tiles (or drops the odd last row)
    dict(kernel_size=3, stride=2),                    # overlapping windows
    dict(kernel_size=(2, 3), stride=(1, 2), padding=1),
    dict(kernel_size=3, stride=2, padding="same"),
    dict(kernel_size=3, stride=1, padding=1),         # stride 1: the long-copy path
]


def _reference(x, kind, kernel, stride, pads):
    """Pooling by explicit loops over windows (padding: -inf for max, 0 for average)."""
    fill = -np.inf if kind == "max" else 0.0
    padded = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]), constant_values=fill)
    oh = (padded.shape[2] - kernel[0]) // stride[0] + 1
    ow = (padded.shape[3] - kernel[1]) // stride[1] + 1
    out = np.empty((*x.shape[:2], oh, ow))
    for i in range(oh):
        for j in range(ow):
            window = padded[:, :, i * stride[0]:i * stride[0] + kernel[0],
                            j * stride[1]:j * stride[1] + kernel[1]]
            out[:, :, i, j] = window.max(axis=(2, 3)) if kind == "max" else window.mean(
                axis=(2, 3))
    return out


@pytest.mark.parametrize("config", CONFIGS, ids=[str(c) for c in CONFIGS])
@pytest.mark.parametrize("cls,kind", [(xb.MaxPool2D, "max"), (xb.AvgPool2D, "avg")])
def test_pool_forward_matches_loops(backend, cls, kind, config):
    layer = cls(**config)
    x = np.random.default_rng(0).normal(size=(2, 3, 7, 9))
    kernel = xb.layers.window.pair(layer.kernel_size, "kernel_size")
    stride = layer._stride()
    pads = xb.layers.window.resolve_padding(layer.padding, (7, 9), kernel, stride)
    expected = _reference(x, kind, kernel, stride, pads)
    y = xb.to_numpy(layer(None, backend.asarray(x, dtype="float32")))
    assert y.shape == expected.shape == (2, 3, *layer.output_shape((3, 7, 9))[1:])
    np.testing.assert_allclose(y, expected, rtol=1e-6, atol=1e-6)


def test_maxpool_matches_lax_reduce_window(jax_backend):
    import jax

    layer = xb.MaxPool2D(3, stride=2)
    x = np.random.default_rng(1).normal(size=(2, 2, 9, 8)).astype(np.float32)
    expected = jax.lax.reduce_window(x, -np.inf, jax.lax.max, (1, 1, 3, 3), (1, 1, 2, 2), "VALID")
    np.testing.assert_array_equal(layer(None, x), np.asarray(expected))


def test_maxpool_routes_gradient_to_the_first_of_tied_maxima(backend):
    """A window of equal values sends all of dy to its first (top-left) element, the same on
    every backend."""
    layer = xb.MaxPool2D(2)
    x = backend.asarray(np.ones((1, 1, 4, 4)), dtype="float32")
    y, cache = layer.forward(None, x)
    dx, _ = layer.backward(None, cache, backend.asarray(np.arange(1.0, 5.0).reshape(1, 1, 2, 2),
                                                        dtype="float32"))
    expected = np.zeros((4, 4))
    expected[0, 0], expected[0, 2], expected[2, 0], expected[2, 2] = 1, 2, 3, 4
    np.testing.assert_array_equal(xb.to_numpy(dx)[0, 0], expected)


def test_maxpool_routes_the_gradient_of_a_nan_window_to_its_first_nan(backend):
    """A window whose maximum is NaN sends dy to its first NaN, as argmax and PyTorch's max
    pooling do, on every backend: never nowhere (which hid the NaN from the gradient), never
    to a neighbour."""
    layer = xb.MaxPool2D(2)
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = np.nan     # two NaNs in the top-left window
    x[0, 0, 3, 3] = np.nan                     # a NaN where the maximum would be
    y, cache = layer.forward(None, backend.asarray(x, dtype="float32"))
    assert np.isnan(xb.to_numpy(y)[0, 0, [0, 1], [0, 1]]).all()
    dx, _ = layer.backward(None, cache, backend.asarray(np.arange(1.0, 5.0).reshape(1, 1, 2, 2),
                                                        dtype="float32"))
    expected = np.zeros((4, 4))
    expected[0, 1], expected[1, 3], expected[3, 1], expected[3, 3] = 1, 2, 3, 4
    np.testing.assert_array_equal(xb.to_numpy(dx)[0, 0], expected)
    # the routing primitive itself, on a window wider than one byte of scores
    cols = np.zeros((300, 3))
    cols[[7, 250], 1] = np.nan
    cols[299, 2] = 1.0
    arg = backend.first_argmax(backend.asarray(cols), backend.asarray(np.max(cols, axis=0)))
    assert xb.to_numpy(arg).tolist() == [0, 7, 299]


def test_overlapping_windows_sum_their_gradients(backend):
    """With kernel 3 and stride 2 the centre column belongs to two windows: its gradient is
    the sum from both (AvgPool: 1/9 from each)."""
    layer = xb.AvgPool2D(3, stride=2)
    x = backend.asarray(np.zeros((1, 1, 3, 5)), dtype="float32")
    _, cache = layer.forward(None, x)
    dx, _ = layer.backward(None, cache, backend.asarray(np.ones((1, 1, 1, 2)), dtype="float32"))
    np.testing.assert_allclose(xb.to_numpy(dx)[0, 0, 0], np.array([1, 1, 2, 1, 1]) / 9,
                               rtol=1e-6)


def test_windows_that_do_not_tile_drop_the_uncovered_rows(backend):
    layer = xb.MaxPool2D(2)
    assert layer.output_shape((1, 5, 7)) == (1, 2, 3)
    x = backend.asarray(np.arange(35.0).reshape(1, 1, 5, 7), dtype="float32")
    _, cache = layer.forward(None, x)
    dx, _ = layer.backward(None, cache, backend.asarray(np.ones((1, 1, 2, 3)), dtype="float32"))
    dx = xb.to_numpy(dx)[0, 0]
    assert dx[4].sum() == 0 and dx[:, 6].sum() == 0  # never in a window
    assert dx.sum() == 6


def test_padding_more_than_half_the_window_is_refused():
    with pytest.raises(ValueError, match="more than half the window"):
        xb.MaxPool2D(2, padding=2).output_shape((1, 8, 8))


def test_global_average_pool(backend):
    x = np.random.default_rng(2).normal(size=(2, 3, 4, 5))
    layer = xb.GlobalAvgPool2D()
    y, cache = layer.forward(None, backend.asarray(x, dtype="float32"))
    np.testing.assert_allclose(xb.to_numpy(y), x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)
    dx, _ = layer.backward(None, cache, backend.asarray(np.ones((2, 3)), dtype="float32"))
    np.testing.assert_allclose(xb.to_numpy(dx), np.full(x.shape, 1 / 20), rtol=1e-6)
    assert layer.output_shape((3, 4, 5)) == (3,)
