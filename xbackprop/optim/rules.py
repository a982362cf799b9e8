"""The update rules: SGD (with momentum, Nesterov), Adam, AdamW, RMSProp and AdaGrad, each
written once for one array and its slots, and a lookup by name for the command line.

Weight decay is L2, one step shared by every rule: g ← g + λ p before the rule sees the
gradient (PyTorch's `weight_decay`, optax's `add_decayed_weights`), except in AdamW, where it
is decoupled from the adaptive step (Loshchilov & Hutter, 2019). `decay_mask(path, param)`
picks the parameters it applies to, e.g. `lambda path, p: p.ndim >= 2` (matrices only, not
biases and norms' scales, as nanoGPT does).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..backends import backend_of
from ..schedules import Schedule
from .base import DecayMask, Optimizer, make_optimizer

__all__ = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad",
           "OPTIMIZERS", "DEFAULT_LR", "get_optimizer"]


def sgd(lr: float | Schedule = 0.01, momentum: float = 0.0, nesterov: bool = False,
        weight_decay: float = 0.0, decay_mask: DecayMask | None = None) -> Optimizer:
    """Stochastic gradient descent:  p ← p - lr · d.

    With momentum μ (heavy ball, as PyTorch and optax.trace): v ← g + μ v, d = v; Nesterov:
    d = g + μ v (Sutskever et al., 2013). Without momentum d = g.
    """
    if nesterov and momentum <= 0:
        raise ValueError("nesterov=True needs a momentum > 0")

    def rule(p, g, slots, h, ops):
        if not momentum:
            return ops.sub(p, h["lr"] * g), ()
        v = ops.scale_add(slots[0], momentum, g)
        d = g + momentum * v if nesterov else v
        return ops.sub(p, h["lr"] * d), (v,)

    return make_optimizer(rule, {"trace": 0.0} if momentum else {}, lr,
                          weight_decay=weight_decay, decay_mask=decay_mask)


def momentum(lr: float | Schedule = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
             decay_mask: DecayMask | None = None) -> Optimizer:
    """SGD with heavy-ball momentum (see `sgd`)."""
    return sgd(lr, momentum=momentum, weight_decay=weight_decay, decay_mask=decay_mask)


def nesterov(lr: float | Schedule = 0.01, momentum: float = 0.9, weight_decay: float = 0.0,
             decay_mask: DecayMask | None = None) -> Optimizer:
    """SGD with Nesterov momentum (see `sgd`)."""
    return sgd(lr, momentum=momentum, nesterov=True, weight_decay=weight_decay,
               decay_mask=decay_mask)


def _adam(lr: float | Schedule, b1: float, b2: float, eps: float, weight_decay: float,
          decoupled: bool, decay_mask: DecayMask | None) -> Optimizer:
    def prepare(t, lr):
        # bias corrections 1 - β^t (Kingma & Ba, 2015, Algorithm 1) folded into scalars:
        # lr · m̂ / (√v̂ + ε) = (lr / (1 - β1^t)) · m / (√v · (1 - β2^t)^-½ + ε)
        return {"step": lr / (1 - b1 ** t), "inv_sqrt_bc2": (1 - b2 ** t) ** -0.5}

    def rule(p, g, slots, h, ops):
        kernel = ops.fused(p, "adam")
        if kernel is not None:  # the arithmetic below, in place, bit for bit (by backend)
            kernel(g, b1, 1 - b1, b2, 1 - b2, h["step"], h["inv_sqrt_bc2"], eps,
                   h["lr"] * h["wd"], p, slots[0], slots[1])
            return p, slots
        m = ops.ema(slots[0], g, b1)                    # first moment
        v = ops.ema(slots[1], g * g, b2)                # second moment
        xp = backend_of(v).xp
        delta = h["step"] * m / (xp.sqrt(v) * h["inv_sqrt_bc2"] + eps)
        if h["wd"]:
            delta = delta + (h["lr"] * h["wd"]) * p    # AdamW: decay outside the moments
        return ops.sub(p, delta), (m, v)

    return make_optimizer(rule, {"mu": 0.0, "nu": 0.0}, lr, prepare, weight_decay=weight_decay,
                          decoupled=decoupled, decay_mask=decay_mask)


def adam(lr: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
         weight_decay: float = 0.0, decay_mask: DecayMask | None = None) -> Optimizer:
    """Adam (Kingma & Ba, 2015): p ← p - lr · m̂ / (√v̂ + ε), with bias-corrected moments
    m̂ = m / (1 - β1^t), v̂ = v / (1 - β2^t). `weight_decay` is L2 on the gradient."""
    return _adam(lr, b1, b2, eps, weight_decay, False, decay_mask)


def adamw(lr: float | Schedule = 1e-3, b1: float = 0.9, b2: float = 0.999, eps: float = 1e-8,
          weight_decay: float = 1e-4, decay_mask: DecayMask | None = None) -> Optimizer:
    """AdamW (Loshchilov & Hutter, 2019): p ← p - lr · (m̂ / (√v̂ + ε) + λ p), the decay
    decoupled from the adaptive step (optax.adamw; PyTorch's AdamW). nanoGPT decays
    matrices only: `adamw(1e-3, b2=0.99, weight_decay=0.1, decay_mask=lambda path, p:
    p.ndim >= 2)` (optax's `mask=`)."""
    return _adam(lr, b1, b2, eps, weight_decay, True, decay_mask)


def rmsprop(lr: float | Schedule = 1e-3, decay: float = 0.9, eps: float = 1e-8,
            momentum: float = 0.0, weight_decay: float = 0.0,
            decay_mask: DecayMask | None = None) -> Optimizer:
    """RMSProp (Tieleman & Hinton, 2012): ν ← ρ ν + (1 - ρ) g²;  d = g / (√ν + ε);
    with momentum μ: v ← d + μ v, d = v. (ε outside the root, as PyTorch and Keras;
    optax's `rmsprop(..., eps_in_sqrt=False)`.)"""

    def rule(p, g, slots, h, ops):
        nu = ops.ema(slots[0], g * g, decay)
        d = g / (backend_of(nu).xp.sqrt(nu) + eps)
        if not momentum:
            return ops.sub(p, h["lr"] * d), (nu,)
        v = ops.scale_add(slots[1], momentum, d)
        return ops.sub(p, h["lr"] * v), (nu, v)

    return make_optimizer(rule, {"nu": 0.0, "trace": 0.0} if momentum else {"nu": 0.0}, lr,
                          weight_decay=weight_decay, decay_mask=decay_mask)


def adagrad(lr: float | Schedule = 0.01, initial_accumulator: float = 0.1, eps: float = 1e-7,
            weight_decay: float = 0.0, decay_mask: DecayMask | None = None) -> Optimizer:
    """AdaGrad (Duchi et al., 2011): G ← G + g²;  p ← p - lr · g / √(G + ε).
    Defaults as optax.adagrad (the accumulator starts at 0.1)."""

    def rule(p, g, slots, h, ops):
        acc = ops.add(slots[0], g * g)
        return ops.sub(p, h["lr"] * g / backend_of(acc).xp.sqrt(acc + eps)), (acc,)

    return make_optimizer(rule, {"sum": initial_accumulator}, lr, weight_decay=weight_decay,
                          decay_mask=decay_mask)


OPTIMIZERS: dict[str, Callable[..., Optimizer]] = {
    "sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adam": adam, "adamw": adamw,
    "rmsprop": rmsprop, "adagrad": adagrad,
}


#: a learning rate that suits each rule on a small dense network with mini-batches of 32
#: (`xbackprop train digits` reaches test accuracy ≥ 0.95 with each); `xbackprop train
#: --optimizer X` uses it when no --lr is given.
DEFAULT_LR: dict[str, float] = {
    "sgd": 0.1, "momentum": 0.01, "nesterov": 0.01, "adam": 1e-3, "adamw": 1e-3,
    "rmsprop": 1e-3, "adagrad": 0.05,
}


def get_optimizer(optimizer: str | Optimizer, lr: float | Schedule | None = None,
                  **kwargs: Any) -> Optimizer:
    """An Optimizer from an instance (returned as it is) or a name ("adam", "sgd", ...; the
    command line's `--optimizer`), with `lr` or that optimizer's default learning rate."""
    if isinstance(optimizer, Optimizer):
        if lr is not None or kwargs:
            raise ValueError("get_optimizer: a learning rate or settings go with an optimizer "
                             "name, not an Optimizer that already has them")
        return optimizer
    if callable(optimizer) and optimizer in OPTIMIZERS.values():  # a factory, not called
        name = getattr(optimizer, "__name__", "?")  # (no str nor Optimizer: not annotated)
        raise TypeError(f"optimizer: got the function xbackprop.optim.{name}; "
                        f"call it to make the optimizer: optim.{name}(lr)")
    if not isinstance(optimizer, str):
        raise TypeError(f"optimizer: expected an xbackprop Optimizer (e.g. "
                        f"xbackprop.optim.adam(1e-3)) or a name from {sorted(OPTIMIZERS)}, not "
                        f"{type(optimizer).__name__}")
    name = optimizer.strip().lower()
    try:
        factory = OPTIMIZERS[name]
    except KeyError:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {sorted(OPTIMIZERS)} "
                         "or pass one, e.g. xbackprop.optim.adam(1e-3)") from None
    return factory(DEFAULT_LR[name] if lr is None else lr, **kwargs)
