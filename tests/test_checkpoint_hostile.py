"""Hostile inputs around checkpoints and resume (issue 20 part B, beyond its classes): each
was silent damage, a hang, a raw Python message or a file that saved but could not be read
back; each is now a clear error or warning, asserted here with its message. (The command's
own cases — `--checkpoint ''`, `--resume` in an empty folder — are in
tests/cli/test_checkpoints.py.)"""

from __future__ import annotations

import os
import re
import warnings

import numpy as np
import pytest

import xbackprop as xb
from xbackprop import checkpoint as ck
from xbackprop.checkpoint.lock import LOCK_NAME

X = np.random.default_rng(0).normal(size=(24, 3)).astype(np.float32)
Y = (X[:, 0] > 0).astype(np.int64)
MODEL = xb.Sequential([xb.Dense(2)])


def quiet_fit(**kwargs):
    options = dict(loss="cross_entropy", optimizer="sgd", batch_size=8, progress=False,
                   backend="numpy", epochs=1) | kwargs
    return xb.fit(MODEL, X, Y, **options)


@pytest.fixture(scope="module")
def state():
    return quiet_fit().state


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_an_empty_checkpoint_folder_name_is_refused(in_tmp):
    """Path("") is the current folder: fit(checkpoint_dir="") wrote its checkpoints and its
    lock file there."""
    for make in (lambda: quiet_fit(checkpoint_dir=""), lambda: xb.CheckpointManager(" "),
                 lambda: ck.FolderLock("")):
        with pytest.raises(ValueError, match=r"a checkpoint folder needs a name, not an empty "
                                             r"string \(use '\.' for the current folder\)"):
            make()
    assert os.listdir(in_tmp) == []


def test_a_lock_file_made_a_folder_names_itself(tmp_path):
    """It was "IsADirectoryError: Is a directory: 'run'", naming the folder, not the lock."""
    (tmp_path / LOCK_NAME).mkdir()
    with pytest.raises(ck.CheckpointError,
                       match=rf"cannot use the checkpoint folder {tmp_path}: its lock file "
                             rf"{tmp_path / LOCK_NAME} is a folder, not a file; remove it"):
        quiet_fit(checkpoint_dir=tmp_path)


def test_a_pipe_is_not_read_as_a_checkpoint(tmp_path):
    """load_checkpoint, checkpoint_info and `xbackprop predict` on a FIFO blocked forever,
    waiting for a writer."""
    fifo = tmp_path / "ckpt.safetensors"
    os.mkfifo(fifo)
    for load in (xb.load_checkpoint, xb.checkpoint_info, xb.load_model):
        with pytest.raises(ck.NotACheckpointError, match=r"ckpt.safetensors is not a regular "
                                                         r"file \(a pipe, a socket or a "
                                                         r"device\)"):
            load(fifo)


def test_a_dangling_link_says_so(tmp_path):
    (tmp_path / "link.safetensors").symlink_to(tmp_path / "gone.safetensors")
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file at .*link.safetensors: "
                                                r"it is a symbolic link to .*gone.safetensors, "
                                                r"which does not exist"):
        xb.load_checkpoint(tmp_path / "link.safetensors")


@pytest.mark.parametrize("depth", [300, 100_000])
def test_metadata_nested_too_deep_is_refused_at_saving(tmp_path, state, depth):
    """100,000 deep was a RecursionError; 300 deep saved a file that loading refuses."""
    nested: dict = {}
    inner = nested
    for _ in range(depth):
        inner["a"] = {}
        inner = inner["a"]
    with pytest.raises(ValueError, match="metadata nests more than 200 levels deep, deeper "
                                         "than a checkpoint can be read back; flatten it"):
        xb.save_checkpoint(tmp_path / "deep.safetensors", state, metadata=nested)
    assert not (tmp_path / "deep.safetensors").exists()


@pytest.mark.parametrize("field, value, error, message", [
    ("history", {"loss": [1.0, "a"]}, TypeError,
     r"history must be lists of numbers by name \(as fit's History\); 'loss' holds"),
    ("history", {"loss": [True]}, TypeError, "history must be lists of numbers by name"),
    ("history", [0.5, 0.4], TypeError, "history must be a dict .*, not a list"),
    ("metrics", [0.5], TypeError, "metrics must be a dict .*, not a list"),
    ("metadata", "run 3", TypeError, "metadata must be a dict .*, not a str"),
    ("input_shape", (-1, 3), ValueError, r"input_shape is one sample's shape, sizes >= 0 "
                                         r"without the batch axis.*not \(-1, 3\)"),
    ("input_shape", "64", TypeError, r"input_shape is one sample's shape, a tuple of sizes "
                                     r"such as \(64,\).*not '64'")])
def test_what_would_save_but_not_load_is_refused_at_saving(tmp_path, state, field, value,
                                                           error, message):
    """Each saved a file that loading then called corrupt (input_shape="64" saved (6, 4))."""
    with pytest.raises(error, match=message):
        xb.save_checkpoint(tmp_path / "x.safetensors", state, **{field: value})
    assert not (tmp_path / "x.safetensors").exists()


def test_a_negative_step_is_refused(tmp_path, state):
    """The manager named it ckpt--00000001.safetensors: a file it never listed again, so
    never rotated and never resumed."""
    with pytest.raises(ValueError, match="CheckpointManager: a state's step counts from 0, "
                                         "not -1"):
        xb.CheckpointManager(tmp_path).save(state._replace(step=-1))
    with pytest.raises(ValueError, match="save_checkpoint: a state's step counts from 0"):
        xb.save_checkpoint(tmp_path / "x.safetensors", state._replace(step=-1))
    assert [p.name for p in tmp_path.iterdir()] in ([], [LOCK_NAME])


@pytest.mark.parametrize("path", ["", "."])
def test_saving_to_a_folder_or_no_name_is_refused(in_tmp, state, path):
    """save_checkpoint("", state) was "OSError: [Errno 16] Device or resource busy:
    '.../..r6qjgeif.tmp' -> '.'"."""
    with pytest.raises(IsADirectoryError, match=rf"cannot save to '{re.escape(path)}': it is a "
                                                r"folder \(or no name at all\); give a file "
                                                r"name"):
        xb.save_checkpoint(path, state)
    assert os.listdir(in_tmp) == []  # no temporary left behind


def test_a_renamed_checkpoint_is_passed_over(tmp_path):
    """ckpt-000000009 holding step 3 sorted newest: every resume went back to step 3."""
    quiet_fit(checkpoint_dir=tmp_path, epochs=1)
    quiet_fit(checkpoint_dir=tmp_path, epochs=2, resume=True)
    (tmp_path / "ckpt-000000003.safetensors").rename(tmp_path / "ckpt-000000009.safetensors")
    with pytest.warns(UserWarning, match=r"skipping a checkpoint: .*ckpt-000000009.safetensors "
                                         r"holds step 3, not the step 9 of its name \(was it "
                                         r"renamed\?\); give it back its name, "
                                         r"ckpt-000000003.safetensors, or remove it"):
        result = quiet_fit(checkpoint_dir=tmp_path, epochs=3, resume=True)
    assert int(result.state.step) == 9 and len(result.history["loss"]) == 3


def test_a_saved_model_among_the_checkpoints_is_skipped(tmp_path):
    """It stopped the resume ("is a saved model ..."), though the run's checkpoints were
    there."""
    first = quiet_fit(checkpoint_dir=tmp_path, epochs=1)
    xb.save_model(tmp_path / "ckpt-000000099.safetensors", MODEL, first.state.params)
    with pytest.warns(UserWarning, match=r"skipping a checkpoint that cannot be loaded: "
                                         r".*ckpt-000000099.safetensors is a saved model"):
        more = quiet_fit(checkpoint_dir=tmp_path, epochs=2, resume=True)
    assert int(more.state.step) == 6


@pytest.mark.parametrize("first, then", [(False, True), (True, False)])
def test_a_resume_that_adds_or_drops_validation_is_refused(tmp_path, first, then):
    """The history's columns went out of step: 'loss' two rows, 'val_loss' one."""
    def validation(given):
        return {"validation_data": (X, Y)} if given else {}

    quiet_fit(checkpoint_dir=tmp_path, **validation(first))
    was, now = ("with", "without") if first else ("without", "with")
    with pytest.raises(ck.ResumeMismatchError,
                       match=rf"the run trained {was} validation_data, this call {now}, so its "
                             r"history's columns would not line up; give validation_data as "
                             "the run did"):
        quiet_fit(checkpoint_dir=tmp_path, epochs=2, resume=True, **validation(then))


def test_early_stopping_resumed_on_another_metric_starts_afresh(tmp_path):
    """A best loss restored as the best accuracy stopped the run at the wrong epoch."""
    quiet_fit(checkpoint_dir=tmp_path, validation_data=(X, Y),
              early_stopping=xb.EarlyStopping(patience=5))
    other = xb.EarlyStopping(monitor="val_accuracy", patience=5)
    with pytest.warns(UserWarning, match=r"EarlyStopping monitors 'val_accuracy' \(max\) now, "
                                         r"but the run's monitored 'val_loss' \(min\): its "
                                         r"count starts afresh"):
        quiet_fit(checkpoint_dir=tmp_path, epochs=2, resume=True, validation_data=(X, Y),
                  early_stopping=other)
    assert 0 <= other.best <= 1  # an accuracy, not the loss of before


def test_a_bogus_dtype_names_itself(tmp_path, state):
    """It was NumPy's "TypeError: data type 'bogus' not understood"."""
    path = xb.save_checkpoint(tmp_path / "x.safetensors", state)
    for call in (lambda: quiet_fit(dtype="bogus"),
                 lambda: xb.load_checkpoint(path, dtype="bogus"),
                 lambda: xb.init_params(MODEL, 0, (3,), dtype="bogus")):
        with pytest.raises(xb.backends.DtypeError,
                           match="xbackprop models compute in float32 or float64; 'bogus' is "
                                 "not a dtype"):
            call()


def test_keep_true_is_not_one(tmp_path):
    with pytest.raises(ValueError, match="keep must be an int >= 1, not True"):
        xb.CheckpointManager(tmp_path, keep=True)


def test_none_of_these_leaves_a_warning_unsaid(tmp_path):
    """The good path stays quiet: a run, a resume and a load warn about nothing."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        quiet_fit(checkpoint_dir=tmp_path)
        quiet_fit(checkpoint_dir=tmp_path, epochs=2, resume=True)
        xb.CheckpointManager(tmp_path).load_latest()
