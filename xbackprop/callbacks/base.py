"""What a callback is: something `fit` calls beside the loop, not inside it (Chainer's
extensions, Keras' callbacks), and may save with its checkpoints.

    class Callback:
        on_step(step, state) -> stop?          after every step
        on_logs(index, logs, state) -> stop?   after each row of the history
        state() -> dict | None                 what fit's checkpoints keep of it
        restore(saved)                         ... given back on resume

A plain function `cb(index, logs, state) -> stop?` is a callback too (its `on_logs`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["Callback", "FunctionCallback", "as_callbacks", "step_callbacks"]


class Callback:
    """Subclass it and override what you need; every hook may return True to stop
    training (after the step, or after the row).

    `on_step(step, state)` runs after every step, `step` being the count of steps done.
    The step's statistics are still on the device then (reading them every step would
    wait for the device each time), so it gets only the state. Only callbacks that
    override it are called per step, so the others cost nothing there.

    `on_logs(index, logs, state)` runs after each row of the history: after each epoch
    (`index` is the epoch, from 0) or, counting in steps, after each evaluation (`index`
    is the evaluation, `logs["step"]` the step count). `logs` is the row: "loss",
    "accuracy", ..., "val_loss", ..., "time".

    The state both get is live: later steps update its arrays in place on NumPy and CuPy;
    copy what you keep.

    `state()` returns what a resumed run needs of the callback (JSON-able: numbers,
    strings, lists, dicts), or None; `fit(checkpoint_dir=...)` stores it in every
    checkpoint and, with `resume=True`, gives it back with `restore(saved)` to the callback
    in the same place of `callbacks` (of the same class) before training goes on.
    """

    def on_step(self, step: int, state: Any) -> bool | None:
        return None

    def on_logs(self, index: int, logs: dict[str, float], state: Any) -> bool | None:
        return None

    def state(self) -> dict[str, Any] | None:
        return None

    def restore(self, saved: dict[str, Any]) -> None:
        """Take back what `state()` returned (from a checkpoint)."""

    def __call__(self, index: int, logs: dict[str, float], state: Any) -> bool | None:
        """The function form: the same as `on_logs`."""
        return self.on_logs(index, logs, state)


class FunctionCallback(Callback):
    """A function `fn(index, logs, state) -> stop?` as a callback (its `on_logs`)."""

    def __init__(self, fn: Callable[[int, dict[str, float], Any], Any]) -> None:
        self.fn = fn

    def __repr__(self) -> str:
        return f"FunctionCallback({self.fn!r})"

    def on_logs(self, index: int, logs: dict[str, float], state: Any) -> bool | None:
        return self.fn(index, logs, state)


def as_callbacks(callbacks: Iterable[Any]) -> list[Callback]:
    """`callbacks` as Callback objects (functions wrapped); a TypeError, before any
    training, naming one that is neither."""
    if isinstance(callbacks, Callback) or callable(callbacks):
        raise TypeError("callbacks is a list of callbacks; pass callbacks=[cb]")
    out = []
    for i, cb in enumerate(callbacks):
        if isinstance(cb, Callback):
            out.append(cb)
        elif callable(cb):
            out.append(FunctionCallback(cb))
        else:
            raise TypeError(f"callbacks[{i}] is a {type(cb).__name__}, not a callback: pass a "
                            "function cb(epoch, logs, state) or an xbackprop.Callback")
    return out


def step_callbacks(callbacks: Iterable[Callback]) -> list[Callback]:
    """The callbacks that act after every step (they override `on_step`)."""
    return [cb for cb in callbacks if type(cb).on_step is not Callback.on_step]
