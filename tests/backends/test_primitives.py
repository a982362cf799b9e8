"""Every speed primitive a backend overrides gives the numbers of the generic path it
replaces (the `Backend` default, written against the Array API standard), on every backend:
patch columns read through strided views and the sliced-and-stacked ones, non-overlapping
windows copied into place and added onto zeros, max pooling's routing (`scatter_rows`),
ReLU's backward (`relu_grad`), first arg-maxima by scores and by `argmax`, and fused Adam
updates against the rule op by op, bit for bit, split across threads or not."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.backends import Backend, _threads, to_numpy

GEOMETRIES = [
    # (N, C, H, W), kernel, stride, dilation, pads
    ((2, 3, 5, 6), (3, 3), (1, 1), (1, 1), ((1, 1), (1, 1))),     # conv 3x3, "same"
    ((3, 1, 6, 7), (3, 2), (1, 2), (2, 1), ((1, 0), (2, 1))),     # dilated, asymmetric
    ((2, 2, 8, 8), (3, 3), (2, 2), (1, 1), ((1, 1), (1, 1))),     # overlapping windows
    ((2, 3, 6, 8), (2, 2), (2, 2), (1, 1), ((0, 0), (0, 0))),     # pooling 2x2: tiles
    ((1, 2, 7, 5), (2, 2), (2, 3), (1, 1), ((1, 0), (0, 0))),     # apart, padded, not tiled
    ((1, 1, 9, 9), (2, 2), (3, 3), (2, 2), ((0, 0), (0, 0))),     # dilated, with holes
]


def _out_hw(shape, kernel, stride, dilation, pads):
    return tuple((shape[2 + a] + sum(pads[a]) - dilation[a] * (kernel[a] - 1) - 1) // stride[a]
                 + 1 for a in range(2))


@pytest.mark.parametrize("shape,kernel,stride,dilation,pads", GEOMETRIES)
def test_im2col_through_strided_views_gives_the_stacked_slices(backend, monkeypatch, shape,
                                                                kernel, stride, dilation, pads):
    x = backend.asarray(np.random.default_rng(0).normal(size=shape), dtype="float32")
    geometry = (kernel, stride, dilation, pads, _out_hw(shape, kernel, stride, dilation, pads))
    viewed, width = backend.im2col(x, *geometry, pad_value=-3.0)
    monkeypatch.setattr(backend, "strided_views", False)  # the generic path
    stacked, generic_width = backend.im2col(x, *geometry, pad_value=-3.0)
    assert width == generic_width
    np.testing.assert_array_equal(to_numpy(viewed), to_numpy(stacked))


def test_strided_view_reads_a_non_contiguous_array_as_laid_out_contiguously(backend):
    x = backend.asarray(np.arange(24.0).reshape(2, 3, 4), dtype="float32")
    t = backend.xp.permute_dims(x, (2, 1, 0))  # not contiguous
    if not backend.strided_views:
        with pytest.raises(NotImplementedError, match="im2col slices and stacks"):
            backend.strided_view(t, (3, 2), (2, 1))
        return
    view = backend.strided_view(t, (3, 2), (2, 1))
    flat = np.ascontiguousarray(to_numpy(t)).reshape(-1)
    np.testing.assert_array_equal(to_numpy(view), flat[[[0, 1], [2, 3], [4, 5]]])


@pytest.mark.parametrize("shape,kernel,stride,dilation,pads", GEOMETRIES)
def test_col2im_gives_the_generic_sums(backend, shape, kernel, stride, dilation, pads):
    out_hw = _out_hw(shape, kernel, stride, dilation, pads)
    x = backend.asarray(np.zeros(shape), dtype="float32")
    cols, width = backend.im2col(x, kernel, stride, dilation, pads, out_hw)
    c = np.random.default_rng(1).normal(size=(cols.shape[0], shape[0], out_hw[0], width))
    c[..., out_hw[1]:] = 0.0  # junk columns carry no gradient
    c = backend.asarray(c.reshape(cols.shape), dtype="float32")
    ours = backend.col2im(c, shape, kernel, stride, dilation, pads, out_hw, width)
    generic = Backend.col2im(backend, c, shape, kernel, stride, dilation, pads, out_hw, width)
    assert tuple(ours.shape) == shape
    np.testing.assert_array_equal(to_numpy(ours), to_numpy(generic))


@pytest.mark.parametrize("rows", [4, 9, 300])
def test_scatter_rows_gives_the_one_hot_products(backend, rows):
    rng = np.random.default_rng(2)
    index = rng.integers(0, rows, 1000).astype(np.uint8 if rows < 256 else np.int32)
    values = rng.normal(size=1000).astype(np.float32)
    index, values = backend.asarray(index), backend.asarray(values)
    ours = to_numpy(backend.scatter_rows(index, values, rows))
    generic = to_numpy(Backend.scatter_rows(backend, index, values, rows))
    assert ours.shape == (rows, 1000)
    np.testing.assert_array_equal(ours, generic)
    np.testing.assert_array_equal(ours.sum(axis=0), to_numpy(values))  # one row per column


def test_relu_grad_gives_the_masked_products(backend):
    rng = np.random.default_rng(3)
    y = np.maximum(rng.normal(size=(64, 33)), 0).astype(np.float32)
    y[0, :5] = 0.0  # y = 0: no gradient, as PyTorch and JAX
    dy = rng.normal(size=y.shape).astype(np.float32)
    y, dy = backend.asarray(y), backend.asarray(dy)
    ours = to_numpy(backend.relu_grad(y, dy))
    np.testing.assert_array_equal(ours, to_numpy(Backend.relu_grad(backend, y, dy)))
    assert not ours[0, :5].any()


@pytest.mark.parametrize("rows", [4, 300])
def test_first_argmax_gives_argmax_with_ties_and_nans(backend, rows):
    rng = np.random.default_rng(4)
    x = rng.integers(0, 3, (rows, 500)).astype(np.float32)  # many ties
    x[:, 7] = np.nan                                        # all NaN: the first
    x[[1, rows - 1], 8] = np.nan                            # some NaN: the first of them
    a = backend.asarray(x)
    want = to_numpy(Backend.first_argmax(backend, a, backend.xp.max(a, axis=0)))
    assert want[7] == 0 and want[8] == 1
    np.testing.assert_array_equal(to_numpy(backend.first_argmax(a, backend.xp.max(a, axis=0))),
                                  want)


def test_torch_first_argmax_off_the_host_counts_nan_rows_as_hits():
    """On a GPU the torch backend finds NaN columns in its one pass (no read-back): the same
    answers, checked here on the CPU with that branch forced."""
    try:
        backend = xb.get_backend("torch:cpu")
    except xb.BackendUnavailableError as e:
        pytest.skip(f"backend torch: {e}")
    device_like = type(backend)("cpu")
    device_like.host_arrays = False
    x = np.random.default_rng(5).integers(0, 3, (4, 300)).astype(np.float32)
    x[:, 3] = np.nan
    x[2, 4] = np.nan
    a = backend.asarray(x)
    got = to_numpy(device_like.first_argmax(a, a.amax(0)))
    np.testing.assert_array_equal(got, to_numpy(backend.first_argmax(a, a.amax(0))))
    assert got[3] == 0 and got[4] == 2


ADAMS = {"adam": lambda: xb.optim.adam(1e-2),
         "adamw": lambda: xb.optim.adamw(1e-2, b2=0.99, weight_decay=0.1),
         "adam+L2": lambda: xb.optim.adam(3e-3, weight_decay=0.01)}


@pytest.mark.parametrize("threads", ["1", "3"])
@pytest.mark.parametrize("name", list(ADAMS))
def test_fused_adam_gives_the_bits_of_the_rule_op_by_op(backend, monkeypatch, name, threads):
    """Large enough that NumPy splits it across threads, with a parameter that is not
    contiguous (updated op by op) and one in float64 (where the backend has it)."""
    monkeypatch.setenv(_threads.THREADS_ENV, threads)
    rng = np.random.default_rng(6)
    params = {"W": rng.normal(size=(700, 300)), "b": rng.normal(size=(300,)),
              "T": rng.normal(size=(40, 30)).T}
    grads = [{k: rng.normal(size=v.shape) * s for k, v in params.items()} for s in (1, 1e-3)]

    def run(fused: bool) -> list:
        p = xb.tree_to_backend(params, backend, dtype="float32")
        if backend.name == "numpy":
            p["T"] = p["T"].T.copy().T  # a transposed view: not C-contiguous
        opt = ADAMS[name]()
        state = opt.init(p)
        if not fused:
            monkeypatch.setattr(type(backend), "fused_update", lambda self, name: None)
        for g in grads:
            p, state = opt.update(p, xb.tree_to_backend(g, backend, dtype="float32"), state,
                                  inplace=True)
        monkeypatch.undo()
        monkeypatch.setenv(_threads.THREADS_ENV, threads)
        return [to_numpy(a) for a in xb.tree.tree_leaves((p, state.slots))]

    if backend.fused_update("adam") is None:
        pytest.skip(f"backend {backend.name}: Adam runs op by op (no fused form)")
    for a, b in zip(run(True), run(False)):
        np.testing.assert_array_equal(a, b)


def test_split_covers_the_range_once_in_parts_of_whole_grains(monkeypatch):
    monkeypatch.setenv(_threads.THREADS_ENV, "3")
    seen = []
    _threads.split(lambda lo, hi: seen.append((lo, hi)), 1000, 64)
    assert sorted(seen) == [(0, 384), (384, 768), (768, 1000)]
    seen.clear()
    _threads.split(lambda lo, hi: seen.append((lo, hi)), 100, 64)  # too short to split
    assert seen == [(0, 100)]


def test_split_raises_what_a_part_raised(monkeypatch):
    monkeypatch.setenv(_threads.THREADS_ENV, "2")

    def part(lo: int, hi: int) -> None:
        if lo:
            raise ArithmeticError(f"part from {lo}")
    with pytest.raises(ArithmeticError, match="part from 64"):
        _threads.split(part, 128, 64)


@pytest.mark.parametrize("value", ["0", "two", "-1"])
def test_a_bad_thread_count_is_an_error_naming_it(monkeypatch, value):
    monkeypatch.setenv(_threads.THREADS_ENV, value)
    with pytest.raises(ValueError, match=f"XBACKPROP_NUMPY_THREADS={value!r}"):
        _threads.thread_count()
