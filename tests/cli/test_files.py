"""File-system errors in the command (issue 20, class 4): a full disk, a read-only folder, a
file where a folder should be, a folder where a file should be. Each is one line,
`xbackprop: error: ...` naming the path, the operation and the cause, with status 2; never
a traceback; an earlier file of the same name survives whole, and no temporary file is left.
Full and read-only disks are real: small tmpfs mounts (`small_disk`, skipped with the reason
where this process cannot mount)."""

from __future__ import annotations

import errno
import re

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.cli import USAGE_ERROR, main
from xbackprop.data import files

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


@pytest.fixture
def model_and_inputs(tmp_path):
    """A saved 64-feature classifier and 3,000 samples for it: 3,000 rows of predictions
    (about 200 kB of CSV) are more than a 64 kB disk holds."""
    model = xb.Sequential([xb.Dense(10)])
    params = xb.init_params(model, 0, (64,))
    path = xb.save_model(tmp_path / "m.safetensors", model, params, input_shape=(64,),
                         loss="cross_entropy")
    np.save(tmp_path / "x.npy", np.random.default_rng(0).uniform(size=(3000, 64)))
    return str(path), str(tmp_path / "x.npy")


def run(args, capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    """The error, the last line of stderr (after any progress bar), and only one."""
    assert "Traceback" not in err and err.count("xbackprop: error: ") == 1, err
    last = err.splitlines()[-1] + "\n"
    assert last.startswith("xbackprop: error: ") and err.endswith(last), err
    return last


def test_a_full_disk_under_predict_output(model_and_inputs, small_disk, capsys):
    model, x = model_and_inputs
    disk = small_disk("64k")
    out = disk / "predictions.csv"
    out.write_text("the earlier predictions\n")
    code, _, err = run(["predict", model, x, "--output", str(out)], capsys)
    assert code == USAGE_ERROR
    assert re.search(rf"^xbackprop: error: cannot write {re.escape(str(out))}: no space left "
                     r"on device \(the disk is full: free some space or write elsewhere; an "
                     r"earlier file of that name is unchanged\)$", one_error_line(err)), err
    assert out.read_text() == "the earlier predictions\n"
    assert sorted(p.name for p in disk.iterdir()) == ["predictions.csv"]  # no .tmp left


def test_a_full_disk_under_the_example_pictures(small_disk, capsys):
    pytest.importorskip("matplotlib")
    disk = small_disk("24k")
    code, out, err = run(["example", "xor", "--quick", "--out", str(disk / "pics")], capsys)
    assert code == USAGE_ERROR and "solved" in out  # the lesson ran; its pictures failed
    assert re.search(rf"cannot write {re.escape(str(disk))}/pics/\w+\.png: no space left on "
                     "device", one_error_line(err)), err
    assert not [p for p in (disk / "pics").iterdir() if p.name.endswith(".tmp")]


def test_a_read_only_folder(model_and_inputs, small_disk, capsys):
    model, x = model_and_inputs
    disk = small_disk(readonly=True)
    code, _, err = run(["predict", model, x, "--output", str(disk / "p.csv")], capsys)
    assert code == USAGE_ERROR
    assert f"cannot write {disk / 'p.csv'}: read-only file system (the file system is " \
        "read-only: write elsewhere; an earlier file of that name is unchanged)" in \
        one_error_line(err)
    code, _, err = run(["example", "xor", "--quick", "--no-plots"], capsys)
    assert code == 0
    code, _, err = run(["example", "xor", "--quick", "--out", str(disk / "pics")], capsys)
    assert code == USAGE_ERROR
    assert f"cannot create the folder {disk / 'pics'}: read-only file system" in \
        one_error_line(err)


def test_a_file_where_a_folder_should_be(model_and_inputs, tmp_path, capsys, monkeypatch):
    model, x = model_and_inputs
    (tmp_path / "taken").write_text("a file")
    cases = [
        (["example", "xor", "--quick", "--out", str(tmp_path / "taken")],
         rf"--out {re.escape(str(tmp_path))}/taken is a file, not a folder"),
        (["example", "xor", "--quick", "--out", str(tmp_path / "taken" / "pics")],
         r"--out .*/taken/pics: .*/taken is a file, not a folder"),
        (["predict", model, x, "--output", str(tmp_path / "taken" / "p.csv")],
         r"--output .*/taken/p.csv: .*/taken is a file, not a folder"),
        (["data", "download", "mnist", "--dir", str(tmp_path / "taken"), "--quiet"],
         rf"cannot create the folder {re.escape(str(tmp_path))}/taken: file exists"),
    ]
    for args, pattern in cases:
        code, out, err = run(args, capsys)
        assert code == USAGE_ERROR and out == "", (args, out)  # before any work
        assert re.search(pattern, one_error_line(err)), err
    monkeypatch.setenv(files.DATA_ENV_VAR, str(tmp_path / "taken"))
    for args in (["data", "path", "mnist"], ["data", "list"],
                 ["data", "download", "mnist", "--quiet"]):
        code, _, err = run(args, capsys)
        assert code == USAGE_ERROR, args
        assert f"${files.DATA_ENV_VAR}={tmp_path / 'taken'} is a file, not a folder: point it " \
            "at the folder for downloaded data sets" in one_error_line(err)


def test_a_folder_or_a_missing_folder_where_a_file_should_be(model_and_inputs, tmp_path,
                                                             capsys):
    model, x = model_and_inputs
    for option, pattern in [
            (str(tmp_path), rf"--output {re.escape(str(tmp_path))} is a folder; give a file "
                            rf"name, e.g. {re.escape(str(tmp_path))}/out.csv"),
            (str(tmp_path / "no" / "p.csv"), r"--output .*/no/p.csv: the folder .*/no does "
                                             r"not exist; create it first"),
            ("", r"--output needs a file name, not an empty string")]:
        code, out, err = run(["predict", model, x, "--output", option], capsys)
        assert code == USAGE_ERROR and out == ""
        assert re.search(pattern, one_error_line(err)), err
    code, _, err = run(["predict", str(tmp_path), x], capsys)
    assert code == USAGE_ERROR and "is a folder, not a checkpoint file" in one_error_line(err)
    code, _, err = run(["predict", model, str(tmp_path)], capsys)
    assert code == USAGE_ERROR
    assert f"{tmp_path}: a folder, not a file of inputs" in one_error_line(err)


def test_any_os_error_is_one_line_naming_its_path(capsys, monkeypatch):
    """The general mechanism: an OSError from anywhere in a command, wrapped or not."""
    from xbackprop.cli import list_backends

    def fails(args):
        raise PermissionError(errno.EACCES, "Permission denied", "/srv/runs/ckpt-3")

    monkeypatch.setattr(list_backends, "run", fails)
    code, _, err = run(["backends"], capsys)
    assert code == USAGE_ERROR
    assert one_error_line(err) == (
        "xbackprop: error: cannot use /srv/runs/ckpt-3: permission denied (you lack the "
        "permission: choose another path, or change the permission)\n")

    def no_file(args):
        from pathlib import Path

        return Path("/no/such/dir/for/xbackprop").mkdir()

    monkeypatch.setattr(list_backends, "run", no_file)
    code, _, err = run(["backends"], capsys)
    assert code == USAGE_ERROR
    assert "cannot create the folder /no/such/dir/for/xbackprop: no such file or directory" \
        in one_error_line(err)
