"""Patches: the primitives of convolution and pooling, mixed into `Backend`.

im2col turns the windows of an image into the columns of one matrix (a convolution is then
one product), col2im is its adjoint (each column's values added back where they were read),
pad widens an image, first_argmax picks each window's maximum and scatter_rows routes a
gradient back to it. Generic versions here run on the Array API standard; a backend
overrides one where its library has something faster (a strided view, its own pad, one
scatter kernel), and tests/backends/test_primitives.py checks each against these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

Pair = tuple[int, int]
Array = Any  # an array of some backend: numpy.ndarray, cupy.ndarray, jax.Array (or a tracer)

if TYPE_CHECKING:  # for the checker only: _base imports this module
    from ._base import Backend

__all__ = ["PatchPrimitives", "library_pad", "Array", "Pair"]


class PatchPrimitives:
    """The patch primitives of `Backend` (backends/_base.py), which supplies `name`, `xp`,
    `strided_views` and `slice_add`."""

    name: ClassVar[str]
    xp: Any
    strided_views: ClassVar[bool] = False

    def slice_add(self, target: Array, index: Any, values: Array) -> Array:
        raise NotImplementedError  # Backend's

    def pad(self, x: Array, widths: Sequence[Pair], value: float = 0.0) -> Array:
        """`x` with `widths[i] = (before, after)` elements of `value` added along axis i.
        The standard has no pad: blocks of `value` are concatenated."""
        xp = self.xp
        for axis, (before, after) in enumerate(widths):
            if not (before or after):
                continue
            shape = tuple(x.shape)
            blocks = [xp.full(shape[:axis] + (count,) + shape[axis + 1:], value, dtype=x.dtype)
                      for count in (before, after)]
            x = xp.concat([blocks[0], x, blocks[1]], axis=axis)
        return x

    def im2col(self, x: Array, kernel: Pair, stride: Pair, dilation: Pair,
               pads: tuple[Pair, Pair], out_hw: Pair, pad_value: float = 0.0
               ) -> tuple[Array, int]:
        """The patches of `x: (N, C, H, W)` as columns: `(cols, row_width)` with
        `cols: (C·KH·KW, N·OH·row_width)`.

        Row `c·KH·KW + i·KW + j` holds input channel c at kernel tap (i, j) for every output
        position; column `(n·OH + oh)·row_width + ow` is output position (oh, ow) of sample
        n. `row_width` ≥ OW: columns with ow ≥ OW are junk that callers slice off (and
        must give zero gradient). `x` is padded with `pad_value` by `pads` first.

        With stride 1 each tap is one contiguous shifted run of the flattened, padded
        image, read over full padded rows (row_width = padded W): long copies instead of
        one short copy per output row. Otherwise taps are strided 2-D slices. Where the
        backend declares `strided_views`, the columns are one copy of a (C, KH, KW, N, ...)
        view of the padded input (of `x` itself without padding); otherwise the taps are
        sliced and stacked.
        """
        xp = self.xp
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
        n, c, h, w = x.shape
        (top, bottom), (left, right) = pads
        wp = w + left + right
        if (sh, sw) == (1, 1):
            # the last tap reads oh full rows from row (kh-1)·dh, column (kw-1)·dw: pad the
            # bottom so that read stays inside the flattened image
            reach = (kh - 1) * dh * wp + (kw - 1) * dw + oh * wp
            bottom = max(bottom, -(-reach // wp) - h - top)
        hp = h + top + bottom
        row_width = wp if (sh, sw) == (1, 1) else ow
        padding = ((0, 0), (0, 0), (top, bottom), (left, right))
        if self.strided_views:
            padded = self.pad(x, padding, pad_value) if top or bottom or left or right else x
            sn, sc, sr = c * hp * wp, hp * wp, wp  # element strides of (N, C, Hp, Wp)
            if (sh, sw) == (1, 1):  # tap (i, j): oh·Wp consecutive elements from (i·dh, j·dw)
                view = self.strided_view(padded, (c, kh, kw, n, oh * wp),
                                         (sc, dh * sr, dw, sn, 1))
            else:
                view = self.strided_view(padded, (c, kh, kw, n, oh, ow),
                                         (sc, dh * sr, dw, sn, sh * sr, sw))
            return xp.reshape(view, (c * kh * kw, n * oh * row_width)), row_width  # one copy
        planes = xp.permute_dims(x, (1, 0, 2, 3))   # (C, N, H, W): channel-major, so the
        if top or bottom or left or right:          # padded copy is laid out for the taps
            planes = self.pad(planes, padding, pad_value)
        if (sh, sw) == (1, 1):
            flat = xp.reshape(planes, (c, n, hp * wp))
            taps = [flat[:, :, i * dh * wp + j * dw: i * dh * wp + j * dw + oh * wp]
                    for i in range(kh) for j in range(kw)]                  # (C, N, OH·Wp)
        else:
            taps = [planes[:, :, _tap(i, sh, dh, oh), _tap(j, sw, dw, ow)]
                    for i in range(kh) for j in range(kw)]                  # (C, N, OH, OW)
        cols = xp.stack(taps, axis=1)                                      # (C, KH·KW, N, ...)
        return xp.reshape(cols, (c * kh * kw, n * oh * row_width)), row_width

    def strided_view(self, x: Array, shape: Sequence[int], strides: Sequence[int]
                     ) -> Array:
        """A read-only view of the memory of `x` laid out C-contiguously (a copy first if it
        is not), with `shape` and `strides` counted in elements: windows that overlap in
        memory, for `im2col`. Only where `strided_views` is declared (the Array API standard
        has no such views)."""
        raise NotImplementedError(
            f"backend {self.name!r} has no strided views (strided_views is False): im2col "
            "slices and stacks its patches instead")

    def col2im(self, cols: Array, x_shape: Sequence[int], kernel: Pair, stride: Pair,
               dilation: Pair, pads: tuple[Pair, Pair], out_hw: Pair, row_width: int
               ) -> Array:
        """The adjoint of `im2col`: every column entry summed back into the input position
        it was read from. `cols: (C·KH·KW, N·OH·row_width)` -> `(N, C, H, W)`."""
        xp = self.xp
        (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, stride, dilation, out_hw
        n, c, h, w = x_shape
        (top, bottom), (left, right) = pads
        hp, wp = h + top + bottom, w + left + right
        cols = xp.reshape(cols, (c, kh * kw, n, oh * row_width))
        if (sh, sw) == (1, 1):
            length = oh * wp
            size = max(hp * wp, (kh - 1) * dh * wp + (kw - 1) * dw + length)
            flat = xp.zeros((c, n, size), dtype=cols.dtype)
            for t in range(kh * kw):
                start = (t // kw) * dh * wp + (t % kw) * dw
                flat = self.slice_add(flat, (slice(None), slice(None),
                                             slice(start, start + length)), cols[:, t, ...])
            planes = xp.reshape(flat[:, :, :hp * wp], (c, n, hp, wp))
        else:
            cols = xp.reshape(cols, (c, kh * kw, n, oh, ow))
            planes = xp.zeros((c, n, hp, wp), dtype=cols.dtype)
            for t in range(kh * kw):
                index = (slice(None), slice(None), _tap(t // kw, sh, dh, oh),
                         _tap(t % kw, sw, dw, ow))
                planes = self.slice_add(planes, index, cols[:, t, ...])
        return xp.permute_dims(planes[:, :, top:hp - bottom, left:wp - right], (1, 0, 2, 3))

    def first_argmax(self, x: Array, x_max: Array) -> Array:
        """For `x: (K, M)` and its column maxima `x_max: (M,)`, the first row holding each
        column's maximum (ties go to the first, on every backend)."""
        return self.xp.argmax(x, axis=0)

    def scatter_rows(self, index: Array, values: Array, rows: int) -> Array:
        """`(rows, M)` zeros with `values[m]` at row `index[m]` of column m, for `index: (M,)`
        integers in [0, rows) and `values: (M,)`: the adjoint of picking one row per column
        (`x[index[m], m]`), which is how max pooling routes dy to each window's arg-max.
        Generic: a one-hot mask times the values, three passes over (rows, M). (A value
        that is not finite may also reach the other rows of its column, as 0 · inf is NaN:
        only a diverged step has one.)"""
        xp = self.xp
        hit = xp.arange(rows, dtype=index.dtype)[:, None] == index[None, :]
        return xp.astype(hit, values.dtype) * values[None, :]


def library_pad(backend: Backend, x: Array, widths: Sequence[Pair], value: float = 0.0
                ) -> Array:
    """`Backend.pad` by the library's own `pad` (NumPy, CuPy, JAX): one copy."""
    return backend.xp.pad(x, tuple(widths), constant_values=value)


def _tap(offset: int, stride: int, dilation: int, out: int) -> slice:
    """The slice of input rows that kernel tap `offset` reads for `out` output rows."""
    start = offset * dilation
    return slice(start, start + stride * (out - 1) + 1, stride)
