"""`xbackprop predict MODEL FILE`: a saved model's predictions for the samples in a CSV or
`.npy` file, one row per sample, as CSV on stdout or in a file.

A classifier (saved with a cross-entropy loss, or ending in Softmax / Sigmoid) gives the class
and its probabilities; anything else gives the output values.
"""

from __future__ import annotations

import argparse
import csv
import io
import math
import os
import sys
from pathlib import Path
from typing import TextIO

import numpy as np

from .. import backends
from ..atomic import atomic_write
from ..checkpoint import checkpoint_info, load_model
from ..data.tables import is_number
from ..evaluate import predict
from ..tree import tree_leaves
from . import add_backend_option, count, output_file
from .user_module import load_user_module


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "predict", help="print a saved model's predictions for a CSV or .npy file",
        description="Load a model saved with xbackprop.save_model (or a training checkpoint "
        "that holds its model) and print one row per sample of FILE: the class and its "
        "probabilities for a classifier, the output values otherwise. FILE is a .npy array "
        "(N, features...) or a CSV of numbers, one sample per line, with an optional header "
        "row; '-' reads CSV from stdin.")
    p.add_argument("model", metavar="MODEL", help="a .safetensors file from save_model or fit")
    p.add_argument("file", metavar="FILE", help="inputs: a .npy file, a CSV file, or -")
    add_backend_option(p)
    p.add_argument("--batch-size", type=count(1), default=1024, help="samples per forward pass")
    p.add_argument("--output", metavar="PATH",
                   help="write the predictions as CSV to PATH ('-': stdout, the default)")
    p.add_argument("--module", metavar="FILE.py",
                   help="import this file first: it defines the model's own layer classes")
    p.add_argument("--no-verify", action="store_true",
                   help="load a file that fails its integrity check or has none, with a "
                   "warning (to rescue what can be rescued)")


def run(args: argparse.Namespace) -> int:
    output = None if args.output in (None, "-") else output_file("--output", args.output)
    if args.module is not None:
        load_user_module(args.module)
    backend = backends.get_backend(args.backend)
    info = checkpoint_info(args.model)
    with backend.dtype_scope(info.saved_dtype or "float32"):  # JAX: float64 if saved so
        model, params, model_state = load_model(args.model, backend,
                                                verify=not args.no_verify)
        x = read_inputs(args.file)
        x = fit_to_model(x, info.input_shape, args.model, args.file)
        dtypes = [backend.numpy_dtype(leaf.dtype) for leaf in tree_leaves(params)]
        floats = [d for d in dtypes if d.kind == "f"]
        if floats:
            check_range(x, floats[0], args.file)
        out = backends.to_numpy(predict(model, params, x, model_state=model_state,
                                        batch_size=args.batch_size))
    header, rows, note = table(out, info.loss, model)
    if note:
        print(f"xbackprop predict: {note}", file=sys.stderr)
    if output is not None:
        with atomic_write(output) as f:
            text = io.TextIOWrapper(f, encoding="utf-8", newline="")
            _write_csv(text, header, rows)
            text.detach()  # flushed; atomic_write closes the file
        print(f"wrote {len(rows)} predictions ({', '.join(header[:3])}"
              f"{', ...' if len(header) > 3 else ''}) to {args.output}")
        return 0
    try:
        _write_csv(sys.stdout, header, rows)
        sys.stdout.flush()
    except BrokenPipeError:  # `xbackprop predict ... | head`: the reader has had enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def read_inputs(path: str) -> np.ndarray:
    """The samples in `path`: a .npy array (never unpickled), or a CSV of numbers with an
    optional header row ('-': CSV from stdin), as float64 (N, ...)."""
    if path == "-":
        buffer = getattr(sys.stdin, "buffer", None)  # (a test's StringIO has none)
        text = _text(buffer.read(), "stdin") if buffer is not None else sys.stdin.read()
        return _parse_csv(text, "stdin")
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"{path}: " + ("a folder, not a file of inputs" if file.is_dir()
                                        else "no such file"))
    if file.suffix.lower() == ".npy":
        try:
            x = np.load(file, allow_pickle=False)
        except ValueError as e:
            raise ValueError(f"{path}: not a .npy array of numbers ({e})") from None
        if x.dtype.kind not in "biuf":
            raise ValueError(f"{path} holds {x.dtype} values, not numbers")
        if x.ndim == 0:
            raise ValueError(f"{path} holds a single number (a 0-d array), not samples: save "
                             "an array of shape (N, features...), e.g. numpy.save(path, "
                             "x.reshape(1, -1))")
        x = x.astype(np.float64)
    elif file.suffix.lower() == ".npz":
        raise ValueError(f"{path} is an .npz archive of several arrays: save the inputs alone "
                         "with numpy.save('inputs.npy', x)")
    else:
        x = _parse_csv(_text(file.read_bytes(), path), path)
    if x.shape[0] == 0:
        raise ValueError(f"{path} holds no samples")
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        raise ValueError(f"{path} holds NaN or infinite values (the first in sample "
                         f"{bad[0][0]}); clean the data first")
    return x


def _text(data: bytes, name: str) -> str:
    """The bytes of a CSV file as text: UTF-8, with or without a byte-order mark (which
    would otherwise glue itself to the first number and turn the first sample into a
    header)."""
    if data[:2] == b"\x1f\x8b" or b"\x00" in data[:4096]:
        raise ValueError(f"{name} is a binary file, not a CSV of numbers (a .npy array must "
                         "be named NAME.npy; a gzipped CSV, gunzip it first)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ValueError(f"{name} is not UTF-8 text (byte {e.start}): not a CSV of numbers?"
                         ) from None


def check_range(x: np.ndarray, dtype: np.dtype, name: str) -> None:
    """Refuse values beyond what the model's `dtype` holds (1e39 in float32), which would
    turn into infinities and rows of NaN."""
    limit = float(np.finfo(dtype).max)
    big = np.argwhere(np.abs(x) > limit)
    if len(big):
        where = tuple(int(i) for i in big[0])
        raise ValueError(f"{name}: sample {where[0]} holds {x[where]:.6g}, beyond the range of "
                         f"{dtype.name} (±{limit:.3g}), the model's dtype; scale the inputs as "
                         "the training data was scaled")


def _parse_csv(text: str, name: str) -> np.ndarray:
    lines = [(i, line) for i, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise ValueError(f"{name} holds no samples")
    delimiter = next((d for d in ",;\t" if d in lines[0][1]), None)

    def cells(line: str) -> list[str]:
        if delimiter is None:
            return line.split()
        return [c.strip() for c in next(csv.reader([line], delimiter=delimiter))]

    columns = None
    first = cells(lines[0][1])
    if not all(is_number(c) for c in first):  # a header row
        columns, lines = first, lines[1:]
    rows: list[list[float]] = []
    for number, line in lines:
        row = cells(line)
        if columns is not None and len(row) != len(columns):
            raise ValueError(f"{name} line {number} has {len(row)} values, but the header row "
                             f"names {len(columns)} columns ({_shorten(columns)}): a header of "
                             "another file, or a missing or extra delimiter?")
        for j, cell in enumerate(row):
            if not is_number(cell):
                column = f" ({columns[j]})" if columns and j < len(columns) else ""
                raise ValueError(f"{name} line {number}, column {j + 1}{column}: {cell!r} is not "
                                 "a number")
        if rows and len(row) != len(rows[0]):
            raise ValueError(f"{name} line {number} has {len(row)} values, but the lines before "
                             f"it have {len(rows[0])}")
        rows.append([float(c) for c in row])
    if not rows:
        numbers = [j + 1 for j, c in enumerate(first) if is_number(c)]
        if numbers:  # "1,2," : data with a gap, taken for a header
            empty = [j + 1 for j, c in enumerate(first) if not c]
            gap = (f"column {empty[0]} is empty" if empty else
                   f"{sum(not is_number(c) for c in first)} of its values are not numbers")
            raise ValueError(f"{name} holds one line, which reads as a header because {gap}, "
                             "and no samples: fill in every value (or add the samples below "
                             "the header)")
        raise ValueError(f"{name} holds a header row but no samples")
    return np.asarray(rows, dtype=np.float64)


def _shorten(names: list[str], most: int = 5) -> str:
    return ", ".join(names[:most]) + (", ..." if len(names) > most else "")


def fit_to_model(x: np.ndarray, input_shape: tuple[int, ...] | None, model_path: str,
                 file: str) -> np.ndarray:
    """`x` shaped (N, *input_shape): rows of features are reshaped to images when the counts
    agree; a count that differs is an error naming both."""
    if input_shape is None:
        return x if x.ndim > 1 else x[None, :]  # the model's first layer checks the shape
    per_sample = math.prod(input_shape)
    if x.ndim == 1:
        x = x[:, None] if per_sample == 1 else x[None, :]
    if tuple(x.shape[1:]) == tuple(input_shape):
        return x
    have = math.prod(x.shape[1:])
    if have != per_sample:
        wants = (f"{per_sample} features per sample" if len(input_shape) == 1 else
                 f"samples of shape {tuple(input_shape)} ({per_sample} numbers each)")
        raise ValueError(f"{model_path} takes {wants}, but {file} has {have} per sample "
                         f"(inputs of shape {x.shape})")
    return x.reshape((x.shape[0], *input_shape))


def table(out: np.ndarray, loss: dict | None, model: object) -> tuple[list[str], list[list[str]],
                                                                        str | None]:
    """Header, rows of formatted cells and a note, for the model's outputs `out: (N, ...)`."""
    out = out.reshape(out.shape[0], -1).astype(np.float64)
    loss_name = (loss or {}).get("class")
    last = type(model.layers[-1]).__name__ if hasattr(model, "layers") and model.layers else ""
    k = out.shape[1]
    if loss_name == "SoftmaxCrossEntropy" or (loss is None and last == "Softmax" and k > 1):
        probs = out if last == "Softmax" else _softmax(out)
        header = ["class"] + [f"prob_{j}" for j in range(k)]
        rows = [[str(int(np.argmax(p)))] + [f"{v:.6g}" for v in p] for p in probs]
        return header, rows, None
    if loss_name in ("BinaryCrossEntropy", "BinaryCrossEntropyWithLogits") or (
            loss is None and last == "Sigmoid"):
        probs = 1 / (1 + np.exp(-out)) if loss_name == "BinaryCrossEntropyWithLogits" else out
        if k == 1:
            return (["class", "prob_1"],
                    [[str(int(p[0] > 0.5)), f"{p[0]:.6g}"] for p in probs], None)
        return [f"prob_{j}" for j in range(k)], [[f"{v:.6g}" for v in p] for p in probs], None
    header = ["value"] if k == 1 else [f"value_{j}" for j in range(k)]
    note = None if loss is not None else (
        "the model file records no loss, so its outputs are printed as values; save it with "
        "loss=... (e.g. 'cross_entropy') to get classes and probabilities")
    return header, [[f"{v:.8g}" for v in row] for row in out], note


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _write_csv(stream: TextIO, header: list[str], rows: list[list[str]]) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    stream.flush()
