"""The file: safetensors, read and written by the `safetensors` package (the format's
reference implementation), with what is ours on top — atomic writes, an integrity check of
the tensor bytes, and errors that say what a file that cannot be read is.

A safetensors file is an 8-byte little-endian header length, a JSON header mapping each
tensor's name to its dtype, shape and byte range (plus `__metadata__`, a str -> str map),
then the raw little-endian bytes. The package parses and validates all of it (sizes,
offsets that tile the data exactly, dtypes); this module never parses a file it loads.

What the package does not do, and so is here:
- atomic writes: it writes to the path it is given, so a crash mid-save would leave half a
  file; we give it a temporary file beside the target (`xbackprop.atomic.atomic_path`), and
  its I/O errors (a full disk) become the OSError they are, so they read as one line
  (`xbackprop.fserrors`);
- an integrity check: it checks the structure, not the bytes, so a flipped bit in the data
  loads silently; we store a CRC-32 of the tensor bytes in the metadata (`data_crc32`) and
  check it on reading (`tensors_checksum`);
- explanations: its errors are terse and the same for different faults ("incomplete
  metadata, file not fully covered" both for a file cut off while copying and for one with
  bytes appended; "header too large" for a pickle, an image or a text file). Only when it
  refuses a file, `explain` looks at the file's first bytes and, where there is one, its
  header, to say which it is (empty, a pickle, an image, truncated, ...).
"""

from __future__ import annotations

import json
import os
import re
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.numpy
from safetensors import SafetensorError, safe_open

from ..atomic import atomic_path
from .errors import CheckpointError, CorruptCheckpointError, NotACheckpointError

__all__ = ["SafetensorsFile", "read_safetensors", "write_safetensors", "tensors_checksum",
           "DTYPES"]

#: safetensors dtype codes -> NumPy dtype names (the ones NumPy has)
DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16",
          "F16": "float16", "U32": "uint32", "I32": "int32", "F32": "float32",
          "U64": "uint64", "I64": "int64", "F64": "float64"}
_NUMPY = {np.dtype(name) for name in DTYPES.values()}
_MAX_HEADER = 100_000_000  # bytes; the package's own limit


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Any],
                      metadata: dict[str, str] | None = None) -> Path:
    """Write NumPy arrays by name (and str -> str metadata) to a safetensors file, atomically:
    a crash or a kill while writing leaves the previous file as it was."""
    arrays = {}
    for name, a in tensors.items():
        a = np.asarray(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        if a.dtype.newbyteorder("=") not in _NUMPY:
            raise TypeError(f"{name}: safetensors cannot hold dtype {a.dtype}")
        arrays[name] = a
    with atomic_path(path) as tmp:
        try:
            safetensors.numpy.save_file(arrays, str(tmp), metadata=dict(metadata or {}) or None)
        except SafetensorError as e:  # a full disk: "I/O error: ... (os error 28)"
            code = re.search(r"os error (\d+)", str(e))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(tmp)) from e
    return Path(path)


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays (by name) and the metadata of any safetensors file, checked for damage."""
    file = SafetensorsFile(path)
    return file.arrays(), file.metadata


def tensors_checksum(tensors: dict[str, np.ndarray]) -> str:
    """CRC-32 (8 hex digits) of the tensors' bytes (little-endian, C order), taken widest
    item first, then by name: the order xbackprop laid tensors out in before the package
    wrote its files, so the checksums of files written then still hold, and the checksum does
    not depend on how a writer lays a file out."""
    crc = 0
    for name in sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n)):
        a = np.asarray(tensors[name], order="C")
        data = a.astype(a.dtype.newbyteorder("<"), copy=False).reshape(-1).view(np.uint8)
        # an ndarray has the buffer protocol; numpy's stubs declare it for Python 3.12+ only
        crc = zlib.crc32(data, crc)  # type: ignore[arg-type, unused-ignore]
    return f"{crc:08x}"


class SafetensorsFile:
    """A safetensors file whose header the package has read and checked: `metadata` and
    `entries` (name -> (NumPy dtype, shape)); `arrays()` reads the tensors."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if self.path.is_dir():
            raise IsADirectoryError(
                f"{self.path} is a folder, not a checkpoint file; for the newest checkpoint in "
                f"it use xbackprop.CheckpointManager({str(self.path)!r}).load_latest()")
        if not self.path.exists():
            raise FileNotFoundError(f"no checkpoint file at {self.path}")
        try:
            with safe_open(str(self.path), framework="numpy") as f:
                self.metadata: dict[str, str] = dict(f.metadata() or {})
                # f is no dict, and f.keys() is how it lists its tensors
                self.entries = {name: self._entry(f, name) for name in f.keys()}  # noqa: SIM118
        except SafetensorError as e:
            raise explain(self.path, e) from None

    def _entry(self, f: Any, name: str) -> tuple[np.dtype, tuple[int, ...]]:
        piece = f.get_slice(name)
        code = piece.get_dtype()
        if code not in DTYPES:
            raise self.corrupt(f"holds tensor {name!r} of dtype {code}, which NumPy has not")
        return np.dtype(DTYPES[code]), tuple(piece.get_shape())

    def corrupt(self, problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{self.path} {problem}")

    def arrays(self) -> dict[str, np.ndarray]:
        """Every tensor, checked against the CRC-32 stored with them (`data_crc32`)."""
        try:
            with safe_open(str(self.path), framework="numpy") as f:
                arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (as above)
        except SafetensorError as e:
            raise explain(self.path, e) from None
        if set(arrays) != set(self.entries):
            raise self.corrupt("is truncated or was replaced while it was read")
        crc = self.metadata.get("data_crc32")
        if crc is not None and tensors_checksum(arrays) != crc:
            raise self.corrupt("is corrupt: its tensor bytes do not match the checksum written "
                               "with them, so the file was damaged after it was saved (a disk "
                               "or copy error); use an older checkpoint")
        return arrays


# -- what a file the package refuses is --------------------------------------------------------

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


def explain(path: Path, error: SafetensorError) -> CheckpointError:
    """The error for a file the package refused (`error`), saying what the file is: not a
    safetensors file at all (and what it is, if its first bytes say), cut off in its header
    or its data, with bytes after its data, a header that is not JSON; otherwise the
    package's own words."""
    def not_ours(problem: str) -> NotACheckpointError:
        return NotACheckpointError(f"{path} {problem}")

    def corrupt(problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{path} {problem}")

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(16)
        n = struct.unpack("<Q", head[:8])[0] if len(head) >= 8 else 0
        raw = f.read(n - 8) if 8 < n <= _MAX_HEADER and size >= 8 + n else b""
    if size == 0:
        return not_ours("is empty (0 bytes): it was created but never written")
    what = _sniff(head)
    if what:
        return not_ours(f"is {what}")
    if size < 8 or n > _MAX_HEADER or head[8:9] not in (b"{", b""):
        return not_ours("is not a safetensors file (it does not start with a header length "
                        "and a JSON header), so not a checkpoint")
    if size < 8 + n:
        return corrupt(f"is truncated: its header should be {n} bytes but the file ends after "
                       f"{size - 8}; it was cut off while being copied or written")
    try:
        header = json.loads((head[8:] + raw)[:n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return corrupt(f"is corrupt: its header is not valid JSON ({e})")
    data = size - 8 - n
    try:
        spans = sorted((int(v["data_offsets"][0]), int(v["data_offsets"][1]), k)
                       for k, v in header.items() if k != "__metadata__")
    except (AttributeError, KeyError, TypeError, ValueError, IndexError):
        spans = None
    if spans is not None:
        needed = max((end for _, end, _ in spans), default=0)
        if needed > data:
            return corrupt(f"is truncated: its tensors need {needed} bytes after the header "
                           f"but only {data} are there (the file has {size} bytes); it was "
                           "cut off while being copied or written")
        at = 0
        for start, end, name in spans:
            if start != at:
                return corrupt(f"is corrupt: tensor {name!r} starts at byte {start} of the "
                               f"data, where byte {at} was expected (its data_offsets overlap "
                               "another tensor's or leave a gap)")
            at = end
        if data > at:
            return corrupt(f"is corrupt: {data - at} unexpected bytes follow its last tensor")
    return corrupt(f"is corrupt: the safetensors library cannot read it ({error})")
