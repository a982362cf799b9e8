"""Optimizers as pairs of pure functions, in the manner of optax:

    state = opt.init(params)
    params, state = opt.update(params, grads, state)

- `base`: what an optimizer and its state are; a per-array rule applied to a whole tree.
- `rules`: SGD (momentum, Nesterov), Adam, AdamW, RMSProp, AdaGrad; lookup by name.
- `transforms`: optimizers made from optimizers: gradient clipping by global norm or by
  value, and freezing parameters.
- `minimize`: the rules on a plain function with a hand-written gradient.

Learning rates are numbers or schedules (`xbackprop.schedules`), evaluated at the number of
updates done so far. Weight decay (L2, or decoupled in AdamW) applies to the parameters a
`decay_mask(path, param)` selects, by default all.
"""

from __future__ import annotations

from .base import DecayMask, Optimizer, OptState
from .minimize import Trajectory, minimize
from .rules import (
    DEFAULT_LR,
    OPTIMIZERS,
    adagrad,
    adam,
    adamw,
    get_optimizer,
    momentum,
    nesterov,
    rmsprop,
    sgd,
)
from .transforms import clip_by_global_norm, clip_by_value, freeze, global_norm, masked

__all__ = ["Optimizer", "OptState", "DecayMask", "sgd", "momentum", "nesterov", "adam", "adamw",
           "rmsprop", "adagrad", "masked", "freeze", "clip_by_global_norm", "clip_by_value",
           "global_norm", "get_optimizer", "OPTIMIZERS", "DEFAULT_LR", "Trajectory",
           "minimize"]
