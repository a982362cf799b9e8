"""Verified downloads: fetch a data set's files into a folder, check every file's SHA-256
before it is used, and never let a partial file look complete.

    folder = download("mnist")                 # ~/.cache/xbackprop/mnist (or $XBACKPROP_DATA)
    folder = download("fashion-mnist", "data/fashion")

How a file arrives. Bytes stream into `NAME.part` beside the final file; if the transfer
breaks off (a dropped connection, a timeout, a server error), the next attempt asks for the
rest with an HTTP Range request and appends, or starts over where the server cannot resume.
Then the whole file's SHA-256 is compared with the published one: only a file that matches
is written under its real name (atomically, through `xbackprop.atomic.atomic_write`); one
that does not is deleted and the error says so. A file already in the folder is verified
and kept when it matches. Mirrors are tried in order; offline, the error lists the URLs and
checksums so the files can be fetched elsewhere and placed in the folder by hand.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import shutil
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from .. import fserrors
from ..atomic import atomic_write
from .files import DataFileError, data_home, sha256_of

__all__ = ["RemoteFile", "RemoteSet", "REMOTE_SETS", "DownloadError", "download",
           "get_remote_set", "PART_SUFFIX"]

#: a file being downloaded is called NAME + this until its checksum is verified
PART_SUFFIX = ".part"
CHUNK = 1 << 16
USER_AGENT = "xbackprop-data/0.1 (+https://pypi.org/project/xbackprop/)"


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of a data set: its name, published SHA-256 and size in bytes."""

    name: str
    sha256: str
    size: int


@dataclasses.dataclass(frozen=True)
class RemoteSet:
    """A data set that can be downloaded: its files and the base URLs that serve them
    (each file is at base + name), tried in order."""

    name: str
    description: str
    mirrors: tuple[str, ...]
    files: tuple[RemoteFile, ...]
    credit: str

    def folder(self, root: str | Path | None = None) -> Path:
        """Where the set lives: `root` if given, else its subfolder of `data_home()`."""
        return Path(root).expanduser() if root is not None else data_home() / self.name


# SHA-256 and sizes as published by TensorFlow Datasets (tensorflow_datasets/url_checksums/
# mnist.txt and fashion_mnist.txt); the MNIST test pair's also match /work/shared's README.
MNIST = RemoteSet(
    "mnist", "MNIST handwritten digits: 60,000 training and 10,000 test images, 28x28",
    mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",           # torchvision's
             "https://storage.googleapis.com/cvdf-datasets/mnist/"),     # TFDS's
    files=(
        RemoteFile("train-images-idx3-ubyte.gz",
                   "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),
        RemoteFile("train-labels-idx1-ubyte.gz",
                   "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),
        RemoteFile("t10k-images-idx3-ubyte.gz",
                   "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),
        RemoteFile("t10k-labels-idx1-ubyte.gz",
                   "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),
    ),
    credit="Y. LeCun, C. Cortes and C. J. C. Burges, the MNIST database of handwritten "
           "digits; CC BY-SA 3.0")

FASHION_MNIST = RemoteSet(
    "fashion-mnist", "Fashion-MNIST clothing images (Zalando): 60,000 training and 10,000 "
    "test images, 28x28, 10 classes",
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    files=(
        RemoteFile("train-images-idx3-ubyte.gz",
                   "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
        RemoteFile("train-labels-idx1-ubyte.gz",
                   "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
        RemoteFile("t10k-images-idx3-ubyte.gz",
                   "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
        RemoteFile("t10k-labels-idx1-ubyte.gz",
                   "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
    ),
    credit="H. Xiao, K. Rasul and R. Vollgraf, Fashion-MNIST (Zalando Research, 2017); MIT "
           "licence")

#: every data set `download` knows, by name
REMOTE_SETS: dict[str, RemoteSet] = {s.name: s for s in (MNIST, FASHION_MNIST)}


class DownloadError(DataFileError):
    """A file could not be downloaded and verified; the message says why and how to place
    the files by hand."""


class _Retry(Exception):
    """This attempt failed in a way the same URL may not repeat (worth another try)."""


class _NextMirror(Exception):
    """This URL will not give the file (missing, wrong size, wrong checksum): try the next."""


def get_remote_set(name: str | RemoteSet) -> RemoteSet:
    if isinstance(name, RemoteSet):
        return name
    try:
        return REMOTE_SETS[name]
    except KeyError:
        raise ValueError(f"unknown data set {name!r}; downloadable sets: "
                         f"{', '.join(REMOTE_SETS)}") from None


def download(name: str | RemoteSet, folder: str | Path | None = None, *,
             mirrors: Sequence[str] | None = None, retries: int = 3, timeout: float = 30.0,
             retry_delay: float = 1.0, progress: bool = True) -> Path:
    """Make sure every file of data set `name` ("mnist", "fashion-mnist") is in `folder`
    (default: `data_home()/name`) with its published SHA-256; download what is missing or
    wrong. Returns the folder.

    mirrors: base URLs to use instead of the set's own (e.g. a local copy); retries: attempts
    per mirror and file (a broken transfer resumes where it stopped); retry_delay: seconds
    before the first retry, doubling after each; progress: report on stderr.
    Raises DownloadError (offline, every mirror failing, a checksum mismatch), naming the
    URLs tried and how to place the files by hand.
    """
    remote = get_remote_set(name)
    target = remote.folder(folder)
    with fserrors.operation("create the folder", target):
        target.mkdir(parents=True, exist_ok=True)
    bases = tuple(mirrors) if mirrors else remote.mirrors
    say = _reporter(progress)
    for file in remote.files:
        path = target / file.name
        if path.is_file():
            if sha256_of(path) == file.sha256:
                say(f"{file.name}: already there, sha256 ok")
                continue
            say(f"{file.name}: present but its sha256 does not match; downloading it again")
        _fetch(remote, file, target, bases, retries, timeout, retry_delay, say, progress)
    say(f"{remote.name}: {len(remote.files)} files verified in {target}")
    return target


def _reporter(enabled: bool):
    def say(message: str) -> None:
        if enabled:
            print(message, file=sys.stderr, flush=True)
    return say


def _fetch(remote: RemoteSet, file: RemoteFile, folder: Path, bases: Sequence[str],
           retries: int, timeout: float, retry_delay: float, say, progress: bool) -> None:
    part = folder / (file.name + PART_SUFFIX)
    failures: list[str] = []
    for base in bases:
        url = base.rstrip("/") + "/" + file.name
        for attempt in range(max(retries, 1)):
            if attempt:
                time.sleep(retry_delay * 2 ** (attempt - 1))
            try:
                resumed = _transfer(url, part, file.size, timeout, progress)
                digest = sha256_of(part)
                if digest != file.sha256:
                    part.unlink()
                    problem = (f"its SHA-256 is {digest}, not the published {file.sha256}: a "
                               "corrupt or different file (deleted)")
                    if resumed:  # the first half may be the stale one: once more from zero
                        raise _Retry(problem)
                    raise _NextMirror(problem)
                with open(part, "rb") as src, atomic_write(folder / file.name) as dst:
                    shutil.copyfileobj(src, dst, CHUNK)
                part.unlink()
                say(f"{file.name}: {_mb(file.size)} from {url}, sha256 ok")
                return
            except _Retry as e:
                failures.append(f"{url}: {e} (attempt {attempt + 1} of {retries})")
                say(f"{file.name}: {e}; " + ("retrying" if attempt + 1 < retries else
                                             "giving up on this mirror"))
            except _NextMirror as e:
                failures.append(f"{url}: {e}")
                say(f"{file.name}: {e}")
                break
    raise DownloadError(_failure_message(remote, file, folder, bases, failures))


def _transfer(url: str, part: Path, size: int, timeout: float, progress: bool) -> bool:
    """Bring `part` up to `size` bytes from `url`, resuming from what it holds. Returns
    whether it resumed (kept bytes from an earlier attempt)."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    if have == size:
        return True
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416:  # the range is past the end: what we hold is wrong; start over
            part.unlink()
            raise _Retry("the server could not resume the partial file; starting over") from e
        if e.code in (408, 425, 429) or e.code >= 500:
            raise _Retry(f"server error HTTP {e.code} {e.reason}") from e
        raise _NextMirror(f"HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError) as e:
        raise _Retry(_network_reason(e)) from e
    with contextlib.closing(response):
        if have and response.status != 206:  # the server ignored the Range: start over
            have = 0
        total = response.headers.get("Content-Length")
        if total is not None and int(total) + have != size:
            raise _NextMirror(f"the server offers {int(total) + have} bytes, the published "
                              f"file has {size} (an error page or a different file?)")
        with fserrors.operation("write", part), open(part, "ab" if have else "wb") as out:
            _stream(response, out, have, size, part.name.removesuffix(PART_SUFFIX), progress)
    got = part.stat().st_size
    if got < size:
        raise _Retry(f"the transfer stopped after {got} of {size} bytes (kept; the next "
                     "attempt resumes)")
    return bool(have)


def _stream(response: http.client.HTTPResponse, out: IO[bytes], have: int, size: int,
            label: str, progress: bool) -> None:
    """Copy the body to `out`, with a progress line on a terminal. A broken connection
    ends the copy early (the caller sees the short file); what arrived is kept."""
    bar = _ByteProgress(label, size, have, progress)
    try:
        while True:
            try:
                block = response.read(CHUNK)
            except (http.client.IncompleteRead, OSError):  # the network's fault, not the disk's
                break
            if not block:
                break
            out.write(block)
            bar.update(len(block))
    finally:
        bar.close()


class _ByteProgress:
    """`name  ████······  3.1/9.9 MB  2.4 MB/s`, redrawn in place on a terminal only."""

    def __init__(self, label: str, size: int, have: int, enabled: bool) -> None:
        self.label, self.size, self.done, self.start_bytes = label, size, have, have
        self.enabled = enabled and sys.stderr.isatty()
        self.start = self.last = time.perf_counter()

    def update(self, n: int) -> None:
        self.done += n
        now = time.perf_counter()
        if self.enabled and now - self.last >= 0.1:
            self.last = now
            rate = (self.done - self.start_bytes) / max(now - self.start, 1e-9)
            filled = int(24 * self.done / max(self.size, 1))
            sys.stderr.write(f"\r\033[K{self.label}  {'█' * filled}{'·' * (24 - filled)}  "
                             f"{_mb(self.done, unit=False)}/{_mb(self.size)}  "
                             f"{rate / 1e6:.1f} MB/s")
            sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def _mb(n: int, unit: bool = True) -> str:
    return f"{n / 1e6:.1f}" + (" MB" if unit else "")


def _network_reason(e: BaseException) -> str:
    reason = getattr(e, "reason", e)
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, TimeoutError):
        return "timed out"
    return f"network error: {reason}"


def _failure_message(remote: RemoteSet, file: RemoteFile, folder: Path,
                     bases: Sequence[str], failures: list[str]) -> str:
    offline = all(("connection refused" in f or "network error" in f or "timed out" in f)
                  for f in failures)
    lines = [f"could not download {file.name} of {remote.name}:"]
    lines += [f"  {f}" for f in failures]
    lines.append(("This machine looks offline. " if offline else "")
                 + f"To place the files by hand, fetch them elsewhere from {bases[0]} "
                 f"and copy them into {folder}:")
    lines += [f"  {f.name}  ({f.size} bytes, sha256 {f.sha256})" for f in remote.files]
    lines.append(f"then run `xbackprop data download {remote.name} --dir {folder}` to verify "
                 "them, or load them directly from that folder.")
    return "\n".join(lines)
