"""Progress: a small progress bar for training loops (no dependency) — one line per epoch
that fills in place on a terminal, and a plain line per epoch when output goes to a file or
a pipe — and `FitProgress`, what one `fit` call shows with it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

__all__ = ["ProgressBar", "format_metrics", "FitProgress"]


def format_metrics(metrics: dict[str, Any]) -> str:
    """'loss 0.1234  accuracy 0.9500' from a dict of numbers."""
    parts = []
    for name, value in metrics.items():
        parts.append(f"{name} {value:.4f}" if isinstance(value, float) else f"{name} {value}")
    return "  ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 60}:{seconds % 60:02d}"


class ProgressBar:
    """`bar = ProgressBar(total, "epoch 1/10")`, `bar.update(loss=...)` per step,
    `bar.close(loss=..., val_loss=...)` at the end, which leaves the final line."""

    def __init__(self, total: int, description: str, *, enabled: bool = True,
                 file: TextIO | None = None, width: int = 24, min_interval: float = 0.1,
                 initial: int = 0) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self.file = file if file is not None else sys.stderr
        self.width, self.min_interval = width, min_interval
        self.count = self.initial = initial  # a resumed run's bar starts where it stood
        self.start = self._last_draw = time.perf_counter()
        self.interactive = enabled and getattr(self.file, "isatty", lambda: False)()

    def needs_refresh(self) -> bool:
        """True when a redraw is due (callers fetch values from the device only then)."""
        return self.interactive and time.perf_counter() - self._last_draw >= self.min_interval

    def update(self, n: int = 1, **metrics: Any) -> None:
        self.count += n
        if metrics and self.needs_refresh():
            self._draw(metrics, final=False)

    def close(self, **metrics: Any) -> None:
        if self.enabled:
            self._draw(metrics, final=True)

    def write(self, line: str) -> None:
        """Print a line of its own (a log line) without garbling the bar: on a terminal the
        bar's line is cleared first and redrawn at the next refresh."""
        self.file.write(("\r\033[K" if self.interactive else "") + line + "\n")
        self.file.flush()
        self._last_draw = 0.0  # redraw the bar under the line at the next update

    def _draw(self, metrics: dict[str, Any], final: bool) -> None:
        now = time.perf_counter()
        self._last_draw = now
        elapsed = now - self.start
        done = self.count / self.total if self.total else 1.0
        filled = round(self.width * done)
        bar = "█" * filled + "·" * (self.width - filled)
        rate = (self.count - self.initial) / elapsed if elapsed > 0 else 0.0
        timing = (f"{_clock(elapsed)}, {rate:.0f} it/s" if final else
                  f"ETA {_clock((self.total - self.count) / rate) if rate else '?'}")
        line = (f"{self.description} {bar} {self.count}/{self.total}  "
                f"{format_metrics(metrics)}  [{timing}]")
        if self.interactive:
            self.file.write("\r\033[K" + line + ("\n" if final else ""))
        elif final:
            self.file.write(line + "\n")
        self.file.flush()


class FitProgress:
    """What one `fit` call shows: the progress bar(s) and log lines.

    Counting in epochs: a bar per epoch that closes with the epoch's logs ("steps"), or one
    bar over the epochs ("epochs", the default when an epoch is one step); log_every=k
    prints the logs every k epochs. Counting in steps: one bar over the steps with the loss
    and the last validation figures, and a line of logs at each evaluation (every
    `log_every`-th with log_every=k). Values are read from the device only when the bar
    redraws (`needs_refresh`).
    """

    def __init__(self, progress: bool | str, log_every: int | None, period: int, first: int,
                 last: int, *, steps: bool = False) -> None:
        mode = progress
        if steps and progress:  # counting in steps: one bar over them ("steps" too)
            mode = "total"
        elif progress is True:
            mode = "epochs" if period == 1 else "steps"
        self.mode, self.log_every, self.spe = mode or None, log_every, period
        self.first, self.last, self.counting_steps = first, last, steps
        self.bar: ProgressBar | None = None
        self.shown: dict[str, Any] = {}  # the figures the bar shows
        self.final: dict[str, Any] = {}  # ... and closes with
        if self.mode == "epochs":
            self.bar = ProgressBar(last - first, "epochs")
        elif self.mode == "total":  # first, last: steps
            self.bar = ProgressBar(last, "step", initial=first)

    def wants(self, row: int) -> bool:
        """True when row `row`'s logs must be shown now."""
        logged = self.log_every is not None and (row + 1) % self.log_every == 0
        if self.counting_steps:
            return self.mode is not None and (self.log_every is None or logged)
        return (self.mode == "steps" or logged
                or (self.bar is not None and self.bar.needs_refresh()))

    def step(self, pending: list, loss_of: Callable[[Any], float]) -> None:
        if self.mode == "total":
            assert self.bar is not None
            if self.bar.needs_refresh():
                self.bar.update(loss=loss_of(pending[-1][1]), **self.shown)
            else:
                self.bar.update()
            return
        if self.mode != "steps":
            return
        if self.bar is None:
            epoch = pending[-1][0] // self.spe
            total = self.spe - pending[-1][0] % self.spe
            self.bar = ProgressBar(total, f"epoch {epoch + 1}/{self.last}")
        if self.bar.needs_refresh():
            self.bar.update(loss=loss_of(pending[-1][1]))
        else:
            self.bar.update()

    def row(self, row: int, logs: dict[str, float]) -> None:
        """Row `row` of the history is written: `logs`."""
        shown = {k: v for k, v in logs.items() if k != "time"}
        if self.counting_steps:
            step = shown.pop("step")
            self.final = shown
            self.shown = {k: v for k, v in shown.items() if k.startswith("val_")}
            if self.log_every is None or (row + 1) % self.log_every == 0:
                line = f"step {step}/{self.last}  {format_metrics(shown)}"
                if self.bar is not None:
                    self.bar.write(line)
                elif self.mode is not None:
                    print(line, file=sys.stderr, flush=True)
            return
        if self.mode == "steps" and self.bar is not None:
            self.bar.close(**shown)
            self.bar = None
        elif self.mode == "epochs":
            assert self.bar is not None
            self.bar.count = row + 1 - self.first
            if self.bar.needs_refresh():
                self.bar.update(0, **shown)
        if self.log_every is not None and (row + 1) % self.log_every == 0:
            line = f"epoch {row + 1}/{self.last}  {format_metrics(shown)}"
            if self.bar is not None:
                self.bar.write(line)
            else:
                print(line, file=sys.stderr, flush=True)
        self.shown = self.final = shown

    def close(self) -> None:
        if self.mode in ("epochs", "total") and self.bar is not None:
            self.bar.close(**self.final)
            self.bar = None
