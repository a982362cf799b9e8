"""Data: the sets that ship with xbackprop, loaders for standard formats and small tools.

Everything here returns NumPy arrays on the host; `fit` moves batches to the backend.
Nothing here ever unpickles. See README.md in this folder for sources and licences.
"""

from __future__ import annotations

from .files import DATA_ENV_VAR, DataFileError, data_home
from .generators import moons, spiral
from .idx import IdxError, load_idx, save_idx
from .mnist import FASHION_MNIST_CLASSES, load_fashion_mnist, load_mnist
from .remote import REMOTE_SETS, DownloadError, download
from .shipped import load_digits, load_energy, load_forest_fires, xor
from .sources import ArraySource
from .split import Dataset, train_test_split
from .tables import Standardizer, Table, load_csv
from .text import (
    CharTokenizer,
    TextData,
    TokenizerError,
    TokenWindows,
    load_text,
    load_tiny_shakespeare,
    split_text,
)

__all__ = ["Dataset", "load_digits", "train_test_split", "xor", "moons", "spiral",
           # files in standard formats, downloads
           "load_idx", "save_idx", "IdxError", "load_mnist", "load_fashion_mnist",
           "FASHION_MNIST_CLASSES", "download", "REMOTE_SETS", "DownloadError", "DataFileError",
           "data_home", "DATA_ENV_VAR",
           # tables
           "load_csv", "Table", "Standardizer", "load_forest_fires", "load_energy",
           # text for language models
           "CharTokenizer", "TokenizerError", "load_text", "split_text", "TextData",
           "load_tiny_shakespeare", "TokenWindows",
           # batch sources for fit(model, source, steps=N)
           "ArraySource"]
