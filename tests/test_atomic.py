"""`atomic_write`: the target holds the old bytes or the whole new ones, never a mix, and no
temporary file is left after a failure."""

from __future__ import annotations

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
