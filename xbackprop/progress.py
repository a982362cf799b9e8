"""A small progress bar for training loops (no dependency): one line per epoch that fills in
place on a terminal, and a plain line per epoch when output goes to a file or a pipe."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["ProgressBar", "format_metrics"]


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
                 file: TextIO | None = None, width: int = 24, min_interval: float = 0.1) -> None:
        self.total, self.description, self.enabled = total, description, enabled
        self.file = file if file is not None else sys.stderr
        self.width, self.min_interval = width, min_interval
        self.count = 0
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
        filled = int(round(self.width * done))
        bar = "█" * filled + "·" * (self.width - filled)
        rate = self.count / elapsed if elapsed > 0 else 0.0
        timing = (f"{_clock(elapsed)}, {rate:.0f} it/s" if final else
                  f"ETA {_clock((self.total - self.count) / rate) if rate else '?'}")
        line = (f"{self.description} {bar} {self.count}/{self.total}  "
                f"{format_metrics(metrics)}  [{timing}]")
        if self.interactive:
            self.file.write("\r\033[K" + line + ("\n" if final else ""))
        elif final:
            self.file.write(line + "\n")
        self.file.flush()
