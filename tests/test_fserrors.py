"""`fserrors`: an OSError becomes one line naming the path, the operation and the cause,
with what to do; `operation` marks what was being done without changing the error."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from xbackprop import fserrors
from xbackprop.atomic import atomic_write


def caught(call) -> OSError:
    with pytest.raises(OSError) as info:
        call()
    return info.value


def test_a_write_names_the_target_not_its_temporary_file(tmp_path):
    (tmp_path / "folder.csv").mkdir()

    def write():
        with atomic_write(tmp_path / "folder.csv") as f:
            f.write(b"x")

    error = caught(write)
    assert error.errno == errno.EISDIR  # still the error it was
    assert fserrors.describe(error) == (f"cannot write {tmp_path / 'folder.csv'}: is a "
                                        "directory (that is a folder: give a file name)")


def test_a_full_disk_says_the_earlier_file_is_unchanged(tmp_path):
    def write():
        with fserrors.operation("write", tmp_path / "p.csv"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))  # as f.write raises it

    assert fserrors.describe(caught(write)) == (
        f"cannot write {tmp_path / 'p.csv'}: no space left on device (the disk is full: free "
        "some space or write elsewhere; an earlier file of that name is unchanged)")


def test_an_error_naming_another_file_keeps_its_own_name(tmp_path):
    def read_other():
        with fserrors.operation("write", tmp_path / "out.csv"):
            (tmp_path / "in.csv").read_bytes()

    assert fserrors.describe(caught(read_other)) == (
        f"cannot read {tmp_path / 'in.csv'}: no such file or directory (check the path)")


def test_the_operation_of_an_unmarked_error_comes_from_the_failing_function(tmp_path):
    (tmp_path / "file").write_text("")
    assert fserrors.describe(caught(lambda: (tmp_path / "file" / "sub").mkdir())) == (
        f"cannot create the folder {tmp_path / 'file' / 'sub'}: not a directory (a part of the "
        "path is a file, not a folder)")
    assert fserrors.describe(caught(lambda: os.replace(tmp_path / "a", tmp_path / "b"))) == (
        f"cannot rename {tmp_path / 'a'} to {tmp_path / 'b'}: no such file or directory "
        "(check the path)")


def test_messages_of_xbackprops_own_are_kept_as_they_are(tmp_path):
    def missing_folder():
        with atomic_write(tmp_path / "no" / "p.csv"):
            pass

    assert fserrors.describe(caught(missing_folder)) == (
        f"cannot write {tmp_path / 'no' / 'p.csv'}: the folder {tmp_path / 'no'} does not exist")
    assert fserrors.describe(OSError("CheckpointManager: runs is a file, not a folder")) == \
        "CheckpointManager: runs is a file, not a folder"


def test_the_innermost_operation_wins():
    error = OSError(errno.EACCES, os.strerror(errno.EACCES))
    fserrors.mark(error, "write", Path("inner.csv"))
    fserrors.mark(error, "save", Path("outer"))
    assert fserrors.describe(error).startswith("cannot write inner.csv: permission denied")
