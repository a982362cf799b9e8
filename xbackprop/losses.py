"""Losses with hand-written gradients: `forward(pred, target, mask=None) -> (loss, cache)`
and `backward(cache, dloss=1.0) -> dpred`.

`reduction="mean"` averages over the batch (MSE and the binary losses: over every element,
as PyTorch does); `"sum"` adds them up, as the classic backprop derivations do. Targets never
get a gradient. Every loss is stable at extreme inputs (logits of ±1e4 give finite values).

`mask: (N,)` weighs samples: 1 for a real sample, 0 for padding that fills a batch up to a
fixed size (so a compiled step sees one shape). Padded samples add nothing to the loss, to
the count a mean divides by, or to the gradient.

Targets a loss cannot mean are refused, never averaged into a plausible number: labels out
of range, fractional or NaN, probabilities outside [0, 1] or rows that do not sum to 1
(`Loss.check_target`). `fit` and `evaluate` check the whole data once, on the host; a loss
called directly checks its values when they are concrete (not under `jax.jit`), and not
inside steps whose data were checked (`targets_checked`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import math
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, ClassVar

import numpy as np

from .arguments import real
from .backends import Array, backend_of, owner_of

__all__ = ["Loss", "MSE", "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits",
           "SoftmaxCrossEntropy", "loss_classes", "get_loss", "targets_checked"]

TargetMaker = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
REDUCTIONS = ("mean", "sum")

_LOSS_CLASSES: list[type[Loss]] = []


@dataclasses.dataclass(frozen=True)
class Loss:
    """Base class. Subclasses implement `_elementwise` forward and its gradient."""

    reduction: str = "mean"
    abstract: ClassVar[bool] = True
    #: True where predictions are class scores, so accuracy means something
    classification: ClassVar[bool] = True
    #: for one output per sample: the score above which a prediction means class 1
    #: (0.5 for probabilities, 0 for logits)
    threshold: ClassVar[float] = 0.5
    #: where the gradient checker draws predictions: None for any real number
    pred_range: ClassVar[tuple[float, float] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("abstract", False):
            _LOSS_CLASSES.append(cls)

    def __post_init__(self) -> None:
        if self.reduction not in REDUCTIONS:
            raise ValueError(f"reduction must be one of {REDUCTIONS}, not {self.reduction!r}")

    @property
    def task(self) -> str:
        """"classification" or "regression": which metrics describe this loss's predictions."""
        return "classification" if self.classification else "regression"

    def forward(self, pred: Array, target: Array, mask: Array | None = None
                ) -> tuple[Array, Any]:
        raise NotImplementedError

    def backward(self, cache: Any, dloss: Any = 1.0) -> Array:
        raise NotImplementedError

    def check_target(self, target: np.ndarray, pred_shape: tuple[int, ...]) -> None:
        """Raise ValueError if `target` (NumPy, on the host) holds values this loss cannot
        mean for predictions of shape `pred_shape` (batch axis first). `fit` and `evaluate`
        call it once per call; the built-in losses call it on concrete values when called
        directly. The default accepts anything."""

    def check_prediction(self, pred: np.ndarray) -> None:
        """Raise ValueError if `pred` (NumPy, on the host) is outside the range this loss
        takes (BinaryCrossEntropy: probabilities). Called with `check_target` on a direct
        call; the default accepts anything."""

    def __call__(self, pred: Array, target: Array, mask: Array | None = None) -> Array:
        return self.forward(pred, target, mask)[0]

    def _reduce(self, xp: Any, per_item: Array, mask: Array | None, ndim: int
                ) -> tuple[Array, Any]:
        """The reduced loss and the factor d(loss)/d(per_item) that the reduction applies.

        per_item: (N, ...) losses; the factor broadcasts against an (N, ...) prediction of
        `ndim` axes: a number without a mask, the per-sample weights w / Σ(w · items per
        sample) (mean) or w (sum) with one.
        """
        if mask is None:
            total = xp.sum(per_item)
            if self.reduction == "sum":
                return total, 1.0
            count = math.prod(per_item.shape)
            return total / count, 1.0 / count
        n = per_item.shape[0]
        w = _as_dtype(mask, per_item.dtype)
        total = xp.sum(per_item * xp.reshape(w, (n,) + (1,) * (len(per_item.shape) - 1)))
        factor = xp.reshape(w, (n,) + (1,) * (ndim - 1))
        if self.reduction == "sum":
            return total, factor
        count = xp.clip(xp.sum(w), 1.0, None) * (math.prod(per_item.shape) // max(n, 1))
        return total / count, factor / count

    @classmethod
    def examples(cls, rng: np.random.Generator) -> Iterator[tuple[Loss, tuple[int, ...],
                                                                  TargetMaker]]:
        """Instances, prediction shapes (with batch) and target makers to check."""
        return iter(())


def _target_like(loss: Loss, pred: Array, target: Array) -> Array:
    """`target` checked to have the prediction's shape and cast to its dtype: integer or
    float64 targets would otherwise promote a float32 model's loss, gradients and
    parameters to float64 on NumPy and CuPy (JAX keeps float32)."""
    _check_same_shape(loss, tuple(pred.shape), tuple(target.shape))
    check_values(loss, pred, target)
    return _as_dtype(target, pred.dtype)


def _check_same_shape(loss: Loss, pred_shape: tuple, target_shape: tuple) -> None:
    if pred_shape != target_shape:
        raise ValueError(
            f"{type(loss).__name__}: prediction {pred_shape} and target {target_shape} differ "
            "in shape; reshape the target (e.g. y[:, None]) rather than let them broadcast.")


# -- checking values -------------------------------------------------------------------------

_CHECKED: contextvars.ContextVar[bool] = contextvars.ContextVar("xbackprop_targets_checked",
                                                                default=False)


class targets_checked:
    """`with targets_checked():` the losses called inside skip `check_values`: the caller
    has checked the data once, on the host (fit's and evaluate's steps), so a step never
    reads its targets back from a device."""

    __slots__ = ("token",)

    def __enter__(self) -> None:
        self.token = _CHECKED.set(True)

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        _CHECKED.reset(self.token)


def check_values(loss: Loss, pred: Array, target: Array) -> None:
    """`loss.check_target` (and `check_prediction`) on a direct call whose values can be read
    now: not inside `targets_checked()`, not on JAX tracers under `jax.jit`."""
    if _CHECKED.get():
        return
    owners = (owner_of(pred), owner_of(target))
    if any(o is not None and not o.is_concrete(a) for o, a in zip(owners, (pred, target))):
        return
    host = [np.asarray(a if o is None else o.to_numpy(a)) for o, a in zip(owners, (pred, target))]
    if type(loss).check_prediction is not Loss.check_prediction:
        loss.check_prediction(host[0])
    loss.check_target(host[1], tuple(pred.shape))


def _first(bad: np.ndarray) -> str:
    """The index of the first True in `bad`, for a message: "3" or "(3, 1)"."""
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    return str(index[0]) if len(index) == 1 else str(index)


def _check_finite(loss: Loss, target: np.ndarray, what: str = "target") -> None:
    if target.dtype.kind not in "biuf":
        raise ValueError(f"{type(loss).__name__}: the {what} {_has(what)} {target.dtype} values; "
                         "they must be numbers")
    if target.dtype.kind == "f":
        bad = ~np.isfinite(target)
        if bad.any():
            raise ValueError(f"{type(loss).__name__}: the {what} {_has(what)} {int(bad.sum())} "
                             f"NaN or infinite values (the first at index {_first(bad)}); clean "
                             "the data")


def _has(what: str) -> str:
    return "hold" if what.endswith("s") else "holds"


def _check_unit_interval(loss: Loss, target: np.ndarray, pred_shape: tuple) -> None:
    """Binary targets are probabilities of class 1: labels 0 and 1, or soft values between."""
    _check_same_shape(loss, pred_shape, target.shape)
    _check_finite(loss, target)
    bad = (target < 0) | (target > 1)
    if bad.any():
        low, high = target.min(), target.max()
        hint = (" Labels -1/1? Use (y + 1) / 2." if low < 0 and np.isin(target, (-1, 1)).all()
                else "")
        raise ValueError(
            f"{type(loss).__name__}: targets are probabilities of class 1, in [0, 1] (labels 0 "
            f"and 1), but these run from {low:g} to {high:g} (the first outside at index "
            f"{_first(bad)}).{hint} For more than two classes use SoftmaxCrossEntropy with "
            "integer labels.")


def _as_dtype(x: Array, dtype: Any) -> Array:
    return x if x.dtype == dtype else backend_of(x).xp.astype(x, dtype)


def _shape2(rng: np.random.Generator) -> tuple[int, int]:
    return int(rng.integers(1, 6)), int(rng.integers(1, 5))


@dataclasses.dataclass(frozen=True)
class MSE(Loss):
    """L = scale · reduce((pred - target)²);  dL/dpred = 2 · scale · (pred - target) [/ count].

    The classic backprop derivation's ½ Σ (target - out)² is `MSE("sum", scale=0.5)`.
    """

    scale: float = 1.0
    classification = False

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "scale", real("MSE", "scale", self.scale, 0.0, low_open=True))

    def forward(self, pred: Array, target: Array, mask: Array | None = None
                ) -> tuple[Array, Any]:
        target = _target_like(self, pred, target)
        xp = backend_of(pred, target).xp
        diff = pred - target
        loss, factor = self._reduce(xp, diff * diff, mask, len(pred.shape))
        return self.scale * loss, (diff, factor)

    def backward(self, cache: Any, dloss: Any = 1.0) -> Array:
        diff, factor = cache
        return (2.0 * self.scale * factor) * dloss * diff

    def check_target(self, target: np.ndarray, pred_shape: tuple[int, ...]) -> None:
        _check_same_shape(self, pred_shape, target.shape)
        _check_finite(self, target)

    @classmethod
    def examples(cls, rng):
        yield cls(), _shape2(rng), lambda r, s: r.normal(size=s)
        yield cls("sum", scale=0.5), _shape2(rng), lambda r, s: r.normal(size=s)


_LOG_FLOOR = -100.0  # PyTorch's BCELoss floor for log(p): finite loss at p = 0 or 1
_EPS = 1e-12


def _floored_log(xp: Any, p: Array) -> Array:
    """max(log p, -100), and -100 at p = 0 without computing log(0) (no warning, no -inf)."""
    positive = p > 0
    log_p = xp.log(xp.where(positive, p, xp.ones_like(p)))
    return xp.where(positive, xp.clip(log_p, _LOG_FLOOR, None), xp.full_like(p, _LOG_FLOOR))


@dataclasses.dataclass(frozen=True)
class BinaryCrossEntropy(Loss):
    """On probabilities p ∈ [0, 1]: L = -[t log p + (1 - t) log(1 - p)] (logs floored at
    -100);  dL/dp = (p - t) / (p (1 - p)). Prefer the logits version after a sigmoid."""

    pred_range = (0.05, 0.95)  # away from 0 and 1, where the floor cuts the gradient

    def forward(self, pred: Array, target: Array, mask: Array | None = None
                ) -> tuple[Array, Any]:
        target = _target_like(self, pred, target)
        xp = backend_of(pred, target).xp
        log_p, log_1mp = _floored_log(xp, pred), _floored_log(xp, 1 - pred)
        per_item = -(target * log_p + (1 - target) * log_1mp)
        loss, factor = self._reduce(xp, per_item, mask, len(pred.shape))
        return loss, (pred, target, factor)

    def backward(self, cache: Any, dloss: Any = 1.0) -> Array:
        p, t, factor = cache
        xp = backend_of(p, t).xp
        return (factor * dloss) * (p - t) / xp.clip(p * (1 - p), _EPS, None)

    def check_target(self, target: np.ndarray, pred_shape: tuple[int, ...]) -> None:
        _check_unit_interval(self, target, pred_shape)

    def check_prediction(self, pred: np.ndarray) -> None:
        bad = (pred < 0) | (pred > 1)  # NaN is the divergence check's business
        if bad.any():
            raise ValueError(
                f"BinaryCrossEntropy takes probabilities in [0, 1], but the predictions run "
                f"from {np.nanmin(pred):g} to {np.nanmax(pred):g} (the first outside at index "
                f"{_first(bad)}). End the model with Sigmoid(), or give the raw outputs to "
                "BinaryCrossEntropyWithLogits (stabler).")

    @classmethod
    def examples(cls, rng):
        yield cls(), _shape2(rng), lambda r, s: r.uniform(size=s)


@dataclasses.dataclass(frozen=True)
class BinaryCrossEntropyWithLogits(Loss):
    """On logits z: L = max(z, 0) - z t + log(1 + e^-|z|) (= BCE(σ(z), t), without
    overflow);  dL/dz = σ(z) - t."""

    threshold = 0.0  # σ(z) > ½ ⇔ z > 0

    def forward(self, pred: Array, target: Array, mask: Array | None = None
                ) -> tuple[Array, Any]:
        target = _target_like(self, pred, target)
        xp = backend_of(pred, target).xp
        per_item = xp.clip(pred, 0.0, None) - pred * target + xp.log1p(xp.exp(-xp.abs(pred)))
        loss, factor = self._reduce(xp, per_item, mask, len(pred.shape))
        return loss, (pred, target, factor)

    def backward(self, cache: Any, dloss: Any = 1.0) -> Array:
        z, t, factor = cache
        return (factor * dloss) * (backend_of(z).sigmoid(z) - t)

    def check_target(self, target: np.ndarray, pred_shape: tuple[int, ...]) -> None:
        _check_unit_interval(self, target, pred_shape)

    @classmethod
    def examples(cls, rng):
        yield cls(), _shape2(rng), lambda r, s: r.uniform(size=s)
        yield cls("sum"), _shape2(rng), lambda r, s: (r.uniform(size=s) > 0.5) * 1.0


@dataclasses.dataclass(frozen=True)
class SoftmaxCrossEntropy(Loss):
    """On logits z: (N, K) and integer labels (N,) or target probabilities (N, K):
    L_n = logsumexp(z_n) - Σ_k t_nk z_nk;  dL/dz = softmax(z) - t.

    Sequences: logits (N, T, K) (any axes between the batch and the classes, which come
    last) with labels (N, T) or probabilities (N, T, K): a prediction per position, each
    position one item of the mean (a language model's next-token loss).
    """

    def forward(self, pred: Array, target: Array, mask: Array | None = None
                ) -> tuple[Array, Any]:
        xp = backend_of(pred, target).xp
        if len(pred.shape) < 2:
            raise ValueError(f"SoftmaxCrossEntropy takes logits of shape (N, classes) (or "
                             f"(N, T, classes) for sequences), got {tuple(pred.shape)}")
        t = _as_probabilities(self, xp, pred, target)
        shifted = pred - xp.max(pred, axis=-1, keepdims=True)  # log-sum-exp trick
        e = xp.exp(shifted)
        sum_e = xp.sum(e, axis=-1, keepdims=True)
        per_item = xp.log(sum_e[..., 0]) - xp.sum(t * shifted, axis=-1)
        loss, factor = self._reduce(xp, per_item, mask, len(pred.shape))
        return loss, (e / sum_e, t, factor)

    def backward(self, cache: Any, dloss: Any = 1.0) -> Array:
        softmax, t, factor = cache
        return (factor * dloss) * (softmax - t)

    def check_target(self, target: np.ndarray, pred_shape: tuple[int, ...]) -> None:
        classes = pred_shape[-1] if len(pred_shape) >= 2 else None
        if classes is not None:
            _check_label_shape(pred_shape, target.shape)
        labels = len(target.shape) == len(pred_shape) - 1 if classes is not None else \
            target.ndim == 1
        _check_finite(self, target, "labels" if labels else "target")
        if labels and target.size:
            if target.dtype.kind == "f":
                fractional = target != np.round(target)
                if fractional.any():
                    i = _first(fractional)
                    raise ValueError(
                        f"SoftmaxCrossEntropy: labels are class indices, whole numbers, but "
                        f"label {i} is {target[_index(fractional)]:g}. For soft targets give "
                        "probabilities of shape (N, classes), one row per sample.")
            low, high = target.min(), target.max()
            if classes is not None and (low < 0 or high >= classes):
                bad = (target < 0) | (target >= classes)
                raise ValueError(
                    f"SoftmaxCrossEntropy: labels run from {low:g} to {high:g} (label "
                    f"{_first(bad)} is {target[_index(bad)]:g}), but the predictions have "
                    f"{classes} classes; labels must be in [0, {classes})")
        elif not labels and target.size:
            if target.min() < 0:
                raise ValueError(
                    f"SoftmaxCrossEntropy: target rows are probabilities, but the one at index "
                    f"{_first(target < 0)} is {target.min():g}, below 0")
            sums = target.sum(axis=-1, dtype=np.float64)
            off = np.abs(sums - 1) > 1e-3
            if off.any():
                i = _first(off)
                raise ValueError(
                    f"SoftmaxCrossEntropy: target rows are probabilities and must sum to 1, but "
                    f"row {i} sums to {sums[_index(off)]:g}. Normalise them (t / t.sum(axis=-1, "
                    "keepdims=True)), or give integer labels of shape (N,).")

    @classmethod
    def examples(cls, rng):
        def labels(r: np.random.Generator, s: tuple[int, ...]) -> np.ndarray:
            return r.integers(0, s[-1], size=s[:-1])

        def probabilities(r: np.random.Generator, s: tuple[int, ...]) -> np.ndarray:
            p = r.uniform(0.1, 1.0, size=s)
            return p / p.sum(axis=-1, keepdims=True)

        yield cls(), _shape2(rng), labels
        yield cls("sum"), _shape2(rng), probabilities
        yield cls(), (2, int(rng.integers(1, 4)), int(rng.integers(2, 5))), labels


def _index(bad: np.ndarray) -> tuple[int, ...]:
    """The index of the first True in `bad`, for reading the value there."""
    return tuple(int(i) for i in np.argwhere(bad)[0])


def _as_probabilities(loss: Loss, xp: Any, logits: Array, target: Array) -> Array:
    """Integer labels (N, ...) as one-hot rows; probability rows (N, ..., K) as they are."""
    k = logits.shape[-1]
    _check_label_shape(tuple(logits.shape), tuple(target.shape))
    check_values(loss, logits, target)
    if len(target.shape) == len(logits.shape) - 1:
        classes = xp.arange(k)
        return xp.astype(target[..., None] == classes, logits.dtype)
    return _as_dtype(target, logits.dtype)


def _check_label_shape(logits_shape: tuple, target_shape: tuple) -> None:
    labels = logits_shape[:-1]
    if target_shape not in (labels, logits_shape):
        hint = ""
        if len(logits_shape) > 2 and len(target_shape) == len(labels):
            hint = (" For a language model the labels are the next token at every position: "
                    "x = ids[:, :T], y = ids[:, 1:T + 1].")
        raise ValueError(f"SoftmaxCrossEntropy: for logits {logits_shape} the target is integer "
                         f"labels of shape {labels} or probabilities of shape {logits_shape}, "
                         f"not {target_shape}.{hint}")


def loss_classes(module_prefix: str = "xbackprop.") -> dict[str, type[Loss]]:
    """Concrete Loss subclasses defined in modules under `module_prefix` (default: the
    built-in losses), by class name."""
    return {cls.__name__: cls for cls in _LOSS_CLASSES
            if cls.__module__.startswith(module_prefix)}


_ALIASES = {"mse": MSE, "bce": BinaryCrossEntropy, "bce_logits": BinaryCrossEntropyWithLogits,
            "cross_entropy": SoftmaxCrossEntropy, "softmax_cross_entropy": SoftmaxCrossEntropy}


def get_loss(loss: str | Loss) -> Loss:
    """A Loss from an instance or a short name ("mse", "bce", "bce_logits", "cross_entropy")."""
    if isinstance(loss, Loss):
        return loss
    try:
        return _ALIASES[loss]()
    except KeyError:
        raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(_ALIASES)} or pass a "
                         "Loss instance") from None
