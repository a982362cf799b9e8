"""The file: safetensors, read and written by the `safetensors` package (the format's
reference implementation), with what is ours on top — atomic writes, an integrity check of
the header and the tensor bytes, and errors that say what a file that cannot be read is.

A safetensors file is an 8-byte little-endian header length, a JSON header mapping each
tensor's name to its dtype, shape and byte range (plus `__metadata__`, a str -> str map),
then the raw little-endian bytes. The package parses and validates all of it (sizes,
offsets that tile the data exactly, dtypes); this module reads the header's JSON itself only
once the package has accepted it (for the offsets, which the package does not expose), or to
explain why it did not.

What the package does not do, and so is here:
- atomic writes: it writes to the path it is given, so a crash mid-save would leave half a
  file; we give it a temporary file beside the target (`xbackprop.atomic.atomic_path`), and
  its I/O errors (a full disk) become the OSError they are, so they read as one line
  (`xbackprop.fserrors`);
- an integrity check: it checks the structure, not the bytes, so a flipped bit in the data
  loads silently, and so does a dtype changed from F32 to I32 (the same byte count). We
  store a CRC-32 in the metadata (`crc32`) of everything else in the file: every tensor's
  entry in the header (name, dtype, shape, offsets), every other metadata entry, and the
  data byte for byte (`file_checksum`); `write_safetensors(..., checksum=True)` writes it
  (into the file the package wrote, in place of a placeholder, so it covers the offsets
  the package chose) and `SafetensorsFile.check` checks it. Files of format version 1
  carry `data_crc32`, a CRC-32 of the tensor bytes alone (`tensors_checksum`). A CRC finds
  damage and careless edits, not an adversary (anyone can recompute it): a file is code-free
  data either way;
- explanations: its errors are terse and the same for different faults ("incomplete
  metadata, file not fully covered" both for a file cut off while copying and for one with
  bytes appended; "header too large" for a pickle, an image or a text file). Only when it
  refuses a file, `explain` looks at the file's first bytes and, where there is one, its
  header, to say which it is (empty, a pickle, an image, truncated, ...).
"""

from __future__ import annotations

import errno
import json
import os
import re
import stat
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
           "file_checksum", "parse_json", "check_depth", "DTYPES", "CHECKSUM", "DATA_CHECKSUM",
           "MAX_DEPTH"]

#: safetensors dtype codes -> NumPy dtype names (the ones NumPy has)
DTYPES = {"BOOL": "bool", "U8": "uint8", "I8": "int8", "U16": "uint16", "I16": "int16",
          "F16": "float16", "U32": "uint32", "I32": "int32", "F32": "float32",
          "U64": "uint64", "I64": "int64", "F64": "float64"}
_NUMPY = {np.dtype(name) for name in DTYPES.values()}
_MAX_HEADER = 100_000_000  # bytes; the package's own limit
#: the metadata keys of the integrity checks: the whole file's, and (format 1) the data's
CHECKSUM, DATA_CHECKSUM = "crc32", "data_crc32"
_PLACEHOLDER = "-" * 8  # the checksum's place until the file it covers is written
#: how deeply a JSON record may nest (xbackprop's own nest a few dozen levels at most): a
#: deeper one is a damaged or hostile file, refused before Python's parser recurses into it
MAX_DEPTH = 200
_JSON_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Any],
                      metadata: dict[str, str] | None = None, *,
                      checksum: bool = False) -> Path:
    """Write NumPy arrays by name (and str -> str metadata) to a safetensors file, atomically:
    a crash or a kill while writing leaves the previous file as it was. checksum=True adds
    the integrity check (`crc32` in the metadata; see `file_checksum`)."""
    arrays = {}
    for name, a in tensors.items():
        a = np.asarray(a, order="C")  # (ascontiguousarray would make a 0-d array 1-d)
        if a.dtype.newbyteorder("=") not in _NUMPY:
            raise TypeError(f"{name}: safetensors cannot hold dtype {a.dtype}")
        arrays[name] = a
    metadata = dict(metadata or {})
    if checksum:
        metadata[CHECKSUM] = _PLACEHOLDER
    with atomic_path(path) as tmp:
        try:
            safetensors.numpy.save_file(arrays, str(tmp), metadata=metadata or None)
        except SafetensorError as e:  # a full disk: "I/O error: ... (os error 28)"
            code = re.search(r"os error (\d+)", str(e))
            if code is None:
                raise
            raise OSError(int(code.group(1)), os.strerror(int(code.group(1))), str(tmp)) from e
        if checksum:
            _seal(tmp, arrays)
    return Path(path)


def _seal(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write the checksum of the file the package wrote at `path` over its placeholder: the
    header as written (with the offsets the package chose), the metadata, the data."""
    with open(path, "rb+") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        raw = f.read(n)
        header = json.loads(raw)
        meta = header.pop("__metadata__")
        crc = file_checksum(_table(header), meta, arrays)
        mark = f'"{CHECKSUM}":"{_PLACEHOLDER}"'.encode()
        at = raw.find(mark)
        if at < 0 or raw.find(mark, at + 1) >= 0:
            raise RuntimeError(f"{path}: the checksum's place is not where it was written")
        f.seek(8 + at + len(mark) - len(_PLACEHOLDER) - 1)
        f.write(crc.encode())


def _table(header: dict[str, Any]) -> dict[str, tuple[str, list[int], list[int]]]:
    """name -> (dtype code, shape, data offsets), from a header's JSON (no `__metadata__`)."""
    return {name: (entry["dtype"], list(entry["shape"]), list(entry["data_offsets"]))
            for name, entry in header.items()}


def _le_bytes(a: np.ndarray) -> np.ndarray:
    """The bytes of `a` as the file holds them: little-endian, C order. (A buffer for
    zlib.crc32; numpy's stubs declare an ndarray's buffer protocol for Python 3.12+ only,
    hence the ignores where it is passed.)"""
    a = np.asarray(a, order="C")
    return a.astype(a.dtype.newbyteorder("<"), copy=False).reshape(-1).view(np.uint8)


def file_checksum(table: dict[str, tuple[str, list[int], list[int]]],
                  metadata: dict[str, str], arrays: dict[str, np.ndarray]) -> str:
    """CRC-32 (8 hex digits) of a whole file but the checksum itself: each tensor's entry in
    the header (name, dtype code, shape, data offsets, in the data's order), each metadata
    entry but `crc32` (by key), then the data byte for byte, each tensor where its offsets
    put it. A changed dtype, shape, offset, name, metadata value or data byte changes it."""
    order = sorted(table, key=lambda name: (table[name][2], name))
    crc = 0
    for name in order:
        code, shape, offsets = table[name]
        crc = zlib.crc32(json.dumps([name, code, list(shape), list(offsets)]).encode(), crc)
    for key in sorted(metadata):
        if key != CHECKSUM:
            crc = zlib.crc32(json.dumps([key, metadata[key]]).encode(), crc)
    for name in order:
        crc = zlib.crc32(_le_bytes(arrays[name]), crc)  # type: ignore[arg-type, unused-ignore]
    return f"{crc:08x}"


def tensors_checksum(tensors: dict[str, np.ndarray]) -> str:
    """CRC-32 (8 hex digits) of the tensors' bytes (little-endian, C order), taken widest
    item first, then by name: the check of format 1 files (`data_crc32`), in the order
    xbackprop laid tensors out in before the package wrote its files, so the checksums of
    files written then still hold."""
    crc = 0
    for name in sorted(tensors, key=lambda n: (-tensors[n].dtype.itemsize, n)):
        crc = zlib.crc32(_le_bytes(tensors[name]), crc)  # type: ignore[arg-type, unused-ignore]
    return f"{crc:08x}"


def parse_json(text: str, what: str) -> Any:
    """`text` parsed as JSON, refused (ValueError naming `what`) if it nests deeper than
    MAX_DEPTH: Python's parser would exhaust the stack on a header nested 100,000 deep."""
    check_depth(text, what, "deeper than xbackprop writes")
    return json.loads(text)


def check_depth(text: str, what: str, why: str) -> None:
    """Raise ValueError naming `what` (and `why` it matters) if JSON `text` nests more than
    MAX_DEPTH levels deep (counted without parsing: brackets outside strings)."""
    depth = 0
    for token in _JSON_TOKENS.finditer(text):
        c = token.group()
        if c in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise ValueError(f"{what} nests more than {MAX_DEPTH} levels deep, {why}")
        elif c in "]}":
            depth -= 1


def read_safetensors(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The arrays (by name) and the metadata of any safetensors file, checked for damage
    where it carries a checksum (files of other programs carry none)."""
    file = SafetensorsFile(path)
    arrays = file.arrays()
    problem = file.check(arrays, required=False)
    if problem is not None:
        raise file.corrupt(problem)
    return arrays, file.metadata


class SafetensorsFile:
    """A safetensors file whose header the package has read and checked: `metadata`,
    `entries` (name -> (NumPy dtype, shape)) and `table` (name -> (dtype code, shape,
    data offsets), the header as written); `arrays()` reads the tensors, `check(arrays)`
    the integrity check."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        try:  # one stat: a writer rotating its files may delete this one at any moment
            mode = os.stat(self.path).st_mode
        except OSError as e:
            if e.errno not in (errno.ENOENT, errno.ELOOP):
                raise
            link = (f": it is a symbolic link to {os.readlink(self.path)}, which does not "
                    "exist (or a loop of links)" if self.path.is_symlink() else "")
            raise FileNotFoundError(f"no checkpoint file at {self.path}{link}") from None
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(
                f"{self.path} is a folder, not a checkpoint file; for the newest checkpoint in "
                f"it use xbackprop.CheckpointManager({str(self.path)!r}).load_latest()")
        if not stat.S_ISREG(mode):  # a FIFO would block the reader forever, a device too
            raise NotACheckpointError(f"{self.path} is not a regular file (a pipe, a socket or "
                                      "a device), so not a checkpoint; give a checkpoint file")
        try:
            with safe_open(str(self.path), framework="numpy") as f:
                self.metadata: dict[str, str] = dict(f.metadata() or {})
                # f is no dict, and f.keys() is how it lists its tensors
                self.entries = {name: self._entry(f, name) for name in f.keys()}  # noqa: SIM118
        except SafetensorError as e:
            raise explain(self.path, e) from None
        self.table, metadata = self._header()
        if metadata != self.metadata or set(self.table) != set(self.entries):
            raise self.corrupt("was replaced while it was read; load it again")

    def _entry(self, f: Any, name: str) -> tuple[np.dtype, tuple[int, ...]]:
        piece = f.get_slice(name)
        code = piece.get_dtype()
        if code not in DTYPES:
            raise self.corrupt(f"holds tensor {name!r} of dtype {code}, which NumPy has not")
        return np.dtype(DTYPES[code]), tuple(piece.get_shape())

    def _header(self) -> tuple[dict[str, tuple[str, list[int], list[int]]], dict[str, str]]:
        """The header's tensor table and metadata as the file holds them (the package has
        accepted the file, so its header is well-formed JSON of the format's shape)."""
        try:
            with open(self.path, "rb") as f:
                n = struct.unpack("<Q", f.read(8))[0]
                header = json.loads(f.read(n))
            metadata = header.pop("__metadata__", None) or {}
            return _table(header), metadata
        except (ValueError, KeyError, TypeError, AttributeError, struct.error):
            raise self.corrupt("was replaced while it was read; load it again") from None

    def corrupt(self, problem: str) -> CorruptCheckpointError:
        return CorruptCheckpointError(f"{self.path} {problem}")

    def arrays(self) -> dict[str, np.ndarray]:
        """Every tensor, as the file holds it (see `check` for the integrity check)."""
        try:
            with safe_open(str(self.path), framework="numpy") as f:
                metadata = dict(f.metadata() or {})
                arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118 (as above)
        except SafetensorError as e:
            raise explain(self.path, e) from None
        if set(arrays) != set(self.entries) or metadata != self.metadata:
            raise self.corrupt("was replaced while it was read; load it again")
        return arrays

    def check(self, arrays: dict[str, np.ndarray], *, required: bool) -> str | None:
        """What is wrong with the file by its integrity check, or None: its checksum does
        not match what it holds (`crc32`: the header and the data; `data_crc32`, in files
        of format 1: the data), or, where `required`, it has none."""
        if CHECKSUM in self.metadata:
            if file_checksum(self.table, self.metadata, arrays) == self.metadata[CHECKSUM]:
                return None
            return ("is corrupt: its header or its tensor bytes do not match the checksum "
                    "written with them, so the file was damaged or edited after it was saved "
                    "(a disk or copy error, or another program); use an older checkpoint")
        if DATA_CHECKSUM in self.metadata:
            if tensors_checksum(arrays) == self.metadata[DATA_CHECKSUM]:
                return None
            return ("is corrupt: its tensor bytes do not match the checksum written with them, "
                    "so the file was damaged after it was saved (a disk or copy error); use an "
                    "older checkpoint")
        if required:
            return ("has no integrity check (no checksum in its header): xbackprop writes one "
                    "into every file, so this one was damaged or edited")
        return None


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
        header = parse_json((head[8:] + raw)[:n].decode("utf-8"), "its header")
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return corrupt(f"is corrupt: its header is not valid JSON ({e})")
    except ValueError as e:  # nested too deeply
        return corrupt(f"is corrupt: {e}")
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
