"""`atomic_write`: the target holds the old bytes or the whole new ones, never a mix, and no
temporary file is left after a failure."""

from __future__ import annotations

import os
import sys

import pytest

from xbackprop.atomic import TMP_SUFFIX, atomic_write


def test_writes_the_whole_file(tmp_path):
    target = tmp_path / "a.bin"
    with atomic_write(target) as f:
        f.write(b"hello ")
        f.write(b"world")
    assert target.read_bytes() == b"hello world"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_an_error_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "a.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="disk on fire"):
        with atomic_write(target) as f:
            f.write(b"half of the new")
            raise RuntimeError("disk on fire")
    assert target.read_bytes() == b"old"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(TMP_SUFFIX)]


def test_a_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="the folder .*nope does not exist"):
        with atomic_write(tmp_path / "nope" / "a.bin"):
            pass


@pytest.mark.skipif(sys.platform == "win32", reason="file modes: POSIX only")
def test_files_get_the_mode_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "new.bin") as f:
            f.write(b"x")
        (tmp_path / "kept.bin").write_bytes(b"old")
        os.chmod(tmp_path / "kept.bin", 0o604)
        with atomic_write(tmp_path / "kept.bin") as f:
            f.write(b"new")
    finally:
        os.umask(old)
    assert (tmp_path / "new.bin").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600
    assert (tmp_path / "kept.bin").stat().st_mode & 0o777 == 0o604
