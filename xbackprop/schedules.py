"""Learning-rate schedules: functions `step -> learning rate`, `step` counting updates from 0.

Written with array operations on the step, so a schedule works on a Python int, a NumPy
integer or a traced JAX integer inside `jax.jit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["Schedule", "constant", "step_decay", "cosine_decay", "as_schedule"]

Schedule = Callable[[Any], Any]


def constant(lr: float) -> Schedule:
    """lr at every step."""
    def schedule(step: Any) -> Any:
        return lr
    schedule.__doc__ = f"constant learning rate {lr}"
    return schedule


def step_decay(lr: float, step_size: int, gamma: float = 0.1) -> Schedule:
    """lr · gamma^⌊step / step_size⌋ (PyTorch's StepLR, counted in updates)."""
    if step_size <= 0:
        raise ValueError(f"step_size must be positive, got {step_size}")

    def schedule(step: Any) -> Any:
        return lr * gamma ** (step // step_size)
    return schedule


def cosine_decay(lr: float, decay_steps: int, alpha: float = 0.0) -> Schedule:
    """lr · ((1 - α) · ½ (1 + cos(π · min(step, T) / T)) + α) (Loshchilov & Hutter, 2017,
    without restarts; optax's cosine_decay_schedule)."""
    if decay_steps <= 0:
        raise ValueError(f"decay_steps must be positive, got {decay_steps}")

    def schedule(step: Any) -> Any:
        if isinstance(step, int):
            t = min(step, decay_steps) / decay_steps
            return lr * ((1 - alpha) * 0.5 * (1 + math.cos(math.pi * t)) + alpha)
        from .backends import backend_of

        xp = backend_of(step).xp
        t = xp.clip(step, None, decay_steps) / decay_steps
        return lr * ((1 - alpha) * 0.5 * (1 + xp.cos(math.pi * t)) + alpha)
    return schedule


def as_schedule(lr: float | Schedule) -> Schedule:
    """A schedule from a number (constant) or a schedule."""
    if callable(lr):
        return lr
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"a learning rate is a non-negative number or a schedule, not {lr!r}")
    return constant(float(lr))
