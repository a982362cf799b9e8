"""`xbackprop example`: the list, one example end to end from a folder outside the checkout,
its options, where its pictures go, and the errors a user can make."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from xbackprop import examples
from xbackprop.cli import main

from .conftest import check_png


def test_list(capsys):
    assert main(["example", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == list(examples.NAMES)
    assert all(len(line.split(maxsplit=1)) == 2 for line in lines)


def test_no_name_shows_usage_and_the_list(capsys):
    assert main(["example"]) == 2
    out = capsys.readouterr().out
    assert out.startswith("usage: xbackprop example") and "worked-222" in out


def test_default_folder_is_named_after_the_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["example", "worked-221", "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "y5" in out and out.rstrip().endswith("1 picture in worked-221/: network.png")
    check_png(tmp_path / "worked-221" / "network.png")


def test_out_quick_and_options(tmp_path, capsys):
    assert main(["example", "worked-222", "--steps", "3", "--out", str(tmp_path / "w"),
                 "--backend", "numpy"]) == 0
    out = capsys.readouterr().out
    assert "after 3 steps: E = " in out
    assert f"2 pictures in {tmp_path / 'w'}/: network.png, error.png" in out
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["error.png", "network.png"]


def test_no_plots_draws_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["example", "points", "--data", "moons", "--quick", "--no-plots"]) == 0
    assert "points: moons" in capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []


def test_backend_from_the_environment(jax_backend, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("XBACKPROP_BACKEND", "jax")
    assert main(["example", "worked-221", "--no-plots"]) == 0
    assert "on jax (float64)" in capsys.readouterr().out


def test_a_bad_option_value_is_a_clear_error(capsys):
    assert main(["example", "worked-222", "--steps", "0", "--no-plots"]) == 2
    assert "--steps must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["example", "no-such-lesson"])
    assert "invalid choice: 'no-such-lesson'" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    # `epochs or default`: 0 trained the default 2,000 (or 60) epochs and reported "solved"
    (["xor", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["energy", "--quick", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["forest-fires", "--quick", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    (["mnist", "--quick", "--epochs", "0"], "--epochs must be at least 1, not 0"),
    # NaN noise came back as "training data: x has 672 NaN or infinite values"
    (["points", "--quick", "--noise", "nan"], r"noise is a standard deviation, a finite "
                                              r"number >= 0 \(got nan\)"),
])
def test_an_option_is_never_taken_for_its_default(args, message, capsys):
    assert main(["example", *args, "--no-plots"]) == 2
    captured = capsys.readouterr()
    assert re.search(f"^xbackprop: error: {message}", captured.err), captured.err
    assert "solved" not in captured.out and "trained in" not in captured.out


def test_runs_as_a_user_would_outside_the_checkout(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "XBACKPROP_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "xbackprop", "example", "xor", "--quick"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "solved" in done.stdout
    assert "epochs" in done.stderr and "2000/2000" in done.stderr   # fit's bar over the epochs
    for name in ["learning_curve.png", "decision_surface.png"]:
        check_png(tmp_path / "xor" / name)
