"""File-system errors that say which file, what was being done to it, and why it failed.

An `OSError` from Python names at best the path and the C library's reason ("[Errno 28] No
space left on device", often without the path: a failed `write` has none). Code that writes
or reads a file for the user wraps the operation,

    with fserrors.operation("write", path):
        ...

which records the verb and the path on the error (it stays the same OSError, with its
errno), and `describe(error)` turns any OSError into one line for the user:

    cannot write predictions.csv: no space left on device (the disk is full: free some
    space or write elsewhere; an earlier file of that name is unchanged)

The `xbackprop` command prints every OSError this way (`xbackprop: error: ...`, status 2).
An error nobody wrapped still names its path, and the operation is read from the function
that failed (a folder that could not be made names `mkdir`'s verb).
"""

from __future__ import annotations

import contextlib
import errno
import os
import traceback
from collections.abc import Iterator

__all__ = ["operation", "mark", "describe"]

#: errno -> what to do about it, for the errors a user can fix
_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "your disk quota is used up: free some space or write elsewhere",
    errno.EFBIG: "the file is too large for this file system: write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "you lack the permission: choose another path, or change the permission",
    errno.EPERM: "the operation is not permitted there: choose another path",
    errno.EISDIR: "that is a folder: give a file name",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "something of that name is already there",
    errno.ENOENT: "check the path",
    errno.ENAMETOOLONG: "choose a shorter name",
    errno.ELOOP: "the path has a loop of symbolic links",
    errno.EMFILE: "too many open files in this process",
}

#: errors whose failed operation changed nothing that was there before
_WRITES = {"write", "save", "create"}

#: the function in which an unwrapped OSError arose -> the verb for it
_VERBS = {
    "mkdir": "create the folder", "makedirs": "create the folder",
    "read_bytes": "read", "read_text": "read", "load": "read", "fromfile": "read",
    "write_bytes": "write", "write_text": "write", "touch": "create",
    "mkstemp": "create a temporary file in", "replace": "replace", "rename": "rename",
    "unlink": "delete", "remove": "delete", "rmdir": "delete the folder", "rmtree": "delete",
    "iterdir": "list the folder", "scandir": "list the folder", "listdir": "list the folder",
    "stat": "look at", "chmod": "change the permissions of",
}


@contextlib.contextmanager
def operation(verb: str, path: str | os.PathLike) -> Iterator[None]:
    """Inside the block, an OSError that names no file, or a temporary file of the
    operation's own, is marked as `verb` on `path` ("write", "read", "create the folder")
    for `describe`. An error that names another file keeps its own."""
    try:
        yield
    except OSError as e:
        mark(e, verb, path)
        raise


def mark(error: OSError, verb: str, path: str | os.PathLike) -> OSError:
    """Record on `error` that it happened while doing `verb` to `path` (see `operation`);
    an error already marked keeps its mark (the innermost operation knows best)."""
    if getattr(error, "xbackprop_operation", None) is not None:
        return error
    named = error.filename
    if named is None or _same(named, path) or _is_temporary_of(named, path):
        # a mark of xbackprop's own on the library's exception (read back by getattr)
        error.xbackprop_operation = (verb, os.fspath(path))  # type: ignore[attr-defined]
    return error


def _same(name: object, path: str | os.PathLike) -> bool:
    return isinstance(name, (str, os.PathLike)) and os.fspath(name) == os.fspath(path)


def _is_temporary_of(name: object, path: str | os.PathLike) -> bool:
    """`name` is a temporary file `atomic_write` makes beside `path` (".NAME.xxxx.tmp")."""
    if not isinstance(name, (str, bytes, os.PathLike)):
        return False
    base = os.path.basename(os.fsdecode(name))
    return base.startswith(f".{os.path.basename(os.fspath(path))}.") and base.endswith(".tmp")


def describe(error: OSError) -> str:
    """One line for the user: `cannot <operation> <path>: <cause> (<what to do>)`. The
    advice is given for the C library's own reasons only: a message of xbackprop's own
    ("the folder runs does not exist") says it already."""
    if error.errno is None and getattr(error, "xbackprop_operation", None) is None:
        return str(error) or type(error).__name__  # a message of its own, and nothing else
    verb, path = _operation_of(error)
    reason = (error.strerror or str(error) or type(error).__name__).rstrip(".")
    own = error.errno is None or reason != os.strerror(error.errno).rstrip(".")
    if not own:  # the C library's "No such file or directory", mid-sentence
        reason = reason[:1].lower() + reason[1:]
    hint = None if own or error.errno is None else _HINTS.get(error.errno)
    if hint and error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS) and \
            verb.split()[0] in _WRITES:
        hint += "; an earlier file of that name is unchanged"
    what = f"cannot {verb} {path}" if path else f"cannot {verb}"
    return f"{what}: {reason}" + (f" ({hint})" if hint else "")


def _operation_of(error: OSError) -> tuple[str, str | None]:
    marked = getattr(error, "xbackprop_operation", None)
    if marked is not None:
        return marked
    path = None if error.filename is None else os.fsdecode(error.filename)
    if error.filename2 is not None:
        return "rename", f"{path} to {os.fsdecode(error.filename2)}"
    verb = "use"
    for frame in reversed(traceback.extract_tb(error.__traceback__)):
        if frame.name in _VERBS:
            verb = _VERBS[frame.name]
            break
    return verb, path
