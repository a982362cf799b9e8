"""NumPy's element-wise work split across the machine's cores.

NumPy runs every element-wise operation on one core, while a BLAS product runs on all of
them, so the optimizer's update and the other element-wise passes of a NumPy train step are
what keeps it from using a multi-core CPU (PyTorch runs both kinds on every core). NumPy
releases the GIL inside its loops, so Python threads that run the same operations on
separate ranges of the same arrays do run in parallel. Each element is computed by one
thread with the same operations in the same order, so the result is bit for bit what one
thread gives.

The threads: `XBACKPROP_NUMPY_THREADS` if set (1 turns splitting off), else the cores this
process may run on, at most `MAX_THREADS`. One pool, made on first use.
"""

from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Callable

THREADS_ENV = "XBACKPROP_NUMPY_THREADS"
#: more threads than this gain nothing on element-wise passes (memory bandwidth bounds them)
MAX_THREADS = 8

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def thread_count() -> int:
    """Threads that split NumPy element-wise work: `XBACKPROP_NUMPY_THREADS`, else the cores
    this process may use (at most MAX_THREADS). A bad value is an error that names it."""
    value = os.environ.get(THREADS_ENV)
    if value is not None:
        try:
            count = int(value)
        except ValueError:
            count = 0
        if count < 1:
            raise ValueError(f"{THREADS_ENV}={value!r}: give a number of threads >= 1 (1 keeps "
                             "NumPy's element-wise work on one core)")
        return count
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_THREADS))


def _executor(workers: int) -> concurrent.futures.ThreadPoolExecutor:
    """The pool, grown to at least `workers` threads (a larger one replaces it)."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size < workers:
            _pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=workers, thread_name_prefix="xbackprop-numpy")
            _pool_size = workers
        return _pool


def split(fn: Callable[[int, int], None], n: int, grain: int) -> None:
    """Run `fn(lo, hi)` over `[0, n)` in equal parts, one per thread (the caller's thread
    takes the first), each at least `grain` elements: a range too short to split runs in
    the caller's thread alone. Parts start at multiples of `grain`. Returns when every part
    is done, raising the first error a part raised."""
    parts = min(thread_count(), n // grain)
    if parts < 2:
        fn(0, n)
        return
    per = -(-n // (parts * grain)) * grain  # a multiple of grain
    bounds = [(lo, min(lo + per, n)) for lo in range(0, n, per)]
    futures = [_executor(len(bounds) - 1).submit(fn, lo, hi) for lo, hi in bounds[1:]]
    error: BaseException | None = None
    try:
        fn(*bounds[0])
    except BaseException as e:  # noqa: BLE001 (raised below, once the other parts are done)
        error = e
    for future in futures:
        try:
            future.result()
        except BaseException as e:  # noqa: BLE001
            error = error or e
    if error is not None:
        raise error
