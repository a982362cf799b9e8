"""`xbackprop train shakespeare-char` and `shakespeare-rnn` at a tiny size (what they print,
--save, --checkpoint and --resume) and `xbackprop sample` on the saved model and on a
checkpoint, with their usage errors."""

from __future__ import annotations

import re

import pytest

from xbackprop.cli import main

pytestmark = pytest.mark.usefixtures("clean_backend_choice")

TINY = ["train", "shakespeare-char", "--steps", "6", "--warmup", "2", "--eval-every", "3",
        "--eval-batches", "1", "--layers", "1", "--heads", "2", "--width", "8", "--context",
        "8", "--batch-size", "2"]
RNN = ["train", "shakespeare-rnn", "--steps", "4", "--eval-every", "2", "--eval-batches",
       "1", "--layers", "2", "--width", "8", "--context", "8", "--batch-size", "2"]


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


def trained_then_resumed(job: list[str], steps: int, folder, capsys) -> str:
    """Train `steps` steps of `job` with checkpoints in `folder`, resume to the job's end
    (2 x steps): the resumed run's output, checked to go on where the first stopped."""
    assert main([*job, "--steps", str(steps), "--checkpoint", str(folder),
                 "--sample-tokens", "0", "--quiet"]) == 0
    capsys.readouterr()
    assert main([*job, "--checkpoint", str(folder), "--resume", "--sample-tokens", "0"]) == 0
    out = capsys.readouterr().out
    assert f"resuming at step {steps}" in out
    assert re.search(rf"step +{2 * steps}: train loss", out)
    assert f"step {steps:5d}" not in out.split("resuming")[1]   # no step done twice
    return out


def test_checkpoint_and_resume(tmp_path, capsys):
    trained_then_resumed(TINY, 3, tmp_path / "run", capsys)


def test_usage_errors(capsys):
    assert main(["train", "xor", "--layers", "3", "--epochs", "1"]) == 2
    assert "--layers is for the text jobs (shakespeare-char, shakespeare-rnn), not xor" in \
        capsys.readouterr().err
    assert main(["train", "xor", "--cell", "gru"]) == 2
    assert "--cell is for shakespeare-rnn, not xor" in capsys.readouterr().err
    assert main([*TINY, "--epochs", "2"]) == 2
    assert "--epochs, --optimizer and --devices are for the other jobs" in \
        capsys.readouterr().err
    assert main([*TINY, "--heads", "3"]) == 2
    assert "3 heads do not divide the width 8" in capsys.readouterr().err
    assert main([*TINY, "--resume"]) == 2
    assert "--resume continues the run in --checkpoint DIR" in capsys.readouterr().err


@pytest.mark.parametrize("cell,layer", [("lstm", "LSTM(8)"), ("gru", "GRU(8)"), ("rnn", "RNN(8)")])
def test_rnn_trains_saves_and_samples(tmp_path, capsys, cell, layer):
    model = tmp_path / "rnn.safetensors"
    assert main([*RNN, "--cell", cell, "--save", str(model), "--sample-tokens", "30"]) == 0
    out = capsys.readouterr().out
    assert f"2 {cell.upper()} layers of 8 units, context 8; batch 2, 4 steps, Adam" in out
    assert re.search(rf"^2 +{re.escape(layer)}", out, re.M), out   # layer by layer
    assert re.search(r"step +0: train loss \d\.\d{4}, val loss \d\.\d{4}", out)
    assert re.search(r"step +4: train loss", out)
    assert re.search(r"^val loss \d\.\d{4}$", out, re.M)
    assert "sample (30 characters" in out
    assert main(["sample", str(model), "--prompt", "ROMEO:", "--tokens", "25"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("ROMEO:") and len(text.rstrip("\n")) >= 6 + 25 - 1
    # no position limit of its own: the prompt may be longer than the context it reads
    assert main(["sample", str(model), "--prompt", "x" * 20, "--tokens", "5"]) == 0
    assert capsys.readouterr().out.startswith("x" * 20)


def test_rnn_checkpoint_resume_and_sample_from_the_checkpoint(tmp_path, capsys):
    folder = tmp_path / "run"
    trained_then_resumed(RNN, 2, folder, capsys)
    latest = sorted(folder.glob("ckpt-*.safetensors"))[-1]
    assert latest.name == "ckpt-000000004.safetensors"
    assert main(["sample", str(latest), "--prompt", "KING", "--tokens", "10"]) == 0
    assert capsys.readouterr().out.startswith("KING")


def test_rnn_usage_errors(capsys):
    assert main([*RNN, "--cell", "bogus"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["xbackprop: error: cell must be one of gru, lstm, rnn "
                                        "(a tanh RNN, an LSTM or a GRU), not 'bogus'"]
    assert main([*RNN, "--heads", "4"]) == 2
    assert "--heads is for shakespeare-char, not shakespeare-rnn (its model takes --cell, " \
        "--layers, --width, --context, --dropout)" in capsys.readouterr().err
    assert main([*TINY, "--cell", "gru"]) == 2
    assert "--cell is for shakespeare-rnn, not shakespeare-char" in capsys.readouterr().err


def test_train_help_lists_the_text_jobs(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    assert "shakespeare-rnn: a character-level recurrent net" in out
    assert "--cell {lstm,gru,rnn}" in out
