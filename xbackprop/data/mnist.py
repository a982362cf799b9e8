"""MNIST and Fashion-MNIST from their four standard IDX files, optionally downloaded first.

    data = xb.data.load_mnist("path/to/folder")     # the four files, gzipped or not
    data = xb.data.load_mnist(download=True)        # fetched into ~/.cache/xbackprop/mnist
    data.x_train: (60000, 28, 28) float32 in [0, 1];  data.y_train: (60000,) int64 labels

A folder may hold both pairs of files or one of them: a folder with only the test pair
(`t10k-*`) loads as the test split with an empty training split, and the other way round.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import remote
from .files import DataFileError
from .idx import load_idx
from .split import Dataset

__all__ = ["load_mnist", "load_fashion_mnist", "MNIST_FILES", "FASHION_MNIST_CLASSES"]

#: split -> (images, labels), as the files are named without ".gz"
MNIST_FILES: dict[str, tuple[str, str]] = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")


def load_mnist(path: str | Path | None = None, *, download: bool = False,
               flatten: bool = False, dtype: str = "float32", progress: bool = True,
               name: str = "mnist") -> Dataset:
    """The MNIST images and labels in the folder `path` (default: the download cache,
    `xbackprop.data.data_home() / "mnist"`).

    x: (N, 28, 28), or (N, 784) with `flatten`, pixel values scaled from 0..255 to [0, 1] in
    `dtype`; y: (N,) int64 labels. For a convolutional network use `x[:, None]`, (N, 1, 28, 28).
    download=True first fetches into `path` whatever is missing, and verifies every file's
    SHA-256 (progress on stderr unless `progress=False`). `name` picks another set in the
    same format ("fashion-mnist"). Files are named as published (`train-images-idx3-ubyte.gz`,
    or unzipped, or with a dot before "idx" as some mirrors name them).
    """
    source = remote.get_remote_set(name)
    folder = source.folder(path)
    if download:
        remote.download(source, folder, progress=progress)
    if not folder.is_dir():
        raise DataFileError(f"no folder {folder}; {_how_to_get(name, folder)}")
    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split, (images_name, labels_name) in MNIST_FILES.items():
        images, labels = _find(folder, images_name), _find(folder, labels_name)
        if images is None and labels is None:
            continue
        if images is None or labels is None:
            have = next(found for found in (images, labels) if found is not None)
            lack = labels_name if labels is None else images_name
            raise DataFileError(f"{folder}: found {have.name} but not {lack}[.gz]: the {split} "
                                f"images and labels come as a pair; {_how_to_get(name, folder)}")
        splits[split] = _read_pair(images, labels, dtype, flatten)
    if not splits:
        expected = ", ".join(f"{n}.gz" for pair in MNIST_FILES.values() for n in pair)
        raise DataFileError(f"no {name} files in {folder} (expected {expected}, gzipped or "
                            f"not); {_how_to_get(name, folder)}")
    like_x, like_y = next(iter(splits.values()))
    empty = (like_x[:0], like_y[:0])
    train, test = splits.get("train", empty), splits.get("test", empty)
    return Dataset(train[0], train[1], test[0], test[1])


def load_fashion_mnist(path: str | Path | None = None, *, download: bool = False,
                       flatten: bool = False, dtype: str = "float32",
                       progress: bool = True) -> Dataset:
    """Fashion-MNIST (Zalando's clothing images, the same format and sizes as MNIST): see
    `load_mnist`. Label k is `FASHION_MNIST_CLASSES[k]`."""
    return load_mnist(path, download=download, flatten=flatten, dtype=dtype,
                      progress=progress, name="fashion-mnist")


def _how_to_get(name: str, folder: Path) -> str:
    return (f"download them with `xbackprop data download {name} --dir {folder}` (or "
            f"load_{name.replace('-', '_')}(download=True)), or pass the folder that holds them")


def _find(folder: Path, stem: str) -> Path | None:
    dotted = stem.replace("-idx", ".idx")  # "train-images.idx3-ubyte", as Kaggle names them
    for candidate in (f"{stem}.gz", stem, f"{dotted}.gz", dotted):
        if (folder / candidate).is_file():
            return folder / candidate
    return None


def _read_pair(images_path: Path, labels_path: Path, dtype: str, flatten: bool
               ) -> tuple[np.ndarray, np.ndarray]:
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise DataFileError(f"{images_path}: holds {images.dtype} values of shape "
                            f"{images.shape}; images are uint8 of shape (N, rows, cols) (is "
                            "this a labels file?)")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise DataFileError(f"{labels_path}: holds {labels.dtype} values of shape "
                            f"{labels.shape}; labels are integers of shape (N,) (is this an "
                            "images file?)")
    if len(images) != len(labels):
        raise DataFileError(f"{images_path.name} holds {len(images)} images but "
                            f"{labels_path.name} holds {len(labels)} labels (in "
                            f"{images_path.parent}); the files do not belong together")
    if len(labels) and labels.min() < 0:
        raise DataFileError(f"{labels_path}: negative label {labels.min()}")
    x = np.divide(images, 255, dtype=dtype)  # 0..255 -> [0, 1]
    if flatten:
        x = x.reshape(len(x), -1)
    return x, labels.astype(np.int64)
