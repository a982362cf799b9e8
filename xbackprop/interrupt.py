"""Ctrl-C that stops training cleanly instead of landing wherever the program happens to be.

Python raises KeyboardInterrupt at whatever line runs when the signal arrives. Inside JAX's
compiler that abandons a compilation midway, and the interpreter then crashed with a
segmentation fault on exit (in about half of the runs interrupted during the first epoch).
Inside `deferred_interrupts()` the first Ctrl-C only sets a flag (and says so); the training
loop looks at it between steps, saves what it should, and raises KeyboardInterrupt itself.
A second Ctrl-C raises at once, for when a step takes too long to wait for.

Only the main thread can own signal handlers: elsewhere, where a program installed its own
handler, and where SIGINT is ignored (a program started in the background by a script
inherits it ignored, as `nohup` intends), nothing changes.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["deferred_interrupts", "Interrupt", "exit_at_once"]


def exit_at_once(signum: int, frame: Any) -> None:
    """The `xbackprop` command's Ctrl-C outside training: exit with status 130 now. Raising
    KeyboardInterrupt instead can land in a library's callback (JAX's garbage-collection
    hook), which swallows it and runs on; nothing needs saving before training begins, and
    every file is written atomically, so none is left half-written."""
    print("\nxbackprop: interrupted", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


class Interrupt:
    """Whether Ctrl-C was pressed inside the block (`requested`)."""

    def __init__(self) -> None:
        self.requested = False


_active: Interrupt | None = None


@contextlib.contextmanager
def deferred_interrupts(notice: str = "stopping after this step (Ctrl-C again to stop at once)"
                        ) -> Iterator[Interrupt]:
    """A block in which Ctrl-C sets `.requested` instead of raising; the block's code must
    look at it at safe points. On leaving the block a pending request raises
    KeyboardInterrupt. Nested blocks share the outer one's flag."""
    global _active
    if _active is not None:
        yield _active
        return
    flag = Interrupt()
    previous = signal.getsignal(signal.SIGINT)
    if (threading.current_thread() is not threading.main_thread()
            or previous not in (signal.default_int_handler, exit_at_once)):
        yield flag  # not ours to change: Ctrl-C behaves as it always does
        return

    def handler(signum: int, frame: Any) -> None:
        if flag.requested:  # the second time: do not wait any longer
            signal.signal(signal.SIGINT, signal.default_int_handler)
            raise KeyboardInterrupt
        flag.requested = True
        print(f"\nxbackprop: interrupted; {notice}", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    _active = flag
    try:
        yield flag
    finally:
        _active = None
        signal.signal(signal.SIGINT, previous)
    if flag.requested:
        raise KeyboardInterrupt
