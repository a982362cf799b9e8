"""Checkpoints and saved models: everything a run needs to go on, in one file that loads on
any backend and opens in any safetensors reader. No pickle anywhere.

    xb.save_checkpoint("run/ckpt.safetensors", state, model=model, history=history)
    ckpt = xb.load_checkpoint("run/ckpt.safetensors", backend="jax")  # .state .model .history
    xb.save_model("digits.safetensors", model, params, input_shape=(64,), loss=loss)
    model, params, model_state = xb.load_model("digits.safetensors")

The file is safetensors: an 8-byte little-endian header length, a JSON header mapping each
tensor's name to its dtype, shape and byte range, then the raw little-endian bytes. Tensors
are named by their place in the state ("params.0.W", "opt_state.slots.mu.0.W", "key"). The
header's `__metadata__` (a str -> str map) holds, as JSON, everything that is not an array:
the tree (which lists, tuples, dicts and NamedTuples hold what, so the exact state comes
back), step counts, the model's and the loss's configuration (`xbackprop.config`), history,
metrics, your metadata; and the format version, the backend, device and dtype it was saved
from, the time, and a CRC-32 of the tensor bytes.

Files are written atomically (`xbackprop.atomic`): a crash or a kill while saving leaves the
previous file as it was. Reading checks everything before using it: a file that is empty,
truncated, corrupt, of a newer format, for another architecture, or not a checkpoint at all
(a pickle, an image, a plain safetensors file) is a `CheckpointError` naming the file and
the problem.

Why safetensors and not `.npz`: it is a documented format that other tools read (a file
made here opens with `safetensors.numpy.load_file`, in PyTorch or in Rust), it cannot hold
code, and it is simple enough (about 60 lines below) to need no dependency.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
import warnings
import zlib
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .atomic import TMP_SUFFIX, atomic_write
from .backends import Backend, DtypeError, backend_of, get_backend, owner_of
from .config import ConfigError, from_config, to_config
from .layers.base import Layer, describe
from .losses import Loss, get_loss
from .model import ParamsMismatchError, check_params
from .tree import tree_paths

__all__ = ["save_checkpoint", "load_checkpoint", "checkpoint_info", "save_model", "load_model",
           "Checkpoint", "CheckpointInfo", "SavedModel", "CheckpointManager",
           "CheckpointError", "NotACheckpointError", "CorruptCheckpointError",
           "CheckpointVersionError", "ArchitectureMismatchError", "register_namedtuple",
           "read_safetensors", "write_safetensors", "FORMAT_VERSION"]

FORMAT = "xbackprop"
#: the version of the layout inside the safetensors file; a reader refuses newer ones
FORMAT_VERSION = 1
_MAX_HEADER = 100_000_000  # bytes; safetensors' own limit


class CheckpointError(ValueError):
    """A file that cannot be loaded as a checkpoint; the message names the file."""


class NotACheckpointError(CheckpointError):
    """The file is something else: empty, a pickle, an image, a safetensors file of another
    program..."""


class CorruptCheckpointError(CheckpointError):
    """A checkpoint that was damaged: truncated, a broken header, a checksum mismatch."""


class CheckpointVersionError(CheckpointError):
    """A checkpoint written in a newer format than this xbackprop reads."""


class ArchitectureMismatchError(CheckpointError, ParamsMismatchError):
    """Parameters whose shapes do not fit the model they are loaded into."""


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


# -- the safetensors format ------------------------------------------------------------------

_DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16",
           "F16": "float16", "U32": "uint32", "I32": "int32", "F32": "float32",
           "U64": "uint64", "I64": "int64", "F64": "float64"}
_CODES = {np.dtype(name): code for code, name in _DTYPES.items()}


def write_safetensors(path: str | os.PathLike, tensors: dict[str, np.ndarray],
                      metadata: dict[str, str] | None = None) -> Path:
    """Write NumPy arrays by name (and str -> str metadata) to a safetensors file, atomically.

    Tensors are laid out largest item size first, then by name, after a header padded to 8
    bytes, so every tensor starts aligned (as the safetensors library writes them).
    """
    return _write(path, _layout(tensors), metadata)


def _layout(tensors: dict[str, Any]) -> list[tuple[str, np.ndarray]]:
    """The tensors in file order, each C-contiguous and little-endian."""
    arrays = {}
    for name, a in tensors.items():
        a = np.asarray(a, order="C")
        if a.dtype.newbyteorder("=") not in _CODES:
            raise TypeError(f"{name}: safetensors cannot hold dtype {a.dtype}")
        arrays[name] = a.astype(a.dtype.newbyteorder("<"), copy=False)
    return [(n, arrays[n]) for n in sorted(arrays, key=lambda n: (-arrays[n].dtype.itemsize, n))]


def _write(path: str | os.PathLike, layout: list[tuple[str, np.ndarray]],
           metadata: dict[str, str] | None) -> Path:
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    for name, a in layout:
        header[name] = {"dtype": _CODES[a.dtype.newbyteorder("=")], "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    with atomic_write(path) as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for _, a in layout:
            f.write(_bytes(a))
    return Path(path)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays (by name) and the metadata of any safetensors file, checked for damage.
    The arrays are NumPy views of one buffer read from the file."""
    file = _SafetensorsFile(path)
    return file.arrays(), file.metadata


def _bytes(a: np.ndarray) -> np.ndarray:
    """The bytes of a C-contiguous array as a flat uint8 view (0-d and empty arrays too)."""
    return a.reshape(-1).view(np.uint8)


_MAGIC = [(b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"),
          (b"\x93NUMPY", "a NumPy .npy file (load it with numpy.load)"),
          (b"PK\x03\x04", "a zip archive (a NumPy .npz or a PyTorch .pt file?)"),
          (b"\x1f\x8b", "a gzip-compressed file"), (b"\x89HDF", "an HDF5 file (Keras .h5?)")]


def _sniff(head: bytes) -> str | None:
    """What a file that is not safetensors is, from its first bytes, if it is recognisable."""
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return ("a Python pickle, not an xbackprop checkpoint; xbackprop never unpickles "
                "files (unpickling can run any code)")
    for magic, what in _MAGIC:
        if head.startswith(magic):
            return f"{what}, not an xbackprop checkpoint"
    return None


class _SafetensorsFile:
    """An opened safetensors file whose header has been read and checked."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(
                f"{self.path} is a folder, not a checkpoint file; for the newest checkpoint in "
                f"it use xbackprop.CheckpointManager({str(self.path)!r}).load_latest()")
        if not self.path.exists():
            raise FileNotFoundError(f"no checkpoint file at {self.path}")
        with open(self.path, "rb") as f:
            self.size = os.fstat(f.fileno()).st_size
            head = f.read(16)
            n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0
            if self.size == 0:
                raise self.not_ours("is empty (0 bytes): it was created but never written")
            what = _sniff(head)
            if what:
                raise self.not_ours(f"is {what}")
            if self.size < 8 or n > _MAX_HEADER or head[8:9] not in (b"{", b""):
                raise self.not_ours("is not a safetensors file (it does not start with a "
                                    "header length and a JSON header), so not a checkpoint")
            if self.size < 8 + n:
                raise self.corrupt(f"is truncated: its header should be {n} bytes but the file "
                                   f"ends after {self.size - 8}; it was cut off while being "
                                   "copied or written")
            f.seek(8)
            raw = f.read(n)
        self.data_start, self.data_size = 8 + n, self.size - 8 - n
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self.corrupt(f"is corrupt: its header is not valid JSON ({e})") from None
        if not isinstance(header, dict):
            raise self.corrupt("is corrupt: its header is not a JSON object")
        metadata = header.pop("__metadata__", None) or {}
        if not isinstance(metadata, dict) or not all(isinstance(v, str)
                                                      for v in metadata.values()):
            raise self.corrupt("is corrupt: its __metadata__ is not a map of strings")
        self.metadata: dict[str, str] = metadata
        self.entries = {name: self._entry(name, info) for name, info in header.items()}
        self._check_layout()

    def corrupt(self, problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{self.path} {problem}")

    def not_ours(self, problem: str) -> NotACheckpointError:
        return NotACheckpointError(f"{self.path} {problem}")

    def _entry(self, name: str, info: Any) -> tuple[np.dtype, tuple[int, ...], int, int]:
        """(dtype, shape, start, end) of one tensor, each checked."""
        try:
            dtype = np.dtype(_DTYPES[info["dtype"]]).newbyteorder("<")
            shape = tuple(info["shape"])
            start, end = info["data_offsets"]
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                       for v in (*shape, start, end)):
                raise ValueError("sizes must be non-negative integers")
        except (KeyError, TypeError, ValueError) as e:
            raise self.corrupt(f"is corrupt: the header entry of tensor {name!r} is not a valid "
                               f"dtype, shape and data_offsets ({info}; {e})") from None
        nbytes = math.prod(shape) * dtype.itemsize
        if end - start != nbytes:
            raise self.corrupt(f"is corrupt: tensor {name!r} of shape {shape} and dtype "
                               f"{info['dtype']} needs {nbytes} bytes, but its data_offsets "
                               f"[{start}, {end}) span {end - start}")
        return dtype, shape, start, end

    def _check_layout(self) -> None:
        """Tensors tile the data section exactly: contiguous from 0 to its end."""
        spans = sorted((start, end, name) for name, (_, _, start, end) in self.entries.items())
        needed = max((end for _, end, _ in spans), default=0)
        if needed > self.data_size:
            raise self.corrupt(f"is truncated: its tensors need {needed} bytes after the header "
                               f"but only {self.data_size} are there (the file has {self.size} "
                               "bytes); it was cut off while being copied or written")
        at = 0
        for start, end, name in spans:
            if start != at:
                raise self.corrupt(f"is corrupt: tensor {name!r} starts at byte {start} of the "
                                   f"data, where byte {at} was expected (its data_offsets "
                                   "overlap another tensor's or leave a gap)")
            at = end
        if at != self.data_size:
            raise self.corrupt(f"is corrupt: {self.data_size - at} unexpected bytes follow its "
                               "last tensor")

    def arrays(self) -> dict[str, np.ndarray]:
        """Every tensor, read in one pass and checked against the stored CRC-32."""
        buffer = bytearray(self.data_size)
        with open(self.path, "rb") as f:
            f.seek(self.data_start)
            got = f.readinto(buffer)
        if got != self.data_size:
            raise self.corrupt("is truncated: it became shorter while it was read")
        crc = self.metadata.get("data_crc32")
        if crc is not None and f"{zlib.crc32(buffer):08x}" != crc:
            raise self.corrupt("is corrupt: its tensor bytes do not match the checksum written "
                               "with them, so the file was damaged after it was saved (a disk "
                               "or copy error); use an older checkpoint")
        return {name: np.frombuffer(buffer, dtype, math.prod(shape), start).reshape(shape)
                for name, (dtype, shape, start, _) in self.entries.items()}


# -- trees of arrays <-> tensors and JSON -----------------------------------------------------

_NAMEDTUPLES: dict[str, type] = {}


def register_namedtuple(cls: type) -> type:
    """Let checkpoints store (and rebuild) instances of the NamedTuple `cls`, e.g. the state
    of your own optimizer. TrainState and OptState are registered already. Returns `cls`,
    so it works as a class decorator."""
    if not (isinstance(cls, type) and issubclass(cls, tuple) and hasattr(cls, "_fields")):
        raise TypeError(f"register_namedtuple takes a NamedTuple class, not {cls!r}")
    known = _NAMEDTUPLES.get(cls.__name__)
    if known is not None and known is not cls and known._fields != cls._fields:
        raise ValueError(f"another NamedTuple named {cls.__name__} is registered already "
                         f"(fields {known._fields}); give yours another name")
    _NAMEDTUPLES[cls.__name__] = cls
    return cls


def _known_namedtuples() -> dict[str, type]:
    if not _NAMEDTUPLES:
        from .optim import OptState
        from .train import TrainState

        register_namedtuple(TrainState)
        register_namedtuple(OptState)
    return _NAMEDTUPLES


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _encode_tree(tree: Any, prefix: str, tensors: dict[str, np.ndarray]) -> Any:
    """The JSON record of `tree`'s containers, with its arrays moved into `tensors` by name.

    Integer scalars (Python ints, 0-d integer arrays) are step counts: stored as numbers and
    rebuilt in the form the loading backend's train step keeps them (`_counter`).
    """
    if tree is None:
        return None
    if isinstance(tree, bool):
        return {"bool": tree}
    if isinstance(tree, int):
        return {"int": tree}
    if isinstance(tree, float):
        return {"float": tree}
    if isinstance(tree, dict):
        for key in tree:
            if not isinstance(key, str):
                raise TypeError(f"{prefix or 'the state'}: dict key {key!r} is not a string; "
                                "checkpoints store dicts with string keys")
        return {"dict": {k: _encode_tree(tree[k], _join(prefix, k), tensors)
                         for k in sorted(tree)}}
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        name = type(tree).__name__
        if _known_namedtuples().get(name) is not type(tree):
            raise TypeError(
                f"{prefix or 'the state'} is a {type(tree).__module__}.{name}, a NamedTuple "
                "that checkpoints do not know; register it first with "
                f"xbackprop.checkpoint.register_namedtuple({name}) (before saving and loading)")
        return {"namedtuple": name, "fields": {
            field: _encode_tree(v, _join(prefix, field), tensors)
            for field, v in zip(tree._fields, tree)}}
    if isinstance(tree, (list, tuple)):
        kind = "list" if isinstance(tree, list) else "tuple"
        return {kind: [_encode_tree(v, _join(prefix, str(i)), tensors)
                       for i, v in enumerate(tree)]}
    owner = owner_of(tree)
    if owner is not None:
        host = owner.to_numpy(tree)
    elif isinstance(tree, np.generic):
        host = np.asarray(tree)
    else:
        raise TypeError(f"{prefix}: a {type(tree).__name__} cannot be stored in a checkpoint "
                        "(arrays, numbers, None, and lists, tuples, dicts of them can)")
    if host.ndim == 0 and host.dtype.kind == "i":
        return {"int": int(host)}
    if prefix in tensors:
        raise ValueError(f"two arrays in the state are both named {prefix!r} (a dict key with "
                         "a dot in it?); rename one")
    tensors[prefix] = host
    return {"tensor": prefix}


def _counter(n: int, backend: Backend) -> Any:
    """A step count as `backend`'s train steps keep it: a Python int where arrays are
    mutable (NumPy, CuPy), a 0-d int32 array where steps are compiled (JAX); the rule of
    `TrainState.create` and of the optimizers' update count."""
    return backend.counter(n)


def _decode_tree(node: Any, arrays: dict[str, Any], counter: Callable[[int], Any]) -> Any:
    if node is None:
        return None
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise ValueError(f"not a tree record: {str(node)[:100]}")
    if "tensor" in node:
        if node["tensor"] not in arrays:
            raise ValueError(f"the tree names a tensor {node['tensor']!r} that the file lacks")
        return arrays[node["tensor"]]
    if "int" in node:
        return counter(int(node["int"]))
    if "float" in node:
        return float(node["float"])
    if "bool" in node:
        return bool(node["bool"])
    if "dict" in node:
        return {k: _decode_tree(v, arrays, counter) for k, v in node["dict"].items()}
    if "list" in node:
        return [_decode_tree(v, arrays, counter) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode_tree(v, arrays, counter) for v in node["tuple"])
    if "namedtuple" in node:
        name, fields = node["namedtuple"], node["fields"]
        cls = _known_namedtuples().get(name)
        if cls is None:
            raise LookupError(f"it holds a NamedTuple {name!r} that this process does not know; "
                              "if it is your optimizer's state, call xbackprop.checkpoint."
                              f"register_namedtuple({name}) before loading")
        if tuple(fields) != cls._fields:
            raise ValueError(f"its {name} has fields {tuple(fields)}, but {name} here has "
                             f"{cls._fields}")
        return cls(*(_decode_tree(v, arrays, counter) for v in fields.values()))
    raise ValueError(f"not a tree record: {str(node)[:100]}")


# -- writing ----------------------------------------------------------------------------------

def _json(value: Any, what: str) -> str:
    def default(x: Any) -> Any:
        if isinstance(x, np.generic):
            return x.item()
        owner = owner_of(x)
        if owner is not None and getattr(x, "size", 2) == 1:  # a 0-d or one-element array
            return owner.to_numpy(x).item()
        raise TypeError(f"a {type(x).__name__} is not JSON-able")

    try:
        return json.dumps(value, default=default)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} must be JSON-able (numbers, strings, lists, dicts): {e}"
                        ) from e


def _save(path: str | os.PathLike, kind: str, root: Any, params: Any, model_state: Any, *,
          model: Layer | None, loss: Loss | str | None, input_shape: Any,
          fields: dict[str, Any]) -> Path:
    """Write `root` (a TrainState, or a saved model's parameters and state) and its header."""
    from . import __version__

    tensors: dict[str, np.ndarray] = {}
    tree = _encode_tree(root, "", tensors)
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
        input_shape = tuple(int(s) for s in input_shape)
        if model is not None:  # catch a mix-up now, not when the file is loaded
            _check_shapes(model, input_shape, params, model_state, f"{path}: the parameters")
        header["input_shape"] = json.dumps(list(input_shape))
    for key, value in fields.items():
        if value is not None:
            header[key] = value if isinstance(value, str) else _json(value, key)
    layout = _layout(tensors)
    crc = 0
    for _, a in layout:
        crc = zlib.crc32(_bytes(a), crc)
    header["data_crc32"] = f"{crc:08x}"
    return _write(path, layout, header)


def save_checkpoint(path: str | os.PathLike, state: Any, *, model: Layer | None = None,
                    history: dict[str, list] | None = None,
                    metadata: dict[str, Any] | None = None,
                    metrics: dict[str, float] | None = None,
                    input_shape: tuple[int, ...] | None = None,
                    loss: Loss | str | None = None) -> Path:
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
    """
    train_state = _known_namedtuples()["TrainState"]
    if not isinstance(state, train_state):
        raise TypeError(f"save_checkpoint saves a TrainState (fit's result.state, or "
                        f"TrainState.create(...)), not a {type(state).__name__}; to save only "
                        "a model's parameters use xbackprop.save_model")
    fields = {"step": str(int(state.step)), "history": history, "metrics": metrics,
              "metadata": metadata}
    return _save(path, "checkpoint", state, state.params, state.model_state, model=model,
                 loss=loss, input_shape=input_shape, fields=fields)


def save_model(path: str | os.PathLike, model: Layer, params: Any, model_state: Any = None, *,
               metadata: dict[str, Any] | None = None,
               input_shape: tuple[int, ...] | None = None,
               loss: Loss | str | None = None) -> Path:
    """Save a trained model (its configuration, parameters and state such as BatchNorm's
    statistics) for `load_model` and `xbackprop predict`; written atomically.

    input_shape (one sample's shape, e.g. (64,)) lets the loader and `predict` check inputs;
    loss (e.g. "cross_entropy") tells `predict` that the outputs are class scores.
    """
    return _save(path, "model", {"params": params, "model_state": model_state}, params,
                 model_state, model=model, loss=loss, input_shape=input_shape,
                 fields={"metadata": metadata})


# -- reading ----------------------------------------------------------------------------------

_JSON_FIELDS = ("tree", "model", "loss", "input_shape", "history", "metrics", "metadata")


def _open(path: str | os.PathLike) -> tuple[_SafetensorsFile, dict[str, Any]]:
    """The checked file and its header records, parsed; errors for anything that is not an
    xbackprop checkpoint of a format this version reads."""
    from . import __version__

    file = _SafetensorsFile(path)
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
                parsed[key] = json.loads(meta[key])
            except json.JSONDecodeError as e:
                raise file.corrupt(f"is corrupt: its {key} record is not valid JSON ({e})"
                                   ) from None
    if "tree" not in parsed:
        raise file.corrupt("is corrupt: its header has no tree record")
    return file, parsed


def _info(file: _SafetensorsFile, parsed: dict[str, Any]) -> CheckpointInfo:
    meta = file.metadata
    shape = parsed.get("input_shape")
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
        tensors={name: (_CODE_NAMES[dtype.newbyteorder("=")], shape)
                 for name, (dtype, shape, _, _) in file.entries.items()})


_CODE_NAMES = {np.dtype(name): name for name in _DTYPES.values()}


def checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """What a checkpoint or saved model holds, from its header alone (no arrays are read):
    kind, step, where and when it was saved, the model's configuration, metrics, metadata,
    and every tensor's dtype and shape."""
    return _info(*_open(path))


def _load_root(file: _SafetensorsFile, parsed: dict[str, Any], target: Backend,
               dtype: Any) -> Any:
    """The stored tree with its arrays on `target` (floating ones cast to `dtype` if given)."""
    host = file.arrays()
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
        return _decode_tree(parsed["tree"], arrays, lambda n: _counter(n, target))
    except LookupError as e:
        raise CheckpointError(f"{file.path}: {e}") from None
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise CorruptCheckpointError(f"{file.path} is corrupt: its tree record is damaged "
                                     f"({e})") from None


def load_checkpoint(path: str | os.PathLike, backend: str | Backend | None = None, *,
                    model: Layer | None = None, dtype: Any = None) -> Checkpoint:
    """Load a checkpoint onto `backend` (default: the current one), whichever backend saved it.

    model: use this model instead of rebuilding the stored one; its parameter shapes must
        match the checkpoint's (an ArchitectureMismatchError names the first tensor that
        does not, with both shapes). Without an input shape in the file, the two models'
        configurations must be equal instead.
    dtype: cast the floating arrays (e.g. "float32" to load a float64 checkpoint on JAX
        without 64-bit mode); default: keep the saved dtype.

    Raises CheckpointError (NotACheckpointError, CorruptCheckpointError,
    CheckpointVersionError, ArchitectureMismatchError) naming the file and the problem.
    """
    from .fit import History

    file, parsed = _open(path)
    info = _info(file, parsed)
    if info.kind != "checkpoint":
        raise CheckpointError(f"{file.path} is a saved model (xbackprop.save_model): it holds "
                              "parameters, not a training state. Load it with "
                              "xbackprop.load_model(path).")
    target = get_backend(backend)
    state = _load_root(file, parsed, target, dtype)
    if not isinstance(state, _known_namedtuples()["TrainState"]):
        raise file.corrupt("is corrupt: it holds no TrainState")
    model = _resolve_model(file.path, model, info, state.params, state.model_state)
    history = parsed.get("history")
    return Checkpoint(
        state=state, model=model, history=None if history is None else History(history),
        metadata=info.metadata, metrics=info.metrics, step=int(state.step),
        input_shape=info.input_shape, loss=_loss(file.path, info),
        format_version=info.format_version, saved_backend=info.saved_backend,
        saved_dtype=info.saved_dtype, saved_at=info.saved_at, path=file.path)


def load_model(path: str | os.PathLike, backend: str | Backend | None = None, *,
               dtype: Any = None) -> SavedModel:
    """`model, params, model_state` from a file of `save_model`, or from a checkpoint that
    holds its model's configuration; on `backend` (default: the current one). `dtype` casts
    the floating arrays, as in `load_checkpoint`."""
    file, parsed = _open(path)
    info = _info(file, parsed)
    if info.model is None:
        raise CheckpointError(
            f"{file.path} holds no model configuration (it was saved without model=), so the "
            "model cannot be rebuilt: build it in code and use "
            "xbackprop.load_checkpoint(path, model=model)")
    root = _load_root(file, parsed, get_backend(backend), dtype)
    try:
        params, model_state = ((root.params, root.model_state) if info.kind == "checkpoint"
                               else (root["params"], root["model_state"]))
    except (AttributeError, KeyError, TypeError):
        raise file.corrupt("is corrupt: it holds no parameters") from None
    model = _resolve_model(file.path, None, info, params, model_state)
    return SavedModel(model, params, model_state)


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


def _check_config(path: Path, model: Layer, stored: dict[str, Any]) -> None:
    """Without an input shape, `model` must be configured as the stored model is."""
    try:
        mine = _without_modules(json.loads(json.dumps(to_config(model))))
    except ConfigError:
        return  # a model that cannot be described: nothing to compare with
    stored = _without_modules(stored)
    if mine == stored:
        return
    problem = f"the checkpoint's model is {_describe_config(stored)}, yours is {describe(model)}"
    if "layers" in mine and "layers" in stored:
        ours, theirs = mine["layers"], stored["layers"]
        problem = f"the checkpoint's model has {len(theirs)} layers, yours {len(ours)}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            if a != b:
                problem = (f"layer {i} is {_describe_config(b)} in the checkpoint but "
                           f"{_describe_config(a)} in your model")
                break
    raise ArchitectureMismatchError(f"{path} was saved from another model: {problem}")


# -- a folder of numbered checkpoints -----------------------------------------------------------

class CheckpointManager:
    """Numbered checkpoints in one folder, `ckpt-<step>.safetensors`: keeps the newest `keep`
    and the best one by a monitored metric, and deletes the rest of its own files (never any
    other file).

        manager = CheckpointManager("runs/digits", keep=3, monitor="val_loss")
        manager.save(state, model=model, history=history, metrics={"val_loss": 0.21})
        ckpt = manager.load_latest(backend="jax")      # None in an empty folder

    The best score lives in the best file's header, so it survives restarts: a new manager
    on the same folder knows which file is best. Give each run its own folder.
    monitor=None keeps only the newest files; mode "min" (losses) or "max" (accuracy).
    """

    _NAME = re.compile(r"^ckpt-(\d+)\.safetensors$")
    _TEMPORARY = re.compile(r"^\.ckpt-\d+\.safetensors\..*" + re.escape(TMP_SUFFIX) + "$")

    def __init__(self, directory: str | os.PathLike, keep: int = 3, *,
                 monitor: str | None = "val_loss", mode: str = "min") -> None:
        if not isinstance(keep, int) or keep < 1:
            raise ValueError(f"CheckpointManager: keep must be an int >= 1, not {keep!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"CheckpointManager: mode must be 'min' or 'max', not {mode!r}")
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise NotADirectoryError(f"CheckpointManager: {self.directory} is a file, not a "
                                     "folder")
        self.directory.mkdir(parents=True, exist_ok=True)
        self.keep, self.monitor, self.mode = keep, monitor, mode
        for leftover in self.directory.iterdir():  # from a save that was killed midway
            if self._TEMPORARY.match(leftover.name):
                with contextlib.suppress(OSError):
                    leftover.unlink()

    def __repr__(self) -> str:
        return (f"CheckpointManager({str(self.directory)!r}, keep={self.keep}, "
                f"monitor={self.monitor!r}, mode={self.mode!r})")

    def path_for(self, step: int) -> Path:
        """Where the checkpoint of `step` goes (zero-padded, so names sort by step)."""
        return self.directory / f"ckpt-{int(step):09d}.safetensors"

    def checkpoints(self) -> list[Path]:
        """This manager's files in the folder, oldest step first."""
        found = [(int(m.group(1)), p) for p in self.directory.iterdir()
                 if (m := self._NAME.match(p.name)) and p.is_file()]
        return [p for _, p in sorted(found)]

    def latest(self) -> Path | None:
        """The checkpoint with the highest step, or None."""
        files = self.checkpoints()
        return files[-1] if files else None

    def best(self) -> Path | None:
        """The checkpoint with the best finite `monitor` score in its header (the earliest
        of equals), or None if none has one."""
        if self.monitor is None:
            return None
        best_path, best_score = None, math.nan
        for path in self.checkpoints():
            try:
                score = float(checkpoint_info(path).metrics.get(self.monitor, math.nan))
            except (CheckpointError, OSError, TypeError, ValueError):
                continue
            better = score < best_score if self.mode == "min" else score > best_score
            if math.isfinite(score) and (best_path is None or better):
                best_path, best_score = path, score
        return best_path

    def save(self, state: Any, *, model: Layer | None = None,
             history: dict[str, list] | None = None, metadata: dict[str, Any] | None = None,
             metrics: dict[str, float] | None = None,
             input_shape: tuple[int, ...] | None = None,
             loss: Loss | str | None = None) -> Path:
        """Save `state` as the checkpoint of its step (see `save_checkpoint` for the
        arguments), then delete this manager's files beyond the newest `keep` and the best.
        Returns the new file's path."""
        path = save_checkpoint(self.path_for(int(state.step)), state, model=model,
                               history=history, metadata=metadata, metrics=metrics,
                               input_shape=input_shape, loss=loss)
        files = self.checkpoints()
        keep = set(files[-self.keep:]) | {self.best(), path}
        for old in files:
            if old not in keep:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
        return path

    def load_latest(self, backend: str | Backend | None = None, *, model: Layer | None = None,
                    dtype: Any = None) -> Checkpoint | None:
        """The newest checkpoint that loads (see `load_checkpoint`), or None if the folder
        has none. A newest file that cannot be loaded is skipped with a warning naming it
        and why, and the one before it is tried."""
        problems = []
        for path in reversed(self.checkpoints()):
            try:
                return load_checkpoint(path, backend, model=model, dtype=dtype)
            except (CorruptCheckpointError, NotACheckpointError) as e:
                warnings.warn(f"skipping a checkpoint that cannot be loaded: {e}", stacklevel=2)
                problems.append(str(e))
        if problems:
            raise CorruptCheckpointError(f"no checkpoint in {self.directory} can be loaded: "
                                         + "; ".join(problems))
        return None

    def load_best(self, backend: str | Backend | None = None, *, model: Layer | None = None,
                  dtype: Any = None) -> Checkpoint | None:
        """The checkpoint with the best `monitor` score (see `best`), or None."""
        path = self.best()
        return None if path is None else load_checkpoint(path, backend, model=model,
                                                         dtype=dtype)
