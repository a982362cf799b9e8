"""`xbackprop train --checkpoint DIR [--resume]` (xbackprop/cli/checkpoints.py, issue 20
classes 2 and 4): a resume says where it goes on from; what it cannot honour — another
optimizer, dtype or batch size, nothing left to train, a folder that holds a run given
without --resume — is one line naming the saved and the asked value and the option that
fixes it (never "pass resume=True"); a checkpoint folder that cannot be written (a file, a
read-only or a full disk) is one line naming the path, the operation and the cause, exit 2,
and the earlier checkpoint survives."""

from __future__ import annotations

import re

import pytest

import xbackprop as xb
from xbackprop.atomic import TMP_SUFFIX
from xbackprop.cli import USAGE_ERROR, main

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


def train(folder, *options: str, capsys) -> tuple[int, str, str]:
    """`xbackprop train xor --checkpoint FOLDER --quiet OPTIONS`: status, stdout, stderr."""
    code = main(["train", "xor", "--checkpoint", str(folder), "--quiet", *options])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(result: tuple[int, str, str]) -> str:
    """The one error line of a command that stopped before training."""
    code, out, err = result
    assert code == USAGE_ERROR and "Traceback" not in err, err
    assert "train loss" not in out, out  # nothing was trained, nothing printed as if it had
    assert err.count("xbackprop: error: ") == 1 and err.startswith("xbackprop: error: "), err
    assert "resume=True" not in err and "fit(" not in err, err  # the command's words
    return err.removeprefix("xbackprop: error: ").rstrip("\n")


def test_a_resume_says_where_it_goes_on_from(tmp_path, capsys):
    assert train(tmp_path, "--epochs", "3", capsys=capsys)[0] == 0
    code, out, err = train(tmp_path, "--epochs", "5", "--resume", capsys=capsys)
    assert code == 0, err
    assert f"resuming from {tmp_path}/ckpt-000000003.safetensors: epoch 3 (step 3), to " \
           "epoch 5\n" in out
    assert ", float32 (the run's), sgd" in out
    assert xb.CheckpointManager(tmp_path).latest().name == "ckpt-000000005.safetensors"


@pytest.mark.parametrize("epochs, where", [("2", "past"), ("3", "the end of")])
def test_a_resume_with_nothing_left_to_train_says_so(tmp_path, capsys, epochs, where):
    """`--epochs 2 --resume` on a run at epoch 3 printed the old results as if it had
    trained."""
    train(tmp_path, "--epochs", "3", capsys=capsys)
    assert refused(train(tmp_path, "--epochs", epochs, "--resume", capsys=capsys)) == (
        f"nothing left to train: the run in {tmp_path} is at epoch 3 (step 3), {where} the "
        f"--epochs {epochs} asked for. --epochs counts the whole run when resuming: pass "
        "--epochs 4 or more to train on")


def test_a_new_run_in_a_folder_that_holds_one_says_add_resume(tmp_path, capsys):
    train(tmp_path, "--epochs", "1", capsys=capsys)
    assert refused(train(tmp_path, "--epochs", "2", capsys=capsys)) == (
        f"--checkpoint {tmp_path} already holds checkpoints (the newest: "
        "ckpt-000000001.safetensors): add --resume to continue that run, or give --checkpoint "
        "an empty folder for a new one")


@pytest.mark.parametrize("saved, asked, message", [
    ("momentum", "sgd", "the run's optimizer state holds trace (as momentum and nesterov "
                        "keep), which --optimizer sgd cannot go on from: resume with "
                        "--optimizer momentum or nesterov (at any --lr)"),
    ("adam", "rmsprop", "the run's optimizer state holds mu, nu (as adam and adamw keep), "
                        "which --optimizer rmsprop cannot go on from: resume with "
                        "--optimizer adam or adamw (at any --lr)")])
def test_a_resume_with_another_optimizer_names_the_one_to_use(tmp_path, capsys, saved, asked,
                                                              message):
    train(tmp_path, "--epochs", "1", "--optimizer", saved, capsys=capsys)
    assert refused(train(tmp_path, "--epochs", "2", "--resume", "--optimizer", asked,
                         capsys=capsys)) == (
        f"cannot resume from {tmp_path}/ckpt-000000001.safetensors: {message}. Resume with the "
        "run's own options, or give this run another --checkpoint folder")
    code, _, err = train(tmp_path, "--epochs", "2", "--resume", "--optimizer", saved, "--lr",
                         "0.5", capsys=capsys)
    assert code == 0, err


def test_a_resume_trains_in_the_runs_dtype_or_refuses_another(tmp_path, capsys):
    """A float64 run resumed with --dtype float32 printed float32 and trained float64."""
    train(tmp_path, "--epochs", "1", "--dtype", "float64", capsys=capsys)
    assert refused(train(tmp_path, "--epochs", "2", "--resume", "--dtype", "float32",
                         capsys=capsys)) == (
        f"cannot resume from {tmp_path}/ckpt-000000001.safetensors with --dtype float32: the "
        "run trains in float64 (a resume keeps the run's dtype). Leave --dtype out to go on "
        "in float64, or start a new run in float32 with another --checkpoint folder")
    code, out, err = train(tmp_path, "--epochs", "2", "--resume", capsys=capsys)
    assert code == 0 and ", float64 (the run's), sgd" in out, err
    assert xb.checkpoint_info(tmp_path / "ckpt-000000002.safetensors").saved_dtype == "float64"


def test_a_resume_with_another_batch_size_names_both(tmp_path, capsys):
    train(tmp_path, "--epochs", "1", capsys=capsys)
    assert refused(train(tmp_path, "--epochs", "2", "--resume", "--batch-size", "2",
                         capsys=capsys)) == (
        f"cannot resume from {tmp_path}/ckpt-000000001.safetensors: the run's --batch-size was "
        "4, this one's is 2. Resume with the run's own options, or give this run another "
        "--checkpoint folder")


def test_resume_in_an_empty_folder_says_it_starts_a_new_run(tmp_path, capsys):
    code, out, _ = train(tmp_path / "new", "--epochs", "1", "--resume", capsys=capsys)
    assert code == 0
    assert f"--resume: {tmp_path}/new holds no checkpoint yet; starting a new run there" in out


def test_resume_or_an_empty_checkpoint_needs_a_folder(capsys):
    for args, message in [(["--resume"], "--resume continues the run in --checkpoint DIR; "
                                         "give the folder"),
                          (["--checkpoint", ""], "--checkpoint needs a folder name, not an "
                                                 "empty string")]:
        code = main(["train", "xor", "--epochs", "1", "--quiet", *args])
        out, err = capsys.readouterr()
        assert code == USAGE_ERROR and out == "" and err == f"xbackprop: error: {message}\n"


# -- a checkpoint folder that cannot be written (issue 20, class 4) ------------------------

def test_a_file_where_the_checkpoint_folder_should_be(tmp_path, capsys):
    (tmp_path / "taken").write_text("a file")
    for folder, cause in [(tmp_path / "taken", "it is a file, not a folder"),
                          (tmp_path / "taken" / "run", "not a directory (a part of the path "
                                                       "is a file, not a folder)")]:
        code, out, err = train(folder, "--epochs", "1", capsys=capsys)
        assert (code, out) == (USAGE_ERROR, "")  # refused before any work
        assert err == f"xbackprop: error: cannot use the checkpoint folder {folder}: {cause}\n"
    assert (tmp_path / "taken").read_text() == "a file"


def test_a_read_only_checkpoint_folder(small_disk, capsys):
    disk = small_disk(readonly=True)
    for folder in (disk, disk / "run"):
        code, out, err = train(folder, "--epochs", "1", capsys=capsys)
        assert (code, out) == (USAGE_ERROR, "")
        assert err == (f"xbackprop: error: cannot use the checkpoint folder {folder}: "
                       "read-only file system (the file system is read-only: write "
                       "elsewhere)\n")


def test_a_full_disk_under_the_checkpoints_keeps_the_earlier_one(small_disk, capsys):
    disk = small_disk("64k")
    folder = disk / "run"
    assert train(folder, "--epochs", "1", capsys=capsys)[0] == 0
    with open(disk / "filler", "wb", buffering=0) as f:  # the rest of the disk
        try:
            while f.write(bytes(512)):
                pass
        except OSError:
            pass
    code, _, err = train(folder, "--epochs", "3", "--resume", capsys=capsys)
    assert code == USAGE_ERROR and "Traceback" not in err
    assert re.search(rf"^xbackprop: error: cannot write {re.escape(str(folder))}/"
                     r"ckpt-000000002.safetensors: no space left on device \(the disk is full: "
                     r"free some space or write elsewhere; an earlier file of that name is "
                     r"unchanged\)$", err.splitlines()[-1]), err
    assert xb.load_checkpoint(folder / "ckpt-000000001.safetensors").step == 1
    assert not [p for p in folder.iterdir() if p.name.endswith(TMP_SUFFIX)]


def test_a_damaged_newest_checkpoint_is_skipped_with_a_one_line_warning(tmp_path, capsys):
    train(tmp_path, "--epochs", "2", capsys=capsys)
    newest = tmp_path / "ckpt-000000002.safetensors"
    newest.write_bytes(newest.read_bytes()[:-5])  # cut off
    code, out, err = train(tmp_path, "--epochs", "3", "--resume", capsys=capsys)
    assert code == 0, err
    assert err.startswith(f"xbackprop: warning: skipping a checkpoint that cannot be loaded: "
                          f"{newest} is truncated") and err.count("\n") == 1, err
    assert xb.CheckpointManager(tmp_path).latest().name == "ckpt-000000003.safetensors"
