"""Losses with hand-written gradients: `forward(pred, target, mask=None) -> (loss, cache)`
and `backward(cache, dloss=1.0) -> dpred`.

`reduction="mean"` averages over the batch (MSE and the binary losses: over every element,
as PyTorch does); `"sum"` adds them up, as the classic backprop derivations do. Targets never
get a gradient. Every loss is stable at extreme inputs (logits of ±1e4 give finite values).

`mask: (N,)` weighs samples: 1 for a real sample, 0 for padding that fills a batch up to a
fixed size (so a compiled step sees one shape). Padded samples add nothing to the loss, to
the count a mean divides by, or to the gradient.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

import numpy as np

from .backends import Array, backend_of
from .layers.activations import sigmoid

__all__ = ["Loss", "MSE", "BinaryCrossEntropy", "BinaryCrossEntropyWithLogits",
           "SoftmaxCrossEntropy", "loss_classes", "get_loss"]

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
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(
            f"{type(loss).__name__}: prediction {tuple(pred.shape)} and target "
            f"{tuple(target.shape)} differ in shape; reshape the target (e.g. y[:, None]) "
            "rather than let them broadcast.")
    return _as_dtype(target, pred.dtype)


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
        return (factor * dloss) * (sigmoid(backend_of(z).xp, z) - t)

    @classmethod
    def examples(cls, rng):
        yield cls(), _shape2(rng), lambda r, s: r.uniform(size=s)
        yield cls("sum"), _shape2(rng), lambda r, s: (r.uniform(size=s) > 0.5) * 1.0


@dataclasses.dataclass(frozen=True)
class SoftmaxCrossEntropy(Loss):
    """On logits z: (N, K) and integer labels (N,) or target probabilities (N, K):
    L_n = logsumexp(z_n) - Σ_k t_nk z_nk;  dL/dz = softmax(z) - t."""

    def forward(self, pred: Array, target: Array, mask: Array | None = None
                ) -> tuple[Array, Any]:
        xp = backend_of(pred, target).xp
        if len(pred.shape) != 2:
            raise ValueError(f"SoftmaxCrossEntropy takes logits of shape (N, classes), got "
                             f"{tuple(pred.shape)}")
        t = _as_probabilities(xp, pred, target)
        shifted = pred - xp.max(pred, axis=1, keepdims=True)  # log-sum-exp trick
        e = xp.exp(shifted)
        sum_e = xp.sum(e, axis=1, keepdims=True)
        per_item = xp.log(sum_e[:, 0]) - xp.sum(t * shifted, axis=1)
        loss, factor = self._reduce(xp, per_item, mask, 2)
        return loss, (e / sum_e, t, factor)

    def backward(self, cache: Any, dloss: Any = 1.0) -> Array:
        softmax, t, factor = cache
        return (factor * dloss) * (softmax - t)

    @classmethod
    def examples(cls, rng):
        def labels(r: np.random.Generator, s: tuple[int, ...]) -> np.ndarray:
            return r.integers(0, s[1], size=s[0])

        def probabilities(r: np.random.Generator, s: tuple[int, ...]) -> np.ndarray:
            p = r.uniform(0.1, 1.0, size=s)
            return p / p.sum(axis=1, keepdims=True)

        yield cls(), _shape2(rng), labels
        yield cls("sum"), _shape2(rng), probabilities


def _as_probabilities(xp: Any, logits: Array, target: Array) -> Array:
    """Integer labels (N,) as one-hot rows; probability rows (N, K) as they are."""
    n, k = logits.shape
    if len(target.shape) == 1 and target.shape[0] == n:
        classes = xp.arange(k)
        return xp.astype(target[:, None] == classes[None, :], logits.dtype)
    if tuple(target.shape) == (n, k):
        return _as_dtype(target, logits.dtype)
    raise ValueError(f"SoftmaxCrossEntropy: for logits {(n, k)} the target is integer labels "
                     f"of shape ({n},) or probabilities of shape ({n}, {k}), not "
                     f"{tuple(target.shape)}")


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
