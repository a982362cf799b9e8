"""Batch sources: what `fit` trains from besides arrays in memory.

    source(step) -> (x_batch, y_batch)      a function, pure in the step: it draws from its
                                            own generator seeded by the step (nanoGPT's
                                            get_batch), so a run resumed at step s gets the
                                            very batches of the run it continues
    iter(source) -> (x_batch, y_batch), ... any iterable of batches: a generator, a loader
                                            over files; a resumed run cannot restore its
                                            position, so it starts again from its beginning

`BatchSource` is what fit holds: it asks the source for a step's batch and checks it on the
host before the step runs — a pair of arrays of numbers, one target per sample, the same
shape at every step (a later batch may have fewer samples: padded and masked like an
epoch's last), finite, the targets within what the loss takes — so a bad batch at step 5,000
is an error naming step 5,000, raised before that step touches the state. For an iterable
it keeps the batches a replay may need (the NaN guard replays the steps since the last
state it copied).

`xb.data.ArraySource` makes a source of arrays (random batches, keyed by the step).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .backends import owner_of
from .inputs import TargetCheck, check_validation_arrays, prepare_data
from .layers.base import Layer, Shape
from .losses import Loss

__all__ = ["BatchSource", "SourceError", "is_source", "validation_arrays", "KEEP_BYTES"]

#: the most bytes of an iterable's batches kept for a replay before the loop reads its
#: statistics back (which lets it drop them)
KEEP_BYTES = 256 * 2 ** 20


class SourceError(ValueError):
    """A batch a source gave that cannot be trained on. `step` is the step it was for;
    nothing was trained on it (the state and the checkpoints are as before that step)."""

    def __init__(self, message: str, step: int) -> None:
        super().__init__(message)
        self.step = step


def is_source(x: Any) -> bool:
    """True for what fit takes as a batch source rather than an array: a function, a list
    (or tuple) of `(x_batch, y_batch)` tuples, or any other iterable that is not an array
    (NumPy's, a backend's, a nested list of numbers)."""
    if owner_of(x) is not None or isinstance(x, (np.ndarray, np.generic, str, bytes, int,
                                                 float)):
        return False
    if callable(x):
        return True
    if isinstance(x, (list, tuple)):
        return len(x) > 0 and all(isinstance(b, tuple) and len(b) == 2 for b in x)
    return isinstance(x, Iterable)


def _describe(value: Any) -> str:
    """"a tuple of 3", "an ndarray", ...: what a value is, for an error message."""
    name = type(value).__name__
    article = "an" if name[:1].lower() in "aeiou" or name.startswith("nd") else "a"
    if isinstance(value, (tuple, list)):
        return f"{article} {name} of {len(value)}"
    return f"{article} {name}"


class BatchSource:
    """A source as `fit` uses it: `batch(step)` is the step's `(x, y)` as checked host
    arrays (x as the run's float dtype, or int32 ids for a model that takes integers; labels
    int32). The first batch fixes the shapes (`sample_shape`, `batch_size`)."""

    def __init__(self, source: Any, *, model: Layer, loss: Loss, dtype: np.dtype,
                 integers: bool = False, name: str = "the source") -> None:
        if not is_source(source):
            raise TypeError(f"{name} is {_describe(source)}: a batch source is a function "
                            "source(step) -> (x_batch, y_batch) or an iterable of such pairs")
        self.source, self.name = source, name
        self.callable = callable(source)
        self.model, self.loss, self.dtype, self.integers = model, loss, dtype, integers
        self.sample_shape: Shape | None = None
        self.target_shape: Shape | None = None
        self.batch_size: int | None = None
        self.check: TargetCheck | None = None
        #: an iterable's batches by step, kept for a replay
        self.kept: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.keep_all = False  # keep every batch until released (a replay may need them)
        self.kept_bytes = 0
        self.iterator: Iterator[Any] | None = None
        self.next_step: int | None = None  # the step the iterator's next batch is for
        self.cached: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None

    @property
    def kind(self) -> str:
        return "callable" if self.callable else "iterable"

    def start(self, step: int) -> None:
        """Begin at `step`: an iterable starts again from its beginning there."""
        if not self.callable:
            self.iterator, self.next_step = iter(self.source), step
            self.kept, self.kept_bytes = {}, 0

    def batch(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        """The checked host batch `(x, y)` of `step`; a SourceError naming the step if the
        source gives something that cannot be trained on, or runs dry."""
        if self.cached is not None and self.cached[0] == step:
            return self.cached[1]
        if self.callable:
            batch = self.checked(self.source(step), step)
        elif step in self.kept:
            batch = self.kept[step]
        else:
            batch = self._next(step)
        self.cached = (step, batch)
        return batch

    def _next(self, step: int) -> tuple[np.ndarray, np.ndarray]:
        if self.iterator is None:
            self.start(step)
        assert self.iterator is not None and self.next_step is not None
        if step != self.next_step:
            raise SourceError(f"{self.name} is an iterable, which gives its batches in order: "
                              f"the batch of step {step} was asked for, but the next one is "
                              f"step {self.next_step}'s (and the one before was not kept)",
                              step)
        try:
            raw = next(self.iterator)
        except StopIteration:
            raise SourceError(f"{self.name} ran dry at step {step}: the iterable ended after "
                              "giving the batches of the steps before. Give it at least as "
                              "many batches as steps (repeat it: itertools.cycle, or a loop "
                              "over epochs inside a generator), or train fewer steps",
                              step) from None
        self.next_step = step + 1
        batch = self.checked(raw, step)
        if not self.keep_all:
            self.kept.clear()
            self.kept_bytes = 0
        self.kept[step] = batch
        self.kept_bytes += batch[0].nbytes + batch[1].nbytes
        return batch

    def release(self, before: int) -> None:
        """Drop the kept batches of the steps before `before` (no replay will need them)."""
        for s in [s for s in self.kept if s < before]:
            b = self.kept.pop(s)
            self.kept_bytes -= b[0].nbytes + b[1].nbytes

    def must_sync(self) -> bool:
        """True when the kept batches take more than KEEP_BYTES."""
        return self.kept_bytes > KEEP_BYTES

    def checked(self, raw: Any, step: int) -> tuple[np.ndarray, np.ndarray]:
        """`raw`, what the source gave for `step`, checked and made host arrays."""
        where = f"{self.name}, step {step}"
        if not isinstance(raw, (tuple, list)) or len(raw) != 2:
            raise SourceError(f"{where}: a batch is a pair (x_batch, y_batch), but the source "
                              f"gave {_describe(raw)}", step)
        x, y = raw
        for what, a in (("x", x), ("y", y)):
            if owner_of(a) is None and not isinstance(a, (np.ndarray, list, tuple)):
                raise SourceError(f"{where}: {what}_batch is {_describe(a)}, not an array of "
                                  "samples", step)
        try:
            x, y = prepare_data(x, y, self.dtype, where, integers=self.integers)
        except ValueError as e:
            raise SourceError(str(e), step) from None
        sample, target = tuple(x.shape[1:]), tuple(y.shape[1:])
        if self.sample_shape is None:
            self.sample_shape, self.target_shape, self.batch_size = sample, target, len(x)
            self.check = TargetCheck(self.model, self.loss, sample)
        elif sample != self.sample_shape or target != self.target_shape:
            raise SourceError(
                f"{where}: the batch has x of shape {x.shape} and y of shape {y.shape}, but "
                f"the first batch's samples were x {self.sample_shape} and y "
                f"{self.target_shape}: every batch must have samples of one shape (pad or cut "
                "sequences to one length)", step)
        elif self.batch_size is not None and len(x) > self.batch_size:  # (set with the shapes)
            raise SourceError(f"{where}: the batch has {len(x)} samples, more than the first "
                              f"batch's {self.batch_size}: the first batch sets the batch size "
                              "(a later one may be smaller, and is padded)", step)
        assert self.check is not None
        try:
            self.check(y, where)
        except ValueError as e:
            raise SourceError(str(e), step) from None
        return x, y


def validation_arrays(data: Any, *, model: Layer, loss: Loss, input_shape: Shape,
                      dtype: np.dtype, integers: bool, eval_batches: int | None
                      ) -> tuple[np.ndarray, np.ndarray]:
    """validation_data as host arrays (x_val, y_val), checked: a pair of arrays (all of
    them), or the same `eval_batches` batches of a validation source every time — `val(i)`
    for i in range(eval_batches), or the first `eval_batches` (default: all) of a
    re-iterable (a list of batches, a loader whose iter() starts over) — joined."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and not is_source(data):
        return check_validation_arrays(model, loss, input_shape, data, dtype, integers=integers)
    if not is_source(data):
        raise ValueError(f"validation_data is a pair (x_val, y_val) or a validation source, "
                         f"not {_describe(data)}")
    if callable(data):
        if eval_batches is None:
            raise ValueError("a validation source val(i) needs eval_batches=N: the batches "
                             "val(0), ..., val(N - 1) are the validation set, the same at "
                             "every evaluation")
        raws: Iterable[Any] = (data(i) for i in range(eval_batches))
    else:
        if iter(data) is data:
            raise ValueError("validation_data is an iterator (a generator?), which gives its "
                             "batches once; validation needs the same batches every time: "
                             "pass a function val(i) with eval_batches=N, or a list of batches")
        raws = data
    source = BatchSource(lambda i: None, model=model, loss=loss, dtype=dtype,
                         integers=integers, name="the validation source")
    xs, ys = [], []
    for i, raw in enumerate(raws):
        if eval_batches is not None and i >= eval_batches:
            break
        x, y = source.checked(raw, i)
        xs.append(x)
        ys.append(y)
    if not xs:
        raise ValueError("the validation source gave no batches")
    if eval_batches is not None and len(xs) < eval_batches:
        raise ValueError(f"the validation source gave {len(xs)} batches, fewer than "
                         f"eval_batches={eval_batches}")
    x_val, y_val = np.concatenate(xs), np.concatenate(ys)
    if tuple(x_val.shape[1:]) != tuple(input_shape):
        raise ValueError(f"validation data: samples of shape {tuple(x_val.shape[1:])}, but the "
                         f"training samples have shape {tuple(input_shape)}")
    return x_val, y_val
