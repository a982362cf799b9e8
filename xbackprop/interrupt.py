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

The `xbackprop` command exits with status 130 at once on a Ctrl-C outside training
(`exit_at_once`), from the first line of the package on: `import xbackprop` (NumPy and the
layers, about half a second) runs before the command's own code, and a Ctrl-C there used to
print a traceback. `quiet_interrupts_if_command`, the first thing the package does, installs
it then, and only when the process is the command; a program that imports xbackprop keeps
Python's Ctrl-C.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["deferred_interrupts", "Interrupt", "exit_at_once", "quiet_interrupts_if_command"]

#: what `python -m` runs as the command
_COMMAND_MODULES = ("xbackprop", "xbackprop.cli")


def exit_at_once(signum: int, frame: Any) -> None:
    """The `xbackprop` command's Ctrl-C outside training: exit with status 130 now. Raising
    KeyboardInterrupt instead can land in a library's callback (JAX's garbage-collection
    hook), which swallows it and runs on; nothing needs saving before training begins, and
    every file is written atomically, so none is left half-written."""
    print("\nxbackprop: interrupted", file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(130)


def quiet_interrupts_if_command() -> None:
    """If this process is the `xbackprop` command (the console script, or `python -m
    xbackprop`), make Ctrl-C `exit_at_once` now, while the package is still importing.
    Nothing changes for any other program, or where Ctrl-C already has a handler."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        return
    if _is_the_command():
        signal.signal(signal.SIGINT, exit_at_once)


def _is_the_command() -> bool:
    argv = sys.argv or [""]
    if os.path.basename(argv[0]) in ("xbackprop", "xbackprop.exe", "xbackprop-script.py"):
        return True
    # `python -m xbackprop`: the package is imported while sys.argv[0] is still "-m"
    orig = list(getattr(sys, "orig_argv", ()))
    if argv[0] != "-m" or "-m" not in orig:
        return False
    named = orig[orig.index("-m") + 1:orig.index("-m") + 2]
    return bool(named) and named[0] in _COMMAND_MODULES


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
