"""Geometry shared by convolution and pooling: kernel sizes, strides, padding, output sizes.

All layers here take NCHW inputs. A padding is resolved, per input size, to
`((top, bottom), (left, right))`, so "same" can pad one more on the bottom/right when the
total is odd (as TensorFlow does).
"""

from __future__ import annotations

import numbers
from typing import Any

from ..backends import Backend
from .base import describe

Pair = tuple[int, int]
Padding = int | Pair | str | tuple[Pair, Pair]


def pair(value: int | tuple[int, int] | list[int], name: str) -> Pair:
    """`3 -> (3, 3)`; `(3, 5)` stays; anything else is an error naming `name`."""
    given = value
    if isinstance(value, numbers.Integral):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Integral) and not isinstance(v, bool)
                       for v in value)):
        raise ValueError(f"{name} must be an int or a pair of ints, not {given!r}")
    return int(value[0]), int(value[1])


def check_padding(padding: Padding) -> None:
    """Fail early, at layer construction, on a padding that `resolve_padding` would reject."""
    if isinstance(padding, str):
        if padding not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid', an int or a pair, not "
                             f"{padding!r}")
        return
    _explicit(padding)


def _explicit(padding: Any) -> tuple[Pair, Pair]:
    if isinstance(padding, int) or (isinstance(padding, (tuple, list)) and len(padding) == 2
                                    and all(isinstance(p, int) for p in padding)):
        ph, pw = pair(padding, "padding")
        pads = ((ph, ph), (pw, pw))
    elif (isinstance(padding, (tuple, list)) and len(padding) == 2
          and all(isinstance(p, (tuple, list)) and len(p) == 2 for p in padding)):
        pads = (pair(tuple(padding[0]), "padding"), pair(tuple(padding[1]), "padding"))
    else:
        raise ValueError(f"padding must be 'same', 'valid', an int, a pair or "
                         f"((top, bottom), (left, right)), not {padding!r}")
    if any(p < 0 for side in pads for p in side):
        raise ValueError(f"padding must not be negative, got {padding!r}")
    return pads


def resolve_padding(padding: Padding, in_hw: Pair, kernel: Pair, stride: Pair,
                    dilation: Pair = (1, 1)) -> tuple[Pair, Pair]:
    """`((top, bottom), (left, right))` for an input of spatial size `in_hw`.

    "same": output size ceil(in / stride), padding split evenly, the odd one at the end;
    "valid": no padding.
    """
    if padding == "valid":
        return (0, 0), (0, 0)
    if padding == "same":
        pads = []
        for size, k, s, d in zip(in_hw, kernel, stride, dilation):
            out = -(-size // s)
            total = max((out - 1) * s + d * (k - 1) + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        return pads[0], pads[1]
    return _explicit(padding)


def output_hw(in_hw: Pair, kernel: Pair, stride: Pair, dilation: Pair,
              pads: tuple[Pair, Pair], layer: Any) -> Pair:
    """Output height and width: ⌊(in + pad - d (k - 1) - 1) / s⌋ + 1 (windows that would
    run past the padded input are dropped). Raises if no window fits."""
    out = []
    for size, k, s, d, (before, after) in zip(in_hw, kernel, stride, dilation, pads):
        span = d * (k - 1) + 1
        if size + before + after < span:
            raise ValueError(f"{describe(layer)}: input of spatial size {tuple(in_hw)} (padded "
                             f"{size + before + after}) is smaller than the window ({span})")
        out.append((size + before + after - span) // s + 1)
    return out[0], out[1]


def check_nchw(layer: Any, in_shape: tuple[int, ...]) -> None:
    if len(in_shape) != 3:
        raise ValueError(f"{describe(layer)} takes NCHW inputs (N, C, H, W), so a per-sample shape "
                         f"(C, H, W), not {tuple(in_shape)}")


def from_columns(xp: Any, values: Any, channels: int, n: int, out_hw: Pair, width: int) -> Any:
    """Values laid out as im2col's columns, `(channels, N·OH·width)` (or flat), as
    `(N, channels, OH, OW)`: the junk columns past OW dropped, the batch axis first."""
    oh, ow = out_hw
    y = xp.reshape(values, (channels, n, oh, width))[:, :, :, :ow]
    return xp.permute_dims(y, (1, 0, 2, 3))


def to_columns(backend: Backend, dy: Any, width: int) -> Any:
    """The adjoint layout: `dy: (N, C, OH, OW)` as `(C, N·OH·width)`, zero in the junk
    columns (which so get no gradient)."""
    dy = backend.xp.permute_dims(dy, (1, 0, 2, 3))
    if width > dy.shape[3]:
        dy = backend.pad(dy, ((0, 0), (0, 0), (0, 0), (0, width - dy.shape[3])))
    return backend.xp.reshape(dy, (dy.shape[0], -1))
