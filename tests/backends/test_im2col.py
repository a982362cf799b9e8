"""The patch-extraction and padding primitives every backend provides: im2col reads the
right pixels, and col2im is exactly its adjoint (<col2im(c), x> = <c, im2col(x)>), for
strides, dilations, asymmetric padding and windows that do not tile the input; pad is
np.pad, by the library or by the standard-only default."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.backends import to_numpy

GEOMETRIES = [
    # (N, C, H, W), kernel, stride, dilation, pads
    ((2, 3, 5, 6), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),
    ((1, 2, 7, 5), (2, 3), (2, 1), (1, 1), ((0, 0), (0, 0))),
    ((3, 1, 6, 7), (3, 2), (1, 2), (2, 1), ((1, 0), (2, 1))),
    ((2, 2, 8, 8), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1))),
    ((1, 1, 4, 4), (1, 1), (1, 1), (1, 1), ((0, 0), (0, 0))),
    ((2, 1, 5, 5), (2, 2), (1, 1), (2, 2), ((0, 1), (1, 0))),
]


def _out_hw(shape, kernel, stride, dilation, pads):
    return tuple((shape[2 + a] + sum(pads[a]) - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
                 for a in range(2))


def _reference_patches(x, kernel, stride, dilation, pads, out_hw, pad_value=0.0):
    """Patches by explicit loops: (C*KH*KW, N, OH, OW)."""
    n, c, _, _ = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), pads[0], pads[1]), constant_values=pad_value)
    kh, kw = kernel
    out = np.zeros((c * kh * kw, n, *out_hw))
    for ci in range(c):
        for i in range(kh):
            for j in range(kw):
                for oh in range(out_hw[0]):
                    for ow in range(out_hw[1]):
                        out[(ci * kh + i) * kw + j, :, oh, ow] = padded[
                            :, ci, oh * stride[0] + i * dilation[0], ow * stride[1] + j * dilation[1]]
    return out


@pytest.mark.parametrize("shape,kernel,stride,dilation,pads", GEOMETRIES)
def test_im2col_reads_the_right_pixels(backend, shape, kernel, stride, dilation, pads):
    x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    out_hw = _out_hw(shape, kernel, stride, dilation, pads)
    cols, width = backend.im2col(backend.asarray(x), kernel, stride, dilation, pads, out_hw,
                                 pad_value=-7.0)
    cols = to_numpy(cols).reshape(-1, shape[0], out_hw[0], width)
    assert width >= out_hw[1]
    expected = _reference_patches(x, kernel, stride, dilation, pads, out_hw, pad_value=-7.0)
    np.testing.assert_array_equal(cols[..., :out_hw[1]], expected.astype(np.float32))


@pytest.mark.parametrize("shape,kernel,stride,dilation,pads", GEOMETRIES)
def test_col2im_is_the_adjoint_of_im2col(backend, shape, kernel, stride, dilation, pads):
    rng = np.random.default_rng(1)
    x = rng.normal(size=shape)
    out_hw = _out_hw(shape, kernel, stride, dilation, pads)
    cols, width = backend.im2col(backend.asarray(x, dtype="float32"), kernel, stride, dilation,
                                 pads, out_hw)
    c = rng.normal(size=(cols.shape[0], shape[0], out_hw[0], width))
    c[..., out_hw[1]:] = 0.0  # junk columns carry no gradient
    back = backend.col2im(backend.asarray(c.reshape(cols.shape), dtype="float32"), shape, kernel,
                          stride, dilation, pads, out_hw, width)
    assert tuple(back.shape) == shape
    lhs = float(np.sum(to_numpy(back).astype(np.float64) * x))
    rhs = float(np.sum(c.reshape(cols.shape) * to_numpy(cols).astype(np.float64)))
    assert lhs == pytest.approx(rhs, rel=1e-5)


@pytest.mark.parametrize("rows", [3, 300])  # NumPy scores rows in uint8 below 256, int32 above
def test_first_argmax_takes_the_first_of_tied_maxima(backend, rows):
    x = np.zeros((rows, 5), np.float32)
    x[1, 0] = x[2, 0] = 7       # tie: row 1 wins
    x[:, 1] = 4                 # all tied: row 0
    x[rows - 1, 2] = 1          # the last row
    x[:, 3] = -np.arange(rows)  # row 0
    x[rows // 2, 4] = 2
    a = backend.asarray(x)
    got = backend.to_numpy(backend.first_argmax(a, backend.xp.max(a, axis=0)))
    np.testing.assert_array_equal(got, [1, 0, rows - 1, 0, rows // 2])


@pytest.mark.parametrize("widths,value", [
    (((1, 2), (0, 0), (3, 1)), 0.0),
    (((0, 0), (2, 0), (0, 1)), -np.inf),  # max-pooling pads with -inf
    (((0, 0), (0, 0), (0, 0)), 5.0),
])
def test_pad_matches_numpy_and_its_standard_default(backend, widths, value):
    """Every backend's pad, and the standard-only default (blocks concatenated) that a
    backend without a pad of its own inherits, give NumPy's np.pad."""
    from xbackprop.backends import Backend

    x = np.random.default_rng(2).normal(size=(2, 3, 4)).astype(np.float32)
    expected = np.pad(x, widths, constant_values=value)
    a = backend.asarray(x)
    for padded in (backend.pad(a, widths, value), Backend.pad(backend, a, widths, value)):
        assert backend.numpy_dtype(padded.dtype) == np.float32
        np.testing.assert_array_equal(to_numpy(padded), expected)
