"""IDX files, the format of MNIST and its relatives: read any of them, write one back.

An IDX file is a 4-byte magic number, one big-endian uint32 size per dimension, then the
values in C order, big-endian:

    magic = 0x00 0x00 <type> <number of dimensions>
    type  0x08 uint8   0x09 int8   0x0B int16   0x0C int32   0x0D float32   0x0E float64

The files are often gzipped; gzip is recognised by its first two bytes, not by the name.
Reading checks the header against the file's length, so a wrong or truncated file is an
error that names the file and what is wrong, never an array of garbage.
"""

from __future__ import annotations

import gzip
import math
import os
import struct
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from .files import DataFileError, read_bytes

__all__ = ["IDX_DTYPES", "IdxError", "load_idx", "save_idx"]

#: IDX type code -> NumPy dtype (big-endian, as stored)
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=").str: code for code, dt in IDX_DTYPES.items()}

MAX_DIMS = 8  # the format allows 255; more than a handful means the header is garbage
MAX_BYTES = 2 ** 62  # sizes whose product passes this are garbage (and would overflow int64)


class IdxError(DataFileError):
    """A file is not a valid IDX file; the message names the file and the problem."""


def load_idx(path: str | os.PathLike) -> np.ndarray:
    """The array stored in the IDX file `path` (gzipped or not), in native byte order.

    Shape and dtype come from the header: MNIST's images give uint8 (N, 28, 28), its labels
    uint8 (N,). Raises `IdxError` for a wrong magic number, an unknown type code, or a file
    shorter or longer than its header says; FileNotFoundError if there is no such file.
    """
    path = Path(path)
    data, zipped = read_bytes(path)
    if len(data) < 4:
        raise IdxError(f"{path}: {len(data)} bytes, too short for an IDX header (4-byte magic "
                       "number, then the sizes); the file is empty or truncated")
    zero, code, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or code not in IDX_DTYPES:
        raise IdxError(f"{path}: magic number 0x{data[:4].hex()} is not an IDX magic number "
                       "(0x0000 then a type code 08, 09, 0B, 0C, 0D or 0E, then the number "
                       "of dimensions): not an IDX file")
    if not 1 <= ndim <= MAX_DIMS:
        raise IdxError(f"{path}: the header says {ndim} dimensions; expected 1 to {MAX_DIMS}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated inside the header ({len(data)} bytes, the header "
                       f"alone is {header})")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    dtype = IDX_DTYPES[code]
    expected = header + math.prod(shape) * dtype.itemsize  # Python ints: no overflow
    if expected > MAX_BYTES:
        raise IdxError(f"{path}: the header's sizes {shape} make {expected:.3g} bytes, more "
                       "than any file holds: a corrupt header, or not an IDX file")
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "longer than its header says"
        raise IdxError(f"{path}: {problem}: the header says {dtype.newbyteorder('=').name} "
                       f"values of shape {shape}, {expected} bytes in all, but the "
                       f"{'unzipped ' if zipped else ''}file "
                       f"has {len(data)}; fetch it again")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return values.astype(dtype.newbyteorder("="))  # a native, writable copy


def save_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool | None = None
             ) -> Path:
    """Write `array` (1 to 8 dimensions; uint8, int8, int16, int32, float32 or float64) as an
    IDX file, gzipped if `compress` (default: when the name ends in ".gz"). The write is
    atomic: `path` is the old file or the whole new one, never half of it."""
    path = Path(path)
    array = np.asarray(array)
    code = _CODES.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise ValueError(f"IDX stores uint8, int8, int16, int32, float32 or float64, not "
                         f"{array.dtype}; convert with array.astype(...) first")
    if not 1 <= array.ndim <= MAX_DIMS:
        raise ValueError(f"IDX stores arrays of 1 to {MAX_DIMS} dimensions, not {array.ndim}")
    body = (struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
            + np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes())
    if compress if compress is not None else path.suffix == ".gz":
        body = gzip.compress(body, mtime=0)  # mtime 0: the same array gives the same bytes
    with atomic_write(path) as f:
        f.write(body)
    return path
