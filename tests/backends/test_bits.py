"""The random-bits hash on wide lanes (int64 masked to 32 bits, for libraries without full
uint32 arithmetic) gives exactly the bits of the uint32 hash, checked on NumPy, where both
run."""

from __future__ import annotations

import numpy as np
import pytest

from xbackprop.backends import _bits

KEYS = [(0, 0), (1, 2), (0xFFFFFFFF, 0xFFFFFFFF), (0x9E3779B9, 7), (123456789, 0x80000000)]


@pytest.mark.parametrize("key", KEYS)
def test_wide_lanes_give_the_uint32_bits(key):
    k32 = np.asarray(key, dtype=np.uint32)
    expected = _bits.bits(np, k32, (5, 37))
    wide = _bits.bits(np, k32.astype(np.int64), (5, 37), lane=np.int64)
    assert wide.dtype == np.int64 and wide.min() >= 0 and wide.max() <= 0xFFFFFFFF
    np.testing.assert_array_equal(wide.astype(np.uint32), expected)
    assert len(np.unique(expected)) == expected.size  # a bijection of distinct counters


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("data", [0, 17, 2**32 - 1, 2**40 + 3, np.int32(-5), np.int32(2**31 - 1)])
def test_wide_lanes_fold_in_as_uint32(key, data):
    k32 = np.asarray(key, dtype=np.uint32)
    expected = _bits.fold_in(np, k32, data)
    wide = _bits.fold_in(np, k32.astype(np.int64), data, lane=np.int64)
    assert expected.dtype == np.uint32 and expected.shape == (2,)
    np.testing.assert_array_equal(wide.astype(np.uint32), expected)


def test_the_multiplication_mod_2_to_32_is_exact_for_the_largest_factors():
    x = np.asarray([0xFFFFFFFF, 0xFFFF0001, 1, 0], dtype=np.int64)
    for m in (_bits.M1, _bits.M2, _bits.GOLDEN, 0xFFFFFFFF):
        expected = [(int(v) * m) % 2**32 for v in x]
        np.testing.assert_array_equal(_bits._mul(np, x, m, np.int64), expected)
