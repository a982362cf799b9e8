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
from .layers.base import Layer, Shape, describe
from .losses import Loss
from .model import check_params

__all__ = ["check_inputs", "check_targets", "check_model_params", "kind_name"]


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
    from .layers import Flatten, Sigmoid, Softmax
    from .model import Sequential

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
