"""The `xbackprop` command: `train digits` reaches the documented accuracy with its defaults
on NumPy and JAX; options are documented and honoured; bad choices exit non-zero with a
clear message; `backends` lists what can run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import xbackprop as xb
from xbackprop import backends
from xbackprop.cli import main

ENV = backends.ENV_VAR

pytestmark = pytest.mark.usefixtures("clean_backend_choice")


def scores(out: str) -> dict[str, dict[str, float]]:
    """{"train": {"loss": .., "accuracy": ..}, "test": {...}} from `train`'s output."""
    found = {}
    for split, loss, acc in re.findall(
            r"^(train|test)\s+loss ([0-9.]+)(?:\s+accuracy ([0-9.]+))?$", out, re.M):
        found[split] = {"loss": float(loss)} | ({"accuracy": float(acc)} if acc else {})
    return found


@pytest.mark.parametrize("name", ["numpy", "jax"])
def test_train_digits_reaches_95_percent_with_defaults(name, capsys, request):
    if name == "jax":
        request.getfixturevalue("jax_backend")
    args = ["train", "digits", "--backend", name] + (["--quiet"] if name == "jax" else [])
    assert main(args) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert out.startswith("xbackprop train digits: ")
    assert f"backend {name} ({xb.get_backend(name).device})" in out
    assert ("float32, adam lr=0.001, 30 epochs, batch 32, seed 0; "
            "1438 train / 359 test samples") in out
    assert "total" in out and "17226" in out  # the model summary
    result = scores(out)
    assert result["test"]["accuracy"] >= 0.95, out
    assert result["train"]["accuracy"] >= result["test"]["accuracy"]
    if name == "numpy":  # the progress bar: one line per epoch on stderr
        lines = [ln for ln in captured.err.splitlines() if ln.startswith("epoch ")]
        assert len(lines) == 30 and lines[-1].startswith("epoch 30/30")
    else:
        assert captured.err == ""


def test_train_help_documents_the_options(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for option in ["--backend", "--epochs", "--batch-size", "--lr", "--optimizer", "--seed",
                   "--dtype", "--quiet"]:
        assert option in text, option
    for choice in ["numpy", "jax", "cupy", "sgd", "adam", "rmsprop", "digits", "xor"]:
        assert choice in text, choice
    assert ENV in text  # where the default backend comes from


def test_top_level_help_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for command in ["train", "gradcheck", "backends"]:
        assert command in text


def test_options_are_honoured(capsys):
    assert main(["train", "xor", "--epochs", "3", "--batch-size", "2", "--lr", "0.5",
                 "--optimizer", "momentum", "--seed", "4", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "backend numpy (cpu), float32, momentum lr=0.5, 3 epochs, batch 2, seed 4;" in out
    assert "ms per step" in out
    assert set(scores(out)) == {"train", "test"}
    assert "accuracy" not in scores(out)["train"]  # MSE: regression scores only


def test_float64_on_numpy(capsys):
    assert main(["train", "xor", "--epochs", "2", "--dtype", "float64", "--quiet"]) == 0
    assert "float64" in capsys.readouterr().out


def test_float64_on_jax_leaves_the_process_in_32_bit_mode(jax_backend, capsys):
    """The run scopes JAX's 64-bit mode (Backend.dtype_scope); it is off again afterwards."""
    import jax

    before = jax.config.jax_enable_x64
    assert main(["train", "xor", "--backend", "jax", "--epochs", "2", "--dtype", "float64",
                 "--quiet"]) == 0
    assert "float64" in capsys.readouterr().out
    assert jax.config.jax_enable_x64 == before


def test_bad_backend_option_exits_with_the_choices(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "xor", "--backend", "tensorflow"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'tensorflow'" in err and "'numpy'" in err


def test_bad_env_value_exits_non_zero_with_a_clear_message(monkeypatch, capsys):
    monkeypatch.setenv(ENV, "tensorflow")
    assert main(["train", "xor", "--epochs", "1", "--quiet"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("xbackprop: error: unknown backend 'tensorflow'")
    assert "environment variable XBACKPROP_BACKEND='tensorflow'" in captured.err
    assert "'numpy', 'jax', 'cupy'" in captured.err
    assert "train loss" not in captured.out  # nothing was trained on another backend


def test_env_variable_chooses_the_backend(monkeypatch, capsys, jax_backend):
    monkeypatch.setenv(ENV, "jax")
    assert main(["train", "xor", "--epochs", "1", "--quiet"]) == 0
    assert "backend jax (" in capsys.readouterr().out
    # the option beats the variable
    assert main(["train", "xor", "--epochs", "1", "--quiet", "--backend", "numpy"]) == 0
    assert "backend numpy (cpu)" in capsys.readouterr().out


def test_unavailable_backend_exits_non_zero(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.delitem(backends._select._instances, "cupy", raising=False)
    assert main(["train", "xor", "--backend", "cupy", "--epochs", "1"]) == 2
    err = capsys.readouterr().err
    assert "xbackprop: error: backend 'cupy' needs CuPy" in err
    assert "pip install 'xbackprop[cuda12]'" in err


@pytest.mark.parametrize("option, value, message", [
    ("--batch-size", "0", "argument --batch-size: a whole number >= 1, not 0"),
    ("--batch-size", "-4", "argument --batch-size: a whole number >= 1, not -4"),
    ("--epochs", "-1", "argument --epochs: a whole number >= 0, not -1"),
    ("--checkpoint-every", "0", "argument --checkpoint-every: a whole number >= 1, not 0"),
    ("--seed", "-1", "argument --seed: a seed is a whole number from 0 to 2**64 - 1, not '-1'"),
    ("--lr", "-0.1", "learning rate"),
])
def test_bad_numbers_exit_non_zero(capsys, option, value, message):
    """An out-of-range option is an error, never silently replaced by the default; counts
    and seeds are refused as the options are read, naming the option (a negative seed used
    to reach NumPy: "expected non-negative integer")."""
    try:
        code = main(["train", "xor", "--quiet", option, value])
    except SystemExit as e:  # argparse's own refusal: usage, then the message
        code = e.code
    assert code == 2
    captured = capsys.readouterr()
    assert "error: " in captured.err and message in captured.err, captured.err
    assert "train loss" not in captured.out and "total" not in captured.out


def test_unknown_job(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "imagenet"])
    assert info.value.code == 2
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err


def test_backends_lists_every_backend(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out.splitlines()
    lines = [ln for ln in out if not ln.startswith(" ")]  # indented: a note on the line above
    assert [ln.split()[0] for ln in lines] == list(backends.BACKEND_NAMES)
    blas = backends.numpy_blas()
    numpy_line = next(ln for ln in lines if ln.startswith("numpy "))
    if blas is not None:  # the BLAS NumPy's products run on, and its kernels
        assert f"({blas})" in numpy_line
    hint = backends.blas_hint()
    if hint is not None:
        assert out[out.index(numpy_line) + 1].strip() == hint
    status = {ln.split()[0]: ln.split()[1] for ln in lines}
    assert status["numpy"] == "ok"
    assert status == {name: "ok" if name in xb.available_backends() else "no"
                      for name in backends.BACKEND_NAMES}
    for ln in lines:
        if ln.split()[1] == "no":  # says why
            assert len(ln.split()) > 3


def test_plot_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "history.png"
    assert main(["train", "xor", "--epochs", "3", "--quiet", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"saved {path}" in capsys.readouterr().out


def _console_script() -> str:
    here = Path(sys.executable).with_name("xbackprop")
    return str(here) if here.exists() else shutil.which("xbackprop")


def test_console_script():
    script = _console_script()
    assert script, "the xbackprop console script is not installed"
    env = {k: v for k, v in os.environ.items() if k != ENV}
    out = subprocess.run([script, "train", "xor", "--epochs", "5", "--quiet"],
                         capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "xbackprop train xor" in out.stdout and "backend numpy" in out.stdout
    assert set(scores(out.stdout)) == {"train", "test"}
    assert out.stderr == ""


def test_help_names_every_library_and_the_exit_statuses(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "hand-written backprop on NumPy, JAX, CuPy and PyTorch" in out
    assert "2 an error (the message says what to do: a bad option or file, a full disk, a " \
        "failed download)" in out
