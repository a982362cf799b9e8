"""Saving and loading: a training state (`save_checkpoint`, `load_checkpoint`) or a trained
model (`save_model`, `load_model`) in one file, and what a file holds without loading it
(`checkpoint_info`).

The header's `__metadata__` holds, as JSON strings, everything that is not an array: the
format ("xbackprop") and its version, the kind ("checkpoint" or "model"), the tree
(records.py), the step, the model's and the loss's configuration (`xbackprop.config`), one
sample's input shape, history, metrics, your metadata; the xbackprop version, the backend,
device and dtype it was saved from, the time, and the integrity check.
Reading checks everything before using it: a file of a newer format, for another
architecture, or not an xbackprop file is a `CheckpointError` naming the file and the problem.

Format versions: 2 (this one) checks the whole file, header and data (`crc32`, codec.py);
1 (files written before) checked the tensor bytes alone (`data_crc32`), which is still
checked when such a file loads. Either way a file without its checksum is refused unless
the caller asks to load it unchecked (`verify=False`, which warns), and parameters must be
floating point (a dtype changed from F32 to I32 in a file of format 1, which its checksum
does not cover, is refused so). A model with NaN or infinite values is refused at saving
unless asked for (`allow_nonfinite=True`), and reported by a warning at loading.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..backends import Backend, DtypeError, backend_of, get_backend, owner_of
from ..callbacks.history import History
from ..config import ConfigError, from_config, to_config
from ..layers.base import Layer, describe
from ..losses import Loss, get_loss
from ..model import check_params
from ..train import TrainState
from ..tree import tree_paths
from ..version import __version__
from .codec import SafetensorsFile, parse_json, write_safetensors
from .errors import (
    ArchitectureMismatchError,
    CheckpointError,
    CheckpointVersionError,
    CorruptCheckpointError,
    NotACheckpointError,
)
from .records import check_record, decode_tree, encode_tree, to_json

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_info", "save_model", "load_model",
           "Checkpoint", "CheckpointInfo", "SavedModel", "FORMAT", "FORMAT_VERSION",
           "model_difference"]

FORMAT = "xbackprop"
#: the version of the layout inside the safetensors file; a reader refuses newer ones.
#: 2: the checksum covers the header's tensor table and metadata as well as the data
FORMAT_VERSION = 2


class Checkpoint(NamedTuple):
    """What `load_checkpoint` returns: the state on the chosen backend, the model (rebuilt
    from its stored configuration, or the one you passed), and what the header says."""

    state: Any  # a TrainState
    model: Layer | None
    history: Any  # a History, or None
    metadata: dict[str, Any]
    metrics: dict[str, float]
    step: int
    input_shape: tuple[int, ...] | None
    loss: Loss | None
    format_version: int
    saved_backend: str
    saved_dtype: str
    saved_at: str  # ISO 8601, UTC
    path: Path


class SavedModel(NamedTuple):
    """What `load_model` returns: `model, params, model_state = xb.load_model(path)`."""

    model: Layer
    params: Any
    model_state: Any


class CheckpointInfo(NamedTuple):
    """A checkpoint's header, read without loading its arrays (`checkpoint_info`)."""

    path: Path
    kind: str  # "checkpoint" (save_checkpoint) or "model" (save_model)
    format_version: int
    xbackprop_version: str
    saved_backend: str
    saved_device: str
    saved_dtype: str
    saved_at: str
    step: int | None
    input_shape: tuple[int, ...] | None
    model: dict[str, Any] | None  # the model's configuration (xbackprop.config)
    loss: dict[str, Any] | None
    metrics: dict[str, float]
    metadata: dict[str, Any]
    tensors: dict[str, tuple[str, tuple[int, ...]]]  # name -> (dtype, shape)


# -- writing ----------------------------------------------------------------------------------

def _save(path: str | os.PathLike, kind: str, root: Any, params: Any, model_state: Any, *,
          model: Layer | None, loss: Loss | str | None, input_shape: Any,
          fields: dict[str, Any], allow_nonfinite: bool) -> Path:
    """Write `root` (a TrainState, or a saved model's parameters and state) and its header."""
    if not os.fspath(path).strip() or Path(path).is_dir():  # Path("") is the current folder
        raise IsADirectoryError(f"cannot save to {os.fspath(path)!r}: it is a folder (or no "
                                "name at all); give a file name, e.g. run/ckpt.safetensors")
    tensors: dict[str, np.ndarray] = {}
    tree = encode_tree(root, "", tensors)
    bad = nonfinite(tensors)
    if bad and not allow_nonfinite:
        raise ValueError(f"refusing to save {path}: {bad}, so the model has diverged. Save "
                         "the last good state (a TrainingDivergedError's .state), or pass "
                         "allow_nonfinite=True to save it as it is")
    leaves = [leaf for _, leaf in tree_paths(root) if owner_of(leaf) is not None]
    backend = backend_of(*leaves, default="numpy")  # mixed backends: a clear error
    dtypes = [backend.numpy_dtype(a.dtype) for _, a in tree_paths(params)]
    floats = [dt.name for dt in dtypes if dt.kind == "f"]
    header = {
        "format": FORMAT, "format_version": str(FORMAT_VERSION), "kind": kind,
        "xbackprop_version": __version__, "backend": backend.name, "device": backend.device,
        "dtype": floats[0] if floats else "",
        "saved_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tree": json.dumps(tree),
    }
    if model is not None:
        header["model"] = json.dumps(to_config(model))
    if loss is not None:
        header["loss"] = json.dumps(to_config(get_loss(loss)))
    if input_shape is not None:
        input_shape = check_record("input_shape", input_shape)
        if model is not None:  # catch a mix-up now, not when the file is loaded
            _check_shapes(model, input_shape, params, model_state, f"{path}: the parameters")
        header["input_shape"] = json.dumps(list(input_shape))
    for key, value in fields.items():
        check_record(key, value)
        if value is not None:
            header[key] = value if isinstance(value, str) else to_json(value, key)
    return write_safetensors(path, tensors, header, checksum=True)  # checked: codec.py


def nonfinite(tensors: dict[str, np.ndarray], most: int = 3) -> str | None:
    """Which floating tensors hold NaN or infinite values, in words ("params.0.W holds 3
    NaN and 1 infinite value(s), and 2 more tensors"), or None if none does."""
    bad = []
    for name in sorted(tensors):
        a = tensors[name]
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            nans = int(np.isnan(a).sum())
            bad.append(f"{name} holds {nans} NaN and {int((~np.isfinite(a)).sum()) - nans} "
                       "infinite values")
    if not bad:
        return None
    more = len(bad) - most
    return ", ".join(bad[:most]) + (f", and {more} more tensor{'s' * (more > 1)} "
                                    "do" if more > 0 else "")


def save_checkpoint(path: str | os.PathLike, state: Any, *, model: Layer | None = None,
                    history: dict[str, list] | None = None,
                    metadata: dict[str, Any] | None = None,
                    metrics: dict[str, float] | None = None,
                    input_shape: tuple[int, ...] | None = None,
                    loss: Loss | str | None = None, allow_nonfinite: bool = False) -> Path:
    """Save a training state to `path` (written atomically: an interrupted save leaves the
    previous file intact); returns the path.

    state: a `TrainState` (parameters, optimizer state, model state, step, random key) on any
        backend; it is copied to the host, never changed.
    model: stored as its configuration, so `load_checkpoint` can rebuild it.
    history: the per-epoch lists of `fit`. metrics: the scores at this point (e.g.
        {"val_loss": 0.21}; `CheckpointManager` keeps the best by one of them).
    metadata: anything JSON-able (numbers, strings, lists, dicts), e.g. the data position.
    input_shape: one sample's shape, e.g. (64,) or (1, 28, 28): lets the loader check that
        the parameters fit the model, and `xbackprop predict` check its input.
    loss: the loss trained with (an instance or a name): tells `predict` whether the outputs
        are class scores or values.
    allow_nonfinite: save a state that holds NaN or infinite values (a diverged run, kept
        for a post-mortem); without it such a state is a ValueError naming the tensors.
    """
    if not isinstance(state, TrainState):
        raise TypeError(f"save_checkpoint saves a TrainState (fit's result.state, or "
                        f"TrainState.create(...)), not a {type(state).__name__}; to save only "
                        "a model's parameters use xbackprop.save_model")
    if int(state.step) < 0:
        raise ValueError(f"save_checkpoint: a state's step counts from 0, not {state.step}")
    fields = {"step": str(int(state.step)), "history": history, "metrics": metrics,
              "metadata": metadata}
    return _save(path, "checkpoint", state, state.params, state.model_state, model=model,
                 loss=loss, input_shape=input_shape, fields=fields,
                 allow_nonfinite=allow_nonfinite)


def save_model(path: str | os.PathLike, model: Layer, params: Any, model_state: Any = None, *,
               metadata: dict[str, Any] | None = None,
               input_shape: tuple[int, ...] | None = None,
               loss: Loss | str | None = None, allow_nonfinite: bool = False) -> Path:
    """Save a trained model (its configuration, parameters and state such as BatchNorm's
    statistics) for `load_model` and `xbackprop predict`; written atomically.

    input_shape (one sample's shape, e.g. (64,)) lets the loader and `predict` check inputs;
    loss (e.g. "cross_entropy") tells `predict` that the outputs are class scores.
    allow_nonfinite=True saves parameters that hold NaN or infinite values (refused
    otherwise).
    """
    return _save(path, "model", {"params": params, "model_state": model_state}, params,
                 model_state, model=model, loss=loss, input_shape=input_shape,
                 fields={"metadata": metadata}, allow_nonfinite=allow_nonfinite)


# -- reading ----------------------------------------------------------------------------------

_JSON_FIELDS = ("tree", "model", "loss", "input_shape", "history", "metrics", "metadata")


def _open(path: str | os.PathLike) -> tuple[SafetensorsFile, dict[str, Any]]:
    """The checked file and its header records, parsed; errors for anything that is not an
    xbackprop checkpoint of a format this version reads."""
    file = SafetensorsFile(path)
    meta = file.metadata
    if meta.get("format") != FORMAT:
        raise NotACheckpointError(
            f"{file.path} is a safetensors file ({len(file.entries)} tensors) but not an "
            "xbackprop checkpoint: its header has no xbackprop metadata. Read its arrays with "
            "xbackprop.checkpoint.read_safetensors(path).")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise file.corrupt(f"is corrupt: its format version {meta.get('format_version')!r} "
                           "is not a number") from None
    if version > FORMAT_VERSION:
        raise CheckpointVersionError(
            f"{file.path} was written by xbackprop {meta.get('xbackprop_version', '?')} in "
            f"checkpoint format {version}; this xbackprop ({__version__}) reads format "
            f"{FORMAT_VERSION} and older. Upgrade xbackprop to load it.")
    if version < 1:
        raise file.corrupt(f"is corrupt: format version {version} does not exist")
    parsed = {}
    for key in _JSON_FIELDS:
        if key in meta:
            try:
                parsed[key] = parse_json(meta[key], f"its {key} record")
            except json.JSONDecodeError as e:
                raise file.corrupt(f"is corrupt: its {key} record is not valid JSON ({e})"
                                   ) from None
            except ValueError as e:  # nested too deeply
                raise file.corrupt(f"is corrupt: {e}") from None
    if "tree" not in parsed:
        raise file.corrupt("is corrupt: its header has no tree record")
    return file, parsed


def _info(file: SafetensorsFile, parsed: dict[str, Any]) -> CheckpointInfo:
    meta = file.metadata
    shape = parsed.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise file.corrupt(f"is corrupt: its input shape {str(shape)[:50]} is not a list of "
                           "sizes")
    for key in ("model", "loss", "metrics", "metadata"):
        if parsed.get(key) is not None and not isinstance(parsed[key], dict):
            raise file.corrupt(f"is corrupt: its {key} record is a "
                               f"{type(parsed[key]).__name__}, not a JSON object")
    return CheckpointInfo(
        path=file.path, kind=meta.get("kind", "checkpoint"),
        format_version=int(meta["format_version"]),
        xbackprop_version=meta.get("xbackprop_version", "?"),
        saved_backend=meta.get("backend", "?"), saved_device=meta.get("device", "?"),
        saved_dtype=meta.get("dtype", "?"), saved_at=meta.get("saved_at", "?"),
        step=int(meta["step"]) if meta.get("step", "").isdigit() else None,
        input_shape=None if shape is None else tuple(shape),
        model=parsed.get("model"), loss=parsed.get("loss"),
        metrics=parsed.get("metrics") or {}, metadata=parsed.get("metadata") or {},
        tensors={name: (dtype.name, shape) for name, (dtype, shape) in file.entries.items()})


def checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """What a checkpoint or saved model holds, from its header alone (no arrays are read):
    kind, step, where and when it was saved, the model's configuration, metrics, metadata,
    and every tensor's dtype and shape."""
    return _info(*_open(path))


def _load_root(file: SafetensorsFile, parsed: dict[str, Any], target: Backend,
               dtype: Any, verify: bool) -> Any:
    """The stored tree with its arrays on `target` (floating ones cast to `dtype` if given),
    checked against the file's checksum (`verify=False`: a warning instead of an error)."""
    host = file.arrays()
    problem = file.check(host, required=True)
    if problem is not None:
        if verify:
            raise file.corrupt(f"{problem}. To load it anyway, unchecked: verify=False "
                               "(xbackprop predict --no-verify)")
        warnings.warn(f"{file.path} was loaded without an integrity check (verify=False): it "
                      f"{problem.removeprefix('is corrupt: ')}", UserWarning, stacklevel=3)
    for name, a in host.items():
        if name.startswith("params.") and a.dtype.kind != "f":
            raise file.corrupt(f"is corrupt: parameter {name} is {a.dtype}, but parameters "
                               "are floating point (was its dtype changed in the header?)")
    bad = nonfinite(host)
    if bad is not None:
        warnings.warn(f"{file.path}: {bad}: the model it holds diverged (it was saved with "
                      "allow_nonfinite=True)", UserWarning, stacklevel=3)
    cast = None if dtype is None else target.check_dtype(dtype)
    if cast is None:
        for dt in sorted({a.dtype.newbyteorder("=") for a in host.values()
                          if a.dtype.kind == "f"}, key=str):
            try:
                target.check_dtype(dt)
            except DtypeError as e:
                raise DtypeError(f"{file.path} holds {dt} arrays: {e} Or convert them as they "
                                 "load: dtype='float32'.") from e
    arrays = {name: target.asarray(a, dtype=cast if a.dtype.kind == "f" else None)
              for name, a in host.items()}
    try:
        return decode_tree(parsed["tree"], arrays, target.counter)
    except LookupError as e:
        raise CheckpointError(f"{file.path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CorruptCheckpointError(f"{file.path} is corrupt: its tree record is damaged "
                                     f"({e})") from None


def load_checkpoint(path: str | os.PathLike, backend: str | Backend | None = None, *,
                    model: Layer | None = None, dtype: Any = None,
                    verify: bool = True) -> Checkpoint:
    """Load a checkpoint onto `backend` (default: the current one), whichever backend saved it.

    model: use this model instead of rebuilding the stored one; its parameter shapes must
        match the checkpoint's (an ArchitectureMismatchError names the first tensor that
        does not, with both shapes). Without an input shape in the file, the two models'
        configurations must be equal instead.
    dtype: cast the floating arrays (e.g. "float32" to load a float64 checkpoint on JAX
        without 64-bit mode); default: keep the saved dtype.
    verify: check the file against its checksum (header and data) and refuse a file that
        has none; verify=False loads a damaged or unchecked file anyway, with a warning
        saying what is wrong with it (to rescue what can be rescued).

    Raises CheckpointError (NotACheckpointError, CorruptCheckpointError,
    CheckpointVersionError, ArchitectureMismatchError) naming the file and the problem.
    A file whose tensors hold NaN or infinite values loads with a warning naming them.
    """
    file, parsed = _open(path)
    info = _info(file, parsed)
    if info.kind != "checkpoint":
        raise NotACheckpointError(f"{file.path} is a saved model (xbackprop.save_model): it "
                                  "holds parameters, not a training state. Load it with "
                                  "xbackprop.load_model(path).")
    target = get_backend(backend)
    state = _load_root(file, parsed, target, dtype, verify)
    if not isinstance(state, TrainState):
        raise file.corrupt("is corrupt: it holds no TrainState")
    model = _resolve_model(file.path, model, info, state.params, state.model_state)
    history = _history(file, parsed.get("history"))
    return Checkpoint(
        state=state, model=model, history=history,
        metadata=info.metadata, metrics=info.metrics, step=int(state.step),
        input_shape=info.input_shape, loss=_loss(file.path, info),
        format_version=info.format_version, saved_backend=info.saved_backend,
        saved_dtype=info.saved_dtype, saved_at=info.saved_at, path=file.path)


def load_model(path: str | os.PathLike, backend: str | Backend | None = None, *,
               dtype: Any = None, verify: bool = True) -> SavedModel:
    """`model, params, model_state` from a file of `save_model`, or from a checkpoint that
    holds its model's configuration; on `backend` (default: the current one). `dtype` casts
    the floating arrays and `verify` checks the file, as in `load_checkpoint`."""
    file, parsed = _open(path)
    info = _info(file, parsed)
    if info.model is None:
        raise CheckpointError(
            f"{file.path} holds no model configuration (it was saved without model=), so the "
            "model cannot be rebuilt: build it in code and use "
            "xbackprop.load_checkpoint(path, model=model)")
    root = _load_root(file, parsed, get_backend(backend), dtype, verify)
    try:
        params, model_state = ((root.params, root.model_state) if info.kind == "checkpoint"
                               else (root["params"], root["model_state"]))
    except (AttributeError, KeyError, TypeError):
        raise file.corrupt("is corrupt: it holds no parameters") from None
    model = _resolve_model(file.path, None, info, params, model_state)
    assert model is not None  # (rebuilt from info.model, which is there: checked above)
    return SavedModel(model, params, model_state)


def _history(file: SafetensorsFile, record: Any) -> History | None:
    """The history record as a History: lists of numbers by name."""
    if record is None:
        return None
    if not isinstance(record, dict) or not all(
            isinstance(k, str) and isinstance(v, list) and
            all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
            for k, v in record.items()):
        raise file.corrupt("is corrupt: its history record is not lists of numbers by name")
    return History(record)


def _loss(path: Path, info: CheckpointInfo) -> Loss | None:
    if info.loss is None:
        return None
    try:
        return from_config(info.loss)
    except ConfigError as e:
        raise CheckpointError(f"{path}: {e}") from e


def _resolve_model(path: Path, model: Layer | None, info: CheckpointInfo, params: Any,
                   model_state: Any) -> Layer | None:
    """The model to return: the stored one rebuilt, or `model`, checked against the arrays."""
    source = f"{path}: the checkpoint"
    if model is None:
        if info.model is None:
            return None
        try:
            model = from_config(info.model)
        except ConfigError as e:
            raise CheckpointError(f"{path}: {e}") from e
        if info.input_shape is not None:
            _check_shapes(model, info.input_shape, params, model_state, source)
        return model
    if info.input_shape is not None:
        _check_shapes(model, info.input_shape, params, model_state, source)
    elif info.model is not None:
        _check_config(path, model, info.model)
    return model


def _check_shapes(model: Layer, input_shape: tuple[int, ...], params: Any, model_state: Any,
                  source: str) -> None:
    """Raise ArchitectureMismatchError at the first array of `params` / `model_state` whose
    shape (or presence) differs from what `model` makes for inputs (N, *input_shape)."""
    check_params(model, params, input_shape, model_state, source=source,
                 error=ArchitectureMismatchError)


def _describe_config(config: dict[str, Any]) -> str:
    try:
        return describe(from_config(config))
    except ConfigError:
        return str(config.get("class", "?"))


def _without_modules(config: Any) -> Any:
    """A configuration without the modules classes came from (a layer defined in a script
    and imported later is the same layer)."""
    if isinstance(config, dict):
        return {k: _without_modules(v) for k, v in config.items() if k != "module"}
    if isinstance(config, list):
        return [_without_modules(v) for v in config]
    return config


def model_difference(model: Layer | Loss, stored: dict[str, Any]) -> str | None:
    """How `model` (a layer, a Sequential or a loss) differs from the stored configuration
    `stored` ("layer 2 is ReLU() in the checkpoint but Tanh() in your model"), or None if
    they are configured alike (or `model` cannot be described: nothing to compare)."""
    try:
        mine = _without_modules(json.loads(json.dumps(to_config(model))))
    except ConfigError:
        return None
    stored = _without_modules(stored)
    if mine == stored:
        return None
    what = "model" if isinstance(model, Layer) else "loss"
    problem = f"the checkpoint's {what} is {_describe_config(stored)}, yours is {describe(model)}"
    if "layers" in mine and "layers" in stored:
        ours, theirs = mine["layers"], stored["layers"]
        problem = f"the checkpoint's model has {len(theirs)} layers, yours {len(ours)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a != b:
                problem = (f"layer {i} is {_describe_config(b)} in the checkpoint but "
                           f"{_describe_config(a)} in your model")
                break
    return problem


def _check_config(path: Path, model: Layer, stored: dict[str, Any]) -> None:
    """Without an input shape, `model` must be configured as the stored model is."""
    problem = model_difference(model, stored)
    if problem is not None:
        raise ArchitectureMismatchError(f"{path} was saved from another model: {problem}")
