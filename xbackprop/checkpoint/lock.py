"""One writer per checkpoint folder: the writer's lock.

A run that writes checkpoints into a folder holds the folder's lock while it runs (`fit`
from its start to its end; `CheckpointManager` in a `with` block, or for one `save`). A
second writer — another `xbackprop train --checkpoint D`, another `fit` on the same folder,
a second resume of the same run — is refused with `FolderInUseError`, which names the
running one (process, host, since when, its command line). Readers (`load_checkpoint`,
`checkpoint_info`, `xbackprop predict`, `CheckpointManager.latest` / `load_latest`) take no
lock: they never wait, delete or rename anything. Only the lock's holder removes the
temporary files of saves that were killed midway, when it takes the lock: no one else can
be writing one then.

The lock is `fcntl.flock` on a file in the folder, `.xbackprop-writer.lock`, which holds
who took it (JSON, for the refusal's message). The kernel releases a flock when its process
ends, however it ends, so a run killed with `kill -9` leaves no stale lock: its folder
resumes at once. The file itself stays (deleting a lock file races with the next writer
opening it) and means nothing when nobody holds its lock.

Within one process the lock is re-entrant: `fit` inside a `with manager:` block, or the
command holding the folder before `fit` takes it, are one writer. Several threads writing
one folder are the caller's business.

Where it works: local file systems on Linux and macOS. On NFS, Linux emulates flock with
NFS byte-range locks, which work between clients when the server supports locking (NFSv4,
or v3 with the lock manager); a mount with `nolock` makes the lock local to each client,
and a crashed client's lock lasts until the server's lease expires (NFSv4: about 90 s).
Where `fcntl` does not exist (Windows), the folder is not locked: give each run its own
folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .. import fserrors
from ..atomic import TMP_SUFFIX
from .errors import CheckpointError

try:
    import fcntl
except ImportError:  # Windows: no flock (see the module's docstring)
    fcntl = None  # type: ignore[assignment]

__all__ = ["FolderLock", "FolderInUseError", "LOCK_NAME", "is_stale_temporary",
           "checked_folder"]

#: the lock file in a checkpoint folder
LOCK_NAME = ".xbackprop-writer.lock"

#: the temporary files of `CheckpointManager`'s saves (atomic.py names them ".NAME.xxxx.tmp")
_TEMPORARY = re.compile(r"^\.ckpt-\d+\.safetensors\..*" + re.escape(TMP_SUFFIX) + "$")


def checked_folder(directory: str | os.PathLike) -> Path:
    """`directory` as a Path, refusing an empty name (Path("") is the current folder, so a
    forgotten setting would fill it with checkpoints)."""
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"a checkpoint folder is a path (a str or a Path), not a "
                        f"{type(directory).__name__}")
    if not os.fspath(directory).strip():
        raise ValueError("a checkpoint folder needs a name, not an empty string (use '.' for "
                         "the current folder)")
    return Path(directory)


def is_stale_temporary(name: str) -> bool:
    """Whether `name` is a temporary file of a checkpoint save (stale once the lock is
    taken: its writer is gone)."""
    return bool(_TEMPORARY.match(name))


class FolderInUseError(CheckpointError):
    """Another process writes checkpoints into the folder; the message names it."""

    def __init__(self, message: str, holder: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        #: what the running writer wrote into the lock file (pid, host, since, command)
        self.holder = holder or {}


class _Held:
    """A lock this process holds: the open lock file, and how many holders share it."""

    def __init__(self, fd: int) -> None:
        self.fd, self.count = fd, 1


# the locks this process holds, by the lock file's (device, inode): one flock per folder,
# however many FolderLocks (or paths to the folder: a symbolic link) take it
_HELD: dict[tuple[int, int], _Held] = {}
_GUARD = threading.Lock()


class FolderLock:
    """The writer's lock of checkpoint folder `directory` (see the module's docstring).

        with FolderLock("runs/digits"):   # FolderInUseError if another process writes there
            ...                           # the folder exists, stale temporaries are gone

    `acquire()` makes the folder if it is missing; `release()` gives the lock back (the last
    holder in this process unlocks it)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = checked_folder(directory)
        self.path = self.directory / LOCK_NAME
        self._key: tuple[int, int] | None = None

    def __repr__(self) -> str:
        return f"FolderLock({str(self.directory)!r}, held={self.held})"

    @property
    def held(self) -> bool:
        return self._key is not None

    def __enter__(self) -> FolderLock:  # noqa: PYI034 (typing.Self is Python 3.11+)
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or raise FolderInUseError naming the process that holds it. An
        OSError (a read-only folder, a file where the folder should be) names the folder."""
        if self.held:
            return
        fd = self._open()
        try:
            key = _identity(fd)
            with _GUARD:
                held = _HELD.get(key)
                if held is not None:  # this process holds it already: share it
                    held.count += 1
                    self._key = key
                    os.close(fd)
                    return
                self._lock(fd)
                _HELD[key] = _Held(fd)
                self._key = key
        except BaseException:
            if self._key is None:
                os.close(fd)
            raise
        self._announce(fd)
        self._remove_stale_temporaries()

    def release(self) -> None:
        """Give the lock back; the folder is unlocked when no holder in this process is left."""
        key, self._key = self._key, None
        if key is None:
            return
        with _GUARD:
            held = _HELD[key]
            held.count -= 1
            if held.count:
                return
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.ftruncate(held.fd, 0)  # says nothing once nobody holds it
            os.close(held.fd)  # closing the last descriptor releases the flock

    def _open(self) -> int:
        """The lock file, opened (made, with the folder, where missing)."""
        folder = self.directory
        try:
            if folder.exists() and not folder.is_dir():
                raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder",
                                         str(folder))
            folder.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except IsADirectoryError:
            raise CheckpointError(f"cannot use the checkpoint folder {folder}: its lock file "
                                  f"{self.path} is a folder, not a file; remove it (rmdir "
                                  f"{self.path}: it should hold nothing)") from None
        except OSError as e:
            error = type(e)(e.errno, e.strerror, str(folder))
            raise fserrors.mark(error, "use the checkpoint folder", folder) from e

    def _lock(self, fd: int) -> None:
        if fcntl is None:
            return
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise FolderInUseError(_refusal(self.directory, holder), holder) from None
        except OSError as e:
            if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP):
                raise
            # a file system without locks (NFS mounted with nolock on some systems): go
            # on unlocked rather than refuse every run there
            return

    def _announce(self, fd: int) -> None:
        """Write who holds the lock into the lock file, for a refused writer's message."""
        if fcntl is None:  # nobody is refused: nothing to say
            return
        who = {"pid": os.getpid(), "host": socket.gethostname(),
               "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join([os.path.basename(sys.argv[0] or "python"),
                                    *sys.argv[1:]])[:300]}
        with contextlib.suppress(OSError):  # the message is a courtesy; the lock is taken
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(who).encode(), 0)

    def _remove_stale_temporaries(self) -> None:
        """The temporary files of saves that were killed midway: nobody else writes here."""
        with contextlib.suppress(OSError):
            for leftover in self.directory.iterdir():
                if is_stale_temporary(leftover.name):
                    with contextlib.suppress(OSError):
                        leftover.unlink()


def _identity(fd: int) -> tuple[int, int]:
    info = os.fstat(fd)
    return info.st_dev, info.st_ino


def _read_holder(fd: int) -> dict[str, Any]:
    try:
        raw = os.pread(fd, 4096, 0)
        holder = json.loads(raw.decode("utf-8")) if raw else {}
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return holder if isinstance(holder, dict) else {}


def _refusal(folder: Path, holder: dict[str, Any]) -> str:
    """The message for a second writer."""
    if holder.get("pid") is not None:
        host = holder.get("host")
        here = host == socket.gethostname()
        who = (f"process {holder['pid']}" + ("" if here or not host else f" on host {host}")
               + (f", since {holder['since']}" if holder.get("since") else "")
               + (f" ({holder['command']})" if holder.get("command") else ""))
    else:
        who = "another process (it has not said which yet)"
    return (f"the checkpoint folder {folder} is being written by another run: {who}. A "
            "folder has one writer: wait for that run to end (or stop it), or give this run "
            "a folder of its own. Reading its checkpoints (load_checkpoint, checkpoint_info, "
            "xbackprop predict) needs no lock.")
