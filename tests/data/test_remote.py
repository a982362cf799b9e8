"""Verified downloads against an HTTP server on 127.0.0.1 (no test touches the internet):
a good file, a corrupted one (the checksum catches it), server errors, a transfer cut off
mid-body (the next attempt resumes with a Range request), a server that cannot resume, a
missing file on one mirror, and no server at all (offline: the error says how to place the
files by hand). The recorded checksums of the real MNIST test pair are checked too."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.data.conftest import shared_mnist, write_mnist_like
from xbackprop.atomic import TMP_SUFFIX
from xbackprop.cli import main
from xbackprop.data import REMOTE_SETS, DownloadError, download, load_mnist
from xbackprop.data.files import sha256_of
from xbackprop.data.remote import PART_SUFFIX, RemoteFile, RemoteSet


def _served_set() -> tuple[RemoteSet, dict[str, bytes]]:
    """The MNIST test pair with its official checksums where this checkout has the real
    files; otherwise small generated files with their own checksums."""
    folder = shared_mnist()
    mnist = REMOTE_SETS["mnist"]
    if folder is not None:
        files = tuple(f for f in mnist.files if f.name.startswith("t10k"))
        return (dataclasses.replace(mnist, files=files),
                {f.name: (folder / f.name).read_bytes() for f in files})
    with tempfile.TemporaryDirectory() as tmp:
        write_mnist_like(Path(tmp), train=None, test=300, seed=1)
        bodies = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
    files = tuple(RemoteFile(name, hashlib.sha256(body).hexdigest(), len(body))
                  for name, body in sorted(bodies.items()))
    return dataclasses.replace(mnist, files=files), bodies


SERVED, BODIES = _served_set()


class _Handler(http.server.BaseHTTPRequestHandler):
    """Serves `server.bodies`; `server.plan` lists how to answer the next requests:
    "ok", "corrupt" (one byte flipped), "error" (HTTP 500), "cut" (half the body, then the
    connection closes), "no-range" (ignores Range, sends everything), "missing" (404)."""

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        behaviour = server.plan.pop(0) if server.plan else "ok"
        body = server.bodies.get(self.path.rsplit("/", 1)[-1])
        if body is None or behaviour == "missing":
            self.send_error(404, "Not Found")
            return
        if behaviour == "error":
            self.send_error(500, "Internal Server Error")
            return
        if behaviour == "corrupt":
            body = body[:100] + bytes([body[100] ^ 0xFF]) + body[101:]
        start = 0
        ranged = self.headers.get("Range")
        if ranged and behaviour != "no-range":
            start = int(ranged.removeprefix("bytes=").rstrip("-"))
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        rest = body[start:]
        self.send_header("Content-Length", str(len(rest)))
        self.end_headers()
        self.wfile.write(rest[:len(rest) // 2] if behaviour == "cut" else rest)

    def log_message(self, *args) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    bodies: dict[str, bytes]
    plan: list[str]
    requests: list[tuple[str, str | None]]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/mnist/"


@pytest.fixture
def server() -> Iterator[_Server]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.bodies, srv.plan, srv.requests = dict(BODIES), [], []
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02},
                              daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def _download(server: _Server, folder: Path, **kwargs) -> Path:
    options = dict(mirrors=[server.url], retries=3, retry_delay=0.0, timeout=10.0,
                   progress=False) | kwargs
    return download(SERVED, folder, **options)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()
                  if p.name.endswith(PART_SUFFIX) or p.name.endswith(TMP_SUFFIX))


def test_recorded_checksums_match_the_real_files():
    folder = shared_mnist()
    if folder is None:
        pytest.skip("the MNIST test pair is not in ../shared/data/mnist in this checkout")
    for file in REMOTE_SETS["mnist"].files:
        if file.name.startswith("t10k"):
            assert sha256_of(folder / file.name) == file.sha256
            assert (folder / file.name).stat().st_size == file.size


def test_every_downloadable_set_lists_four_distinct_checksums():
    for remote in REMOTE_SETS.values():
        assert len(remote.files) == 4 and len({f.sha256 for f in remote.files}) == 4
        assert all(len(f.sha256) == 64 and int(f.sha256, 16) >= 0 for f in remote.files)


def test_good_files_arrive_verified_and_are_not_fetched_twice(server, tmp_path, capsys):
    folder = _download(server, tmp_path / "mnist", progress=True)
    assert folder == tmp_path / "mnist"
    for file in SERVED.files:
        assert (folder / file.name).read_bytes() == BODIES[file.name]
    assert _leftovers(folder) == []
    err = capsys.readouterr().err
    assert f"{SERVED.files[0].name}: " in err and "sha256 ok" in err
    assert f"2 files verified in {folder}" in err
    requests = len(server.requests)
    _download(server, folder, progress=True)
    assert len(server.requests) == requests  # verified on disk, nothing fetched
    assert "already there, sha256 ok" in capsys.readouterr().err
    data = load_mnist(folder)
    assert len(data.x_test) == len(data.y_test) > 0


def test_a_corrupted_file_is_caught_by_its_checksum_and_deleted(server, tmp_path):
    server.plan = ["corrupt"]
    with pytest.raises(DownloadError) as info:
        _download(server, tmp_path)
    name = SERVED.files[0].name
    message = str(info.value)
    assert f"could not download {name} of mnist" in message
    assert f"not the published {SERVED.files[0].sha256}" in message and "deleted" in message
    assert not (tmp_path / name).exists() and _leftovers(tmp_path) == []
    assert len(server.requests) == 1  # the same server would send the same bytes again


def test_server_errors_are_retried_then_reported(server, tmp_path):
    server.plan = ["error"]
    _download(server, tmp_path)  # one 500, then the retry succeeds
    assert [r[1] for r in server.requests[:2]] == [None, None]
    for f in tmp_path.iterdir():
        f.unlink()
    server.requests.clear()
    server.plan = ["error"] * 10
    with pytest.raises(DownloadError, match=r"HTTP 500 Internal Server Error \(attempt 2 of 2\)"):
        _download(server, tmp_path, retries=2)
    assert len(server.requests) == 2 and _leftovers(tmp_path) == []


def test_an_interrupted_transfer_resumes_where_it_stopped(server, tmp_path):
    server.plan = ["cut"]
    _download(server, tmp_path)
    first = SERVED.files[0]
    (path, ranged), (again, resumed) = server.requests[:2]
    assert path == again and ranged is None
    assert resumed == f"bytes={first.size // 2}-"  # only the missing half was asked for
    assert sha256_of(tmp_path / first.name) == first.sha256 and _leftovers(tmp_path) == []


def test_a_partial_file_from_an_earlier_run_is_resumed_and_never_looks_complete(server, tmp_path):
    first = SERVED.files[0]
    part = tmp_path / (first.name + PART_SUFFIX)
    part.write_bytes(BODIES[first.name][:1000])
    with pytest.raises(Exception):  # a loader never takes the .part for the real file
        load_mnist(tmp_path)
    _download(server, tmp_path)
    assert server.requests[0][1] == "bytes=1000-"
    assert (tmp_path / first.name).read_bytes() == BODIES[first.name] and not part.exists()


def test_a_server_that_cannot_resume_sends_everything_again(server, tmp_path):
    first = SERVED.files[0]
    (tmp_path / (first.name + PART_SUFFIX)).write_bytes(BODIES[first.name][:1000])
    server.plan = ["no-range"]
    _download(server, tmp_path)
    assert server.requests[0][1] == "bytes=1000-"
    assert sha256_of(tmp_path / first.name) == first.sha256


def test_a_stale_partial_file_is_thrown_away(server, tmp_path):
    """A .part whose bytes are wrong: the resumed file fails its checksum, so the next
    attempt starts from zero."""
    first = SERVED.files[0]
    (tmp_path / (first.name + PART_SUFFIX)).write_bytes(b"\0" * 1000)
    _download(server, tmp_path)
    assert [r[1] for r in server.requests[:2]] == ["bytes=1000-", None]
    assert sha256_of(tmp_path / first.name) == first.sha256


def test_a_wrong_file_on_disk_is_replaced(server, tmp_path, capsys):
    first = SERVED.files[0]
    (tmp_path / first.name).write_bytes(b"not the file")
    _download(server, tmp_path, progress=True)
    assert sha256_of(tmp_path / first.name) == first.sha256
    assert "present but its sha256 does not match; downloading it again" in capsys.readouterr().err


def test_the_next_mirror_is_tried(server, tmp_path):
    server.plan = ["missing"]
    _download(server, tmp_path, mirrors=[server.url, server.url.replace("/mnist/", "/copy/")])
    assert server.requests[0][0].startswith("/mnist/") and server.requests[1][0].startswith(
        "/copy/")


def _refused_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"  # nothing listens there now


def test_offline_says_how_to_place_the_files_by_hand(tmp_path):
    with pytest.raises(DownloadError) as info:
        download(SERVED, tmp_path, mirrors=[_refused_url()], retries=2, retry_delay=0,
                 progress=False)
    message = str(info.value)
    assert "connection refused (attempt 2 of 2)" in message
    assert "This machine looks offline. To place the files by hand" in message
    assert str(tmp_path) in message
    for file in SERVED.files:
        assert f"{file.name}  ({file.size} bytes, sha256 {file.sha256})" in message
    assert list(tmp_path.iterdir()) == []


def test_load_mnist_download_true_fetches_and_verifies(server, data_home, monkeypatch):
    monkeypatch.setitem(REMOTE_SETS, "mnist", dataclasses.replace(SERVED,
                                                                  mirrors=(server.url,)))
    data = load_mnist(download=True, progress=False)
    assert len(data.x_test) > 0 and (data_home / "mnist" / SERVED.files[0].name).is_file()


def test_command_download_list_and_path(server, tmp_path, data_home, monkeypatch, capsys):
    monkeypatch.setitem(REMOTE_SETS, "mnist", SERVED)
    target = tmp_path / "here"
    assert main(["data", "download", "mnist", "--dir", str(target), "--mirror", server.url]) == 0
    captured = capsys.readouterr()
    assert f"mnist is in {target}" in captured.out
    assert "sha256 ok" in captured.err
    assert main(["data", "path", "mnist"]) == 0
    assert capsys.readouterr().out.strip() == str(data_home / "mnist")
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "mnist" in out and "fashion-mnist" in out and "not downloaded" in out
    # a failed download is an error like any other: status 2 (1 means a wrong gradient)
    assert main(["data", "download", "mnist", "--mirror", _refused_url(), "--retries", "1"]) == 2
    err = capsys.readouterr().err
    assert "\nxbackprop: error: could not download" in err and "by hand" in err
    assert np.all([not p.name.endswith(PART_SUFFIX) for p in data_home.rglob("*")])
