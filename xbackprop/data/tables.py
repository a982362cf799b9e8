"""Tables: a CSV file as training and test arrays, and the `Standardizer` that scales them.

    table = xb.data.load_csv("forestfires.csv", target="area", standardize=True)
    print(table)            # what became what: features, one-hot columns, the split
    table.x_train: (N, F) float32;  table.y_train: (N, K) float32, or (N,) int labels

Numeric columns become float features; text columns are one-hot encoded, one 0/1 column per
value (`month=aug`); a text target becomes integer class labels. Standardisation is fitted
on the training split only, so nothing about the test rows leaks into training. A table that
cannot be read as asked (a missing column, a value that is not a number, a ragged row, an
empty file) is an error that names the line and the column.
"""

from __future__ import annotations

import csv
import dataclasses
import difflib
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..backends import backend_of
from .files import DataFileError, read_bytes
from .split import Dataset, train_test_split

__all__ = ["Standardizer", "Table", "is_number", "load_csv"]

_DELIMITERS = (",", ";", "\t")


@dataclasses.dataclass
class Standardizer:
    """Per-column z = (x - mean) / scale, with mean and scale (the standard deviation) fitted
    on training data: `fit(x_train)`, then `transform` any split and `inverse_transform`
    predictions back to the original units.

    x: (N, F) (or (N,) for one column). `columns` in `fit` limits the scaling to some columns
    (e.g. leave one-hot columns as 0/1); the others pass through unchanged. A constant column
    gets scale 1 rather than a division by zero. `transform` and `inverse_transform` work on
    arrays of any backend and return the same kind of array.
    """

    mean: np.ndarray | None = None
    scale: np.ndarray | None = None

    def fit(self, x: Any, columns: Sequence[int] | None = None) -> Standardizer:
        x = np.asarray(x, dtype=np.float64)
        if len(x) == 0:
            raise ValueError("Standardizer.fit: no rows to fit on")
        flat = x.reshape(len(x), -1)
        mean, std = flat.mean(axis=0), flat.std(axis=0)
        std = np.where(std > 0, std, 1.0)
        if columns is not None:
            keep = np.zeros(flat.shape[1], dtype=bool)
            keep[list(columns)] = True
            mean, std = np.where(keep, mean, 0.0), np.where(keep, std, 1.0)
        self.mean, self.scale = mean.reshape(x.shape[1:]), std.reshape(x.shape[1:])
        return self

    def fit_transform(self, x: Any, columns: Sequence[int] | None = None) -> Any:
        return self.fit(x, columns).transform(x)

    def transform(self, x: Any) -> Any:
        mean, scale = self._stats(x)
        return (x - mean) / scale

    def inverse_transform(self, z: Any) -> Any:
        mean, scale = self._stats(z)
        return z * scale + mean

    def _stats(self, x: Any) -> tuple[Any, Any]:
        if self.mean is None or self.scale is None:
            raise ValueError("this Standardizer is not fitted yet: call fit(x_train) first")
        if tuple(x.shape[1:]) != self.mean.shape:
            raise ValueError(f"Standardizer was fitted on rows of shape {self.mean.shape}, "
                             f"got rows of shape {tuple(x.shape[1:])}")
        backend = backend_of(x, default="numpy")
        given = backend.numpy_dtype(x.dtype)
        dtype = given if given.kind == "f" else np.float64
        return (backend.asarray(self.mean, dtype=dtype), backend.asarray(self.scale, dtype=dtype))


@dataclasses.dataclass
class Table:
    """A CSV table as arrays: the four split arrays (NumPy) and what was done to get them.

    features: the names of x's columns (one-hot columns as "column=value"); targets: the
    target column names; categories: text column -> its values in encoding order (for a
    text target, class k is `categories[target][k]`); x_scaler / y_scaler: the fitted
    Standardizers, or None. `table.dataset` is the plain `Dataset`.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    features: tuple[str, ...]
    targets: tuple[str, ...]
    categories: dict[str, tuple[str, ...]]
    x_scaler: Standardizer | None
    y_scaler: Standardizer | None
    source: str
    rows: int
    columns: int
    seed: int

    @property
    def dataset(self) -> Dataset:
        return Dataset(self.x_train, self.y_train, self.x_test, self.y_test)

    @property
    def classification(self) -> bool:
        """True when the target is a text column, read as integer class labels."""
        return self.y_train.ndim == 1

    def __str__(self) -> str:
        kind = (f"classification, {len(self.categories[self.targets[0]])} classes"
                if self.classification else "regression")
        lines = [(f"{self.source}: {self.rows} rows x {self.columns} columns; target "
                  f"{', '.join(self.targets)} ({kind})"),
                 f"features ({len(self.features)}): {', '.join(self.features)}"]
        for column, values in self.categories.items():
            if column in self.targets:
                continue
            shown = ", ".join(values[:6]) + (", ..." if len(values) > 6 else "")
            lines.append(f"one-hot: {column} ({len(values)} values: {shown}) -> "
                         f"{len(values)} columns")
        scaled = [w for w, s in [("features", self.x_scaler), ("targets", self.y_scaler)] if s]
        lines.append(f"split: {len(self.x_train)} train / {len(self.x_test)} test (seed "
                     f"{self.seed})" + (f"; {' and '.join(scaled)} standardised with the "
                                       "train split's mean and deviation" if scaled else ""))
        return "\n".join(lines)


def load_csv(path: str | os.PathLike, target: str | Sequence[str], *,
             features: Sequence[str] | None = None,
             categorical: str | Sequence[str] = "auto", test_fraction: float = 0.2,
             seed: int = 0, standardize: bool = False, standardize_target: bool = False,
             delimiter: str | None = None, dtype: str = "float32") -> Table:
    """Read the CSV table at `path` (a header row, then one row per sample; gzipped or not)
    and split it into train and test arrays.

    target: the column to predict, or several (a list) for a multi-output regression.
    features: the input columns (default: every other column).
    categorical: the text columns to one-hot encode; "auto" takes every column in which no
    value is a number. A column of numbers with a stray word in it is an error, not text.
    test_fraction, seed: the held-out share and the shuffle (stratified by class when the
    target is text). standardize: scale numeric features to mean 0 and deviation 1 with the
    train split's statistics (one-hot columns stay 0/1); standardize_target: the same for
    the targets (undo it on predictions with `table.y_scaler.inverse_transform`).
    delimiter: ",", ";" or tab; default: whichever of them the header uses most.

    Returns a `Table`: x (N, F) in `dtype`; y (N, K) in `dtype`, or (N,) int64 class labels
    for a text target. Raises DataFileError naming the line and column of anything it cannot
    read, FileNotFoundError for a missing file.
    """
    path = Path(path)
    header, rows = _read_rows(path, delimiter)
    where = path.name
    targets = [target] if isinstance(target, str) else list(target)
    if not targets:
        raise ValueError("load_csv: name at least one target column")
    for name in targets:
        _check_column(where, header, name, "target")
    if features is None:
        features = [c for c in header if c not in targets]
    else:
        features = list(features)
        for name in features:
            _check_column(where, header, name, "feature")
        both = sorted(set(features) & set(targets))
        if both:
            raise ValueError(f"{where}: {', '.join(both)} is both a feature and a target")
    if not features:
        raise ValueError(f"{where}: no feature columns left besides the target")
    used = features + targets
    text = _text_columns(where, header, rows, used, categorical)
    columns = {name: [row[header.index(name)].strip() for row in rows] for name in used}

    x_parts, names, categories, numeric = [], [], {}, []
    for name in features:
        if name in text:
            values = _categories(where, name, columns[name], rows.lines)
            categories[name] = values
            codes = np.searchsorted(values, columns[name])
            x_parts.append(np.eye(len(values))[codes])
            names += [f"{name}={v}" for v in values]
        else:
            numeric.append(len(names))
            x_parts.append(_numbers(where, name, columns[name], rows.lines)[:, None])
            names.append(name)
    x = np.concatenate(x_parts, axis=1)

    text_targets = [t for t in targets if t in text]
    if text_targets:
        if len(targets) > 1:
            raise ValueError(f"{where}: the target {text_targets[0]!r} is text (class labels); "
                             "a text target must be the only target")
        if standardize_target:
            raise ValueError(f"{where}: the target {targets[0]!r} is text (class labels), which "
                             "cannot be standardised; drop standardize_target")
        classes = _categories(where, targets[0], columns[targets[0]], rows.lines)
        categories[targets[0]] = classes
        y = np.searchsorted(classes, columns[targets[0]]).astype(np.int64)
    else:
        y = np.stack([_numbers(where, t, columns[t], rows.lines) for t in targets], axis=1)

    split = train_test_split(x, y, test_fraction=test_fraction, seed=seed)
    x_scaler = Standardizer().fit(split.x_train, numeric) if standardize else None
    y_scaler = Standardizer().fit(split.y_train) if standardize_target else None

    def xs(a: np.ndarray) -> np.ndarray:
        return (x_scaler.transform(a) if x_scaler else a).astype(dtype)

    def ys(a: np.ndarray) -> np.ndarray:
        if a.dtype.kind in "iu":
            return a
        return (y_scaler.transform(a) if y_scaler else a).astype(dtype)

    return Table(xs(split.x_train), ys(split.y_train), xs(split.x_test), ys(split.y_test),
                 tuple(names), tuple(targets), categories, x_scaler, y_scaler, where,
                 len(rows), len(header), seed)


class _Rows(list):
    """Data rows with the file line each came from (for error messages)."""

    def __init__(self, rows: list[list[str]], lines: list[int]) -> None:
        super().__init__(rows)
        self.lines = lines


def _read_rows(path: Path, delimiter: str | None) -> tuple[list[str], _Rows]:
    data, _ = read_bytes(path)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataFileError(f"{path}: not UTF-8 text (byte {e.start}): is it a CSV file? Save "
                            "it as UTF-8") from None
    if not text.strip():
        raise DataFileError(f"{path}: the file is empty; a CSV table needs a header row of "
                            "column names and one row per sample")
    first = text.lstrip().splitlines()[0]
    if delimiter is None:
        delimiter = max(_DELIMITERS, key=first.count)
    reader = csv.reader(io.StringIO(text), delimiter=delimiter, strict=True)
    header: list[str] | None = None
    rows, lines = [], []
    try:
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if header is None:
                header = [cell.strip() for cell in row]
                _check_header(path, header)
                continue
            if len(row) != len(header):
                raise DataFileError(
                    f"{path}, line {reader.line_num}: {len(row)} values, but the header has "
                    f"{len(header)} columns (a missing or extra {_name(delimiter)}?)")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise DataFileError(f"{path}, line {reader.line_num}: {e} (an unclosed quote?)"
                            ) from None
    assert header is not None
    if not rows:
        raise DataFileError(f"{path}: a header ({', '.join(header)}) but no data rows")
    return header, _Rows(rows, lines)


def _name(delimiter: str) -> str:
    return {",": "comma", ";": "semicolon", "\t": "tab"}.get(delimiter, repr(delimiter))


def _check_header(path: Path, header: list[str]) -> None:
    for i, name in enumerate(header):
        if not name:
            raise DataFileError(f"{path}, line 1: column {i + 1} has no name; the first row "
                                "must name every column")
    seen = set()
    for name in header:
        if name in seen:
            raise DataFileError(f"{path}, line 1: two columns are named {name!r}")
        seen.add(name)


def _check_column(where: str, header: list[str], name: str, role: str) -> None:
    if name not in header:
        close = difflib.get_close_matches(name, header, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: no column {name!r} (asked for as a {role}); the columns "
                         f"are {', '.join(header)}.{hint}")


def is_number(value: str) -> bool:
    """Whether a CSV cell reads as a number (`float()` takes it: "3", "-1e5", "nan")."""
    try:
        float(value)
    except ValueError:
        return False
    return True


def _text_columns(where: str, header: list[str], rows: _Rows, used: list[str],
                  categorical: str | Sequence[str]) -> set[str]:
    """The used columns to read as text (one-hot features, class-label targets)."""
    if isinstance(categorical, str) and categorical != "auto":
        categorical = [categorical]
    if categorical == "auto":
        text = set()
        for name in used:
            i = header.index(name)
            if not any(is_number(row[i].strip()) for row in rows):
                text.add(name)
        return text
    for name in categorical:
        _check_column(where, header, name, "categorical column")
    return set(categorical) & set(used)


def _numbers(where: str, name: str, values: list[str], lines: list[int]) -> np.ndarray:
    out = np.empty(len(values))
    for k, value in enumerate(values):
        try:
            out[k] = number = float(value)
        except ValueError:
            number = None
        if number is None or not math.isfinite(number):
            if not value:
                raise _missing(where, lines[k], name)
            if number is not None:
                problem = f"is {value!r}, not a finite number; fill it in or drop the row"
            else:
                problem = (f"{value!r} is not a number; fix the value, or list the column in "
                           "categorical=[...] to one-hot encode it as text")
            raise DataFileError(f"{where}, line {lines[k]}, column {name!r}: {problem}")
    return out


def _categories(where: str, name: str, values: list[str], lines: list[int]) -> tuple[str, ...]:
    """The distinct values of a text column, sorted: the order of its one-hot columns."""
    for k, value in enumerate(values):
        if not value:
            raise _missing(where, lines[k], name)
    return tuple(sorted(set(values)))


def _missing(where: str, line: int, name: str) -> DataFileError:
    return DataFileError(f"{where}, line {line}, column {name!r}: empty (a missing value); "
                         "fill it in or drop the row")
