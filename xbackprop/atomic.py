"""Files written all or nothing: a reader sees the old file or the whole new one, never half.

Used for checkpoints and downloads. The bytes go to a temporary file in the target's own
directory (so the final rename never crosses file systems), which is flushed and fsynced,
then `os.replace`d over the target, and the directory is fsynced so the rename itself
survives a power cut. If the writer fails or the process is killed, the target is untouched
and at most a `.tmp` file is left behind (cleaned up on failure where Python still runs).
An OSError (a full disk, a read-only folder) is marked as a failed write of the target
(`fserrors`), so the message names the file the user asked for, not the temporary one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from . import fserrors

__all__ = ["atomic_write", "atomic_path", "TMP_SUFFIX"]

#: temporary files end in this, so a folder listing never mistakes one for a real file
TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[IO[bytes]]:
    """`with atomic_write(path) as f: f.write(...)`: `path` gets the bytes written to `f`
    only if the block finishes without an exception. The directory must exist."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        yield f


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """`with atomic_path(path) as tmp: save_file(..., tmp)`, for writers that take a file
    name (a library's `save_file`): `path` gets the file written at `tmp` only if the block
    finishes without an exception. The directory must exist."""
    target = Path(path)
    folder = target.parent
    with fserrors.operation("write", target):
        if not folder.is_dir():
            if folder.exists():
                raise NotADirectoryError(errno.ENOTDIR, f"{folder} is a file, not a folder",
                                         str(target))
            raise FileNotFoundError(errno.ENOENT, f"the folder {folder} does not exist",
                                    str(target))
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TMP_SUFFIX, dir=folder)
        try:
            _chmod_like_open(fd, target)
            os.close(fd)
            yield Path(tmp)
            with open(tmp, "rb+") as f:  # what the writer wrote, on the disk before the rename
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    _fsync_dir(folder)


def _chmod_like_open(fd: int, target: Path) -> None:
    """Give the temporary file the mode `open(target, "wb")` would give (mkstemp makes it
    0600): the target's own mode if it exists, else 0666 less the umask."""
    try:
        mode = target.stat().st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_umask()
    with contextlib.suppress(AttributeError, OSError):  # no fchmod: Windows before 3.13
        os.fchmod(fd, mode)


def _umask() -> int:
    """The process's umask, read without changing it where Linux shows it (os.umask can
    only be read by setting it, which races with other threads creating files)."""
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; a no-op where directories cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
