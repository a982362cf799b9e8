"""MNIST folders: the real test pair (where this checkout has it) and folders the tests write
load with the right shapes, scale and labels; one pair alone loads as its split; every
missing or mismatched file is an error naming it; the cache folder follows the rules."""

from __future__ import annotations

import numpy as np
import pytest

import xbackprop as xb
from tests.data.conftest import shared_mnist, write_mnist_like
from xbackprop.data import DataFileError, data_home, load_mnist, save_idx

#: how many of each digit the 10,000 MNIST test images hold
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def test_the_real_mnist_test_pair_loads_as_the_test_split():
    folder = shared_mnist()
    if folder is None:
        pytest.skip("the MNIST test pair is not in ../shared/data/mnist in this checkout")
    data = load_mnist(folder)
    assert data.x_train.shape == (0, 28, 28) and data.y_train.shape == (0,)
    assert data.x_test.shape == (10000, 28, 28) and data.x_test.dtype == np.float32
    assert data.y_test.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(data.y_test, minlength=10), MNIST_TEST_COUNTS)
    assert data.x_test.min() == 0.0 and data.x_test.max() == 1.0
    assert len(np.unique(data.x_test)) == 256  # every grey level, k / 255
    assert data.y_test[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # as published
    flat = load_mnist(folder, flatten=True, dtype="float64")
    assert flat.x_test.shape == (10000, 784) and flat.x_test.dtype == np.float64
    np.testing.assert_allclose(flat.x_test.reshape(-1, 28, 28), data.x_test, rtol=1e-7)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "raw"])
def test_both_pairs_load_scaled_with_their_labels(tmp_path, gz):
    raw = write_mnist_like(tmp_path, train=30, test=20, gz=gz)
    data = load_mnist(tmp_path)
    assert isinstance(data, xb.data.Dataset)
    assert data.x_train.shape == (30, 28, 28) and data.x_test.shape == (20, 28, 28)
    np.testing.assert_allclose(data.x_train * 255, raw["train-images-idx3-ubyte"], atol=1e-4)
    np.testing.assert_array_equal(data.y_test, raw["t10k-labels-idx1-ubyte"])


def test_one_pair_loads_as_its_split_alone(tmp_path):
    write_mnist_like(tmp_path / "train-only", train=12, test=None)
    data = load_mnist(tmp_path / "train-only", flatten=True)
    assert data.x_train.shape == (12, 784) and data.x_test.shape == (0, 784)
    assert data.y_test.shape == (0,) and data.y_test.dtype == np.int64


def test_files_named_as_some_mirrors_name_them(tmp_path):
    """Kaggle's copies put a dot before "idx": t10k-images.idx3-ubyte."""
    raw = write_mnist_like(tmp_path / "plain", train=None, test=5, gz=False)
    for stem, array in raw.items():
        save_idx(tmp_path / stem.replace("-idx", ".idx"), array)
    data = load_mnist(tmp_path)
    np.testing.assert_array_equal(data.y_test, raw["t10k-labels-idx1-ubyte"])


def test_a_missing_half_of_a_pair_is_named(tmp_path):
    write_mnist_like(tmp_path, train=5, test=5)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataFileError, match="found t10k-images-idx3-ubyte.gz but not "
                                            r"t10k-labels-idx1-ubyte\[.gz\]"):
        load_mnist(tmp_path)


def test_images_and_labels_that_do_not_belong_together(tmp_path):
    write_mnist_like(tmp_path, train=None, test=5)
    save_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte.gz holds 5 images but "
                                            "t10k-labels-idx1-ubyte.gz holds 4 labels"):
        load_mnist(tmp_path)


def test_swapped_files_are_named(tmp_path):
    write_mnist_like(tmp_path, train=None, test=5)
    labels = tmp_path / "t10k-labels-idx1-ubyte.gz"
    images = tmp_path / "t10k-images-idx3-ubyte.gz"
    i, lab = images.read_bytes(), labels.read_bytes()
    images.write_bytes(lab)
    labels.write_bytes(i)
    with pytest.raises(DataFileError, match=r"t10k-images-idx3-ubyte.gz: holds uint8 values of "
                                            r"shape \(5,\); images are .*is this a labels file"):
        load_mnist(tmp_path)


def test_a_damaged_file_is_named(tmp_path):
    write_mnist_like(tmp_path, train=None, test=5, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DataFileError, match="t10k-images-idx3-ubyte: truncated"):
        load_mnist(tmp_path)


def test_an_empty_or_missing_folder_says_how_to_get_the_files(tmp_path):
    with pytest.raises(DataFileError, match="no mnist files in .*expected "
                                            "train-images-idx3-ubyte.gz.*xbackprop data download "
                                            "mnist --dir"):
        load_mnist(tmp_path)
    with pytest.raises(DataFileError, match="no folder .*nowhere.*load_fashion_mnist"
                                            r"\(download=True\)"):
        xb.data.load_fashion_mnist(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="unknown data set 'kmnist'; downloadable sets: mnist, "
                                         "fashion-mnist"):
        load_mnist(tmp_path, name="kmnist")


def test_the_default_folder_is_the_cache(data_home):
    write_mnist_like(data_home / "mnist", train=None, test=3)
    assert load_mnist().x_test.shape == (3, 28, 28)
    write_mnist_like(data_home / "fashion-mnist", train=4, test=None)
    assert xb.data.load_fashion_mnist().x_train.shape == (4, 28, 28)


def test_data_home_rules(monkeypatch, tmp_path):
    monkeypatch.setenv("XBACKPROP_DATA", str(tmp_path / "mine"))
    assert data_home() == tmp_path / "mine"
    monkeypatch.delenv("XBACKPROP_DATA")
    monkeypatch.setattr("sys.platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "xbackprop"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # XDG: relative paths are invalid
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_home() == tmp_path / "home" / ".cache" / "xbackprop"
    monkeypatch.setattr("sys.platform", "darwin")
    assert data_home() == tmp_path / "home" / "Library" / "Caches" / "xbackprop"
