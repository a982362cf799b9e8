"""`xbackprop train shakespeare-char` at a tiny size (what it prints, --save, --checkpoint
and --resume) and `xbackprop sample` on the saved model, with their usage errors."""

from __future__ import annotations

import re

import pytest

from xbackprop.cli import main

pytestmark = pytest.mark.usefixtures("clean_backend_choice")

TINY = ["train", "shakespeare-char", "--steps", "6", "--warmup", "2", "--eval-every", "3",
        "--eval-batches", "1", "--layers", "1", "--heads", "2", "--width", "8", "--context",
        "8", "--batch-size", "2"]


def test_train_prints_val_losses_and_a_sample_then_sample_continues_a_prompt(tmp_path,
                                                                            capsys):
    model = tmp_path / "gpt.safetensors"
    assert main([*TINY, "--save", str(model), "--sample-tokens", "40"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"step +0: train loss \d\.\d{4}, val loss \d\.\d{4}", out), out
    assert re.search(r"step +6: train loss", out)
    assert re.search(r"^val loss \d\.\d{4}$", out, re.M)
    assert "2.1    CausalSelfAttention(2, use_bias=False)" in out  # layer by layer
    assert "sample (40 characters" in out
    assert model.is_file()

    assert main(["sample", str(model), "--prompt", "ROMEO:", "--tokens", "30", "--seed",
                 "3", "--top-k", "5", "--temperature", "0.8"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ROMEO:") and len(text.rstrip("\n")) >= 6 + 30 - 1

    assert main(["sample", str(model), "--prompt", "ROMEO: ç"]) == 2
    assert "never saw: 'ç'" in capsys.readouterr().err
    assert main(["sample", str(model), "--prompt", "x" * 9]) == 2
    assert "more than the model's context of 8" in capsys.readouterr().err
    assert main(["sample", str(model), "--temperature", "0"]) == 2
    assert "temperature must be a positive number" in capsys.readouterr().err
    assert main(["sample", str(model), "--top-k", "0"]) == 2
    assert "top_k must be an int >= 1" in capsys.readouterr().err


def test_checkpoint_and_resume(tmp_path, capsys):
    folder = tmp_path / "run"
    assert main([*TINY, "--steps", "3", "--checkpoint", str(folder), "--sample-tokens", "0",
                 "--quiet"]) == 0
    capsys.readouterr()
    assert main([*TINY, "--checkpoint", str(folder), "--resume", "--sample-tokens", "0"]) == 0
    out = capsys.readouterr().out
    assert "resuming at step 3" in out and re.search(r"step +6: train loss", out)
    assert "step     3" not in out.split("resuming")[1]   # no step done twice


def test_usage_errors(capsys):
    assert main(["train", "xor", "--layers", "3", "--epochs", "1"]) == 2
    assert "--layers is for the text jobs (shakespeare-char), not xor" in \
        capsys.readouterr().err
    assert main([*TINY, "--epochs", "2"]) == 2
    assert "--epochs, --optimizer and --devices are for the other jobs" in \
        capsys.readouterr().err
    assert main([*TINY, "--heads", "3"]) == 2
    assert "3 heads do not divide the width 8" in capsys.readouterr().err
    assert main([*TINY, "--resume"]) == 2
    assert "--resume continues the run in --checkpoint DIR" in capsys.readouterr().err
