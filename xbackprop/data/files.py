"""Data files on disk: where downloaded data sets live, reading files that may be gzipped,
and their SHA-256 checksums."""

from __future__ import annotations

import gzip
import hashlib
import os
import sys
import zlib
from pathlib import Path

__all__ = ["DATA_ENV_VAR", "DataFileError", "data_home", "read_bytes", "sha256_of"]

#: the environment variable that overrides where downloaded data sets are kept
DATA_ENV_VAR = "XBACKPROP_DATA"

GZIP_MAGIC = b"\x1f\x8b"


class DataFileError(ValueError):
    """A data file is missing a part, corrupt, or not in the format expected; the message
    names the file, says what is wrong and what to do."""


def data_home() -> Path:
    """The folder that holds downloaded data sets (one subfolder per set):
    `$XBACKPROP_DATA` if set, else the platform's user cache folder: `$XDG_CACHE_HOME/xbackprop`
    or `~/.cache/xbackprop` on Linux, `~/Library/Caches/xbackprop` on macOS,
    `%LOCALAPPDATA%\\xbackprop\\Cache` on Windows. Not created here; a variable that names a
    file is an error."""
    chosen = os.environ.get(DATA_ENV_VAR)
    if chosen:
        home = Path(chosen).expanduser()
        if home.exists() and not home.is_dir():
            raise DataFileError(f"${DATA_ENV_VAR}={chosen} is a file, not a folder: point it at "
                                "the folder for downloaded data sets (it is made if missing), "
                                "or unset it to use the user cache folder")
        return home
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "xbackprop" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "xbackprop"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # XDG: a relative path in the variable is invalid and must be ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "xbackprop"


def read_bytes(path: str | os.PathLike) -> tuple[bytes, bool]:
    """`(contents, was_gzipped)`: the bytes of `path`, gunzipped if the file starts with
    gzip's magic bytes (whatever its name). A truncated or corrupt gzip file is a
    `DataFileError` naming it; a missing one is FileNotFoundError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    raw = path.read_bytes()
    if raw[:2] != GZIP_MAGIC:
        return raw, False
    try:
        return gzip.decompress(raw), True
    except EOFError:
        raise DataFileError(f"{path}: the gzip stream ends early: the file is truncated (an "
                            "interrupted download?); fetch it again") from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataFileError(f"{path}: corrupt gzip data ({e}); fetch the file again") from None


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """The SHA-256 of a file's bytes, as 64 hex digits (read in chunks, any size)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()
