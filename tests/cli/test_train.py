"""`xbackprop train`: --save (a model that `predict` and `load_model` take); the data-parallel
options: --devices on JAX (a mesh the run reports), the errors for NumPy, for a bad count
and for an incomplete multi-process address. (Two processes training together:
tests/test_fit_sharded.py.)"""

from __future__ import annotations

import csv
import io
import re

import numpy as np
import pytest

import xbackprop as xb
from xbackprop.cli import main

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


def test_devices_runs_over_a_mesh_and_says_so(jax_backend, capsys):
    assert main(["train", "xor", "--backend", "jax", "--devices", "all", "--epochs", "3",
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "backend jax (mesh(data=1) of cpu)" in out and "train loss" in out


def test_devices_on_numpy_exits_2_saying_to_use_jax(capsys):
    assert main(["train", "xor", "--devices", "2", "--epochs", "1", "--quiet"]) == 2
    assert "backend 'numpy' computes on one device" in capsys.readouterr().err


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_a_bad_device_count_is_a_usage_error(bad, capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "xor", "--devices", bad])
    assert e.value.code == 2
    assert f"a number of devices >= 1 or 'all', not '{bad}'" in capsys.readouterr().err


def test_a_multi_process_run_needs_the_whole_address(jax_backend, capsys):
    assert main(["train", "xor", "--backend", "jax", "--coordinator", "127.0.0.1:1234",
                 "--epochs", "1"]) == 2
    assert "needs all of the coordinator address" in capsys.readouterr().err
    assert main(["train", "xor", "--backend", "jax", "--coordinator", "127.0.0.1:1234",
                 "--num-processes", "2", "--process-id", "2", "--epochs", "1"]) == 2
    assert "process id 2 is not in [0, 2)" in capsys.readouterr().err
    assert main(["train", "xor", "--coordinator", "127.0.0.1:1234", "--num-processes", "2",
                 "--process-id", "0", "--epochs", "1"]) == 2
    assert "backend 'numpy' runs in one process" in capsys.readouterr().err


def test_save_then_predict(tmp_path, capsys):
    """One epoch of digits with --save, then `xbackprop predict` on that file: the classes
    and probabilities of the trained model, which `xb.load_model` gives back as well."""
    saved = tmp_path / "digits"  # ".safetensors" is added
    assert main(["train", "digits", "--epochs", "1", "--quiet", "--save", str(saved)]) == 0
    out = capsys.readouterr().out
    path = tmp_path / "digits.safetensors"
    assert f"saved the model to {path} (xbackprop predict {path} FILE)" in out
    test_accuracy = float(re.search(r"test  loss \S+  accuracy (\S+)", out).group(1))

    data = xb.data.load_digits(seed=0)
    np.save(tmp_path / "x.npy", data.x_test)
    assert main(["predict", str(path), str(tmp_path / "x.npy")]) == 0
    table = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    classes = np.array([int(row[0]) for row in table[1:]])
    assert table[0][:2] == ["class", "prob_0"] and len(classes) == len(data.x_test)
    assert np.mean(classes == data.y_test) == pytest.approx(test_accuracy, abs=5e-5)  # 4 digits

    model, params, state = xb.load_model(path)
    logits = xb.predict(model, params, data.x_test, model_state=state)
    np.testing.assert_array_equal(logits.argmax(axis=1), classes)
    info = xb.checkpoint_info(path)
    assert info.input_shape == (64,) and info.loss["class"] == "SoftmaxCrossEntropy"
    assert info.metadata["job"] == "digits" and info.metadata["epochs"] == 1


@pytest.mark.parametrize("save, message", [
    ("{tmp}", r"--save {tmp} is a folder; give a file name, e.g. {tmp}/model.safetensors"),
    ("{tmp}/no/m.safetensors", r"--save {tmp}/no/m.safetensors: the folder {tmp}/no does not "
                               r"exist; create it first"),
    ("", r"--save needs a file name, not an empty string"),
])
def test_save_is_checked_before_training(save, message, tmp_path, capsys):
    assert main(["train", "xor", "--quiet", "--save", save.format(tmp=tmp_path)]) == 2
    captured = capsys.readouterr()
    assert re.search("^xbackprop: error: " + message.format(tmp=re.escape(str(tmp_path))),
                     captured.err), captured.err
    assert captured.out == ""  # nothing trained
