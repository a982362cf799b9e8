"""Learning-rate schedules: functions `step -> learning rate`, `step` counting updates from 0.

Written with array operations on the step, so a schedule works on a Python int, a NumPy
integer or a traced JAX integer inside `jax.jit`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .backends import backend_of

__all__ = ["Schedule", "constant", "step_decay", "cosine_decay", "warmup_cosine",
           "as_schedule"]

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
        xp = backend_of(step).xp
        t = xp.clip(step, None, decay_steps) / decay_steps
        return lr * ((1 - alpha) * 0.5 * (1 + xp.cos(math.pi * t)) + alpha)
    return schedule


def warmup_cosine(peak: float, warmup_steps: int, decay_steps: int, end: float = 0.0,
                  init: float = 0.0) -> Schedule:
    """A linear warm-up from `init` to `peak` over `warmup_steps`, then a cosine decay to
    `end` at `decay_steps` (counted from 0, warm-up included), and `end` after that:

        step < W:       init + (peak - init) · step / W
        W ≤ step ≤ T:   end + (peak - end) · ½ (1 + cos(π (step - W) / (T - W)))

    optax's `warmup_cosine_decay_schedule(init, peak, W, T, end)`; nanoGPT's schedule (its
    warm-up starts one step later). The warm-up keeps Adam's first, noisy moments from taking
    full steps; the decay lets the last steps settle."""
    if warmup_steps < 0 or decay_steps <= warmup_steps:
        raise ValueError(f"warmup_cosine needs 0 <= warmup_steps < decay_steps, got "
                         f"warmup_steps={warmup_steps}, decay_steps={decay_steps}")
    if not peak > 0 or end < 0 or init < 0:
        raise ValueError(f"warmup_cosine: peak must be > 0 and init, end >= 0 (got peak={peak},"
                         f" init={init}, end={end})")
    span = decay_steps - warmup_steps

    def schedule(step: Any) -> Any:
        if isinstance(step, int):
            if step < warmup_steps:
                return init + (peak - init) * step / warmup_steps
            t = min(step - warmup_steps, span) / span
            return end + (peak - end) * 0.5 * (1 + math.cos(math.pi * t))
        xp = backend_of(step).xp
        warm = init + (peak - init) * step / max(warmup_steps, 1)
        t = xp.clip(step - warmup_steps, 0, span) / span
        decay = end + (peak - end) * 0.5 * (1 + xp.cos(math.pi * t))
        return xp.where(step < warmup_steps, warm, decay)
    return schedule


def as_schedule(lr: float | Schedule) -> Schedule:
    """A schedule from a number (constant) or a schedule."""
    if callable(lr):
        return lr
    if not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(f"a learning rate is a non-negative number or a schedule, not {lr!r}")
    return constant(float(lr))
