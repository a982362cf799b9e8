"""Shipped data: the 8x8 digits (1,797 images, 10 classes), split by class; read without
pickle; and the split helper's guarantees."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import data
from xbackprop.data import shipped as shipped_module


@pytest.fixture(scope="module")
def digits():
    return data.load_digits(seed=0)


def test_digits_shapes_and_types(digits):
    assert isinstance(digits, data.Dataset)
    assert digits.x_train.shape[1:] == (64,) and digits.x_test.shape[1:] == (64,)
    assert len(digits.x_train) + len(digits.x_test) == 1797
    assert len(digits.x_train) == len(digits.y_train) and len(digits.x_test) == len(
        digits.y_test)
    assert digits.x_train.dtype == np.float32
    assert digits.y_train.dtype.kind == "i" and digits.y_train.ndim == 1


def test_digits_values_in_unit_interval(digits):
    for x in (digits.x_train, digits.x_test):
        assert x.min() == 0.0 and x.max() == 1.0
    # 17 grey levels, 0/16 ... 16/16
    levels = np.unique(np.concatenate([digits.x_train, digits.x_test]))
    np.testing.assert_array_equal(levels * 16, np.arange(17))


def test_split_is_stratified_and_complete(digits):
    assert set(digits.y_train) == set(digits.y_test) == set(range(10))
    full = np.bincount(np.concatenate([digits.y_train, digits.y_test]), minlength=10)
    assert full.sum() == 1797 and full.min() >= 170
    test_counts = np.bincount(digits.y_test, minlength=10)
    np.testing.assert_array_equal(test_counts, np.round(full * 0.2).astype(int))
    assert len(digits.x_test) == int(np.round(full * 0.2).sum())
    # every image exactly once: train + test is the shipped set, as a multiset of rows
    raw = shipped_module._read_npz("digits.npz")
    shipped = np.concatenate([raw["images"].reshape(-1, 64) / 16.0, raw["labels"][:, None]], 1)
    split = np.concatenate([
        np.concatenate([digits.x_train, digits.y_train[:, None]], 1),
        np.concatenate([digits.x_test, digits.y_test[:, None]], 1)])
    np.testing.assert_array_equal(np.unique(split, axis=0, return_counts=True)[1],
                                  np.unique(shipped, axis=0, return_counts=True)[1])
    np.testing.assert_array_equal(np.unique(split, axis=0), np.unique(shipped, axis=0))


def test_split_depends_on_the_seed_only(digits):
    again = data.load_digits(seed=0)
    np.testing.assert_array_equal(again.x_train, digits.x_train)
    np.testing.assert_array_equal(again.y_test, digits.y_test)
    other = data.load_digits(seed=1)
    assert not np.array_equal(other.y_test, digits.y_test)
    assert len(other.x_test) == len(digits.x_test)


def test_digits_as_images_and_float64():
    images = data.load_digits(flatten=False, dtype="float64")
    assert images.x_train.shape[1:] == (1, 8, 8) and images.x_train.dtype == np.float64
    flat = data.load_digits()
    np.testing.assert_array_equal(images.x_train.reshape(-1, 64).astype(np.float32),
                                  flat.x_train)


def test_test_fraction():
    half = data.load_digits(test_fraction=0.5)
    assert abs(len(half.x_test) - 1797 / 2) <= 10
    for bad in (0.0, 1.0, -0.2, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            data.load_digits(test_fraction=bad)


def test_data_files_are_read_without_pickle(monkeypatch):
    calls = []
    real_load = np.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("allow_pickle"))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", spy)
    data.load_digits()
    assert calls == [False]


def test_a_data_file_with_objects_is_refused(monkeypatch, tmp_path):
    """A data file that holds pickled objects (which could run code) does not load."""
    np.savez(tmp_path / "evil.npz", images=np.array([{"a": 1}], dtype=object))

    class Folder:
        def joinpath(self, name):
            return tmp_path / name

    monkeypatch.setattr(shipped_module.resources, "files", lambda package: Folder())
    with pytest.raises(ValueError, match="allow_pickle"):
        shipped_module._read_npz("evil.npz")


def test_train_test_split_unstratified_for_float_targets():
    x = np.arange(50, dtype=np.float32)[:, None]
    y = np.linspace(0, 1, 50)
    split = data.train_test_split(x, y, test_fraction=0.2, seed=3)
    assert len(split.x_test) == 10 and len(split.x_train) == 40
    together = np.sort(np.concatenate([split.x_train[:, 0], split.x_test[:, 0]]))
    np.testing.assert_array_equal(together, x[:, 0])
    np.testing.assert_array_equal(split.y_test, y[split.x_test[:, 0].astype(int)])


def test_train_test_split_length_mismatch():
    with pytest.raises(ValueError, match="x has 3 samples but y has 2"):
        data.train_test_split(np.zeros((3, 1)), np.zeros(2, dtype=int))


def test_xor_points():
    x, y = data.xor()
    np.testing.assert_array_equal(x, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y[:, 0], np.logical_xor(x[:, 0], x[:, 1]))
    assert x.dtype == y.dtype == np.float32 and y.shape == (4, 1)
    assert xb.data.xor("float64")[0].dtype == np.float64


def test_digits_credited():
    from importlib import resources

    text = resources.files("xbackprop.data").joinpath("README.md").read_text()
    assert "UCI" in text or "uci" in text.lower()
