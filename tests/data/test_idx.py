"""IDX files: every type code and 1 to 4 dimensions survive a round trip, the bytes on disk
are the format's (big-endian, checked against files built by hand), and every way a file
can be wrong is an error that names the file and the problem."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from xbackprop.atomic import TMP_SUFFIX
from xbackprop.data import DataFileError, IdxError, load_idx, save_idx
from xbackprop.data.idx import IDX_DTYPES

SHAPES = [(7,), (3, 5), (4, 3, 2), (2, 3, 2, 3)]


def _values(dtype: np.dtype, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Values spread over the type's range, extremes included."""
    dtype = dtype.newbyteorder("=")
    if dtype.kind == "f":
        a = rng.normal(scale=1e3, size=shape)
        a.flat[0] = np.finfo(dtype).max
        a.flat[-1] = -np.finfo(dtype).tiny
        return a.astype(dtype)
    info = np.iinfo(dtype)
    a = rng.integers(info.min, info.max, size=shape, endpoint=True)
    a.flat[0], a.flat[-1] = info.min, info.max
    return a.astype(dtype)


@pytest.mark.parametrize("code", sorted(IDX_DTYPES), ids=lambda c: f"0x{c:02X}")
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("gz", [False, True], ids=["raw", "gz"])
def test_round_trip_every_type_and_rank(tmp_path, code, shape, gz):
    dtype = IDX_DTYPES[code]
    array = _values(dtype, shape, np.random.default_rng(code))
    path = save_idx(tmp_path / ("a.idx" + (".gz" if gz else "")), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == gz
    back = load_idx(path)
    assert back.dtype == dtype.newbyteorder("=") and back.shape == shape
    np.testing.assert_array_equal(back, array)
    back[...] = 0  # a writable copy, not a view of the file's buffer


@pytest.mark.parametrize("code, fmt, values", [
    (0x08, "B", [0, 1, 254, 255]), (0x09, "b", [-128, -1, 0, 127]),
    (0x0B, "h", [-32768, -2, 258, 32767]), (0x0C, "i", [-2**31, -3, 65536, 2**31 - 1]),
    (0x0D, "f", [-1.5, 0.0, 3.25, 1e30]), (0x0E, "d", [-2.5, 1e-300, 7.0, 1e300]),
])
def test_reads_big_endian_files_built_by_hand(tmp_path, code, fmt, values):
    """A file written byte by byte from the format's definition: a round trip alone would
    not notice a reader and writer that agree on the wrong byte order."""
    body = struct.pack(">HBB", 0, code, 2) + struct.pack(">II", 2, 2) + struct.pack(
        f">{len(values)}{fmt}", *values)
    (tmp_path / "hand.idx").write_bytes(body)
    got = load_idx(tmp_path / "hand.idx")
    assert got.shape == (2, 2)
    np.testing.assert_array_equal(got.ravel(), np.array(values, dtype=got.dtype))
    save_idx(tmp_path / "again.idx", got)
    assert (tmp_path / "again.idx").read_bytes() == body


def test_gzip_is_recognised_by_content_not_name(tmp_path):
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    save_idx(tmp_path / "zipped-but-no-suffix", a, compress=True)
    save_idx(tmp_path / "plain.gz", a, compress=False)
    np.testing.assert_array_equal(load_idx(tmp_path / "zipped-but-no-suffix"), a)
    np.testing.assert_array_equal(load_idx(tmp_path / "plain.gz"), a)
    # the same array gives the same bytes (gzip's timestamp fixed), so checksums are stable
    save_idx(tmp_path / "twice.gz", a)
    first = (tmp_path / "twice.gz").read_bytes()
    save_idx(tmp_path / "twice.gz", a)
    assert (tmp_path / "twice.gz").read_bytes() == first


def test_save_is_atomic_and_refuses_what_idx_cannot_hold(tmp_path):
    path = tmp_path / "keep.idx"
    save_idx(path, np.arange(3, dtype=np.int32))
    before = path.read_bytes()
    for bad, message in [(np.zeros(3, np.float16), "not float16"),
                         (np.zeros(3, bool), "not bool"),
                         (np.float32(1.0), "not 0")]:
        with pytest.raises(ValueError, match=message):
            save_idx(path, bad)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob(f"*{TMP_SUFFIX}"))


def _valid(tmp_path, name="x.idx"):
    return save_idx(tmp_path / name, np.arange(24, dtype=np.int16).reshape(2, 3, 4))


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-3], r"truncated: the header says int16 values of shape \(2, 3, 4\), 64 "
                       r"bytes in all, but the file has 61"),
    (lambda b: b + b"\0\0", "longer than its header says"),
    (lambda b: b[:10], "truncated inside the header"),
    (lambda b: b[:3], "3 bytes, too short for an IDX header"),
    (lambda b: b"", "0 bytes, too short"),
    (lambda b: b"\x89PNG" + b[4:], r"magic number 0x89504e47 is not an IDX magic number"),
    (lambda b: b[:2] + b"\x0a" + b[3:], "magic number 0x00000a03 is not an IDX"),
    (lambda b: b[:3] + b"\x00" + b[4:], "the header says 0 dimensions"),
    # sizes whose product overflows int64 (it wrapped around to a wrong byte count)
    (lambda b: b[:4] + b"\xff" * 12 + b[16:], r"the header's sizes \(4294967295, 4294967295, "
                                              r"4294967295\) make 1.58e\+29 bytes, more than "
                                              r"any file holds: a corrupt header"),
])
def test_damaged_files_are_clear_errors(tmp_path, damage, message):
    path = _valid(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(IdxError, match=message) as info:
        load_idx(path)
    assert str(path) in str(info.value)


def test_truncated_gzip_and_corrupt_gzip(tmp_path):
    path = _valid(tmp_path, "x.idx.gz")
    whole = path.read_bytes()
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(DataFileError, match="gzip stream ends early: the file is truncated"):
        load_idx(path)
    broken = bytearray(whole)
    broken[-6] ^= 0xFF  # inside the CRC/length trailer
    path.write_bytes(bytes(broken))
    with pytest.raises(DataFileError, match="corrupt gzip data"):
        load_idx(path)
    # a gzip whose content is too short for its header: the "unzipped" size is reported
    path.write_bytes(gzip.compress(_valid(tmp_path).read_bytes()[:-1]))
    with pytest.raises(IdxError, match="truncated.*but the unzipped file has 63"):
        load_idx(path)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here.idx: no such file"):
        load_idx(tmp_path / "nothing-here.idx")
