"""Every number a user sees stays as it was before the training wing was restructured
(issue 19), bit for bit on NumPy: `xbackprop train` (digits, xor, digits-cnn), a run cut in
the middle of an epoch and resumed, and files written by the code of before, which still
load (a checkpoint, a saved model, and the checkpoint folder of a fit run, resumed here).
The figures were recorded by `python -m tests.recorded.figures --write` before the change;
the examples' reports are checked in tests/examples/test_same_numbers.py."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import xbackprop as xb
from tests.recorded import figures as F

RECORDED = json.loads(F.FIGURES.read_text())


def same(recorded, now) -> None:
    diffs = F.differences(recorded, json.loads(json.dumps(now)))
    assert not diffs, "\n".join(diffs)


@pytest.mark.parametrize("job, epochs", F.RECIPE_RUNS)
def test_xbackprop_train_gives_the_recorded_numbers(job, epochs):
    same(RECORDED["recipes"][f"{job}@{epochs}"], F.recipe_figures(job, epochs))


def test_a_resumed_run_gives_the_recorded_numbers(tmp_path):
    now = F.resume_figures(tmp_path / "ckpt")
    same(RECORDED["resume"], now)
    assert now["resumed"] == now["straight"]


def test_a_checkpoint_written_before_loads_with_its_numbers():
    files = RECORDED["files"]
    ckpt = xb.load_checkpoint(F.FILES / "checkpoint.safetensors")
    assert F.digest(ckpt.state) == files["state"]
    assert ckpt.step == files["step"] and ckpt.input_shape == (4,)
    assert F.history_figures(ckpt.history) == files["history"]
    assert ckpt.metadata == {"note": "written before issue 19", "epochs": 2}
    assert ckpt.metrics == {"val_loss": files["history"]["val_loss"][-1]}
    assert type(ckpt.loss) is xb.SoftmaxCrossEntropy and ckpt.format_version == 1
    info = xb.checkpoint_info(F.FILES / "checkpoint.safetensors")
    assert info.kind == "checkpoint" and info.step == files["step"]
    assert info.tensors["params.0.W"] == ("float32", (4, 6))


def test_a_damaged_copy_of_a_file_written_before_fails_its_checksum(tmp_path):
    """The checksum of the files written before the safetensors package wrote them is the
    checksum read now (tensors_checksum's order is their layout): a flipped bit is found."""
    raw = bytearray((F.FILES / "checkpoint.safetensors").read_bytes())
    raw[-5] ^= 1
    (tmp_path / "bad.safetensors").write_bytes(raw)
    with pytest.raises(xb.checkpoint.CorruptCheckpointError,
                       match="do not match the checksum written with them"):
        xb.load_checkpoint(tmp_path / "bad.safetensors")


def test_a_saved_model_written_before_loads_and_predicts_the_same():
    files = RECORDED["files"]
    model, params, model_state = xb.load_model(F.FILES / "model.safetensors")
    assert F.digest(params) == files["params"] and F.digest(model_state) == files["model_state"]
    _, _, x = F.file_state()
    predicted = np.asarray(xb.predict(model, params, x[:5], model_state=model_state))
    assert predicted.tolist() == files["predictions"]


def test_a_fit_run_checkpointed_before_resumes_to_the_recorded_run(tmp_path):
    folder = tmp_path / "fit-run"
    shutil.copytree(F.FILES / "fit-run", folder)
    stop = xb.EarlyStopping(patience=F.RESUME["patience"])
    resumed = F.resume_train(epochs=F.RESUME["epochs"], checkpoint_dir=folder, resume=True,
                             early_stopping=stop)
    straight = RECORDED["resume"]["straight"]
    same(straight, {"history": F.history_figures(resumed.history),
                    "params": F.digest(resumed.state), "best_epoch": stop.best_epoch,
                    "stopped_epoch": stop.stopped_epoch})
