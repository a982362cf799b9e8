"""What users hand to `fit`, `evaluate` and `predict`, checked once per call before anything
runs: the inputs, the targets against the loss, the parameters against the model.

Each error names the call, the argument, where it is wrong and what to do, instead of a
NumPy message from deep inside or — worse — a plausible number: labels past the model's
classes, fractional labels or a Dense(16)'s parameters in a Dense(32) model would otherwise
be averaged into a loss without a word. Nothing here runs per step; targets are read back
from a device once per call (labels are small), inputs never (only their dtype and shape).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .backends import owner_of, to_numpy
from .layers import Flatten, Sigmoid, Softmax
from .layers.base import Layer, Shape, describe
from .losses import Loss
from .model import Sequential, check_params

__all__ = ["check_inputs", "check_targets", "check_model_params", "kind_name", "prepare_data",
           "check_validation_arrays", "TargetCheck"]


def check_inputs(x: Any, where: str) -> Any:
    """`x: (N, ...)` checked to hold numbers and at least one sample; returned as it is, or as
    a NumPy array if it was a list (or anything else no backend owns)."""
    owner = owner_of(x)
    if owner is None:
        try:
            x = np.asarray(x)
        except ValueError as e:  # ragged nested lists
            raise ValueError(f"{where}: x is not an array of one shape ({e})") from None
    dtype = x.dtype if owner is None else owner.numpy_dtype(x.dtype)
    if dtype.kind not in "biuf":
        raise ValueError(f"{where}: x holds {kind_name(dtype)}; inputs must be numbers (text "
                         "columns of a table? xbackprop.data.load_csv one-hot encodes them)")
    if len(x.shape) == 0 or x.shape[0] == 0:
        raise ValueError(f"{where}: x has no samples (shape {tuple(x.shape)}); give it an array "
                         "of shape (N, ...) with N >= 1")
    return x


def kind_name(dtype: np.dtype) -> str:
    """"text (<U5)", "complex numbers (complex128)", ...: what a non-numeric array holds."""
    kinds = {"U": "text", "S": "bytes", "O": "Python objects", "c": "complex numbers",
             "M": "dates", "m": "time spans", "V": "records"}
    return f"{kinds.get(dtype.kind, 'values')} ({dtype})"


def check_targets(model: Layer, loss: Loss, sample_shape: Shape, y: Any, samples: int,
                  where: str) -> np.ndarray:
    """`y` checked against `loss` for `model`'s outputs on `samples` inputs of
    `sample_shape` (labels within the model's classes, probabilities in range, ...).
    Returns `y` as a NumPy array."""
    host = np.asarray(to_numpy(y))
    if host.ndim == 0 or host.shape[0] != samples:
        raise ValueError(f"{where}: x has {samples} samples but y has "
                         f"{host.shape[0] if host.ndim else 'none (a scalar)'}; give one "
                         "target per sample")
    if type(model).output_shape is Layer.output_shape:
        return host  # a container that does not say what it outputs: nothing to check by
    try:
        outputs = tuple(model.output_shape(tuple(sample_shape)))
    except (ValueError, TypeError):
        return host  # the model cannot take these inputs: its forward pass says why
    try:
        loss.check_target(host, (samples, *outputs))
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    _check_output_range(model, loss, where)
    return host


def _check_output_range(model: Layer, loss: Loss, where: str) -> None:
    """A loss on probabilities (BinaryCrossEntropy) after a built-in layer whose outputs are
    any real number would floor its logs and train on nonsense: say so before any step.
    (The values themselves are checked when the loss is called directly.)"""
    if type(loss).check_prediction is Loss.check_prediction or not isinstance(model, Sequential):
        return
    last = next(layer for layer in reversed(model.layers) if not isinstance(layer, Flatten))
    if type(last).__module__.startswith("xbackprop.") and not isinstance(last,
                                                                         (Sigmoid, Softmax)):
        raise ValueError(
            f"{where}: {describe(loss)} takes probabilities, but the model ends in "
            f"{describe(last)}, whose outputs are any real number. End it with Sigmoid(), or "
            "use BinaryCrossEntropyWithLogits on these outputs (it is also stabler).")


def check_model_params(model: Layer, params: Any, model_state: Any, sample_shape: Shape,
                       where: str) -> None:
    """`params` and `model_state` checked to be `model`'s for inputs of `sample_shape`:
    every array present, of the shape the model makes, nothing extra."""
    if type(model).init is Layer.init:
        return  # a container that makes no parameters of its own: nothing to compare with
    check_params(model, params, sample_shape, model_state, where=f"{where}: ")


def prepare_data(x: Any, y: Any, dtype: np.dtype, where: str, *, integers: bool = False
                 ) -> tuple[np.ndarray, np.ndarray]:
    """(x, y) checked — numbers, finite, one target per sample — and returned as host arrays:
    x as `dtype` (or, with `integers`, for a model that takes integer ids such as token ids,
    as int32), integer labels as int32 and other targets as `dtype`. No shape is assumed
    beyond the sample axis: y may be (N,), (N, outputs) or (N, T) labels of a sequence."""
    x_host, y_host = (a if isinstance(a, np.ndarray) else np.asarray(to_numpy(a))
                      for a in (x, y))  # (a source's batches, every step: no detour)
    if x_host.ndim == 0 or y_host.ndim == 0:
        raise ValueError(f"{where}: x and y are arrays of samples, (N, ...) and (N,) or "
                         f"(N, ...); got shapes {x_host.shape} and {y_host.shape}")
    if x_host.shape[0] != y_host.shape[0]:
        raise ValueError(f"{where}: x has {x_host.shape[0]} samples but y has "
                         f"{y_host.shape[0]}")
    if x_host.shape[0] == 0:
        raise ValueError(f"{where}: no samples")
    for what, a in (("x", x_host), ("y", y_host)):
        if a.dtype.kind not in "biuf":
            raise ValueError(f"{where}: {what} holds {kind_name(a.dtype)}; it must be numbers")
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            bad = ~np.isfinite(a)
            if bad.any():
                raise ValueError(
                    f"{where}: {what} has {int(bad.sum())} NaN or infinite values (first at "
                    f"index {tuple(int(i) for i in np.argwhere(bad)[0])}); clean the data")
    if integers:
        if x_host.dtype.kind not in "biu":
            raise ValueError(f"{where}: the model takes integer ids (its first layer), but x "
                             f"holds {x_host.dtype} values")
        x_dtype: Any = np.int32
    else:
        x_dtype = dtype
    y_dtype = np.int32 if y_host.dtype.kind in "iub" else dtype
    return x_host.astype(x_dtype, copy=False), y_host.astype(y_dtype, copy=False)


def check_validation_arrays(model: Layer, loss: Loss, input_shape: Shape, data: Any,
                            dtype: np.dtype, *, integers: bool = False
                            ) -> tuple[np.ndarray, np.ndarray]:
    """validation_data=(x_val, y_val) checked as the training data are, before training: a
    mistake in it would otherwise surface after the first epoch, or as a plausible but wrong
    val_loss."""
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise ValueError(f"validation_data is a pair (x_val, y_val), not a {type(data).__name__}"
                         f"{f' of {len(data)}' if isinstance(data, (tuple, list)) else ''}")
    x_val, y_val = prepare_data(data[0], data[1], dtype, "validation data", integers=integers)
    if tuple(x_val.shape[1:]) != tuple(input_shape):
        raise ValueError(f"validation data: samples of shape {tuple(x_val.shape[1:])}, but the "
                         f"training samples have shape {tuple(input_shape)}")
    check_targets(model, loss, input_shape, y_val, len(y_val), "validation data")
    return x_val, y_val


class TargetCheck:
    """The targets of one batch after another checked against the loss (`check_targets`),
    with what does not change between batches — the model's output shape, whether its
    outputs suit the loss — worked out at the first."""

    def __init__(self, model: Layer, loss: Loss, sample_shape: Shape) -> None:
        self.model, self.loss, self.sample_shape = model, loss, tuple(sample_shape)
        self.outputs: tuple[int, ...] | None = None
        self.first = True

    def __call__(self, y: np.ndarray, where: str) -> None:
        """Raise ValueError, naming `where`, if `y` (host, one target per sample) holds
        targets the loss cannot mean for the model's outputs."""
        if self.first:
            check_targets(self.model, self.loss, self.sample_shape, y, len(y), where)
            self.first = False
            if type(self.model).output_shape is not Layer.output_shape:
                try:
                    self.outputs = tuple(self.model.output_shape(self.sample_shape))
                except (ValueError, TypeError):
                    self.outputs = None
            return
        if self.outputs is None:
            return
        try:
            self.loss.check_target(y, (len(y), *self.outputs))
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None
